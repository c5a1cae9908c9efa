package attribution_test

import (
	"encoding/csv"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
)

type report struct {
	Currency      string
	ConfirmedOnly bool `json:"confirmed_only"`
	Orders        int
	Revenue       float64
	Channels      []struct {
		Channel string
		Models  map[string]struct {
			Orders float64
			Value  float64
		}
		AssistedOrders int      `json:"assisted_orders"`
		AssistedValue  float64  `json:"assisted_value"`
		AssistRatio    *float64 `json:"assist_ratio"`
	}
}

func (r report) value(channel, model string) float64 {
	for _, c := range r.Channels {
		if c.Channel == channel {
			return c.Models[model].Value
		}
	}
	return -1
}

func at(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, time.UTC) }

func visit(id, anon, sess, url, ref string, t time.Time) map[string]any {
	return map[string]any{"id": id, "type": "page_view", "anonymous_id": anon, "session_id": sess, "url": url, "referrer": ref, "time": t}
}

// DESIGN.md's worked example through real events: four visits of an
// anonymous browser on other days, the shopper logs in on it, and the shop
// sends the order through the API with the email only (another device).
func TestWorkedExampleThroughTheAPI(t *testing.T) {
	a := enginetest.NewApp(t)
	send := func(evs ...map[string]any) {
		t.Helper()
		var ans struct{ Accepted, Rejected int }
		if st := a.Do(t, "POST", "/api/v1/events", map[string]any{"events": evs}, &ans, a.Auth()...); st != 200 || ans.Rejected != 0 {
			t.Fatalf("events: %d %+v", st, ans)
		}
	}
	send(
		// older than the 30-day lookback: not on the path
		visit("old", "b", "s0", "https://shop.example/?utm_source=news&utm_medium=email", "", at(1, 10, 0).AddDate(0, 0, -40)),
		visit("v1", "b", "s1", "https://shop.example/p/1", "https://www.google.com/", at(1, 10, 0)),
		// an internal page view is no touchpoint
		visit("v1b", "b", "s1", "https://shop.example/p/2", "https://shop.example/p/1", at(1, 10, 5)),
		visit("v2", "b", "s2", "https://shop.example/?utm_source=newsletter&utm_medium=email", "", at(3, 20, 0)),
		visit("v3", "b", "s3", "https://shop.example/p/3", "https://www.facebook.com/", at(5, 12, 0)),
		// an onsite campaign: beside the paths, credited by no model
		map[string]any{"id": "imp", "type": "campaign_impression", "anonymous_id": "b", "session_id": "s3", "url": "https://shop.example/p/3", "time": at(5, 12, 1),
			"props": map[string]any{"campaign_id": "banner-1", "group": 0, "variation": "A"}},
		visit("v4", "b", "s4", "https://shop.example/", "", at(6, 9, 0)),
		map[string]any{"id": "login", "type": "login", "anonymous_id": "b", "session_id": "s4", "email": "ann@example.com", "url": "https://shop.example/login", "time": at(6, 9, 5)},
		map[string]any{"id": "ord", "type": "order", "email": "ann@example.com", "time": at(6, 9, 10),
			"props": map[string]any{"order_id": "A-100", "value": 100, "currency": "EUR"}},
	)
	a.Fold(t)
	get := func(path string) report {
		t.Helper()
		var r report
		if st := a.Do(t, "GET", path, nil, &r, a.Auth()...); st != 200 {
			t.Fatalf("GET %s: %d", path, st)
		}
		return r
	}
	r := get("/api/v1/reports/attribution?from=2026-11-01&to=2026-11-30&lookback=720h")
	if r.Currency != "EUR" || r.Orders != 1 || r.Revenue != 100 || !r.ConfirmedOnly || len(r.Channels) != 4 {
		t.Fatalf("report %+v", r)
	}
	want := map[string]map[string]float64{
		"Organic Search": {"last_interaction": 0, "last_non_direct": 0, "first_interaction": 100, "linear": 25, "position_based": 40, "time_decay": 18.51, "data_driven": 25},
		"Email":          {"last_interaction": 0, "last_non_direct": 0, "first_interaction": 0, "linear": 25, "position_based": 10, "time_decay": 23.51, "data_driven": 25},
		"Organic Social": {"last_interaction": 0, "last_non_direct": 100, "first_interaction": 0, "linear": 25, "position_based": 10, "time_decay": 27.73, "data_driven": 25},
		"Direct":         {"last_interaction": 100, "last_non_direct": 0, "first_interaction": 0, "linear": 25, "position_based": 40, "time_decay": 30.25, "data_driven": 25},
	}
	for ch, models := range want {
		for m, v := range models {
			if got := r.value(ch, m); got != v {
				t.Errorf("%s %s = %v, want %v", ch, m, got, v)
			}
		}
	}
	for _, c := range r.Channels {
		wantAssist := 1
		if c.Channel == "Direct" {
			wantAssist = 0
			if c.AssistRatio == nil || *c.AssistRatio != 0 {
				t.Errorf("Direct ratio %v", c.AssistRatio)
			}
		} else if c.AssistRatio != nil {
			t.Errorf("%s ratio %v, want null", c.Channel, *c.AssistRatio)
		}
		if c.AssistedOrders != wantAssist || c.AssistedValue != float64(100*wantAssist) {
			t.Errorf("%s assisted %d / %v", c.Channel, c.AssistedOrders, c.AssistedValue)
		}
	}
	// a longer lookback brings the old newsletter visit in
	if r := get("/api/v1/reports/attribution?from=2026-11-01&to=2026-11-30&lookback=1440h"); r.value("Email", "first_interaction") != 100 {
		t.Errorf("60-day lookback: %+v", r)
	}

	// a late event: an Email visit of day 2 sent afterwards joins the path
	send(visit("late", "b", "s-late", "https://shop.example/?utm_source=promo&utm_medium=email", "", at(2, 8, 0)))
	a.Fold(t)
	r = get("/api/v1/reports/attribution?from=2026-11-01&to=2026-11-30")
	if got := r.value("Email", "linear"); got != 40 {
		t.Errorf("after the late visit Email linear = %v, want 40 (two of five touches)", got)
	}

	// the drill-down and the paths
	var orders struct {
		Total  int
		Orders []struct {
			OrderID string `json:"order_id"`
			Credit  struct{ Share, Value float64 }
			Path    []struct{ Channel string }
		}
	}
	a.Do(t, "GET", "/api/v1/reports/attribution/orders?from=2026-11-01&to=2026-11-30&channel=Email&model=linear", nil, &orders, a.Auth()...)
	if orders.Total != 1 || orders.Orders[0].OrderID != "A-100" || orders.Orders[0].Credit.Value != 40 || len(orders.Orders[0].Path) != 5 {
		t.Errorf("drill-down %+v", orders)
	}
	var paths struct {
		Paths []struct {
			Path   string
			Orders int
		}
		Onsite []struct {
			Campaign string `json:"campaign_id"`
			Orders   int
			Value    float64
		} `json:"onsite_campaigns"`
	}
	a.Do(t, "GET", "/api/v1/reports/attribution/paths?from=2026-11-01&to=2026-11-30", nil, &paths, a.Auth()...)
	if len(paths.Paths) != 1 || paths.Paths[0].Path != "Organic Search > Email > Email > Organic Social > Direct" {
		t.Errorf("paths %+v", paths)
	}
	if len(paths.Onsite) != 1 || paths.Onsite[0].Campaign != "banner-1" || paths.Onsite[0].Orders != 1 || paths.Onsite[0].Value != 100 {
		t.Errorf("onsite campaigns %+v", paths.Onsite)
	}
	// CSV
	req, _ := http.NewRequest("GET", a.PublicURL+"/api/v1/reports/attribution?from=2026-11-01&to=2026-11-30&format=csv", nil)
	req.Header.Set("Authorization", "Bearer "+a.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || len(rows) != 5 || rows[0][0] != "channel" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Errorf("csv: %v %v", rows, err)
	}
}

