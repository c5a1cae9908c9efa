package web_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// adminJSON sends JSON to the admin listener as the signed-in editor.
func adminJSON(t *testing.T, c *adminClient, method, path, body string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.AddCookie(c.cookie)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// previewToken gets a preview token as the editor does.
func previewToken(t *testing.T, c *adminClient) string {
	t.Helper()
	st, body := adminJSON(t, c, "POST", "/campaigns/preview", `{"campaign_id":"c1","url":"https://shop.example/p/1"}`)
	var out struct{ Token, URL string }
	if err := json.Unmarshal([]byte(body), &out); st != 200 || err != nil || !strings.Contains(out.URL, "shoptrail_preview="+out.Token) {
		t.Fatalf("preview token: %d %s", st, body)
	}
	return out.Token
}

func wsURL(a *enginetest.App, tok string) string {
	return "ws" + strings.TrimPrefix(a.PublicURL, "http") + "/c/preview?token=" + tok
}

func TestPreviewSocketRefusesWhatItShould(t *testing.T) {
	a := enginetest.NewApp(t, func(c *config.Config) { c.Sites.AllowedOrigins = []string{"https://shop.example"} })
	admin := signedIn(t, a)
	tok := previewToken(t, admin)
	// the editor's routes: a cross-site request is refused, a bad draft names its field
	if st, _ := adminJSON(t, admin, "POST", "/campaigns/preview", `{"url":"https://shop.example/"}`, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); st != 403 {
		t.Errorf("cross-site preview token: %d", st)
	}
	for _, c := range []struct{ body, field string }{
		{`{"url":"javascript:alert(1)"}`, "url"},
	} {
		if st, body := adminJSON(t, admin, "POST", "/campaigns/preview", c.body); st != 400 || !strings.Contains(body, `"field":"`+c.field+`"`) {
			t.Errorf("%s: %d %s", c.body, st, body)
		}
	}
	for _, c := range []struct{ body, field string }{
		{`{"campaign":{"groups":[]},"group":0,"variation":0}`, "group"},
		{`{"campaign":{"groups":[{"placement":{"mode":"after","selector":"h1{}"},"variations":[{"name":"A"}]}]},"group":0,"variation":0}`, "groups[0].placement.selector"},
		{`{"campaign":{"groups":[{"placement":{"mode":"popup"},"variations":[{"name":"A","html":"{{env \"X\"}}"}]}]},"group":0,"variation":0}`, "groups[0].variations[0].html"},
	} {
		if st, body := adminJSON(t, admin, "POST", "/campaigns/preview/"+tok, c.body); st != 400 || !strings.Contains(body, `"field":"`+c.field+`"`) {
			t.Errorf("%s: %d %s", c.body, st, body)
		}
	}
	if st, _ := adminJSON(t, admin, "POST", "/campaigns/preview/nope", `{"campaign":{"groups":[{"placement":{"mode":"popup"},"variations":[{"name":"A","html":"x"}]}]},"group":0,"variation":0}`); st != 404 {
		t.Errorf("unknown token: %d", st)
	}
	cases := []struct {
		name, origin, token string
		status              int
	}{
		{"foreign origin", "https://evil.example", tok, 403},
		{"no origin", "", tok, 403},
		{"unknown token", "https://shop.example", "0000", 403},
		{"no token", "https://shop.example", "", 403},
	}
	for _, c := range cases {
		h := http.Header{}
		if c.origin != "" {
			h.Set("Origin", c.origin)
		}
		conn, resp, err := websocket.DefaultDialer.Dial(wsURL(a, c.token), h)
		if err == nil {
			conn.Close()
			t.Errorf("%s: connected", c.name)
			continue
		}
		if resp == nil || resp.StatusCode != c.status {
			t.Errorf("%s: %v %v", c.name, resp, err)
		}
	}
	// the shop's origin connects; a 1 MiB frame closes it with 1009
	conn, _, err := websocket.DefaultDialer.Dial(wsURL(a, tok), http.Header{"Origin": {"https://shop.example"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 1<<20)))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("1 MiB frame: %v; want close 1009", err)
	}
}

