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

// Email → Automations in Chromium: back_in_stock and price_drop are listed
// with their stats and explained, and price_drop turns on from its form.
func TestProductAutomationsInChromium(t *testing.T) {
	cfg := enginetest.Config(t)
	cfg.Email.From = "Northpeak <hello@shop.example>"
	cfg.Email.SMTP = config.EmailSMTP{Host: "127.0.0.1", Port: 1, TLS: "none"}
	a := enginetest.Start(t, cfg)
	if err := a.Guard.Setup(a.Guard.SetupToken(), "owner", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	ctx := enginetest.Browser(t)
	step, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var hint, row string
	err := chromedp.Run(step, signInTasks(a), chromedp.WaitVisible(`#events`),
		chromedp.Navigate(a.AdminURL+"/email/automations"), chromedp.WaitVisible(`#row-back_in_stock`),
		chromedp.Text(`#edit-price_drop .hint`, &hint),
		chromedp.Click(`#edit-price_drop input[name=enabled]`), chromedp.SetValue(`#edit-price_drop input[name=delay]`, "0s"),
		chromedp.SetValue(`#edit-price_drop input[name=subject]`, "Now for less"),
		chromedp.SetValue(`#edit-price_drop textarea[name=html]`, "<p>Cheaper now:</p>{{products .Products}}"),
		chromedp.Click(`#save-price_drop`), chromedp.WaitVisible(`#saved`), chromedp.Text(`#row-price_drop`, &row))
	if err != nil {
		var body string
		chromedp.Run(ctx, chromedp.Evaluate(`document.body.innerText`, &body))
		t.Fatalf("%v; the page says: %.800s", err, body)
	}
	if !strings.Contains(hint, "products .Products") || !strings.Contains(hint, "30 days") {
		t.Errorf("price_drop hint: %q", hint)
	}
	if !strings.Contains(row, "on") {
		t.Errorf("price_drop row: %q", row)
	}
	screenshot(t, step, "email-automations-price-drop")
	v, err := a.Automations.Get("price_drop")
	if err != nil || !v.Enabled || v.Subject != "Now for less" {
		t.Errorf("stored: %+v %v", v.Automation, err)
	}
}
