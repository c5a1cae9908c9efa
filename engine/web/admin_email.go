package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/mail"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/track"
)

// The admin UI's Email pages: the queue (Email) and Settings → Email.

func (s *Server) adminUser(r *http.Request) string {
	if u, ok := r.Context().Value(adminUser{}).(string); ok {
		return u
	}
	return "admin"
}

// emailPage is GET /email: the queue's state, what needs the owner's
// attention (a stop by SES, uncertain messages), recent messages and the
// suppression list.
func (s *Server) emailPage(w http.ResponseWriter, r *http.Request) error {
	m, err := s.mailer()
	if err != nil {
		return err
	}
	state := r.URL.Query().Get("state")
	if state != "" && !containsStr(mail.States, state) {
		state = ""
	}
	st := m.Status()
	data := map[string]any{"Status": st, "States": mail.States, "State": state, "Rate": describeRate(st.Rate),
		"Message": r.URL.Query().Get("message"), "Error": r.URL.Query().Get("error"), "From": m.Settings().From}
	if data["Uncertain"], err = m.List(mail.Uncertain, "", 50); err != nil {
		return err
	}
	if data["Messages"], err = m.List(state, "", 100); err != nil {
		return err
	}
	if data["Suppressions"], err = m.Suppressions("", 200); err != nil {
		return err
	}
	if data["Audit"], err = m.AuditLog(20); err != nil {
		return err
	}
	return s.render(w, http.StatusOK, "email", s.page(r, data))
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func emailRedirect(w http.ResponseWriter, r *http.Request, key, msg string) error {
	http.Redirect(w, r, "/email?"+key+"="+urlQueryEscape(msg), http.StatusSeeOther)
	return nil
}

// resumeEmail is POST /email/resume.
func (s *Server) resumeEmail(w http.ResponseWriter, r *http.Request) error {
	m, err := s.mailer()
	if err != nil {
		return err
	}
	if err := m.Resume(); err != nil {
		return err
	}
	s.log.Info("email sending resumed", "by", s.adminUser(r))
	return emailRedirect(w, r, "message", "Sending resumed.")
}

// retryEmail is POST /email/messages/{id}/retry: the owner decided that an
// uncertain (or failed) message was not sent.
func (s *Server) retryEmail(w http.ResponseWriter, r *http.Request) error {
	m, err := s.mailer()
	if err != nil {
		return err
	}
	rec, err := m.Retry(r.PathValue("id"))
	var fe *model.FieldError
	switch {
	case errors.Is(err, mail.ErrNotFound):
		return emailRedirect(w, r, "error", "No such message.")
	case errors.As(err, &fe):
		return emailRedirect(w, r, "error", fe.Message+".")
	case err != nil:
		return err
	}
	s.log.Info("message queued again by hand", "message", rec.ID, "by", s.adminUser(r))
	return emailRedirect(w, r, "message", "The message to "+rec.To+" is queued again.")
}

// removeSuppression is POST /email/suppressions/{email}/remove.
func (s *Server) removeSuppression(w http.ResponseWriter, r *http.Request) error {
	m, err := s.mailer()
	if err != nil {
		return err
	}
	email, err := track.NormaliseEmail(r.PathValue("email"))
	if err != nil {
		return emailRedirect(w, r, "error", "Not an address.")
	}
	if err := m.Unsuppress(r.Context(), email, "admin "+s.adminUser(r)); errors.Is(err, mail.ErrNotSuppressed) {
		return emailRedirect(w, r, "error", email+" is not suppressed.")
	} else if err != nil {
		return err
	}
	return emailRedirect(w, r, "message", email+" was removed from the suppression list (logged).")
}

// emailSettingsPage is GET /settings/email.
func (s *Server) emailSettingsPage(w http.ResponseWriter, r *http.Request) error {
	return s.renderEmailSettings(w, r, http.StatusOK, map[string]any{"Message": r.URL.Query().Get("message")})
}

func (s *Server) renderEmailSettings(w http.ResponseWriter, r *http.Request, status int, data map[string]any) error {
	m, err := s.mailer()
	if err != nil {
		return err
	}
	cur := m.Settings()
	if _, ok := data["Settings"]; !ok {
		data["Settings"] = cur
	}
	// secrets are write-only: the page says whether one is set, never what
	data["SESSecretSet"] = cur.SES.SecretAccessKey != ""
	data["SMTPPasswordSet"] = cur.SMTP.Password != ""
	data["PublicURL"] = m.PublicURL()
	data["Webhook"] = m.PublicURL() + "/webhooks/ses"
	st := m.Status()
	data["Status"], data["Rate"] = st, describeRate(st.Rate)
	if cur.SES.Region != "" {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		acc, err := m.Account(ctx)
		cancel()
		if err != nil {
			data["AccountError"] = err.Error()
		} else {
			data["Account"] = acc
		}
	}
	return s.render(w, status, "email_settings", s.page(r, data))
}

// saveEmailSettings is POST /settings/email.
func (s *Server) saveEmailSettings(w http.ResponseWriter, r *http.Request) error {
	m, err := s.mailer()
	if err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, 32<<10)
	f := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	port, err := strconv.Atoi(f("smtp_port"))
	if err != nil && f("smtp_port") != "" {
		return s.renderEmailSettings(w, r, http.StatusBadRequest, map[string]any{"Error": "smtp.port: must be a number such as 587."})
	}
	if f("smtp_port") == "" {
		port = 587
	}
	ns := mail.Settings{From: f("from"), ReplyTo: f("reply_to"), PublicURL: strings.TrimRight(f("public_url"), "/"),
		SES: mail.SESSettings{Region: f("ses_region"), AccessKeyID: f("ses_access_key_id"), SecretAccessKey: r.PostFormValue("ses_secret_access_key"),
			ConfigurationSet: f("ses_configuration_set"), Endpoint: m.Settings().SES.Endpoint},
		SMTP: mail.SMTPSettings{Host: f("smtp_host"), Port: port, Username: f("smtp_username"), Password: r.PostFormValue("smtp_password"), TLS: f("smtp_tls")}}
	var clear []string
	if r.PostFormValue("ses_secret_clear") == "on" {
		clear = append(clear, "ses_secret")
	}
	if r.PostFormValue("smtp_password_clear") == "on" {
		clear = append(clear, "smtp_password")
	}
	var fe *model.FieldError
	if err := m.SaveSettings(ns, clear...); errors.As(err, &fe) {
		ns.SES.SecretAccessKey, ns.SMTP.Password = "", ""
		return s.renderEmailSettings(w, r, http.StatusBadRequest, map[string]any{"Settings": ns, "Error": fe.Field + ": " + fe.Message})
	} else if err != nil {
		return err
	}
	http.Redirect(w, r, "/settings/email?message="+urlQueryEscape("Saved."), http.StatusSeeOther)
	return nil
}

