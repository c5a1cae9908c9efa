package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/apikey"
	"github.com/shoptrail/shoptrail/engine/app"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/mail/sestest"
	"github.com/shoptrail/shoptrail/engine/mail/snstest"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/smtpfallback/smtptest"
)

const (
	topic     = "arn:aws:sns:eu-west-1:123456789012:ses-events"
	sesSecret = "fake-ses-secret-key-0001"
)

// mailApp starts the app with email through a real SMTP server on
// loopback (and SES's fake and a fake SNS when asked).
func mailApp(t *testing.T, withSES bool) (*enginetest.App, *smtptest.Server, *sestest.Server, *snstest.SNS) {
	t.Helper()
	srv, err := smtptest.Start(smtptest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	sns, err := snstest.New("eu-west-1", topic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sns.Close)
	var ses *sestest.Server
	cfg := enginetest.Config(t)
	cfg.Email.From = "Northpeak <hello@shop.example>"
	cfg.Email.SMTP = config.EmailSMTP{Host: "127.0.0.1", Port: srv.Port, TLS: "none"}
	cfg.Email.SNS.TopicARNs = []string{topic}
	cfg.Sites.AllowedOrigins = []string{"https://shop.example"}
	if withSES {
		ses = sestest.New("AKIDTEST", sesSecret, "eu-west-1")
		t.Cleanup(ses.Close)
		cfg.Email.SES = config.EmailSES{Region: "eu-west-1", AccessKeyID: "AKIDTEST", SecretAccessKey: sesSecret, Endpoint: ses.URL, ConfigurationSet: "shoptrail"}
	}
	a := enginetest.Start(t, cfg, app.WithSNSClient(sns.Client))
	return a, srv, ses, sns
}

func subscribe(t *testing.T, a *enginetest.App, email string) {
	t.Helper()
	if st := a.Do(t, "POST", "/api/v1/user", map[string]any{"email": email, "isSubscribed": true}, nil, a.Auth()...); st != 201 && st != 200 {
		t.Fatalf("create user: %d", st)
	}
}

func waitEmail(t *testing.T, a *enginetest.App, id, state string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var out map[string]any
		if st := a.Do(t, "GET", "/api/v1/emails/"+id, nil, &out, a.Auth()...); st != 200 {
			t.Fatalf("GET email: %d %v", st, out)
		}
		if out["state"] == state {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("email %s: %v, want %s", id, out, state)
		}
	}
}

