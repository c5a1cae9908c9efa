package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
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
		{"unknown currency", map[string]any{"type": "order", "anonymous_id": "a", "url": "https://shop.example/", "props": map[string]any{"order_id": "1", "value": 5, "currency": "QQQ"}}, "props.currency"},
		{"withdrawn currency", map[string]any{"type": "order", "anonymous_id": "a", "url": "https://shop.example/", "props": map[string]any{"order_id": "1", "value": 5, "currency": "HRK"}}, "props.currency"},
		{"order over max_order_value", map[string]any{"type": "order", "anonymous_id": "a", "url": "https://shop.example/", "props": map[string]any{"order_id": "1", "value": 1000000.01, "currency": "EUR"}}, "props.value"},
		{"item over max_order_value", map[string]any{"type": "order", "anonymous_id": "a", "url": "https://shop.example/", "props": map[string]any{"order_id": "1", "value": 5, "currency": "JPY", "items": []any{map[string]any{"product_id": "1", "price": 2e6}}}}, "props.items[0].price"},
		{"NaN value", map[string]any{"type": "order", "anonymous_id": "a", "url": "https://shop.example/", "props": map[string]any{"order_id": "1", "value": "NaN", "currency": "EUR"}}, "props.value"},
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
	for q, field := range map[string]string{"limit=0": "limit", "limit=1001": "limit", "limit=x": "limit", "since=yesterday": "since", "email=jane": "email", "before=0": "before", "before=x": "before"} {
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

// A value of the wrong JSON type costs only its own event: the batch is
// decoded event by event, and the error names the event and the field.
func TestBadlyTypedEventKeepsTheRestOfTheBatch(t *testing.T) {
	a := enginetest.NewApp(t)
	var evs []string
	for i := range 50 {
		evs = append(evs, fmt.Sprintf(`{"id":"typed-%d","type":"page_view","anonymous_id":"a","url":"https://shop.example/"}`, i))
	}
	evs[0] = `{"id":12345,"type":"page_view","anonymous_id":"a","url":"https://shop.example/"}`
	evs[7] = `{"id":"typed-7","type":"page_view","anonymous_id":"a","url":"https://shop.example/","props":"x"}`
	evs[9] = `{"id":"typed-9","type":"page_view","anonymous_id":"a","url":"https://shop.example/","time":"yesterday"}`
	evs[11] = `"not an event"`
	evs[12] = `{"id":"typed-12","anonymous_id":"a","url":"https://shop.example/"}` // valid JSON, invalid event
	var ans answer
	st := a.Do(t, "POST", "/t", `{"events":[`+strings.Join(evs, ",")+`]}`, &ans)
	if st != 400 || ans.Accepted != 45 || ans.Rejected != 5 {
		t.Fatalf("status %d, %+v; want 400 with 45 accepted and 5 rejected", st, ans)
	}
	if ans.Error == nil || ans.Error.Field != "events[0].id" {
		t.Errorf("first error %+v, want events[0].id", ans.Error)
	}
	want := []struct {
		index int
		field string
	}{{0, "id"}, {7, "props"}, {9, "time"}, {11, ""}, {12, "type"}}
	if len(ans.Errors) != len(want) {
		t.Fatalf("errors %+v", ans.Errors)
	}
	for i, w := range want {
		if e := ans.Errors[i]; e.Index != w.index || e.Field != w.field {
			t.Errorf("errors[%d] = %+v, want index %d field %q", i, e, w.index, w.field)
		}
	}
	var l listing
	a.Do(t, "GET", "/api/v1/events?limit=1000", nil, &l, a.Auth()...)
	if len(l.Events) != 45 {
		t.Errorf("stored %d events, want 45", len(l.Events))
	}
}

func TestBodyThatIsNotOneBatch(t *testing.T) {
	a := enginetest.NewApp(t)
	ev := `{"type":"page_view","anonymous_id":"a","url":"https://shop.example/"}`
	for _, tt := range []struct {
		name, body string
		field      string
	}{
		{"trailing batch", `{"events":[` + ev + `]} {"x":1}`, "body"},
		{"trailing garbage", `{"events":[` + ev + `]}]`, "body"},
		{"truncated", `{"events":[` + ev, "body"},
		{"not an object", `[` + ev + `]`, "body"},
		{"events not an array", `{"events":{"type":"x"}}`, "events"},
		{"bad sent_at", `{"sent_at":5,"events":[` + ev + `]}`, "sent_at"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ans answer
			if st := a.Do(t, "POST", "/t", tt.body, &ans); st != 400 || ans.Error == nil || ans.Error.Field != tt.field {
				t.Fatalf("status %d, %+v; want 400 naming %q", st, ans.Error, tt.field)
			}
		})
	}
	var l listing
	a.Do(t, "GET", "/api/v1/events", nil, &l, a.Auth()...)
	if len(l.Events) != 0 {
		t.Errorf("stored %d events from bodies that are not one batch", len(l.Events))
	}
	// trailing white space is fine
	var ans answer
	if st := a.Do(t, "POST", "/t", `{"events":[`+ev+`]}`+"\r\n\t ", &ans); st != 200 || ans.Accepted != 1 {
		t.Fatalf("trailing white space: %d %+v", st, ans)
	}
}

