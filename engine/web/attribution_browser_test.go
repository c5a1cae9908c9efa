package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// Reports → Attribution in Chromium: DESIGN.md's worked example, the table
// of channels × models, the chart, a cell's orders, the CSV link.
func TestAttributionPageInChromium(t *testing.T) {
	a := enginetest.NewApp(t)
	day := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, time.UTC) }
	visit := func(id, sess, url, ref string, at time.Time) map[string]any {
		return map[string]any{"id": id, "type": "page_view", "anonymous_id": "b", "session_id": sess, "url": url, "referrer": ref, "time": at}
	}
	a.Do(t, "POST", "/api/v1/events", map[string]any{"events": []any{
		visit("v1", "s1", "https://shop.example/p/1", "https://www.google.com/", day(1, 10, 0)),
		visit("v2", "s2", "https://shop.example/?utm_source=newsletter&utm_medium=email", "", day(3, 20, 0)),
		visit("v3", "s3", "https://shop.example/p/3", "https://www.facebook.com/", day(5, 12, 0)),
		visit("v4", "s4", "https://shop.example/", "", day(6, 9, 0)),
		map[string]any{"id": "o", "type": "order", "anonymous_id": "b", "session_id": "s4", "email": "ann@example.com", "time": day(6, 9, 10),
			"props": map[string]any{"order_id": "A-100", "value": 100, "currency": "EUR"}},
	}}, nil, a.Auth()...)
	a.Fold(t)
	if err := a.Guard.Setup(a.Guard.SetupToken(), "owner", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	ctx := enginetest.Browser(t)
	step, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var table string
	var bars int
	err := chromedp.Run(step,
		signInTasks(a),
		chromedp.WaitVisible(`#to-attribution`),
		chromedp.Click(`#to-attribution`),
		chromedp.WaitVisible(`#period`),
		chromedp.SetValue(`#from`, "2026-11-01"),
		chromedp.SetValue(`#to`, "2026-11-30"),
		chromedp.Click(`#show`),
	)
	if err == nil {
		// the page before had a table too: wait for the new page
		err = waitJS(step, `location.search.includes("from=2026-11-01") && document.readyState === "complete" && !!document.querySelector("#attribution")`)
	}
	if err == nil {
		err = chromedp.Run(step, chromedp.Text(`#attribution`, &table),
			chromedp.Evaluate(`document.querySelectorAll('#models-chart rect').length`, &bars))
	}
	if err != nil {
		var body string
		chromedp.Run(ctx, chromedp.Evaluate(`document.body.innerText`, &body))
		t.Fatalf("%v; the page says: %.600s", err, body)
	}
	for _, want := range []string{"Organic Search", "Email", "Organic Social", "Direct", "25.00", "40.00", "18.51", "23.51", "27.73", "30.25"} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}
	if bars != 4*7 {
		t.Errorf("%d bars, want 28", bars)
	}
	screenshot(t, ctx, "8-attribution")
	// the Email cell of the linear model: the order behind it
	var orders string
	err = chromedp.Run(step,
		chromedp.Click(`//tr[th[text()="Email"]]/td[4]/a`, chromedp.BySearch),
		chromedp.WaitVisible(`#credited`),
		chromedp.Text(`#credited`, &orders),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(orders, "A-100") || !strings.Contains(orders, "25.00 (25.0 %)") || !strings.Contains(orders, "Organic Search > Email > Organic Social > Direct") {
		t.Errorf("orders behind Email/linear:\n%s", orders)
	}
	screenshot(t, ctx, "9-attribution-orders")
	// the CSV link serves the same report to a signed-in admin
	c := signedIn(t, a)
	resp, body := c.do("GET", "/reports/attribution/export?from=2026-11-01&to=2026-11-30&format=csv", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "channel,last_interaction_orders") || !strings.Contains(body, "Email,") {
		t.Errorf("csv: %d %.200s", resp.StatusCode, body)
	}
	if resp, _ := (&adminClient{t: t, base: a.AdminURL}).do("GET", "/reports/attribution/export?format=csv", nil); resp.StatusCode != 303 {
		t.Errorf("csv without signing in: %d", resp.StatusCode)
	}
}

// waitJS waits until expr is true in the page, through navigations (an
// evaluation cut by one is tried again).
func waitJS(ctx context.Context, expr string) error {
	for {
		var ok bool
		if err := chromedp.Run(ctx, chromedp.Evaluate(expr, &ok)); err == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// signInTasks signs the owner in at the admin listener (after Setup),
// in a 1280×900 window.
func signInTasks(a *enginetest.App) chromedp.Tasks {
	return chromedp.Tasks{
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(a.AdminURL + "/login"),
		chromedp.WaitVisible(`#username`),
		chromedp.SendKeys(`#username`, "owner"),
		chromedp.SendKeys(`#password`, "correct horse battery"),
		chromedp.Click(`#sign-in`),
	}
}
