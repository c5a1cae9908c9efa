package web

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
	"github.com/shoptrail/shoptrail/engine/user"
	"github.com/shoptrail/shoptrail/tracker-wasm/wire"
)

// The Users API, as the reference article describes it: base user/,
// version 1, camelCase field names.

const maxUserBody = 64 << 10

func invalid(field, msg string) *Error {
	return errorf(http.StatusBadRequest, "invalid_field", field, msg)
}

func pathEmail(r *http.Request) (string, error) {
	email, err := track.NormaliseEmail(r.PathValue("email"))
	if err != nil {
		return "", invalid("email", err.Error())
	}
	return email, nil
}

// lookupUser returns the stored attributes and the tracked profile of a
// user; found is false when there is neither.
func (s *Server) lookupUser(email string) (a user.Attrs, p model.Profile, found bool, err error) {
	a, err = s.st.UserAttrs(email)
	hasAttrs := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return a, p, false, err
	}
	err = s.st.Read(func(tx *store.Tx) error {
		var e error
		p, e = tx.Profile("u:" + email)
		return e
	})
	hasProfile := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return a, p, false, err
	}
	if !hasAttrs {
		a = user.Attrs{Email: email, CreatedAt: p.FirstSeen, UpdatedAt: p.LastSeen}
	}
	return a, p, hasAttrs || hasProfile, nil
}

// existingUser is lookupUser with a 404 for an unknown user.
func (s *Server) existingUser(email string) (user.Attrs, model.Profile, error) {
	a, p, found, err := s.lookupUser(email)
	if err == nil && !found {
		err = errorf(http.StatusNotFound, "not_found", "email", "no user "+email)
	}
	return a, p, err
}

// parseLimit reads the limit parameter: 1 to most, def if absent.
func parseLimit(v string, def, most int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		return 0, invalid("limit", "limit must be a whole number from 1 to "+strconv.Itoa(most))
	}
	return n, nil
}

// userJSON is a user as the API shows it: the attributes, custom ones
// included, and what the tracker saw.
func userJSON(a user.Attrs, p model.Profile) map[string]any {
	out := a.Flat()
	out["createdAt"], out["updatedAt"] = a.CreatedAt, a.UpdatedAt
	out["events"], out["sessions"], out["orders"] = p.Events, p.Sessions, p.Orders
	if !p.FirstSeen.IsZero() {
		out["firstSeen"], out["lastSeen"] = p.FirstSeen, p.LastSeen
	}
	revenue := map[string]float64{}
	for cur, minor := range p.Revenue {
		revenue[cur] = float64(minor) / 100
	}
	out["revenue"] = revenue
	return out
}

func decodePatch(r *http.Request, w http.ResponseWriter) (user.Patch, error) {
	var p user.Patch
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxUserBody))
	if err := dec.Decode(&p); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, err
		}
		return nil, errorf(http.StatusBadRequest, "invalid_json", "body", "the body must be a JSON object of user fields: "+err.Error())
	}
	return p, nil
}

// getUser is GET /api/v1/user/{email}.
func (s *Server) getUser(w http.ResponseWriter, r *http.Request) error {
	email, err := pathEmail(r)
	if err != nil {
		return err
	}
	a, p, err := s.existingUser(email)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, userJSON(a, p))
	return nil
}

// createUser is POST /api/v1/user: creates the user, or updates the given
// fields of an existing one (200 instead of 201).
func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	p, err := decodePatch(r, w)
	if err != nil {
		return err
	}
	var raw string
	if json.Unmarshal(p["email"], &raw) != nil || raw == "" {
		return invalid("email", "email is required")
	}
	email, err := track.NormaliseEmail(raw)
	if err != nil {
		return invalid("email", err.Error())
	}
	return s.saveUser(w, email, p, false, true)
}

// putUser is PUT (replace; creates when unknown) and PATCH (update) of
// /api/v1/user/{email}.
func (s *Server) putUser(replace bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		email, err := pathEmail(r)
		if err != nil {
			return err
		}
		p, err := decodePatch(r, w)
		if err != nil {
			return err
		}
		if raw, ok := p["email"]; ok {
			var other string
			json.Unmarshal(raw, &other)
			if e, err := track.NormaliseEmail(other); err != nil || e != email {
				return invalid("email", "the email cannot be changed; create the new address as a new user")
			}
		}
		return s.saveUser(w, email, p, replace, replace)
	}
}