// Invalid UTF-8 anywhere in an event is replaced by U+FFFD and counted:
// the event list stays valid JSON.
func TestInvalidUTF8IsRepairedAndCounted(t *testing.T) {
	a := enginetest.NewApp(t)
	body := "{\"events\":[{\"id\":\"u8\",\"type\":\"search\",\"anonymous_id\":\"a\",\"url\":\"https://shop.example/s?q=\xff\"," +
		"\"referrer\":\"https://ref.example/\xc3\",\"props\":{\"query\":\"caf\xe9\",\"k\xfe\":[\"\xed\xa0\x80\"]}}]}"
	var ans struct {
		answer
		Repaired int
	}
	if st := a.Do(t, "POST", "/t", body, &ans); st != 200 || ans.Accepted != 1 || ans.Repaired != 7 {
		t.Fatalf("status %d, %+v; want accepted with 7 repairs", st, ans)
	}
	for _, path := range []string{"/api/v1/events", "/api/v1/events?type=search", "/api/v1/events?anonymous_id=a"} {
		raw := getRaw(t, a, path)
		var l listing
		json.Unmarshal(raw, &l)
		if len(l.Events) != 1 || string(l.Events[0].Props["query"]) != "\"caf\uFFFD\"" || l.Events[0].URL != "https://shop.example/s?q=\uFFFD" {
			t.Fatalf("GET %s: %+v", path, l.Events)
		}
	}
	a.Fold(t)
}

func TestMaxOrderValueIsConfigurable(t *testing.T) {
	a := enginetest.NewApp(t, func(c *config.Config) { c.Tracking.MaxOrderValue = 50_000_000 })
	order := map[string]any{"type": "order", "anonymous_id": "a", "url": "https://shop.example/",
		"props": map[string]any{"order_id": "1", "value": 30_000_000, "currency": "VND"}}
	var ans answer
	if st := a.Do(t, "POST", "/t", batch(order), &ans); st != 200 || ans.Accepted != 1 {
		t.Fatalf("30 000 000 VND under a 50 000 000 limit: %d %+v", st, ans)
	}
}

