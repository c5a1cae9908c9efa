package web_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/apikey"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
)

// segAuth is the header Segment's SDKs send: the write key as the Basic
// auth user name, no password.
func segAuth(key string) []string {
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(key+":"))}
}

type segAnswer struct {
	Success bool
	Error   *struct {
		Code, Field, Message string
	}
	Accepted, Duplicates, Rejected int
	Errors                         []struct {
		Index       int
		Field, Code string
	}
}

// userEvents lists a user's events, oldest first.
func userEvents(t *testing.T, a *enginetest.App, email string) []model.Event {
	t.Helper()
	var l listing
	if st := a.Do(t, "GET", "/api/v1/user/"+email+"/events", nil, &l, a.Auth()...); st != 200 {
		t.Fatalf("GET events of %s: %d", email, st)
	}
	out := make([]model.Event, len(l.Events))
	for i, e := range l.Events {
		out[len(l.Events)-1-i] = e.Event
	}
	return out
}

func types(evs []model.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// inCI reports whether the tests run in CI (CI=true, as CI systems and
// .ci/run set it), where a missing tool is a failure, not a skip.
func inCI() bool { ci := os.Getenv("CI"); return ci != "" && ci != "false" }

// TestSegmentNodeSDK sends with Segment's official Node SDK, unmodified
// (testdata/segment-node: the package and its lock file), pointed at
// Shoptrail with its host option: a page view from a newsletter while
// anonymous, an identify at login, "Product Viewed" and "Order Completed"
// arrive as one shopper with a product_view and a confirmed order.
func TestSegmentNodeSDK(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if inCI() {
			t.Fatal("node is not installed: CI must run the Segment SDK test (.ci/run installs it)")
		}
		t.Skip("node is not installed")
	}
	dir, _ := filepath.Abs(filepath.Join("testdata", "segment-node"))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@segment", "analytics-node", "package.json")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			if inCI() {
				t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
			}
			t.Skipf("npm ci in %s failed (offline?): %v\n%s", dir, err, out)
		}
	}
	a := enginetest.NewApp(t)
	// a write key for events only, as a shop would make for its backend
	secret, k, err := apikey.New("segment", []string{model.ScopeEventsWrite}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Store.PutAPIKey(k); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "send.mjs", a.PublicURL, secret)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	t.Logf("node send.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("the SDK did not deliver: %v", err)
	}
	a.Fold(t)

	var u map[string]any
	if st := a.Do(t, "GET", "/api/v1/user/jane@example.com", nil, &u, a.Auth()...); st != 200 {
		t.Fatalf("GET user: %d %v", st, u)
	}
	if u["orders"] != 1.0 || fmt.Sprint(u["revenue"]) != "map[EUR:99.9]" {
		t.Errorf("user orders %v revenue %v; want 1 and 99.9 EUR", u["orders"], u["revenue"])
	}
	evs := userEvents(t, a, "jane@example.com")
	got := map[string]model.Event{}
	for _, e := range evs {
		got[e.Type] = e
		if e.Via != model.ViaAPI {
			t.Errorf("%s via %q, want api", e.Type, e.Via)
		}
	}
	for _, want := range []string{"page_view", "identify", "alias", "product_view", "order"} {
		if _, ok := got[want]; !ok {
			t.Errorf("the user has no %s: %v", want, types(evs))
		}
	}
	if pv := got["product_view"]; pv.OriginalType != "Product Viewed" || string(pv.Props["product_id"]) != `"1001"` || !strings.HasPrefix(pv.ID, "node-next-") {
		t.Errorf("product_view %+v", pv)
	}
	if o := got["order"]; o.OriginalType != "Order Completed" || string(o.Props["value"]) != "99.9" || o.AnonymousID != "uid:user-42" {
		t.Errorf("order %+v", o)
	}
	page := got["page_view"]
	if page.Traffic == nil || page.Traffic.Source != "newsletter" || page.Traffic.Medium != "email" || page.Traffic.Campaign != "black-friday" {
		t.Errorf("page traffic %+v (url %s)", page.Traffic, page.URL)
	}
	if page.UserAgent == "" || page.Bot {
		t.Errorf("page user agent %q bot %v: want the shopper's browser, not flagged", page.UserAgent, page.Bot)
	}
	if id := got["identify"]; id.Email != "jane@example.com" || string(id.Props["name"]) != `"Jane"` {
		t.Errorf("identify %+v", id)
	}
}

