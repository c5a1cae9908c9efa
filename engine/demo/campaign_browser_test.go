package demo_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/shoptrail/shoptrail/engine/campaign"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	tracker "github.com/shoptrail/shoptrail/tracker-wasm"
)

// watchH1 records, before every frame from the first one, whether the
// page's h1 could be seen (checkVisibility with opacity and visibility)
// and what it said: window.__st.flash lists the frames that showed an h1
// without the campaign's marker; shown and visible are the times (ms since
// navigation) when the campaign's content and any h1 were first visible.
const watchH1 = `window.__st={flash:[],shown:null,visible:null,dcl:null,hidden:null};
document.addEventListener("DOMContentLoaded",function(){__st.dcl=performance.now()});
(function f(){var h=document.querySelector("h1");if(h){var v=h.checkVisibility({opacityProperty:true,visibilityProperty:true}),t=h.textContent;
if(v&&__st.visible==null)__st.visible=performance.now();if(!v&&__st.hidden==null)__st.hidden=performance.now();
if(v&&t.indexOf("CAMPAIGN")<0&&__st.flash.length<20)__st.flash.push(t);
if(v&&t.indexOf("CAMPAIGN")>=0&&__st.shown==null)__st.shown=performance.now()}requestAnimationFrame(f)})();`

type frames struct {
	Flash                       []string
	Shown, Visible, DCL, Hidden *float64
}

func create(t *testing.T, a *enginetest.App, body string) campaign.Campaign {
	t.Helper()
	var c campaign.Campaign
	if st := a.Do(t, "POST", "/api/v1/campaigns", body, &c, a.Auth()...); st != 201 {
		t.Fatalf("create campaign: %d", st)
	}
	return c
}

func watch(ctx context.Context) error {
	return chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(watchH1).Do(ctx)
		return err
	}))
}

// present reports whether the page has an element matching sel.
func present(t *testing.T, ctx context.Context, sel string) bool {
	t.Helper()
	var n int
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelectorAll(`+fmt.Sprintf("%q", sel)+`).length`, &n)); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func readFrames(t *testing.T, ctx context.Context) frames {
	t.Helper()
	var f frames
	if err := chromedp.Run(ctx, chromedp.Evaluate(`window.__st`, &f)); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestCampaignReplacesWithoutFlash: a campaign replaces the product title;
// from the first frame on, the original title is never visible, neither
// on the browser's very first page (nothing known yet: the page waits) nor
// on the next (only the target waits).
func TestCampaignReplacesWithoutFlash(t *testing.T) {
	a := enginetest.NewApp(t)
	create(t, a, `{"name":"title","status":"active","groups":[{"name":"g",
	  "conditions":[{"kind":"page_type","op":"eq","value":"product"}],
	  "placement":{"selector":"h1","mode":"replace"},
	  "variations":[{"name":"A","weight":100,"html":"<span id=\"new-title\">CAMPAIGN title</span>"}]}]}`)
	ctx := browser(t)
	if err := watch(ctx); err != nil {
		t.Fatal(err)
	}
	for i, path := range []string{"/demo/p/1001", "/demo/p/1002", "/demo/p/1001"} {
		if err := chromedp.Run(ctx, chromedp.Navigate(a.PublicURL+path), chromedp.WaitVisible(`#new-title`)); err != nil {
			t.Fatalf("page %d: %v", i+1, err)
		}
		f := readFrames(t, ctx)
		for deadline := time.Now().Add(2 * time.Second); f.Shown == nil && time.Now().Before(deadline); f = readFrames(t, ctx) {
			time.Sleep(20 * time.Millisecond) // the next frame
		}
		if len(f.Flash) > 0 {
			t.Errorf("page %d %s: the original title was painted: %q", i+1, path, f.Flash)
		}
		if f.Shown == nil || f.DCL == nil {
			t.Fatalf("page %d: no frame showed the campaign: %+v", i+1, f)
		}
		t.Logf("page %d: campaign content visible %.0f ms after navigation, %.0f ms after DOMContentLoaded", i+1, *f.Shown, *f.Shown-*f.DCL)
	}
	var n int
	chromedp.Run(ctx, chromedp.Evaluate(`document.querySelectorAll("h1 #new-title").length`, &n))
	if n != 1 {
		t.Fatalf("%d campaign titles in the h1", n)
	}
	evs := events(t, a, "type=campaign_impression", 3)
	if len(evs) != 3 {
		t.Fatalf("%d impressions for 3 page views", len(evs))
	}
}

