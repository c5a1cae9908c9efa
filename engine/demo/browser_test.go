package demo_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
)

func browser(t testing.TB) context.Context { return enginetest.Browser(t) }

// events waits until the query lists at least n events and returns them.
func events(t *testing.T, a *enginetest.App, query string, n int) []track.Listed {
	t.Helper()
	var l struct{ Events []track.Listed }
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		a.Do(t, "GET", "/api/v1/events?limit=1000&"+query, nil, &l, a.Auth()...)
		if len(l.Events) >= n || time.Now().After(deadline) {
			return l.Events
		}
	}
}

func count(evs []track.Listed, typ string) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// waitWASM waits until the WASM tracker has replaced the stub's queue.
func waitWASM() chromedp.Action {
	return chromedp.Poll(`typeof window.shoptrail === "function" && !("q" in window.shoptrail)`, nil, chromedp.WithPollingTimeout(30*time.Second))
}

func TestShopperJourneyInChromium(t *testing.T) {
	a := enginetest.NewApp(t)
	ctx := browser(t)
	demo := a.PublicURL + "/demo/"
	err := chromedp.Run(ctx,
		chromedp.Navigate(demo),
		chromedp.WaitVisible(`#p-1001`),
		waitWASM(),
		chromedp.Click(`#p-1001`),
		chromedp.WaitVisible(`#add-to-cart`),
		waitWASM(),
		chromedp.Click(`#add-to-cart`),
		chromedp.WaitVisible(`#to-checkout`),
		chromedp.Click(`#to-checkout`),
		chromedp.WaitVisible(`#email`),
		chromedp.SendKeys(`#email`, "Jane@Example.com"),
		chromedp.Click(`#place-order`),
		chromedp.WaitVisible(`#order-id`),
		waitWASM(),
	)
	if err != nil {
		t.Fatal(err)
	}
	evs := events(t, a, "email=jane@example.com", 9)
	byType := map[string]int{}
	sessions := map[string]bool{}
	for _, e := range evs {
		byType[e.Type]++
		sessions[e.SessionID] = true
		if e.Via != "browser" {
			t.Errorf("event %s came via %s", e.ID, e.Via)
		}
		if e.Bot || e.UserAgent != enginetest.BrowserUA {
			t.Errorf("event %s: bot %v, user agent %q; want the browser's, not a bot", e.ID, e.Bot, e.UserAgent)
		}
	}
	t.Logf("events: %v", byType)
	if byType["page_view"] != 5 || byType["product_view"] != 1 || byType["add_to_cart"] != 1 || byType["checkout"] != 1 || byType["order"] != 1 || byType["login"] != 1 {
		t.Errorf("events by type %v; want 5 page views (home, product, cart, checkout, thanks), product_view, add_to_cart, checkout, login, order", byType)
	}
	if len(sessions) != 1 {
		t.Errorf("%d sessions, want 1: %v", len(sessions), sessions)
	}
	for _, e := range evs {
		switch e.Type {
		case "product_view", "add_to_cart":
			if string(e.Props["product_id"]) != `"1001"` {
				t.Errorf("%s product_id %s", e.Type, e.Props["product_id"])
			}
		case "order":
			if string(e.Props["currency"]) != `"EUR"` || string(e.Props["value"]) != "111.74" || !strings.Contains(string(e.Props["items"]), `"product_id":"1001"`) {
				t.Errorf("order props %v", e.Props)
			}
		}
	}
	// the anonymous profile was merged into the user
	a.Fold(t)
	a.Store.Read(func(tx *store.Tx) error {
		u, err := tx.Profile("u:jane@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if u.Events != int64(len(evs)) || u.Sessions != 1 || u.Orders != 1 || len(u.AnonymousIDs) != 1 {
			t.Errorf("profile %+v, want %d events in one session", u, len(evs))
		}
		if _, err := tx.Profile("a:" + u.AnonymousIDs[0]); err != store.ErrNotFound {
			t.Errorf("the anonymous profile is still there: %v", err)
		}
		return nil
	})

	// 13 hours later (the last event moved back), a visit is a new session
	var before string
	err = chromedp.Run(ctx,
		chromedp.Evaluate(`localStorage.getItem("shoptrail_sid")`, &before),
		chromedp.Evaluate(`localStorage.setItem("shoptrail_last", String(Date.now() - 13*3600*1000))`, nil),
		chromedp.Navigate(demo+"?return=1"),
		chromedp.WaitVisible(`#p-1001`),
	)
	if err != nil {
		t.Fatal(err)
	}
	ret := events(t, a, "type=page_view&email=jane@example.com", 6)
	if len(ret) < 6 || !strings.HasSuffix(ret[0].URL, "?return=1") || ret[0].SessionID == before {
		t.Fatalf("the return visit: %+v (session before %s)", ret[0].Event, before)
	}
}

