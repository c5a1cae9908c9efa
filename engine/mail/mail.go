// Package mail sends Shoptrail's email: a durable queue in Badger, Amazon
// SES v2 with SMTP (package smtpfallback) as the fallback, pacing at SES's
// send rate, tracked links, the open pixel and one-click unsubscribe, and the
// SES events that arrive through SNS (signature verified) becoming email_*
// events on the recipient's profile, with bounces and complaints suppressing
// the address.
//
// Every message is a record before any attempt: queued → sending → sent |
// failed | suppressed. A message caught in sending by a crash becomes
// uncertain and is not sent again by itself. Later features (campaigns,
// automations) call Send with a Message; its IdempotencyKey (by default the
// campaign or automation and the recipient) keeps a person from getting the
// same message twice.
package mail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
)

// States of a message.
const (
	Queued     = "queued"     // waiting for its next attempt
	Sending    = "sending"    // handed to a worker
	Sent       = "sent"       // accepted by SES or the SMTP server
	Failed     = "failed"     // permanently refused, or out of retries
	Suppressed = "suppressed" // not sent: suppressed or unsubscribed address
	Uncertain  = "uncertain"  // a crash came while it was being handed over: maybe sent
)

// States lists every state, in the order the admin UI shows them.
var States = []string{Queued, Sending, Sent, Failed, Suppressed, Uncertain}

// Providers.
const (
	ProviderSES  = "ses"
	ProviderSMTP = "smtp"
)

// Event types recorded on the recipient's profile.
const (
	EventSend          = "email_send"
	EventDelivery      = "email_delivery"
	EventBounce        = "email_bounce"
	EventComplaint     = "email_complaint"
	EventReject        = "email_reject"
	EventDeliveryDelay = "email_delivery_delay"
	EventOpen          = "email_open"
	EventClick         = "email_click"
	EventRenderFailure = "email_rendering_failure"
	EventSuppressed    = "email_suppressed"
	EventUnsuppressed  = "email_unsuppressed"
)

// Limits of a message.
const (
	MaxSubject = 998
	MaxBody    = 512 << 10 // bytes of HTML, and of text
	MaxKey     = 200       // bytes of an idempotency key
	MaxTag     = 200       // bytes of a campaign or automation name
)

// Errors.
var (
	ErrNotFound      = errors.New("mail: no such message")
	ErrNotConfigured = errors.New("mail: email is not configured: set [email] from (or Settings → Email)")
	ErrNotSuppressed = errors.New("mail: the address is not suppressed")
	ErrBadToken      = errors.New("mail: invalid or expired token")
)

// FieldError names the field of a Message at fault.
type FieldError = model.FieldError

// Message is what a caller asks to send to one person.
type Message struct {
	To      string // the recipient's address; normalised by Send
	Subject string
	HTML    string // at least one of HTML and Text
	Text    string
	// Transactional messages (order confirmations) skip the subscription
	// check and carry no unsubscribe headers; their links are not tracked.
	// Marketing messages (the default) go only to subscribed addresses.
	Transactional bool
	Campaign      string // the campaign's id, if any: a tag on every event
	Automation    string // the automation's name, if any
	// IdempotencyKey makes Send return the existing message instead of
	// queueing another. Default: "campaign/<Campaign>/<To>" or
	// "automation/<Automation>/<To>" when one is set, none otherwise.
	IdempotencyKey string
}

// Record is a message in the queue.
type Record struct {
	ID             string               `json:"id"`
	To             string               `json:"to"`
	Subject        string               `json:"subject"`
	HTML           string               `json:"html,omitempty"`
	Text           string               `json:"text,omitempty"`
	Transactional  bool                 `json:"transactional"`
	Campaign       string               `json:"campaign,omitempty"`
	Automation     string               `json:"automation,omitempty"`
	IdempotencyKey string               `json:"idempotency_key,omitempty"`
	State          string               `json:"state"`
	Reason         string               `json:"reason,omitempty"` // why failed, suppressed or uncertain
	Attempts       int                  `json:"attempts"`
	SESAttempts    int                  `json:"ses_attempts,omitempty"`
	SMTPAttempts   int                  `json:"smtp_attempts,omitempty"`
	Provider       string               `json:"provider,omitempty"`
	ProviderID     string               `json:"provider_message_id,omitempty"`
	LastError      string               `json:"last_error,omitempty"`
	CreatedAt      time.Time            `json:"created_at"`
	UpdatedAt      time.Time            `json:"updated_at"`
	NextAttempt    time.Time            `json:"next_attempt,omitzero"`
	SentAt         time.Time            `json:"sent_at,omitzero"`
	SoftBounces    int                  `json:"soft_bounces,omitempty"`
	Events         map[string]time.Time `json:"events,omitempty"` // the latest time of each email_* event
}

// ProfileID is the recipient's profile.
func (r *Record) ProfileID() string { return model.UserProfileID(r.To) }

// Recorder appends facts to the event log (track.Tracker).
type Recorder interface {
	Record(ctx context.Context, evs []*model.Event, also func(tx *store.Tx) error) error
}