// TestCampaignCapsChainingPopup: a per-session cap across two page views, a
// new session 13 hours later, and step 2 (a popup on exit intent on the
// cart page) only after step 1 was clicked.
func TestCampaignCapsChainingPopup(t *testing.T) {
	a := enginetest.NewApp(t)
	c := create(t, a, `{"name":"nudge","status":"active","groups":[
	 {"name":"banner","conditions":[{"kind":"url","op":"contains","value":"/p/"}],
	  "placement":{"selector":"h1","mode":"after"},"limits":{"per_session":1,"per_user":3},"goal":"click",
	  "variations":[{"name":"A","weight":50,"html":"<div class=\"promo\" id=\"promo\">Free shipping today</div>"},
	                {"name":"B","weight":50,"html":"<div class=\"promo\" id=\"promo\">Free shipping over 50 EUR</div>"}]},
	 {"name":"popup","conditions":[{"kind":"url","op":"contains","value":"/cart"}],
	  "placement":{"mode":"popup"},"trigger":{"kind":"exit_intent"},
	  "variations":[{"name":"only","weight":100,"html":"<p id=\"exit\">Still thinking?</p>"}]}]}`)
	ctx := browser(t)
	has := func(sel string) bool { return present(t, ctx, sel) }
	settle := chromedp.Sleep(300 * time.Millisecond) // the decision is in long before
	exit := chromedp.Evaluate(`document.dispatchEvent(new MouseEvent("mouseout",{clientY:-1,bubbles:true}))`, nil)

	// the cart before step 1 was clicked: no popup on exit intent
	if err := chromedp.Run(ctx, chromedp.Navigate(a.PublicURL+"/demo/cart"), chromedp.WaitVisible(`#items`), settle, exit, settle); err != nil {
		t.Fatal(err)
	}
	if has("#exit") {
		t.Fatal("step 2 before step 1 was clicked")
	}
	// step 1, once per session
	if err := chromedp.Run(ctx, chromedp.Navigate(a.PublicURL+"/demo/p/1001"), chromedp.WaitVisible(`#promo`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(ctx, chromedp.Navigate(a.PublicURL+"/demo/p/1002"), chromedp.WaitVisible(`h1`), settle); err != nil {
		t.Fatal(err)
	}
	if has("#promo") {
		t.Fatal("the banner showed twice in one session (per_session 1)")
	}
	// 13 hours later the browser starts a new session: the banner again
	if err := chromedp.Run(ctx, chromedp.Evaluate(`localStorage.setItem("shoptrail_last", ""+(Date.now()-13*3600e3))`, nil),
		chromedp.Navigate(a.PublicURL+"/demo/p/1002"), chromedp.WaitVisible(`#promo`)); err != nil {
		t.Fatalf("a new session 13 h later: %v", err)
	}
	// click it: step 2 becomes eligible; the popup waits for exit intent
	if err := chromedp.Run(ctx, chromedp.Click(`#promo`), settle,
		chromedp.Navigate(a.PublicURL+"/demo/cart"), chromedp.WaitVisible(`#items`), settle); err != nil {
		t.Fatal(err)
	}
	if has("#exit") {
		t.Fatal("the exit-intent popup showed before any exit intent")
	}
	if err := chromedp.Run(ctx, exit, chromedp.WaitVisible(`#exit`), chromedp.Click(`.shoptrail-close`), settle); err != nil {
		t.Fatalf("popup on exit intent: %v", err)
	}
	if has("#exit") {
		t.Fatal("the popup stayed after close")
	}
	evs := events(t, a, "type=campaign_close", 1)
	if len(evs) != 1 {
		t.Fatalf("campaign_close events: %d", len(evs))
	}
	all := events(t, a, "limit=1000", 0)
	if count(all, "campaign_impression") != 3 || count(all, "campaign_click") != 1 {
		t.Fatalf("impressions %d (want 3), clicks %d (want 1)", count(all, "campaign_impression"), count(all, "campaign_click"))
	}
	for _, e := range all {
		if strings.HasPrefix(e.Type, "campaign_") && (e.Via != "browser" || e.SessionID == "") {
			t.Errorf("campaign event %+v", e)
		}
	}
	_ = c
}

// TestShoptrailDownPageShows: a shop page whose Shoptrail is dead
// (connection refused) or hangs renders normally within 1 s, on the
// browser's first page, when the stub hides the whole page.
func TestShoptrailDownPageShows(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer func() { close(stop); hang.Close() }()
	ctx := browser(t)
	if err := watch(ctx); err != nil {
		t.Fatal(err)
	}
	for name, endpoint := range map[string]string{"dead": dead, "hanging": hang.URL} {
		shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><html><head>%s</head><body><h1>Original title</h1><p>shop</p></body></html>`,
				tracker.Snippet(endpoint, 12*time.Hour, false, true))
		}))
		if err := chromedp.Run(ctx, chromedp.Navigate(shop.URL+"/p/1"), chromedp.WaitVisible(`h1`)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		deadline := time.Now().Add(3 * time.Second)
		var f frames
		for f = readFrames(t, ctx); f.Visible == nil && time.Now().Before(deadline); f = readFrames(t, ctx) {
			time.Sleep(50 * time.Millisecond)
		}
		shop.CloseClientConnections()
		shop.Close()
		if f.Visible == nil {
			t.Fatalf("%s Shoptrail: the title never became visible", name)
		}
		hidden := 0.0 // a refused connection may show the page before the title is parsed
		if f.Hidden != nil {
			hidden = *f.Visible - *f.Hidden
		}
		if hidden > 1100 {
			t.Fatalf("%s Shoptrail: the title was hidden %.0f ms; want at most 1 s", name, hidden)
		}
		t.Logf("%s Shoptrail: the title was hidden %.0f ms, visible %.0f ms after navigation", name, hidden, *f.Visible)
	}
}

// TestCampaignSinglePageShop: a URL change through the History API asks
// again — on a page where nothing showed (so the renderer was not loaded,
// and the WASM tracker had already replaced the stub) and on one where it
// showed — and content comes back when the shop re-renders its target.
func TestCampaignSinglePageShop(t *testing.T) {
	a := enginetest.NewApp(t)
	create(t, a, `{"name":"spa","status":"active","groups":[{"name":"g",
	  "conditions":[{"kind":"url","op":"contains","value":"/demo/p/"}],
	  "placement":{"selector":"h1","mode":"after"},
	  "variations":[{"name":"A","weight":100,"html":"<div id=\"spa-promo\">Free shipping</div>"}]}]}`)
	ctx := browser(t)
	n := func() int {
		var k int
		if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelectorAll("#spa-promo").length`, &k)); err != nil {
			t.Fatal(err)
		}
		return k
	}
	if err := chromedp.Run(ctx, chromedp.Navigate(a.PublicURL+"/demo/cart"), chromedp.WaitVisible(`#items`), waitWASM()); err != nil {
		t.Fatal(err)
	}
	if n() != 0 {
		t.Fatal("promo on the cart page")
	}
	if err := chromedp.Run(ctx, chromedp.Evaluate(`history.pushState({}, "", "/demo/p/1001")`, nil), chromedp.WaitVisible(`#spa-promo`)); err != nil {
		t.Fatalf("after pushState to a product URL: %v", err)
	}
	// the shop re-renders its heading: the content comes back, once
	if err := chromedp.Run(ctx, chromedp.Evaluate(`var h=document.querySelector("h1"),x=document.createElement("h1");x.textContent="Re-rendered";
		document.getElementById("spa-promo").parentNode.remove();h.replaceWith(x)`, nil), chromedp.WaitVisible(`#spa-promo`)); err != nil {
		t.Fatalf("after a re-render: %v", err)
	}
	if k := n(); k != 1 {
		t.Fatalf("%d promos after the re-render", k)
	}
	if err := chromedp.Run(ctx, chromedp.Evaluate(`history.pushState({}, "", "/demo/cart")`, nil), chromedp.Sleep(500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if k := n(); k != 0 {
		t.Fatalf("%d promos after leaving for the cart URL", k)
	}
}

// TestCampaignCapsArePerPersonOnASharedBrowser: a banner capped at one per
// session, on a browser where u1 and then u2 sign in within one browser
// session. u1 has used the cap; u2 is a new session to the server and sees
// the banner. The renderer's own counts went with each decision keyed by
// the browser session id only, and held u2 to u1's cap, until the tracker
// cleared them when another person was identified.
func TestCampaignCapsArePerPersonOnASharedBrowser(t *testing.T) {
	a := enginetest.NewApp(t)
	create(t, a, `{"name":"nudge","status":"active","groups":[
	 {"name":"banner","conditions":[{"kind":"url","op":"contains","value":"/p/"}],
	  "placement":{"selector":"h1","mode":"after"},"limits":{"per_session":1},
	  "variations":[{"name":"A","weight":100,"html":"<div id=\"promo\">Free shipping</div>"}]}]}`)
	ctx := browser(t)
	has := func(sel string) bool { return present(t, ctx, sel) }
	identify := func(email string, logins int) {
		t.Helper()
		if err := chromedp.Run(ctx, waitWASM(), chromedp.Evaluate(fmt.Sprintf(`shoptrail("identify",{email:%q})`, email), nil)); err != nil {
			t.Fatal(err)
		}
		if got := count(events(t, a, "type=login", logins), "login"); got != logins {
			t.Fatalf("%d logins on the server, want %d", got, logins)
		}
		a.Fold(t)
	}
	settle := chromedp.Sleep(300 * time.Millisecond) // the decision is in long before
	if err := chromedp.Run(ctx, chromedp.Navigate(a.PublicURL+"/demo/p/1001"), chromedp.WaitVisible(`#promo`)); err != nil {
		t.Fatal(err)
	}
	identify("u1@example.com", 1)
	if err := chromedp.Run(ctx, chromedp.Navigate(a.PublicURL+"/demo/p/1002"), chromedp.WaitVisible(`h1`), settle); err != nil {
		t.Fatal(err)
	}
	if has("#promo") {
		t.Fatal("u1 saw the banner twice in the session (per_session 1)")
	}
	identify("u2@example.com", 2)
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Run(wait, chromedp.Navigate(a.PublicURL+"/demo/p/1001"), chromedp.WaitVisible(`#promo`)); err != nil {
		var cs string
		chromedp.Run(ctx, chromedp.Evaluate(`localStorage.getItem("shoptrail_cs")`, &cs))
		t.Fatalf("u2, a new person on the browser, did not see the banner: %v (the renderer's counts: %s)", err, cs)
	}
}
