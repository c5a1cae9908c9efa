package web_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// routeCase is one request to an email API route and the answer it must
// get: the status, and for an error its code and the field it names.
type routeCase struct {
	name, method, path string
	body               any
	status             int
	code, field        string
}

func runRouteCases(t *testing.T, a *enginetest.App, cases []routeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out struct {
				Error struct{ Code, Field, Message string }
			}
			st := a.Do(t, tc.method, tc.path, tc.body, &out, a.Auth()...)
			if st != tc.status {
				t.Fatalf("%s %s: status %d (%+v), want %d", tc.method, tc.path, st, out.Error, tc.status)
			}
			if tc.code != "" && out.Error.Code != tc.code {
				t.Errorf("%s %s: code %q (%s), want %q", tc.method, tc.path, out.Error.Code, out.Error.Message, tc.code)
			}
			if tc.field != "" && out.Error.Field != tc.field {
				t.Errorf("%s %s: field %q (%s), want %q", tc.method, tc.path, out.Error.Field, out.Error.Message, tc.field)
			}
		})
	}
}

// TestEmailCampaignRoutesErrorBehaviour pins what every route of the email
// campaigns and automations API answers, on success and on each kind of
// failure (bad body, unknown id, wrong status, too large), so that the
// handlers' shared helper keeps each route's behaviour.
func TestEmailCampaignRoutesErrorBehaviour(t *testing.T) {
	a, _, _, _ := mailApp(t, false)
	var seg struct{ ID string }
	if st := a.Do(t, "POST", "/api/v1/segments", `{"name":"Paris","conditions":[{"attribute":"city","op":"eq","value":"Paris"}]}`, &seg, a.Auth()...); st != 201 {
		t.Fatalf("segment: %d", st)
	}
	draft := func() string {
		var c struct{ ID string }
		if st := a.Do(t, "POST", "/api/v1/email-campaigns", map[string]any{"name": "N", "subject": "S", "html": "<p>x</p>", "segment": seg.ID}, &c, a.Auth()...); st != 201 {
			t.Fatalf("draft: %d", st)
		}
		return c.ID
	}
	d1, d2, d3, d4 := draft(), draft(), draft(), draft()
	later := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	const unknown = "0000000000000000"
	base := "/api/v1/email-campaigns"
	ok := map[string]any{"name": "N", "subject": "S", "html": "<p>x</p>", "segment": seg.ID}
	runRouteCases(t, a, []routeCase{
		{"list", "GET", base, nil, 200, "", ""},
		{"create", "POST", base, ok, 201, "", ""},
		{"create: not json", "POST", base, "{", 400, "invalid_json", "body"},
		{"create: unknown field", "POST", base, `{"colour":1}`, 400, "invalid_field", "colour"},
		{"create: wrong type", "POST", base, `{"name":5}`, 400, "invalid_field", "name"},
		{"create: invalid", "POST", base, `{"name":"N"}`, 400, "invalid_field", "subject"},
		{"create: too large", "POST", base, `{"html":"` + strings.Repeat("x", 3<<20) + `"}`, 413, "too_large", "body"},
		{"preview", "POST", base + "/preview", `{"html":"<p>{{.FirstName}}</p>"}`, 200, "", ""},
		{"preview: bad template", "POST", base + "/preview", `{"html":"{{"}`, 400, "invalid_field", "html"},
		{"preview: unknown field", "POST", base + "/preview", `{"x":1}`, 400, "invalid_field", "x"},
		{"get", "GET", base + "/" + d1, nil, 200, "", ""},
		{"get: unknown", "GET", base + "/" + unknown, nil, 404, "not_found", "id"},
		{"get: malformed id", "GET", base + "/nope", nil, 404, "not_found", "id"},
		{"update", "PUT", base + "/" + d1, ok, 200, "", ""},
		{"update: unknown", "PUT", base + "/" + unknown, ok, 404, "not_found", "id"},
		{"update: invalid", "PUT", base + "/" + d1, `{"name":""}`, 400, "invalid_field", "name"},
		{"update: not json", "PUT", base + "/" + d1, `[`, 400, "invalid_json", "body"},
		{"send: past", "POST", base + "/" + d2 + "/send", `{"send_at":"2001-01-01T00:00:00Z"}`, 400, "invalid_field", "send_at"},
		{"send: not a time", "POST", base + "/" + d2 + "/send", `{"send_at":"soon"}`, 400, "invalid_field", "send_at"},
		{"send: unknown field", "POST", base + "/" + d2 + "/send", `{"when":1}`, 400, "invalid_field", "when"},
		{"send: unknown", "POST", base + "/" + unknown + "/send", nil, 404, "not_found", "id"},
		{"schedule", "POST", base + "/" + d2 + "/send", `{"send_at":"` + later + `"}`, 200, "", ""},
		{"delete: scheduled", "DELETE", base + "/" + d2, nil, 409, "wrong_status", "status"},
		{"cancel", "POST", base + "/" + d2 + "/cancel", nil, 200, "", ""},
		{"cancel: again", "POST", base + "/" + d2 + "/cancel", nil, 409, "wrong_status", "status"},
		{"cancel: unknown", "POST", base + "/" + unknown + "/cancel", nil, 404, "not_found", "id"},
		{"update: cancelled", "PUT", base + "/" + d2, ok, 409, "wrong_status", "status"},
		{"send: cancelled", "POST", base + "/" + d2 + "/send", nil, 409, "wrong_status", "status"},
		{"test", "POST", base + "/" + d3 + "/test", `{"to":"qa@example.com"}`, 202, "", ""},
		{"test: no to", "POST", base + "/" + d3 + "/test", `{}`, 400, "invalid_field", "to"},
		{"test: bad to", "POST", base + "/" + d3 + "/test", `{"to":"a@x.com\r\nBcc: b@y.com"}`, 400, "invalid_field", "to"},
		{"test: unknown", "POST", base + "/" + unknown + "/test", `{"to":"qa@example.com"}`, 404, "not_found", "id"},
		{"test: unknown field", "POST", base + "/" + d3 + "/test", `{"cc":"x"}`, 400, "invalid_field", "cc"},
		{"report", "GET", base + "/" + d3 + "/report", nil, 200, "", ""},
		{"report: unknown", "GET", base + "/" + unknown + "/report", nil, 404, "not_found", "id"},
		{"delete", "DELETE", base + "/" + d4, nil, 204, "", ""},
		{"delete: gone", "DELETE", base + "/" + d4, nil, 404, "not_found", "id"},
		{"automations", "GET", "/api/v1/automations", nil, 200, "", ""},
		{"automation", "GET", "/api/v1/automations/welcome", nil, 200, "", ""},
		{"automation: unknown", "GET", "/api/v1/automations/nope", nil, 404, "not_found", "name"},
		{"save automation", "PUT", "/api/v1/automations/welcome", `{"enabled":false,"delay":"1s"}`, 200, "", ""},
		{"save automation: bad delay", "PUT", "/api/v1/automations/welcome", `{"delay":"soon"}`, 400, "invalid_field", "delay"},
		{"save automation: unknown field", "PUT", "/api/v1/automations/welcome", `{"colour":1}`, 400, "invalid_field", "colour"},
		{"save automation: not json", "PUT", "/api/v1/automations/welcome", `{`, 400, "invalid_json", "body"},
		{"save automation: unknown", "PUT", "/api/v1/automations/nope", `{"enabled":false}`, 404, "not_found", "name"},
	})

	// the admin page's cancel and delete buttons
	d5, d6 := draft(), draft()
	a.Do(t, "POST", base+"/"+d5+"/send", `{"send_at":"`+later+`"}`, nil, a.Auth()...)
	c := signedIn(t, a)
	for _, tc := range []struct {
		name, path string
		status     int
		location   string
	}{
		{"delete scheduled", "/email/campaigns/" + d5 + "/delete", 409, ""},
		{"cancel", "/email/campaigns/" + d5 + "/cancel", 303, "/email/campaigns?m=cancelled"},
		{"cancel again", "/email/campaigns/" + d5 + "/cancel", 409, ""},
		{"cancel unknown", "/email/campaigns/" + unknown + "/cancel", 404, ""},
		{"delete draft", "/email/campaigns/" + d6 + "/delete", 303, "/email/campaigns?m=deleted"},
		{"delete gone", "/email/campaigns/" + d6 + "/delete", 404, ""},
	} {
		resp, page := c.do("POST", tc.path, url.Values{}, "Origin", a.AdminURL, "Sec-Fetch-Site", "same-origin")
		if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location {
			t.Errorf("%s: %d %q, want %d %q (%.200s)", tc.name, resp.StatusCode, resp.Header.Get("Location"), tc.status, tc.location, page)
		}
	}
}

