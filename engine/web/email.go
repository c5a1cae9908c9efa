package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/shoptrail/shoptrail/engine/mail"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/track"
)

// Email on the public listener: the API (POST /api/v1/emails...), the SES
// webhook, and the links in messages (/r/ click redirect, /o/ open pixel,
// /u/ one-click unsubscribe). The work is engine/mail's.

const (
	maxEmailBody = 2*mail.MaxBody + 64<<10
	maxSNSBody   = 256 << 10
)

// ServeMail turns on email (nil: the routes answer 503).
func (s *Server) ServeMail(m *mail.Mailer) { s.mail = m }

func (s *Server) mailer() (*mail.Mailer, error) {
	if s.mail == nil {
		return nil, errorf(http.StatusServiceUnavailable, "email_off", "", "email is not available")
	}
	return s.mail, nil
}

// mailError maps engine/mail's errors to answers.
func mailError(err error) error {
	var fe *model.FieldError
	switch {
	case errors.As(err, &fe):
		return invalid(fe.Field, fe.Message)
	case errors.Is(err, mail.ErrNotConfigured):
		return errorf(http.StatusServiceUnavailable, "email_not_configured", "from", strings.TrimPrefix(err.Error(), "mail: "))
	case errors.Is(err, mail.ErrNotFound):
		return errorf(http.StatusNotFound, "not_found", "id", "no such message")
	case errors.Is(err, mail.ErrNotSuppressed):
		return errorf(http.StatusNotFound, "not_found", "email", "the address is not suppressed")
	}
	return err
}

// emailRequest is the body of POST /api/v1/emails.
type emailRequest struct {
	To             string `json:"to"`
	Subject        string `json:"subject"`
	HTML           string `json:"html"`
	Text           string `json:"text"`
	Transactional  bool   `json:"transactional"`
	Campaign       string `json:"campaign"`
	Automation     string `json:"automation"`
	IdempotencyKey string `json:"idempotency_key"`
}

// emailJSON is a message as the API shows it (without its body).
func emailJSON(r mail.Record) map[string]any {
	out := map[string]any{"id": r.ID, "to": r.To, "subject": r.Subject, "state": r.State, "transactional": r.Transactional,
		"attempts": r.Attempts, "created_at": r.CreatedAt, "updated_at": r.UpdatedAt}
	set := func(k string, v any, ok bool) {
		if ok {
			out[k] = v
		}
	}
	set("reason", r.Reason, r.Reason != "")
	set("campaign", r.Campaign, r.Campaign != "")
	set("automation", r.Automation, r.Automation != "")
	set("idempotency_key", r.IdempotencyKey, r.IdempotencyKey != "")
	set("provider", r.Provider, r.Provider != "")
	set("provider_message_id", r.ProviderID, r.ProviderID != "")
	set("last_error", r.LastError, r.LastError != "")
	set("sent_at", r.SentAt, !r.SentAt.IsZero())
	set("next_attempt", r.NextAttempt, !r.NextAttempt.IsZero())
	set("events", r.Events, len(r.Events) > 0)
	return out
}

// sendEmail is POST /api/v1/emails: one message to one address.
func (s *Server) sendEmail(w http.ResponseWriter, r *http.Request) error {
	m, err := s.mailer()
	if err != nil {
		return err
	}
	var req emailRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxEmailBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooBig):
			return err
		case errors.As(err, &typeErr):
			return invalid(typeErr.Field, typeErr.Field+" must be a "+typeErr.Type.String())
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return invalid(f, "unknown field "+f+" (known: to, subject, html, text, transactional, campaign, automation, idempotency_key)")
		}
		return errorf(http.StatusBadRequest, "invalid_json", "body", "the body must be a JSON object: "+err.Error())
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "invalid_json", "body", "the body must hold one JSON object")
	}
	if k := r.Header.Get("Idempotency-Key"); k != "" && req.IdempotencyKey == "" {
		req.IdempotencyKey = k
	}
	rec, created, err := m.Send(r.Context(), mail.Message{To: req.To, Subject: req.Subject, HTML: req.HTML, Text: req.Text,
		Transactional: req.Transactional, Campaign: req.Campaign, Automation: req.Automation, IdempotencyKey: req.IdempotencyKey})
	if err != nil {
		return mailError(err)
	}
	status := http.StatusAccepted
	if !created {
		status = http.StatusOK // the message queued before under this key
	}
	out := emailJSON(rec)
	out["duplicate"] = !created
	writeJSON(w, status, out)
	return nil
}

