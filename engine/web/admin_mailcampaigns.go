package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/automation"
	"github.com/shoptrail/shoptrail/engine/mailcampaign"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/segment"
)

// The admin UI's email campaigns and automations: Email → Campaigns
// (list, compose with a preview in a sandboxed frame, test send, schedule,
// report with a chart) and Email → Automations.

// emailCampaignsPage is GET /email/campaigns.
func (s *Server) emailCampaignsPage(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	list, err := svc.List()
	if err != nil {
		return err
	}
	data := map[string]any{"Campaigns": list}
	if m := r.URL.Query().Get("m"); m != "" {
		data["Message"] = map[string]string{"deleted": "The campaign was deleted.", "cancelled": "The campaign was cancelled."}[m]
	}
	return s.render(w, http.StatusOK, "email_campaigns", s.page(r, data))
}

func (s *Server) segmentList() []segment.View {
	if s.segs == nil {
		return nil
	}
	list, _ := s.segs.List()
	return list
}

func (s *Server) templateList() []mailcampaign.SavedTemplate {
	if s.mailCamps == nil {
		return nil
	}
	list, _ := s.mailCamps.ListTemplates()
	return list
}

// campaignForm reads the compose form.
func campaignForm(r *http.Request) mailcampaign.Input {
	in := mailcampaign.Input{Name: r.PostFormValue("name"), Subject: r.PostFormValue("subject"), Preheader: r.PostFormValue("preheader"),
		HTML: r.PostFormValue("html"), Text: r.PostFormValue("text"), Segment: r.PostFormValue("segment"), Template: r.PostFormValue("template")}
	if in.Template != "" {
		// a saved template replaces what the HTML and text boxes hold
		in.HTML, in.Text = "", ""
	}
	return in
}

// composeCampaign renders the compose page with a campaign (and the error
// that kept it from being saved).
func (s *Server) composeCampaign(w http.ResponseWriter, r *http.Request, status int, c mailcampaign.Campaign, fail error) error {
	data := map[string]any{"Campaign": c, "Segments": s.segmentList(), "Templates": s.templateList(), "As": r.URL.Query().Get("as")}
	var fe *model.FieldError
	switch {
	case fail == nil:
	case errors.As(fail, &fe):
		data["Error"] = &Error{Field: fe.Field, Message: fe.Message}
	case errors.Is(fail, mailcampaign.ErrState):
		data["Error"] = &Error{Message: "A campaign that is sending or sent cannot change."}
	default:
		return fail
	}
	if m := r.URL.Query().Get("m"); m != "" {
		data["Message"] = map[string]string{"saved": "Saved.", "test": "The test message is queued.", "scheduled": "The campaign is scheduled."}[m]
	}
	return s.render(w, status, "email_campaign", s.page(r, data))
}

// newEmailCampaignPage is GET /email/campaigns/new.
func (s *Server) newEmailCampaignPage(w http.ResponseWriter, r *http.Request) error {
	return s.composeCampaign(w, r, http.StatusOK, mailcampaign.Campaign{Status: mailcampaign.Draft,
		HTML: "<h1>Hello {{.FirstName | default \"there\"}}</h1>\n<p>Our new arrivals:</p>\n{{recommend \"top_in_category\" 3 \"Shoes\"}}\n"}, nil)
}

// emailCampaignPage is GET /email/campaigns/{id}.
func (s *Server) emailCampaignPage(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	c, err := svc.Get(r.PathValue("id"))
	if err != nil {
		return mailCampaignError(err)
	}
	return s.composeCampaign(w, r, http.StatusOK, c, nil)
}

// saveEmailCampaignForm is POST /email/campaigns and /email/campaigns/{id}:
// the button pressed says what to do (save, send now, schedule).
func (s *Server) saveEmailCampaignForm(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxCampaignBody)
	in := campaignForm(r)
	switch r.PostFormValue("action") {
	case "send":
		in.Send = true
	case "schedule":
		at, err := time.ParseInLocation("2006-01-02T15:04", r.PostFormValue("send_at"), time.Local)
		if err != nil {
			c := mailcampaign.Campaign{ID: r.PathValue("id"), Name: in.Name, Subject: in.Subject, Preheader: in.Preheader, HTML: in.HTML, Text: in.Text, Template: in.Template, Segment: in.Segment}
			return s.composeCampaign(w, r, http.StatusBadRequest, c, &model.FieldError{Field: "send_at", Message: "pick a date and time"})
		}
		in.SendAt = &at
	}
	var c mailcampaign.Campaign
	if id := r.PathValue("id"); id != "" {
		c, err = svc.Update(id, in)
	} else {
		c, err = svc.Create(in)
	}
	if err != nil {
		failed := mailcampaign.Campaign{ID: r.PathValue("id"), Name: in.Name, Subject: in.Subject, Preheader: in.Preheader, HTML: in.HTML, Text: in.Text, Template: in.Template, Segment: in.Segment, Status: mailcampaign.Draft}
		return s.composeCampaign(w, r, http.StatusBadRequest, failed, err)
	}
	if c.Status == mailcampaign.Scheduled {
		http.Redirect(w, r, "/email/campaigns/"+c.ID+"/report", http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/email/campaigns/"+c.ID+"?m=saved", http.StatusSeeOther)
	return nil
}

// campaignFormAction is the shape of the campaign page's buttons that
// change a campaign and go back to the list: the service (503 while it is
// off), the change, its error mapped as the API maps it, then a redirect.
func (s *Server) campaignFormAction(w http.ResponseWriter, r *http.Request, change func(svc *mailcampaign.Service, id string) error, done string) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	if err := change(svc, r.PathValue("id")); err != nil {
		return mailCampaignError(err)
	}
	http.Redirect(w, r, done, http.StatusSeeOther)
	return nil
}