// TestSegmentCallsOnEveryRoute sends each call to its own route and in a
// batch, and checks what is stored.
func TestSegmentCallsOnEveryRoute(t *testing.T) {
	a := enginetest.NewApp(t)
	auth := segAuth(a.Key)
	calls := map[string]string{
		"track":    `{"messageId":"m-track","userId":"u1","event":"Product Added","properties":{"product_id":"1001","price":5},"context":{"page":{"url":"https://shop.example/p/1001","referrer":"https://shop.example/"}}}`,
		"identify": `{"messageId":"m-identify","userId":"u1","traits":{"email":"u1@example.com","plan":"gold"}}`,
		"page":     `{"messageId":"m-page","anonymousId":"a1","name":"Home","properties":{"url":"https://shop.example/?x=1"},"context":{"campaign":{"source":"google","medium":"cpc","name":"brand"}}}`,
		"screen":   `{"messageId":"m-screen","anonymousId":"a1","name":"Cart"}`,
		"group":    `{"messageId":"m-group","userId":"u1","groupId":"acme","traits":{"name":"Acme Inc","email":"billing@acme.example"}}`,
		"alias":    `{"messageId":"m-alias","previousId":"a1","userId":"u1@example.com"}`,
	}
	for call, body := range calls {
		var ans segAnswer
		if st := a.Do(t, "POST", "/v1/"+call, body, &ans, auth...); st != 200 || !ans.Success || ans.Accepted != 1 {
			t.Fatalf("%s: %d %+v", call, st, ans)
		}
	}
	// the same again, in one batch: all duplicates
	var msgs []string
	for call, body := range calls {
		msgs = append(msgs, `{"type":"`+call+`",`+body[1:])
	}
	var ans segAnswer
	if st := a.Do(t, "POST", "/v1/batch", `{"batch":[`+strings.Join(msgs, ",")+`]}`, &ans, auth...); st != 200 || !ans.Success || ans.Duplicates != len(calls) {
		t.Fatalf("batch: %d %+v", st, ans)
	}
	var l listing
	a.Do(t, "GET", "/api/v1/events", nil, &l, a.Auth()...)
	byID := map[string]model.Event{}
	for _, e := range l.Events {
		byID[e.ID] = e.Event
	}
	for _, tt := range []struct {
		id, typ, anon, email, url string
	}{
		{"m-track", "add_to_cart", "uid:u1", "", "https://shop.example/p/1001"},
		{"m-identify", "identify", "uid:u1", "u1@example.com", ""},
		{"m-page", "page_view", "a1", "", "https://shop.example/?x=1&utm_campaign=brand&utm_medium=cpc&utm_source=google"},
		{"m-screen", "screen_view", "a1", "", ""},
		{"m-group", "group", "uid:u1", "", ""}, // a group's email is the company's, not the user's
		{"m-alias", "alias", "a1", "u1@example.com", ""},
	} {
		e, ok := byID[tt.id]
		if !ok {
			t.Errorf("%s not stored", tt.id)
			continue
		}
		if e.Type != tt.typ || e.AnonymousID != tt.anon || e.Email != tt.email || e.URL != tt.url || e.Via != model.ViaAPI {
			t.Errorf("%s: %s anon %q email %q url %q via %s; want %s %q %q %q api", tt.id, e.Type, e.AnonymousID, e.Email, e.URL, e.Via, tt.typ, tt.anon, tt.email, tt.url)
		}
	}
	if p := byID["m-page"]; p.Traffic == nil || p.Traffic.Channel != "Paid Search" || string(p.Props["name"]) != `"Home"` {
		t.Errorf("page: traffic %+v props %v", p.Traffic, p.Props)
	}
	if g := byID["m-group"]; string(g.Props["group_id"]) != `"acme"` {
		t.Errorf("group props %v", g.Props)
	}
	// identify linked uid:u1 to the email, the alias a1: one user
	a.Fold(t)
	var evs []model.Event
	for _, e := range userEvents(t, a, "u1@example.com") {
		if e.DerivedFrom == "" { // the page's visit_from_referrer
			evs = append(evs, e)
		}
	}
	if len(evs) != len(calls) {
		t.Errorf("u1@example.com has %v, want all %d events", types(evs), len(calls))
	}
}

