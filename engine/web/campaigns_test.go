package web_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/apikey"
	"github.com/shoptrail/shoptrail/engine/campaign"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

const nudge = `{"name":"Free shipping nudge","status":"active",
 "groups":[
  {"name":"Step 1: banner on product pages",
   "conditions":[{"kind":"url","op":"contains","value":"/p/"}],
   "placement":{"selector":"h1","mode":"after"},
   "limits":{"per_session":1,"per_user":3},
   "goal":"click",
   "variations":[{"name":"A","weight":50,"html":"<div class=\"promo\">Free shipping today</div>"},
                 {"name":"B","weight":50,"html":"<div class=\"promo\">Free shipping over 50 EUR</div>"}]},
  {"name":"Step 2: popup on the cart page, after step 1 was clicked",
   "conditions":[{"kind":"url","op":"contains","value":"/cart"}],
   "placement":{"mode":"popup"}, "trigger":{"kind":"exit_intent"},
   "variations":[{"name":"only","weight":100,"html":"<p>Still thinking?</p>"}]}]}`

type errBody struct {
	Error struct{ Code, Field, Message string }
}

func createCampaign(t *testing.T, a *enginetest.App, body string) campaign.Campaign {
	t.Helper()
	var c campaign.Campaign
	if st := a.Do(t, "POST", "/api/v1/campaigns", body, &c, a.Auth()...); st != 201 {
		t.Fatalf("create: %d", st)
	}
	return c
}

func TestCampaignCRUDAndStatus(t *testing.T) {
	a := enginetest.NewApp(t)
	c := createCampaign(t, a, nudge)
	if c.ID == "" || c.Status != "active" || len(c.Groups) != 2 || c.Groups[1].Goal != "shown" || c.Groups[1].Trigger.Kind != "exit_intent" {
		t.Fatalf("created %+v", c)
	}
	var got campaign.Campaign
	if st := a.Do(t, "GET", "/api/v1/campaigns/"+c.ID, nil, &got, a.Auth()...); st != 200 || got.Name != c.Name {
		t.Fatalf("get: %d %+v", st, got)
	}
	// PUT without status keeps it
	body := strings.Replace(nudge, `"status":"active",`, "", 1)
	body = strings.Replace(body, "Free shipping nudge", "Renamed", 1)
	if st := a.Do(t, "PUT", "/api/v1/campaigns/"+c.ID, body, &got, a.Auth()...); st != 200 || got.Name != "Renamed" || got.Status != "active" || !got.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("put: %d %+v", st, got)
	}
	if st := a.Do(t, "POST", "/api/v1/campaigns/"+c.ID+"/status", `{"status":"paused"}`, &got, a.Auth()...); st != 200 || got.Status != "paused" {
		t.Fatalf("status: %d %+v", st, got)
	}
	var e errBody
	if st := a.Do(t, "POST", "/api/v1/campaigns/"+c.ID+"/status", `{"status":"running"}`, &e, a.Auth()...); st != 400 || e.Error.Field != "status" {
		t.Fatalf("bad status: %d %+v", st, e)
	}
	a.Do(t, "POST", "/api/v1/campaigns/"+c.ID+"/status", `{"status":"archived"}`, nil, a.Auth()...)
	var list struct{ Campaigns []campaign.Campaign }
	a.Do(t, "GET", "/api/v1/campaigns", nil, &list, a.Auth()...)
	if len(list.Campaigns) != 0 {
		t.Fatalf("archived campaign listed: %+v", list)
	}
	a.Do(t, "GET", "/api/v1/campaigns?archived=true", nil, &list, a.Auth()...)
	if len(list.Campaigns) != 1 {
		t.Fatalf("archived=true: %+v", list)
	}
	if st := a.Do(t, "DELETE", "/api/v1/campaigns/"+c.ID, nil, nil, a.Auth()...); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	for _, m := range []string{"GET", "DELETE"} {
		if st := a.Do(t, m, "/api/v1/campaigns/"+c.ID, nil, &e, a.Auth()...); st != 404 || e.Error.Field != "id" {
			t.Fatalf("%s after delete: %d %+v", m, st, e)
		}
	}
}