// TestPreviewFanOutSlowTab: many tabs on one token; one never reads. The
// others get every draft's newest state promptly; publishing never blocks.
func TestPreviewFanOutSlowTab(t *testing.T) {
	a := enginetest.NewApp(t)
	admin := signedIn(t, a)
	tok := previewToken(t, admin)
	origin := http.Header{"Origin": {a.PublicURL}}
	slow, _, err := websocket.DefaultDialer.Dial(wsURL(a, tok), origin)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close() // never read
	var tabs []*websocket.Conn
	for range 5 {
		c, _, err := websocket.DefaultDialer.Dial(wsURL(a, tok), origin)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		tabs = append(tabs, c)
	}
	draft := func(html string) string {
		return `{"campaign":{"name":"x","groups":[{"placement":{"mode":"popup"},"variations":[{"name":"A","weight":100,"html":"` + html + `"}]}]},"group":0,"variation":0}`
	}
	for i := range 50 {
		if st, body := adminJSON(t, admin, "POST", "/campaigns/preview/"+tok, draft(fmt.Sprintf("<p>edit %d</p>", i))); st != 204 {
			t.Fatalf("publish %d: %d %s", i, st, body)
		}
	}
	// every reading tab ends at the newest draft, whatever the slow one does
	var wg sync.WaitGroup
	for _, c := range tabs {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				var m struct{ Show []struct{ HTML string } }
				if err := c.ReadJSON(&m); err != nil {
					t.Errorf("tab: %v", err)
					return
				}
				if len(m.Show) == 1 && m.Show[0].HTML == "<p>edit 49</p>" {
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestCampaignAdminPages: the list, editor and report pages render for a
// signed-in admin only, and show a campaign's name as text.
func TestCampaignAdminPages(t *testing.T) {
	a := enginetest.NewApp(t)
	c := createCampaign(t, a, strings.Replace(nudge, "Free shipping nudge", `<script>alert(1)</script>`, 1))
	admin := signedIn(t, a)
	anon := &adminClient{t: t, base: a.AdminURL}
	for path, want := range map[string]string{
		"/campaigns":                     "&lt;script&gt;alert(1)&lt;/script&gt;",
		"/campaigns?archived=true":       "Hide archived",
		"/campaigns/new":                 "campaign-data",
		"/campaigns/" + c.ID:             `<iframe id="sandbox" sandbox=""`,
		"/campaigns/" + c.ID + "/report": "not yet significant",
	} {
		resp, page := admin.do("GET", path, nil)
		if resp.StatusCode != 200 || !strings.Contains(page, want) {
			t.Errorf("GET %s: %d, want %q in the page", path, resp.StatusCode, want)
		}
		if strings.Contains(page, "<script>alert(1)") {
			t.Errorf("GET %s: the name is markup", path)
		}
		if resp, _ := anon.do("GET", path, nil); resp.StatusCode != 303 {
			t.Errorf("GET %s without signing in: %d", path, resp.StatusCode)
		}
	}
	if resp, _ := admin.do("GET", "/campaigns/nope", nil); resp.StatusCode != 404 {
		t.Errorf("unknown campaign: %d", resp.StatusCode)
	}
	// saving from the editor: the public API's validation, with the path
	if st, body := adminJSON(t, admin, "PUT", "/campaigns/api/"+c.ID, strings.Replace(nudge, `"selector":"h1",`, "", 1)); st != 400 || !strings.Contains(body, `"field":"groups[0].placement.selector"`) {
		t.Errorf("bad save: %d %s", st, body)
	}
	if st, _ := adminJSON(t, admin, "PUT", "/campaigns/api/"+c.ID, nudge, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); st != 403 {
		t.Errorf("cross-site save: %d", st)
	}
	if st, _ := adminJSON(t, admin, "POST", "/campaigns/api/"+c.ID+"/status", `{"status":"paused"}`); st != 200 {
		t.Errorf("status: %d", st)
	}
}
