package web_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/apikey"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

type answer struct {
	Error *struct {
		Code, Field, Message string
	}
	Accepted, Duplicates, Rejected int
	Errors                         []struct {
		Index       int
		Field, Code string
	}
}

type listing struct {
	Events []struct {
		model.Event
		User    string
		Channel string
	}
}

func pv(id, anon, sess, url, ref string) map[string]any {
	return map[string]any{"id": id, "type": "page_view", "anonymous_id": anon, "session_id": sess, "url": url, "referrer": ref}
}

func batch(evs ...map[string]any) map[string]any { return map[string]any{"events": evs} }

func TestCollectStoresAndListsAtOnce(t *testing.T) {
	a := enginetest.NewApp(t)
	var ans answer
	st := a.Do(t, "POST", "/t", batch(pv("e1", "a-1", "s-1", "https://shop.example/p/1001", "")), &ans,
		"Content-Type", "text/plain;charset=UTF-8", "Origin", "http://localhost:8080")
	if st != 200 || ans.Accepted != 1 {
		t.Fatalf("POST /t: %d %+v", st, ans)
	}
	var l listing
	if st := a.Do(t, "GET", "/api/v1/events?anonymous_id=a-1", nil, &l, a.Auth()...); st != 200 {
		t.Fatalf("GET events: %d", st)
	}
	if len(l.Events) != 1 || l.Events[0].ID != "e1" || l.Events[0].URL != "https://shop.example/p/1001" || l.Events[0].Via != "browser" {
		t.Fatalf("listed %+v", l.Events)
	}
	if l.Events[0].ReceivedAt.IsZero() || l.Events[0].Channel != "Direct" && l.Events[0].Channel != "" {
		t.Errorf("server fields: %+v", l.Events[0])
	}
}

func TestSameIDIsStoredOnce(t *testing.T) {
	a := enginetest.NewApp(t)
	body := batch(pv("dup-1", "a-1", "s-1", "https://shop.example/", ""))
	for i, want := range []answer{{Accepted: 1}, {Duplicates: 1}} {
		var ans answer
		if st := a.Do(t, "POST", "/t", body, &ans); st != 200 || ans.Accepted != want.Accepted || ans.Duplicates != want.Duplicates {
			t.Fatalf("send %d: %d %+v", i, st, ans)
		}
	}
	// twice in one batch, too
	var ans answer
	a.Do(t, "POST", "/t", batch(pv("dup-2", "a-1", "s-1", "https://shop.example/", ""), pv("dup-2", "a-1", "s-1", "https://shop.example/", "")), &ans)
	if ans.Accepted != 1 || ans.Duplicates != 1 {
		t.Fatalf("same id twice in a batch: %+v", ans)
	}
	var l listing
	a.Do(t, "GET", "/api/v1/events", nil, &l, a.Auth()...)
	if len(l.Events) != 2 {
		t.Fatalf("want 2 stored events, got %d", len(l.Events))
	}
	// the server assigns ids to events without one
	a.Do(t, "POST", "/t", batch(map[string]any{"type": "search", "anonymous_id": "a-1", "url": "https://shop.example/s"}), &ans)
	a.Do(t, "GET", "/api/v1/events?type=search", nil, &l, a.Auth()...)
	if len(l.Events) != 1 || len(l.Events[0].ID) != 32 {
		t.Fatalf("server id: %+v", l.Events)
	}
}

