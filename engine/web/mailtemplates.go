package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/shoptrail/shoptrail/engine/mailcampaign"
	"github.com/shoptrail/shoptrail/engine/model"
)

// Saved email templates: the API (email:read to read, email:write to
// change) and the admin's Email → Templates page. The work is
// engine/mailcampaign's.

// listMailTemplates is GET /api/v1/email-templates.
func (s *Server) listMailTemplates(w http.ResponseWriter, r *http.Request) error {
	return s.campaignAPI(w, http.StatusOK, func(svc *mailcampaign.Service) (any, error) {
		list, err := svc.ListTemplates()
		return map[string]any{"templates": list}, err
	})
}

// createMailTemplate is POST /api/v1/email-templates.
func (s *Server) createMailTemplate(w http.ResponseWriter, r *http.Request) error {
	return s.campaignAPI(w, http.StatusCreated, func(svc *mailcampaign.Service) (any, error) {
		var in mailcampaign.TemplateInput
		if err := decodeStrict(w, r, maxCampaignBody, &in, mailcampaign.TemplateFields); err != nil {
			return nil, err
		}
		return svc.CreateTemplate(in)
	})
}

// getMailTemplate is GET /api/v1/email-templates/{id}.
func (s *Server) getMailTemplate(w http.ResponseWriter, r *http.Request) error {
	return s.campaignAPI(w, http.StatusOK, func(svc *mailcampaign.Service) (any, error) {
		return svc.GetTemplate(r.PathValue("id"))
	})
}

// updateMailTemplate is PUT /api/v1/email-templates/{id}.
func (s *Server) updateMailTemplate(w http.ResponseWriter, r *http.Request) error {
	return s.campaignAPI(w, http.StatusOK, func(svc *mailcampaign.Service) (any, error) {
		var in mailcampaign.TemplateInput
		if err := decodeStrict(w, r, maxCampaignBody, &in, mailcampaign.TemplateFields); err != nil {
			return nil, err
		}
		return svc.UpdateTemplate(r.PathValue("id"), in)
	})
}

// deleteMailTemplate is DELETE /api/v1/email-templates/{id}: 409 while a
// campaign not yet sent uses it.
func (s *Server) deleteMailTemplate(w http.ResponseWriter, r *http.Request) error {
	return s.campaignAPI(w, http.StatusNoContent, func(svc *mailcampaign.Service) (any, error) {
		return nil, svc.DeleteTemplate(r.PathValue("id"))
	})
}

// Admin: Email → Templates.

// emailTemplatesPage is GET /email/templates.
func (s *Server) emailTemplatesPage(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	list, err := svc.ListTemplates()
	if err != nil {
		return err
	}
	data := map[string]any{"Templates": list}
	if m := r.URL.Query().Get("m"); m != "" {
		data["Message"] = map[string]string{"deleted": "The template was deleted."}[m]
	}
	return s.render(w, http.StatusOK, "email_templates", s.page(r, data))
}

// editTemplate renders the template editor (and the error that kept it
// from being saved).
func (s *Server) editTemplate(w http.ResponseWriter, r *http.Request, status int, t mailcampaign.SavedTemplate, fail error) error {
	data := map[string]any{"Template": t, "As": r.URL.Query().Get("as")}
	var fe *model.FieldError
	var inUse *mailcampaign.InUseError
	switch {
	case fail == nil:
	case errors.As(fail, &fe):
		data["Error"] = &Error{Field: fe.Field, Message: fe.Message}
	case errors.As(fail, &inUse):
		data["Error"] = &Error{Message: "Not deleted: " + inUse.Error() + "."}
	default:
		return fail
	}
	if m := r.URL.Query().Get("m"); m != "" {
		data["Message"] = map[string]string{"saved": "Saved.", "test": "The test message is queued."}[m]
	}
	return s.render(w, status, "email_template", s.page(r, data))
}

