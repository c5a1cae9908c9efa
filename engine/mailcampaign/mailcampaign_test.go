package mailcampaign_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/smtpfallback/smtptest"
)

// mailApp starts the real app with email through a real SMTP server on
// loopback.
func mailApp(t *testing.T, edit ...func(*config.Config)) (*enginetest.App, *smtptest.Server) {
	t.Helper()
	srv, err := smtptest.Start(smtptest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := enginetest.Config(t)
	cfg.Email.From = "Northpeak <hello@shop.example>"
	cfg.Email.SMTP = config.EmailSMTP{Host: "127.0.0.1", Port: srv.Port, TLS: "none"}
	cfg.Sites.AllowedOrigins = []string{"https://shop.example"}
	for _, e := range edit {
		e(&cfg)
	}
	return enginetest.Start(t, cfg), srv
}

const feed = `"ID";"Product title";"Product URL";"Categories IDs";"Categories Titles";"Description";"Price";"DiscountPrice";"Photos";"Color";"Brand";"Stock";"Main"
"p1";"Trail Runner";"https://shop.example/p1";"10";"Shoes";"";"120.00";"99.00";"https://shop.example/p1.jpg";"Red";"Northpeak";"5";""
"p2";"City <Sneaker>";"https://shop.example/p2";"10";"Shoes";"";"80.00";"";"https://shop.example/p2.jpg";"Blue";"Northpeak";"3";""
`

func user(t *testing.T, a *enginetest.App, email, first, city string, subscribed bool) {
	t.Helper()
	if st := a.Do(t, "POST", "/api/v1/user", map[string]any{"email": email, "firstName": first, "city": city, "isSubscribed": subscribed}, nil, a.Auth()...); st != 201 && st != 200 {
		t.Fatalf("create user %s: %d", email, st)
	}
}

// segment defines a segment and waits until it is built.
func segment(t *testing.T, a *enginetest.App, rule string) string {
	t.Helper()
	var v struct {
		ID       string
		Building bool
	}
	if st := a.Do(t, "POST", "/api/v1/segments", rule, &v, a.Auth()...); st != 201 {
		t.Fatalf("create segment: %d", st)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var g struct{ Building bool }
		a.Do(t, "GET", "/api/v1/segments/"+v.ID, nil, &g, a.Auth()...)
		if !g.Building {
			return v.ID
		}
		if time.Now().After(deadline) {
			t.Fatal("the segment is still building")
		}
	}
}

type campaignOut struct {
	ID       string
	Status   string
	Progress struct {
		Members, Recipients, Queued, Capped, Failed int64
		LastError                                   string `json:"last_error"`
	}
}

func waitStatus(t *testing.T, a *enginetest.App, id, status string) campaignOut {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var c campaignOut
		if st := a.Do(t, "GET", "/api/v1/email-campaigns/"+id, nil, &c, a.Auth()...); st != 200 {
			t.Fatalf("GET campaign: %d", st)
		}
		if c.Status == status {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign %s is %s, want %s (%+v)", id, c.Status, status, c.Progress)
		}
	}
}

