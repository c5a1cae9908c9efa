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

// serveJSON is the shape of the email API's handlers: get the service
// (503 while it is off), run fn, map its error with mapErr, and write what
// it returns as JSON with status (204: no body). fn decodes the request
// itself, so each route keeps its own body and limits.
func serveJSON[S any](w http.ResponseWriter, service func() (S, error), mapErr func(error) error, status int, fn func(svc S) (any, error)) error {
	svc, err := service()
	if err != nil {
		return err
	}
	v, err := fn(svc)
	if err != nil {
		return mapErr(err)
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return nil
	}
	writeJSON(w, status, v)
	return nil
}

// mailCampaignError maps engine/mailcampaign's errors to answers.
func mailCampaignError(err error) error {
	var fe *model.FieldError
	var inUse *mailcampaign.InUseError
	switch {
	case errors.Is(err, mailcampaign.ErrNotFound):
		return errorf(http.StatusNotFound, "not_found", "id", "no such email campaign")
	case errors.Is(err, mailcampaign.ErrTemplateNotFound):
		return errorf(http.StatusNotFound, "not_found", "id", "no such email template")
	case errors.As(err, &inUse):
		return errorf(http.StatusConflict, "in_use", "id", inUse.Error())
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

const campaignFields = "name, subject, preheader, html, text, template, segment, send_at, send"

// campaignAPI runs an email campaigns (or templates) API handler.
func (s *Server) campaignAPI(w http.ResponseWriter, status int, fn func(svc *mailcampaign.Service) (any, error)) error {
	return serveJSON(w, s.mailCampaigns, mailCampaignError, status, fn)
}

// createMailCampaign is POST /api/v1/email-campaigns.
func (s *Server) createMailCampaign(w http.ResponseWriter, r *http.Request) error {
	return s.campaignAPI(w, http.StatusCreated, func(svc *mailcampaign.Service) (any, error) {
		var in mailcampaign.Input
		if err := decodeStrict(w, r, maxCampaignBody, &in, campaignFields); err != nil {
			return nil, err
		}
		return svc.Create(in)
	})
}

// listMailCampaigns is GET /api/v1/email-campaigns.
func (s *Server) listMailCampaigns(w http.ResponseWriter, r *http.Request) error {
	return s.campaignAPI(w, http.StatusOK, func(svc *mailcampaign.Service) (any, error) {
		list, err := svc.List()
		return map[string]any{"campaigns": list}, err
	})
}

// getMailCampaign is GET /api/v1/email-campaigns/{id}.
func (s *Server) getMailCampaign(w http.ResponseWriter, r *http.Request) error {
	return s.campaignAPI(w, http.StatusOK, func(svc *mailcampaign.Service) (any, error) {
		return svc.Get(r.PathValue("id"))
	})
}

// updateMailCampaign is PUT /api/v1/email-campaigns/{id}.
func (s *Server) updateMailCampaign(w http.ResponseWriter, r *http.Request) error {
	return s.campaignAPI(w, http.StatusOK, func(svc *mailcampaign.Service) (any, error) {
		var in mailcampaign.Input
		if err := decodeStrict(w, r, maxCampaignBody, &in, campaignFields); err != nil {
			return nil, err
		}
		return svc.Update(r.PathValue("id"), in)
	})
}

// deleteMailCampaign is DELETE /api/v1/email-campaigns/{id}.
func (s *Server) deleteMailCampaign(w http.ResponseWriter, r *http.Request) error {
	return s.campaignAPI(w, http.StatusNoContent, func(svc *mailcampaign.Service) (any, error) {
		return nil, svc.Delete(r.PathValue("id"))
	})
}

// sendMailCampaign is POST /api/v1/email-campaigns/{id}/send with an
// optional {"send_at": "..."}.
func (s *Server) sendMailCampaign(w http.ResponseWriter, r *http.Request) error {
	return s.campaignAPI(w, http.StatusOK, func(svc *mailcampaign.Service) (any, error) {
		var req struct {
			SendAt *time.Time `json:"send_at"`
		}
		if r.ContentLength != 0 {
			if err := decodeStrict(w, r, 4<<10, &req, "send_at"); err != nil {
				return nil, err
			}
		}
		at := time.Time{}
		if req.SendAt != nil {
			at = *req.SendAt
		}
		return svc.Schedule(r.PathValue("id"), at)
	})
}

// cancelMailCampaign is POST /api/v1/email-campaigns/{id}/cancel.
func (s *Server) cancelMailCampaign(w http.ResponseWriter, r *http.Request) error {
	return s.campaignAPI(w, http.StatusOK, func(svc *mailcampaign.Service) (any, error) {
		return svc.Cancel(r.PathValue("id"))
	})
}

// testRequest is the body of a test send: {"to": address, "as": profile
// email (optional)}.
type testRequest struct {
	To string `json:"to"`
	As string `json:"as"`
}

// testMailCampaign is POST /api/v1/email-campaigns/{id}/test.
func (s *Server) testMailCampaign(w http.ResponseWriter, r *http.Request) error {
	return s.campaignAPI(w, http.StatusAccepted, func(svc *mailcampaign.Service) (any, error) {
		var req testRequest
		if err := decodeStrict(w, r, 4<<10, &req, "to, as"); err != nil {
			return nil, err
		}
		c, err := svc.Get(r.PathValue("id"))
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(req.To) == "" {
			return nil, invalid("to", "is required")
		}
		rec, err := svc.TestSend(r.Context(), c, req.To, req.As)
		if err != nil {
			return nil, mailError(mailCampaignError(err))
		}
		return rec, nil
	})
}

// previewMailCampaign is POST /api/v1/email-campaigns/preview: renders
// {html, text, preheader} for the profile "as" (optional).
func (s *Server) previewMailCampaign(w http.ResponseWriter, r *http.Request) error {
	return s.campaignAPI(w, http.StatusOK, func(svc *mailcampaign.Service) (any, error) {
		var req struct {
			HTML      string `json:"html"`
			Text      string `json:"text"`
			Preheader string `json:"preheader"`
			As        string `json:"as"`
		}
		if err := decodeStrict(w, r, maxCampaignBody, &req, "html, text, preheader, as"); err != nil {
			return nil, err
		}
		h, text, err := svc.Preview(mailcampaign.Input{HTML: req.HTML, Text: req.Text, Preheader: req.Preheader}, strings.ToLower(strings.TrimSpace(req.As)))
		return map[string]string{"html": h, "text": text}, err
	})
}

// mailCampaignReport is GET /api/v1/email-campaigns/{id}/report.
func (s *Server) mailCampaignReport(w http.ResponseWriter, r *http.Request) error {
	return s.campaignAPI(w, http.StatusOK, func(svc *mailcampaign.Service) (any, error) {
		return svc.Report(r.PathValue("id"))
	})
}