// TestSegmentBadInputOnEveryRoute is the checklist's bad-input table on
// each of the seven routes: 4xx with a JSON error naming the field, and
// nothing stored for the bad message.
func TestSegmentBadInputOnEveryRoute(t *testing.T) {
	a := enginetest.NewApp(t)
	auth := segAuth(a.Key)
	readOnly, k, _ := apikey.New("read", []string{model.ScopeEventsRead}, time.Now())
	if err := a.Store.PutAPIKey(k); err != nil {
		t.Fatal(err)
	}
	// good returns a valid message of a call, with extra fields
	good := func(call, extra string) string {
		base := map[string]string{
			"track":    `"userId":"u1","event":"x"`,
			"identify": `"userId":"u1"`,
			"page":     `"anonymousId":"a1"`,
			"screen":   `"anonymousId":"a1"`,
			"group":    `"userId":"u1","groupId":"g1"`,
			"alias":    `"userId":"u1","previousId":"a1"`,
		}[call]
		if extra != "" {
			base += "," + extra
		}
		return "{" + base + "}"
	}
	deep := strings.Repeat(`[`, 12_000) + strings.Repeat(`]`, 12_000) // under 32 KB
	type tc struct {
		name   string
		body   string // the message (or, with raw, the whole body)
		raw    bool
		header []string
		status int
		field  string
	}
	common := []tc{
		{name: "no key", header: []string{}, status: 401, field: "Authorization"},
		{name: "unknown key", header: segAuth("st_unknown"), status: 401, field: "Authorization"},
		{name: "key in the password", header: []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(":"+a.Key))}, status: 401, field: "Authorization"},
		{name: "key without events:write", header: segAuth(readOnly), status: 403, field: "Authorization"},
		{name: "from a web page", header: append(segAuth(a.Key), "Origin", "https://shop.example"), status: 403, field: "Origin"},
		{name: "not json", body: `{"userId":`, raw: true, status: 400, field: "body"},
		{name: "not an object", body: `[1,2]`, raw: true, status: 400, field: "body"},
		{name: "nested 12k deep", body: deep, raw: true, status: 400, field: "body"},
		{name: "10 MB body", body: `{"userId":"` + strings.Repeat("x", 10<<20) + `"}`, raw: true, status: 413, field: "body"},
		{name: "brotli", header: append(segAuth(a.Key), "Content-Encoding", "br"), status: 415, field: "Content-Encoding"},
		{name: "no identity", body: `{"event":"x","groupId":"g1","previousId":"p"}`, raw: true, status: 400, field: "userId"},
		{name: "messageId a number", body: `"messageId":5`, status: 200},
		{name: "messageId an object", body: `"messageId":{}`, status: 400, field: "messageId"},
		{name: "messageId with spaces", body: `"messageId":"a b"`, status: 400, field: "messageId"},
		{name: "messageId 200 bytes", body: `"messageId":"` + strings.Repeat("m", 200) + `"`, status: 400, field: "messageId"},
		{name: "anonymousId 200 bytes", body: `"anonymousId":"` + strings.Repeat("a", 200) + `","userId":null`, status: 400, field: "anonymousId"},
		{name: "userId 200 bytes", body: `"userId":"` + strings.Repeat("u", 200) + `"`, status: 400, field: "userId"},
		{name: "userId an array", body: `"userId":[1]`, status: 400, field: "userId"},
		{name: "timestamp not a time", body: `"timestamp":"yesterday"`, status: 400, field: "timestamp"},
		{name: "timestamp 1970", body: `"timestamp":"1970-01-01T00:00:00Z"`, status: 400, field: "timestamp"},
		{name: "sentAt a number", body: `"sentAt":12`, status: 400, field: "sentAt"},
		{name: "context a string", body: `"context":"x"`, status: 400, field: "context"},
		{name: "javascript: page url", body: `"context":{"page":{"url":"javascript:alert(1)"}}`, status: 400, field: "context.page.url"},
		{name: "20 KB page url", body: `"context":{"page":{"url":"https://shop.example/` + strings.Repeat("u", 20<<10) + `"}}`, status: 400, field: "context.page.url"},
		{name: "data: referrer", body: `"context":{"page":{"referrer":"data:text/html,x"}}`, status: 400, field: "context.page.referrer"},
		{name: "email with CRLF", body: `"context":{"traits":{"email":"a@x.com\r\nBcc: b@y.com"}}`, status: 400, field: "context.traits.email"},
		{name: "email not an email", body: `"context":{"traits":{"email":"jane"}}`, status: 400, field: "context.traits.email"},
		{name: "campaign a list", body: `"context":{"campaign":[]}`, status: 400, field: "context.campaign"},
		{name: "context.page a string", body: `"context":{"page":"https://shop.example/"}`, status: 400, field: "context.page"},
		{name: "invalid UTF-8 repaired", body: "\"context\":{\"library\":{\"name\":\"\xff\"}}", status: 200},
	}
	perCall := map[string][]tc{
		"track": {
			{name: "no event", body: `{"userId":"u1"}`, raw: true, status: 400, field: "event"},
			{name: "10 KB event name", body: `{"userId":"u1","event":"` + strings.Repeat("e", 10<<10) + `"}`, raw: true, status: 400, field: "event"},
			{name: "properties a string", body: `"properties":"x"`, status: 400, field: "properties"},
			{name: "order without currency", body: `{"userId":"u1","event":"Order Completed","properties":{"order_id":"1","total":5}}`, raw: true, status: 400, field: "properties.currency"},
			{name: "order value 12,50", body: `{"userId":"u1","event":"Order Completed","properties":{"order_id":"1","value":"12,50","currency":"EUR"}}`, raw: true, status: 400, field: "properties.value"},
			{name: "order value 1e309", body: `{"userId":"u1","event":"Order Completed","properties":{"order_id":"1","value":1e309,"currency":"EUR"}}`, raw: true, status: 400, field: "properties.value"},
			{name: "price -5", body: `{"userId":"u1","event":"Order Completed","properties":{"order_id":"1","value":5,"currency":"EUR","products":[{"product_id":"1","price":-5}]}}`, raw: true, status: 400, field: "properties.items[0].price"},
			{name: "quantity 2^63", body: `{"userId":"u1","event":"Order Completed","properties":{"order_id":"1","value":5,"currency":"EUR","products":[{"product_id":"1","price":1,"quantity":9223372036854775808}]}}`, raw: true, status: 400, field: "properties.items[0].quantity"},
			{name: "product view without product", body: `{"userId":"u1","event":"Product Viewed"}`, raw: true, status: 400, field: "properties.product_id"},
			{name: "10k properties", body: `"properties":{` + manyProps(10_000) + `}`, status: 413, field: "body"},
			{name: "properties nested 6 deep", body: `"properties":{"a":[[[[[[1]]]]]]}`, status: 400, field: "properties.a"},
		},
		"page": {
			{name: "javascript: properties.url", body: `"properties":{"url":"javascript:alert(1)"}`, status: 400, field: "properties.url"},
			{name: "campaign source a number list", body: `"properties":{"url":"https://shop.example/"},"context":{"campaign":{"source":[1]}}`, status: 400, field: "context.campaign.source"},
		},
		"identify": {
			{name: "traits.email CRLF", body: `"traits":{"email":"a@x.com\r\nBcc: b@y.com"}`, status: 400, field: "traits.email"},
			{name: "traits a list", body: `"traits":[]`, status: 400, field: "traits"},
		},
		"group": {
			{name: "no groupId", body: `{"userId":"u1"}`, raw: true, status: 400, field: "groupId"},
		},
		"alias": {
			{name: "no previousId", body: `{"userId":"u1"}`, raw: true, status: 400, field: "previousId"},
			{name: "no userId", body: `{"previousId":"a1","anonymousId":"a1"}`, raw: true, status: 400, field: "userId"},
		},
	}
	for _, call := range []string{"track", "identify", "page", "screen", "group", "alias"} {
		for _, tt := range append(append([]tc{}, common...), perCall[call]...) {
			if tt.name == "anonymousId 200 bytes" && call == "alias" {
				continue // an alias is the userId's
			}
			msg := tt.body
			if !tt.raw {
				msg = good(call, tt.body)
			}
			h := tt.header
			if h == nil {
				h = auth
			}
			t.Run(call+"/"+tt.name, func(t *testing.T) {
				// alone on its route, and as message 1 of a batch after a
				// good one
				var ans segAnswer
				st := a.Do(t, "POST", "/v1/"+call, msg, &ans, h...)
				if st != tt.status || (st == 200) != ans.Success {
					t.Fatalf("/v1/%s: %d %+v; want %d", call, st, ans, tt.status)
				}
				if st != 200 && (ans.Error == nil || ans.Error.Field != tt.field || ans.Error.Message == "") {
					t.Fatalf("/v1/%s: error %+v, want field %q", call, ans.Error, tt.field)
				}
				if tt.field == "body" || tt.header != nil || tt.status == 413 {
					return // about the body, not a message
				}
				typed := func(msg string) string { return `{"type":"` + call + `",` + strings.TrimPrefix(msg, "{") }
				st = a.Do(t, "POST", "/v1/batch", `{"batch":[`+typed(good(call, ""))+","+typed(msg)+`]}`, &ans, h...)
				kept := 2 // the good message, and the bad one unless it is refused
				if tt.status != 200 {
					kept = 1
				}
				if st != tt.status || (st == 200) != ans.Success || ans.Accepted+ans.Duplicates != kept {
					t.Fatalf("/v1/batch: %d %+v; want %d", st, ans, tt.status)
				}
				if st != 200 && (ans.Error.Field != "batch[1]."+tt.field || len(ans.Errors) != 1 || ans.Errors[0].Index != 1 || ans.Errors[0].Field != tt.field) {
					t.Fatalf("/v1/batch: error %+v %+v, want field batch[1].%s", ans.Error, ans.Errors, tt.field)
				}
			})
		}
	}
	for _, tt := range []struct {
		name, body string
		status     int
		field      string
	}{
		{"no batch", `{}`, 400, "batch"},
		{"empty batch", `{"batch":[]}`, 400, "batch"},
		{"batch an object", `{"batch":{}}`, 400, "batch"},
		{"501 messages", `{"batch":[` + strings.Repeat(`{"type":"track","userId":"u","event":"x"},`, 500) + `{"type":"track","userId":"u","event":"x"}]}`, 413, "batch"},
		{"600 KB", `{"batch":[{"type":"track","userId":"u","event":"x","properties":{"a":"` + strings.Repeat("x", 600<<10) + `"}}]}`, 413, "body"},
		{"message over 32 KB", `{"batch":[{"type":"track","userId":"u","event":"x"},{"type":"track","userId":"u","event":"x","properties":{"a":"` + strings.Repeat("x", 33<<10) + `"}}]}`, 400, "batch[1]"},
		{"message not an object", `{"batch":[{"type":"track","userId":"u","event":"x"},7]}`, 400, "batch[1]"},
		{"no type", `{"batch":[{"type":"track","userId":"u","event":"x"},{"userId":"u","event":"x"}]}`, 400, "batch[1].type"},
		{"unknown type", `{"batch":[{"type":"track","userId":"u","event":"x"},{"type":"purchase","userId":"u"}]}`, 400, "batch[1].type"},
		{"sentAt not a time", `{"sentAt":"now","batch":[{"type":"track","userId":"u","event":"x"}]}`, 400, "sentAt"},
		{"context a number", `{"context":1,"batch":[{"type":"track","userId":"u","event":"x"}]}`, 400, "context"},
		{"every message bad", `{"batch":[{"type":"track","userId":"u"},{"type":"track"}]}`, 400, "batch[0].event"},
	} {
		t.Run("batch/"+tt.name, func(t *testing.T) {
			var ans segAnswer
			if st := a.Do(t, "POST", "/v1/batch", tt.body, &ans, auth...); st != tt.status || ans.Error == nil || ans.Error.Field != tt.field {
				t.Fatalf("%d %+v, want %d %s", st, ans.Error, tt.status, tt.field)
			}
		})
	}
	// nothing of a bad message was stored: every stored event is a good one
	var l listing
	a.Do(t, "GET", "/api/v1/events?limit=1000", nil, &l, a.Auth()...)
	for _, e := range l.Events {
		if e.Type != "x" && e.Type != "identify" && e.Type != "page_view" && e.Type != "screen_view" && e.Type != "group" && e.Type != "alias" {
			t.Errorf("stored %s %s %v", e.Type, e.ID, e.Props)
		}
	}
}

