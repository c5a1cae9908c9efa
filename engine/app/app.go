// Package app is the composition root: it builds every component from the
// configuration, runs them, and shuts them down in order.
package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoptrail/shoptrail/engine/admin"
	"github.com/shoptrail/shoptrail/engine/attribution"
	"github.com/shoptrail/shoptrail/engine/automation"
	"github.com/shoptrail/shoptrail/engine/buildinfo"
	"github.com/shoptrail/shoptrail/engine/campaign"
	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/channel"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/demo"
	"github.com/shoptrail/shoptrail/engine/identity"
	preview "github.com/shoptrail/shoptrail/engine/live"
	"github.com/shoptrail/shoptrail/engine/mail"
	"github.com/shoptrail/shoptrail/engine/mailcampaign"
	"github.com/shoptrail/shoptrail/engine/metrics"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/report"
	"github.com/shoptrail/shoptrail/engine/resident"
	"github.com/shoptrail/shoptrail/engine/segment"
	"github.com/shoptrail/shoptrail/engine/settings"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
	"github.com/shoptrail/shoptrail/engine/user"
	"github.com/shoptrail/shoptrail/engine/web"
	tracker "github.com/shoptrail/shoptrail/tracker-wasm"
)

// App is a running Shoptrail.
type App struct {
	cfg      config.Config
	log      *slog.Logger
	Store    *store.Store
	Tracker  *track.Tracker
	Pipeline *project.Runner
	Identity *identity.Identity
	Users    *user.Service
	Segments *segment.Service
	Catalog  *catalog.Catalog
	Syncer   *catalog.Syncer // nil without [feed] url
	Guard    *admin.Guard
	Settings *settings.Live
	Mail     *mail.Mailer
	// Campaigns are the onsite campaigns.
	Campaigns *campaign.Service
	// MailCampaigns are the email campaigns, Automations the automatic email.
	MailCampaigns *mailcampaign.Service
	Automations   *automation.Service
	// background work to wait for at shutdown (the feed schedule)
	jobs sync.WaitGroup
	Disk *store.DiskGuard

	web         *web.Server
	metrics     *metrics.Metrics
	mapped      *resident.Trimmer // keeps the data files' resident pages under [storage] mapped_limit
	backupToken string            // GET /backup on the admin listener (ControlFile)
	lastBackup  atomic.Int64      // unix seconds of the last scheduled backup

	public, admin       *http.Server
	publicLn, adminLn   net.Listener
	PublicURL, AdminURL string
}

// Option changes how New wires the app; tests use them.
type Option func(*options)

type options struct {
	passwordCost int
	extra        []*project.Projection
	snsClient    *http.Client
	segments     campaign.Segments
	now          func() time.Time
}

// WithClock sets the clock of event times and of the automations (their
// delays, windows and cooldowns): tests move a fake one instead of
// sleeping.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithSNSClient sets the HTTP client that fetches SNS signing certificates
// and confirms subscriptions (tests reach their fake SNS with it; the
// certificate URL's host pinning applies whatever the client).
func WithSNSClient(c *http.Client) Option { return func(o *options) { o.snsClient = c } }

// WithSegments gives the campaigns' "in segment" condition its answers
// instead of engine/segment (benchmarks pass their own).
func WithSegments(s campaign.Segments) Option { return func(o *options) { o.segments = s } }

// WithProjection adds a projection to the pipeline (tests add toy ones).
func WithProjection(p *project.Projection) Option {
	return func(o *options) { o.extra = append(o.extra, p) }
}

// projections is the pipeline: the identity stage, then every other
// projection. Adding a projection is adding its line here.
func projections(cfg config.Config, id *identity.Identity, knownProduct, knownCampaign func(string) bool, segs *segment.Service, autos *automation.Service, extra []*project.Projection) (*project.Identity, []*project.Projection) {
	return id.Projection(), append([]*project.Projection{
		catalog.Counts(knownProduct),
		report.Rollups(),
		attribution.Projection(cfg.Tracking.Lookback.Duration),
		campaign.Projection(knownCampaign),
		segs.Projection(),
		mailcampaign.ReportProjection(),
		autos.Projection(),
	}, extra...)
}

