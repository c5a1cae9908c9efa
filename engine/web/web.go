package web

import (
	_ "embed"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/settings"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
	tracker "github.com/shoptrail/shoptrail/tracker-wasm"
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

	inflight *inflight // ingestion admission; nil: no limit
	limiter  *limiter  // per-client rate limit of the public listener; nil: none
	proxies  proxies   // [http] trusted_proxies

	liveDone chan struct{} // closed at shutdown: live streams end
	stopLive sync.Once
	log      *slog.Logger
	now      func() time.Time
}

// New returns the HTTP side of Shoptrail.
func New(cfg config.Config, st *store.Store, tr *track.Tracker, cat *catalog.Catalog, live *settings.Live, assets *tracker.Assets, log *slog.Logger, now func() time.Time) *Server {
	s := &Server{cfg: cfg, st: st, tracker: tr, catalog: cat, live: live, assets: assets, log: log, now: now, liveDone: make(chan struct{})}
	if n := cfg.Ingest.MaxInflightBytes; n > 0 {
		s.inflight = &inflight{limit: n}
	}
	if cfg.HTTP.RateLimit > 0 {
		s.limiter = newLimiter(cfg.HTTP.RateLimit, cfg.HTTP.RateBurst, now)
	}
	s.proxies, _ = parseProxies(cfg.HTTP.TrustedProxies) // checked by config.Validate
	return s
}

// ServeDemo serves the demo shop under /demo/ on the public listener.
func (s *Server) ServeDemo(h http.Handler) { s.demo = h }