// TestSendToSegment sends a campaign to a segment through the real SMTP
// server: only the segment's subscribed members get it, once each, with
// their names escaped and the catalogue's products in it; sending it again
// sends nothing more; the report counts what was sent.
func TestSendToSegment(t *testing.T) {
	a, srv := mailApp(t)
	if _, err := a.Catalog.ImportWith(strings.NewReader(feed), "test", catalog.ImportOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		user(t, a, fmt.Sprintf("p%02d@example.com", i), fmt.Sprintf("Ann%d", i), "Paris", true)
	}
	user(t, a, "evil@example.com", "<script>alert(1)</script>", "Paris", true)
	user(t, a, "nope@example.com", "Nope", "Paris", false) // not subscribed
	user(t, a, "lyon@example.com", "Lou", "Lyon", true)    // not in the segment
	a.Fold(t)
	seg := segment(t, a, `{"name":"Paris","conditions":[{"attribute":"city","op":"eq","value":"Paris"}]}`)

	body := map[string]any{"name": "Spring sale", "subject": "Spring is here", "preheader": "Up to 20% off", "segment": seg, "send": true,
		"html": `<p>Hi {{.FirstName | default "there"}},</p><p><a href="https://shop.example/sale">See the sale</a></p>{{products (.Custom.none | default "p1")}}{{recommend "top_in_category" 2 "Shoes"}}`}
	var c campaignOut
	if st := a.Do(t, "POST", "/api/v1/email-campaigns", body, &c, a.Auth()...); st != 201 {
		t.Fatalf("create: %d", st)
	}
	done := waitStatus(t, a, c.ID, "sent")
	if done.Progress.Recipients != 21 || done.Progress.Queued != 21 || done.Progress.Members != 22 {
		t.Fatalf("progress %+v, want 22 members, 21 recipients, 21 queued", done.Progress)
	}
	msgs, err := srv.Wait(21, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, m := range msgs {
		got[m.To[0]]++
		html, text := parts(t, m.Data)
		if m.To[0] == "evil@example.com" && (strings.Contains(html, "<script>alert") || !strings.Contains(html, "&lt;script&gt;alert(1)")) {
			t.Errorf("the name went out unescaped: %s", html)
		}
		if !strings.Contains(html, "Trail Runner") || !strings.Contains(html, "99.00") || !strings.Contains(text, "Trail Runner") {
			t.Errorf("no product block in the message to %s", m.To[0])
		}
		if !strings.Contains(html, "City &lt;Sneaker&gt;") {
			t.Errorf("no recommendation, or a title unescaped: %s", html)
		}
		if !strings.Contains(text, "See the sale (") {
			t.Errorf("the text part was not made from the HTML: %s", text)
		}
	}
	for to, n := range got {
		if n != 1 || to == "nope@example.com" || to == "lyon@example.com" {
			t.Errorf("%s got %d messages", to, n)
		}
	}
	if len(got) != 21 {
		t.Errorf("%d recipients, want 21", len(got))
	}

	// the report counts the sends once the events are folded
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var rep struct {
			Sent int64
		}
		a.Fold(t)
		if st := a.Do(t, "GET", "/api/v1/email-campaigns/"+c.ID+"/report", nil, &rep, a.Auth()...); st != 200 {
			t.Fatalf("report: %d", st)
		}
		if rep.Sent == 21 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("report sent %d, want 21", rep.Sent)
		}
	}
	// a sent campaign cannot be sent again
	if st := a.Do(t, "POST", "/api/v1/email-campaigns/"+c.ID+"/send", nil, nil, a.Auth()...); st != http.StatusConflict {
		t.Errorf("sending a sent campaign: %d, want 409", st)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(srv.Messages()); n != 21 {
		t.Errorf("%d messages after all, want 21", n)
	}
}

// parts decodes a message's HTML and text parts.
func parts(t *testing.T, data []byte) (htmlPart, textPart string) {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(ct string, h map[string][]string, r io.Reader)
	walk = func(ct string, h map[string][]string, r io.Reader) {
		mt, params, _ := mime.ParseMediaType(ct)
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(r, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err != nil {
					return
				}
				walk(p.Header.Get("Content-Type"), p.Header, p)
			}
		}
		if len(h["Content-Transfer-Encoding"]) > 0 && strings.EqualFold(h["Content-Transfer-Encoding"][0], "quoted-printable") {
			r = quotedprintable.NewReader(r)
		} else if len(h["Content-Transfer-Encoding"]) > 0 && strings.EqualFold(h["Content-Transfer-Encoding"][0], "base64") {
			r = base64.NewDecoder(base64.StdEncoding, r)
		}
		b, _ := io.ReadAll(r)
		switch mt {
		case "text/html":
			htmlPart = string(b)
		case "text/plain":
			textPart = string(b)
		}
	}
	walk(msg.Header.Get("Content-Type"), msg.Header, msg.Body)
	return htmlPart, textPart
}

