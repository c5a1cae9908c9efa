package web_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/shoptrail/shoptrail/engine/enginetest"
)

type adminClient struct {
	t      *testing.T
	base   string
	cookie *http.Cookie
}

// do sends a request to the admin listener without following redirects.
func (c *adminClient) do(method, path string, form url.Values, header ...string) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := (&http.Transport{}).RoundTrip(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestAdminSetupLoginAndGuards(t *testing.T) {
	a := enginetest.NewApp(t)
	c := &adminClient{t: t, base: a.AdminURL}
	token := a.Guard.SetupToken()
	if len(token) < 20 {
		t.Fatalf("setup token %q", token)
	}
	// before setup everything leads to the setup page
	if resp, _ := c.do("GET", "/", nil); resp.StatusCode != 303 || resp.Header.Get("Location") != "/setup" {
		t.Fatalf("before setup: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := c.do("GET", "/setup", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "setup token") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("setup page: %d %v", resp.StatusCode, resp.Header)
	}
	for _, tt := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"token": {"wrong"}, "username": {"owner"}, "password": {"a long enough password"}}, "setup token is wrong"},
		{url.Values{"token": {token}, "username": {"owner"}, "password": {"short"}}, "at least 10 characters"},
		{url.Values{"token": {token}, "username": {"two words"}, "password": {"a long enough password"}}, "username"},
	} {
		if resp, page := c.do("POST", "/setup", tt.form); resp.StatusCode != 400 || !strings.Contains(page, tt.want) {
			t.Errorf("setup %v: %d, want %q in the page", tt.form, resp.StatusCode, tt.want)
		}
	}
	if resp, _ := c.do("POST", "/setup", url.Values{"token": {token}, "username": {"owner"}, "password": {"correct horse battery"}}); resp.StatusCode != 303 {
		t.Fatalf("setup: %d", resp.StatusCode)
	}
	// the token worked once
	if resp, _ := c.do("POST", "/setup", url.Values{"token": {token}, "username": {"evil"}, "password": {"another password!"}}); resp.StatusCode != 303 || resp.Header.Get("Location") != "/login" {
		t.Fatalf("second setup: %d", resp.StatusCode)
	}
	if resp, _ := c.do("GET", "/", nil); resp.StatusCode != 303 || resp.Header.Get("Location") != "/login" {
		t.Fatalf("not signed in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, page := c.do("POST", "/login", url.Values{"username": {"owner"}, "password": {"wrong password"}}); resp.StatusCode != 401 || !strings.Contains(page, "Wrong username or password") {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	resp, _ = c.do("POST", "/login", url.Values{"username": {"owner"}, "password": {"correct horse battery"}})
	cookies := resp.Cookies()
	if resp.StatusCode != 303 || len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("login: %d %+v", resp.StatusCode, cookies)
	}
	first := cookies[0]
	c.cookie = first
	if resp, page := c.do("GET", "/", nil); resp.StatusCode != 200 || !strings.Contains(page, "owner") || !strings.Contains(page, "Dashboard") {
		t.Fatalf("dashboard: %d", resp.StatusCode)
	}
	// a new session id at every sign-in
	resp, _ = c.do("POST", "/login", url.Values{"username": {"owner"}, "password": {"correct horse battery"}})
	if resp.Cookies()[0].Value == first.Value {
		t.Error("the session id was not rotated at sign-in")
	}

	// cross-site POST: refused
	if resp, _ := c.do("POST", "/logout", url.Values{}, "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"); resp.StatusCode != 403 {
		t.Errorf("cross-site logout: %d", resp.StatusCode)
	}
	// DNS rebinding: another Host name
	if resp, _ := c.do("GET", "/", nil, "Host", "attacker.example"); resp.StatusCode != 421 {
		t.Errorf("Host attacker.example: %d", resp.StatusCode)
	}
	if resp, _ := c.do("GET", "/", nil, "Host", "localhost:1234"); resp.StatusCode != 200 {
		t.Errorf("Host localhost: %d", resp.StatusCode)
	}
	// sign out: the cookie stops working
	c.do("POST", "/logout", url.Values{})
	if resp, _ := c.do("GET", "/", nil); resp.StatusCode != 303 {
		t.Errorf("after sign-out: %d", resp.StatusCode)
	}
	if resp, _ := c.do("GET", "/static/admin.css", nil); resp.StatusCode != 200 {
		t.Errorf("static: %d", resp.StatusCode)
	}
}