// cancelEmailCampaignForm is POST /email/campaigns/{id}/cancel.
func (s *Server) cancelEmailCampaignForm(w http.ResponseWriter, r *http.Request) error {
	return s.campaignFormAction(w, r, func(svc *mailcampaign.Service, id string) error {
		_, err := svc.Cancel(id)
		return err
	}, "/email/campaigns?m=cancelled")
}

// deleteEmailCampaignForm is POST /email/campaigns/{id}/delete.
func (s *Server) deleteEmailCampaignForm(w http.ResponseWriter, r *http.Request) error {
	return s.campaignFormAction(w, r, func(svc *mailcampaign.Service, id string) error { return svc.Delete(id) }, "/email/campaigns?m=deleted")
}

// testEmailCampaignForm is POST /email/campaigns/{id}/test.
func (s *Server) testEmailCampaignForm(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	c, err := svc.Get(r.PathValue("id"))
	if err != nil {
		return mailCampaignError(err)
	}
	if _, err := svc.TestSend(r.Context(), c, strings.TrimSpace(r.PostFormValue("to")), strings.TrimSpace(r.PostFormValue("as"))); err != nil {
		var fe *model.FieldError
		if errors.As(err, &fe) {
			return s.composeCampaign(w, r, http.StatusBadRequest, c, &model.FieldError{Field: "test " + fe.Field, Message: fe.Message})
		}
		return mailError(err)
	}
	http.Redirect(w, r, "/email/campaigns/"+c.ID+"?m=test", http.StatusSeeOther)
	return nil
}

// emailCampaignPreview is GET /email/campaigns/{id}/preview?as=email: the
// message alone, for the compose page's sandboxed frame. Its own CSP lets
// the email's inline styles and images show and runs no script.
func (s *Server) emailCampaignPreview(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	c, err := svc.Get(r.PathValue("id"))
	if err != nil {
		return mailCampaignError(err)
	}
	h, _, err := svc.PreviewCampaign(c, strings.ToLower(strings.TrimSpace(r.URL.Query().Get("as"))))
	return writePreview(w, h, err)
}

// writePreview writes a rendered email alone (or why it does not render),
// for a page's sandboxed frame. Its own CSP lets the email's inline styles
// and images show and runs no script.
func writePreview(w http.ResponseWriter, h string, err error) error {
	if err != nil {
		h = "<p>This template does not render: " + htmlEscape(err.Error()) + "</p>"
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; frame-ancestors 'self'")
	hd.Set("X-Frame-Options", "SAMEORIGIN")
	hd.Set("Content-Type", "text/html; charset=utf-8")
	_, err = w.Write([]byte(h))
	return err
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

// emailCampaignReportPage is GET /email/campaigns/{id}/report.
func (s *Server) emailCampaignReportPage(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	rep, err := svc.Report(r.PathValue("id"))
	if err != nil {
		return mailCampaignError(err)
	}
	var peak int64 = 1
	for _, d := range rep.Days {
		peak = max(peak, d.Opens, d.Clicks)
	}
	type bar struct {
		Day                   string
		Opens, Clicks, Orders int64
		OpensPct, ClicksPct   int64
	}
	var bars []bar
	for _, d := range rep.Days {
		bars = append(bars, bar{Day: d.Day, Opens: d.Opens, Clicks: d.Clicks, Orders: d.Orders, OpensPct: d.Opens * 10 / peak * 10, ClicksPct: d.Clicks * 10 / peak * 10})
	}
	return s.render(w, http.StatusOK, "email_campaign_report", s.page(r, map[string]any{"R": rep, "Bars": bars}))
}

// automationsPage is GET /email/automations.
func (s *Server) automationsPage(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.automations()
	if err != nil {
		return err
	}
	list, err := svc.List()
	if err != nil {
		return err
	}
	data := map[string]any{"Automations": list, "Segments": s.segmentList(), "Saved": r.URL.Query().Get("saved")}
	return s.render(w, http.StatusOK, "email_automations", s.page(r, data))
}

// saveAutomationForm is POST /email/automations/{name}.
func (s *Server) saveAutomationForm(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.automations()
	if err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxCampaignBody)
	enabled := r.PostFormValue("enabled") == "on"
	f := func(k string) *string { v := r.PostFormValue(k); return &v }
	in := automation.Input{Enabled: &enabled, Delay: f("delay"), Cooldown: f("cooldown"), Subject: f("subject"), HTML: f("html"), Text: f("text")}
	if r.PathValue("name") == automation.SegmentEntered {
		in.Segment = f("segment")
	}
	if _, err := svc.Save(r.PathValue("name"), in); err != nil {
		var fe *model.FieldError
		if !errors.As(err, &fe) {
			return automationError(err)
		}
		list, lerr := svc.List()
		if lerr != nil {
			return lerr
		}
		return s.render(w, http.StatusBadRequest, "email_automations", s.page(r, map[string]any{"Automations": list, "Segments": s.segmentList(),
			"Error": &Error{Field: r.PathValue("name") + "." + fe.Field, Message: fe.Message}}))
	}
	http.Redirect(w, r, "/email/automations?saved="+r.PathValue("name"), http.StatusSeeOther)
	return nil
}
