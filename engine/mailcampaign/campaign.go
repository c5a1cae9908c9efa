// Package mailcampaign sends email campaigns: a message composed from a
// template (the profile's attributes, blocks of the catalogue's products)
// to the members of a segment, now or at a time, through engine/mail, with
// the recipient list fixed when sending starts and a crash or a retry
// never sending anyone the campaign twice; and the campaigns' reports.
package mailcampaign

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/shoptrail/shoptrail/engine/mail"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/segment"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Statuses of a campaign.
const (
	Draft     = "draft"     // being composed
	Scheduled = "scheduled" // sends at SendAt
	Sending   = "sending"   // fixing its recipients, then queueing their messages
	Sent      = "sent"      // every recipient's message is queued
	Cancelled = "cancelled" // stopped before or while sending
)

// Limits.
const (
	MaxName      = 200
	MaxPreheader = 250
	MaxCampaigns = 10000
)

// Errors.
var (
	ErrNotFound = errors.New("mailcampaign: no such campaign")
	ErrState    = errors.New("mailcampaign: the campaign cannot change in its status")
)

// FieldError names the field at fault.
type FieldError = model.FieldError

// Campaign is an email campaign.
type Campaign struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Subject   string `json:"subject"`
	Preheader string `json:"preheader,omitempty"`
	HTML      string `json:"html"`
	Text      string `json:"text,omitempty"` // "" : made from the HTML
	// Template is the saved template the campaign uses: HTML and Text stay
	// empty until sending starts, when they become a copy of it.
	Template  string    `json:"template,omitempty"`
	Segment   string    `json:"segment"`
	Status    string    `json:"status"`
	SendAt    time.Time `json:"send_at,omitzero"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Started   time.Time `json:"started_at,omitzero"`
	Finished  time.Time `json:"finished_at,omitzero"`
	Progress  Progress  `json:"progress"`
}

// Progress is how far sending is. It is saved with each step, so a
// restart goes on from there.
type Progress struct {
	Phase      string `json:"phase,omitempty"` // "recipients", then "queue"
	Cursor     string `json:"cursor,omitempty"`
	Members    int64  `json:"members"`    // emailable members of the segment seen
	Recipients int64  `json:"recipients"` // of them subscribed and not suppressed: the list
	Queued     int64  `json:"queued"`     // messages queued
	Capped     int64  `json:"capped"`     // left out by [email] max_per_day
	Failed     int64  `json:"failed"`     // whose template failed to render
	LastError  string `json:"last_error,omitempty"`
}

// Input is what the API and the admin UI send to compose a campaign.
type Input struct {
	Name      string `json:"name"`
	Subject   string `json:"subject"`
	Preheader string `json:"preheader"`
	HTML      string `json:"html"`
	Text      string `json:"text"`
	// Template is a saved template's id, instead of HTML and Text; its
	// subject and preheader are the defaults of the campaign's.
	Template string `json:"template"`
	Segment  string `json:"segment"`
	// SendAt schedules the campaign (RFC 3339); with Send it is sent now.
	SendAt *time.Time `json:"send_at"`
	Send   bool       `json:"send"`
}

// Segments is what campaigns need of engine/segment.
type Segments interface {
	Get(id string) (segment.View, error)
	Members(id, after string, limit int, emailableOnly bool) ([]segment.Member, string, error)
}

// Mailer is what campaigns need of engine/mail.
type Mailer interface {
	SendBatch(ctx context.Context, msgs []mail.Message) ([]mail.Record, []bool, error)
	Send(ctx context.Context, msg mail.Message) (mail.Record, bool, error)
	Sendable(email string) (bool, string, error)
}

// Options configure New.
type Options struct {
	Store    *store.Store
	Mailer   Mailer
	Segments Segments
	Products Products // nil: product blocks are empty
	// MaxPerDay caps the marketing messages a person gets from campaigns
	// and automations per UTC day (0: no cap).
	MaxPerDay int
	// Chunk is how many recipients one step queues (default 500).
	Chunk int
	// Lookback is the attribution lookback ([tracking] lookback) of the
	// paths the report credits (0: attribution.MaxLookback).
	Lookback time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
}

// Service keeps campaigns and sends them.
type Service struct {
	o    Options
	st   *store.Store
	now  func() time.Time
	log  *slog.Logger
	mu   sync.Mutex // serialises changes of a campaign's record
	wake chan struct{}
}

// Space is the campaigns' key space (not a projection: a rebuild keeps it).
var Space = store.SpaceMailCampaigns

// New returns the campaigns service. It sends nothing before Run.
func New(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Chunk <= 0 {
		o.Chunk = 500
	}
	return &Service{o: o, st: o.Store, now: o.Now, log: o.Logger, wake: make(chan struct{}, 1)}
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validID(id string) bool {
	if len(id) != 16 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// validate checks the input; a saved template gives the subject and
// preheader their defaults.
func (s *Service) validate(in *Input) error {
	in.Name = strings.TrimSpace(in.Name)
	in.Subject = strings.TrimSpace(in.Subject)
	in.Preheader = strings.TrimSpace(in.Preheader)
	in.Template = strings.TrimSpace(in.Template)
	if in.Template != "" {
		if in.HTML != "" || in.Text != "" {
			return &FieldError{Field: "template", Message: "give html (and text) or a template, not both"}
		}
		t, err := s.GetTemplate(in.Template)
		if errors.Is(err, ErrTemplateNotFound) {
			return &FieldError{Field: "template", Message: "no such template"}
		} else if err != nil {
			return err
		}
		if in.Subject == "" {
			in.Subject = t.Subject
		}
		if in.Preheader == "" {
			in.Preheader = t.Preheader
		}
		// checked here for the other fields' sake; the copy is taken
		// when sending starts
		in.HTML, in.Text = t.HTML, t.Text
		defer func() { in.HTML, in.Text = "", "" }()
	}
	switch {
	case in.Name == "":
		return &FieldError{Field: "name", Message: "is required"}
	case len(in.Name) > MaxName || !oneLine(in.Name):
		return &FieldError{Field: "name", Message: fmt.Sprintf("must be one line of at most %d bytes", MaxName)}
	case in.Subject == "":
		return &FieldError{Field: "subject", Message: "is required"}
	case len(in.Subject) > mail.MaxSubject || !oneLine(in.Subject):
		return &FieldError{Field: "subject", Message: fmt.Sprintf("must be one line of at most %d bytes", mail.MaxSubject)}
	case len(in.Preheader) > MaxPreheader || !oneLine(in.Preheader):
		return &FieldError{Field: "preheader", Message: fmt.Sprintf("must be one line of at most %d bytes", MaxPreheader)}
	case strings.TrimSpace(in.HTML) == "":
		return &FieldError{Field: "html", Message: "is required (or a saved template's id in template)"}
	case len(in.HTML) > mail.MaxBody || !utf8.ValidString(in.HTML):
		return &FieldError{Field: "html", Message: fmt.Sprintf("must be valid UTF-8 of at most %d bytes", mail.MaxBody)}
	case len(in.Text) > mail.MaxBody || !utf8.ValidString(in.Text):
		return &FieldError{Field: "text", Message: fmt.Sprintf("must be valid UTF-8 of at most %d bytes", mail.MaxBody)}
	case in.Segment == "":
		return &FieldError{Field: "segment", Message: "is required: the segment whose members get the campaign"}
	}
	if _, err := CheckTemplate(in.HTML, in.Text); err != nil {
		return err
	}
	if _, err := s.o.Segments.Get(in.Segment); errors.Is(err, segment.ErrNotFound) {
		return &FieldError{Field: "segment", Message: "no such segment"}
	} else if err != nil {
		return err
	}
	if in.SendAt != nil && in.Send {
		return &FieldError{Field: "send_at", Message: "give send_at or send, not both"}
	}
	if in.SendAt != nil && in.SendAt.Before(s.now().Add(-time.Minute)) {
		return &FieldError{Field: "send_at", Message: "is in the past"}
	}
	return nil
}

func oneLine(s string) bool { return utf8.ValidString(s) && !strings.ContainsAny(s, "\r\n\x00") }

func (c *Campaign) apply(in Input, now time.Time) {
	c.Name, c.Subject, c.Preheader, c.HTML, c.Text, c.Template, c.Segment = in.Name, in.Subject, in.Preheader, in.HTML, in.Text, in.Template, in.Segment
	c.UpdatedAt = now
	c.Status, c.SendAt = Draft, time.Time{}
	switch {
	case in.Send:
		c.Status, c.SendAt = Scheduled, now
	case in.SendAt != nil:
		c.Status, c.SendAt = Scheduled, in.SendAt.UTC()
	}
}

// Create composes a campaign: a draft, or scheduled with send_at or send.
func (s *Service) Create(in Input) (Campaign, error) {
	if err := s.validate(&in); err != nil {
		return Campaign{}, err
	}
	now := s.now().UTC()
	c := Campaign{ID: newID(), CreatedAt: now}
	c.apply(in, now)
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.st.Write(func(tx *store.Tx) error {
		n := 0
		if err := tx.Scan(Space, "c/", func(string, json.RawMessage) (bool, error) { n++; return n < MaxCampaigns, nil }); err != nil {
			return err
		}
		if n >= MaxCampaigns {
			return &FieldError{Field: "name", Message: fmt.Sprintf("at most %d campaigns; delete old drafts", MaxCampaigns)}
		}
		if err := templateExists(tx, c.Template); err != nil {
			return err
		}
		return tx.Set(Space, "c/"+c.ID, c)
	})
	if err == nil {
		s.poke()
	}
	return c, err
}

// Update changes a draft or scheduled campaign.
func (s *Service) Update(id string, in Input) (Campaign, error) {
	if err := s.validate(&in); err != nil {
		return Campaign{}, err
	}
	return s.changeTx(id, func(tx *store.Tx, c *Campaign) error {
		if c.Status != Draft && c.Status != Scheduled {
			return ErrState
		}
		c.apply(in, s.now().UTC())
		return templateExists(tx, c.Template)
	})
}

// Schedule sends a draft at a time (zero: now).
func (s *Service) Schedule(id string, at time.Time) (Campaign, error) {
	now := s.now().UTC()
	if !at.IsZero() && at.Before(now.Add(-time.Minute)) {
		return Campaign{}, &FieldError{Field: "send_at", Message: "is in the past"}
	}
	if at.IsZero() {
		at = now
	}
	return s.change(id, func(c *Campaign) error {
		if c.Status != Draft && c.Status != Scheduled {
			return ErrState
		}
		c.Status, c.SendAt, c.UpdatedAt = Scheduled, at.UTC(), now
		return nil
	})
}

// Cancel stops a scheduled or sending campaign (what is queued stays queued).
func (s *Service) Cancel(id string) (Campaign, error) {
	return s.change(id, func(c *Campaign) error {
		if c.Status != Scheduled && c.Status != Sending && c.Status != Draft {
			return ErrState
		}
		c.Status, c.UpdatedAt = Cancelled, s.now().UTC()
		if c.Finished.IsZero() && !c.Started.IsZero() {
			c.Finished = c.UpdatedAt
		}
		return nil
	})
}

// Delete removes a draft or cancelled campaign that sent nothing.
func (s *Service) Delete(id string) error {
	_, err := s.change(id, func(c *Campaign) error {
		if c.Status != Draft && !(c.Status == Cancelled && c.Progress.Queued == 0) {
			return ErrState
		}
		c.Status = "" // deleted below
		return nil
	})
	return err
}

// templateExists checks, in the transaction that saves a campaign, that
// the template it names was not deleted meanwhile.
func templateExists(tx *store.Tx, id string) error {
	if id == "" {
		return nil
	}
	if ok, err := tx.Has(Space, templateKey(id)); err != nil {
		return err
	} else if !ok {
		return &FieldError{Field: "template", Message: "no such template"}
	}
	return nil
}

// change runs a read-modify-write of a campaign under the service's lock.
func (s *Service) change(id string, fn func(c *Campaign) error) (Campaign, error) {
	return s.changeTx(id, func(_ *store.Tx, c *Campaign) error { return fn(c) })
}

// changeTx is change with the transaction, for what fn reads besides.
func (s *Service) changeTx(id string, fn func(tx *store.Tx, c *Campaign) error) (Campaign, error) {
	if !validID(id) {
		return Campaign{}, ErrNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var c Campaign
	err := s.st.Write(func(tx *store.Tx) error {
		if err := tx.Get(Space, "c/"+id, &c); errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		if err := fn(tx, &c); err != nil {
			return err
		}
		if c.Status == "" {
			return tx.Delete(Space, "c/"+id)
		}
		return tx.Set(Space, "c/"+id, c)
	})
	if err == nil {
		s.poke()
	}
	return c, err
}

// Get returns a campaign.
func (s *Service) Get(id string) (Campaign, error) {
	if !validID(id) {
		return Campaign{}, ErrNotFound
	}
	var c Campaign
	err := s.st.Read(func(tx *store.Tx) error { return tx.Get(Space, "c/"+id, &c) })
	if errors.Is(err, store.ErrNotFound) {
		return c, ErrNotFound
	}
	return c, err
}

// List returns every campaign, newest first.
func (s *Service) List() ([]Campaign, error) {
	out := []Campaign{}
	err := s.st.Read(func(tx *store.Tx) error {
		return tx.Scan(Space, "c/", func(_ string, v json.RawMessage) (bool, error) {
			var c Campaign
			if err := json.Unmarshal(v, &c); err != nil {
				return false, err
			}
			c.HTML, c.Text = "", ""
			out = append(out, c)
			return true, nil
		})
	})
	slices.SortFunc(out, func(a, b Campaign) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, err
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// SetMailer gives the mailer (made after the service: the composition
// root builds the projections first). Call before Run.
func (s *Service) SetMailer(m Mailer) { s.o.Mailer = m }