// Ingestion admits or refuses a request before reading its body: what is
// in flight is bounded in bytes, and past the bound the answer, after a
// wait of at most admitWait with the body unread, is 503 with Retry-After.
func TestIngestionIsAdmittedBeforeItsBodyIsRead(t *testing.T) {
	a := enginetest.NewApp(t, func(c *config.Config) { c.Ingest.MaxInflightBytes = 1 << 20 })
	host := strings.TrimPrefix(a.PublicURL, "http://")
	small := `{"events":[{"type":"page_view","anonymous_id":"a","url":"https://shop.example/"}]}`

	// a slow client announces 1 MiB and sends a little of it: it holds
	// the whole budget while it sends
	var conn net.Conn
	dialSlow := func() {
		var err error
		if conn, err = net.Dial("tcp", host); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /t HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n{\"events\":[", host, 1<<20)
	}
	// refusedSlow reports whether the slow client was answered: it was
	// refused because a probe below still held its few bytes when the
	// slow request's headers were read (the server releases a request's
	// bytes just after its answer is sent)
	refusedSlow := func() bool {
		conn.SetReadDeadline(time.Now().Add(time.Millisecond))
		n, _ := conn.Read(make([]byte, 64))
		conn.SetReadDeadline(time.Time{})
		return n > 0
	}
	dialSlow()
	defer func() { conn.Close() }()

	var ans answer
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("POST", a.PublicURL+"/t", strings.NewReader(small))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 503 {
			if resp.Header.Get("Retry-After") == "" || json.Unmarshal(raw, &ans) != nil || ans.Error == nil || ans.Error.Code != "overloaded" {
				t.Fatalf("503 without Retry-After or JSON reason: %v %s", resp.Header, raw)
			}
			break
		}
		if refusedSlow() {
			conn.Close()
			dialSlow()
		}
		if time.Now().After(deadline) { // the slow request may not be admitted yet
			t.Fatalf("no 503 while 1 MiB is in flight: %d %s", resp.StatusCode, raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// a body without Content-Length reserves the largest body allowed
	req, _ := http.NewRequest("POST", a.PublicURL+"/t", io.MultiReader(strings.NewReader(small)))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("chunked request while full: %d", resp.StatusCode)
	}
	// a body larger than allowed is refused by its Content-Length
	if st := a.Do(t, "POST", "/t", strings.Repeat(" ", 1<<20+1), &ans); st != 413 {
		t.Fatalf("over 1 MiB: %d", st)
	}

	// the slow client gives up: its reservation is released
	conn.Close()
	deadline = time.Now().Add(5 * time.Second)
	for {
		if st := a.Do(t, "POST", "/t", small, &ans); st == 200 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("still %d after the slow request ended", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	req, _ = http.NewRequest("POST", a.PublicURL+"/t", io.MultiReader(strings.NewReader(small)))
	req.ContentLength = -1
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("chunked request when idle: %v %v", resp, err)
	}
	resp.Body.Close()
}

// Many concurrent batches against a small budget: every request is
// answered 200 or 503, and every 200's events are stored.
func TestAdmissionUnderConcurrency(t *testing.T) {
	a := enginetest.NewApp(t, func(c *config.Config) { c.Ingest.MaxInflightBytes = 1 << 20 })
	var evs []string
	for i := range 400 {
		evs = append(evs, fmt.Sprintf(`{"type":"page_view","anonymous_id":"a","url":"https://shop.example/%d","props":{"pad":"%s"}}`, i, strings.Repeat("x", 300)))
	}
	body := `{"events":[` + strings.Join(evs, ",") + `]}` // ~150 KB
	var mu sync.Mutex
	status := map[int]int{}
	var wg sync.WaitGroup
	for range 24 {
		wg.Go(func() {
			resp, err := http.Post(a.PublicURL+"/t", "text/plain", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			status[resp.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if status[200]+status[503] != 24 || status[200] == 0 {
		t.Fatalf("statuses %v", status)
	}
	if last, _ := a.Store.LastSeq(); last != uint64(400*status[200]) {
		t.Fatalf("stored %d events for %d accepted batches", last, status[200])
	}
	t.Logf("statuses %v", status)
}

func TestWrongMethodIs405WithAllow(t *testing.T) {
	a := enginetest.NewApp(t)
	for _, tt := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"DELETE", "/t", 405, "POST, OPTIONS"},
		{"GET", "/t", 405, "POST, OPTIONS"},
		{"PUT", "/api/v1/events", 405, "GET, HEAD, POST"},
		{"POST", "/api/v1/user/jane@example.com", 405, "GET, HEAD, PUT, PATCH, DELETE"},
		{"DELETE", "/healthz", 405, "GET, HEAD"},
		{"POST", "/demo/", 405, "GET, HEAD"},
		{"GET", "/nope", 404, ""},
		{"DELETE", "/nope", 404, ""},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, a.PublicURL+tt.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var ans answer
			if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || ans.Error == nil {
				t.Fatalf("no JSON error body: %v", err)
			}
			if resp.StatusCode != tt.status || resp.Header.Get("Allow") != tt.allow {
				t.Fatalf("%d Allow %q, want %d Allow %q (%s)", resp.StatusCode, resp.Header.Get("Allow"), tt.status, tt.allow, ans.Error.Message)
			}
		})
	}
}

func TestRateLimitPerClient(t *testing.T) {
	ev := `{"events":[{"type":"page_view","anonymous_id":"a","url":"https://shop.example/"}]}`
	post := func(a *enginetest.App, header ...string) (int, http.Header, answer) {
		req, _ := http.NewRequest("POST", a.PublicURL+"/t", strings.NewReader(ev))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ans answer
		json.NewDecoder(resp.Body).Decode(&ans)
		return resp.StatusCode, resp.Header, ans
	}
	t.Run("untrusted peer", func(t *testing.T) {
		a := enginetest.NewApp(t, func(c *config.Config) {
			c.HTTP.RateLimit, c.HTTP.RateBurst, c.HTTP.TrustedProxies = 1, 3, nil
		})
		for i := range 3 {
			if st, _, _ := post(a, "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i)); st != 200 {
				t.Fatalf("request %d of the burst: %d", i, st)
			}
		}
		// a spoofed X-Forwarded-For from an untrusted peer changes nothing
		st, h, ans := post(a, "X-Forwarded-For", "203.0.113.77")
		if st != 429 || h.Get("Retry-After") != "1" || ans.Error == nil || ans.Error.Code != "rate_limited" {
			t.Fatalf("after the burst: %d Retry-After %q %+v", st, h.Get("Retry-After"), ans.Error)
		}
		// without a key, the API counts too; with a valid key it does not
		if st := a.Do(t, "GET", "/api/v1/events", nil, nil, "Authorization", "Bearer st_guess"); st != 429 {
			t.Fatalf("key guessing after the burst: %d", st)
		}
		for range 5 {
			if st := a.Do(t, "GET", "/api/v1/events", nil, nil, a.Auth()...); st != 200 {
				t.Fatalf("with a valid key: %d", st)
			}
		}
	})
	t.Run("trusted proxy", func(t *testing.T) {
		a := enginetest.NewApp(t, func(c *config.Config) {
			c.HTTP.RateLimit, c.HTTP.RateBurst, c.HTTP.TrustedProxies = 1, 3, []string{"127.0.0.1/32"}
		})
		for i := range 3 {
			if st, _, _ := post(a, "X-Forwarded-For", "198.51.100.1"); st != 200 {
				t.Fatalf("request %d of the burst: %d", i, st)
			}
		}
		if st, _, _ := post(a, "X-Forwarded-For", "198.51.100.1"); st != 429 {
			t.Fatalf("same client after the burst: %d", st)
		}
		// the proxy names another client: its own bucket; a spoofed left
		// part does not matter
		if st, _, _ := post(a, "X-Forwarded-For", "198.51.100.1, 198.51.100.2"); st != 200 {
			t.Fatalf("another client behind the proxy: %d", st)
		}
	})
}

// Events from crawlers and headless browsers are stored flagged as bots,
// with the user agent; the shop's servers on the API are not bots.
func TestBotsAreFlagged(t *testing.T) {
	a := enginetest.NewApp(t)
	for _, tt := range []struct {
		id, path, ua string
		auth         []string
		bot          bool
		stored       string // the user agent stored
	}{
		{"googlebot", "/t", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", nil, true, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
		{"headless", "/t", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", nil, true, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"},
		{"curl", "/t", "curl/8.5.0", nil, true, "curl/8.5.0"},
		{"chrome", "/t", enginetest.BrowserUA, nil, false, enginetest.BrowserUA},
		{"sdk", "/api/v1/events", "python-requests/2.32.3", a.Auth(), false, ""},
	} {
		h := append([]string{"User-Agent", tt.ua}, tt.auth...)
		var ans answer
		if st := a.Do(t, "POST", tt.path, batch(pv(tt.id, "a-"+tt.id, "s", "https://shop.example/", "https://www.google.com/")), &ans, h...); st != 200 {
			t.Fatalf("%s: %d %+v", tt.id, st, ans)
		}
		var l listing
		a.Do(t, "GET", "/api/v1/events?anonymous_id=a-"+tt.id, nil, &l, a.Auth()...)
		if len(l.Events) != 2 { // the page view and its visit_from_referrer
			t.Fatalf("%s: listed %+v", tt.id, l.Events)
		}
		for _, ev := range l.Events {
			if ev.Bot != tt.bot || ev.UserAgent != tt.stored {
				t.Errorf("%s %s: bot %v user_agent %q; want %v %q", tt.id, ev.Type, ev.Bot, ev.UserAgent, tt.bot, tt.stored)
			}
		}
	}
}

// The bad-input table of the reliability checklist (§5), against both
// ingestion endpoints: each gets a clear 4xx naming what is wrong, and the
// valid events of a batch are kept.
func TestChecklistBadInputsOnBothEndpoints(t *testing.T) {
	a := enginetest.NewApp(t)
	ok := `{"type":"page_view","anonymous_id":"a","url":"https://shop.example/"}`
	order := func(props string) string {
		return `{"type":"order","anonymous_id":"a","url":"https://shop.example/","props":{"order_id":"1","currency":"EUR",` + props + `}}`
	}
	deep := strings.Repeat(`[`, 100_000) + strings.Repeat(`]`, 100_000)
	for _, tt := range []struct {
		name, body  string
		contentType string
		status      int
		field       string // of the answer's error
		accepted    int
	}{
		{"10 MB body", `{"events":[` + ok + `,{"type":"x","props":{"a":"` + strings.Repeat("x", 10<<20) + `"}}]}`, "", 413, "body", 0},
		{"nested 5000 deep in props", `{"events":[` + ok + `,{"type":"x","anonymous_id":"a","url":"https://shop.example/","props":{"a":` + strings.Repeat(`[`, 5000) + strings.Repeat(`]`, 5000) + `}}]}`, "", 400, "events[1].props.a", 1},
		{"nested 100k deep", `{"events":[` + deep + `]}`, "", 400, "body", 0},
		{"truncated", `{"events":[` + ok, "", 400, "body", 0},
		{"beacon text/plain", `{"events":[` + ok + `]}`, "text/plain;charset=UTF-8", 200, "", 1},
		{"batch with one bad event", `{"events":[` + ok + `,{"id":5}]}`, "", 400, "events[1].id", 1},
		{"price -5", `{"events":[` + ok + `,` + order(`"value":5,"items":[{"product_id":"1","price":-5}]`) + `]}`, "", 400, "events[1].props.items[0].price", 1},
		{"value NaN", `{"events":[` + ok + `,` + order(`"value":"NaN"`) + `]}`, "", 400, "events[1].props.value", 1},
		{"value 1e309", `{"events":[` + ok + `,` + order(`"value":1e309`) + `]}`, "", 400, "events[1].props.value", 1},
		{"value 12,50", `{"events":[` + ok + `,` + order(`"value":"12,50"`) + `]}`, "", 400, "events[1].props.value", 1},
		{"quantity 2^63", `{"events":[` + ok + `,` + order(`"value":5,"items":[{"product_id":"1","price":1,"quantity":9223372036854775808}]`) + `]}`, "", 400, "events[1].props.items[0].quantity", 1},
		{"100 KB url", `{"events":[` + ok + `,{"type":"x","anonymous_id":"a","url":"https://shop.example/` + strings.Repeat("u", 100<<10) + `"}]}`, "", 400, "events[1].url", 1},
		{"10 KB type", `{"events":[` + ok + `,{"type":"` + strings.Repeat("t", 10<<10) + `","anonymous_id":"a","url":"https://shop.example/"}]}`, "", 400, "events[1].type", 1},
		{"10k props", `{"events":[` + ok + `,{"type":"x","anonymous_id":"a","url":"https://shop.example/","props":{` + manyProps(10_000) + `}}]}`, "", 400, "events[1].props", 1},
		{"javascript: url", `{"events":[` + ok + `,{"type":"x","anonymous_id":"a","url":"javascript:alert(1)"}]}`, "", 400, "events[1].url", 1},
	} {
		for _, ep := range []struct {
			path string
			auth []string
		}{{"/t", nil}, {"/api/v1/events", a.Auth()}} {
			t.Run(tt.name+" "+ep.path, func(t *testing.T) {
				h := ep.auth
				if tt.contentType != "" {
					h = append(h, "Content-Type", tt.contentType)
				}
				start := time.Now()
				var ans answer
				st := a.Do(t, "POST", ep.path, tt.body, &ans, h...)
				if st != tt.status || ans.Accepted != tt.accepted {
					t.Fatalf("%d, accepted %d; want %d, %d (%+v)", st, ans.Accepted, tt.status, tt.accepted, ans.Error)
				}
				if tt.status != 200 && (ans.Error == nil || (tt.field != "" && ans.Error.Field != tt.field)) {
					t.Fatalf("error %+v, want field %q", ans.Error, tt.field)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("took %s", d)
				}
			})
		}
	}
}

func manyProps(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"p%d":%d`, i, i)
	}
	return b.String()
}

func TestEventListPages(t *testing.T) {
	a := enginetest.NewApp(t)
	for i := range 5 {
		a.Do(t, "POST", "/t", batch(pv(fmt.Sprint("pg-", i), "a", "s", "https://shop.example/", "")), nil)
	}
	for _, filter := range []string{"", "&type=page_view", "&anonymous_id=a"} {
		seen := map[string]bool{}
		q := "/api/v1/events?limit=2" + filter
		for pages := 0; ; pages++ {
			var l struct {
				listing
				NextBefore uint64 `json:"next_before"`
			}
			if st := a.Do(t, "GET", q, nil, &l, a.Auth()...); st != 200 || pages > 5 {
				t.Fatalf("%s: %d after %d pages", q, st, pages)
			}
			for _, e := range l.Events {
				seen[e.ID] = true
			}
			if l.NextBefore == 0 {
				break
			}
			q = fmt.Sprintf("/api/v1/events?limit=2%s&before=%d", filter, l.NextBefore)
		}
		if len(seen) != 5 {
			t.Errorf("filter %q: pages listed %d events, want 5", filter, len(seen))
		}
	}
}

// A body shorter than its Content-Length is the client's fault: 400, not 500.
func TestBodyCutShortIs400(t *testing.T) {
	a := enginetest.NewApp(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.PublicURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /t HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"events\":[")
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	status, _ := io.ReadAll(io.LimitReader(conn, 12))
	if string(status) != "HTTP/1.1 400" {
		t.Fatalf("status line %q, want HTTP/1.1 400", status)
	}
}