// Rebuild drops the named projections (all without names; identity means
// all, since every other one folds what it found), so that they fold the
// log again when Shoptrail next starts. Shoptrail must be stopped.
func Rebuild(st *store.Store, names ...string) ([]string, error) {
	segs, err := segment.New(st, nil, segment.Options{})
	if err != nil {
		return nil, err
	}
	autos, err := automation.New(automation.Options{Store: st})
	if err != nil {
		return nil, err
	}
	id, others := projections(config.Default(), identity.New(0), nil, nil, segs, autos, nil)
	all := append([]*project.Projection{&id.Projection}, others...)
	var drop []*project.Projection
	for _, n := range names {
		if n == id.Name {
			names = nil
			break
		}
	}
	if len(names) == 0 {
		drop = all
	}
	for _, n := range names {
		i := slices.IndexFunc(all, func(p *project.Projection) bool { return p.Name == n })
		if i < 0 {
			var known []string
			for _, p := range all {
				known = append(known, p.Name)
			}
			return nil, fmt.Errorf("no projection %q (there are: %s)", n, strings.Join(known, ", "))
		}
		drop = append(drop, all[i])
	}
	var dropped []string
	for _, p := range drop {
		if err := project.Drop(st, p); err != nil {
			return dropped, err
		}
		dropped = append(dropped, p.Name)
	}
	return dropped, nil
}

// WithPasswordCost sets the bcrypt cost of the admin password (tests use
// bcrypt's minimum: the race detector makes the default take seconds).
func WithPasswordCost(cost int) Option { return func(o *options) { o.passwordCost = cost } }

