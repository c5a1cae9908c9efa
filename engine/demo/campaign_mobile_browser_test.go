package demo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/device"

	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// scrollJS scrolls the page to y in steps, one every ms milliseconds, and
// resolves a little after the last (scroll events come with frames).
const scrollJS = `window.__scroll=function(y,steps,ms){return new Promise(function(done){var from=scrollY,i=0;
(function f(){i++;scrollTo(0,from+(y-from)*i/steps);if(i<steps)setTimeout(f,ms);else setTimeout(done,100)})()})};
var e=document.createElement("div");e.style.height="8000px";document.body.appendChild(e);`

func scroll(y, steps, ms int) chromedp.Action {
	return chromedp.Evaluate(fmt.Sprintf("__scroll(%d,%d,%d)", y, steps, ms), nil, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
		return p.WithAwaitPromise(true)
	})
}

// TestCampaignExitIntentOnMobile: on a phone (Chromium's iPhone 13
// emulation, touch, a coarse pointer) an exit-intent popup shows on a fast
// scroll up — not on slow scrolling either way — or when the shopper
// leaves the tab (the page becomes hidden); on a desktop a fast scroll up
// is not an exit, leaving the window at the top is.
func TestCampaignExitIntentOnMobile(t *testing.T) {
	a := enginetest.NewApp(t)
	create(t, a, `{"name":"exit","status":"active","groups":[
	 {"name":"popup","conditions":[{"kind":"url","op":"contains","value":"/p/"}],
	  "placement":{"mode":"popup"},"trigger":{"kind":"exit_intent"},
	  "variations":[{"name":"only","weight":100,"html":"<p id=\"exit\">Still thinking?</p>"}]}]}`)
	ctx := browser(t)
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		step, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Run(step, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	has := func() bool {
		var n int
		run("count", chromedp.Evaluate(`document.querySelectorAll("#exit").length`, &n))
		return n > 0
	}
	settle := chromedp.Sleep(300 * time.Millisecond) // the decision is in long before
	open := func(path string) {
		t.Helper()
		run("open "+path, chromedp.Navigate(a.PublicURL+path), chromedp.WaitVisible(`h1`), settle, chromedp.Evaluate(scrollJS, nil))
	}

	run("emulate a phone", chromedp.Emulate(device.IPhone13))
	var coarse bool
	run("pointer", chromedp.Evaluate(`matchMedia("(pointer:coarse)").matches`, &coarse))
	if !coarse {
		t.Fatal("the emulated phone has no coarse pointer")
	}
	open("/demo/p/1001")
	run("scroll down slowly", scroll(2000, 20, 40))
	if has() {
		t.Fatal("the popup showed while scrolling down")
	}
	run("scroll up slowly", scroll(1800, 20, 60), settle) // 10 px every 60 ms
	if has() {
		t.Fatal("the popup showed on a slow scroll up")
	}
	run("scroll up fast", scroll(1500, 3, 30), chromedp.WaitVisible(`#exit`)) // 300 px in 90 ms
	if evs := events(t, a, "type=campaign_impression", 1); len(evs) != 1 {
		t.Fatalf("%d impressions", len(evs))
	}

	// leaving the tab: the page becomes hidden (headless Chromium keeps
	// its tabs visible, so the page is told as a browser tells it)
	open("/demo/p/1002")
	if has() {
		t.Fatal("the popup showed on arrival")
	}
	run("leave the tab", chromedp.Evaluate(`Object.defineProperty(document,"visibilityState",{value:"hidden",configurable:true});
		document.dispatchEvent(new Event("visibilitychange"))`, nil), chromedp.WaitVisible(`#exit`))

	// a desktop: scrolling is not an exit, the mouse leaving at the top is
	run("emulate a desktop", chromedp.EmulateReset())
	open("/demo/p/1003")
	run("scroll", scroll(2000, 10, 30), scroll(1500, 3, 30), settle)
	if has() {
		t.Fatal("a fast scroll up on a desktop showed the popup")
	}
	run("leave the window", chromedp.Evaluate(`document.dispatchEvent(new MouseEvent("mouseout",{clientY:-1,bubbles:true}))`, nil), chromedp.WaitVisible(`#exit`))
}
