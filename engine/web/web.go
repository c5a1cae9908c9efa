package web

import (
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoptrail/shoptrail/engine/apikey"
	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/settings"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
	tracker "github.com/shoptrail/shoptrail/tracker-wasm"
	"github.com/shoptrail/shoptrail/tracker-wasm/wire"
)

// Server holds what the handlers of both listeners need.
type Server struct {
	cfg     config.Config
	st      *store.Store
	tracker *track.Tracker
	catalog *catalog.Catalog
	assets  *tracker.Assets
	demo    http.Handler // the demo shop; nil when turned off
	ui      *AdminUI     // the admin UI; nil: the admin listener answers /healthz only
	live    *settings.Live

	liveDone chan struct{} // closed at shutdown: live streams end
	stopLive sync.Once
	log      *slog.Logger
	now      func() time.Time
}

// New returns the HTTP side of Shoptrail.
func New(cfg config.Config, st *store.Store, tr *track.Tracker, cat *catalog.Catalog, live *settings.Live, assets *tracker.Assets, log *slog.Logger, now func() time.Time) *Server {
	return &Server{cfg: cfg, st: st, tracker: tr, catalog: cat, live: live, assets: assets, log: log, now: now, liveDone: make(chan struct{})}
}

// ServeDemo serves the demo shop under /demo/ on the public listener.
func (s *Server) ServeDemo(h http.Handler) { s.demo = h }

// route is one entry of a listener's route table.
type route struct {
	method, path string
	scope        string // the API key scope it needs; "" for none
	h            handlerFunc
}

// publicRoutes is the route table of the public listener: what shoppers'
// browsers and the shop's servers call. openapi.json documents every
// route under /api/, /t and /healthz; a test keeps the two equal.
func (s *Server) publicRoutes() []route {
	return []route{
		// browsers: CORS for the allowed origins, text/plain bodies (no preflight)
		{"POST", "/t", "", s.allowOrigin(s.collect)},
		{"OPTIONS", "/t", "", s.allowOrigin(s.preflight)},
		// servers, with an API key that has the scope
		{"POST", "/api/v1/events", model.ScopeEventsWrite, s.ingestAPI},
		{"GET", "/api/v1/events", model.ScopeEventsRead, s.listEvents},
		{"GET", "/api/v1/user/{email}", model.ScopeUsersRead, s.getUser},
		{"POST", "/api/v1/user", model.ScopeUsersWrite, s.createUser},
		{"PUT", "/api/v1/user/{email}", model.ScopeUsersWrite, s.putUser(true)},
		{"PATCH", "/api/v1/user/{email}", model.ScopeUsersWrite, s.putUser(false)},
		{"DELETE", "/api/v1/user/{email}", model.ScopeUsersWrite, s.deleteUser},
		{"GET", "/api/v1/user/{email}/events", model.ScopeUsersRead, s.userEvents},
		{"POST", "/api/v1/users/import", model.ScopeUsersWrite, s.importUsers},
		{"POST", "/api/v1/feed/import", model.ScopeFeedWrite, s.importFeed},
		{"GET", "/api/v1/feed/report", model.ScopeProducts, s.feedReport},
		{"GET", "/api/v1/feed/unknown-products", model.ScopeProducts, s.unknownProducts},
		{"GET", "/api/v1/products/search", model.ScopeProducts, s.searchProducts},
		{"GET", "/api/v1/products/{id}", model.ScopeProducts, s.getProduct},
		{"GET", "/api/v1/products/{id}/recommendations", model.ScopeProducts, s.recommendations},
		// anyone
		{"GET", "/api/v1/openapi.json", "", s.openAPI},
		{"GET", "/healthz", "", s.health},
		// the tracker: the loader at a stable URL, the rest content-hashed
		{"GET", tracker.LoaderPath, "", s.serveAsset},
		{"GET", "/tracker/{file}", "", s.serveAsset},
	}
}

// Public is the public listener's handler.
func (s *Server) Public() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.publicRoutes() {
		h := rt.h
		if rt.scope != "" {
			h = s.requireKey(rt.scope, h)
		}
		mux.HandleFunc(rt.method+" "+rt.path, s.handle(h))
	}
	if s.demo != nil {
		mux.Handle("GET /demo/", s.demo)
		mux.Handle("GET /{$}", http.RedirectHandler("/demo/", http.StatusFound))
	}
	mux.HandleFunc("/", s.handle(notFound))
	return mux
}

func notFound(w http.ResponseWriter, r *http.Request) error {
	return errorf(http.StatusNotFound, "not_found", "", "no such endpoint: "+r.Method+" "+r.URL.Path)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

//go:embed openapi.json
var openAPIDoc []byte

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Write(openAPIDoc)
	return nil
}

