package web_test

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/app"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/project"
)

// signedIn sets up the admin account and signs in.
func signedIn(t *testing.T, a *enginetest.App) *adminClient {
	c := &adminClient{t: t, base: a.AdminURL}
	setup, setupPage := c.do("POST", "/setup", url.Values{"token": {a.Guard.SetupToken()}, "username": {"owner"}, "password": {"correct horse battery"}})
	resp, page := c.do("POST", "/login", url.Values{"username": {"owner"}, "password": {"correct horse battery"}})
	if len(resp.Cookies()) == 0 {
		t.Fatalf("no session cookie: setup %d %.300s; login %d %.300s", setup.StatusCode, setupPage, resp.StatusCode, page)
	}
	c.cookie = resp.Cookies()[0]
	return c
}

func TestAdminPages(t *testing.T) {
	a := enginetest.NewApp(t)
	a.Do(t, "POST", "/api/v1/user", map[string]any{"email": "jane@example.com", "city": "Paris", "isSubscribed": true}, nil, a.Auth()...)
	a.Do(t, "POST", "/t", batch(
		pv("p1", "anon-j", "s1", "https://shop.example/?utm_source=newsletter&utm_medium=email", ""),
		map[string]any{"id": "p2", "type": "login", "anonymous_id": "anon-j", "session_id": "s1", "url": "https://shop.example/", "email": "jane@example.com"},
		map[string]any{"id": "p3", "type": "product_view", "anonymous_id": "anon-j", "session_id": "s1", "url": "https://shop.example/p/x", "props": map[string]any{"product_id": "nope-42"}},
	), nil)
	a.Fold(t)
	c := signedIn(t, a)
	anon := &adminClient{t: t, base: a.AdminURL}
	for path, want := range map[string]string{
		"/":                       "Latest events",
		"/?projections":           "rollups",
		"/users":                  "Type an email",
		"/users?q=ja":             "jane@example.com",
		"/users?q=zz":             "No user",
		"/users/jane@example.com": "Paris",
		"/products":               "nope-42",
		"/products?q=runing":      "Trail Runner 3",
		"/settings":               "Visit from referrer",
		"/install":                "sendBeacon",
		"/install?check=1":        "Events arrive",
	} {
		resp, page := c.do("GET", path, nil)
		if resp.StatusCode != 200 || !strings.Contains(page, want) {
			t.Errorf("GET %s: %d, want %q in the page", path, resp.StatusCode, want)
		}
		if resp, _ := anon.do("GET", path, nil); resp.StatusCode != 303 || resp.Header.Get("Location") != "/login" {
			t.Errorf("GET %s without signing in: %d %s", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if _, page := c.do("GET", "/users/jane@example.com", nil); !strings.Contains(page, "Email") || !strings.Contains(page, "newsletter / email") {
		t.Errorf("the profile lacks the touchpoint")
	}
	for _, path := range []string{"/settings", "/settings/keys", "/products/upload", "/products/sync"} {
		if resp, _ := anon.do("POST", path, url.Values{}); resp.StatusCode != 303 {
			t.Errorf("POST %s without signing in: %d", path, resp.StatusCode)
		}
	}

	// settings: turn Visit from referrer off; the next visit makes none
	resp, _ := c.do("POST", "/settings", url.Values{"allowed_origins": {"https://shop.example\nhttp://localhost:8080"}, "session_timeout_hours": {"12"}})
	if resp.StatusCode != 303 {
		t.Fatalf("save settings: %d", resp.StatusCode)
	}
	a.Do(t, "POST", "/t", batch(pv("p4", "anon-k", "s2", "https://shop.example/?utm_source=fb&utm_medium=social", "")), nil)
	var l listing
	a.Do(t, "GET", "/api/v1/events?type=visit_from_referrer", nil, &l, a.Auth()...)
	if len(l.Events) != 1 || l.Events[0].DerivedFrom != "p1" {
		t.Errorf("visit_from_referrer after turning it off: %+v", l.Events)
	}
	if _, page := c.do("GET", "/settings", nil); strings.Contains(page, `id="vfr" value="on" checked`) {
		t.Error("the switch still shows on")
	}
	if resp, page := c.do("POST", "/settings", url.Values{"allowed_origins": {"shop.example"}, "session_timeout_hours": {"12"}}); resp.StatusCode != 400 || !strings.Contains(page, "allowed_origins") {
		t.Errorf("bad origin: %d", resp.StatusCode)
	}
	if resp, _ := c.do("POST", "/settings", url.Values{"session_timeout_hours": {"soon"}}); resp.StatusCode != 400 {
		t.Errorf("bad timeout: %d", resp.StatusCode)
	}
	// the allowed origins apply at once
	var ans answer
	if st := a.Do(t, "POST", "/t", batch(pv("", "z", "z", "https://shop.example/", "")), &ans, "Origin", "http://127.0.0.1:8080"); st != 403 {
		t.Errorf("an origin no longer allowed: %d", st)
	}

	// API keys: shown once, then only the prefix; revoked keys stop working
	resp, page := c.do("POST", "/settings/keys", url.Values{"name": {"ERP"}, "scope": {"events:write"}})
	key := regexp.MustCompile(`<code id="new-key">(st_[a-z0-9]+)</code>`).FindStringSubmatch(page)
	if resp.StatusCode != 200 || key == nil {
		t.Fatalf("create key: %d", resp.StatusCode)
	}
	if st := a.Do(t, "POST", "/api/v1/events", batch(map[string]any{"type": "x", "email": "k@example.com"}), nil, "Authorization", "Bearer "+key[1]); st != 200 {
		t.Fatalf("the new key: %d", st)
	}
	_, page = c.do("GET", "/settings", nil)
	if strings.Contains(page, key[1]) {
		t.Fatal("the key is shown again")
	}
	id := regexp.MustCompile(`/settings/keys/([0-9a-f]+)/revoke`).FindStringSubmatch(page)
	c.do("POST", "/settings/keys/"+id[1]+"/revoke", url.Values{})
	if st := a.Do(t, "POST", "/api/v1/events", batch(map[string]any{"type": "x", "email": "k@example.com"}), nil, "Authorization", "Bearer "+key[1]); st != 401 {
		t.Errorf("a revoked key: %d", st)
	}

	// a feed file upload
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("force", "on") // it replaces the demo catalogue
	fw, _ := mw.CreateFormFile("feed", "mini.csv")
	io.WriteString(fw, "ID;Product title;Price\n1;One;1,50\n;broken;2\n")
	mw.Close()
	req, _ := http.NewRequest("POST", a.AdminURL+"/products/upload", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.AddCookie(c.cookie)
	resp, err := (&http.Transport{}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 303 || !strings.Contains(loc, "Importing+mini.csv") {
		t.Fatalf("upload: %d %s", resp.StatusCode, loc)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, page := c.do("GET", "/products", nil)
		if strings.Contains(page, "1 imported, 1 skipped") && strings.Contains(page, "no ID") {
			if strings.Contains(page, `http-equiv="refresh"`) {
				t.Error("the page still reloads itself after the job ended")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the products page does not show the import's result: %s", page)
		}
	}
}

func TestDashboardShowsAFailedProjection(t *testing.T) {
	broken := &project.Projection{Name: "broken", Version: 1, Fold: func(r *project.Run) error {
		return errors.New("disk says <no>")
	}}
	a := enginetest.Start(t, enginetest.Config(t), app.WithProjection(broken))
	a.Do(t, "POST", "/t", batch(pv("x1", "anon-x", "s", "https://shop.example/", "")), nil)
	a.Fold(t)
	c := signedIn(t, a)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, page := c.do("GET", "/", nil)
		if strings.Contains(page, "Projection <strong>broken</strong>: disk says &lt;no&gt;") && strings.Contains(page, `class="state-failed"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard does not show the failed projection:\n%s", page)
		}
	}
	resp, body := c.do("GET", "/healthz", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"status":"degraded"`) || !strings.Contains(body, `disk says \u003cno\u003e`) {
		t.Errorf("admin /healthz: %d %s", resp.StatusCode, body)
	}
	// the others went on
	var u map[string]any
	if st := a.Do(t, "GET", "/api/v1/events?anonymous_id=anon-x", nil, &u, a.Auth()...); st != 200 {
		t.Fatal(st)
	}
	for _, s := range a.Pipeline.Status() {
		if s.Name != "broken" && s.State != project.Live {
			t.Errorf("%s: %+v", s.Name, s)
		}
	}
}
