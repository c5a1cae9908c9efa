package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// TestSessionCookieIsHostOnlyAndSecure: the session cookie has the
// __Host- prefix and every attribute the prefix demands, at sign-in and at
// sign-out.
func TestSessionCookieIsHostOnlyAndSecure(t *testing.T) {
	a := enginetest.NewApp(t)
	c := &adminClient{t: t, base: a.AdminURL}
	c.do("POST", "/setup", url.Values{"token": {a.Guard.SetupToken()}, "username": {"owner"}, "password": {"correct horse battery"}})
	resp, _ := c.do("POST", "/login", url.Values{"username": {"owner"}, "password": {"correct horse battery"}})
	check := func(when string, resp *http.Response) *http.Cookie {
		t.Helper()
		cs := resp.Cookies()
		if len(cs) != 1 {
			t.Fatalf("%s: cookies %v", when, cs)
		}
		ck := cs[0]
		if !strings.HasPrefix(ck.Name, "__Host-") || !ck.Secure || !ck.HttpOnly || ck.Path != "/" || ck.Domain != "" || ck.SameSite != http.SameSiteStrictMode {
			t.Fatalf("%s: cookie %s", when, resp.Header.Get("Set-Cookie"))
		}
		return ck
	}
	c.cookie = check("sign-in", resp)
	if resp, _ := c.do("GET", "/", nil); resp.StatusCode != 200 {
		t.Fatalf("signed in: %d", resp.StatusCode)
	}
	check("sign-out", func() *http.Response { r, _ := c.do("POST", "/logout", nil); return r }())
}

// TestSetupRefusesCommonPasswords: the setup form names the problem and
// creates nothing.
func TestSetupRefusesCommonPasswords(t *testing.T) {
	a := enginetest.NewApp(t)
	c := &adminClient{t: t, base: a.AdminURL}
	token := a.Guard.SetupToken()
	for _, pw := range []string{"password1234", "Qwerty123456!", "1234567890"} {
		resp, page := c.do("POST", "/setup", url.Values{"token": {token}, "username": {"owner"}, "password": {pw}})
		if resp.StatusCode != 400 || !strings.Contains(page, "most common passwords") {
			t.Errorf("password %q: %d", pw, resp.StatusCode)
		}
	}
	if !a.Guard.NeedsSetup() {
		t.Fatal("a common password created the account")
	}
}