func TestCampaignVisitIsATouchpointAndAVisitFromReferrer(t *testing.T) {
	a := enginetest.NewApp(t)
	ctx := browser(t)
	if err := chromedp.Run(ctx,
		chromedp.Navigate(a.PublicURL+"/demo/?utm_source=newsletter&utm_medium=email&utm_campaign=black-friday"),
		chromedp.WaitVisible(`#p-1001`),
	); err != nil {
		t.Fatal(err)
	}
	vfr := events(t, a, "type=visit_from_referrer", 1)
	if len(vfr) != 1 || string(vfr[0].Props["channel"]) != `"Email"` || string(vfr[0].Props["campaign"]) != `"black-friday"` {
		t.Fatalf("visit_from_referrer: %+v", vfr)
	}
	a.Fold(t)
	a.Store.Read(func(tx *store.Tx) error {
		tps, err := tx.Touchpoints("a:" + vfr[0].AnonymousID)
		if err != nil || len(tps) != 1 || tps[0].Channel != "Email" || tps[0].Source != "newsletter" {
			t.Errorf("touchpoints %+v %v", tps, err)
		}
		return nil
	})
}

// A shopper on a slow phone leaves before the WASM tracker has loaded: the
// stub's beacon has counted the visit all the same.
func TestVisitCountsWhenTheShopperLeavesBeforeTheTrackerLoads(t *testing.T) {
	a := enginetest.NewApp(t)
	ctx := browser(t)
	url := a.PublicURL + "/demo/p/1009?utm_source=google&utm_medium=cpc"
	err := chromedp.Run(ctx,
		network.Enable(),
		// 50 KB/s: the page arrives at once, the ~1 MB tracker would take 20 s
		network.EmulateNetworkConditions(false, 50, 50*1024, 50*1024),
		chromedp.Navigate(url),
		chromedp.WaitReady(`#add-to-cart`),
	)
	if err != nil {
		t.Fatal(err)
	}
	var waiting bool // the stub's queue is still there: the WASM tracker has not run
	chromedp.Run(ctx, chromedp.Evaluate(`"q" in window.shoptrail`, &waiting))
	if !waiting {
		t.Fatal("the tracker loaded despite the throttling: the test proves nothing")
	}
	// the shopper leaves: close the tab
	if err := chromedp.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	evs := events(t, a, "type=page_view", 1)
	if len(evs) != 1 || evs[0].URL != url || evs[0].Channel != "Paid Search" {
		t.Fatalf("page views %+v", evs)
	}
}

// With the tracker blocked (an ad blocker, a broken deploy), the shop's
// pages still work and nothing is thrown into them; calls are queued.
func TestShopWorksWhenTheTrackerIsBlocked(t *testing.T) {
	a := enginetest.NewApp(t)
	ctx := browser(t)
	var errs int
	err := chromedp.Run(ctx,
		network.Enable(),
		network.SetBlockedURLs([]string{"*/tracker.js", "*.wasm"}),
		// count every error thrown in every page, from its first script on
		chromedp.ActionFunc(func(ctx context.Context) error {
			_, err := page.AddScriptToEvaluateOnNewDocument(`window.__errs = 0; addEventListener("error", function () { window.__errs++ });`).Do(ctx)
			return err
		}),
		chromedp.Navigate(a.PublicURL+"/demo/p/1001"),
		chromedp.WaitVisible(`#add-to-cart`),
		chromedp.Click(`#add-to-cart`),
		chromedp.WaitVisible(`#to-checkout`),
		chromedp.Evaluate(`window.__errs`, &errs),
	)
	if err != nil {
		t.Fatalf("the shop stopped working: %v", err)
	}
	if errs != 0 {
		t.Errorf("%d errors were thrown into the page", errs)
	}
	// the stub still counted both page views
	evs := events(t, a, "type=page_view", 2)
	if len(evs) != 2 {
		t.Errorf("%d page views, want 2 (the stub's beacons)", len(evs))
	}
}