func TestCampaignScopes(t *testing.T) {
	a := enginetest.NewApp(t)
	secret, k, _ := apikey.New("read only", []string{model.ScopeCampaignsRead}, time.Now())
	a.Store.PutAPIKey(k)
	auth := []string{"Authorization", "Bearer " + secret}
	if st := a.Do(t, "GET", "/api/v1/campaigns", nil, nil, auth...); st != 200 {
		t.Fatalf("read with campaigns:read: %d", st)
	}
	if st := a.Do(t, "POST", "/api/v1/campaigns", nudge, nil, auth...); st != 403 {
		t.Fatalf("write with campaigns:read: %d", st)
	}
	if st := a.Do(t, "GET", "/api/v1/campaigns", nil, nil); st != 401 {
		t.Fatalf("no key: %d", st)
	}
}

// TestCampaignBadInput runs the bad-input table: every answer is a 400 (or
// 413) naming the field, and nothing is stored.
func TestCampaignBadInput(t *testing.T) {
	a := enginetest.NewApp(t)
	sub := func(old, new string) string { return strings.Replace(nudge, old, new, 1) }
	cases := []struct {
		name, body, field string
		status            int
	}{
		{"not JSON", `{"name":`, "body", 400},
		{"array", `[]`, "", 400},
		{"two objects", nudge + nudge, "body", 400},
		{"unknown field", sub(`"placement":{"selector":"h1"`, `"placment":{"selector":"h1"`), "placment", 400},
		{"wrong type", sub(`"weight":50`, `"weight":"50"`), "groups.variations.weight", 400},
		{"no name", sub(`"Free shipping nudge"`, `"  "`), "name", 400},
		{"no groups", `{"name":"x","groups":[]}`, "groups", 400},
		{"bad status", sub(`"active"`, `"live"`), "status", 400},
		{"overlay with selector", sub(`"placement":{"mode":"popup"}`, `"placement":{"mode":"popup","selector":"h1"}`), "groups[1].placement.selector", 400},
		{"no selector", sub(`"selector":"h1",`, ``), "groups[0].placement.selector", 400},
		{"selector breaking out", sub(`"selector":"h1"`, `"selector":"h1{}</style><script>"`), "groups[0].placement.selector", 400},
		{"bad mode", sub(`"mode":"after"`, `"mode":"inside"`), "groups[0].placement.mode", 400},
		{"weights", sub(`"weight":50,"html":"<div class=\"promo\">Free shipping today`, `"weight":40,"html":"<div class=\"promo\">Free shipping today`), "groups[0].variations", 400},
		{"negative weight", sub(`"weight":50`, `"weight":-50`), "groups[0].variations[0].weight", 400},
		{"bad condition kind", sub(`"kind":"url"`, `"kind":"moon"`), "groups[0].conditions[0].kind", 400},
		{"bad op", sub(`"op":"contains","value":"/p/"`, `"op":"gt","value":"/p/"`), "groups[0].conditions[0].op", 400},
		{"bad regex", sub(`"op":"contains","value":"/p/"`, `"op":"regex","value":"(("`), "groups[0].conditions[0].value", 400},
		{"unknown segment", sub(`{"kind":"url","op":"contains","value":"/p/"}`, `{"kind":"segment","op":"in","value":"vip"}`), "groups[0].conditions[0].value", 400},
		{"bad goal", sub(`"goal":"click"`, `"goal":"buy"`), "groups[0].goal", 400},
		{"bad trigger", sub(`"kind":"exit_intent"`, `"kind":"hover"`), "groups[1].trigger.kind", 400},
		{"delay without value", sub(`"kind":"exit_intent"`, `"kind":"delay"`), "groups[1].trigger.value", 400},
		{"negative cap", sub(`"per_session":1`, `"per_session":-1`), "groups[0].limits.per_session", 400},
		{"only a script", sub(`<p>Still thinking?</p>`, `<script>alert(1)</script>`), "groups[1].variations[0].html", 400},
		{"template with env", sub(`<p>Still thinking?</p>`, `{{env \"AWS_SECRET\"}}`), "groups[1].variations[0].html", 400},
		{"block in attribute", sub(`<p>Still thinking?</p>`, `<a href=\"{{product \\\"1001\\\"}}\">x</a>`), "groups[1].variations[0].html", 400},
		{"duplicate variation", sub(`"name":"B"`, `"name":"A"`), "groups[0].variations[1].name", 400},
		{"control with html", sub(`{"name":"only","weight":100,"html":"<p>Still thinking?</p>"}`, `{"name":"only","weight":100,"control":true,"html":"<p>x</p>"}`), "groups[1].variations[0].html", 400},
		{"10 MB", `{"name":"` + strings.Repeat("x", 10<<20) + `"}`, "body", 413},
		{"deep", strings.Repeat("[", 100000), "body", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e errBody
			st := a.Do(t, "POST", "/api/v1/campaigns", c.body, &e, a.Auth()...)
			if st != c.status || (c.field != "" && e.Error.Field != c.field) || e.Error.Message == "" {
				t.Errorf("%d %+v; want %d naming %q", st, e.Error, c.status, c.field)
			}
		})
	}
	var list struct{ Campaigns []campaign.Campaign }
	a.Do(t, "GET", "/api/v1/campaigns", nil, &list, a.Auth()...)
	if len(list.Campaigns) != 0 {
		t.Fatalf("bad input stored %d campaigns", len(list.Campaigns))
	}
}

