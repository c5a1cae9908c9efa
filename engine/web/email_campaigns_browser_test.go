package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/smtpfallback/smtptest"
)

// Email → Campaigns and Automations in Chromium: compose a campaign to a
// segment, see the preview (a profile's name, escaped) in its sandboxed
// frame, send it, read its report; turn an automation on, and an invalid
// one names the field.
func TestEmailCampaignsInChromium(t *testing.T) {
	srv, err := smtptest.Start(smtptest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg := enginetest.Config(t)
	cfg.Email.From = "Northpeak <hello@shop.example>"
	cfg.Email.SMTP = config.EmailSMTP{Host: "127.0.0.1", Port: srv.Port, TLS: "none"}
	a := enginetest.Start(t, cfg)
	for _, u := range []map[string]any{{"email": "ann@example.com", "firstName": "<b>Ann</b>", "city": "Paris", "isSubscribed": true},
		{"email": "bob@example.com", "firstName": "Bob", "city": "Paris", "isSubscribed": true}} {
		if st := a.Do(t, "POST", "/api/v1/user", u, nil, a.Auth()...); st != 201 {
			t.Fatalf("user: %d", st)
		}
	}
	var seg struct{ ID string }
	a.Do(t, "POST", "/api/v1/segments", `{"name":"Parisians","conditions":[{"attribute":"city","op":"eq","value":"Paris"}]}`, &seg, a.Auth()...)
	if err := a.Guard.Setup(a.Guard.SetupToken(), "owner", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	ctx := enginetest.Browser(t)
	step, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	fail := func(err error) {
		t.Helper()
		var body string
		chromedp.Run(ctx, chromedp.Evaluate(`document.body.innerText`, &body))
		t.Fatalf("%v; the page says: %.800s", err, body)
	}
	err = chromedp.Run(step, signInTasks(a), chromedp.WaitVisible(`#events`),
		chromedp.Navigate(a.AdminURL+"/email"), chromedp.Click(`#tab-campaigns`), chromedp.WaitVisible(`#new-campaign`),
		chromedp.Click(`#new-campaign`), chromedp.WaitVisible(`#campaign-form`),
		chromedp.SetValue(`#name`, "Spring"), chromedp.SetValue(`#subject`, "Spring is here"),
		chromedp.SetValue(`#segment`, seg.ID),
		chromedp.SetValue(`#html`, `<p>Hello {{.FirstName | default "there"}}</p>`),
		chromedp.Click(`#save`), chromedp.WaitVisible(`#message`))
	if err != nil {
		fail(err)
	}
	// the preview as Ann: her name escaped, inside the sandboxed frame
	err = chromedp.Run(step, chromedp.SetValue(`#preview-as`, "ann@example.com"), chromedp.Submit(`#preview-as`), chromedp.WaitVisible(`#preview`))
	if err == nil {
		err = waitJS(step, `document.querySelector("#preview").getAttribute("sandbox") === ""`)
	}
	if err != nil {
		fail(err)
	}
	chromedp.Run(step, chromedp.Sleep(time.Second)) // the frame loads after the page
	// the frame loaded (its document is out of reach: sandboxed, an opaque origin)
	var status float64
	if err := chromedp.Run(step, chromedp.Evaluate(`performance.getEntriesByType("resource").filter(e => e.initiatorType === "iframe").map(e => e.responseStatus)[0] || 0`, &status)); err != nil || status != 200 {
		t.Errorf("the preview frame: status %v, %v", status, err)
	}
	screenshot(t, step, "email-campaigns-1-compose")
	// the frame's document is not reachable (sandboxed: an opaque origin); fetch it as the page would
	var preview string
	err = chromedp.Run(step, chromedp.Evaluate(`fetch(document.querySelector("#preview").src).then(r => r.text())`, &preview, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if err != nil {
		fail(err)
	}
	if !strings.Contains(preview, "Hello &lt;b&gt;Ann&lt;/b&gt;") {
		t.Errorf("preview: %q", preview)
	}
	err = chromedp.Run(step, chromedp.Click(`#send-now`), chromedp.WaitVisible(`#report-counts`))
	if err != nil {
		fail(err)
	}
	if _, err := srv.Wait(2, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	var sent string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		a.Fold(t)
		if err := chromedp.Run(step, chromedp.Reload(), chromedp.WaitVisible(`#r-sent`), chromedp.Text(`#r-sent`, &sent)); err != nil {
			fail(err)
		}
		if sent == "2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("report says %q sent", sent)
		}
	}
	screenshot(t, step, "email-campaigns-2-report")

	// automations: a bad delay names the field; a good one saves
	err = chromedp.Run(step, chromedp.Navigate(a.AdminURL+"/email/automations"), chromedp.WaitVisible(`#automations`),
		chromedp.SetValue(`#edit-welcome input[name=delay]`, "soon"), chromedp.Click(`#save-welcome`), chromedp.WaitVisible(`#save-error`))
	var msg string
	if err == nil {
		err = chromedp.Run(step, chromedp.Text(`#save-error`, &msg))
	}
	if err != nil {
		fail(err)
	}
	if !strings.Contains(msg, "welcome.delay") {
		t.Errorf("error: %q", msg)
	}
	err = chromedp.Run(step, chromedp.Click(`#edit-welcome input[name=enabled]`), chromedp.SetValue(`#edit-welcome input[name=delay]`, "0s"),
		chromedp.SetValue(`#edit-welcome input[name=subject]`, "Welcome"), chromedp.SetValue(`#edit-welcome textarea[name=html]`, "<p>Hi</p>"),
		chromedp.Click(`#save-welcome`), chromedp.WaitVisible(`#saved`), chromedp.Text(`#row-welcome`, &msg))
	if err != nil {
		fail(err)
	}
	if !strings.Contains(msg, "on") {
		t.Errorf("welcome row: %q", msg)
	}
	screenshot(t, step, "email-campaigns-3-automations")
}
