package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/embedui"
	"github.com/shoptrail/shoptrail/engine/admin"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/report"
	"github.com/shoptrail/shoptrail/engine/track"
)

// sessionCookie is the admin session's cookie. The __Host- prefix makes
// browsers refuse it unless it is Secure, has Path=/ and no Domain: no
// other host or path (nor a plain-http page on another port of a shared
// name) can set or shadow it. Browsers accept Secure cookies from
// http://localhost and 127.0.0.1 (they are secure contexts); an admin host
// that is not loopback needs HTTPS in front ([http] admin_hosts).
const sessionCookie = "__Host-shoptrail_admin"

// adminUser is the context key of the signed-in admin's username.
type adminUser struct{}

// adminCSP allows nothing but this listener's own files: no inline script,
// no framing; images also from the web, for the feed's product photos
// (the Referrer-Policy keeps the admin's URLs from their hosts).
const adminCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https: http:; connect-src 'self'; frame-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// AdminUI is what the admin listener needs besides the Server.
type AdminUI struct {
	Guard *admin.Guard
	pages map[string]*template.Template
}

// NewAdminUI parses the admin pages.
func NewAdminUI(g *admin.Guard) (*AdminUI, error) {
	pages, err := embedui.Parse(template.FuncMap{"money": model.FormatMinor, "percent": percent})
	if err != nil {
		return nil, err
	}
	return &AdminUI{Guard: g, pages: pages}, nil
}

// percent writes part of whole as a whole percentage ("45 %").
func percent(part, whole int64) string {
	if whole <= 0 {
		return ""
	}
	return strconv.FormatInt(min(part*100/whole, 100), 10) + " %"
}

// ServeAdmin turns on the admin UI on the admin listener.
func (s *Server) ServeAdmin(ui *AdminUI) { s.ui = ui }