// testEmail is POST /settings/email/test: a transactional test message to
// any address, through the queue like every message.
func (s *Server) testEmail(w http.ResponseWriter, r *http.Request) error {
	m, err := s.mailer()
	if err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	to := strings.TrimSpace(r.PostFormValue("to"))
	rec, _, err := m.Send(r.Context(), mail.Message{To: to, Subject: "Shoptrail test message", Transactional: true,
		Text: "This is a test message from Shoptrail's Settings → Email.\n\nIf you read it, email works.",
		HTML: "<p>This is a test message from Shoptrail's <strong>Settings → Email</strong>.</p><p>If you read it, email works.</p>"})
	var fe *model.FieldError
	switch {
	case errors.As(err, &fe):
		return s.renderEmailSettings(w, r, http.StatusBadRequest, map[string]any{"Error": "Test message: " + fe.Field + ": " + fe.Message, "TestTo": to})
	case errors.Is(err, mail.ErrNotConfigured):
		return s.renderEmailSettings(w, r, http.StatusBadRequest, map[string]any{"Error": "Set the sender (From) first.", "TestTo": to})
	case err != nil:
		return err
	}
	http.Redirect(w, r, "/settings/email?message="+urlQueryEscape("Test message queued for "+rec.To+" (state: "+rec.State+"). Email shows when it is sent."), http.StatusSeeOther)
	return nil
}
