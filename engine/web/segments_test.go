package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/apikey"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
)

type segView struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Count    int64  `json:"count"`
	Building bool   `json:"building"`
}

const fbRule = `{"name":"Visitors from Facebook","conditions":[{"event":"visit_from_referrer","where":[{"prop":"source","op":"eq","value":"facebook"}],"within":"720h"}]}`

// waitBuilt waits until a segment is built.
func waitBuilt(t *testing.T, a *enginetest.App, id string) segView {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var v segView
		if st := a.Do(t, "GET", "/api/v1/segments/"+id, nil, &v, a.Auth()...); st != 200 {
			t.Fatalf("get segment: %d", st)
		}
		if !v.Building {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatal("segment still building")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func visit(anon, source string) map[string]any {
	return map[string]any{"type": "page_view", "anonymous_id": anon, "session_id": "s" + anon,
		"url": "https://shop.example/?utm_source=" + source + "&utm_medium=social", "referrer": "https://" + source + ".com/"}
}

func TestSegmentsAPI(t *testing.T) {
	a := enginetest.NewApp(t, func(c *config.Config) { c.Tracking.VisitFromReferrer = true })
	var created segView
	if st := a.Do(t, "POST", "/api/v1/segments", fbRule, &created, a.Auth()...); st != http.StatusCreated {
		t.Fatalf("create: %d", st)
	}
	// building, or built already: over an empty log it may end before
	// the answer is written
	if created.ID == "" || created.Name != "Visitors from Facebook" {
		t.Fatalf("created %+v", created)
	}
	waitBuilt(t, a, created.ID)
	// shoppers arrive: one from Facebook, then identified, one from elsewhere
	evs := []any{visit("f1", "facebook"), visit("g1", "google"), visit("f2", "facebook"),
		map[string]any{"type": "login", "anonymous_id": "f2", "session_id": "sf2", "email": "fan@example.com"}}
	if st := a.Do(t, "POST", "/api/v1/events", map[string]any{"events": evs}, nil, a.Auth()...); st != 200 {
		t.Fatalf("events: %d", st)
	}
	a.Fold(t)
	var raw map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.Do(t, "GET", "/api/v1/segments/"+created.ID+"/members?limit=1", nil, &raw, a.Auth()...)
		if raw["next"] != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, _ := json.Marshal(raw)
	if !strings.Contains(string(b), `"anonymous_id":"f1"`) || raw["next"] != "a:f1" {
		t.Fatalf("first page %s", b)
	}
	raw = nil
	a.Do(t, "GET", "/api/v1/segments/"+created.ID+"/members?limit=1&after=a:f1", nil, &raw, a.Auth()...)
	if b, _ := json.Marshal(raw); !strings.Contains(string(b), `"email":"fan@example.com"`) || raw["next"] != nil {
		t.Fatalf("second page %s", b)
	}
	raw = nil
	a.Do(t, "GET", "/api/v1/segments/"+created.ID+"/members?emailable_only=true", nil, &raw, a.Auth()...)
	if b, _ := json.Marshal(raw); strings.Contains(string(b), "f1") || !strings.Contains(string(b), "fan@example.com") {
		t.Fatalf("emailable only %s", b)
	}
	// the user's segments in the Users API
	var u map[string]any
	a.Do(t, "GET", "/api/v1/user/fan@example.com", nil, &u, a.Auth()...)
	if b, _ := json.Marshal(u["segments"]); !strings.Contains(string(b), `"name":"Visitors from Facebook"`) || !strings.Contains(string(b), created.ID) {
		t.Fatalf("user segments %s", b)
	}
	// CSV
	req, _ := http.NewRequest("GET", a.PublicURL+"/api/v1/segments/"+created.ID+"/members?format=csv", nil)
	req.Header.Set(a.Auth()[0], a.Auth()[1])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	sb.Write(buf[:n])
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") || !strings.HasPrefix(sb.String(), "email,anonymous_id,since\n,f1,") || !strings.Contains(sb.String(), "fan@example.com,,") {
		t.Fatalf("csv %s %q", ct, sb.String())
	}
	// preview equals the count
	var pre struct {
		Count  int64
		Sample []map[string]any
	}
	if st := a.Do(t, "POST", "/api/v1/segments/preview", fbRule, &pre, a.Auth()...); st != 200 || pre.Count != 2 || len(pre.Sample) != 2 {
		t.Fatalf("preview %d %+v", st, pre)
	}
	// the entry is on the user's timeline
	deadline = time.Now().Add(5 * time.Second)
	for {
		var tl struct{ Events []map[string]any }
		a.Do(t, "GET", "/api/v1/user/fan@example.com/events", nil, &tl, a.Auth()...)
		if len(tl.Events) > 0 && tl.Events[0]["type"] == "segment_entered" {
			if p, _ := tl.Events[0]["props"].(map[string]any); p["segment_id"] != created.ID || p["segment_name"] != "Visitors from Facebook" {
				t.Fatalf("entry %v", tl.Events[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no segment_entered on the timeline: %v", tl.Events)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// list, rename, delete
	var list struct{ Segments []segView }
	a.Do(t, "GET", "/api/v1/segments", nil, &list, a.Auth()...)
	if len(list.Segments) != 1 || list.Segments[0].Count != 2 {
		t.Fatalf("list %+v", list)
	}
	var upd segView
	if st := a.Do(t, "PUT", "/api/v1/segments/"+created.ID, strings.Replace(fbRule, "Visitors from Facebook", "Facebook fans", 1), &upd, a.Auth()...); st != 200 || upd.Name != "Facebook fans" || upd.Count != 2 {
		t.Fatalf("rename %d %+v", st, upd)
	}
	// erasing the user takes them out
	if st := a.Do(t, "DELETE", "/api/v1/user/fan@example.com", nil, nil, a.Auth()...); st != 200 {
		t.Fatalf("erase user %d", st)
	}
	raw = nil
	a.Do(t, "GET", "/api/v1/segments/"+created.ID+"/members", nil, &raw, a.Auth()...)
	if b, _ := json.Marshal(raw); strings.Contains(string(b), "fan@example.com") {
		t.Fatalf("members after erasing the user: %s", b)
	}
	a.Do(t, "GET", "/api/v1/segments/"+created.ID, nil, &upd, a.Auth()...)
	if upd.Count != 1 {
		t.Fatalf("count after erasing the user: %d", upd.Count)
	}
	if st := a.Do(t, "DELETE", "/api/v1/segments/"+created.ID, nil, nil, a.Auth()...); st != 200 {
		t.Fatalf("delete %d", st)
	}
	if st := a.Do(t, "GET", "/api/v1/segments/"+created.ID, nil, nil, a.Auth()...); st != 404 {
		t.Fatalf("get after delete %d", st)
	}
}

// The bad-input table of the segments API: every bad request is a 4xx
// naming the field, and nothing is stored.
func TestSegmentsAPIBadInput(t *testing.T) {
	a := enginetest.NewApp(t)
	var v segView
	a.Do(t, "POST", "/api/v1/segments", fbRule, &v, a.Auth()...)
	for _, tc := range []struct {
		method, path string
		body         any
		status       int
		field        string
	}{
		{"POST", "/api/v1/segments", `{`, 400, "body"},
		{"POST", "/api/v1/segments", `{"name":"x","conditions":[{"event":"order"},{"event":"order"},{"event":"page_view","where":[{"prop":"source","op":"like","value":"x"}]}]}`, 400, "conditions[2].where[0].op"},
		{"POST", "/api/v1/segments", `{"name":"x","conditions":[{"spent":{"op":"gte","value":"NaN","currency":"EUR"}}]}`, 400, "conditions[0].spent.value"},
		{"POST", "/api/v1/segments", `{"name":"<img src=x onerror=alert(1)>","conditions":[{"event":"order","within":"1e309h"}]}`, 400, "conditions[0].within"},
		{"POST", "/api/v1/segments", `{"name":"x","conditions":[` + strings.Repeat(`{"not":`, 40) + `{"event":"order"}` + strings.Repeat(`}`, 40) + `]}`, 400, "conditions[0].not.not.not.not.not.not.not.not"},
		{"POST", "/api/v1/segments", `{"name":"` + strings.Repeat("é", 101) + `","conditions":[{"event":"order"}]}`, 400, "name"},
		{"POST", "/api/v1/segments", `{"name":"x","conditions":[{"event":"order","count":{"op":"gte","value":1e400}}]}`, 400, "conditions[0].count.value"},
		{"POST", "/api/v1/segments", `{"name":"x","conditions":[{"event":"order"}]}` + strings.Repeat(" ", 70<<10), 413, "body"},
		{"POST", "/api/v1/segments/preview", `{"name":"x","conditions":[{"attribute":"city","op":"in","value":[]}]}`, 400, "conditions[0].value"},
		{"PUT", "/api/v1/segments/" + v.ID, `{"name":"","conditions":[{"event":"order"}]}`, 400, "name"},
		{"PUT", "/api/v1/segments/nope", fbRule, 404, "id"},
		{"DELETE", "/api/v1/segments/nope", nil, 404, "id"},
		{"GET", "/api/v1/segments/nope/members", nil, 404, "id"},
		{"GET", "/api/v1/segments/" + v.ID + "/members?limit=0", nil, 400, "limit"},
		{"GET", "/api/v1/segments/" + v.ID + "/members?limit=1001", nil, 400, "limit"},
		{"GET", "/api/v1/segments/" + v.ID + "/members?emailable_only=maybe", nil, 400, "emailable_only"},
		{"GET", "/api/v1/segments/" + v.ID + "/members?format=xml", nil, 400, "format"},
		{"GET", "/api/v1/segments/" + v.ID + "/members?after=" + strings.Repeat("a", 301), nil, 400, "after"},
	} {
		var e apiError
		if st := a.Do(t, tc.method, tc.path, tc.body, &e, a.Auth()...); st != tc.status || e.Error == nil || e.Error.Field != tc.field {
			t.Errorf("%s %s %.60v: %d %+v, want %d naming %s", tc.method, tc.path, tc.body, st, e.Error, tc.status, tc.field)
		}
	}
	var list struct{ Segments []segView }
	a.Do(t, "GET", "/api/v1/segments", nil, &list, a.Auth()...)
	if len(list.Segments) != 1 || list.Segments[0].Name != "Visitors from Facebook" {
		t.Fatalf("segments after bad input: %+v", list)
	}
}

func TestSegmentsAPIScopes(t *testing.T) {
	a := enginetest.NewApp(t)
	var v segView
	a.Do(t, "POST", "/api/v1/segments", fbRule, &v, a.Auth()...)
	keys := map[string]string{}
	for _, scope := range model.AllScopes() {
		secret, k, _ := apikey.New(scope, []string{scope}, time.Now())
		a.Store.PutAPIKey(k)
		keys[scope] = secret
	}
	for _, c := range []struct {
		method, path string
		body         any
		scope        string
	}{
		{"GET", "/api/v1/segments", nil, model.ScopeSegmentsR},
		{"GET", "/api/v1/segments/" + v.ID, nil, model.ScopeSegmentsR},
		{"GET", "/api/v1/segments/" + v.ID + "/members", nil, model.ScopeSegmentsR},
		{"POST", "/api/v1/segments/preview", fbRule, model.ScopeSegmentsR},
		{"POST", "/api/v1/segments", fbRule, model.ScopeSegmentsW},
		{"PUT", "/api/v1/segments/" + v.ID, fbRule, model.ScopeSegmentsW},
		{"DELETE", "/api/v1/segments/" + v.ID, nil, model.ScopeSegmentsW},
	} {
		if st := a.Do(t, c.method, c.path, c.body, nil); st != http.StatusUnauthorized {
			t.Errorf("%s %s without a key: %d", c.method, c.path, st)
		}
		for _, scope := range model.AllScopes() {
			if scope == c.scope {
				continue
			}
			if st := a.Do(t, c.method, c.path, c.body, nil, "Authorization", "Bearer "+keys[scope]); st != http.StatusForbidden {
				t.Errorf("%s %s with %s: %d, want 403", c.method, c.path, scope, st)
			}
		}
		if st := a.Do(t, c.method, c.path, c.body, nil, "Authorization", "Bearer "+keys[c.scope]); st >= 400 {
			t.Errorf("%s %s with %s: %d", c.method, c.path, c.scope, st)
		}
	}
}

// Membership changes within a second of the event's acknowledgement,
// through the API, with no one waiting for the fold.
func TestSegmentFreshness(t *testing.T) {
	a := enginetest.NewApp(t, func(c *config.Config) { c.Tracking.VisitFromReferrer = true })
	var v segView
	a.Do(t, "POST", "/api/v1/segments", fbRule, &v, a.Auth()...)
	waitBuilt(t, a, v.ID)
	best := time.Hour
	for i := range 3 { // a loaded machine may miss once; the benchmark measures the p99
		anon := fmt.Sprint("fresh", i)
		start := time.Now()
		if st := a.Do(t, "POST", "/api/v1/events", map[string]any{"events": []any{visit(anon, "facebook")}}, nil, a.Auth()...); st != 200 {
			t.Fatalf("event %d", st)
		}
		for time.Since(start) < 5*time.Second {
			var raw map[string]any
			a.Do(t, "GET", "/api/v1/segments/"+v.ID+"/members?limit=1000", nil, &raw, a.Auth()...)
			if b, _ := json.Marshal(raw); strings.Contains(string(b), `"`+anon+`"`) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		best = min(best, time.Since(start))
		t.Logf("visible after %v", time.Since(start))
	}
	if best > time.Second {
		t.Fatalf("membership visible after %v at best, want under 1 s", best)
	}
}

// A campaign's "in segment" condition names a segment that exists.
func TestCampaignSegmentCondition(t *testing.T) {
	a := enginetest.NewApp(t)
	var v segView
	a.Do(t, "POST", "/api/v1/segments", fbRule, &v, a.Auth()...)
	withSegment := strings.Replace(nudge, `{"kind":"url","op":"contains","value":"/p/"}`, `{"kind":"segment","op":"in","value":"`+v.ID+`"}`, 1)
	if st := a.Do(t, "POST", "/api/v1/campaigns", withSegment, nil, a.Auth()...); st != http.StatusCreated {
		t.Fatalf("a campaign shown to a segment: %d", st)
	}
}