// noRedirect sends a request without following redirects and without cookies.
func noRedirect(t *testing.T, method, u, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", enginetest.BrowserUA)
	resp, err := (&http.Transport{}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestEmailThroughTheAPIWithOneClickUnsubscribe(t *testing.T) {
	a, srv, _, _ := mailApp(t, false)
	subscribe(t, a, "jane@example.com")
	var out map[string]any
	st := a.Do(t, "POST", "/api/v1/emails", map[string]any{"to": "Jane@example.com", "subject": "Hello", "html": `<p>Hi <a href="https://shop.example/new">new</a></p>`, "text": "Hi"}, &out, a.Auth()...)
	if st != 202 || out["state"] != "queued" {
		t.Fatalf("%d %v", st, out)
	}
	id := out["id"].(string)
	sent := waitEmail(t, a, id, "sent")
	if sent["provider"] != "smtp" {
		t.Errorf("%v", sent)
	}
	msgs, _ := srv.Wait(1, 5*time.Second)
	raw := string(msgs[0].Data)
	lu := regexp.MustCompile(`List-Unsubscribe: <(http://[^>]+/u/[^>]+)>`).FindStringSubmatch(raw)
	if lu == nil || !strings.Contains(raw, "List-Unsubscribe-Post: List-Unsubscribe=One-Click") {
		t.Fatalf("no unsubscribe headers:\n%s", raw)
	}
	unsubURL := lu[1]
	if !strings.HasPrefix(unsubURL, a.PublicURL) {
		t.Errorf("unsubscribe URL %s is not on the public listener %s", unsubURL, a.PublicURL)
	}
	// the click redirect goes to the stored target only
	link := regexp.MustCompile(`/r/([A-Za-z0-9_-]{22})`).FindStringSubmatch(raw)
	resp, _ := noRedirect(t, "GET", a.PublicURL+"/r/"+link[1], "")
	if loc := resp.Header.Get("Location"); resp.StatusCode != 302 || !strings.HasPrefix(loc, "https://shop.example/new?") || !strings.Contains(loc, "utm_medium=email") {
		t.Fatalf("click: %d %s", resp.StatusCode, loc)
	}
	// the shopper lands on the shop in another browser: the link's st_id
	// identifies it as Jane (cross-device stitching), and the visit is an
	// Email touchpoint
	loc := resp.Header.Get("Location")
	var ans answer
	if st := a.Do(t, "POST", "/t", batch(pv("land-1", "phone-anon", "phone-s", loc, "")), &ans, "Origin", "https://shop.example"); st != 200 || ans.Accepted != 1 {
		t.Fatalf("landing: %d %+v", st, ans)
	}
	forged := strings.Replace(loc, "st_id=", "st_id=x", 1)
	a.Do(t, "POST", "/t", batch(pv("land-2", "other-anon", "other-s", forged, "")), &ans, "Origin", "https://shop.example")
	a.Fold(t)
	var visits struct{ Events []map[string]any }
	a.Do(t, "GET", "/api/v1/user/jane@example.com/events", nil, &visits, a.Auth()...)
	stitched := false
	for _, e := range visits.Events {
		if e["id"] == "land-2" {
			t.Errorf("a forged token identified a browser: %v", e)
		}
		if e["id"] == "land-1" {
			stitched = true
			if tr, _ := e["traffic"].(map[string]any); tr == nil || tr["channel"] != "Email" {
				t.Errorf("the landing is not an Email touchpoint: %v", e["traffic"])
			}
		}
	}
	if !stitched {
		t.Errorf("the landing page view is not on Jane's profile: %v", visits.Events)
	}
	for _, bad := range []string{"/r/" + link[1][:21] + "x", "/r/x", "/r/" + link[1] + "?url=https://evil.example"} {
		resp, _ := noRedirect(t, "GET", a.PublicURL+bad, "")
		if bad == "/r/"+link[1]+"?url=https://evil.example" {
			if strings.Contains(resp.Header.Get("Location"), "evil") {
				t.Errorf("open redirect through %s", bad)
			}
			continue
		}
		if resp.StatusCode != 404 || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d %s", bad, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// the pixel answers a GIF whatever the token
	pix := regexp.MustCompile(`/o/([0-9a-f]{24}\.[A-Za-z0-9_=-]+)`).FindStringSubmatch(raw)
	for _, tok := range []string{pix[1], "nonsense"} {
		resp, body := noRedirect(t, "GET", a.PublicURL+"/o/"+tok, "")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/gif" || !strings.HasPrefix(body, "GIF89a") {
			t.Errorf("pixel %s: %d %s", tok, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	// GET shows a page and changes nothing
	resp, page := noRedirect(t, "GET", unsubURL, "")
	if resp.StatusCode != 200 || !strings.Contains(page, "ja**@example.com") || strings.Contains(page, "jane@example.com") {
		t.Fatalf("GET unsubscribe: %d %s", resp.StatusCode, page)
	}
	var u map[string]any
	a.Do(t, "GET", "/api/v1/user/jane@example.com", nil, &u, a.Auth()...)
	if u["isSubscribed"] != true {
		t.Fatalf("a GET unsubscribed: %v", u)
	}
	// the one-click POST: no cookies, no redirect
	resp, page = noRedirect(t, "POST", unsubURL, "List-Unsubscribe=One-Click")
	if resp.StatusCode != 200 || resp.Header.Get("Location") != "" || !strings.Contains(page, "no more marketing email") {
		t.Fatalf("one-click: %d %s", resp.StatusCode, page)
	}
	a.Do(t, "GET", "/api/v1/user/jane@example.com", nil, &u, a.Auth()...)
	if u["isSubscribed"] != false {
		t.Fatalf("still subscribed: %v", u)
	}
	// marketing now records suppressed; transactional still goes
	a.Do(t, "POST", "/api/v1/emails", map[string]any{"to": "jane@example.com", "subject": "Again", "text": "x"}, &out, a.Auth()...)
	if out["state"] != "suppressed" {
		t.Errorf("%v", out)
	}
	if st := a.Do(t, "POST", "/api/v1/emails", map[string]any{"to": "jane@example.com", "subject": "Your order", "text": "x", "transactional": true}, &out, a.Auth()...); st != 202 || out["state"] != "queued" {
		t.Errorf("%d %v", st, out)
	}
	// an idempotency key returns the first message
	var first, second map[string]any
	a.Do(t, "POST", "/api/v1/emails", map[string]any{"to": "jane@example.com", "subject": "Receipt", "text": "x", "transactional": true}, &first, append(a.Auth(), "Idempotency-Key", "order-42")...)
	st = a.Do(t, "POST", "/api/v1/emails", map[string]any{"to": "jane@example.com", "subject": "Receipt", "text": "x", "transactional": true}, &second, append(a.Auth(), "Idempotency-Key", "order-42")...)
	if st != 200 || second["id"] != first["id"] || second["duplicate"] != true {
		t.Errorf("idempotency: %d %v %v", st, first, second)
	}
	// the unsubscribe became an event on the profile
	a.Fold(t)
	var evs struct{ Events []map[string]any }
	a.Do(t, "GET", "/api/v1/user/jane@example.com/events", nil, &evs, a.Auth()...)
	types := map[string]bool{}
	for _, e := range evs.Events {
		types[e["type"].(string)] = true
	}
	for _, want := range []string{"unsubscribe", "email_send", "email_click"} {
		if !types[want] {
			t.Errorf("no %s on the profile: %v", want, types)
		}
	}
}

func TestEmailEndpointsBadInput(t *testing.T) {
	a, _, _, _ := mailApp(t, false)
	secret, k, _ := apikey.New("no-email", []string{model.ScopeUsersRead}, time.Now())
	a.Store.PutAPIKey(k)
	big := strings.Repeat("x", 2<<20)
	for _, tt := range []struct {
		name, method, path string
		body               string
		auth               []string
		status             int
		field              string
	}{
		{"no key", "POST", "/api/v1/emails", `{}`, nil, 401, "Authorization"},
		{"key without email:send", "POST", "/api/v1/emails", `{}`, []string{"Authorization", "Bearer " + secret}, 403, "Authorization"},
		{"not JSON", "POST", "/api/v1/emails", `{"to":`, a.Auth(), 400, "body"},
		{"two objects", "POST", "/api/v1/emails", `{"to":"a@example.com","subject":"s","text":"t"}{}`, a.Auth(), 400, "body"},
		{"array", "POST", "/api/v1/emails", `[]`, a.Auth(), 400, ""},
		{"unknown field", "POST", "/api/v1/emails", `{"to":"a@example.com","subject":"s","text":"t","bcc":"x@example.com"}`, a.Auth(), 400, "bcc"},
		{"wrong type", "POST", "/api/v1/emails", `{"to":"a@example.com","subject":"s","text":"t","transactional":"yes"}`, a.Auth(), 400, "transactional"},
		{"no recipient", "POST", "/api/v1/emails", `{"subject":"s","text":"t"}`, a.Auth(), 400, "to"},
		{"header injection in to", "POST", "/api/v1/emails", `{"to":"a@example.com\r\nBcc: x@example.com","subject":"s","text":"t"}`, a.Auth(), 400, "to"},
		{"header injection in subject", "POST", "/api/v1/emails", `{"to":"a@example.com","subject":"s\r\nBcc: x@example.com","text":"t"}`, a.Auth(), 400, "subject"},
		{"non-ASCII local part", "POST", "/api/v1/emails", `{"to":"ü@example.de","subject":"s","text":"t"}`, a.Auth(), 400, "to"},
		{"no body", "POST", "/api/v1/emails", `{"to":"a@example.com","subject":"s"}`, a.Auth(), 400, "html"},
		{"invalid UTF-8", "POST", "/api/v1/emails", "{\"to\":\"a@example.com\",\"subject\":\"s\",\"text\":\"\xff\"}", a.Auth(), 202, ""},
		{"too large", "POST", "/api/v1/emails", `{"to":"a@example.com","subject":"s","html":"` + big + `"}`, a.Auth(), 413, "body"},
		{"unknown message", "GET", "/api/v1/emails/0123456789abcdef01234567", "", a.Auth(), 404, "id"},
		{"malformed id", "GET", "/api/v1/emails/..%2F..%2Fetc", "", a.Auth(), 404, "id"},
		{"bad limit", "GET", "/api/v1/suppressions?limit=0", "", a.Auth(), 400, "limit"},
		{"bad after", "GET", "/api/v1/suppressions?after=nope", "", a.Auth(), 400, "after"},
		{"not suppressed", "DELETE", "/api/v1/suppressions/a@example.com", "", a.Auth(), 404, "email"},
		{"not an address", "DELETE", "/api/v1/suppressions/nope", "", a.Auth(), 400, "email"},
		{"SNS garbage", "POST", "/webhooks/ses", `hello`, nil, 403, "Signature"},
		{"SNS too large", "POST", "/webhooks/ses", `{"Message":"` + big + `"}`, nil, 413, "body"},
		{"SNS unsigned", "POST", "/webhooks/ses", `{"Type":"Notification","MessageId":"1","TopicArn":"` + topic + `","Message":"{}","Timestamp":"` + time.Now().UTC().Format(time.RFC3339) + `","SignatureVersion":"2","Signature":"AAAA","SigningCertURL":"https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem"}`, nil, 403, "Signature"},
		{"unsubscribe bad token", "POST", "/u/0123456789abcdef01234567.AAAAAAAAAAAAAAAAAAAAAA", "List-Unsubscribe=One-Click", nil, 404, ""},
		{"unsubscribe page bad token", "GET", "/u/x", "", nil, 404, ""},
		{"GET on the webhook", "GET", "/webhooks/ses", "", nil, 405, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out struct {
				Error struct{ Code, Field, Message string }
			}
			var body any
			if tt.body != "" {
				body = tt.body
			}
			req, _ := http.NewRequest(tt.method, a.PublicURL+tt.path, nil)
			_ = req
			st := doRaw(t, a, tt.method, tt.path, body, &out, tt.auth...)
			if st != tt.status {
				t.Fatalf("status %d, want %d (%+v)", st, tt.status, out)
			}
			if tt.field != "" && out.Error.Field != tt.field {
				t.Errorf("field %q, want %q (%+v)", out.Error.Field, tt.field, out)
			}
		})
	}
}

// doRaw is a.Do that tolerates a non-JSON answer.
func doRaw(t *testing.T, a *enginetest.App, method, path string, body any, out any, header ...string) int {
	t.Helper()
	var r io.Reader
	if s, ok := body.(string); ok {
		r = strings.NewReader(s)
	}
	req, _ := http.NewRequest(method, a.PublicURL+path, r)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		json.Unmarshal(raw, out)
	}
	return resp.StatusCode
}

func TestSESEventsThroughTheWebhook(t *testing.T) {
	a, _, ses, sns := mailApp(t, true)
	subscribe(t, a, "bob@example.com")
	var out map[string]any
	a.Do(t, "POST", "/api/v1/emails", map[string]any{"to": "bob@example.com", "subject": "Hi", "text": "x", "campaign": "spring"}, &out, a.Auth()...)
	sent := waitEmail(t, a, out["id"].(string), "sent")
	if sent["provider"] != "ses" || len(ses.Sent()) != 1 || len(ses.Problems()) > 0 {
		t.Fatalf("%v %v", sent, ses.Problems())
	}
	// the subscription is confirmed after verification
	if st := a.Do(t, "POST", "/webhooks/ses", sns.Confirmation("tok").JSON(), &out); st != 200 || len(sns.Confirmed()) != 1 {
		t.Fatalf("confirmation: %d %v", st, out)
	}
	bounce := sns.Notification(map[string]any{"eventType": "Bounce",
		"mail":   map[string]any{"messageId": sent["provider_message_id"], "timestamp": time.Now().UTC().Format(time.RFC3339), "tags": map[string][]string{"shoptrail_message": {sent["id"].(string)}}},
		"bounce": map[string]any{"bounceType": "Permanent", "bounceSubType": "NoEmail", "timestamp": time.Now().UTC().Format(time.RFC3339)}})
	if st := a.Do(t, "POST", "/webhooks/ses", bounce.JSON(), &out); st != 200 || out["result"] != "recorded email_bounce" {
		t.Fatalf("bounce: %d %v", st, out)
	}
	if st := a.Do(t, "POST", "/webhooks/ses", bounce.JSON(), &out); st != 200 || out["result"] != "duplicate" {
		t.Fatalf("replay: %d %v", st, out)
	}
	tampered := snstest.Message{}
	for k, v := range bounce {
		tampered[k] = v
	}
	tampered["Message"] = strings.Replace(tampered["Message"], "Permanent", "Transient", 1)
	if st := a.Do(t, "POST", "/webhooks/ses", tampered.JSON(), &out); st != 403 {
		t.Fatalf("tampered: %d %v", st, out)
	}
	var list struct {
		Suppressions []map[string]any
	}
	a.Do(t, "GET", "/api/v1/suppressions", nil, &list, a.Auth()...)
	if len(list.Suppressions) != 1 || list.Suppressions[0]["email"] != "bob@example.com" || list.Suppressions[0]["reason"] != "bounce" {
		t.Fatalf("%+v", list)
	}
	a.Fold(t)
	var evs struct{ Events []map[string]any }
	a.Do(t, "GET", "/api/v1/user/bob@example.com/events", nil, &evs, a.Auth()...)
	found := false
	for _, e := range evs.Events {
		if e["type"] == "email_bounce" {
			p := e["props"].(map[string]any)
			found = p["campaign"] == "spring" && p["bounce_type"] == "Permanent"
		}
	}
	if !found {
		t.Errorf("no email_bounce with its campaign on the profile: %v", evs.Events)
	}
	if st := a.Do(t, "DELETE", "/api/v1/suppressions/Bob@Example.com", nil, &out, a.Auth()...); st != 200 {
		t.Fatalf("delete: %d %v", st, out)
	}
	a.Do(t, "GET", "/api/v1/suppressions", nil, &list, a.Auth()...)
	if len(list.Suppressions) != 0 {
		t.Fatalf("%+v", list)
	}
}

func TestAdminEmailPages(t *testing.T) {
	a, srv, _, _ := mailApp(t, false)
	c := signedIn(t, a)
	resp, page := c.do("GET", "/email", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `id="count-queued"`) || !strings.Contains(page, "smtp") {
		t.Fatalf("/email: %d %s", resp.StatusCode, page)
	}
	resp, page = c.do("GET", "/settings/email", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "SES is not configured") || !strings.Contains(page, "/webhooks/ses") {
		t.Fatalf("/settings/email: %d", resp.StatusCode)
	}
	// secrets are write-only
	form := url.Values{"from": {"Shop <hi@shop.example>"}, "smtp_host": {"127.0.0.1"}, "smtp_port": {srvPort(srv)},
		"smtp_password": {"hunter2-very-secret"}, "smtp_tls": {"none"}}
	if resp, _ := c.do("POST", "/settings/email", form, "Origin", a.AdminURL); resp.StatusCode != 303 {
		t.Fatalf("save: %d", resp.StatusCode)
	}
	_, page = c.do("GET", "/settings/email", nil)
	if strings.Contains(page, "hunter2") || !strings.Contains(page, "(set; leave empty to keep it)") || !strings.Contains(page, "hi@shop.example") {
		t.Fatalf("the settings page:\n%s", page)
	}
	// bad settings name the field and change nothing
	bad := url.Values{"from": {"Shop <hi@shop.example>"}, "smtp_host": {"mail.example.com"}, "smtp_port": {"25"}, "smtp_tls": {"none"}}
	if resp, page := c.do("POST", "/settings/email", bad, "Origin", a.AdminURL); resp.StatusCode != 400 || !strings.Contains(page, "smtp.tls") {
		t.Fatalf("bad settings: %d", resp.StatusCode)
	}
	if resp, _ := c.do("POST", "/settings/email", url.Values{"smtp_port": {"x"}}, "Origin", a.AdminURL); resp.StatusCode != 400 {
		t.Fatalf("bad port: %d", resp.StatusCode)
	}
	// cross-site posts are refused
	if resp, _ := c.do("POST", "/settings/email", form, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); resp.StatusCode != 403 {
		t.Fatalf("cross-site: %d", resp.StatusCode)
	}
	// a test message goes through the queue
	if resp, _ := c.do("POST", "/settings/email/test", url.Values{"to": {"owner@shop.example"}}, "Origin", a.AdminURL); resp.StatusCode != 303 {
		t.Fatalf("test: %d", resp.StatusCode)
	}
	msgs, err := srv.Wait(1, 10*time.Second)
	if err != nil || msgs[0].To[0] != "owner@shop.example" || msgs[0].From != "hi@shop.example" {
		t.Fatalf("%+v %v", msgs, err)
	}
	if resp, page := c.do("POST", "/settings/email/test", url.Values{"to": {"nope"}}, "Origin", a.AdminURL); resp.StatusCode != 400 || !strings.Contains(page, "Test message: to") {
		t.Fatalf("bad test address: %d", resp.StatusCode)
	}
	// the SMTP server has it; the queue records it as sent just after
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, page = c.do("GET", "/email?state=sent", nil); strings.Contains(page, "owner@shop.example") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sent list lacks the test message")
		}
	}
	if resp, _ := c.do("POST", "/email/resume", nil, "Origin", a.AdminURL); resp.StatusCode != 303 {
		t.Errorf("resume: %d", resp.StatusCode)
	}
	if resp, _ := c.do("POST", "/email/suppressions/nobody@example.com/remove", nil, "Origin", a.AdminURL); resp.StatusCode != 303 || !strings.Contains(resp.Header.Get("Location"), "error") {
		t.Errorf("remove: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := c.do("POST", "/email/messages/nope/retry", nil, "Origin", a.AdminURL); resp.StatusCode != 303 || !strings.Contains(resp.Header.Get("Location"), "error") {
		t.Errorf("retry: %d", resp.StatusCode)
	}
	// signed out: nothing
	anon := &adminClient{t: t, base: a.AdminURL}
	if resp, _ := anon.do("GET", "/settings/email", nil); resp.StatusCode != 303 {
		t.Errorf("anonymous: %d", resp.StatusCode)
	}
}

func srvPort(s *smtptest.Server) string {
	return strings.TrimPrefix(s.Addr(), "127.0.0.1:")
}
