package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
)

// Suppression is an address Shoptrail does not send to.
type Suppression struct {
	Email   string    `json:"email"`
	Reason  string    `json:"reason"` // bounce, complaint, soft_bounce, manual
	Detail  string    `json:"detail,omitempty"`
	Message string    `json:"message,omitempty"` // the message that caused it
	At      time.Time `json:"at"`
}

// Audit is a change of the suppression list made by hand.
type Audit struct {
	At     time.Time `json:"at"`
	Email  string    `json:"email"`
	Action string    `json:"action"`
	By     string    `json:"by"`
	Was    string    `json:"was,omitempty"`
}

// Suppression returns the suppression of email, or ErrNotSuppressed.
func (m *Mailer) Suppression(email string) (Suppression, error) {
	var s Suppression
	err := m.st.Read(func(tx *store.Tx) error { return tx.Get(store.SpaceMail, "suppress/"+email, &s) })
	if errors.Is(err, store.ErrNotFound) {
		err = ErrNotSuppressed
	}
	return s, err
}

// Suppressions lists suppressed addresses in address order, from after
// ("" : the first).
func (m *Mailer) Suppressions(after string, limit int) ([]Suppression, error) {
	var out []Suppression
	start := ""
	if after != "" {
		start = "suppress/" + after
	}
	err := m.st.Read(func(tx *store.Tx) error {
		return tx.ScanFrom(store.SpaceMail, "suppress/", start, false, true, func(_ string, v json.RawMessage) (bool, error) {
			var s Suppression
			if err := json.Unmarshal(v, &s); err != nil {
				return false, err
			}
			out = append(out, s)
			return len(out) < limit, nil
		})
	})
	return out, err
}

// Unsuppress removes an address from the suppression list, and logs who
// did it (the audit trail the admin UI shows).
func (m *Mailer) Unsuppress(ctx context.Context, email, by string) error {
	defer m.st.Lock("mail-suppress", email)()
	s, err := m.Suppression(email)
	if err != nil {
		return err
	}
	now := m.now().UTC()
	a := Audit{At: now, Email: email, Action: "removed from the suppression list", By: by, Was: s.Reason}
	ev := &model.Event{Type: EventUnsuppressed, Email: email, Time: now,
		Props: map[string]json.RawMessage{"reason": mustJSON(s.Reason), "by": mustJSON(by)}}
	err = m.rec.Record(ctx, []*model.Event{ev}, func(tx *store.Tx) error {
		if err := tx.Delete(store.SpaceMail, "suppress/"+email); err != nil {
			return err
		}
		if err := tx.Delete(store.SpaceMail, "soft/"+email); err != nil {
			return err
		}
		return tx.Set(store.SpaceMail, fmt.Sprintf("audit/%016x", uint64(now.UnixNano())), a)
	})
	if err == nil {
		m.log.Info("address removed from the suppression list", "by", by, "was", s.Reason)
	}
	return err
}

// AuditLog returns the latest manual changes of the suppression list.
func (m *Mailer) AuditLog(limit int) ([]Audit, error) {
	var out []Audit
	err := m.st.Read(func(tx *store.Tx) error {
		return tx.ScanFrom(store.SpaceMail, "audit/", "", true, true, func(_ string, v json.RawMessage) (bool, error) {
			var a Audit
			if err := json.Unmarshal(v, &a); err != nil {
				return false, err
			}
			out = append(out, a)
			return len(out) < limit, nil
		})
	})
	return out, err
}

