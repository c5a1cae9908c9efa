package web_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// TestEraseFromTheProfilePageInChromium: the erase form refuses without
// the typed confirmation and erases with it.
func TestEraseFromTheProfilePageInChromium(t *testing.T) {
	a := enginetest.NewApp(t)
	seedShopper(t, a, "jane@example.com", 2)
	a.Fold(t)
	ctx := enginetest.Browser(t)
	var text string
	err := chromedp.Run(ctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(a.AdminURL+"/setup"),
		chromedp.WaitVisible(`#token`),
		chromedp.SendKeys(`#token`, a.Guard.SetupToken()),
		chromedp.SendKeys(`#username`, "owner"),
		chromedp.SendKeys(`#password`, "correct horse battery"),
		chromedp.Click(`#create`),
		chromedp.WaitVisible(`#sign-in`),
		chromedp.SendKeys(`#username`, "owner"),
		chromedp.SendKeys(`#password`, "correct horse battery"),
		chromedp.Click(`#sign-in`),
		chromedp.WaitVisible(`#events`),
		chromedp.Navigate(a.AdminURL+"/users/jane@example.com"),
		chromedp.WaitVisible(`#erase-form`),
		chromedp.Text(`#version`, &text),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(text, "Shoptrail ") {
		t.Errorf("footer %q", text)
	}
	screenshot(t, ctx, "user-data-rights")
	// a wrong confirmation: refused, the user stays
	err = chromedp.Run(ctx,
		chromedp.SendKeys(`#erase-confirm`, "someone@example.com"),
		chromedp.Click(`#erase-user`),
		chromedp.WaitVisible(`#erase-error`),
	)
	if err != nil {
		t.Fatal(err)
	}
	if st := a.Do(t, "GET", "/api/v1/user/jane@example.com", nil, nil, a.Auth()...); st != 200 {
		t.Fatalf("erased without the confirmation: %d", st)
	}
	err = chromedp.Run(ctx,
		chromedp.SendKeys(`#erase-confirm`, "jane@example.com"),
		chromedp.Click(`#erase-user`),
		chromedp.WaitVisible(`#users-message`),
		chromedp.Text(`#users-message`, &text),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "erased") {
		t.Errorf("message %q", text)
	}
	if st := a.Do(t, "GET", "/api/v1/user/jane@example.com", nil, nil, a.Auth()...); st != 404 {
		t.Errorf("after erase: %d", st)
	}
}