func TestBadInputNamesTheEventAndFieldAndKeepsTheRest(t *testing.T) {
	a := enginetest.NewApp(t)
	good := pv("ok-1", "a-1", "s-1", "https://shop.example/", "")
	tests := []struct {
		name  string
		event map[string]any
		field string
	}{
		{"no type", map[string]any{"anonymous_id": "a", "url": "https://shop.example/"}, "type"},
		{"no identity", map[string]any{"type": "page_view", "url": "https://shop.example/"}, "anonymous_id"},
		{"javascript url", map[string]any{"type": "page_view", "anonymous_id": "a", "url": "javascript:alert(1)"}, "url"},
		{"data referrer", map[string]any{"type": "page_view", "anonymous_id": "a", "url": "https://shop.example/", "referrer": "data:text/html,x"}, "referrer"},
		{"email with CRLF", map[string]any{"type": "login", "anonymous_id": "a", "url": "https://shop.example/", "email": "a@x.com\r\nBcc: b@y.com"}, "email"},
		{"not an email", map[string]any{"type": "login", "anonymous_id": "a", "url": "https://shop.example/", "email": "jane"}, "email"},
		{"long url", map[string]any{"type": "page_view", "anonymous_id": "a", "url": "https://shop.example/" + strings.Repeat("x", 9000)}, "url"},
		{"order without id", map[string]any{"type": "order", "anonymous_id": "a", "url": "https://shop.example/", "props": map[string]any{"value": 10, "currency": "EUR"}}, "props.order_id"},
		{"decimal comma", map[string]any{"type": "order", "anonymous_id": "a", "url": "https://shop.example/", "props": map[string]any{"order_id": "1", "value": "12,50", "currency": "EUR"}}, "props.value"},
		{"negative price", map[string]any{"type": "purchase", "anonymous_id": "a", "url": "https://shop.example/", "props": map[string]any{"transaction_id": "1", "value": 5, "currency": "EUR", "items": []any{map[string]any{"item_id": "1001", "price": -5}}}}, "props.items[0].price"},
		{"huge quantity", map[string]any{"type": "order", "anonymous_id": "a", "url": "https://shop.example/", "props": map[string]any{"order_id": "1", "value": 5, "currency": "EUR", "items": []any{map[string]any{"product_id": "1", "price": 1, "quantity": 9223372036854775807}}}}, "props.items[0].quantity"},
		{"bad currency", map[string]any{"type": "order", "anonymous_id": "a", "url": "https://shop.example/", "props": map[string]any{"order_id": "1", "value": 5, "currency": "€"}}, "props.currency"},
		{"product view without product", map[string]any{"type": "product_view", "anonymous_id": "a", "url": "https://shop.example/"}, "props.product_id"},
		{"too deep", map[string]any{"type": "x", "anonymous_id": "a", "url": "https://shop.example/", "props": map[string]any{"a": []any{[]any{[]any{[]any{[]any{[]any{1}}}}}}}}, "props.a"},
		{"time before 2000", map[string]any{"type": "x", "anonymous_id": "a", "url": "https://shop.example/", "time": "1970-01-01T00:00:00Z"}, "time"},
		{"server-only type", map[string]any{"type": "visit_from_referrer", "anonymous_id": "a", "url": "https://shop.example/"}, "type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ans answer
			st := a.Do(t, "POST", "/t", batch(good, tt.event), &ans)
			if st != 400 || ans.Error == nil {
				t.Fatalf("status %d, %+v", st, ans)
			}
			if want := "events[1]." + tt.field; ans.Error.Field != want {
				t.Errorf("error field %q, want %q (%s)", ans.Error.Field, want, ans.Error.Message)
			}
			if len(ans.Errors) != 1 || ans.Errors[0].Index != 1 || ans.Rejected != 1 {
				t.Errorf("errors %+v", ans)
			}
			if ans.Accepted+ans.Duplicates != 1 {
				t.Errorf("the valid event was not kept: %+v", ans)
			}
		})
	}
	for _, tt := range []struct {
		name, body string
		status     int
		field      string
	}{
		{"not json", "{events:", 400, "body"},
		{"no events", `{"events":[]}`, 400, "events"},
		{"too many events", `{"events":[` + strings.Repeat(`{"type":"x","anonymous_id":"a","url":"https://s.example/"},`, 500) + `{"type":"x"}]}`, 413, "events"},
		{"body too large", `{"events":[{"type":"x","anonymous_id":"a","url":"https://s.example/","props":{"a":"` + strings.Repeat("x", 2<<20) + `"}}]}`, 413, "body"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ans answer
			if st := a.Do(t, "POST", "/t", tt.body, &ans); st != tt.status || ans.Error == nil || ans.Error.Field != tt.field {
				t.Fatalf("status %d, want %d; %+v", st, tt.status, ans.Error)
			}
		})
	}
	var l listing
	a.Do(t, "GET", "/api/v1/events", nil, &l, a.Auth()...)
	if len(l.Events) != 1 || l.Events[0].ID != "ok-1" {
		t.Fatalf("stored %+v, want only ok-1", l.Events)
	}
}