// Subscriptions tells and changes whether a user wants marketing email.
type Subscriptions interface {
	Subscribed(email string) (bool, error)
	Unsubscribe(ctx context.Context, email, source string) error
}

// Options configure New.
type Options struct {
	Store         *store.Store
	Recorder      Recorder
	Subscriptions Subscriptions
	Config        config.Email
	// PublicURL is [http] public_url or the public listener's address,
	// used when [email] public_url is empty.
	PublicURL string
	// ShopHosts returns the shop's own host names: links to them get UTM
	// tags and the identifying token. nil: every link.
	ShopHosts func() []string
	// KeyFile holds the key that encrypts the secrets of Settings → Email
	// and signs tokens; made on first use.
	KeyFile string
	// HTTPClient fetches SNS certificates and confirms subscriptions
	// (nil: a client with a 10 s timeout). Tests pass one that reaches
	// their TLS server under the SNS host name; the host pinning applies
	// whatever the client.
	HTTPClient *http.Client
	// SESHTTPClient talks to SES (nil: the SDK's).
	SESHTTPClient *http.Client
	// CanWrite says whether the data directory takes writes now (the disk
	// guard); while it does not, workers claim nothing. nil: always.
	CanWrite func() error
	Logger   *slog.Logger
	Now      func() time.Time
}

// Mailer is the email component.
type Mailer struct {
	st       *store.Store
	rec      Recorder
	subs     Subscriptions
	cfg      config.Email
	log      *slog.Logger
	now      func() time.Time
	keys     keys
	hosts    func() []string
	canWrite func() error

	settings *liveSettings
	sns      *Verifier

	q *queue
}

// New opens the mail component. It sends nothing before Run.
func New(o Options) (*Mailer, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	k, err := loadKeys(o.KeyFile)
	if err != nil {
		return nil, err
	}
	m := &Mailer{st: o.Store, rec: o.Recorder, subs: o.Subscriptions, cfg: o.Config, log: o.Logger, now: o.Now, keys: k, hosts: o.ShopHosts, canWrite: o.CanWrite}
	if m.settings, err = loadSettings(o.Store, k, o.Config, o.PublicURL); err != nil {
		return nil, err
	}
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	m.sns = &Verifier{Topics: o.Config.SNS.TopicARNs, AllowV1: o.Config.SNS.SignatureV1, Client: client, Now: o.Now}
	m.q = newQueue(m, o.SESHTTPClient)
	return m, nil
}

// Send validates msg and queues it, or returns the message already queued
// under its idempotency key (created false). A marketing message to an
// address that is not subscribed, and any message to a suppressed address,
// is recorded as suppressed and not sent.
func (m *Mailer) Send(ctx context.Context, msg Message) (rec Record, created bool, err error) {
	recs, created2, err := m.SendBatch(ctx, []Message{msg})
	if err != nil {
		return Record{}, false, err
	}
	return recs[0], created2[0], nil
}

// SendBatch queues many messages in few transactions (a campaign's
// recipients). It validates them all first: one invalid message queues
// none, and the error's Field is "messages[i].field".
func (m *Mailer) SendBatch(ctx context.Context, msgs []Message) ([]Record, []bool, error) {
	if m.settings.Get().From == "" {
		return nil, nil, ErrNotConfigured
	}
	for i := range msgs {
		if err := normalise(&msgs[i]); err != nil {
			if len(msgs) > 1 {
				err.Field = fmt.Sprintf("messages[%d].%s", i, err.Field)
			}
			return nil, nil, err
		}
	}
	recs := make([]Record, len(msgs))
	created := make([]bool, len(msgs))
	// one transaction per 200 messages or 1 MiB of bodies (Badger's
	// limit on a transaction is about 2.4 MB); a crash between two leaves
	// the first queued, and sending the batch again queues the rest (the
	// idempotency keys skip what is queued)
	const perTx, bytesPerTx = 200, 1 << 20
	for start := 0; start < len(msgs); {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		end, size := start, 0
		for end < len(msgs) && end-start < perTx && (end == start || size+len(msgs[end].HTML)+len(msgs[end].Text) <= bytesPerTx) {
			size += len(msgs[end].HTML) + len(msgs[end].Text)
			end++
		}
		if err := m.q.enqueue(msgs[start:end], recs[start:end], created[start:end]); err != nil {
			return nil, nil, err
		}
		start = end
	}
	m.q.wake()
	return recs, created, nil
}