// New opens the store and builds every component. It does not listen yet.
func New(cfg config.Config, log *slog.Logger, opts ...Option) (*App, error) {
	o := options{passwordCost: admin.DefaultCost}
	for _, opt := range opts {
		opt(&o)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	disk, err := openDiskGuard(cfg, log)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(store.Options{Dir: cfg.Storage.Dir, SyncWrites: cfg.Storage.SyncWrites, Logger: log.With("component", "badger")})
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, Store: st, Disk: disk, metrics: metrics.New(buildinfo.String()), backupToken: newToken(),
		mapped: resident.New(cfg.Storage.Dir, cfg.Storage.MappedLimit, log.With("component", "memory"))}
	a.mapped.Start(500 * time.Millisecond)
	fail := func(err error) (*App, error) { return nil, errors.Join(err, a.Close()) }

	if a.Catalog, err = catalog.Open(st, filepath.Join(cfg.Storage.Dir, "search-index"), cfg.Feed.Columns, log.With("component", "catalog")); err != nil {
		return fail(err)
	}
	a.Catalog.SetProductURLTemplate(cfg.Feed.ProductURLTemplate)
	// The projections of the event log: identity first, then one line each.
	a.Identity = identity.New(cfg.Tracking.SessionTimeout.Duration)
	var runner *project.Runner
	a.Tracker = track.New(st, track.Options{
		Sites:             channel.Sites{Own: hostsOf(cfg.Sites.AllowedOrigins), Excluded: cfg.Sites.ReferralExclusions},
		VisitFromReferrer: cfg.Tracking.VisitFromReferrer,
		MaxPendingEvents:  cfg.Ingest.MaxPendingEvents,
		MaxBatchEvents:    cfg.Ingest.MaxBatchEvents,
		MaxOrderValue:     float64(cfg.Tracking.MaxOrderValue),
		Committed: func(evs []*model.Event) {
			runner.Committed(evs)
			for _, ev := range evs {
				a.metrics.Ingested(ev.Via, 1)
			}
		},
		Indexed:      func() uint64 { return runner.Checkpoint() },
		IdentifyLink: func(u string) string { return identifyLink(a.Mail, u) },
		Now:          o.now,
		Logger:       log.With("component", "track"),
	})
	// the segments' preview index may take half the memory limit
	if a.Segments, err = segment.New(st, a.Tracker.Derived(), segment.Options{Logger: log.With("component", "segment"),
		IndexBudget: cfg.Storage.MemoryLimit / 2}); err != nil {
		return fail(err)
	}
	// the campaigns' "in segment" condition asks engine/segment (a
	// benchmark may pass its own with WithSegments)
	var segs campaign.Segments = a.Segments
	if o.segments != nil {
		segs = o.segments
	}
	if a.Campaigns, err = campaign.New(st, campaign.Options{Catalog: a.Catalog, Segments: segs,
		Sites: func() channel.Sites {
			return channel.Sites{Own: hostsOf(cfg.Sites.AllowedOrigins), Excluded: cfg.Sites.ReferralExclusions}
		}, Logger: log.With("component", "campaign")}); err != nil {
		return fail(err)
	}
	a.MailCampaigns = mailcampaign.New(mailcampaign.Options{Store: st, Segments: a.Segments, Products: a.Catalog,
		MaxPerDay: cfg.Email.MaxPerDay, Lookback: cfg.Tracking.Lookback.Duration, Logger: log.With("component", "mailcampaign")})
	if a.Automations, err = automation.New(automation.Options{Store: st, Segments: a.Segments, Products: a.Catalog,
		Cap: a.MailCampaigns, Now: o.now, Logger: log.With("component", "automation")}); err != nil {
		return fail(err)
	}
	id, others := projections(cfg, a.Identity, a.Catalog.Known, a.Campaigns.Known, a.Segments, a.Automations, o.extra)
	t0 := time.Now()
	if days, err := attribution.Resummarise(st, cfg.Tracking.Lookback.Duration); err != nil {
		return fail(fmt.Errorf("attribution: summing the orders for the lookback: %w", err))
	} else if days > 0 {
		log.Info("attribution: daily summaries rewritten for the default lookback", "lookback", cfg.Tracking.Lookback.Duration, "days", days, "took", time.Since(t0).Round(time.Millisecond))
	}
	// background work (a segment's build) yields while events arrive and
	// the processors have no time to spare
	var cpu resident.CPU
	yield := func() bool { return a.Tracker.Busy() && cpu.Saturated() }
	if runner, err = project.New(st, id, others, project.Options{Busy: a.Tracker.Busy, Yield: yield, Logger: log.With("component", "project")}); err != nil {
		return fail(err)
	}
	a.Pipeline = runner
	// what feed imports change (back in stock, cheaper) goes to the log
	// for the automations; facts a crash left waiting are recorded now
	if err := a.Catalog.RecordChangesWith(a.Tracker.Record); err != nil {
		log.Error("record the catalogue's changes", "err", err)
	}
	a.Segments.SetPoke(runner.Poke)
	a.Users = user.New(st, a.Tracker, runner, time.Now)
	for _, p := range exportParts(st, a.Tracker, a.Segments) {
		a.Users.AddExportPart(p)
	}
	if f := cfg.Feed; f.URL != "" {
		a.Syncer = a.Catalog.NewSyncer(catalog.SyncOptions{URL: f.URL, Interval: f.Interval.Duration,
			Timeout: f.Timeout.Duration, MaxBytes: f.MaxBytes, AllowPrivate: f.AllowPrivate})
	}
	assets, err := tracker.Build()
	if err != nil {
		return fail(err)
	}
	if !assets.Built {
		log.Warn("this binary was built without the WASM tracker (run make); the snippet still counts page views")
	}
	live, err := settings.Load(st, settings.Account{AllowedOrigins: cfg.Sites.AllowedOrigins,
		SessionTimeout: cfg.Tracking.SessionTimeout.Duration, VisitFromReferrer: cfg.Tracking.VisitFromReferrer})
	if err != nil {
		return fail(err)
	}
	live.OnChange(func(s settings.Account) {
		a.Tracker.SetVisitFromReferrer(s.VisitFromReferrer)
		a.Identity.SetSessionTimeout(s.SessionTimeout)
		a.Tracker.SetOwnHosts(hostsOf(s.AllowedOrigins))
	})
	a.Settings = live
	if a.Mail, err = mail.New(mail.Options{Store: st, Recorder: a.Tracker, Subscriptions: mail.Users{Store: st, Users: a.Users},
		Config: cfg.Email, PublicURL: cfg.HTTP.PublicURL, ShopHosts: func() []string { return hostsOf(live.Get().AllowedOrigins) },
		KeyFile: filepath.Join(cfg.Storage.Dir, "email.key"), HTTPClient: o.snsClient, CanWrite: disk.Check,
		Logger: log.With("component", "mail")}); err != nil {
		return fail(err)
	}
	w := web.New(cfg, web.Deps{Store: st, Tracker: a.Tracker, Catalog: a.Catalog, Syncer: a.Syncer, Users: a.Users,
		Segments: a.Segments, Pipeline: runner, Settings: live, Assets: assets, Campaigns: a.Campaigns, Preview: preview.New(0, time.Now),
		Metrics: a.metrics, Version: buildinfo.String(), BackupToken: a.backupToken},
		log.With("component", "web"), time.Now)
	a.web = w
	a.registerMetrics(a.metrics)
	a.MailCampaigns.SetMailer(a.Mail)
	a.Automations.SetMailer(a.Mail)
	w.WatchDisk(a.Disk)
	w.ServeMail(a.Mail)
	w.ServeMailCampaigns(a.MailCampaigns)
	w.ServeAutomations(a.Automations)
	a.Catalog.RefuseImportsWhen(a.Disk.Check)
	if cfg.Demo.Enabled {
		shop, err := demo.New(w.Snippet)
		if err != nil {
			return fail(err)
		}
		w.ServeDemo(shop.Handler())
		// the demo shop's products, so that search and recommendations
		// have something to show; a real feed import replaces them
		if gen, err := st.Catalogue(); err == nil && gen == 0 {
			if _, err := a.Catalog.Import(bytes.NewReader(demo.Feed()), "demo"); err != nil {
				return fail(err)
			}
		}
	}
	if a.Guard, err = admin.New(st, log.With("component", "admin"), time.Now, o.passwordCost); err != nil {
		return fail(err)
	}
	ui, err := web.NewAdminUI(a.Guard)
	if err != nil {
		return fail(err)
	}
	w.ServeAdmin(ui)
	a.public = newServer(a.metrics.Instrument("public", w.GuardDisk(w.Public(), false)), log)
	a.admin = newServer(a.metrics.Instrument("admin", w.GuardDisk(w.Admin(), true)), log)
	a.admin.RegisterOnShutdown(w.StopLive)
	return a, nil
}

