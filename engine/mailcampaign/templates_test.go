package mailcampaign_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/apikey"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/mailcampaign"
	"github.com/shoptrail/shoptrail/engine/model"
)

type templateOut struct {
	ID, Name, Subject, Preheader, HTML, Text string
}

type apiError struct {
	Error struct{ Code, Field, Message string }
}

// TestSavedTemplateUsedByCampaigns: a campaign that names a saved template
// takes its subject as a default, sends its HTML, and keeps the copy it
// took when sending started after the template changes; the template
// cannot be deleted while a scheduled campaign uses it (409 naming the
// campaign), and can once that campaign is cancelled.
func TestSavedTemplateUsedByCampaigns(t *testing.T) {
	a, srv := mailApp(t)
	for i := range 3 {
		user(t, a, fmt.Sprintf("t%d@example.com", i), fmt.Sprintf("Tia%d", i), "Oslo", true)
	}
	a.Fold(t)
	seg := segment(t, a, `{"name":"Oslo","conditions":[{"attribute":"city","op":"eq","value":"Oslo"}]}`)

	var tpl templateOut
	if st := a.Do(t, "POST", "/api/v1/email-templates", map[string]any{"name": "Weekly", "subject": "This week at Northpeak", "preheader": "Fresh picks",
		"html": `<p>Hej {{.FirstName | default "there"}}, version one</p>`}, &tpl, a.Auth()...); st != 201 {
		t.Fatalf("create template: %d", st)
	}
	var c campaignOut
	var full struct {
		Subject, Preheader, HTML, Template string
	}
	if st := a.Do(t, "POST", "/api/v1/email-campaigns", map[string]any{"name": "W1", "template": tpl.ID, "segment": seg, "send": true}, &c, a.Auth()...); st != 201 {
		t.Fatalf("create campaign: %d", st)
	}
	waitStatus(t, a, c.ID, "sent")
	msgs, err := srv.Wait(3, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		html, _ := parts(t, m.Data)
		if !strings.Contains(html, "version one") || !strings.Contains(html, "Hej Tia") || !strings.Contains(html, "Fresh picks") {
			t.Errorf("message to %s: %s", m.To[0], html)
		}
		if !strings.Contains(string(m.Data), "Subject: This week at Northpeak") {
			t.Errorf("message to %s lacks the template's subject", m.To[0])
		}
	}
	// the template changes: the sent campaign keeps its copy
	if st := a.Do(t, "PUT", "/api/v1/email-templates/"+tpl.ID, map[string]any{"name": "Weekly", "html": "<p>version two</p>"}, &tpl, a.Auth()...); st != 200 {
		t.Fatalf("update template: %d", st)
	}
	a.Do(t, "GET", "/api/v1/email-campaigns/"+c.ID, nil, &full, a.Auth()...)
	if !strings.Contains(full.HTML, "version one") || full.Template != tpl.ID || full.Subject != "This week at Northpeak" {
		t.Errorf("the sent campaign changed with its template: %+v", full)
	}

	// a campaign scheduled with the template keeps it from being deleted
	later := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	var c2 campaignOut
	if st := a.Do(t, "POST", "/api/v1/email-campaigns", map[string]any{"name": "W2 <soon>", "subject": "Own subject", "template": tpl.ID, "segment": seg, "send_at": later}, &c2, a.Auth()...); st != 201 {
		t.Fatalf("schedule: %d", st)
	}
	a.Do(t, "GET", "/api/v1/email-campaigns/"+c2.ID, nil, &full, a.Auth()...)
	if full.HTML != "" || full.Subject != "Own subject" || full.Preheader != "Fresh picks" {
		t.Errorf("a scheduled campaign holds %+v; want the template's HTML only when it sends, its own subject, the template's preheader", full)
	}
	var e apiError
	if st := a.Do(t, "DELETE", "/api/v1/email-templates/"+tpl.ID, nil, &e, a.Auth()...); st != http.StatusConflict || e.Error.Code != "in_use" || !strings.Contains(e.Error.Message, "W2 <soon>") {
		t.Fatalf("deleting a template a scheduled campaign uses: %d %+v", st, e)
	}
	if st := a.Do(t, "GET", "/api/v1/email-templates/"+tpl.ID, nil, nil, a.Auth()...); st != 200 {
		t.Fatalf("the refused delete deleted: %d", st)
	}
	if st := a.Do(t, "POST", "/api/v1/email-campaigns/"+c2.ID+"/cancel", nil, nil, a.Auth()...); st != 200 {
		t.Fatalf("cancel: %d", st)
	}
	if st := a.Do(t, "DELETE", "/api/v1/email-templates/"+tpl.ID, nil, nil, a.Auth()...); st != http.StatusNoContent {
		t.Fatalf("delete an unused template: %d", st)
	}
	if st := a.Do(t, "GET", "/api/v1/email-templates/"+tpl.ID, nil, nil, a.Auth()...); st != 404 {
		t.Fatalf("a deleted template: %d", st)
	}
	// the sent campaign still has its copy; a new one cannot name the template
	a.Do(t, "GET", "/api/v1/email-campaigns/"+c.ID, nil, &full, a.Auth()...)
	if !strings.Contains(full.HTML, "version one") {
		t.Errorf("the sent campaign lost its copy: %+v", full)
	}
	if st := a.Do(t, "POST", "/api/v1/email-campaigns", map[string]any{"name": "W3", "template": tpl.ID, "segment": seg}, &e, a.Auth()...); st != 400 || e.Error.Field != "template" {
		t.Errorf("a deleted template in a campaign: %d %+v", st, e)
	}
}

