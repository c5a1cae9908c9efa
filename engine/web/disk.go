package web

import (
	"errors"
	"net/http"

	"github.com/shoptrail/shoptrail/engine/store"
)

// diskRetryAfter is what a refused write is told to wait, in seconds.
const diskRetryAfter = "30"

// publicDiskMessage says why a write is refused without naming the
// server's paths.
const publicDiskMessage = "the server's storage is full or cannot be written; nothing was stored, retry later"

// WatchDisk makes the server refuse writes while g says the data directory
// is full or unwritable: see GuardDisk, the admin banner and the import
// handlers.
func (s *Server) WatchDisk(g *store.DiskGuard) { s.disk = g }

// diskErr is the disk guard's verdict, nil without a guard.
func (s *Server) diskErr() error {
	if s.disk == nil {
		return nil
	}
	return s.disk.Check()
}

// diskProblem is the reason shown in the admin UI's banner, "" when all is
// well.
func (s *Server) diskProblem() string {
	var de *store.DiskError
	if errors.As(s.diskErr(), &de) {
		return de.Reason
	}
	return ""
}

// GuardDisk wraps a listener's handler. While the disk guard refuses writes:
// requests that write (POST, PUT, PATCH, DELETE) on the public listener get
// 503 with Retry-After and a JSON reason, before any of their body is read;
// /healthz on either listener answers 503 and says why. Reads and the admin
// UI go on (its imports are refused by the catalogue, and a banner says
// why). admin tells which listener h is.
func (s *Server) GuardDisk(h http.Handler, admin bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := s.diskErr()
		if err == nil {
			h.ServeHTTP(w, r)
			return
		}
		reason := publicDiskMessage
		if admin {
			reason = s.diskProblem()
		}
		switch {
		case (r.URL.Path == "/healthz" || r.URL.Path == "/readyz") && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			w.Header().Set("Retry-After", diskRetryAfter)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "disk_full", "reason": reason})
		case !admin && r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions:
			if ingestRoutes[r.Method+" "+r.URL.Path] {
				s.metrics.Rejected("disk_full", 1)
			}
			w.Header().Set("Retry-After", diskRetryAfter)
			writeJSON(w, http.StatusServiceUnavailable, errorBody{errorf(http.StatusServiceUnavailable, "disk_full", "", reason)})
		default:
			h.ServeHTTP(w, r)
		}
	})
}