// openDiskGuard makes the data directory and checks that Badger may be
// opened there: on a full or unwritable disk shoptrail stops with a clear
// message instead of crashing (at every restart) inside Badger.
func openDiskGuard(cfg config.Config, log *slog.Logger) (*store.DiskGuard, error) {
	if err := os.MkdirAll(cfg.Storage.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot start: data directory: %w", err)
	}
	disk := store.NewDiskGuard(store.DiskOptions{Dir: cfg.Storage.Dir, MinFree: cfg.Storage.MinFree, Logger: log.With("component", "disk")})
	if err := disk.CanOpen(); err != nil {
		return nil, fmt.Errorf("cannot start: %w", err)
	}
	return disk, nil
}

// identifyLink is the recipient of the message whose link carried the
// page URL's st_id token, or "".
func identifyLink(m *mail.Mailer, pageURL string) string {
	u, err := url.Parse(pageURL)
	if m == nil || err != nil {
		return ""
	}
	email, err := m.Identify(u.Query().Get("st_id"))
	if err != nil {
		return ""
	}
	return email
}

// hostsOf returns the host names of origins.
func hostsOf(origins []string) []string {
	var hosts []string
	for _, o := range origins {
		if u, err := url.Parse(o); err == nil && u.Hostname() != "" {
			hosts = append(hosts, u.Hostname())
		}
	}
	return hosts
}

func newServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second, // closes slowloris connections
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelDebug),
	}
}

// Listen binds both listeners; PublicURL and AdminURL are set after it.
func (a *App) Listen() error {
	var err error
	if a.publicLn, err = net.Listen("tcp", a.cfg.HTTP.Public); err != nil {
		return fmt.Errorf("public listener: %w", err)
	}
	if a.adminLn, err = net.Listen("tcp", a.cfg.HTTP.Admin); err != nil {
		a.publicLn.Close()
		return fmt.Errorf("admin listener: %w", err)
	}
	a.PublicURL = "http://" + a.publicLn.Addr().String()
	a.web.SetPublicURL(a.PublicURL)
	a.AdminURL = "http://" + a.adminLn.Addr().String()
	if a.cfg.HTTP.PublicURL == "" {
		a.Mail.SetDefaultPublicURL(a.PublicURL)
	}
	if err := a.writeControl(); err != nil {
		// shoptrail backup then cannot reach this instance; serving goes on
		a.log.Warn("shoptrail backup will not reach this instance", "err", err)
	}
	return nil
}

