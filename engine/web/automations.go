package web

import (
	"errors"
	"net/http"

	"github.com/shoptrail/shoptrail/engine/automation"
	"github.com/shoptrail/shoptrail/engine/model"
)

// The automations API (scope email:write); the work is engine/automation's.

// ServeAutomations turns on the automations API and page.
func (s *Server) ServeAutomations(a *automation.Service) { s.autos = a }

func (s *Server) automations() (*automation.Service, error) {
	if s.autos == nil {
		return nil, errorf(http.StatusServiceUnavailable, "email_off", "", "automations are not available")
	}
	return s.autos, nil
}

func automationError(err error) error {
	var fe *model.FieldError
	switch {
	case errors.Is(err, automation.ErrNotFound):
		return errorf(http.StatusNotFound, "not_found", "name", "no such automation (welcome, abandoned_cart, browse_abandonment, back_in_stock, price_drop, segment_entered)")
	case errors.As(err, &fe):
		return invalid(fe.Field, fe.Message)
	}
	return err
}

// listAutomations is GET /api/v1/automations.
func (s *Server) listAutomations(w http.ResponseWriter, r *http.Request) error {
	return serveJSON(w, s.automations, automationError, http.StatusOK, func(svc *automation.Service) (any, error) {
		list, err := svc.List()
		return map[string]any{"automations": list}, err
	})
}

// getAutomation is GET /api/v1/automations/{name}.
func (s *Server) getAutomation(w http.ResponseWriter, r *http.Request) error {
	return serveJSON(w, s.automations, automationError, http.StatusOK, func(svc *automation.Service) (any, error) {
		return svc.Get(r.PathValue("name"))
	})
}

// putAutomation is PUT /api/v1/automations/{name}.
func (s *Server) putAutomation(w http.ResponseWriter, r *http.Request) error {
	return serveJSON(w, s.automations, automationError, http.StatusOK, func(svc *automation.Service) (any, error) {
		var in automation.Input
		if err := decodeStrict(w, r, maxCampaignBody, &in, "enabled, delay, cooldown, subject, html, text, segment"); err != nil {
			return nil, err
		}
		return svc.Save(r.PathValue("name"), in)
	})
}
