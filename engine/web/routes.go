package web

import (
	_ "embed"
	"net/http"
	"strings"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/track"
	"github.com/shoptrail/shoptrail/engine/user"
	tracker "github.com/shoptrail/shoptrail/tracker-wasm"
)

// route is one entry of a listener's route table.
type route struct {
	method, path string
	scope        string // the API key scope it needs; "" for none
	h            handlerFunc
}

// publicRoutes is the route table of the public listener: what shoppers'
// browsers and the shop's servers call. openapi.json documents every
// route under /api/, /v1/, /t and /healthz; a test keeps the two equal.
func (s *Server) publicRoutes() []route {
	return []route{
		// browsers: CORS for the allowed origins, text/plain bodies (no preflight)
		{"POST", "/t", "", s.allowOrigin(s.admit(s.collect))},
		{"OPTIONS", "/t", "", s.allowOrigin(s.preflight)},
		// servers, with an API key that has the scope
		{"POST", "/api/v1/events", model.ScopeEventsWrite, s.admit(s.ingestAPI)},
		{"GET", "/api/v1/events", model.ScopeEventsRead, s.listEvents},
		{"GET", "/api/v1/user/{email}", model.ScopeUsersRead, s.getUser},
		{"POST", "/api/v1/user", model.ScopeUsersWrite, s.createUser},
		{"PUT", "/api/v1/user/{email}", model.ScopeUsersWrite, s.putUser(user.Replace)},
		{"PATCH", "/api/v1/user/{email}", model.ScopeUsersWrite, s.putUser(user.Change)},
		{"DELETE", "/api/v1/user/{email}", model.ScopeUsersWrite, s.deleteUser},
		{"GET", "/api/v1/user/{email}/events", model.ScopeUsersRead, s.userEvents},
		{"GET", "/api/v1/user/{email}/export", model.ScopeUsersRead, s.exportUser},
		{"POST", "/api/v1/users/import", model.ScopeUsersWrite, s.importUsers},
		{"GET", "/api/v1/reports/attribution", model.ScopeReports, s.attributionReport},
		{"GET", "/api/v1/reports/attribution/orders", model.ScopeReports, s.attributionOrders},
		{"GET", "/api/v1/reports/attribution/paths", model.ScopeReports, s.attributionPaths},
		{"GET", "/api/v1/segments", model.ScopeSegmentsR, s.listSegments},
		{"POST", "/api/v1/segments", model.ScopeSegmentsW, s.createSegment},
		{"POST", "/api/v1/segments/preview", model.ScopeSegmentsR, s.previewSegment},
		{"GET", "/api/v1/segments/{id}", model.ScopeSegmentsR, s.getSegment},
		{"PUT", "/api/v1/segments/{id}", model.ScopeSegmentsW, s.updateSegment},
		{"DELETE", "/api/v1/segments/{id}", model.ScopeSegmentsW, s.deleteSegment},
		{"GET", "/api/v1/segments/{id}/members", model.ScopeSegmentsR, s.segmentMembers},
		{"POST", "/api/v1/feed/import", model.ScopeFeedWrite, s.importFeed},
		{"GET", "/api/v1/feed/jobs/{id}", model.ScopeFeedWrite, s.feedJob},
		{"GET", "/api/v1/feed/report", model.ScopeProducts, s.feedReport},
		{"GET", "/api/v1/feed/unknown-products", model.ScopeProducts, s.unknownProducts},
		{"GET", "/api/v1/products/search", model.ScopeProducts, s.searchProducts},
		{"GET", "/api/v1/products/{id}", model.ScopeProducts, s.getProduct},
		{"GET", "/api/v1/products/{id}/recommendations", model.ScopeProducts, s.recommendations},
		{"POST", "/api/v1/emails", model.ScopeEmailSend, s.sendEmail},
		{"GET", "/api/v1/emails/{id}", model.ScopeEmailSend, s.getEmail},
		{"GET", "/api/v1/suppressions", model.ScopeEmailSend, s.listSuppressions},
		{"DELETE", "/api/v1/suppressions/{email}", model.ScopeEmailSend, s.deleteSuppression},
		// email campaigns and automations (mailcampaigns.go, automations.go)
		{"GET", "/api/v1/email-campaigns", model.ScopeEmailWrite, s.listMailCampaigns},
		{"POST", "/api/v1/email-campaigns", model.ScopeEmailWrite, s.createMailCampaign},
		{"POST", "/api/v1/email-campaigns/preview", model.ScopeEmailWrite, s.previewMailCampaign},
		{"GET", "/api/v1/email-campaigns/{id}", model.ScopeEmailWrite, s.getMailCampaign},
		{"PUT", "/api/v1/email-campaigns/{id}", model.ScopeEmailWrite, s.updateMailCampaign},
		{"DELETE", "/api/v1/email-campaigns/{id}", model.ScopeEmailWrite, s.deleteMailCampaign},
		{"POST", "/api/v1/email-campaigns/{id}/send", model.ScopeEmailWrite, s.sendMailCampaign},
		{"POST", "/api/v1/email-campaigns/{id}/cancel", model.ScopeEmailWrite, s.cancelMailCampaign},
		{"POST", "/api/v1/email-campaigns/{id}/test", model.ScopeEmailWrite, s.testMailCampaign},
		{"GET", "/api/v1/email-campaigns/{id}/report", model.ScopeEmailWrite, s.mailCampaignReport},
		{"GET", "/api/v1/email-templates", model.ScopeEmailRead, s.listMailTemplates},
		{"POST", "/api/v1/email-templates", model.ScopeEmailWrite, s.createMailTemplate},
		{"GET", "/api/v1/email-templates/{id}", model.ScopeEmailRead, s.getMailTemplate},
		{"PUT", "/api/v1/email-templates/{id}", model.ScopeEmailWrite, s.updateMailTemplate},
		{"DELETE", "/api/v1/email-templates/{id}", model.ScopeEmailWrite, s.deleteMailTemplate},
		{"GET", "/api/v1/automations", model.ScopeEmailWrite, s.listAutomations},
		{"GET", "/api/v1/automations/{name}", model.ScopeEmailWrite, s.getAutomation},
		{"PUT", "/api/v1/automations/{name}", model.ScopeEmailWrite, s.putAutomation},
		// servers speaking Segment's HTTP Tracking API, the write key (an
		// API key) as the Basic auth user name (segment.go)
		{"POST", "/v1/batch", model.ScopeEventsWrite, s.segmentAPI(track.SegmentBatch)},
		{"POST", "/v1/track", model.ScopeEventsWrite, s.segmentAPI(track.SegmentTrack)},
		{"POST", "/v1/identify", model.ScopeEventsWrite, s.segmentAPI(track.SegmentIdentify)},
		{"POST", "/v1/page", model.ScopeEventsWrite, s.segmentAPI(track.SegmentPage)},
		{"POST", "/v1/screen", model.ScopeEventsWrite, s.segmentAPI(track.SegmentScreen)},
		{"POST", "/v1/group", model.ScopeEventsWrite, s.segmentAPI(track.SegmentGroup)},
		{"POST", "/v1/alias", model.ScopeEventsWrite, s.segmentAPI(track.SegmentAlias)},
		{"POST", "/api/v1/campaigns", model.ScopeCampaignsWrite, s.createCampaign},
		{"GET", "/api/v1/campaigns", model.ScopeCampaignsRead, s.listCampaigns},
		{"GET", "/api/v1/campaigns/{id}", model.ScopeCampaignsRead, s.getCampaign},
		{"PUT", "/api/v1/campaigns/{id}", model.ScopeCampaignsWrite, s.putCampaign},
		{"DELETE", "/api/v1/campaigns/{id}", model.ScopeCampaignsWrite, s.deleteCampaign},
		{"POST", "/api/v1/campaigns/{id}/status", model.ScopeCampaignsWrite, s.campaignStatus},
		{"GET", "/api/v1/campaigns/{id}/report", model.ScopeCampaignsRead, s.campaignReport},
		// browsers: the campaigns' decision, renderer and live preview
		{"GET", "/c/decide", "", s.allowOrigin(s.decide)},
		{"GET", "/c/preview", "", s.previewSocket},
		{"GET", "/c/{file}", "", s.serveRenderer},
		// anyone
		{"GET", "/api/v1/openapi.json", "", s.openAPI},
		// Amazon SNS (each message signature-verified) and the links in emails
		{"POST", "/webhooks/ses", "", s.sesWebhook},
		{"GET", "/r/{link}", "", s.clickRedirect},
		{"GET", "/o/{token}", "", s.openPixel},
		{"GET", "/u/{token}", "", s.unsubscribePage},
		{"POST", "/u/{token}", "", s.unsubscribe},
		{"GET", "/healthz", "", s.health},
		{"GET", "/readyz", "", s.ready},
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
			// the shop's servers, with an API key: limited by key
			// checks (requireKey counts failures per client), not by
			// address, since one server may send for many shoppers
			h = s.requireKey(rt.scope, h)
		} else {
			h = s.limit(h)
		}
		if ingestRoutes[rt.method+" "+rt.path] {
			h = s.countRejected(h)
		}
		mux.HandleFunc(rt.method+" "+rt.path, s.handle(h))
	}
	if s.demo != nil {
		serve := func(h http.Handler) http.HandlerFunc {
			return s.handle(s.limit(func(w http.ResponseWriter, r *http.Request) error {
				h.ServeHTTP(w, r)
				return nil
			}))
		}
		mux.Handle("GET /demo/", serve(s.demo))
		mux.Handle("GET /{$}", serve(http.RedirectHandler("/demo/", http.StatusFound)))
	}
	mux.HandleFunc("/", s.handle(s.limit(func(w http.ResponseWriter, r *http.Request) error {
		return notFoundOrMethod(mux, w, r)
	})))
	return mux
}

// methods are those notFoundOrMethod tries.
var methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// notFoundOrMethod answers a request that only the catch-all "/" matched:
// 405 with Allow when the path has routes for other methods (the catch-all
// keeps ServeMux from doing it), 404 otherwise.
func notFoundOrMethod(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) error {
	var allow []string
	for _, m := range methods {
		if m == r.Method {
			continue
		}
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return errorf(http.StatusMethodNotAllowed, "method_not_allowed", "",
			r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+strings.Join(allow, ", "))
	}
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

func notFound(w http.ResponseWriter, r *http.Request) error {
	return errorf(http.StatusNotFound, "not_found", "", "no such endpoint: "+r.Method+" "+r.URL.Path)
}
