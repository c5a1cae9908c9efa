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

// Email → Templates in Chromium: write a template (an error names the
// line), see it rendered for a profile in the sandboxed frame, send a test,
// use it in a campaign, and be refused its deletion while the campaign
// waits to be sent.
func TestEmailTemplatesInChromium(t *testing.T) {
	srv, err := smtptest.Start(smtptest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg := enginetest.Config(t)
	cfg.Email.From = "Northpeak <hello@shop.example>"
	cfg.Email.SMTP = config.EmailSMTP{Host: "127.0.0.1", Port: srv.Port, TLS: "none"}
	a := enginetest.Start(t, cfg)
	if st := a.Do(t, "POST", "/api/v1/user", map[string]any{"email": "ann@example.com", "firstName": "<i>Ann</i>", "city": "Paris", "isSubscribed": true}, nil, a.Auth()...); st != 201 {
		t.Fatalf("user: %d", st)
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
	// a template with an error on its second line
	var msg string
	err = chromedp.Run(step, chromedp.EmulateViewport(1280, 900), signInTasks(a), chromedp.WaitVisible(`#events`),
		chromedp.Navigate(a.AdminURL+"/email"), chromedp.Click(`#tab-templates`), chromedp.WaitVisible(`#new-template`),
		chromedp.Click(`#new-template`), chromedp.WaitVisible(`#template-form`),
		chromedp.SetValue(`#name`, "Monthly letter"), chromedp.SetValue(`#subject`, "News from Northpeak"),
		chromedp.SetValue(`#html`, "<h1>Hello</h1>\n<p>{{.FirstName</p>"),
		chromedp.Click(`#save`), chromedp.WaitVisible(`#save-error`), chromedp.Text(`#save-error`, &msg))
	if err != nil {
		fail(err)
	}
	if !strings.Contains(msg, "html") || !strings.Contains(msg, "line 2") {
		t.Errorf("error: %q", msg)
	}
	err = chromedp.Run(step, chromedp.SetValue(`#html`, "<h1>Hello {{.FirstName | default \"there\"}}</h1>\n<p>Our monthly letter.</p>"),
		chromedp.Click(`#save`), chromedp.WaitVisible(`#message`),
		chromedp.SetValue(`#preview-as`, "ann@example.com"), chromedp.Click(`#preview-show`))
	if err == nil {
		err = waitJS(step, `location.search.includes("as=ann") && document.readyState === "complete" && document.querySelector("#preview") !== null`)
	}
	if err == nil {
		err = waitJS(step, `document.querySelector("#preview").getAttribute("sandbox") === ""`)
	}
	if err != nil {
		fail(err)
	}
	var preview string
	err = chromedp.Run(step, chromedp.Evaluate(`fetch(document.querySelector("#preview").src).then(r => r.text())`, &preview, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if err != nil {
		fail(err)
	}
	if !strings.Contains(preview, "Hello &lt;i&gt;Ann&lt;/i&gt;") {
		t.Errorf("preview: %q", preview)
	}
	chromedp.Run(step, chromedp.Sleep(500*time.Millisecond)) // the frame loads after the page
	screenshot(t, step, "email-templates-1-edit")
	// a test send
	err = chromedp.Run(step, chromedp.SetValue(`#test-to`, "qa@example.com"), chromedp.SetValue(`#test-as`, "ann@example.com"),
		chromedp.Click(`#test-send`), chromedp.WaitVisible(`#message`), chromedp.Text(`#message`, &msg))
	if err != nil {
		fail(err)
	}
	if !strings.Contains(msg, "test message") {
		t.Errorf("notice: %q", msg)
	}
	msgs, err := srv.Wait(1, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m := string(msgs[0].Data); msgs[0].To[0] != "qa@example.com" || !strings.Contains(m, "[test] News from Northpeak") {
		t.Errorf("test message to %v: %.400s", msgs[0].To, m)
	}
	// a campaign scheduled with the template keeps it from being deleted
	var tplURL string
	chromedp.Run(step, chromedp.Location(&tplURL))
	err = chromedp.Run(step, chromedp.Navigate(a.AdminURL+"/email/campaigns/new"), chromedp.WaitVisible(`#campaign-form`),
		chromedp.SetValue(`#name`, "November letter"), chromedp.SetValue(`#segment`, seg.ID),
		chromedp.SetValue(`#template`, strings.TrimPrefix(strings.Split(tplURL, "?")[0], a.AdminURL+"/email/templates/")),
		chromedp.SetValue(`#send_at`, time.Now().Add(72*time.Hour).Format("2006-01-02T15:04")),
		chromedp.Click(`#schedule`), chromedp.WaitVisible(`#report-counts`),
		chromedp.Navigate(strings.Split(tplURL, "?")[0]), chromedp.WaitVisible(`#delete`),
		chromedp.Click(`#delete`), chromedp.WaitVisible(`#save-error`), chromedp.Text(`#save-error`, &msg))
	if err != nil {
		fail(err)
	}
	if !strings.Contains(msg, "November letter") || !strings.Contains(msg, "scheduled") {
		t.Errorf("refusal: %q", msg)
	}
	screenshot(t, step, "email-templates-2-in-use")
	err = chromedp.Run(step, chromedp.Navigate(a.AdminURL+"/email/templates"), chromedp.WaitVisible(`#email-templates`), chromedp.Text(`#email-templates`, &msg))
	if err != nil {
		fail(err)
	}
	if !strings.Contains(msg, "Monthly letter") || !strings.Contains(msg, "News from Northpeak") {
		t.Errorf("list: %q", msg)
	}
}