// TestSegmentGzip takes compressed bodies, and bounds what they inflate to.
func TestSegmentGzip(t *testing.T) {
	a := enginetest.NewApp(t)
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.Bytes()
	}
	h := append(segAuth(a.Key), "Content-Encoding", "gzip")
	var ans segAnswer
	if st := a.Do(t, "POST", "/v1/batch", gz(`{"batch":[{"type":"track","messageId":"gz-1","userId":"u","event":"x"}]}`), &ans, h...); st != 200 || ans.Accepted != 1 {
		t.Fatalf("gzip batch: %d %+v", st, ans)
	}
	// a bomb: 64 KB that inflates to 64 MB (gzip members, one after the
	// other, inflate as one stream) is refused after 500 KB
	mb := gz(strings.Repeat("x", 1<<20))
	bomb := gz(`{"batch":[{"type":"track","userId":"u","event":"x","properties":{"a":"`)
	for range 64 {
		bomb = append(bomb, mb...)
	}
	if len(bomb) > 100<<10 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	start := time.Now()
	if st := a.Do(t, "POST", "/v1/batch", bomb, &ans, h...); st != 413 || ans.Error == nil || ans.Error.Field != "body" {
		t.Fatalf("gzip bomb: %d %+v", st, ans.Error)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the bomb took %s", d)
	}
	if st := a.Do(t, "POST", "/v1/track", []byte(`{"userId":"u","event":"x"}`), &ans, h...); st != 400 || ans.Error.Field != "body" {
		t.Fatalf("not gzip: %d %+v", st, ans.Error)
	}
	if st := a.Do(t, "POST", "/v1/track", gz(`{"userId":"u","event":"x","properties":{"a":"`+strings.Repeat("x", 40<<10)+`"}}`), &ans, h...); st != 413 {
		t.Fatalf("a single call over 32 KB inflated: %d %+v", st, ans.Error)
	}
}

