package web

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/track"
	"github.com/shoptrail/shoptrail/engine/user"
)

// The Users API, as the reference article describes it: base user/,
// version 1, camelCase field names. The work is engine/user's.

const (
	maxUserBody   = 64 << 10
	maxImportBody = 256 << 20
)

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

// userError maps the user service's errors to answers.
func userError(email string, err error) error {
	var fe *model.FieldError
	var bad *user.BadInputError
	switch {
	case errors.Is(err, user.ErrNotFound):
		return errorf(http.StatusNotFound, "not_found", "email", "no user "+email)
	case errors.As(err, &fe):
		return invalid(fe.Field, fe.Message)
	case errors.As(err, &bad):
		return invalid("body", bad.Message)
	}
	return err
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
// included, and what the tracker saw. Orders and revenue count what the
// shop confirmed through the API, once it confirms orders at all
// (model.OrderSums.Counted).
func (s *Server) userJSON(a model.User, p model.Profile) (map[string]any, error) {
	confirmed, err := s.userSvc.ConfirmsOrders()
	if err != nil {
		return nil, err
	}
	orders, minor := p.Counted(confirmed)
	out := a.Flat()
	out["createdAt"], out["updatedAt"] = a.CreatedAt, a.UpdatedAt
	out["events"], out["sessions"], out["orders"] = p.Events, p.Sessions, orders
	if !p.FirstSeen.IsZero() {
		out["firstSeen"], out["lastSeen"] = p.FirstSeen, p.LastSeen
	}
	revenue := map[string]float64{}
	for cur, v := range minor {
		revenue[cur] = model.ToMajor(v, cur)
	}
	out["revenue"] = revenue
	if s.segs != nil {
		segs, err := s.segs.ProfileSegments(model.UserProfileID(a.Email))
		if err != nil {
			return nil, err
		}
		out["segments"] = segs
	}
	return out, nil
}

func decodePatch(r *http.Request, w http.ResponseWriter) (model.UserPatch, error) {
	var p model.UserPatch
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
	a, p, err := s.userSvc.Get(email)
	if err != nil {
		return userError(email, err)
	}
	out, err := s.userJSON(a, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
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
	return s.saveUser(w, r, email, p, user.Upsert)
}

// putUser is PUT (replace; creates when unknown) and PATCH (update) of
// /api/v1/user/{email}.
func (s *Server) putUser(mode user.Mode) handlerFunc {
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
		return s.saveUser(w, r, email, p, mode)
	}
}

func (s *Server) saveUser(w http.ResponseWriter, r *http.Request, email string, p model.UserPatch, mode user.Mode) error {
	a, prof, created, err := s.userSvc.Save(r.Context(), email, p, mode)
	if err != nil {
		return userError(email, err)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	out, err := s.userJSON(a, prof)
	if err != nil {
		return err
	}
	writeJSON(w, status, out)
	return nil
}

// deleteUser is DELETE /api/v1/user/{email}: erases the user and all that
// was tracked about them.
func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) error {
	email, err := pathEmail(r)
	if err != nil {
		return err
	}
	n, err := s.userSvc.Erase(r.Context(), email)
	if err != nil {
		return userError(email, err)
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
		if _, _, err := s.userSvc.Get(email); err != nil {
			return userError(email, err)
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

// importUsers is POST /api/v1/users/import: NDJSON (one JSON object a line)
// or CSV (a header of field names), upserted in chunks.
func (s *Server) importUsers(w http.ResponseWriter, r *http.Request) error {
	body := bufio.NewReaderSize(http.MaxBytesReader(w, r.Body, maxImportBody), 64<<10)
	first, _ := body.Peek(64)
	ndjson := user.LooksLikeNDJSON(first) || strings.Contains(r.Header.Get("Content-Type"), "ndjson")
	rep, err := s.userSvc.Import(r.Context(), body, ndjson)
	if err != nil {
		return userError("", err)
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