func TestCampaignHTMLIsSanitisedOnSave(t *testing.T) {
	a := enginetest.NewApp(t)
	body := strings.Replace(nudge, `<p>Still thinking?</p>`,
		`<p onclick=\"steal()\">Hi<script>alert(1)</script> <a href=\"javascript:alert(1)\">x</a> <a href=\"/demo/cart\" class=\"go\">cart</a> <img src=\"data:image/png;base64,AAA\"></p> {{product \"1001\"}}`, 1)
	c := createCampaign(t, a, body)
	html := c.Groups[1].Variations[0].HTML
	for _, bad := range []string{"onclick", "<script", "javascript:", "data:"} {
		if strings.Contains(html, bad) {
			t.Errorf("stored html keeps %q: %s", bad, html)
		}
	}
	for _, keep := range []string{`<a href="/demo/cart" class="go">cart</a>`, `{{product "1001"}}`} {
		if !strings.Contains(html, keep) {
			t.Errorf("stored html lost %q: %s", keep, html)
		}
	}
}

// TestCampaignConcurrentUpdates changes one campaign from many requests at
// once: each answer is a whole campaign, and the stored one is one of
// them, whole.
func TestCampaignConcurrentUpdates(t *testing.T) {
	a := enginetest.NewApp(t)
	c := createCampaign(t, a, nudge)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			body := strings.Replace(nudge, "Free shipping nudge", fmt.Sprintf("name %d", i), 1)
			var got campaign.Campaign
			if i%2 == 0 {
				a.Do(t, "PUT", "/api/v1/campaigns/"+c.ID, body, &got, a.Auth()...)
			} else {
				a.Do(t, "POST", "/api/v1/campaigns/"+c.ID+"/status", `{"status":"paused"}`, &got, a.Auth()...)
			}
			if got.ID != c.ID || len(got.Groups) != 2 {
				t.Errorf("answer %+v", got)
			}
		})
	}
	wg.Wait()
	var got campaign.Campaign
	a.Do(t, "GET", "/api/v1/campaigns/"+c.ID, nil, &got, a.Auth()...)
	if !strings.HasPrefix(got.Name, "name ") || len(got.Groups) != 2 || !got.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("stored %+v", got)
	}
}