// TestTemplateAPIBadInput runs the bad-input table on the templates API;
// errors name the field, template errors the line.
func TestTemplateAPIBadInput(t *testing.T) {
	a, _ := mailApp(t)
	ok := func() map[string]any { return map[string]any{"name": "N", "html": "<p>x</p>"} }
	with := func(k string, v any) map[string]any { m := ok(); m[k] = v; return m }
	without := func(k string) map[string]any { m := ok(); delete(m, k); return m }
	cases := []struct {
		name    string
		body    any
		field   string
		message string // in the error's message
	}{
		{"not json", "{", "body", ""},
		{"array", "[]", "body", ""},
		{"two objects", `{"name":"a"}{"name":"b"}`, "body", ""},
		{"unknown field", with("segment", "x"), "segment", "known: name, subject"},
		{"no name", without("name"), "name", ""},
		{"blank name", with("name", "  "), "name", ""},
		{"name with newline", with("name", "a\nb"), "name", ""},
		{"long name", with("name", strings.Repeat("n", 201)), "name", ""},
		{"name is a number", with("name", 5), "name", ""},
		{"subject with CRLF", with("subject", "Hi\r\nBcc: x@y.example"), "subject", ""},
		{"long preheader", with("preheader", strings.Repeat("p", 251)), "preheader", ""},
		{"no html", without("html"), "html", ""},
		{"unclosed action", with("html", "<p>one</p>\n<p>{{.FirstName</p>"), "html", "line 2"},
		{"environment", with("html", "<p>\n\n{{env \"AWS_SECRET_ACCESS_KEY\"}}</p>"), "html", "line 3: function \"env\" not defined"},
		{"no such field", with("html", "<p>{{.Password}}</p>"), "html", "line 1"},
		{"unclosed attribute", with("html", `<a href="{{.FirstName}}`), "html", "ends inside a tag"},
		{"bad text", with("text", "Hi\n{{if}}"), "text", "line 2"},
		{"invalid UTF-8", `{"name":"N","html":"\xff"}`, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out apiError
			st := a.Do(t, "POST", "/api/v1/email-templates", tc.body, &out, a.Auth()...)
			if st != 400 {
				t.Fatalf("status %d, want 400 (%+v)", st, out)
			}
			if tc.field != "" && out.Error.Field != tc.field {
				t.Errorf("field %q (%s), want %q", out.Error.Field, out.Error.Message, tc.field)
			}
			if !strings.Contains(out.Error.Message, tc.message) {
				t.Errorf("message %q lacks %q", out.Error.Message, tc.message)
			}
		})
	}
	big := ok()
	big["html"] = strings.Repeat("x", 2<<20)
	if st := a.Do(t, "POST", "/api/v1/email-templates", big, nil, a.Auth()...); st != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body: %d, want 413", st)
	}
	const unknown = "0000000000000000"
	for _, r := range []struct{ method, path string }{
		{"GET", "/api/v1/email-templates/" + unknown}, {"GET", "/api/v1/email-templates/nope"},
		{"PUT", "/api/v1/email-templates/" + unknown}, {"DELETE", "/api/v1/email-templates/" + unknown},
	} {
		var out apiError
		if st := a.Do(t, r.method, r.path, ok(), &out, a.Auth()...); st != 404 || out.Error.Field != "id" {
			t.Errorf("%s %s: %d %+v, want 404 naming id", r.method, r.path, st, out)
		}
	}
	// a campaign naming a template and giving HTML too
	var out apiError
	if st := a.Do(t, "POST", "/api/v1/email-campaigns", map[string]any{"name": "N", "subject": "S", "html": "<p>x</p>", "template": unknown, "segment": "x"}, &out, a.Auth()...); st != 400 || out.Error.Field != "template" {
		t.Errorf("html and template: %d %+v", st, out)
	}
	// scopes: email:read reads, email:write writes (and reads)
	reader, k, _ := apikey.New("reader", []string{model.ScopeEmailRead}, time.Now())
	a.Store.PutAPIKey(k)
	writer, k2, _ := apikey.New("writer", []string{model.ScopeEmailWrite}, time.Now())
	a.Store.PutAPIKey(k2)
	if st := a.Do(t, "GET", "/api/v1/email-templates", nil, nil, "Authorization", "Bearer "+reader); st != 200 {
		t.Errorf("email:read lists: %d", st)
	}
	if st := a.Do(t, "POST", "/api/v1/email-templates", ok(), nil, "Authorization", "Bearer "+reader); st != 403 {
		t.Errorf("email:read creates: %d, want 403", st)
	}
	if st := a.Do(t, "GET", "/api/v1/email-templates", nil, nil, "Authorization", "Bearer "+writer); st != 200 {
		t.Errorf("email:write (which includes email:read) lists: %d", st)
	}
	other, k3, _ := apikey.New("other", []string{model.ScopeEmailSend}, time.Now())
	a.Store.PutAPIKey(k3)
	if st := a.Do(t, "GET", "/api/v1/email-templates", nil, nil, "Authorization", "Bearer "+other); st != 403 {
		t.Errorf("email:send lists: %d, want 403", st)
	}
	if st := a.Do(t, "GET", "/api/v1/email-templates", nil, nil); st != 401 {
		t.Errorf("no key: %d, want 401", st)
	}
	// nothing was stored
	var list struct{ Templates []any }
	a.Do(t, "GET", "/api/v1/email-templates", nil, &list, a.Auth()...)
	if len(list.Templates) != 0 {
		t.Errorf("%d templates stored by bad requests", len(list.Templates))
	}
}

