package web_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// The admin UI's segment pages over HTTP: list, presets, editor, a bad rule
// kept with its error, create, members, edit, CSV, delete; cross-origin
// changes refused.
func TestSegmentAdminPages(t *testing.T) {
	a := enginetest.NewApp(t, func(c *config.Config) { c.Tracking.VisitFromReferrer = true })
	a.Do(t, "POST", "/api/v1/events", map[string]any{"events": []any{visit(`"><svg/onload=alert(1)>`, "facebook"),
		visit("f1", "facebook"), map[string]any{"type": "login", "anonymous_id": "f1", "session_id": "sf1", "email": "fan@example.com"}}}, nil, a.Auth()...)
	a.Fold(t)
	c := signedIn(t, a)
	for path, want := range map[string]string{
		"/segments":                          "Abandoned cart (added to cart, no order in 24 h)",
		"/segments/new":                      "Create the segment",
		"/segments/new?preset=facebook":      "visit_from_referrer",
		"/segments/new?preset=nonesuch":      "page_view",
		"/segments/new?preset=email-openers": "email_open",
	} {
		if resp, page := c.do("GET", path, nil); resp.StatusCode != 200 || !strings.Contains(page, want) {
			t.Errorf("GET %s: %d, want %q", path, resp.StatusCode, want)
		}
	}
	// a bad rule comes back with the path of the bad node, and is kept
	bad := `{"name":"x","conditions":[{"event":"order","within":"forever"}]}`
	resp, page := c.do("POST", "/segments", url.Values{"rule": {bad}})
	if resp.StatusCode != 400 || !strings.Contains(page, "conditions[0].within") || !strings.Contains(page, "forever") {
		t.Fatalf("bad rule: %d %.300s", resp.StatusCode, page)
	}
	resp, _ = c.do("POST", "/segments", url.Values{"rule": {fbRule}})
	if resp.StatusCode != 303 {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	seg := resp.Header.Get("Location")
	if !regexp.MustCompile(`^/segments/[0-9a-f]{16}$`).MatchString(seg) {
		t.Fatalf("location %q", seg)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, page = c.do("GET", seg, nil)
		if strings.Contains(page, "fan@example.com") && strings.Contains(page, "svg") || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(page, `href="/users/fan@example.com"`) || !strings.Contains(page, "&lt;svg/onload=alert(1)&gt;") || strings.Contains(page, "<svg") {
		t.Fatalf("members page: %.2000s", page)
	}
	if _, page := c.do("GET", "/users/fan@example.com", nil); !strings.Contains(page, `href="`+seg+`"`) || !strings.Contains(page, "Visitors from Facebook") {
		t.Fatalf("the profile does not show its segment")
	}
	if resp, page := c.do("GET", seg+"/edit", nil); resp.StatusCode != 200 || !strings.Contains(page, "Save and rebuild") {
		t.Fatalf("edit: %d", resp.StatusCode)
	}
	if resp, page := c.do("GET", seg+"/export", nil); resp.StatusCode != 200 || !strings.Contains(page, "fan@example.com,,") || !strings.Contains(page, `"><svg`) {
		t.Fatalf("export: %d %q", resp.StatusCode, page)
	}
	if resp, page := c.do("POST", "/segments/preview", nil); resp.StatusCode != 400 || !strings.Contains(page, `"field":"body"`) {
		t.Fatalf("empty preview: %d %s", resp.StatusCode, page)
	}
	// another origin may change nothing
	for _, path := range []string{"/segments", seg, seg + "/delete", "/segments/preview"} {
		if resp, _ := c.do("POST", path, url.Values{"rule": {fbRule}}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); resp.StatusCode != 403 {
			t.Errorf("cross-origin POST %s: %d", path, resp.StatusCode)
		}
	}
	anon := &adminClient{t: t, base: a.AdminURL}
	for _, path := range []string{"/segments", seg, seg + "/edit", seg + "/export", "/segments/new"} {
		if resp, _ := anon.do("GET", path, nil); resp.StatusCode != 303 {
			t.Errorf("GET %s without signing in: %d", path, resp.StatusCode)
		}
	}
	if resp, _ := c.do("POST", seg+"/delete", url.Values{}); resp.StatusCode != 303 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if resp, _ := c.do("GET", seg, nil); resp.StatusCode != 404 {
		t.Fatalf("deleted segment: %d", resp.StatusCode)
	}
}

// The segment editor in Chromium: a preset, the live count as the rule is
// edited in the builder, saving, the members and the list with its count.
func TestSegmentEditorInChromium(t *testing.T) {
	a := enginetest.NewApp(t, func(c *config.Config) { c.Tracking.VisitFromReferrer = true })
	a.Do(t, "POST", "/api/v1/events", map[string]any{"events": []any{visit("f1", "facebook"), visit("f2", "facebook"), visit("g1", "google"),
		map[string]any{"type": "login", "anonymous_id": "f1", "session_id": "sf1", "email": "fan@example.com"},
		map[string]any{"type": "add_to_cart", "anonymous_id": "f2", "session_id": "sf2", "props": map[string]any{"product_id": "1001"}}}}, nil, a.Auth()...)
	a.Fold(t)
	if err := a.Guard.Setup(a.Guard.SetupToken(), "owner", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	ctx := enginetest.Browser(t)
	step, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	fail := func(err error) {
		t.Helper()
		var body string
		chromedp.Run(ctx, chromedp.Evaluate(`document.body.innerText`, &body))
		t.Fatalf("%v; the page says: %.800s", err, body)
	}
	err := chromedp.Run(step, signInTasks(a), chromedp.WaitVisible(`#events`),
		chromedp.Navigate(a.AdminURL+"/segments"), chromedp.WaitVisible(`#presets`))
	if err != nil {
		fail(err)
	}
	screenshot(t, step, "segments-1-empty")
	err = chromedp.Run(step, chromedp.Click(`//a[contains(., "Visitors from Facebook")]`, chromedp.BySearch), chromedp.WaitVisible(`#b-conditions .condition`))
	if err == nil {
		err = waitJS(step, `document.querySelector("#preview-count").textContent === "2"`)
	}
	if err != nil {
		fail(err)
	}
	// add a condition in the builder: also added to the cart
	err = chromedp.Run(step, chromedp.Click(`#add-condition`),
		typeInto(`#b-conditions .condition:nth-child(2) .b-event`, "add_to_cart"),
		typeInto(`#b-conditions .condition:nth-child(2) .b-within`, "720h"))
	if err == nil {
		err = waitJS(step, `document.querySelector("#preview-count").textContent === "1" && document.querySelector("#rule").value.includes("add_to_cart")`)
	}
	if err != nil {
		fail(err)
	}
	screenshot(t, step, "segments-2-editor")
	// a broken condition says where
	var msg string
	err = chromedp.Run(step, typeInto(`#b-conditions .condition:nth-child(2) .b-within`, "soon"))
	if err == nil {
		err = waitJS(step, `document.querySelector("#preview-sample").textContent.includes("conditions[1].within")`)
	}
	if err == nil {
		err = chromedp.Run(step, typeInto(`#b-conditions .condition:nth-child(2) .b-within`, "720h"))
	}
	if err == nil {
		err = waitJS(step, `document.querySelector("#preview-count").textContent === "1"`)
	}
	if err == nil {
		err = chromedp.Run(step, chromedp.Click(`#save-segment`), chromedp.WaitVisible(`#member-count`))
	}
	if err == nil {
		err = waitJS(step, `(location.reload(), true)`)
	}
	if err == nil {
		err = waitJS(step, `!!document.querySelector("#members") && document.querySelector("#segment-state").textContent.includes("live")`)
	}
	if err == nil {
		err = chromedp.Run(step, chromedp.Text(`#members`, &msg))
	}
	if err != nil {
		fail(err)
	}
	if !strings.Contains(msg, "anonymous f2") {
		t.Fatalf("members: %q", msg)
	}
	screenshot(t, step, "segments-3-members")
	var list string
	err = chromedp.Run(step, chromedp.Navigate(a.AdminURL+"/segments"), chromedp.WaitVisible(`#segments`), chromedp.Text(`#segments`, &list))
	if err != nil {
		fail(err)
	}
	if !strings.Contains(list, "Visitors from Facebook") || !strings.Contains(list, "1") {
		t.Fatalf("list: %q", list)
	}
	screenshot(t, step, "segments-4-list")
	if _, err := os.Stat(filepath.Join("testdata", "screenshots", "segments-4-list.png")); err != nil {
		t.Fatal(err)
	}
}

// typeInto sets an input's value as typing would (an input event).
func typeInto(sel, value string) chromedp.Action {
	return chromedp.Evaluate(`(function(e, v){ e.value = v; e.dispatchEvent(new Event("input", {bubbles: true})); return true })(document.querySelector(`+
		strconv.Quote(sel)+`), `+strconv.Quote(value)+`)`, nil)
}