// decision asks /c/decide as the head script does and returns what it
// shows.
func decision(t testing.TB, a *enginetest.App, aid, sid, page string, extra url.Values) []campaign.Shown {
	t.Helper()
	q := url.Values{"a": {aid}, "s": {sid}, "u": {page}}
	for k, v := range extra {
		q[k] = v
	}
	var d struct {
		CSS  string
		Show []campaign.Shown
		N    bool
		R    string
	}
	if st := a.Do(t, "GET", "/c/decide?"+q.Encode(), nil, &d); st != 200 {
		t.Fatalf("decide: %d", st)
	}
	if d.N != (len(d.Show) > 0) || !strings.HasPrefix(d.R, "/c/render.") || !strings.Contains(d.CSS, "{opacity:0!important}") {
		t.Fatalf("decide: %+v", d)
	}
	return d.Show
}

func campaignEvent(typ, aid, sid, cid string, group int, variation string) string {
	return fmt.Sprintf(`{"events":[{"type":%q,"anonymous_id":%q,"session_id":%q,"url":"https://shop.example/p/1","props":{"campaign_id":%q,"group":%d,"variation":%q}}]}`,
		typ, aid, sid, cid, group, variation)
}

// TestABSplitOverShoppers assigns 2 000 simulated shoppers on the server:
// the split is within ±5 % of 50/50 and each shopper keeps a variation.
func TestABSplitOverShoppers(t *testing.T) {
	a := enginetest.NewApp(t)
	c := createCampaign(t, a, nudge)
	n := map[string]int{}
	for i := range 2000 {
		aid := fmt.Sprintf("shopper%d", i)
		show := decision(t, a, aid, "s"+aid, "https://shop.example/p/1001", nil)
		if len(show) != 1 || show[0].Campaign != c.ID {
			t.Fatalf("shopper %d: %+v", i, show)
		}
		n[show[0].Variation]++
		if i%100 == 0 {
			if again := decision(t, a, aid, "other", "https://shop.example/p/1002", nil); again[0].Variation != show[0].Variation {
				t.Fatalf("shopper %d saw %s, then %s", i, show[0].Variation, again[0].Variation)
			}
		}
	}
	t.Logf("split over 2000 shoppers: %v", n)
	if n["A"] < 900 || n["A"] > 1100 {
		t.Fatalf("split %v is not within ±5 %% of 50/50", n)
	}
}