// getEmail is GET /api/v1/emails/{id}.
func (s *Server) getEmail(w http.ResponseWriter, r *http.Request) error {
	m, err := s.mailer()
	if err != nil {
		return err
	}
	rec, err := m.Get(r.PathValue("id"))
	if err != nil {
		return mailError(err)
	}
	writeJSON(w, http.StatusOK, emailJSON(rec))
	return nil
}

// listSuppressions is GET /api/v1/suppressions?after=&limit=.
func (s *Server) listSuppressions(w http.ResponseWriter, r *http.Request) error {
	m, err := s.mailer()
	if err != nil {
		return err
	}
	limit, err := parseLimit(r.URL.Query().Get("limit"), 100, 1000)
	if err != nil {
		return err
	}
	after := r.URL.Query().Get("after")
	if after != "" {
		if after, err = track.NormaliseEmail(after); err != nil {
			return invalid("after", err.Error())
		}
	}
	list, err := m.Suppressions(after, limit)
	if err != nil {
		return err
	}
	out := map[string]any{"suppressions": list}
	if len(list) == limit {
		out["next"] = list[len(list)-1].Email
	}
	if list == nil {
		out["suppressions"] = []mail.Suppression{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deleteSuppression is DELETE /api/v1/suppressions/{email}: the removal
// is logged with the key that made it.
func (s *Server) deleteSuppression(w http.ResponseWriter, r *http.Request) error {
	m, err := s.mailer()
	if err != nil {
		return err
	}
	email, err := pathEmail(r)
	if err != nil {
		return err
	}
	if err := m.Unsuppress(r.Context(), email, "api key "+keyPrefix(r)); err != nil {
		return mailError(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"email": email, "suppressed": false})
	return nil
}

// keyPrefix is the display prefix of the request's API key.
func keyPrefix(r *http.Request) string {
	h := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if len(h) > 10 {
		return h[:10] + "…"
	}
	return "?"
}

// sesWebhook is POST /webhooks/ses: SNS notifications of SES events and
// the subscription's confirmation. 403 for anything not provably from SNS.
func (s *Server) sesWebhook(w http.ResponseWriter, r *http.Request) error {
	m, err := s.mailer()
	if err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSNSBody))
	if err != nil {
		return err
	}
	res, err := m.HandleSNS(r.Context(), body)
	switch {
	case errors.Is(err, mail.ErrForbidden):
		s.log.Warn("SNS message refused", "err", err, "client", clientHost(r))
		return errorf(http.StatusForbidden, "forbidden", "Signature", strings.TrimPrefix(err.Error(), "sns: "))
	case errors.Is(err, mail.ErrBadEvent):
		// genuine but unreadable: 200, or SNS retries it for an hour
		s.log.Warn("SES event not understood", "err", err)
		res = "ignored: " + err.Error()
	case err != nil:
		return err // 500: SNS retries
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": res})
	return nil
}

func clientHost(r *http.Request) string {
	h, _, _ := net.SplitHostPort(r.RemoteAddr)
	return h
}

// clickRedirect is GET /r/{link}: record the click, then redirect to the
// stored target. An unknown or altered id gets 404 and no redirect.
func (s *Server) clickRedirect(w http.ResponseWriter, r *http.Request) error {
	m, err := s.mailer()
	if err != nil {
		return err
	}
	target, err := m.Clicked(r.Context(), r.PathValue("link"), s.proxies.clientOf(r).String(), r.UserAgent())
	if errors.Is(err, mail.ErrBadToken) {
		return errorf(http.StatusNotFound, "not_found", "link", "no such link")
	}
	if err != nil {
		if target == "" {
			return err
		}
		s.log.Warn("recording a click", "err", err) // the shopper still goes on
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, target, http.StatusFound)
	return nil
}

// pixel is a transparent 1×1 GIF.
var pixel = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// openPixel is GET /o/{token}: the open pixel of messages sent by SMTP. It
// answers the image whatever happens, so that mail clients show nothing odd.
func (s *Server) openPixel(w http.ResponseWriter, r *http.Request) error {
	if m, err := s.mailer(); err == nil {
		if err := m.Opened(r.Context(), r.PathValue("token"), s.proxies.clientOf(r).String(), r.UserAgent()); err != nil && !errors.Is(err, mail.ErrBadToken) {
			s.log.Warn("recording an open", "err", err)
		}
	}
	w.Header().Set("Content-Type", "image/gif")
	w.Header().Set("Cache-Control", "no-store, private")
	w.Write(pixel)
	return nil
}

var unsubPage = template.Must(template.New("u").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}
button{font:inherit;padding:.5rem 1.2rem;border-radius:.3rem;border:1px solid #444;background:#222;color:#fff;cursor:pointer}</style></head>
<body><h1>{{.Title}}</h1>{{if .Done}}<p id="done">{{.Email}} will get no more marketing email from us.</p>
{{else if .Email}}<p>Stop marketing email to <strong>{{.Email}}</strong>?</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button id="unsubscribe">Unsubscribe</button></form>
{{else}}<p>This unsubscribe link is not valid. If you keep receiving email you do not want, reply to it and ask.</p>{{end}}</body></html>`))

func (s *Server) writeUnsub(w http.ResponseWriter, status int, data map[string]any) error {
	var b bytes.Buffer
	if err := unsubPage.Execute(&b, data); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, err := w.Write(b.Bytes())
	return err
}

// maskEmail shows enough of an address to recognise it: ja**@example.com.
func maskEmail(e string) string {
	at := strings.LastIndexByte(e, '@')
	if at < 0 {
		return ""
	}
	local := e[:at]
	keep := min(2, len(local))
	return local[:keep] + strings.Repeat("*", max(len(local)-keep, 1)) + e[at:]
}

// unsubscribePage is GET /u/{token}: a confirmation page. A GET changes
// nothing (link scanners follow links); the page's button posts.
func (s *Server) unsubscribePage(w http.ResponseWriter, r *http.Request) error {
	m, err := s.mailer()
	if err != nil {
		return err
	}
	email, err := m.UnsubscribeTarget(r.PathValue("token"))
	if errors.Is(err, mail.ErrBadToken) {
		return s.writeUnsub(w, http.StatusNotFound, map[string]any{"Title": "Unsubscribe"})
	}
	if err != nil {
		return err
	}
	return s.writeUnsub(w, http.StatusOK, map[string]any{"Title": "Unsubscribe", "Email": maskEmail(email)})
}

// unsubscribe is POST /u/{token}: RFC 8058 one-click (body
// List-Unsubscribe=One-Click, no cookies, no redirect) and the page's
// button. The token authenticates the request.
func (s *Server) unsubscribe(w http.ResponseWriter, r *http.Request) error {
	m, err := s.mailer()
	if err != nil {
		return err
	}
	io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 4<<10)) // the body says One-Click; the token decides
	email, err := m.Unsubscribe(r.Context(), r.PathValue("token"))
	if errors.Is(err, mail.ErrBadToken) {
		return s.writeUnsub(w, http.StatusNotFound, map[string]any{"Title": "Unsubscribe"})
	}
	if err != nil {
		return err
	}
	s.log.Info("unsubscribed through an email link")
	return s.writeUnsub(w, http.StatusOK, map[string]any{"Title": "Unsubscribed", "Email": maskEmail(email), "Done": true})
}

// describe formats a rate for the admin UI.
func describeRate(r float64) string {
	if r <= 0 {
		return "unpaced"
	}
	return fmt.Sprintf("%.4g messages/s", r)
}