// TestDeleteTemplateRacesCampaigns deletes a template while campaigns that
// name it are created: a campaign is saved only while its template exists,
// so after the race either the delete was refused or no campaign names a
// template that is gone.
func TestDeleteTemplateRacesCampaigns(t *testing.T) {
	for round := range 5 {
		p := newService(t)
		tpl, err := p.CreateTemplate(mailcampaign.TemplateInput{Name: fmt.Sprint("T", round), Subject: "S", HTML: "<p>x</p>"})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var deleted error
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.Create(mailcampaign.Input{Name: fmt.Sprint("C", i), Template: tpl.ID, Segment: "s"})
			}()
		}
		wg.Add(1)
		go func() { defer wg.Done(); deleted = p.DeleteTemplate(tpl.ID) }()
		wg.Wait()
		list, err := p.List()
		if err != nil {
			t.Fatal(err)
		}
		_, gone := p.GetTemplate(tpl.ID)
		if deleted == nil {
			if gone == nil {
				t.Fatal("deleted, yet still there")
			}
			for _, c := range list {
				if c.Template == tpl.ID {
					t.Fatalf("campaign %s names the deleted template", c.Name)
				}
			}
		} else if gone != nil {
			t.Fatalf("delete refused (%v), yet the template is gone", deleted)
		}
	}
}

func newService(t *testing.T) *mailcampaign.Service {
	t.Helper()
	st := enginetest.NewStore(t)
	return mailcampaign.New(mailcampaign.Options{Store: st, Segments: listSegment{}})
}