// TestCapsChainingAndReport follows one shopper through the server side:
// per-session cap (server count), chaining by click, a new session, the
// per-user cap, and the report.
func TestCapsChainingAndReport(t *testing.T) {
	a := enginetest.NewApp(t)
	c := createCampaign(t, a, nudge)
	product, cart := "https://shop.example/p/1001", "https://shop.example/cart"
	show := decision(t, a, "anna", "s1", product, nil)
	if len(show) != 1 || show[0].Group != 0 || show[0].Selector != "h1" || show[0].Mode != "after" {
		t.Fatalf("first product page: %+v", show)
	}
	v := show[0].Variation
	if show := decision(t, a, "anna", "s1", cart, nil); len(show) != 0 {
		t.Fatalf("cart before step 1 was clicked: %+v", show)
	}
	a.Do(t, "POST", "/t", campaignEvent("campaign_impression", "anna", "s1", c.ID, 0, v), nil)
	a.Fold(t)
	if show := decision(t, a, "anna", "s1", product, nil); len(show) != 0 {
		t.Fatalf("second product page in the session (cap 1): %+v", show)
	}
	// the browser's own count, before the server has it
	if show := decision(t, a, "bert", "s9", product, url.Values{"k": {`{"s":"s9","n":{"` + c.ID + `/0":1}}`}}); len(show) != 0 {
		t.Fatalf("browser count 1 in this session: %+v", show)
	}
	if show := decision(t, a, "bert", "s9", product, url.Values{"k": {`{"s":"old","n":{"` + c.ID + `/0":1}}`}}); len(show) != 1 {
		t.Fatalf("browser count of another session: %+v", show)
	}
	a.Do(t, "POST", "/t", campaignEvent("campaign_click", "anna", "s1", c.ID, 0, v), nil)
	a.Fold(t)
	show = decision(t, a, "anna", "s1", cart, nil)
	if len(show) != 1 || show[0].Group != 1 || show[0].Mode != "popup" || show[0].Trigger.Kind != "exit_intent" || show[0].HTML != "<p>Still thinking?</p>" {
		t.Fatalf("cart after the click: %+v", show)
	}
	// a new session sees step 1 again, up to per_user 3
	for i, sid := range []string{"s2", "s3"} {
		if show := decision(t, a, "anna", sid, product, nil); len(show) != 1 {
			t.Fatalf("session %d: %+v", i+2, show)
		}
		a.Do(t, "POST", "/t", campaignEvent("campaign_impression", "anna", sid, c.ID, 0, v), nil)
	}
	a.Fold(t)
	if show := decision(t, a, "anna", "s4", product, nil); len(show) != 0 {
		t.Fatalf("fourth session past per_user 3: %+v", show)
	}
	var ans map[string]any
	if st := a.Do(t, "POST", "/t", `{"events":[{"type":"order","anonymous_id":"anna","session_id":"s4","url":"https://shop.example/thanks","props":{"order_id":"o1","value":80,"currency":"EUR"}}]}`, &ans); st != 200 {
		t.Fatalf("order: %d %v", st, ans)
	}
	a.Fold(t)
	var rep campaign.Report
	if st := a.Do(t, "GET", "/api/v1/campaigns/"+c.ID+"/report", nil, &rep, a.Auth()...); st != 200 {
		t.Fatalf("report: %d", st)
	}
	var got *campaign.VariationReport
	for i := range rep.Groups[0].Variations {
		if rep.Groups[0].Variations[i].Name == v {
			got = &rep.Groups[0].Variations[i]
		}
	}
	if got == nil || got.Impressions != 3 || got.Shoppers != 1 || got.Clicks != 1 || got.Orders != 1 || got.Converted != 1 || got.Revenue["EUR"] != 8000 {
		t.Fatalf("report: %+v", rep)
	}
}

func TestDecisionBadInputAndOff(t *testing.T) {
	a := enginetest.NewApp(t)
	createCampaign(t, a, nudge)
	for _, c := range []struct{ name, q, field string }{
		{"long url", "a=x&u=" + strings.Repeat("a", 10000), "u"},
		{"long id", "a=" + strings.Repeat("a", 600), "a"},
		{"repeated", "a=x&a=y", "a"},
	} {
		var e errBody
		if st := a.Do(t, "GET", "/c/decide?"+c.q, nil, &e); st != 400 || e.Error.Field != c.field {
			t.Errorf("%s: %d %+v", c.name, st, e)
		}
	}
	var many []string
	for i := range 300 {
		many = append(many, fmt.Sprintf(`"0123456789abcdef/%d":1`, i))
	}
	bigK := url.Values{"a": {"x"}, "s": {"s"}, "k": {`{"s":"s","n":{` + strings.Join(many, ",") + `}}`}, "g": {strings.Repeat("0123456789abcdef/1,", 100)}}.Encode()
	for name, q := range map[string]string{"bad k": "a=x&u=https://shop.example/p/1&k=%7B%7B%7B", "nothing": "", "bad url": "a=x&u=%00%01", "300 steps counted": bigK} {
		if st := a.Do(t, "GET", "/c/decide?"+q, nil, nil); st != 200 {
			t.Errorf("%s: %d", name, st)
		}
	}
	var e errBody
	if st := a.Do(t, "GET", "/c/decide?a=x", nil, &e, "Origin", "https://evil.example"); st != 403 {
		t.Errorf("foreign origin: %d", st)
	}
	resp, err := http.Get(a.PublicURL + decisionRenderer(t, a))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "shoptrail") || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("renderer: %d %s", resp.StatusCode, resp.Header)
	}
	off := enginetest.NewApp(t, func(c *config.Config) { c.Campaigns.Enabled = false })
	if st := off.Do(t, "GET", "/c/decide?a=x", nil, nil); st != 404 {
		t.Errorf("campaigns off: %d", st)
	}
}