// Serve runs until ctx ends, then shuts down in order: stop accepting and
// let requests finish (within [http] shutdown_timeout; after it their
// contexts are cancelled and their connections closed), commit the accepted
// events, stop the background jobs and the projections, close the catalogue
// (after a running import) and the store. Call Listen first.
func (a *App) Serve(ctx context.Context) error {
	projCtx, stopProj := context.WithCancel(context.Background())
	var proj sync.WaitGroup
	proj.Go(func() { a.Pipeline.Run(projCtx) })
	// entries into and exits from segments, recorded in the log
	relayCtx, stopRelay := context.WithCancel(context.Background())
	var relay sync.WaitGroup
	relay.Go(func() { a.Segments.Run(relayCtx) })
	jobsCtx, stopJobs := context.WithCancel(context.Background())
	a.jobs.Go(func() { a.Disk.Run(jobsCtx) })
	if a.Syncer != nil {
		a.jobs.Go(func() { a.Syncer.Run(jobsCtx) })
	}
	// email: workers stop before the event log closes (a sent message's
	// email_send event goes to the log)
	mailCtx, stopMail := context.WithCancel(context.Background())
	var mailer sync.WaitGroup
	mailer.Go(func() { a.Mail.Run(mailCtx) })
	a.jobs.Go(func() { a.retentionLoop(jobsCtx) })
	a.jobs.Go(func() { a.backupLoop(jobsCtx) })
	// email campaigns queue into engine/mail: they stop first
	campCtx, stopCamps := context.WithCancel(context.Background())
	var camps sync.WaitGroup
	camps.Go(func() { a.MailCampaigns.Run(campCtx) })
	camps.Go(func() { a.Automations.Run(campCtx) })
	reqCtx, cancelRequests := context.WithCancel(context.Background())
	errc := make(chan error, 2)
	for _, s := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{a.public, a.publicLn}, {a.admin, a.adminLn}} {
		s.srv.BaseContext = func(net.Listener) context.Context { return reqCtx }
		go func() {
			if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	a.log.Info("shoptrail is running", "public", a.PublicURL, "admin", a.AdminURL, "data", a.cfg.Storage.Dir)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	a.log.Info("shutting down")
	timeout := a.cfg.HTTP.ShutdownTimeout.Duration
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, s := range []*http.Server{a.public, a.admin} {
		if e := s.Shutdown(sctx); e != nil {
			a.log.Warn("requests still running at the shutdown timeout: cancelling them", "err", e)
			cancelRequests()
			s.Close()
		}
	}
	cancelRequests()
	stopCamps()
	camps.Wait()
	stopRelay()
	relay.Wait()
	stopMail()
	if !waitFor(&mailer, timeout) {
		a.log.Warn("email workers still sending at the shutdown timeout")
	}
	a.removeControl()
	a.Tracker.Close()
	stopJobs()
	if !waitFor(&a.jobs, timeout) {
		a.log.Warn("background jobs still running at the shutdown timeout")
	}
	stopProj()
	proj.Wait()
	if e := a.Catalog.Close(); e != nil {
		err = errors.Join(err, e)
	}
	a.mapped.Stop()
	if e := a.Store.Close(); e != nil {
		err = errors.Join(err, e)
	}
	a.log.Info("stopped")
	return err
}

// waitFor waits for wg, at most d; it reports whether wg finished.
func waitFor(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// Close releases what New opened, for when Serve is never called.
func (a *App) Close() error {
	var errs []error
	if a.Tracker != nil {
		a.Tracker.Close()
	}
	if a.Catalog != nil {
		errs = append(errs, a.Catalog.Close())
	}
	a.mapped.Stop()
	return errors.Join(append(errs, a.Store.Close())...)
}