func TestAliasesAreNormalised(t *testing.T) {
	a := enginetest.NewApp(t)
	var ans answer
	a.Do(t, "POST", "/t", batch(
		map[string]any{"id": "seg", "type": "Order Completed", "anonymous_id": "a", "url": "https://shop.example/thanks",
			"props": map[string]any{"order_id": "A-1", "revenue": 20.5, "currency": "eur", "products": []any{map[string]any{"product_id": 1001, "price": 20.5}}}},
		map[string]any{"id": "ga4", "type": "view_item", "anonymous_id": "a", "url": "https://shop.example/p/1001",
			"props": map[string]any{"currency": "EUR", "value": 5, "items": []any{map[string]any{"item_id": "1001", "price": 5}}}},
	), &ans)
	if ans.Accepted != 2 {
		t.Fatalf("%+v", ans)
	}
	var l listing
	a.Do(t, "GET", "/api/v1/events?type=order", nil, &l, a.Auth()...)
	if len(l.Events) != 1 || l.Events[0].OriginalType != "Order Completed" {
		t.Fatalf("order: %+v", l.Events)
	}
	o := l.Events[0].Props
	if string(o["value"]) != "20.5" || string(o["currency"]) != `"EUR"` || !strings.Contains(string(o["items"]), `"product_id":"1001"`) || !strings.Contains(string(o["items"]), `"quantity":1`) {
		t.Errorf("order props %s %s %s", o["value"], o["currency"], o["items"])
	}
	a.Do(t, "GET", "/api/v1/events?type=Product+Viewed", nil, &l, a.Auth()...)
	if len(l.Events) != 1 || string(l.Events[0].Props["product_id"]) != `"1001"` {
		t.Fatalf("product_view: %+v", l.Events)
	}
}

func TestEventTimes(t *testing.T) {
	a := enginetest.NewApp(t)
	past := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	future := time.Now().Add(48 * time.Hour).UTC()
	ev := func(id string, at time.Time) map[string]any {
		return map[string]any{"id": id, "type": "x", "anonymous_id": "a", "url": "https://shop.example/", "time": at}
	}
	var ans answer
	a.Do(t, "POST", "/t", batch(ev("b-past", past), ev("b-future", future)), &ans)
	a.Do(t, "POST", "/api/v1/events", batch(ev("api-past", past), ev("api-future", future)), &ans, a.Auth()...)
	var l listing
	a.Do(t, "GET", "/api/v1/events", nil, &l, a.Auth()...)
	got := map[string]time.Time{}
	for _, e := range l.Events {
		got[e.ID] = e.Time
		if e.ID != "api-past" && (!e.Time.Equal(e.ReceivedAt) || !e.TimeClamped) {
			t.Errorf("%s: time %s, received %s, clamped %v: want clamped to the receive time", e.ID, e.Time, e.ReceivedAt, e.TimeClamped)
		}
	}
	if !got["api-past"].Equal(past) {
		t.Errorf("API backfill time %s, want %s", got["api-past"], past)
	}
	// since filters on the event time
	a.Do(t, "GET", "/api/v1/events?since=2025-06-01", nil, &l, a.Auth()...)
	if len(l.Events) != 3 {
		t.Errorf("since: %d events, want 3", len(l.Events))
	}
}

func TestOrigins(t *testing.T) {
	a := enginetest.NewApp(t, func(c *config.Config) { c.Sites.AllowedOrigins = []string{"https://shop.example"} })
	body := batch(pv("", "a", "s", "https://shop.example/", ""))
	var ans answer
	if st := a.Do(t, "POST", "/t", body, &ans, "Origin", "https://evil.example"); st != 403 || ans.Error.Field != "Origin" {
		t.Fatalf("foreign origin: %d %+v", st, ans.Error)
	}
	req, _ := http.NewRequest("POST", a.PublicURL+"/t", strings.NewReader(`{"events":[{"type":"x","anonymous_id":"a","url":"https://shop.example/"}]}`))
	req.Header.Set("Origin", "https://shop.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("allowed origin: %d %v", resp.StatusCode, resp.Header)
	}
	req, _ = http.NewRequest("OPTIONS", a.PublicURL+"/t", nil)
	req.Header.Set("Origin", "https://shop.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Methods") != "POST" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	var l listing
	a.Do(t, "GET", "/api/v1/events", nil, &l, a.Auth()...)
	if len(l.Events) != 1 {
		t.Fatalf("stored %d events, want 1 (the foreign origin's must not be stored)", len(l.Events))
	}
}