// newEmailTemplatePage is GET /email/templates/new.
func (s *Server) newEmailTemplatePage(w http.ResponseWriter, r *http.Request) error {
	return s.editTemplate(w, r, http.StatusOK, mailcampaign.SavedTemplate{
		HTML: "<h1>Hello {{.FirstName | default \"there\"}}</h1>\n<p>Picked for you:</p>\n{{recommend \"viewed\" 3}}\n"}, nil)
}

// emailTemplatePage is GET /email/templates/{id}.
func (s *Server) emailTemplatePage(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	t, err := svc.GetTemplate(r.PathValue("id"))
	if err != nil {
		return mailCampaignError(err)
	}
	return s.editTemplate(w, r, http.StatusOK, t, nil)
}

// saveEmailTemplateForm is POST /email/templates and /email/templates/{id}.
func (s *Server) saveEmailTemplateForm(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxCampaignBody)
	in := mailcampaign.TemplateInput{Name: r.PostFormValue("name"), Subject: r.PostFormValue("subject"), Preheader: r.PostFormValue("preheader"),
		HTML: r.PostFormValue("html"), Text: r.PostFormValue("text")}
	var t mailcampaign.SavedTemplate
	if id := r.PathValue("id"); id != "" {
		t, err = svc.UpdateTemplate(id, in)
	} else {
		t, err = svc.CreateTemplate(in)
	}
	if err != nil {
		var fe *model.FieldError
		if !errors.As(err, &fe) {
			return mailCampaignError(err)
		}
		failed := mailcampaign.SavedTemplate{ID: r.PathValue("id"), Name: in.Name, Subject: in.Subject, Preheader: in.Preheader, HTML: in.HTML, Text: in.Text}
		return s.editTemplate(w, r, http.StatusBadRequest, failed, err)
	}
	http.Redirect(w, r, "/email/templates/"+t.ID+"?m=saved", http.StatusSeeOther)
	return nil
}

// deleteEmailTemplateForm is POST /email/templates/{id}/delete.
func (s *Server) deleteEmailTemplateForm(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	if err := svc.DeleteTemplate(r.PathValue("id")); err != nil {
		var inUse *mailcampaign.InUseError
		if !errors.As(err, &inUse) {
			return mailCampaignError(err)
		}
		t, gerr := svc.GetTemplate(r.PathValue("id"))
		if gerr != nil {
			return mailCampaignError(gerr)
		}
		return s.editTemplate(w, r, http.StatusConflict, t, err)
	}
	http.Redirect(w, r, "/email/templates?m=deleted", http.StatusSeeOther)
	return nil
}

// testEmailTemplateForm is POST /email/templates/{id}/test.
func (s *Server) testEmailTemplateForm(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	t, err := svc.GetTemplate(r.PathValue("id"))
	if err != nil {
		return mailCampaignError(err)
	}
	if _, err := svc.TestSendTemplate(r.Context(), t, strings.TrimSpace(r.PostFormValue("to")), strings.TrimSpace(r.PostFormValue("as"))); err != nil {
		var fe *model.FieldError
		if errors.As(err, &fe) {
			return s.editTemplate(w, r, http.StatusBadRequest, t, &model.FieldError{Field: "test " + fe.Field, Message: fe.Message})
		}
		return mailError(err)
	}
	http.Redirect(w, r, "/email/templates/"+t.ID+"?m=test", http.StatusSeeOther)
	return nil
}

// emailTemplatePreview is GET /email/templates/{id}/preview?as=email: the
// message alone, for the editor's sandboxed frame (see
// emailCampaignPreview).
func (s *Server) emailTemplatePreview(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	t, err := svc.GetTemplate(r.PathValue("id"))
	if err != nil {
		return mailCampaignError(err)
	}
	h, _, err := svc.PreviewTemplate(mailcampaign.TemplateInput{HTML: t.HTML, Text: t.Text, Preheader: t.Preheader}, strings.ToLower(strings.TrimSpace(r.URL.Query().Get("as"))))
	return writePreview(w, h, err)
}
