package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/apikey"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/web"
)

func getBody(t *testing.T, u string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHealthAndReadinessOnBothListeners(t *testing.T) {
	a := enginetest.NewApp(t)
	for _, tt := range []struct {
		url    string
		status int
		want   []string
		not    []string
	}{
		{a.PublicURL + "/healthz", 200, []string{`"status":"ok"`}, []string{"version", "projections"}},
		{a.PublicURL + "/readyz", 200, []string{`"status":"ready"`}, []string{"version"}},
		{a.AdminURL + "/healthz", 200, []string{`"status":"ok"`, `"projections":{`, `"identity":{`, `"version":"`}, nil},
		{a.AdminURL + "/readyz", 200, []string{`"status":"ready"`, `"version":"`}, nil},
	} {
		st, body := getBody(t, tt.url)
		if st != tt.status {
			t.Errorf("%s: %d %s", tt.url, st, body)
		}
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: %s lacks %s", tt.url, body, w)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(body, n) {
				t.Errorf("%s: %s tells %s to the public", tt.url, body, n)
			}
		}
	}
}

// behind is a pipeline whose identity projection lags.
type behind struct{ n uint64 }

func (b behind) Status() []project.Status {
	return []project.Status{{Name: "identity", State: project.Live, Behind: b.n}, {Name: "rollups", State: project.Backfilling, Behind: 5_000_000}}
}

func TestNotReadyWhileProjectionsLag(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tt := range []struct {
		lag    uint64
		status int
		want   string
	}{
		{10, 200, `"status":"ready"`}, // a backfilling projection does not count
		{1_000_000, 503, `"reasons":["projections"]`},
	} {
		s := web.New(config.Default(), web.Deps{Store: st, Pipeline: behind{tt.lag}}, enginetest.Logger(t), time.Now)
		for _, h := range []http.Handler{s.Public(), s.Admin()} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "http://127.0.0.1/readyz", nil)
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("lag %d: %d %s", tt.lag, rec.Code, rec.Body)
			}
			if rec.Code == 503 && rec.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		}
	}
}

func TestMetrics(t *testing.T) {
	const token = "0123456789abcdef-metrics"
	a := enginetest.NewApp(t, func(c *config.Config) { c.Metrics.Token = token })
	ev := map[string]any{"id": "m1", "type": "page_view", "anonymous_id": "a1", "session_id": "s1", "url": "https://shop.example/"}
	a.Do(t, "POST", "/api/v1/events", map[string]any{"events": []any{ev}}, nil, a.Auth()...)
	a.Do(t, "POST", "/api/v1/events", map[string]any{"events": []any{ev}}, nil, a.Auth()...) // a duplicate
	a.Do(t, "POST", "/api/v1/events", map[string]any{"events": []any{map[string]any{"type": "page_view", "url": "https://shop.example/"}}}, nil, a.Auth()...)
	a.Do(t, "POST", "/api/v1/events", "{not json", nil, a.Auth()...)
	for _, e := range []string{"one@example.com", "two@example.com"} {
		a.Do(t, "GET", "/api/v1/user/"+url.PathEscape(e), nil, nil, a.Auth()...)
	}
	a.Do(t, "GET", "/no/such/page/x1", nil, nil)
	a.Fold(t)

	st, body := getBody(t, a.AdminURL+"/metrics")
	if st != 200 {
		t.Fatalf("/metrics from loopback: %d %s", st, body)
	}
	for _, w := range []string{
		`shoptrail_events_ingested_total{via="api"} 1`,
		`shoptrail_events_rejected_total{reason="duplicate"} 1`,
		`shoptrail_events_rejected_total{reason="invalid_json"} 1`,
		`shoptrail_events_rejected_total{reason="required"} 1`,
		`shoptrail_ingest_pending_events 0`,
		`shoptrail_projection_lag_events{projection="identity"} 0`,
		`shoptrail_projection_failed{projection="attribution"} 0`,
		`shoptrail_badger_lsm_bytes `,
		`shoptrail_badger_vlog_bytes `,
		`shoptrail_mapped_resident_bytes `,
		`shoptrail_mapped_reclaimed_bytes `,
		`shoptrail_feed_last_import_timestamp `,
		`shoptrail_http_request_duration_seconds_bucket{code="2xx",listener="public",route="POST /api/v1/events",le="0.1"}`,
		`shoptrail_http_request_duration_seconds_count{code="4xx",listener="public",route="GET /api/v1/user/{email}"} 2`,
		`shoptrail_build_info{version="`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics lacks %s", w)
		}
	}
	// bounded cardinality: no raw path or email becomes a label
	for _, n := range []string{"one@example.com", "/no/such/page"} {
		if strings.Contains(body, n) {
			t.Errorf("/metrics has %q in a label", n)
		}
	}
	// through a proxy, or from elsewhere: the token
	for _, tt := range []struct {
		name   string
		header []string
		status int
	}{
		{"forwarded, no token", []string{"X-Forwarded-For", "203.0.113.9"}, 401},
		{"forwarded, wrong token", []string{"X-Forwarded-For", "203.0.113.9", "Authorization", "Bearer wrong-token-wrong-token"}, 401},
		{"forwarded, an API key", []string{"X-Forwarded-For", "203.0.113.9", "Authorization", "Bearer " + a.Key}, 401},
		{"forwarded, the token", []string{"X-Forwarded-For", "203.0.113.9", "Authorization", "Bearer " + token}, 200},
		{"Forwarded header, no token", []string{"Forwarded", "for=203.0.113.9"}, 401},
	} {
		if st, body := getBody(t, a.AdminURL+"/metrics", tt.header...); st != tt.status {
			t.Errorf("%s: %d %.200s", tt.name, st, body)
		}
	}
	// not on the public listener
	if st, _ := getBody(t, a.PublicURL+"/metrics"); st != 404 {
		t.Errorf("public /metrics: %d", st)
	}
}