// adminRoutes is the admin listener's route table. Pages that need a
// signed-in admin say so with requireAdmin.
func (s *Server) adminRoutes() []route {
	r := []route{{"GET", "/healthz", "", s.adminHealth}, {"GET", "/readyz", "", s.adminReady}}
	if s.backupToken != "" {
		r = append(r, route{"GET", "/backup", "", s.backup})
	}
	if s.ui == nil {
		return r
	}
	return append(r,
		route{"GET", "/setup", "", s.setupPage},
		route{"POST", "/setup", "", s.setup},
		route{"GET", "/login", "", s.loginPage},
		route{"POST", "/login", "", s.login},
		route{"POST", "/logout", "", s.logout},
		route{"GET", "/{$}", "", s.requireAdmin(s.dashboard)},
		route{"GET", "/users", "", s.requireAdmin(s.users)},
		route{"GET", "/users/{email}", "", s.requireAdmin(s.userPage)},
		route{"GET", "/users/{email}/export", "", s.requireAdmin(s.exportPage)},
		route{"POST", "/users/{email}/erase", "", s.requireAdmin(s.erasePage)},
		route{"GET", "/products", "", s.requireAdmin(s.products)},
		route{"GET", "/products/{id...}", "", s.requireAdmin(s.productPage)},
		route{"POST", "/products/upload", "", s.requireAdmin(s.uploadFeed)},
		route{"POST", "/products/sync", "", s.requireAdmin(s.syncFeed)},
		route{"GET", "/settings", "", s.requireAdmin(s.settingsPage)},
		route{"POST", "/settings", "", s.requireAdmin(s.saveSettings)},
		route{"POST", "/settings/keys", "", s.requireAdmin(s.createKey)},
		route{"POST", "/settings/keys/{id}/revoke", "", s.requireAdmin(s.revokeKey)},
		route{"GET", "/install", "", s.requireAdmin(s.install)},
		route{"GET", "/reports/attribution", "", s.requireAdmin(s.attributionPage)},
		route{"GET", "/reports/attribution/orders", "", s.requireAdmin(s.attributionOrdersPage)},
		route{"GET", "/reports/attribution/export", "", s.requireAdmin(s.attributionReport)},
		route{"GET", "/live", "", s.requireAdmin(s.liveEvents)},
		route{"GET", "/email", "", s.requireAdmin(s.emailPage)},
		route{"POST", "/email/resume", "", s.requireAdmin(s.resumeEmail)},
		route{"POST", "/email/messages/{id}/retry", "", s.requireAdmin(s.retryEmail)},
		route{"POST", "/email/suppressions/{email}/remove", "", s.requireAdmin(s.removeSuppression)},
		route{"GET", "/settings/email", "", s.requireAdmin(s.emailSettingsPage)},
		route{"POST", "/settings/email", "", s.requireAdmin(s.saveEmailSettings)},
		route{"POST", "/settings/email/test", "", s.requireAdmin(s.testEmail)},
		route{"GET", "/campaigns", "", s.requireAdmin(s.campaignsPage)},
		route{"GET", "/campaigns/new", "", s.requireAdmin(s.campaignEditor)},
		route{"GET", "/campaigns/{id}", "", s.requireAdmin(s.campaignEditor)},
		route{"GET", "/campaigns/{id}/report", "", s.requireAdmin(s.campaignReportPage)},
		route{"POST", "/campaigns/api", "", s.requireAdmin(s.adminSaveCampaign)},
		route{"PUT", "/campaigns/api/{id}", "", s.requireAdmin(s.adminSaveCampaign)},
		route{"POST", "/campaigns/api/{id}/status", "", s.requireAdmin(s.adminCampaignStatus)},
		route{"POST", "/campaigns/preview", "", s.requireAdmin(s.previewToken)},
		route{"POST", "/campaigns/preview/{token}", "", s.requireAdmin(s.publishDraft)},
		route{"GET", "/email/campaigns", "", s.requireAdmin(s.emailCampaignsPage)},
		route{"GET", "/email/campaigns/new", "", s.requireAdmin(s.newEmailCampaignPage)},
		route{"POST", "/email/campaigns", "", s.requireAdmin(s.saveEmailCampaignForm)},
		route{"GET", "/email/campaigns/{id}", "", s.requireAdmin(s.emailCampaignPage)},
		route{"POST", "/email/campaigns/{id}", "", s.requireAdmin(s.saveEmailCampaignForm)},
		route{"GET", "/email/campaigns/{id}/preview", "", s.requireAdmin(s.emailCampaignPreview)},
		route{"GET", "/email/campaigns/{id}/report", "", s.requireAdmin(s.emailCampaignReportPage)},
		route{"POST", "/email/campaigns/{id}/test", "", s.requireAdmin(s.testEmailCampaignForm)},
		route{"POST", "/email/campaigns/{id}/cancel", "", s.requireAdmin(s.cancelEmailCampaignForm)},
		route{"POST", "/email/campaigns/{id}/delete", "", s.requireAdmin(s.deleteEmailCampaignForm)},
		route{"GET", "/email/automations", "", s.requireAdmin(s.automationsPage)},
		route{"GET", "/email/templates", "", s.requireAdmin(s.emailTemplatesPage)},
		route{"GET", "/email/templates/new", "", s.requireAdmin(s.newEmailTemplatePage)},
		route{"POST", "/email/templates", "", s.requireAdmin(s.saveEmailTemplateForm)},
		route{"GET", "/email/templates/{id}", "", s.requireAdmin(s.emailTemplatePage)},
		route{"POST", "/email/templates/{id}", "", s.requireAdmin(s.saveEmailTemplateForm)},
		route{"GET", "/email/templates/{id}/preview", "", s.requireAdmin(s.emailTemplatePreview)},
		route{"POST", "/email/templates/{id}/test", "", s.requireAdmin(s.testEmailTemplateForm)},
		route{"POST", "/email/templates/{id}/delete", "", s.requireAdmin(s.deleteEmailTemplateForm)},
		route{"POST", "/email/automations/{name}", "", s.requireAdmin(s.saveAutomationForm)},
		route{"GET", "/segments", "", s.requireAdmin(s.segmentsPage)},
		route{"GET", "/segments/new", "", s.requireAdmin(s.newSegmentPage)},
		route{"POST", "/segments", "", s.requireAdmin(s.createSegmentForm)},
		route{"POST", "/segments/preview", "", s.requireAdmin(s.previewSegment)},
		route{"GET", "/segments/{id}", "", s.requireAdmin(s.segmentPage)},
		route{"GET", "/segments/{id}/edit", "", s.requireAdmin(s.editSegmentPage)},
		route{"POST", "/segments/{id}", "", s.requireAdmin(s.updateSegmentForm)},
		route{"POST", "/segments/{id}/delete", "", s.requireAdmin(s.deleteSegmentForm)},
		route{"GET", "/segments/{id}/export", "", s.requireAdmin(s.exportSegment)},
	)
}