// TestCampaignReportAttributedEndToEnd: a campaign is sent; its recipient
// comes to the shop through the email's tagged link, later from Google,
// and orders: the API's report and the admin's report page credit the
// email with half the order under linear and none under last non-direct
// (Google was the last non-direct visit).
func TestCampaignReportAttributedEndToEnd(t *testing.T) {
	a, srv, _, _ := mailApp(t, false)
	if st := a.Do(t, "POST", "/api/v1/user", map[string]any{"email": "ann@example.com", "city": "Paris", "isSubscribed": true}, nil, a.Auth()...); st != 201 {
		t.Fatalf("user: %d", st)
	}
	a.Fold(t)
	var seg struct{ ID string }
	a.Do(t, "POST", "/api/v1/segments", `{"name":"Paris","conditions":[{"attribute":"city","op":"eq","value":"Paris"}]}`, &seg, a.Auth()...)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var g struct{ Building bool }
		a.Do(t, "GET", "/api/v1/segments/"+seg.ID, nil, &g, a.Auth()...)
		if !g.Building {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the segment is still building")
		}
	}
	var c struct{ ID, Status string }
	if st := a.Do(t, "POST", "/api/v1/email-campaigns", map[string]any{"name": "N", "subject": "S", "html": `<a href="https://shop.example/sale">Sale</a>`, "segment": seg.ID, "send": true}, &c, a.Auth()...); st != 201 {
		t.Fatalf("campaign: %d", st)
	}
	if _, err := srv.Wait(1, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	// the visits come after the send (before it, a visit with the tag is not the email's)
	var full struct {
		Started time.Time `json:"started_at"`
	}
	a.Do(t, "GET", "/api/v1/email-campaigns/"+c.ID, nil, &full, a.Auth()...)
	time.Sleep(50 * time.Millisecond)
	events := []map[string]any{
		{"id": "v1", "type": "page_view", "anonymous_id": "b1", "session_id": "s1", "time": full.Started.Add(10 * time.Millisecond),
			"url": "https://shop.example/sale?utm_source=shoptrail&utm_medium=email&utm_campaign=" + c.ID},
		{"id": "v2", "type": "page_view", "anonymous_id": "b1", "session_id": "s2", "time": full.Started.Add(20 * time.Millisecond), "url": "https://shop.example/p/1", "referrer": "https://www.google.com/"},
		{"id": "o1", "type": "order", "anonymous_id": "b1", "session_id": "s2", "email": "ann@example.com", "time": full.Started.Add(30 * time.Millisecond), "url": "https://shop.example/thanks",
			"props": map[string]any{"order_id": "A-1", "value": 80, "currency": "EUR"}},
	}
	if st := a.Do(t, "POST", "/api/v1/events", map[string]any{"events": events}, nil, a.Auth()...); st != 200 {
		t.Fatalf("events: %d", st)
	}
	var rep struct {
		Attributed struct {
			Orders  int64
			Revenue map[string]int64
			Models  map[string]struct {
				Orders  float64
				Revenue map[string]int64
			}
		}
	}
	a.Fold(t)
	if st := a.Do(t, "GET", "/api/v1/email-campaigns/"+c.ID+"/report", nil, &rep, a.Auth()...); st != 200 {
		t.Fatalf("report: %d", st)
	}
	at := rep.Attributed
	if at.Orders != 1 || at.Revenue["EUR"] != 8000 || at.Models["linear"].Revenue["EUR"] != 4000 || at.Models["linear"].Orders != 0.5 ||
		at.Models["last_non_direct"].Revenue["EUR"] != 0 {
		t.Errorf("attributed %+v; want 1 order of 80.00, linear 40.00 (0.5), last non-direct 0", at)
	}
	page := signedIn(t, a)
	resp, body := page.do("GET", "/email/campaigns/"+c.ID+"/report", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `id="attributed-linear"`) || !strings.Contains(body, "40.00") {
		t.Errorf("report page: %d, %.2000s", resp.StatusCode, body)
	}
}