func (s *Server) saveUser(w http.ResponseWriter, email string, p user.Patch, replace, mayCreate bool) error {
	a, prof, found, err := s.lookupUser(email)
	if err != nil {
		return err
	}
	if !found && !mayCreate {
		return errorf(http.StatusNotFound, "not_found", "email", "no user "+email)
	}
	now := s.now().UTC()
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now
	}
	changed, err := a.Apply(p, replace)
	var fe *user.FieldError
	if errors.As(err, &fe) {
		return invalid(fe.Field, fe.Message)
	}
	if err != nil {
		return err
	}
	a.Email, a.UpdatedAt = email, now
	if err := s.st.PutUserAttrs(a); err != nil {
		return err
	}
	if changed {
		if err := s.recordSubscription([]user.Attrs{a}); err != nil {
			return err
		}
	}
	status := http.StatusOK
	if !found {
		status = http.StatusCreated
	}
	writeJSON(w, status, userJSON(a, prof))
	return nil
}

// recordSubscription stores a subscribe or unsubscribe event for each user
// whose isSubscribed changed, so that segments and reports see it.
func (s *Server) recordSubscription(users []user.Attrs) error {
	for len(users) > 0 {
		n := min(len(users), wire.MaxEvents)
		b := wire.Batch{}
		for _, a := range users[:n] {
			typ := model.Unsubscribe
			if a.IsSubscribed != nil && *a.IsSubscribed {
				typ = model.Subscribe
			}
			b.Events = append(b.Events, wire.Event{Type: typ, Email: a.Email,
				Props: map[string]json.RawMessage{"source": json.RawMessage(`"api"`)}})
		}
		if _, err := s.tracker.Ingest(&b, model.ViaAPI); err != nil {
			return err
		}
		users = users[n:]
	}
	return nil
}

// deleteUser is DELETE /api/v1/user/{email}: erases the user and all that
// was tracked about them.
func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) error {
	email, err := pathEmail(r)
	if err != nil {
		return err
	}
	if _, _, err := s.existingUser(email); err != nil {
		return err
	}
	n, err := s.tracker.Erase(r.Context(), email)
	if err != nil {
		return err
	}
	s.log.Info("user erased", "events", n)
	writeJSON(w, http.StatusOK, map[string]any{"erased": true, "events": n})
	return nil
}