func TestMetricsWithoutTokenRefuseOthers(t *testing.T) {
	a := enginetest.NewApp(t)
	st, body := getBody(t, a.AdminURL+"/metrics", "X-Forwarded-For", "203.0.113.9", "Authorization", "Bearer anything-at-all-here")
	if st != 401 || !strings.Contains(body, "loopback clients only") {
		t.Errorf("%d %s", st, body)
	}
}

// export is the user export's document.
type export struct {
	Email       string
	ExportedAt  time.Time
	User        map[string]any
	Events      []model.Event
	Sessions    []model.Session
	Touchpoints []model.Touchpoint
	Attribution []map[string]any
}

func seedShopper(t *testing.T, a *enginetest.App, email string, n int) {
	t.Helper()
	if st := a.Do(t, "POST", "/api/v1/user", map[string]any{"email": email, "city": "Lyon", "isSubscribed": true}, nil, a.Auth()...); st != 201 {
		t.Fatalf("create %s: %d", email, st)
	}
	anon := "anon-" + email
	evs := []any{map[string]any{"id": "pv-" + email, "type": "page_view", "anonymous_id": anon, "session_id": "s-" + email,
		"url": "https://shop.example/?utm_source=news&utm_medium=email", "referrer": "https://mail.example/"}}
	for i := range n {
		evs = append(evs, map[string]any{"id": fmt.Sprint("e-", email, i), "type": "product_view", "anonymous_id": anon, "session_id": "s-" + email,
			"email": email, "url": "https://shop.example/p", "props": map[string]any{"product_id": "1001"}})
	}
	evs = append(evs, map[string]any{"id": "o-" + email, "type": "order", "anonymous_id": anon, "session_id": "s-" + email, "email": email,
		"url": "https://shop.example/thanks", "props": map[string]any{"order_id": "O-" + email, "value": 42.5, "currency": "EUR"}})
	if st := a.Do(t, "POST", "/api/v1/events", map[string]any{"events": evs}, nil, a.Auth()...); st != 200 {
		t.Fatalf("events of %s: %d", email, st)
	}
}

func TestUserExport(t *testing.T) {
	a := enginetest.NewApp(t)
	seedShopper(t, a, "jane@example.com", 30)
	seedShopper(t, a, "other@example.com", 3)
	a.Fold(t)
	var doc export
	if st := a.Do(t, "GET", "/api/v1/user/JANE@example.com/export", nil, &doc, a.Auth()...); st != 200 {
		t.Fatalf("export: %d", st)
	}
	if doc.Email != "jane@example.com" || doc.User["city"] != "Lyon" || doc.User["isSubscribed"] != true || doc.ExportedAt.IsZero() {
		t.Errorf("head: %+v", doc)
	}
	// 32 tracked events (and the visit_from_referrer the page view made;
	// the user_update and subscribe events of the Users API come via server)
	tracked := 0
	for _, ev := range doc.Events {
		if ev.Email != "jane@example.com" && ev.AnonymousID != "anon-jane@example.com" {
			t.Errorf("another person's event in the export: %+v", ev)
		}
		if ev.Via == model.ViaAPI && ev.DerivedFrom == "" {
			tracked++
		}
	}
	if tracked != 32 {
		t.Errorf("%d tracked events exported, want 32", tracked)
	}
	if len(doc.Sessions) != 1 || len(doc.Touchpoints) != 1 || doc.Touchpoints[0].Channel != "Email" {
		t.Errorf("sessions %+v touchpoints %+v", doc.Sessions, doc.Touchpoints)
	}
	if len(doc.Attribution) != 1 || doc.Attribution[0]["key"] != "O-jane@example.com" {
		t.Errorf("attribution %+v", doc.Attribution)
	}

	readOnly, k, _ := apikey.New("events only", []string{model.ScopeEventsWrite}, time.Now())
	a.Store.PutAPIKey(k)
	for _, tt := range []struct {
		name   string
		path   string
		header []string
		status int
		field  string
	}{
		{"not an email", "/api/v1/user/not-an-email/export", a.Auth(), 400, "email"},
		{"CR LF in the email", "/api/v1/user/a%40b.example%0D%0ABcc:x/export", a.Auth(), 400, "email"},
		{"unknown user", "/api/v1/user/nobody@example.com/export", a.Auth(), 404, "email"},
		{"no key", "/api/v1/user/jane@example.com/export", nil, 401, "Authorization"},
		{"key without users:read", "/api/v1/user/jane@example.com/export", []string{"Authorization", "Bearer " + readOnly}, 403, "Authorization"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var e apiError
			if st := a.Do(t, "GET", tt.path, nil, &e, tt.header...); st != tt.status || e.Error == nil || e.Error.Field != tt.field {
				t.Fatalf("%d %+v, want %d naming %s", st, e.Error, tt.status, tt.field)
			}
		})
	}
	if st := a.Do(t, "POST", "/api/v1/user/jane@example.com/export", nil, nil, a.Auth()...); st != 405 {
		t.Errorf("POST export: %d", st)
	}
	// after erasure there is nothing to export
	a.Do(t, "DELETE", "/api/v1/user/jane@example.com", nil, nil, a.Auth()...)
	if st := a.Do(t, "GET", "/api/v1/user/jane@example.com/export", nil, nil, a.Auth()...); st != 404 {
		t.Errorf("export after erasure: %d", st)
	}
}