func decisionRenderer(t *testing.T, a *enginetest.App) string {
	var d struct{ R string }
	a.Do(t, "GET", "/c/decide?a=x", nil, &d)
	return d.R
}

// TestCampaignStateFollowsLogin: an anonymous shopper sees step 1 and
// clicks it, then logs in; the user's profile keeps the variation, the
// impressions (per_user cap) and the goal, on another device too.
func TestCampaignStateFollowsLogin(t *testing.T) {
	a := enginetest.NewApp(t)
	c := createCampaign(t, a, strings.Replace(nudge, `"per_user":3`, `"per_user":2`, 1))
	product, cart := "https://shop.example/p/1001", "https://shop.example/cart"
	show := decision(t, a, "phone", "s1", product, nil)
	v := show[0].Variation
	a.Do(t, "POST", "/t", campaignEvent("campaign_impression", "phone", "s1", c.ID, 0, v), nil)
	a.Do(t, "POST", "/t", campaignEvent("campaign_click", "phone", "s1", c.ID, 0, v), nil)
	login := func(aid, sid string) {
		body := fmt.Sprintf(`{"events":[{"type":"login","anonymous_id":%q,"session_id":%q,"email":"kim@example.com","url":"https://shop.example/"}]}`, aid, sid)
		if st := a.Do(t, "POST", "/t", body, nil); st != 200 {
			t.Fatalf("login: %d", st)
		}
	}
	login("phone", "s1")
	a.Fold(t)
	// the laptop, after logging in too: step 2 is eligible, the variation is the phone's
	login("laptop", "s2")
	a.Fold(t)
	if show := decision(t, a, "laptop", "s2", cart, nil); len(show) != 1 || show[0].Group != 1 {
		t.Fatalf("laptop's cart after the phone's click: %+v", show)
	}
	show = decision(t, a, "laptop", "s2", product, nil)
	if len(show) != 1 || show[0].Variation != v {
		t.Fatalf("laptop's product page: %+v; want variation %s", show, v)
	}
	a.Do(t, "POST", "/t", campaignEvent("campaign_impression", "laptop", "s2", c.ID, 0, v), nil)
	a.Fold(t)
	if show := decision(t, a, "laptop", "s3", product, nil); len(show) != 0 {
		t.Fatalf("per_user 2 reached across devices: %+v", show)
	}
}