func TestAdminSignInIsThrottled(t *testing.T) {
	a := enginetest.NewApp(t)
	c := &adminClient{t: t, base: a.AdminURL}
	c.do("POST", "/setup", url.Values{"token": {a.Guard.SetupToken()}, "username": {"owner"}, "password": {"correct horse battery"}})
	for i := range 5 {
		if resp, _ := c.do("POST", "/login", url.Values{"username": {"owner"}, "password": {"guess"}}); resp.StatusCode != 401 {
			t.Fatalf("attempt %d: %d", i, resp.StatusCode)
		}
	}
	resp, _ := c.do("POST", "/login", url.Values{"username": {"owner"}, "password": {"correct horse battery"}})
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("sixth attempt, right password: %d; want 429 until the window passes", resp.StatusCode)
	}
}

func TestAdminShowsTrackedValuesAsText(t *testing.T) {
	a := enginetest.NewApp(t)
	xss := `"><img src=x onerror=alert(1)>`
	a.Do(t, "POST", "/api/v1/user", map[string]any{"email": "x@example.com", "city": xss, "note": xss}, nil, a.Auth()...)
	a.Do(t, "POST", "/t", batch(
		map[string]any{"type": "page_view", "anonymous_id": "x", "session_id": "s", "url": "https://shop.example/?utm_source=" + url.QueryEscape(xss) + "&utm_campaign=" + url.QueryEscape(xss),
			"referrer": "https://ref.example/" + xss, "email": "x@example.com", "props": map[string]any{"t": xss}},
		map[string]any{"type": "product_view", "anonymous_id": "x", "session_id": "s", "url": "https://shop.example/p?q=" + xss, "props": map[string]any{"product_id": xss}},
	), nil)
	a.Fold(t)
	c := signedIn(t, a)
	for _, path := range []string{"/", "/users?q=x", "/users/x@example.com", "/products", "/install?check=1"} {
		_, page := c.do("GET", path, nil)
		if strings.Contains(page, "<img src=x") {
			t.Errorf("%s shows a tracked value as markup", path)
		}
		if !strings.Contains(page, "&lt;img src=x onerror=alert(1)&gt;") && path != "/users?q=x" {
			t.Errorf("%s does not show the tracked value at all", path)
		}
	}
}

func TestAdminLiveStream(t *testing.T) {
	a := enginetest.NewApp(t)
	c := signedIn(t, a)
	req, _ := http.NewRequest("GET", a.AdminURL+"/live", nil)
	req.AddCookie(c.cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("live: %d %v", resp.StatusCode, resp.Header)
	}
	a.Do(t, "POST", "/t", batch(pv("live-1", "a", "s", "https://shop.example/live", "")), nil)
	buf := make([]byte, 4096)
	got := ""
	for !strings.Contains(got, "\n\n") {
		n, err := resp.Body.Read(buf)
		if err != nil {
			t.Fatalf("read: %v (%q)", err, got)
		}
		got += string(buf[:n])
	}
	if !strings.Contains(got, "event: ev\ndata: ") || !strings.Contains(got, `"url":"https://shop.example/live"`) {
		t.Fatalf("stream: %q", got)
	}
	// without a session: no stream
	if resp, _ := (&adminClient{t: t, base: a.AdminURL}).do("GET", "/live", nil); resp.StatusCode != 303 {
		t.Errorf("live without signing in: %d", resp.StatusCode)
	}
}