func TestAdminExportAndErase(t *testing.T) {
	a := enginetest.NewApp(t)
	seedShopper(t, a, "jane@example.com", 2)
	a.Fold(t)
	c := signedIn(t, a)
	_, page := c.do("GET", "/users/jane@example.com", nil)
	for _, w := range []string{`id="export-user" href="/users/jane@example.com/export"`, `action="/users/jane@example.com/erase"`, `id="version">Shoptrail `} {
		if !strings.Contains(page, w) {
			t.Errorf("profile page lacks %s", w)
		}
	}
	resp, body := c.do("GET", "/users/jane@example.com/export", nil)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") || !strings.Contains(body, `"email":"jane@example.com"`) {
		t.Fatalf("export download: %d %v %.200s", resp.StatusCode, resp.Header, body)
	}
	// signed out: to the login page
	anon := &adminClient{t: t, base: a.AdminURL}
	if resp, _ := anon.do("GET", "/users/jane@example.com/export", nil); resp.StatusCode != 303 {
		t.Errorf("export signed out: %d", resp.StatusCode)
	}
	if resp, _ := anon.do("POST", "/users/jane@example.com/erase", url.Values{"confirm": {"jane@example.com"}}); resp.StatusCode != 303 {
		t.Errorf("erase signed out: %d", resp.StatusCode)
	}
	// cross-site: refused before anything happens
	if resp, _ := c.do("POST", "/users/jane@example.com/erase", url.Values{"confirm": {"jane@example.com"}}, "Sec-Fetch-Site", "cross-site"); resp.StatusCode != 403 {
		t.Errorf("cross-site erase: %d", resp.StatusCode)
	}
	if resp, _ := c.do("POST", "/users/jane@example.com/erase", url.Values{"confirm": {"jane@example.com"}}, "Origin", "https://evil.example"); resp.StatusCode != 403 {
		t.Errorf("erase from another origin: %d", resp.StatusCode)
	}
	// no or wrong confirmation: nothing erased
	for _, confirm := range []string{"", "jane", "other@example.com"} {
		resp, body := c.do("POST", "/users/jane@example.com/erase", url.Values{"confirm": {confirm}})
		if resp.StatusCode != 400 || !strings.Contains(body, `id="erase-error"`) {
			t.Errorf("confirm %q: %d", confirm, resp.StatusCode)
		}
	}
	if st := a.Do(t, "GET", "/api/v1/user/jane@example.com", nil, nil, a.Auth()...); st != 200 {
		t.Fatalf("the user is gone before the confirmation: %d", st)
	}
	resp, body = c.do("POST", "/users/jane@example.com/erase", url.Values{"confirm": {" Jane@Example.com "}})
	if resp.StatusCode != 200 || !strings.Contains(body, "was erased with") {
		t.Fatalf("erase: %d %.300s", resp.StatusCode, body)
	}
	if st := a.Do(t, "GET", "/api/v1/user/jane@example.com", nil, nil, a.Auth()...); st != 404 {
		t.Errorf("after erase: %d", st)
	}
	var l struct{ Events []json.RawMessage }
	a.Do(t, "GET", "/api/v1/events?anonymous_id=anon-jane@example.com", nil, &l, a.Auth()...)
	if len(l.Events) != 0 {
		t.Errorf("%d events left after erase", len(l.Events))
	}
}