// TestCampaignBadInput runs the bad-input table on the campaigns API.
func TestCampaignBadInput(t *testing.T) {
	a, _ := mailApp(t)
	seg := segment(t, a, `{"name":"All Paris","conditions":[{"attribute":"city","op":"eq","value":"Paris"}]}`)
	ok := func() map[string]any {
		return map[string]any{"name": "N", "subject": "S", "html": "<p>x</p>", "segment": seg}
	}
	with := func(k string, v any) map[string]any { m := ok(); m[k] = v; return m }
	without := func(k string) map[string]any { m := ok(); delete(m, k); return m }
	cases := []struct {
		name  string
		body  any
		field string
	}{
		{"not json", "{", "body"},
		{"array", "[]", "body"},
		{"two objects", `{"name":"a"}{"name":"b"}`, "body"},
		{"unknown field", with("colour", "red"), "colour"},
		{"no name", without("name"), "name"},
		{"name with newline", with("name", "a\nb"), "name"},
		{"long name", with("name", strings.Repeat("n", 201)), "name"},
		{"no subject", without("subject"), "subject"},
		{"subject is a number", with("subject", 5), "subject"},
		{"subject with CRLF", with("subject", "Hi\r\nBcc: x@y.example"), "subject"},
		{"no html", without("html"), "html"},
		{"bad template", with("html", "{{.FirstName"), "html"},
		{"unknown function", with("html", `{{env "HOME"}}`), "html"},
		{"bad text template", with("text", "{{if}}"), "text"},
		{"no segment", without("segment"), "segment"},
		{"unknown segment", with("segment", "0000000000000000"), "segment"},
		{"send_at in the past", with("send_at", "2001-01-01T00:00:00Z"), "send_at"},
		{"send_at not a time", with("send_at", "tomorrow"), "send_at"},
		{"send and send_at", func() map[string]any {
			m := with("send", true)
			m["send_at"] = time.Now().Add(time.Hour).Format(time.RFC3339)
			return m
		}(), "send_at"},
		{"invalid UTF-8", `{"name":"N","subject":"S","segment":"` + seg + `","html":"\xff"}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out struct {
				Error struct{ Field, Message string }
			}
			st := a.Do(t, "POST", "/api/v1/email-campaigns", tc.body, &out, a.Auth()...)
			if st != 400 {
				t.Fatalf("status %d, want 400 (%+v)", st, out)
			}
			if tc.field != "" && out.Error.Field != tc.field {
				t.Errorf("field %q (%s), want %q", out.Error.Field, out.Error.Message, tc.field)
			}
		})
	}
	// a body over the limit
	big := ok()
	big["html"] = strings.Repeat("x", 2<<20)
	if st := a.Do(t, "POST", "/api/v1/email-campaigns", big, nil, a.Auth()...); st != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body: %d, want 413", st)
	}
	// unknown ids
	for _, p := range []string{"/api/v1/email-campaigns/nope", "/api/v1/email-campaigns/0000000000000000/report"} {
		if st := a.Do(t, "GET", p, nil, nil, a.Auth()...); st != 404 {
			t.Errorf("GET %s: %d, want 404", p, st)
		}
	}
	// no key, and a key without email:write
	if st := a.Do(t, "GET", "/api/v1/email-campaigns", nil, nil); st != 401 {
		t.Errorf("no key: %d, want 401", st)
	}
	// nothing was stored
	var list struct{ Campaigns []any }
	a.Do(t, "GET", "/api/v1/email-campaigns", nil, &list, a.Auth()...)
	if len(list.Campaigns) != 0 {
		t.Errorf("%d campaigns stored by bad requests", len(list.Campaigns))
	}
}
