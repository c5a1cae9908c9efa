package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// TestDashboardKeepsItsSizeWithLongURLs: events with 8 KB URLs and
// referrers, on the page and arriving live, leave the dashboard as wide as
// the window and about as tall as with short ones (it was 12 000 px tall).
func TestDashboardKeepsItsSizeWithLongURLs(t *testing.T) {
	a := enginetest.NewApp(t, func(c *config.Config) { c.Demo.Enabled = false })
	ctx := enginetest.Browser(t)
	long := func(tag string) string {
		return "https://shop.example/" + tag + "?q=" + strings.Repeat("verylongunbrokenpathsegment", 8100/27) // near wire.MaxURLLen
	}
	send := func(id string) {
		t.Helper()
		var ans answer
		if st := a.Do(t, "POST", "/api/v1/events", batch(pv(id, "a-1", "s-1", long("p-"+id), long("ref-"+id))), &ans, a.Auth()...); st != 200 || ans.Accepted != 1 {
			t.Fatalf("send %s: %d %+v", id, st, ans)
		}
	}
	for _, id := range []string{"e1", "e2", "e3"} {
		send(id)
	}
	if err := a.Guard.Setup(a.Guard.SetupToken(), "owner", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	size := func() (w, h, vw int) {
		t.Helper()
		var dims []int
		if err := chromedp.Run(ctx, chromedp.Evaluate(`[document.documentElement.scrollWidth, document.documentElement.scrollHeight, window.innerWidth]`, &dims)); err != nil {
			t.Fatal(err)
		}
		return dims[0], dims[1], dims[2]
	}
	step, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := chromedp.Run(step,
		signInTasks(a),
		chromedp.WaitVisible(`#events`),
	)
	if err != nil {
		var body string
		chromedp.Run(ctx, chromedp.Evaluate(`location.href + "\n" + (document.body ? document.body.innerText : document.documentElement.outerHTML)`, &body))
		t.Fatalf("sign in: %v; the page says: %.500s", err, body)
	}
	w, h, vw := size()
	if w > vw || h > 3000 {
		t.Errorf("dashboard with 3 long URLs: %d×%d px in a %d px wide window", w, h, vw)
	}
	// a live row is cut the same way, once the stream is open
	wait, cancelWait := context.WithTimeout(ctx, 10*time.Second)
	defer cancelWait()
	if err := chromedp.Run(wait, chromedp.WaitVisible(`#live[data-connected]`, chromedp.ByQuery)); err != nil {
		t.Fatalf("the live stream did not open: %v", err)
	}
	send("e4")
	deadline := time.Now().Add(10 * time.Second)
	for {
		var rows int
		chromedp.Run(ctx, chromedp.Evaluate(`document.querySelectorAll('#events tbody tr').length`, &rows))
		if rows == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live row did not arrive: %d rows", rows)
		}
		time.Sleep(100 * time.Millisecond)
	}
	w, h2, vw := size()
	if w > vw || h2 > h+400 {
		t.Errorf("after a live row: %d×%d px (was %d px tall) in a %d px wide window", w, h2, h, vw)
	}
	t.Logf("dashboard: %d px tall with 3 long URLs, %d px after a live row", h, h2)
	var cell, title string
	last, cancelLast := context.WithTimeout(ctx, 10*time.Second)
	defer cancelLast()
	if err := chromedp.Run(last, chromedp.Text(`#events tbody tr:first-child td.url .clip`, &cell, chromedp.ByQuery),
		chromedp.AttributeValue(`#events tbody tr:first-child td.url .clip`, "title", &title, nil, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if n := len([]rune(cell)); n > 201 || !strings.HasPrefix(cell, "https://shop.example/p-e4") || !strings.HasSuffix(cell, "…") || len([]rune(title)) != 2001 {
		t.Errorf("live cell: %d characters %q…, tooltip %d characters", n, cell[:40], len([]rune(title)))
	}
	screenshot(t, ctx, "dashboard-long-urls")
}
