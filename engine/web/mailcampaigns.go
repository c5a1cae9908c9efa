package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/mail"
	"github.com/shoptrail/shoptrail/engine/mailcampaign"
	"github.com/shoptrail/shoptrail/engine/model"
)

// The email campaigns API (scope email:write); the work is
// engine/mailcampaign's.

const maxCampaignBody = mail.MaxBody*2 + 64<<10

// ServeMailCampaigns turns on the email campaigns API and pages.
func (s *Server) ServeMailCampaigns(c *mailcampaign.Service) { s.mailCamps = c }

func (s *Server) mailCampaigns() (*mailcampaign.Service, error) {
	if s.mailCamps == nil {
		return nil, errorf(http.StatusServiceUnavailable, "email_off", "", "email campaigns are not available")
	}
	return s.mailCamps, nil
}

// mailCampaignError maps engine/mailcampaign's errors to answers.
func mailCampaignError(err error) error {
	var fe *model.FieldError
	switch {
	case errors.Is(err, mailcampaign.ErrNotFound):
		return errorf(http.StatusNotFound, "not_found", "id", "no such email campaign")
	case errors.Is(err, mailcampaign.ErrState):
		return errorf(http.StatusConflict, "wrong_status", "status", err.Error())
	case errors.Is(err, mail.ErrNotConfigured):
		return errorf(http.StatusServiceUnavailable, "email_off", "", err.Error())
	case errors.As(err, &fe):
		return invalid(fe.Field, fe.Message)
	}
	return err
}

// decodeStrict reads one JSON object into v, refusing unknown fields; the
// error names the field.
func decodeStrict(w http.ResponseWriter, r *http.Request, limit int64, v any, known string) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		var typeErr *json.UnmarshalTypeError
		var timeErr *time.ParseError
		switch {
		case errors.As(err, &tooBig):
			return err
		case errors.As(err, &typeErr) && typeErr.Field == "":
			return errorf(http.StatusBadRequest, "invalid_json", "body", "the body must be a JSON object")
		case errors.As(err, &typeErr):
			return invalid(typeErr.Field, typeErr.Field+" must be a "+typeErr.Type.String())
		case errors.As(err, &timeErr):
			return invalid("send_at", "must be an RFC 3339 time, e.g. 2026-12-01T09:00:00Z")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return invalid(f, "unknown field "+f+" (known: "+known+")")
		}
		return errorf(http.StatusBadRequest, "invalid_json", "body", "the body must be a JSON object: "+err.Error())
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "invalid_json", "body", "the body must hold one JSON object")
	}
	return nil
}

const campaignFields = "name, subject, preheader, html, text, segment, send_at, send"

// createMailCampaign is POST /api/v1/email-campaigns.
func (s *Server) createMailCampaign(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	var in mailcampaign.Input
	if err := decodeStrict(w, r, maxCampaignBody, &in, campaignFields); err != nil {
		return err
	}
	c, err := svc.Create(in)
	if err != nil {
		return mailCampaignError(err)
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

// listMailCampaigns is GET /api/v1/email-campaigns.
func (s *Server) listMailCampaigns(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	list, err := svc.List()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"campaigns": list})
	return nil
}

// getMailCampaign is GET /api/v1/email-campaigns/{id}.
func (s *Server) getMailCampaign(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	c, err := svc.Get(r.PathValue("id"))
	if err != nil {
		return mailCampaignError(err)
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// updateMailCampaign is PUT /api/v1/email-campaigns/{id}.
func (s *Server) updateMailCampaign(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	var in mailcampaign.Input
	if err := decodeStrict(w, r, maxCampaignBody, &in, campaignFields); err != nil {
		return err
	}
	c, err := svc.Update(r.PathValue("id"), in)
	if err != nil {
		return mailCampaignError(err)
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// deleteMailCampaign is DELETE /api/v1/email-campaigns/{id}.
func (s *Server) deleteMailCampaign(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	if err := svc.Delete(r.PathValue("id")); err != nil {
		return mailCampaignError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// sendMailCampaign is POST /api/v1/email-campaigns/{id}/send with an
// optional {"send_at": "..."}.
func (s *Server) sendMailCampaign(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	var req struct {
		SendAt *time.Time `json:"send_at"`
	}
	if r.ContentLength != 0 {
		if err := decodeStrict(w, r, 4<<10, &req, "send_at"); err != nil {
			return err
		}
	}
	at := time.Time{}
	if req.SendAt != nil {
		at = *req.SendAt
	}
	c, err := svc.Schedule(r.PathValue("id"), at)
	if err != nil {
		return mailCampaignError(err)
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// cancelMailCampaign is POST /api/v1/email-campaigns/{id}/cancel.
func (s *Server) cancelMailCampaign(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	c, err := svc.Cancel(r.PathValue("id"))
	if err != nil {
		return mailCampaignError(err)
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// testMailCampaign is POST /api/v1/email-campaigns/{id}/test with
// {"to": address, "as": profile email (optional)}.
func (s *Server) testMailCampaign(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	var req struct {
		To string `json:"to"`
		As string `json:"as"`
	}
	if err := decodeStrict(w, r, 4<<10, &req, "to, as"); err != nil {
		return err
	}
	c, err := svc.Get(r.PathValue("id"))
	if err != nil {
		return mailCampaignError(err)
	}
	if strings.TrimSpace(req.To) == "" {
		return invalid("to", "is required")
	}
	rec, err := svc.TestSend(r.Context(), c, req.To, req.As)
	if err != nil {
		return mailError(mailCampaignError(err))
	}
	writeJSON(w, http.StatusAccepted, rec)
	return nil
}

// previewMailCampaign is POST /api/v1/email-campaigns/preview: renders
// {html, text, preheader} for the profile "as" (optional).
func (s *Server) previewMailCampaign(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	var req struct {
		HTML      string `json:"html"`
		Text      string `json:"text"`
		Preheader string `json:"preheader"`
		As        string `json:"as"`
	}
	if err := decodeStrict(w, r, maxCampaignBody, &req, "html, text, preheader, as"); err != nil {
		return err
	}
	h, text, err := svc.Preview(mailcampaign.Input{HTML: req.HTML, Text: req.Text, Preheader: req.Preheader}, strings.ToLower(strings.TrimSpace(req.As)))
	if err != nil {
		return mailCampaignError(err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"html": h, "text": text})
	return nil
}

// mailCampaignReport is GET /api/v1/email-campaigns/{id}/report.
func (s *Server) mailCampaignReport(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.mailCampaigns()
	if err != nil {
		return err
	}
	rep, err := svc.Report(r.PathValue("id"))
	if err != nil {
		return mailCampaignError(err)
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