func normalise(msg *Message) *FieldError {
	to, err := track.NormaliseEmail(msg.To)
	if err != nil {
		return &FieldError{Field: "to", Message: err.Error()}
	}
	if local := to[:strings.LastIndexByte(to, '@')]; !isASCII(local) {
		return &FieldError{Field: "to", Message: "an address with non-ASCII characters before the @ cannot be sent to (SES has no SMTPUTF8)"}
	}
	msg.To = to
	msg.Subject = strings.TrimSpace(msg.Subject)
	switch {
	case msg.Subject == "":
		return &FieldError{Field: "subject", Message: "is required"}
	case len(msg.Subject) > MaxSubject || !utf8.ValidString(msg.Subject) || strings.ContainsAny(msg.Subject, "\r\n\x00"):
		return &FieldError{Field: "subject", Message: fmt.Sprintf("must be one line of valid UTF-8, at most %d bytes", MaxSubject)}
	case msg.HTML == "" && msg.Text == "":
		return &FieldError{Field: "html", Message: "html or text is required"}
	case len(msg.HTML) > MaxBody || !utf8.ValidString(msg.HTML):
		return &FieldError{Field: "html", Message: fmt.Sprintf("must be valid UTF-8, at most %d bytes", MaxBody)}
	case len(msg.Text) > MaxBody || !utf8.ValidString(msg.Text):
		return &FieldError{Field: "text", Message: fmt.Sprintf("must be valid UTF-8, at most %d bytes", MaxBody)}
	}
	for field, v := range map[string]string{"campaign": msg.Campaign, "automation": msg.Automation} {
		if len(v) > MaxTag || !printable(v) {
			return &FieldError{Field: field, Message: fmt.Sprintf("must be printable text of at most %d bytes", MaxTag)}
		}
	}
	if msg.IdempotencyKey == "" {
		switch {
		case msg.Campaign != "":
			msg.IdempotencyKey = "campaign/" + msg.Campaign + "/" + msg.To
		case msg.Automation != "":
			msg.IdempotencyKey = "automation/" + msg.Automation + "/" + msg.To
		}
	}
	if len(msg.IdempotencyKey) > MaxKey+MaxTag+300 || !printable(msg.IdempotencyKey) {
		return &FieldError{Field: "idempotency_key", Message: fmt.Sprintf("must be printable text of at most %d bytes", MaxKey)}
	}
	return nil
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// newID returns a message id that sorts by creation time.
func newID(now time.Time) string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%016x", uint64(now.UnixNano())) + hex.EncodeToString(b[:])
}

// validID reports whether s has the shape of a message id.
func validID(s string) bool {
	if len(s) != 24 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Get returns a message.
func (m *Mailer) Get(id string) (Record, error) {
	var r Record
	if !validID(id) {
		return r, ErrNotFound
	}
	err := m.st.Read(func(tx *store.Tx) error { return tx.Get(store.SpaceMail, "msg/"+id, &r) })
	if errors.Is(err, store.ErrNotFound) {
		err = ErrNotFound
	}
	return r, err
}

// List returns up to limit messages, newest first, in a state ("" : any),
// starting after the message id after ("" : the newest).
func (m *Mailer) List(state, after string, limit int) ([]Record, error) {
	var out []Record
	start := ""
	if after != "" {
		start = "msg/" + after
	}
	err := m.st.Read(func(tx *store.Tx) error {
		return tx.ScanFrom(store.SpaceMail, "msg/", start, true, true, func(k string, v json.RawMessage) (bool, error) {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return false, err
			}
			if state == "" || r.State == state {
				r.HTML, r.Text = "", ""
				out = append(out, r)
			}
			return len(out) < limit, nil
		})
	})
	return out, err
}

// Counts returns how many messages are in each state.
func (m *Mailer) Counts() (map[string]int64, error) {
	out := map[string]int64{}
	err := m.st.Read(func(tx *store.Tx) error {
		for _, s := range States {
			var n int64
			if err := tx.Get(store.SpaceMail, "count/"+s, &n); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			out[s] = n
		}
		return nil
	})
	return out, err
}

// Run sends until ctx ends: it first marks the messages a crash left in
// sending as uncertain, then starts the workers. It returns once they have
// stopped (each finishes the message it holds).
func (m *Mailer) Run(ctx context.Context) { m.q.run(ctx) }

// Recover marks messages left in sending by a crash as uncertain; Run does
// it first. It returns how many.
func (m *Mailer) Recover() (int, error) { return m.q.recoverInflight() }

// Status is what the admin UI shows about sending.
type Status struct {
	Provider    string   // "ses", "smtp", "ses+smtp" or "" (none configured)
	Paused      string   // why the queue is stopped ("" : it runs)
	Rate        float64  // messages per second now (0: unpaced)
	Account     *Account // SES's account, when SES is configured and answered
	AccountErr  string
	Counts      map[string]int64
	SMTPProblem string
}

// Status reports the queue's state.
func (m *Mailer) Status() Status { return m.q.status() }

// Resume restarts a queue stopped by SendingPausedException or
// AccountSuspendedException.
func (m *Mailer) Resume() error { return m.q.resume() }

// Retry queues again a message that failed or is uncertain (the admin
// decided it was not sent).
func (m *Mailer) Retry(id string) (Record, error) { return m.q.retry(id) }

// Sendable tells whether a marketing message may go to email now: the
// address is subscribed and not suppressed. Campaigns use it to build their
// recipient list.
func (m *Mailer) Sendable(email string) (bool, string, error) {
	if s, err := m.Suppression(email); err == nil {
		return false, "suppressed: " + s.Reason, nil
	} else if !errors.Is(err, ErrNotSuppressed) {
		return false, "", err
	}
	ok, err := m.subs.Subscribed(email)
	if err != nil || !ok {
		return false, "not subscribed", err
	}
	return true, "", nil
}