// TestSegmentTimes corrects the sender's clock with sentAt, as Segment
// does, keeps a backfill's past times, and clamps the future.
func TestSegmentTimes(t *testing.T) {
	a := enginetest.NewApp(t)
	now := time.Now().UTC()
	skew := 3 * time.Hour // the sender's clock is 3 h ahead
	past := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	body := fmt.Sprintf(`{"sentAt":%q,"batch":[
		{"type":"track","messageId":"t-skew","userId":"u","event":"x","timestamp":%q},
		{"type":"track","messageId":"t-own-sentat","userId":"u","event":"x","timestamp":%q,"sentAt":%q},
		{"type":"track","messageId":"t-original","userId":"u","event":"x","originalTimestamp":%q}]}`,
		now.Add(skew).Format(time.RFC3339Nano), now.Add(skew-time.Minute).Format(time.RFC3339Nano),
		now.Add(-time.Hour-5*time.Minute).Format(time.RFC3339Nano), now.Add(-time.Hour).Format(time.RFC3339Nano), // this one's clock is 1 h behind
		now.Add(skew-2*time.Minute).Format(time.RFC3339Nano))
	var ans segAnswer
	if st := a.Do(t, "POST", "/v1/batch", body, &ans, segAuth(a.Key)...); st != 200 || ans.Accepted != 3 {
		t.Fatalf("%d %+v", st, ans)
	}
	for id, ts := range map[string]time.Time{"t-future": now.Add(48 * time.Hour), "t-backfill": past} {
		// without sentAt, the time is taken as it is: a backfill
		if st := a.Do(t, "POST", "/v1/track", fmt.Sprintf(`{"messageId":%q,"userId":"u","event":"x","timestamp":%q}`, id, ts.Format(time.RFC3339)), &ans, segAuth(a.Key)...); st != 200 {
			t.Fatalf("%s: %d", id, st)
		}
	}
	var l listing
	a.Do(t, "GET", "/api/v1/events", nil, &l, a.Auth()...)
	got := map[string]model.Event{}
	for _, e := range l.Events {
		got[e.ID] = e.Event
	}
	near := func(id string, want time.Time) {
		t.Helper()
		if d := got[id].Time.Sub(want); d < -10*time.Second || d > 10*time.Second {
			t.Errorf("%s: time %s, want about %s", id, got[id].Time, want)
		}
	}
	near("t-skew", now.Add(-time.Minute))
	near("t-own-sentat", now.Add(-5*time.Minute))
	near("t-original", now.Add(-2*time.Minute))
	if !got["t-backfill"].Time.Equal(past) {
		t.Errorf("backfill: %s, want %s", got["t-backfill"].Time, past)
	}
	if f := got["t-future"]; !f.TimeClamped || !f.Time.Equal(f.ReceivedAt) {
		t.Errorf("future time: %+v", f)
	}
}

