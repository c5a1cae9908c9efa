package web

import (
	_ "embed"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/shoptrail/shoptrail/engine/automation"
	"github.com/shoptrail/shoptrail/engine/campaign"
	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/live"
	"github.com/shoptrail/shoptrail/engine/mail"
	"github.com/shoptrail/shoptrail/engine/mailcampaign"
	"github.com/shoptrail/shoptrail/engine/metrics"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/segment"
	"github.com/shoptrail/shoptrail/engine/settings"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
	"github.com/shoptrail/shoptrail/engine/user"
	tracker "github.com/shoptrail/shoptrail/tracker-wasm"
)

// Server holds what the handlers of both listeners need.
type Server struct {
	cfg       config.Config
	st        *store.Store
	tracker   *track.Tracker
	catalog   *catalog.Catalog
	syncer    *catalog.Syncer // nil without [feed] url
	userSvc   *user.Service
	segs      *segment.Service // nil: no segments API
	pipeline  Pipeline
	assets    *tracker.Assets
	demo      http.Handler // the demo shop; nil when turned off
	ui        *AdminUI     // the admin UI; nil: the admin listener answers /healthz only
	live      *settings.Live
	disk      *store.DiskGuard      // nil: no free-space check (see disk.go)
	mail      *mail.Mailer          // nil: email routes answer 503
	campaigns *campaign.Service     // onsite campaigns
	preview   *live.Hub             // the campaigns' live preview
	publicURL string                // where the public listener is (SetPublicURL)
	mailCamps *mailcampaign.Service // nil: email campaign routes answer 503
	autos     *automation.Service   // nil: automation routes answer 503

	metrics     *metrics.Metrics // nil: none
	version     string           // buildinfo.String()
	backupToken string           // GET /backup's bearer token; "": no backups through HTTP

	inflight *inflight // ingestion admission; nil: no limit
	limiter  *limiter  // per-client rate limit of the public listener; nil: none
	proxies  proxies   // [http] trusted_proxies

	liveDone chan struct{} // closed at shutdown: live streams end
	stopLive sync.Once
	log      *slog.Logger
	now      func() time.Time
}

// Pipeline tells where the projections are (project.Runner).
type Pipeline interface {
	Status() []project.Status
}

// Deps are the components the handlers call.
type Deps struct {
	Store     *store.Store
	Tracker   *track.Tracker
	Catalog   *catalog.Catalog
	Syncer    *catalog.Syncer // nil without [feed] url
	Users     *user.Service
	Segments  *segment.Service
	Pipeline  Pipeline
	Settings  *settings.Live
	Assets    *tracker.Assets
	Campaigns *campaign.Service
	Preview   *live.Hub
	Metrics   *metrics.Metrics // nil: no /metrics
	Version   string
	// BackupToken authorises GET /backup on the admin listener (the
	// data directory's control file holds it); "" turns it off.
	BackupToken string
}

// New returns the HTTP side of Shoptrail.
func New(cfg config.Config, d Deps, log *slog.Logger, now func() time.Time) *Server {
	s := &Server{cfg: cfg, st: d.Store, tracker: d.Tracker, catalog: d.Catalog, syncer: d.Syncer, userSvc: d.Users, segs: d.Segments,
		pipeline: d.Pipeline, live: d.Settings, assets: d.Assets, log: log, now: now, liveDone: make(chan struct{}),
		campaigns: d.Campaigns, preview: d.Preview, metrics: d.Metrics, version: d.Version, backupToken: d.BackupToken}
	if n := cfg.Ingest.MaxInflightBytes; n > 0 {
		s.inflight = newInflight(n)
	}
	if cfg.HTTP.RateLimit > 0 {
		s.limiter = newLimiter(cfg.HTTP.RateLimit, cfg.HTTP.RateBurst, now)
	}
	s.proxies, _ = parseProxies(cfg.HTTP.TrustedProxies) // checked by config.Validate
	if d.Campaigns != nil && cfg.Campaigns.Enabled {
		rendererAsset() // compressed now, not while the first decisions wait
	}
	return s
}

// ServeDemo serves the demo shop under /demo/ on the public listener.
func (s *Server) ServeDemo(h http.Handler) { s.demo = h }
