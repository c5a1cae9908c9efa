package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/mail/sestest"
)

// TestEmailPagesInChromium: Settings → Email shows SES's account, keeps a
// typed secret out of the page, sends a test message that the Email page
// then lists as sent; a stop by SES shows the red banner and Resume.
func TestEmailPagesInChromium(t *testing.T) {
	a, _, ses, _ := mailApp(t, true)
	ctx := enginetest.Browser(t)
	if err := a.Guard.Setup(a.Guard.SetupToken(), "owner", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	run := func(what string, tasks ...chromedp.Action) {
		t.Helper()
		step, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Run(step, tasks...); err != nil {
			var body string
			chromedp.Run(ctx, chromedp.Evaluate(`location.href + "\n" + (document.body ? document.body.innerText : "")`, &body))
			t.Fatalf("%s: %v; the page says: %.800s", what, err, body)
		}
	}
	var account, page string
	run("sign in", signInTasks(a), chromedp.WaitVisible(`#events`))
	run("settings", chromedp.Navigate(a.AdminURL+"/settings/email"), chromedp.WaitVisible(`#ses-account`),
		chromedp.Text(`#ses-account`, &account))
	if !strings.Contains(account, "14 messages/s") || !strings.Contains(account, "0 sent of 50000") {
		t.Errorf("the SES account: %s", account)
	}
	run("save", chromedp.SetValue(`#ses_secret`, sesSecret), chromedp.Click(`#save-email`),
		chromedp.WaitVisible(`.notice`), chromedp.OuterHTML(`html`, &page))
	if strings.Contains(page, sesSecret) || !strings.Contains(page, "(set; leave empty to keep it)") {
		t.Errorf("the secret after saving: shown %v", strings.Contains(page, sesSecret))
	}
	screenshot(t, ctx, "8-email-settings")
	// the page after saving has a notice too: remove it, so that the one
	// waited for is the next page's
	run("test message", chromedp.Evaluate(`document.querySelectorAll(".notice").forEach(e => e.remove())`, nil),
		chromedp.SendKeys(`#test-to`, "owner@shop.example"), chromedp.Click(`#send-test`), chromedp.WaitVisible(`.notice`))
	for deadline := time.Now().Add(10 * time.Second); len(ses.Sent()) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the test message was not sent")
		}
	}
	var sent string
	run("email page", chromedp.Navigate(a.AdminURL+"/email?state=sent"), chromedp.WaitVisible(`#messages`), chromedp.Text(`#messages`, &sent))
	if !strings.Contains(sent, "owner@shop.example") || !strings.Contains(sent, "ses") {
		t.Errorf("sent messages: %s", sent)
	}
	// SES pauses sending: the banner, then Resume
	ses.Fail(sestest.Paused)
	subscribe(t, a, "jane@example.com")
	var out map[string]any
	a.Do(t, "POST", "/api/v1/emails", map[string]any{"to": "jane@example.com", "subject": "Hi", "text": "x"}, &out, a.Auth()...)
	for deadline := time.Now().Add(10 * time.Second); a.Mail.Status().Paused == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the queue did not stop")
		}
	}
	run("paused", chromedp.Navigate(a.AdminURL+"/email"), chromedp.WaitVisible(`#email-paused`))
	screenshot(t, ctx, "9-email")
	run("resume", chromedp.Click(`#resume`), chromedp.WaitVisible(`.notice`))
	waitEmail(t, a, out["id"].(string), "sent")
}