// userEvents is GET /api/v1/user/{email}/events: the timeline, newest
// first, a page at a time.
func (s *Server) userEvents(w http.ResponseWriter, r *http.Request) error {
	email, err := pathEmail(r)
	if err != nil {
		return err
	}
	q := track.Query{Email: email}
	v := r.URL.Query()
	if q.Limit, err = parseLimit(v.Get("limit"), 100, track.MaxLimit); err != nil {
		return err
	}
	if b := v.Get("before"); b != "" {
		n, err := strconv.ParseUint(b, 10, 64)
		if err != nil || n == 0 {
			return invalid("before", "before must be the next_before of the previous page")
		}
		q.Before = n
	}
	evs, err := s.tracker.Events(q)
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		if _, _, err := s.existingUser(email); err != nil {
			return err
		}
	}
	out := map[string]any{"events": evs}
	if evs == nil {
		out["events"] = []track.Listed{}
	}
	if len(evs) == q.Limit {
		out["next_before"] = evs[len(evs)-1].Seq
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Bulk import.

const (
	maxImportBody   = 256 << 20
	importChunk     = 5000
	maxImportErrors = 1000
)

type importError struct {
	Line    int    `json:"line"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

type importReport struct {
	Created int           `json:"created"`
	Updated int           `json:"updated"`
	Failed  int           `json:"failed"`
	Errors  []importError `json:"errors"`
}

type importRow struct {
	line  int
	email string
	patch user.Patch
}

// importUsers is POST /api/v1/users/import: NDJSON (one JSON object a line)
// or CSV (a header of field names), upserted in chunks.
func (s *Server) importUsers(w http.ResponseWriter, r *http.Request) error {
	body := bufio.NewReaderSize(http.MaxBytesReader(w, r.Body, maxImportBody), 64<<10)
	first, _ := body.Peek(64)
	ndjson := bytes.HasPrefix(bytes.TrimLeft(first, " \t\r\n\ufeff"), []byte("{")) || strings.Contains(r.Header.Get("Content-Type"), "ndjson")
	rep := importReport{Errors: []importError{}}
	var rows []importRow
	fail := func(line int, field, msg string) {
		rep.Failed++
		if len(rep.Errors) < maxImportErrors {
			rep.Errors = append(rep.Errors, importError{line, field, msg})
		}
	}
	add := func(line int, p user.Patch) error {
		var raw string
		if json.Unmarshal(p["email"], &raw) != nil || raw == "" {
			fail(line, "email", "email is required")
			return nil
		}
		email, err := track.NormaliseEmail(raw)
		if err != nil {
			fail(line, "email", err.Error())
			return nil
		}
		rows = append(rows, importRow{line, email, p})
		if len(rows) == importChunk {
			err := s.importChunk(rows, &rep, fail)
			rows = rows[:0]
			return err
		}
		return nil
	}
	var err error
	if ndjson {
		err = readNDJSON(body, add, fail)
	} else {
		err = readCSV(body, add, fail)
	}
	if err == nil && len(rows) > 0 {
		err = s.importChunk(rows, &rep, fail)
	}
	if err != nil {
		return err
	}
	slices.SortStableFunc(rep.Errors, func(a, b importError) int { return a.Line - b.Line })
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func readNDJSON(r *bufio.Reader, add func(int, user.Patch) error, fail func(int, string, string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxUserBody)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var p user.Patch
		if err := json.Unmarshal(b, &p); err != nil {
			fail(line, "", "not a JSON object: "+err.Error())
			continue
		}
		if err := add(line, p); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return errorf(http.StatusBadRequest, "invalid_field", "body", "line "+strconv.Itoa(line+1)+" is longer than 64 KiB")
		}
		return err
	}
	return nil
}

// readCSV reads rows under a header of field names. Known fields are
// typed (isSubscribed: true/false/1/0/yes/no); custom attributes stay text.
func readCSV(r *bufio.Reader, add func(int, user.Patch) error, fail func(int, string, string)) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return errorf(http.StatusBadRequest, "invalid_field", "body", "the first line must be a CSV header of field names")
	}
	for i, h := range header {
		header[i] = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				fail(pe.Line, "", pe.Err.Error())
				continue
			}
			return err
		}
		if len(rec) != len(header) {
			fail(line, "", "the row has "+strconv.Itoa(len(rec))+" fields, the header "+strconv.Itoa(len(header)))
			continue
		}
		p := user.Patch{}
		for i, v := range rec {
			if v == "" && header[i] != "email" {
				continue
			}
			if header[i] == "isSubscribed" {
				switch strings.ToLower(strings.TrimSpace(v)) {
				case "true", "1", "yes":
					p[header[i]] = json.RawMessage("true")
				case "false", "0", "no":
					p[header[i]] = json.RawMessage("false")
				default:
					p[header[i]] = json.RawMessage(strconv.Quote(v)) // reported by Apply
				}
				continue
			}
			b, _ := json.Marshal(v)
			p[header[i]] = b
		}
		if err := add(line, p); err != nil {
			return err
		}
	}
}

// importChunk upserts rows: one read of the existing users, one batched
// write, one batch of subscription events.
func (s *Server) importChunk(rows []importRow, rep *importReport, fail func(int, string, string)) error {
	emails := make([]string, len(rows))
	for i, r := range rows {
		emails[i] = r.email
	}
	existing, err := s.st.UsersAttrs(emails)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	byEmail := map[string]*user.Attrs{}
	var order []string
	var subs []string
	created := map[string]bool{}
	for _, r := range rows {
		a, seen := byEmail[r.email]
		var base user.Attrs
		had := false
		switch {
		case seen:
			base = *a
		default:
			base, had = existing[r.email]
			if !had {
				base = user.Attrs{Email: r.email, CreatedAt: now}
			}
		}
		trial := base
		trial.Custom = maps.Clone(base.Custom)
		changed, err := trial.Apply(r.patch, false)
		var fe *user.FieldError
		if errors.As(err, &fe) {
			fail(r.line, fe.Field, fe.Message)
			continue
		}
		trial.UpdatedAt = now
		if seen {
			*a = trial
		} else {
			byEmail[r.email] = &trial
			order = append(order, r.email)
			created[r.email] = !had
		}
		if changed {
			subs = append(subs, r.email)
		}
	}
	batch := make([]user.Attrs, 0, len(order))
	for _, e := range order {
		batch = append(batch, *byEmail[e])
		if created[e] {
			rep.Created++
		} else {
			rep.Updated++
		}
	}
	if err := s.st.PutUserAttrs(batch...); err != nil {
		return err
	}
	var changed []user.Attrs
	for _, e := range subs {
		changed = append(changed, *byEmail[e])
	}
	return s.recordSubscription(changed)
}