// TestSegmentTrust is the hostile caller's review. A Segment call has the
// API's trust because it carries a write key: its orders confirm, its
// ids dedup with the API's. A browser, without a key, cannot pose as a
// Segment user (uid:...), cannot make a Segment message vanish by sending
// its messageId first, and cannot change a confirmed order.
func TestSegmentTrust(t *testing.T) {
	a := enginetest.NewApp(t)
	auth := segAuth(a.Key)
	browser := []string{"Content-Type", "text/plain", "User-Agent", enginetest.BrowserUA}

	// a page sends events as the shop's user 42: refused
	var ans answer
	st := a.Do(t, "POST", "/t", batch(map[string]any{"type": "login", "anonymous_id": "uid:42", "email": "mallory@evil.example", "url": "https://shop.example/"}), &ans, browser...)
	if st != 400 || ans.Error == nil || ans.Error.Field != "events[0].anonymous_id" {
		t.Fatalf("browser as uid:42: %d %+v", st, ans.Error)
	}
	// a page sends the id of the shop's next message first: both are kept
	a.Do(t, "POST", "/t", batch(map[string]any{"id": "seg-order-1", "type": "page_view", "anonymous_id": "b-1", "url": "https://shop.example/"}), &ans, browser...)
	order := `{"messageId":"seg-order-1","userId":"42","event":"Order Completed","context":{"traits":{"email":"jane@example.com"}},
		"properties":{"order_id":"A-1","total":100,"currency":"EUR"}}`
	var sa segAnswer
	if st := a.Do(t, "POST", "/v1/track", order, &sa, auth...); st != 200 || sa.Accepted != 1 {
		t.Fatalf("segment order: %d %+v", st, sa)
	}
	// ...but the shop's own API and Segment share one dedup space
	if st := a.Do(t, "POST", "/api/v1/events", batch(map[string]any{"id": "seg-order-1", "type": "order", "email": "jane@example.com",
		"props": map[string]any{"order_id": "A-1", "value": 1, "currency": "EUR"}}), &ans, a.Auth()...); st != 200 || ans.Duplicates != 1 {
		t.Fatalf("API event with a Segment messageId: %d %+v", st, ans)
	}
	// a browser's claim about the same order_id, worth 1 cent, after the
	// shop's: changes nothing
	a.Do(t, "POST", "/t", batch(map[string]any{"type": "order", "anonymous_id": "b-1", "email": "jane@example.com", "url": "https://shop.example/thanks",
		"props": map[string]any{"order_id": "A-1", "value": 0.01, "currency": "EUR"}}), &ans, browser...)
	// and a browser cannot re-link the Segment user to its own email:
	// uid: ids are refused (above), so the link stays
	a.Do(t, "POST", "/v1/track", `{"messageId":"seg-view-1","userId":"42","event":"Product Viewed","properties":{"product_id":"1001"}}`, &sa, auth...)
	a.Fold(t)
	var u map[string]any
	a.Do(t, "GET", "/api/v1/user/jane@example.com", nil, &u, a.Auth()...)
	if u["orders"] != 1.0 || fmt.Sprint(u["revenue"]) != "map[EUR:100]" {
		t.Errorf("jane: orders %v revenue %v; want the confirmed 1 order of 100 EUR", u["orders"], u["revenue"])
	}
	evs := userEvents(t, a, "jane@example.com")
	if tps := types(evs); !strings.Contains(strings.Join(tps, ","), "product_view") {
		t.Errorf("the later userId-only event is not jane's: %v", tps)
	}
	if st := a.Do(t, "GET", "/api/v1/user/mallory@evil.example", nil, &u, a.Auth()...); st != 404 {
		t.Errorf("mallory: %d %v", st, u)
	}
	// no CORS: a page elsewhere cannot send the key (its preflight fails)
	if st := a.Do(t, "OPTIONS", "/v1/batch", nil, nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "POST"); st != 405 {
		t.Errorf("preflight: %d", st)
	}

	// Even the write key's holder, re-linking user 42 to another email,
	// takes only what comes next: the confirmed order stays jane's.
	if st := a.Do(t, "POST", "/v1/identify", `{"messageId":"relink","userId":"42","traits":{"email":"mallory@evil.example"}}`, &sa, auth...); st != 200 {
		t.Fatalf("identify: %d %+v", st, sa)
	}
	a.Do(t, "POST", "/v1/track", `{"messageId":"seg-view-2","userId":"42","event":"Product Viewed","properties":{"product_id":"1002"}}`, &sa, auth...)
	a.Fold(t)
	a.Do(t, "GET", "/api/v1/user/jane@example.com", nil, &u, a.Auth()...)
	if u["orders"] != 1.0 || fmt.Sprint(u["revenue"]) != "map[EUR:100]" {
		t.Errorf("jane after the re-link: orders %v revenue %v", u["orders"], u["revenue"])
	}
	var m map[string]any
	if st := a.Do(t, "GET", "/api/v1/user/mallory@evil.example", nil, &m, a.Auth()...); st != 200 || m["orders"] != 0.0 || m["events"] != 2.0 {
		t.Errorf("mallory after the re-link: %d %v; want the identify and the later view, no order", st, m)
	}
}