// suppress adds email to the list in tx (keeping the first reason).
func suppress(tx *store.Tx, s Suppression) error {
	var cur Suppression
	err := tx.Get(store.SpaceMail, "suppress/"+s.Email, &cur)
	if err == nil {
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return tx.Set(store.SpaceMail, "suppress/"+s.Email, s)
}

// blocked says why r may not be sent now ("" : it may).
func (m *Mailer) blocked(r *Record) (string, error) {
	if s, err := m.Suppression(r.To); err == nil {
		return "the address is suppressed (" + s.Reason + ")", nil
	} else if !errors.Is(err, ErrNotSuppressed) {
		return "", err
	}
	if r.Transactional {
		return "", nil
	}
	ok, err := m.subs.Subscribed(r.To)
	if err != nil {
		return "", err
	}
	if !ok {
		return "unsubscribed before it was sent", nil
	}
	return "", nil
}

// ---- SES events ----

// sesEvent is the part of an SES event notification Shoptrail reads.
type sesEvent struct {
	EventType string `json:"eventType"`
	NotifType string `json:"notificationType"` // the older feedback notifications
	Mail      struct {
		MessageID   string              `json:"messageId"`
		Timestamp   time.Time           `json:"timestamp"`
		Destination []string            `json:"destination"`
		Tags        map[string][]string `json:"tags"`
	} `json:"mail"`
	Bounce *struct {
		BounceType        string    `json:"bounceType"`
		BounceSubType     string    `json:"bounceSubType"`
		Timestamp         time.Time `json:"timestamp"`
		BouncedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"bouncedRecipients"`
	} `json:"bounce"`
	Complaint *struct {
		ComplaintFeedbackType string    `json:"complaintFeedbackType"`
		Timestamp             time.Time `json:"timestamp"`
		ComplainedRecipients  []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"complainedRecipients"`
	} `json:"complaint"`
	Delivery *struct {
		Timestamp    time.Time `json:"timestamp"`
		SMTPResponse string    `json:"smtpResponse"`
	} `json:"delivery"`
	Open *struct {
		Timestamp time.Time `json:"timestamp"`
		IPAddress string    `json:"ipAddress"`
		UserAgent string    `json:"userAgent"`
	} `json:"open"`
	Click *struct {
		Timestamp time.Time `json:"timestamp"`
		IPAddress string    `json:"ipAddress"`
		UserAgent string    `json:"userAgent"`
		Link      string    `json:"link"`
	} `json:"click"`
	Reject *struct {
		Reason string `json:"reason"`
	} `json:"reject"`
	DeliveryDelay *struct {
		Timestamp time.Time `json:"timestamp"`
		DelayType string    `json:"delayType"`
	} `json:"deliveryDelay"`
	Failure *struct {
		ErrorMessage string `json:"errorMessage"`
	} `json:"failure"`
}

// ErrUnknownMessage means an SES event names a message Shoptrail did not
// send (another application on the same configuration set).
var ErrUnknownMessage = errors.New("mail: the event is about a message Shoptrail did not send")

// HandleSNS verifies an SNS message (see Verifier) and acts on it: a
// subscription is confirmed, an SES event becomes an email_* event on the
// recipient's profile (hard bounces and complaints suppress the address).
// A message seen before is ignored. Errors wrapping ErrForbidden mean the
// message is not genuine.
func (m *Mailer) HandleSNS(ctx context.Context, body []byte) (string, error) {
	env, err := m.sns.Verify(ctx, body)
	if err != nil {
		return "", err
	}
	switch env.Type {
	case "SubscriptionConfirmation":
		if err := m.sns.Confirm(ctx, env); err != nil {
			return "", err
		}
		m.log.Info("SNS subscription confirmed", "topic", env.TopicArn)
		return "subscription confirmed", nil
	case "UnsubscribeConfirmation":
		m.log.Warn("the SNS topic unsubscribed this endpoint: SES events no longer arrive", "topic", env.TopicArn)
		return "unsubscribe noted", nil
	}
	var seen bool
	if err := m.st.Read(func(tx *store.Tx) error {
		var e error
		seen, e = tx.Has(store.SpaceMail, "sns/"+env.MessageId)
		return e
	}); err != nil {
		return "", err
	}
	if seen {
		return "duplicate", nil
	}
	var ev sesEvent
	if err := json.Unmarshal([]byte(env.Message), &ev); err != nil {
		return "", fmt.Errorf("%w: the Message is not an SES event: %v", ErrBadEvent, err)
	}
	return m.applySES(ctx, env.MessageId, &ev)
}

// ErrBadEvent means a genuine SNS message holds something Shoptrail cannot read.
var ErrBadEvent = errors.New("mail: bad SES event")

func (m *Mailer) applySES(ctx context.Context, snsID string, ev *sesEvent) (string, error) {
	kind := ev.EventType
	if kind == "" {
		kind = ev.NotifType
	}
	var id string
	if v := ev.Mail.Tags[tagMessage]; len(v) > 0 && validID(v[0]) {
		id = v[0]
	} else if ev.Mail.MessageID != "" {
		_ = m.st.Read(func(tx *store.Tx) error { return tx.Get(store.SpaceMail, "provider/"+ev.Mail.MessageID, &id) })
	}
	// every write of a message record (and of the counters) holds the
	// queue's lock
	m.q.mu.Lock()
	defer m.q.mu.Unlock()
	// a copy delivered at the same moment may have been applied meanwhile
	var seen bool
	if err := m.st.Read(func(tx *store.Tx) error {
		var e error
		seen, e = tx.Has(store.SpaceMail, "sns/"+snsID)
		return e
	}); err != nil {
		return "", err
	}
	if seen {
		return "duplicate", nil
	}
	r, err := m.Get(id)
	if err != nil {
		// mark it seen anyway: SNS would retry it for an hour
		m.st.Write(func(tx *store.Tx) error { return tx.SetTTL(store.SpaceMail, "sns/"+snsID, true, 48*time.Hour) })
		return "ignored: not a Shoptrail message", nil
	}
	at := ev.Mail.Timestamp
	props := map[string]any{"provider_message_id": ev.Mail.MessageID}
	var typ string
	var sup *Suppression
	requeue := false
	switch kind {
	case "Send":
		typ = EventSend
	case "Delivery":
		typ = EventDelivery
		if d := ev.Delivery; d != nil {
			at, props["smtp_response"] = d.Timestamp, d.SMTPResponse
		}
	case "Bounce":
		typ = EventBounce
		if b := ev.Bounce; b != nil {
			at = b.Timestamp
			props["bounce_type"], props["bounce_subtype"] = b.BounceType, b.BounceSubType
			if len(b.BouncedRecipients) > 0 {
				props["diagnostic"] = clipText(b.BouncedRecipients[0].DiagnosticCode, 500)
			}
			switch b.BounceType {
			case "Permanent":
				sup = &Suppression{Email: r.To, Reason: "bounce", Detail: b.BounceSubType, Message: r.ID, At: at}
			default: // Transient, Undetermined: soft
				requeue = true
			}
		}
	case "Complaint":
		typ = EventComplaint
		if c := ev.Complaint; c != nil {
			at, props["feedback_type"] = c.Timestamp, c.ComplaintFeedbackType
		}
		sup = &Suppression{Email: r.To, Reason: "complaint", Message: r.ID, At: at}
	case "Reject":
		typ = EventReject
		if ev.Reject != nil {
			props["reason"] = ev.Reject.Reason
		}
	case "DeliveryDelay":
		typ = EventDeliveryDelay
		if d := ev.DeliveryDelay; d != nil {
			at, props["delay_type"] = d.Timestamp, d.DelayType
		}
	case "Open":
		typ = EventOpen
		if o := ev.Open; o != nil {
			at = o.Timestamp
			props["machine"] = MachineOpen(o.IPAddress, o.UserAgent)
		}
	case "Click":
		typ = EventClick
		if c := ev.Click; c != nil {
			at, props["link"] = c.Timestamp, c.Link
			props["machine"] = MachineOpen(c.IPAddress, c.UserAgent)
		}
	case "Rendering Failure":
		typ = EventRenderFailure
		if f := ev.Failure; f != nil {
			props["error"] = clipText(f.ErrorMessage, 500)
		}
	default:
		m.st.Write(func(tx *store.Tx) error { return tx.SetTTL(store.SpaceMail, "sns/"+snsID, true, 48*time.Hour) })
		return "ignored: event type " + kind, nil
	}
	if at.IsZero() {
		at = m.now()
	}
	now := m.now()
	if at.After(now.Add(time.Hour)) {
		at = now
	}
	evID := "ses-" + snsID
	if typ == EventSend {
		evID = "send-" + r.ID // the same event the queue records when SES accepts
	}
	e := m.event(&r, typ, evID, at, props)
	err = m.rec.Record(ctx, []*model.Event{e}, func(tx *store.Tx) error {
		if err := tx.SetTTL(store.SpaceMail, "sns/"+snsID, true, 48*time.Hour); err != nil {
			return err
		}
		var cur Record
		if err := tx.Get(store.SpaceMail, "msg/"+r.ID, &cur); err != nil {
			return err
		}
		// several events per recipient arrive out of order: keep the latest per kind
		if cur.Events == nil {
			cur.Events = map[string]time.Time{}
		}
		if at.After(cur.Events[typ]) {
			cur.Events[typ] = at.UTC()
		}
		switch {
		case typ == EventDelivery:
			if err := tx.Delete(store.SpaceMail, "soft/"+r.To); err != nil {
				return err
			}
		case typ == EventReject && cur.State == Sent:
			cur.Reason = "SES rejected it after accepting it"
			if err := setState(tx, &cur, Failed); err != nil {
				return err
			}
		case requeue:
			var soft int
			if err := tx.Get(store.SpaceMail, "soft/"+r.To, &soft); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			soft++
			if err := tx.Set(store.SpaceMail, "soft/"+r.To, soft); err != nil {
				return err
			}
			cur.SoftBounces++
			if soft >= 3 {
				sup = &Suppression{Email: r.To, Reason: "soft_bounce", Detail: "three soft bounces in a row", Message: r.ID, At: at}
			} else if cur.State == Sent && cur.SoftBounces < 3 {
				// a soft bounce: try again later (the queue's own backoff)
				retry := now.Add(time.Duration(cur.SoftBounces) * time.Hour)
				cur.NextAttempt, cur.Reason = retry, "soft bounce; sent again later"
				if err := tx.Set(store.SpaceMail, dueKey(retry, cur.ID), cur.ID); err != nil {
					return err
				}
				if err := setState(tx, &cur, Queued); err != nil {
					return err
				}
			}
		}
		if sup != nil {
			if err := suppress(tx, *sup); err != nil {
				return err
			}
		}
		return tx.Set(store.SpaceMail, "msg/"+cur.ID, cur)
	})
	if err != nil {
		return "", err
	}
	if requeue {
		m.q.wake()
	}
	return "recorded " + typ, nil
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// ---- opens, clicks, unsubscribes ----

// Apple Mail Privacy Protection fetches images through Apple's proxies
// (17.0.0.0/8) with a bare "Mozilla/5.0"; security scanners announce
// themselves, or are bots by their user agent.
var (
	applePrefix = netip.MustParsePrefix("17.0.0.0/8")
	scanners    = []string{"barracuda", "mimecast", "proofpoint", "symantec", "messagelabs", "trend micro", "forcepoint",
		"ironport", "cisco", "fortinet", "sophos", "mcafee", "zscaler", "safelinks", "linkscanner", "urldefense", "bitdefender"}
)

// MachineOpen says whether an open or click came from a machine:
// "apple_mpp", "scanner", or "" for a person.
func MachineOpen(ip, ua string) string {
	if a, err := netip.ParseAddr(ip); err == nil && applePrefix.Contains(a.Unmap()) {
		return "apple_mpp"
	}
	if strings.TrimSpace(ua) == "Mozilla/5.0" {
		return "apple_mpp"
	}
	l := strings.ToLower(ua)
	for _, s := range scanners {
		if strings.Contains(l, s) {
			return "scanner"
		}
	}
	if ua != "" && track.IsBot(ua) {
		return "scanner"
	}
	return ""
}

// Opened records an open from the pixel of a message sent through SMTP.
func (m *Mailer) Opened(ctx context.Context, token, ip, ua string) error {
	id, ok := tokenID(m.keys.pixel, token)
	if !ok {
		return ErrBadToken
	}
	r, err := m.Get(id)
	if err != nil {
		return ErrBadToken
	}
	now := m.now()
	m.q.mu.Lock()
	defer m.q.mu.Unlock()
	return m.rec.Record(ctx, []*model.Event{m.event(&r, EventOpen, "", now, map[string]any{"machine": MachineOpen(ip, ua)})},
		m.touch(r.ID, EventOpen, now))
}

// Clicked records a click on a tracked link and returns its target.
func (m *Mailer) Clicked(ctx context.Context, linkID, ip, ua string) (string, error) {
	if len(linkID) != 22 {
		return "", ErrBadToken
	}
	var l Link
	err := m.st.Read(func(tx *store.Tx) error { return tx.Get(store.SpaceMail, "link/"+linkID, &l) })
	if err != nil {
		return "", ErrBadToken
	}
	r, err := m.Get(l.Message)
	if err != nil {
		return l.URL, nil // the message was erased; the link still works
	}
	now := m.now()
	m.q.mu.Lock()
	defer m.q.mu.Unlock()
	err = m.rec.Record(ctx, []*model.Event{m.event(&r, EventClick, "", now, map[string]any{"link": l.URL, "machine": MachineOpen(ip, ua)})},
		m.touch(r.ID, EventClick, now))
	return l.URL, err
}

// touch notes the latest time of an event kind on a message.
func (m *Mailer) touch(id, typ string, at time.Time) func(tx *store.Tx) error {
	return func(tx *store.Tx) error {
		var r Record
		if err := tx.Get(store.SpaceMail, "msg/"+id, &r); err != nil {
			return nil
		}
		if r.Events == nil {
			r.Events = map[string]time.Time{}
		}
		r.Events[typ] = at.UTC()
		return tx.Set(store.SpaceMail, "msg/"+id, r)
	}
}

// UnsubscribeTarget returns the address an unsubscribe token is for.
func (m *Mailer) UnsubscribeTarget(token string) (string, error) {
	id, ok := tokenID(m.keys.unsub, token)
	if !ok {
		return "", ErrBadToken
	}
	r, err := m.Get(id)
	if err != nil {
		return "", ErrBadToken
	}
	return r.To, nil
}

// Unsubscribe unsubscribes the recipient of the message a token comes
// from (RFC 8058 one-click, or the confirmation page). It is idempotent.
func (m *Mailer) Unsubscribe(ctx context.Context, token string) (string, error) {
	email, err := m.UnsubscribeTarget(token)
	if err != nil {
		return "", err
	}
	id, _ := tokenID(m.keys.unsub, token)
	if err := m.subs.Unsubscribe(ctx, email, "email:"+id); err != nil {
		return "", err
	}
	return email, nil
}