// TestCampaignStateIsErasedWithTheUser: erasing a user erases what the
// campaigns kept about them (their caps start again), not the counters.
func TestCampaignStateIsErasedWithTheUser(t *testing.T) {
	a := enginetest.NewApp(t)
	c := createCampaign(t, a, strings.Replace(nudge, `"per_user":3`, `"per_user":1`, 1))
	product := "https://shop.example/p/1001"
	v := decision(t, a, "eve", "s1", product, nil)[0].Variation
	a.Do(t, "POST", "/t", `{"events":[{"type":"login","anonymous_id":"eve","session_id":"s1","email":"eve@example.com","url":"https://shop.example/"}]}`, nil)
	a.Do(t, "POST", "/t", campaignEvent("campaign_impression", "eve", "s1", c.ID, 0, v), nil)
	a.Fold(t)
	if show := decision(t, a, "eve", "s2", product, nil); len(show) != 0 {
		t.Fatalf("per_user 1 reached: %+v", show)
	}
	if st := a.Do(t, "DELETE", "/api/v1/user/eve@example.com", nil, nil, a.Auth()...); st != 200 && st != 204 {
		t.Fatalf("erase: %d", st)
	}
	a.Fold(t)
	var shopper map[string]any
	err := a.Store.Read(func(tx *store.Tx) error {
		return tx.Get(store.ProjectionSpace(campaign.ProjectionName), "p/u:eve@example.com", &shopper)
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the campaigns' state of the erased user: %v %v", shopper, err)
	}
	var rep campaign.Report
	a.Do(t, "GET", "/api/v1/campaigns/"+c.ID+"/report", nil, &rep, a.Auth()...)
	total := int64(0)
	for _, v := range rep.Groups[0].Variations {
		total += v.Impressions
	}
	if total != 1 {
		t.Fatalf("report after the erasure: %+v", rep.Groups[0])
	}
}

// TestPerSessionCapWhenTheBrowserChangesHands: one browser, one browser
// session id; u1 logs in and sees step 1 (per_session 1), then u2 logs in
// on it. Each person's visit is a session of their own (engine/identity):
// the server's count holds u2 to the cap in u2's session, and u1, back on
// the browser, is in a new session of his own and sees the step again (as
// far as the server counts: the tracker's own count, sent with the
// decision, is per browser session id).
func TestPerSessionCapWhenTheBrowserChangesHands(t *testing.T) {
	a := enginetest.NewApp(t)
	c := createCampaign(t, a, nudge)
	product := "https://shop.example/p/1001"
	login := func(email string) {
		t.Helper()
		body := fmt.Sprintf(`{"events":[{"type":"login","anonymous_id":"b","session_id":"s1","email":%q,"url":"https://shop.example/"}]}`, email)
		if st := a.Do(t, "POST", "/t", body, nil); st != 200 {
			t.Fatalf("login: %d", st)
		}
		a.Fold(t)
	}
	seen := func(who string) {
		t.Helper()
		show := decision(t, a, "b", "s1", product, nil)
		if len(show) != 1 {
			t.Fatalf("%s's first product page: %+v", who, show)
		}
		a.Do(t, "POST", "/t", campaignEvent("campaign_impression", "b", "s1", c.ID, 0, show[0].Variation), nil)
		a.Fold(t)
		if show := decision(t, a, "b", "s1", product, nil); len(show) != 0 {
			t.Fatalf("%s's second product page in the session (cap 1): %+v", who, show)
		}
	}
	login("u1@example.com")
	seen("u1")
	login("u2@example.com")
	seen("u2")
	login("u1@example.com")
	if show := decision(t, a, "b", "s1", product, nil); len(show) != 1 {
		t.Fatalf("u1 back on the browser, a new session: %+v", show)
	}
}

// The shop's server sends a user's order with the cookie's session id
// before the browser's own events arrive: that session is the user's, and
// the anonymous browser's events go to a session of its own. The server
// still holds the browser to per_session through that session's count;
// before, it followed the session id to the user's session, never matched
// the browser's count, and showed the banner again.
func TestPerSessionCapWhenTheServerNamedTheSessionFirst(t *testing.T) {
	a := enginetest.NewApp(t)
	c := createCampaign(t, a, nudge)
	product := "https://shop.example/p/1001"
	order := batch(map[string]any{"id": "srv-order-1", "type": "order", "email": "u@example.com", "session_id": "s1",
		"props": map[string]any{"order_id": "A-1", "value": 1200, "currency": "EUR"}})
	if st := a.Do(t, "POST", "/api/v1/events", order, nil, a.Auth()...); st != 200 {
		t.Fatalf("the server's order: %d", st)
	}
	a.Fold(t)
	show := decision(t, a, "b", "s1", product, nil)
	if len(show) != 1 {
		t.Fatalf("the browser's first product page: %+v", show)
	}
	a.Do(t, "POST", "/t", campaignEvent("campaign_impression", "b", "s1", c.ID, 0, show[0].Variation), nil)
	a.Fold(t)
	if show := decision(t, a, "b", "s1", product, nil); len(show) != 0 {
		t.Fatalf("the browser's second product page in the session (cap 1): %+v", show)
	}
}