func TestAPIKeys(t *testing.T) {
	a := enginetest.NewApp(t)
	secret, k, err := apikey.New("read only", []string{model.ScopeEventsRead}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Store.PutAPIKey(k); err != nil {
		t.Fatal(err)
	}
	revokedSecret, rk, _ := apikey.New("revoked", model.AllScopes(), time.Now())
	rk.Revoked = true
	a.Store.PutAPIKey(rk)

	body := batch(map[string]any{"type": "x", "email": "jane@example.com"})
	for _, tt := range []struct {
		name, method, path, auth string
		body                     any
		status                   int
	}{
		{"no key", "POST", "/api/v1/events", "", body, 401},
		{"not bearer", "POST", "/api/v1/events", "Basic " + a.Key, body, 401},
		{"unknown key", "POST", "/api/v1/events", "Bearer st_unknown", body, 401},
		{"revoked key", "POST", "/api/v1/events", "Bearer " + revokedSecret, body, 401},
		{"lacks scope", "POST", "/api/v1/events", "Bearer " + secret, body, 403},
		{"has scope", "GET", "/api/v1/events", "Bearer " + secret, nil, 200},
		{"read without key", "GET", "/api/v1/events", "", nil, 401},
		{"full key writes", "POST", "/api/v1/events", "Bearer " + a.Key, body, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ans answer
			var h []string
			if tt.auth != "" {
				h = []string{"Authorization", tt.auth}
			}
			if st := a.Do(t, tt.method, tt.path, tt.body, &ans, h...); st != tt.status {
				t.Fatalf("status %d, want %d: %+v", st, tt.status, ans.Error)
			}
		})
	}
	got, err := a.Store.APIKeyByHash(apikey.Hash(secret))
	if err != nil || got.LastUsed.IsZero() {
		t.Errorf("last used not recorded: %+v %v", got, err)
	}
	keys, _ := a.Store.APIKeys()
	for _, k := range keys {
		if strings.Contains(fmt.Sprint(k), secret) || strings.Contains(fmt.Sprint(k), a.Key) {
			t.Errorf("a key's secret is stored: %+v", k)
		}
	}
}

func TestListQueryErrors(t *testing.T) {
	a := enginetest.NewApp(t)
	for q, field := range map[string]string{"limit=0": "limit", "limit=1001": "limit", "limit=x": "limit", "since=yesterday": "since", "email=jane": "email"} {
		var ans answer
		if st := a.Do(t, "GET", "/api/v1/events?"+q, nil, &ans, a.Auth()...); st != 400 || ans.Error == nil || ans.Error.Field != field {
			t.Errorf("%s: %d %+v", q, st, ans.Error)
		}
	}
	var ans answer
	if st := a.Do(t, "GET", "/nope", nil, &ans); st != 404 || ans.Error == nil {
		t.Errorf("unknown path: %d", st)
	}
}

func TestShutdownKeepsAcknowledgedEvents(t *testing.T) {
	cfg := enginetest.Config(t)
	// the app stops when the subtest ends
	t.Run("run", func(t *testing.T) {
		a := enginetest.Start(t, cfg)
		var ans answer
		for i := range 20 {
			a.Do(t, "POST", "/t", batch(pv(fmt.Sprint("k", i), "a", "s", "https://shop.example/", "")), &ans)
		}
	})
	st, err := store.Open(store.Options{Dir: cfg.Storage.Dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	last, _ := st.LastSeq()
	if last != 20 {
		t.Fatalf("after restart the log holds %d events, want 20", last)
	}
}