// TestSegmentSameMessageConcurrently sends one batch from many clients at
// once: each message is stored once.
func TestSegmentSameMessageConcurrently(t *testing.T) {
	a := enginetest.NewApp(t)
	body := `{"batch":[{"type":"identify","messageId":"c-1","userId":"u","anonymousId":"a","traits":{"email":"c@example.com"}},
		{"type":"track","messageId":"c-2","userId":"u","event":"Order Completed","properties":{"order_id":"C-1","total":5,"currency":"EUR"}}]}`
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for range 16 {
		wg.Go(func() {
			var ans segAnswer
			if st := a.Do(t, "POST", "/v1/batch", body, &ans, segAuth(a.Key)...); st != 200 || ans.Accepted+ans.Duplicates != 2 {
				t.Errorf("%d %+v", st, ans)
			}
			mu.Lock()
			accepted += ans.Accepted
			mu.Unlock()
		})
	}
	wg.Wait()
	if accepted != 2 {
		t.Fatalf("accepted %d messages in all, want 2", accepted)
	}
	a.Fold(t)
	var u map[string]any
	a.Do(t, "GET", "/api/v1/user/c@example.com", nil, &u, a.Auth()...)
	// identify, its link event (the alias of a), and the order
	if u["orders"] != 1.0 || u["events"] != 3.0 {
		t.Fatalf("user %v", u)
	}
}