func TestAttributionBadInput(t *testing.T) {
	a := enginetest.NewApp(t)
	for _, tt := range []struct{ query, field string }{
		{"from=2026-13-01", "from"},
		{"to=yesterday", "to"},
		{"from=2026-11-30&to=2026-11-01", "from"},
		{"lookback=30m", "lookback"},
		{"lookback=3000h", "lookback"},
		{"currency=QQQ", "currency"},
		{"orders=some", "orders"},
		{"format=xml", "format"},
	} {
		var e struct{ Error struct{ Field string } }
		if st := a.Do(t, "GET", "/api/v1/reports/attribution?"+tt.query, nil, &e, a.Auth()...); st != 400 || e.Error.Field != tt.field {
			t.Errorf("%s: %d %+v, want 400 naming %s", tt.query, st, e, tt.field)
		}
	}
	for q, field := range map[string]string{"channel=Email&model=best": "model", "model=linear": "channel", "channel=Email&offset=-1": "offset", "channel=Email&limit=0": "limit"} {
		var e struct{ Error struct{ Field string } }
		if st := a.Do(t, "GET", "/api/v1/reports/attribution/orders?"+q, nil, &e, a.Auth()...); st != 400 || e.Error.Field != field {
			t.Errorf("orders %s: %d %+v, want 400 naming %s", q, st, e, field)
		}
	}
	// without the scope
	if st := a.Do(t, "GET", "/api/v1/reports/attribution", nil, nil); st != 401 {
		t.Errorf("no key: %d", st)
	}
	var r report
	if st := a.Do(t, "GET", "/api/v1/reports/attribution", nil, &r, a.Auth()...); st != 200 || r.Orders != 0 || r.Channels == nil {
		t.Errorf("an empty shop: %d %+v", st, r)
	}
}

// The order arrives first (server-side, by email); the shopper logs in
// on their phone afterwards, and the phone's earlier visits join the path.
func TestAMergeAfterTheOrderJoinsThePath(t *testing.T) {
	a := enginetest.NewApp(t)
	a.Do(t, "POST", "/api/v1/events", map[string]any{"events": []any{
		visit("p1", "phone", "ps1", "https://shop.example/?utm_source=facebook&utm_medium=cpc", "", at(10, 8, 0)),
		map[string]any{"id": "o", "type": "order", "email": "bo@example.com", "time": at(12, 9, 0),
			"props": map[string]any{"order_id": "B-1", "value": 60, "currency": "EUR"}},
	}}, nil, a.Auth()...)
	a.Fold(t)
	var r report
	a.Do(t, "GET", "/api/v1/reports/attribution?from=2026-11-01&to=2026-11-30", nil, &r, a.Auth()...)
	if len(r.Channels) != 1 || r.Channels[0].Channel != "Direct" {
		t.Fatalf("before the login: %+v", r.Channels)
	}
	a.Do(t, "POST", "/api/v1/events", map[string]any{"events": []any{
		map[string]any{"id": "l", "type": "login", "anonymous_id": "phone", "session_id": "ps2", "email": "bo@example.com", "url": "https://shop.example/", "time": at(13, 9, 0)},
	}}, nil, a.Auth()...)
	a.Fold(t)
	a.Do(t, "GET", "/api/v1/reports/attribution?from=2026-11-01&to=2026-11-30", nil, &r, a.Auth()...)
	if got := r.value("Paid Social", "last_interaction"); got != 60 {
		t.Errorf("after the login: %+v", r.Channels)
	}
}