// Admin is the admin listener's handler: a Host allow-list against DNS
// rebinding, strict security headers, and cross-origin protection (CSRF)
// for every state-changing request.
func (s *Server) Admin() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.adminRoutes() {
		mux.HandleFunc(rt.method+" "+rt.path, s.handle(rt.h))
	}
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(embedui.Static())))
	if s.metrics != nil {
		// Prometheus: loopback without a login, elsewhere with [metrics] token
		mux.Handle("GET /metrics", s.metrics.Handler(s.cfg.Metrics.Token))
	}
	mux.HandleFunc("/", s.handle(notFound))
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusForbidden, errorBody{errorf(http.StatusForbidden, "cross_origin", "Origin", "cross-origin requests may not change anything")})
	}))
	protected := csrf.Handler(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.adminHostAllowed(r.Host) {
			writeJSON(w, http.StatusMisdirectedRequest, errorBody{errorf(http.StatusMisdirectedRequest, "wrong_host", "Host",
				"the admin UI answers only to the hosts in [http] admin_hosts")})
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", adminCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		protected.ServeHTTP(w, r)
	})
}

// adminHostAllowed accepts loopback names and [http] admin_hosts.
func (s *Server) adminHostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(strings.ToLower(host), "[]")
	if host == "localhost" || slices.Contains(s.cfg.HTTP.AdminHosts, host) {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// requireAdmin lets signed-in admins through and sends others to sign in
// (or, before setup, to create the account).
func (s *Server) requireAdmin(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.ui.Guard.NeedsSetup() {
			http.Redirect(w, r, "/setup", http.StatusSeeOther)
			return nil
		}
		c, _ := r.Cookie(sessionCookie)
		var id string
		if c != nil {
			id = c.Value
		}
		sess, err := s.ui.Guard.Check(id)
		if errors.Is(err, admin.ErrNoSession) {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return nil
		}
		if err != nil {
			return err
		}
		return next(w, r.WithContext(context.WithValue(r.Context(), adminUser{}, sess.Username)))
	}
}