// allowOrigin lets browsers on the shop's origins send events, and pages
// served by this listener itself (the demo shop). A request with an Origin
// that is not allowed is refused and nothing is stored; requests without an
// Origin do not come from a browser page.
func (s *Server) allowOrigin(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		origin := r.Header.Get("Origin")
		if origin != "" {
			sameOrigin := strings.TrimPrefix(strings.TrimPrefix(origin, "http://"), "https://") == r.Host
			if !sameOrigin && !s.live.OriginAllowed(origin) {
				return errorf(http.StatusForbidden, "origin_not_allowed", "Origin",
					"origin "+origin+" is not an allowed origin (Settings → Account settings, or [sites] allowed_origins)")
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
		}
		return next(w, r)
	}
}

func (s *Server) preflight(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST")
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// requireKey lets a request through with a valid, unrevoked API key that
// has scope: 401 without one, 403 with a key that lacks the scope.
func (s *Server) requireKey(scope string, next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		secret, ok := apikey.FromHeader(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shoptrail"`)
			return errorf(http.StatusUnauthorized, "unauthorized", "Authorization", "send an API key: Authorization: Bearer st_...")
		}
		k, err := s.st.APIKeyByHash(apikey.Hash(secret))
		if errors.Is(err, store.ErrNotFound) || (err == nil && k.Revoked) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shoptrail", error="invalid_token"`)
			return errorf(http.StatusUnauthorized, "unauthorized", "Authorization", "the API key is unknown or revoked")
		}
		if err != nil {
			return err
		}
		if !k.HasScope(scope) {
			return errorf(http.StatusForbidden, "forbidden", "Authorization", "the API key lacks the scope "+scope)
		}
		if now := s.now(); now.Sub(k.LastUsed) > time.Minute {
			if err := s.st.TouchAPIKey(k.Hash, now); err != nil {
				s.log.Warn("record api key use", "key", k.Prefix, "err", err)
			}
		}
		return next(w, r)
	}
}

// collect is POST /t, the browser endpoint.
func (s *Server) collect(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Tracking.RespectGPC && r.Header.Get("Sec-GPC") == "1" {
		// The shopper opted out with Global Privacy Control: store nothing.
		writeJSON(w, http.StatusOK, map[string]any{"accepted": 0, "duplicates": 0, "rejected": 0, "ignored": "Sec-GPC"})
		return nil
	}
	return s.ingest(w, r, model.ViaBrowser)
}

// ingestAPI is POST /api/v1/events, the server-side endpoint.
func (s *Server) ingestAPI(w http.ResponseWriter, r *http.Request) error {
	return s.ingest(w, r, model.ViaAPI)
}

// ingestAnswer is the body of an ingestion answer. With invalid events it
// goes with status 400, names the first problem in "error" and lists all
// in "errors"; the valid events of the batch are stored all the same.
type ingestAnswer struct {
	Error *Error `json:"error,omitempty"`
	wire.Response
}

func (s *Server) ingest(w http.ResponseWriter, r *http.Request, via string) error {
	var b wire.Batch
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, wire.MaxBodyBytes))
	if err := dec.Decode(&b); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return errorf(http.StatusBadRequest, "invalid_json", "body", "the body is not a JSON batch {\"events\":[...]}: "+err.Error())
	}
	res, err := s.tracker.Ingest(&b, via)
	switch {
	case errors.Is(err, track.ErrNoEvents):
		return errorf(http.StatusBadRequest, "required", "events", "the batch has no events")
	case errors.Is(err, track.ErrTooManyEvs):
		return errorf(http.StatusRequestEntityTooLarge, "too_large", "events", "a batch holds at most "+strconv.Itoa(wire.MaxEvents)+" events")
	case err != nil:
		return err
	}
	ans := ingestAnswer{Response: res.Response}
	status := http.StatusOK
	if len(res.Errors) > 0 {
		fe := res.Errors[0]
		status = http.StatusBadRequest
		ans.Error = &Error{Code: fe.Code, Field: "events[" + strconv.Itoa(fe.Index) + "]." + fe.Field, Message: fe.Message}
	}
	writeJSON(w, status, ans)
	return nil
}

// listEvents is GET /api/v1/events.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	q := track.Query{AnonymousID: v.Get("anonymous_id"), Type: v.Get("type")}
	var err error
	if q.Limit, err = parseLimit(v.Get("limit"), 100, track.MaxLimit); err != nil {
		return err
	}
	if e := v.Get("email"); e != "" {
		email, err := track.NormaliseEmail(e)
		if err != nil {
			return errorf(http.StatusBadRequest, "invalid_field", "email", err.Error())
		}
		q.Email = email
	}
	if since := v.Get("since"); since != "" {
		t, err := parseTime(since)
		if err != nil {
			return errorf(http.StatusBadRequest, "invalid_field", "since", "since must be a time like 2026-11-20T10:00:00Z or a date like 2026-11-20")
		}
		q.Since = t
	}
	evs, err := s.tracker.Events(q)
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []track.Listed{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs})
	return nil
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Parse(time.DateOnly, strings.TrimSpace(s))
}
