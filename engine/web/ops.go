package web

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
	"github.com/shoptrail/shoptrail/engine/user"
)

// What runs a shop for years needs: readiness, metrics, backups through the
// admin listener, a person's data export and erasure.

// readyLag is how many events the live projections (identity among them)
// may lag the log before /readyz says not ready: about ten seconds of
// ingestion at full speed on 2 cores. A projection that backfills (after a
// rebuild or an upgrade) is reported by /healthz and does not count: the
// instance serves meanwhile.
const readyLag = 100_000

// ingestRoutes are the routes whose refusals count in
// shoptrail_events_rejected_total.
var ingestRoutes = map[string]bool{"POST /t": true, "POST /api/v1/events": true,
	"POST /v1/batch": true, "POST /v1/track": true, "POST /v1/identify": true, "POST /v1/page": true,
	"POST /v1/screen": true, "POST /v1/group": true, "POST /v1/alias": true}

// readiness lists what keeps the instance from serving: reason codes and,
// for the admin listener, what they mean.
func (s *Server) readiness() (codes, details []string) {
	add := func(code, detail string) {
		codes, details = append(codes, code), append(details, detail)
	}
	if err := s.st.Ping(); err != nil {
		add("store", "the store does not answer: "+err.Error())
	}
	if err := s.diskErr(); err != nil {
		add("disk", s.diskProblem())
	}
	if st := s.pipeline.Status(); len(st) > 0 {
		id := st[0]
		if id.Behind > readyLag {
			add("projections", "the "+id.Name+" projection is "+strconv.FormatUint(id.Behind, 10)+" events behind the log (ready at "+strconv.Itoa(readyLag)+")")
		}
		if id.Error != "" {
			add("projections", "the "+id.Name+" projection fails: "+id.Error)
		}
	}
	if s.catalog != nil {
		if err := s.catalog.Rebuilding(); err != nil {
			add("search_index", strings.TrimPrefix(err.Error(), "catalog: "))
		}
	}
	return codes, details
}

// ready is GET /readyz on the public listener: 200 when the instance can
// serve, 503 with the reasons' codes otherwise (no details: the public
// listener says nothing about the server).
func (s *Server) ready(w http.ResponseWriter, r *http.Request) error {
	codes, _ := s.readiness()
	if len(codes) > 0 {
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not_ready", "reasons": codes})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	return nil
}

// adminReady is GET /readyz on the admin listener: the same, with what
// each reason means.
func (s *Server) adminReady(w http.ResponseWriter, r *http.Request) error {
	codes, details := s.readiness()
	if len(codes) > 0 {
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not_ready", "reasons": codes, "details": details, "version": s.version})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "version": s.version})
	return nil
}

// countRejected counts the refusals of an ingestion route by reason: the
// error code of a request refused whole.
func (s *Server) countRejected(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		err := next(w, r)
		if err != nil {
			s.metrics.Rejected(reasonOf(err), 1)
		}
		return err
	}
}

// reasonOf is the error code handle gives err.
func reasonOf(err error) string {
	var e *Error
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &e):
		return e.Code
	case errors.As(err, &tooBig):
		return "too_large"
	case errors.Is(err, track.ErrOverloaded), errors.Is(err, track.ErrClosed):
		return "overloaded"
	case errors.Is(err, store.ErrDiskFull):
		return "disk_full"
	}
	return "internal"
}

// backup is GET /backup on the admin listener: a backup file of the
// running instance, streamed (shoptrail backup calls it). It needs the
// token the running instance wrote to its data directory (readable by its
// owner only): whoever can read that can read the data anyway.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) error {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if s.backupToken == "" || !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.backupToken)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="shoptrail backup"`)
		return errorf(http.StatusUnauthorized, "unauthorized", "Authorization",
			"send the token of the data directory's control file (shoptrail backup does)")
	}
	var since uint64
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return invalid("since", "since must be the version a previous backup printed, plus one (a whole number from 1)")
		}
		since = n
	}
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{}) // a backup outlasts the server's write timeout
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="shoptrail.backup"`)
	started := false
	upto, err := s.st.Backup(writerFunc(func(p []byte) (int, error) {
		started = true
		return w.Write(p)
	}), since, s.version)
	switch {
	case errors.Is(err, store.ErrNeedFull) && !started:
		h.Del("Content-Disposition")
		return errorf(http.StatusConflict, "need_full_backup", "since", strings.TrimPrefix(err.Error(), "store: "))
	case err != nil && !started:
		h.Del("Content-Disposition")
		return err
	case err != nil:
		// the file is cut short: its missing trailer tells the client
		s.log.Error("backup failed while streaming", "err", err)
		return nil
	}
	s.log.Info("backup taken", "since", since, "version", upto)
	return nil
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// exportUser is GET /api/v1/user/{email}/export: everything stored about
// a person as one JSON document (GDPR articles 15 and 20).
func (s *Server) exportUser(w http.ResponseWriter, r *http.Request) error {
	email, err := pathEmail(r)
	if err != nil {
		return err
	}
	return s.writeExport(w, r, email, false)
}

// writeExport streams the export; attach makes browsers save it as a file.
func (s *Server) writeExport(w http.ResponseWriter, r *http.Request, email string, attach bool) error {
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Now().Add(10 * time.Minute)) // a long history takes a while
	began := false
	err := s.userSvc.Export(r.Context(), writerFunc(func(p []byte) (int, error) {
		if !began {
			began = true
			h := w.Header()
			h.Set("Content-Type", "application/json; charset=utf-8")
			h.Set("X-Content-Type-Options", "nosniff")
			if attach {
				h.Set("Content-Disposition", `attachment; filename="shoptrail-export.json"`)
			}
			w.WriteHeader(http.StatusOK)
		}
		return w.Write(p)
	}), email, func(a model.User, p model.Profile) (any, error) { return s.userJSON(a, p) })
	switch {
	case err != nil && !began:
		return userError(email, err)
	case err != nil:
		s.log.Error("user export cut short", "err", err)
	}
	return nil
}

// exportPage is GET /users/{email}/export in the admin UI: the export as
// a file.
func (s *Server) exportPage(w http.ResponseWriter, r *http.Request) error {
	email, err := track.NormaliseEmail(r.PathValue("email"))
	if err != nil {
		return errorf(http.StatusNotFound, "not_found", "email", "no such user")
	}
	return s.writeExport(w, r, email, true)
}

// erasePage is POST /users/{email}/erase in the admin UI: the confirm
// field must repeat the email (typed by the admin), then the user and
// everything tracked about them are erased, as DELETE /api/v1/user does.
func (s *Server) erasePage(w http.ResponseWriter, r *http.Request) error {
	email, err := track.NormaliseEmail(r.PathValue("email"))
	if err != nil {
		return errorf(http.StatusNotFound, "not_found", "email", "no such user")
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	confirm, _ := track.NormaliseEmail(strings.TrimSpace(r.PostFormValue("confirm")))
	if confirm != email {
		return s.renderUser(w, r, email, http.StatusBadRequest, "To erase this user, type their email address exactly in the box, then press Erase.")
	}
	n, err := s.userSvc.Erase(r.Context(), email)
	if errors.Is(err, user.ErrNotFound) {
		http.Redirect(w, r, "/users", http.StatusSeeOther)
		return nil
	}
	if err != nil {
		return err
	}
	s.log.Info("user erased from the admin UI", "events", n)
	return s.render(w, http.StatusOK, "users", s.page(r, map[string]any{
		"Message": "The user was erased with " + strconv.Itoa(n) + " events and everything derived from them."}))
}