func (s *Server) render(w http.ResponseWriter, status int, page string, data map[string]any) error {
	if _, ok := data["Version"]; !ok {
		data["Version"] = s.version // the footer
	}
	var buf bytes.Buffer
	if err := s.ui.pages[page].Execute(&buf, data); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

func (s *Server) setupPage(w http.ResponseWriter, r *http.Request) error {
	if !s.ui.Guard.NeedsSetup() {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	return s.render(w, http.StatusOK, "setup", map[string]any{"Token": r.URL.Query().Get("token"), "MinPassword": admin.MinPassword})
}

func (s *Server) setup(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	token, user, pass := r.PostFormValue("token"), strings.TrimSpace(r.PostFormValue("username")), r.PostFormValue("password")
	err := s.ui.Guard.Setup(token, user, pass)
	switch {
	case errors.Is(err, admin.ErrSetupDone):
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	case errors.Is(err, admin.ErrBadToken), errors.Is(err, admin.ErrWeakPassword), errors.Is(err, admin.ErrBadUsername), err != nil && strings.HasPrefix(err.Error(), "admin:"):
		return s.render(w, http.StatusBadRequest, "setup", map[string]any{"Token": token, "Username": user, "MinPassword": admin.MinPassword,
			"Error": strings.TrimPrefix(err.Error(), "admin: ")})
	case err != nil:
		return err
	}
	s.log.Info("admin account created", "username", user)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) error {
	if s.ui.Guard.NeedsSetup() {
		http.Redirect(w, r, "/setup", http.StatusSeeOther)
		return nil
	}
	return s.render(w, http.StatusOK, "login", map[string]any{})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	user, pass := strings.TrimSpace(r.PostFormValue("username")), r.PostFormValue("password")
	client, _, _ := net.SplitHostPort(r.RemoteAddr)
	id, err := s.ui.Guard.Login(user, pass, client)
	switch {
	case errors.Is(err, admin.ErrThrottled):
		w.Header().Set("Retry-After", "900")
		return s.render(w, http.StatusTooManyRequests, "login", map[string]any{"Username": user, "Error": "Too many failed sign-ins. Wait 15 minutes."})
	case errors.Is(err, admin.ErrBadLogin):
		return s.render(w, http.StatusUnauthorized, "login", map[string]any{"Username": user, "Error": "Wrong username or password."})
	case err != nil:
		return err
	}
	// a new id at every sign-in: a session id planted before cannot be used
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: true,
		SameSite: http.SameSiteStrictMode, MaxAge: 24 * 3600})
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.ui.Guard.Logout(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) error {
	last, err := s.st.LastSeq()
	if err != nil {
		return err
	}
	evs, err := s.tracker.Events(track.Query{Limit: 20})
	if err != nil {
		return err
	}
	dash, err := report.Summarise(s.st, s.now())
	if err != nil {
		return err
	}
	data := map[string]any{"EventsStored": last, "Events": evs, "Products": s.catalog.Count(), "Periods": dash.Periods,
		"Chart": barChart(dash.Days), "Projections": s.pipeline.Status(), "ConfirmedOnly": dash.ConfirmedOnly}
	if rep, err := s.catalog.Report(); err == nil {
		data["FeedImported"] = rep.Finished
	}
	return s.render(w, http.StatusOK, "dashboard", s.page(r, data))
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// bar is one bar of the dashboard's sessions chart, in SVG units.
type bar struct {
	X, Y, W, H float64
	Title      string
	Label      string  // the date under every seventh bar
	Anchor     string  // text-anchor of the label
	LabelX     float64 // where the label starts (or ends)
}

// barChart lays out sessions per day as bars 600×120 units wide and high.
func barChart(days []report.Day) []bar {
	var most int64 = 1
	for _, d := range days {
		most = max(most, d.Sessions)
	}
	w := 600.0 / float64(len(days))
	out := make([]bar, len(days))
	for i, d := range days {
		h := 110 * float64(d.Sessions) / float64(most)
		out[i] = bar{X: float64(i)*w + 1, Y: 112 - h, W: w - 2, H: h,
			Title: fmt.Sprintf("%s: %d sessions, %d orders", d.Date.Format("Mon 2 Jan"), d.Sessions, d.Orders)}
		if (len(days)-1-i)%7 == 0 {
			out[i].Label, out[i].Anchor, out[i].LabelX = d.Date.Format("2 Jan"), "start", out[i].X
			if i == len(days)-1 {
				out[i].LabelX, out[i].Anchor = 600, "end"
			}
		}
	}
	return out
}

// adminHealth is the admin listener's /healthz: "ok", or "degraded" while
// a projection fails, and where each projection is (kept off the public listener: it tells how much
// the shop sells).
func (s *Server) adminHealth(w http.ResponseWriter, r *http.Request) error {
	type projection struct {
		State      string `json:"state"`
		Version    uint32 `json:"version"`
		Checkpoint uint64 `json:"checkpoint"`
		Behind     uint64 `json:"behind"`
		Error      string `json:"error,omitempty"`
	}
	out := map[string]projection{}
	status := "ok"
	for _, p := range s.pipeline.Status() {
		out[p.Name] = projection{string(p.State), p.Version, p.Checkpoint, p.Behind, p.Error}
		if p.Error != "" {
			status = "degraded" // ingestion goes on; a projection is behind
		}
	}
	body := map[string]any{"status": status, "projections": out, "version": s.version}
	if h, err := s.st.RetentionHorizon(); err == nil && h > 0 {
		body["retention_horizon"] = h // events up to this seq may have been dropped
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// StopLive ends the live streams, so that a shutdown need not wait for them.
func (s *Server) StopLive() { s.stopLive.Do(func() { close(s.liveDone) }) }

// liveEvents is GET /live: the events as they are stored, as server-sent
// events, for the dashboard.
func (s *Server) liveEvents(w http.ResponseWriter, r *http.Request) error {
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	// subscribe first: once the browser sees the stream open, no event
	// stored afterwards is missed
	evs, cancel := s.tracker.Live()
	defer cancel()
	w.WriteHeader(http.StatusOK)
	rc.Flush()
	heartbeat := time.NewTicker(25 * time.Second)
	defer heartbeat.Stop()
	// end each stream after a while; EventSource reconnects, and a
	// connection a browser forgot does not stay forever
	end := time.After(10 * time.Minute)
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-s.liveDone:
			return nil
		case <-end:
			return nil
		case <-heartbeat.C:
			io.WriteString(w, ": keep-alive\n\n")
		case batch := <-evs:
			for _, ev := range batch {
				row := map[string]string{"received": ev.ReceivedAt.Local().Format("2 Jan 2006 15:04:05"), "type": ev.Type,
					"user": ev.Email, "url": ev.URL, "referrer": ev.Referrer}
				if ev.Traffic != nil {
					row["channel"] = ev.Traffic.Channel
				}
				b, _ := json.Marshal(row)
				fmt.Fprintf(w, "event: ev\ndata: %s\n\n", b)
			}
		}
		if err := rc.Flush(); err != nil {
			return nil // the viewer left
		}
	}
}
