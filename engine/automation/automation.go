// Package automation sends the shop's automatic email: a trigger (an event
// the projection folds), a delay kept as a durable timer in Badger, a
// message from a template, at most once per person per cooldown, stopped
// by its exit condition. Triggers: welcome (subscribe), abandoned_cart
// (add_to_cart, exits on an order), browse_abandonment (a product viewed
// twice, exits on add_to_cart or an order), back_in_stock and price_drop
// (a feed import's product_back_in_stock and product_price_drop facts, for
// the people who viewed the product in the last 30 days; see catalog.go)
// and segment_entered (a segment's segment_entered event).
//
// Time comes from Options.Now: tests drive the delays, windows and
// cooldowns with a fake clock (Flush sends what is due at its time).
package automation

import (
	"context"
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
	"github.com/shoptrail/shoptrail/engine/mailcampaign"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/segment"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Names of the automations.
const (
	Welcome           = "welcome"
	AbandonedCart     = "abandoned_cart"
	BrowseAbandonment = "browse_abandonment"
	SegmentEntered    = "segment_entered"
	BackInStock       = "back_in_stock"
	PriceDrop         = "price_drop"
)

// Names lists every automation, in the order the API and the UI show them.
var Names = []string{Welcome, AbandonedCart, BrowseAbandonment, BackInStock, PriceDrop, SegmentEntered}

// ErrNotFound means there is no automation of that name.
var ErrNotFound = errors.New("automation: no such automation")

// Automation is one automation's settings.
type Automation struct {
	Name     string    `json:"name"`
	Enabled  bool      `json:"enabled"`
	Delay    Duration  `json:"delay"`
	Cooldown Duration  `json:"cooldown"`
	Subject  string    `json:"subject"`
	HTML     string    `json:"html"`
	Text     string    `json:"text,omitempty"`
	Segment  string    `json:"segment,omitempty"` // segment_entered: the segment
	Updated  time.Time `json:"updated_at,omitzero"`
}

// defaults are the settings of an automation never saved.
func defaults(name string) Automation {
	a := Automation{Name: name, Cooldown: Duration{Duration: 7 * 24 * time.Hour}}
	switch name {
	case AbandonedCart:
		a.Delay.Duration = 4 * time.Hour
	case BrowseAbandonment:
		a.Delay.Duration = 24 * time.Hour
	}
	return a
}

// View is an automation with its report.
type View struct {
	Automation
	Stats   mailcampaign.Stats `json:"stats"`
	Pending int64              `json:"pending"` // timers waiting
}

// Mailer is what automations need of engine/mail.
type Mailer interface {
	Send(ctx context.Context, msg mail.Message) (mail.Record, bool, error)
	Sendable(email string) (bool, string, error)
}

// Segments checks a segment_entered automation's segment.
type Segments interface {
	Get(id string) (segment.View, error)
}

// Capper counts a person's marketing mail per day (mailcampaign.Service).
type Capper interface {
	TakeCap(email string) (bool, error)
}

// Options configure New.
type Options struct {
	Store    *store.Store
	Mailer   Mailer
	Segments Segments
	Products mailcampaign.Products
	Cap      Capper // nil: no cap
	// Now is the clock of the delays, the 30-day window of viewers and the
	// cooldowns: time.Now, or a fake one in tests.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service keeps the automations, folds their triggers (Projection) and
// sends their messages when their timers are due (Run).
type Service struct {
	o    Options
	st   *store.Store
	now  func() time.Time
	log  *slog.Logger
	mu   sync.Mutex
	defs map[string]Automation // guarded by mu
	wake chan struct{}
	// flush asks Run for a pass over the due timers; Run closes the
	// channel it was given when the pass is done
	flush chan chan struct{}
}

// sp is the automations' space: settings, timers, cooldowns.
var sp = store.SpaceAutomations

// New loads the automations.
func New(o Options) (*Service, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{o: o, st: o.Store, now: o.Now, log: o.Logger, defs: map[string]Automation{}, wake: make(chan struct{}, 1), flush: make(chan chan struct{})}
	for _, n := range Names {
		s.defs[n] = defaults(n)
	}
	err := s.st.Read(func(tx *store.Tx) error {
		return tx.Scan(sp, "def/", func(k string, v json.RawMessage) (bool, error) {
			var a Automation
			if err := json.Unmarshal(v, &a); err != nil {
				return false, fmt.Errorf("automation: stored %s: %w", k, err)
			}
			if slices.Contains(Names, a.Name) {
				s.defs[a.Name] = a
			}
			return true, nil
		})
	})
	return s, err
}

func (s *Service) get(name string) (Automation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.defs[name]
	return a, ok
}

// Input is what PUT /api/v1/automations/{name} sends.
type Input struct {
	Enabled  *bool   `json:"enabled"`
	Delay    *string `json:"delay"`
	Cooldown *string `json:"cooldown"`
	Subject  *string `json:"subject"`
	HTML     *string `json:"html"`
	Text     *string `json:"text"`
	Segment  *string `json:"segment"`
}

// Save changes an automation: the fields sent, the others kept.
func (s *Service) Save(name string, in Input) (Automation, error) {
	if !slices.Contains(Names, name) {
		return Automation{}, ErrNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.defs[name]
	if in.Enabled != nil {
		a.Enabled = *in.Enabled
	}
	for field, p := range map[string]struct {
		src *string
		dst *Duration
	}{"delay": {in.Delay, &a.Delay}, "cooldown": {in.Cooldown, &a.Cooldown}} {
		if p.src == nil {
			continue
		}
		d, err := time.ParseDuration(*p.src)
		if err != nil || d < 0 || d > 365*24*time.Hour {
			return Automation{}, &model.FieldError{Field: field, Message: "must be a Go duration from 0s to 8760h, e.g. \"4h\" or \"90s\""}
		}
		p.dst.Duration = d
	}
	if in.Subject != nil {
		a.Subject = strings.TrimSpace(*in.Subject)
	}
	if in.HTML != nil {
		a.HTML = *in.HTML
	}
	if in.Text != nil {
		a.Text = *in.Text
	}
	if in.Segment != nil {
		a.Segment = *in.Segment
	}
	switch {
	case len(a.Subject) > mail.MaxSubject || !utf8.ValidString(a.Subject) || strings.ContainsAny(a.Subject, "\r\n\x00"):
		return Automation{}, &model.FieldError{Field: "subject", Message: fmt.Sprintf("must be one line of at most %d bytes", mail.MaxSubject)}
	case len(a.HTML) > mail.MaxBody || !utf8.ValidString(a.HTML):
		return Automation{}, &model.FieldError{Field: "html", Message: fmt.Sprintf("must be valid UTF-8 of at most %d bytes", mail.MaxBody)}
	case len(a.Text) > mail.MaxBody || !utf8.ValidString(a.Text):
		return Automation{}, &model.FieldError{Field: "text", Message: fmt.Sprintf("must be valid UTF-8 of at most %d bytes", mail.MaxBody)}
	}
	if _, err := mailcampaign.ParseTemplate(a.HTML, a.Text); err != nil {
		return Automation{}, err
	}
	if a.Enabled {
		switch {
		case a.Subject == "":
			return Automation{}, &model.FieldError{Field: "subject", Message: "is required to enable the automation"}
		case strings.TrimSpace(a.HTML) == "":
			return Automation{}, &model.FieldError{Field: "html", Message: "is required to enable the automation"}
		}
	}
	if name == SegmentEntered && (a.Enabled || in.Segment != nil) {
		if a.Segment == "" {
			return Automation{}, &model.FieldError{Field: "segment", Message: "is required: the segment whose new members get the message"}
		}
		if _, err := s.o.Segments.Get(a.Segment); errors.Is(err, segment.ErrNotFound) {
			return Automation{}, &model.FieldError{Field: "segment", Message: "no such segment"}
		} else if err != nil {
			return Automation{}, err
		}
	} else if name != SegmentEntered && in.Segment != nil && *in.Segment != "" {
		return Automation{}, &model.FieldError{Field: "segment", Message: "only segment_entered has a segment"}
	}
	a.Updated = s.now().UTC()
	if err := s.st.Write(func(tx *store.Tx) error { return tx.Set(sp, "def/"+name, a) }); err != nil {
		return Automation{}, err
	}
	s.defs[name] = a
	return a, nil
}

// List returns every automation with its report.
func (s *Service) List() ([]View, error) {
	var out []View
	pending := map[string]int64{}
	err := s.st.Read(func(tx *store.Tx) error {
		return tx.ScanFrom(sp, "due/", "", false, false, func(k string, _ json.RawMessage) (bool, error) {
			if t, err := parseDueKey(k); err == nil {
				pending[t.name]++
			}
			return true, nil
		})
	})
	if err != nil {
		return nil, err
	}
	for _, n := range Names {
		a, _ := s.get(n)
		st, _, _, err := mailcampaign.TagReport(s.st, mailcampaign.AutomationTag(n))
		if err != nil {
			return nil, err
		}
		out = append(out, View{Automation: a, Stats: st, Pending: pending[n]})
	}
	return out, nil
}

// Get returns an automation with its report.
func (s *Service) Get(name string) (View, error) {
	list, err := s.List()
	if err != nil {
		return View{}, err
	}
	for _, v := range list {
		if v.Name == name {
			return v, nil
		}
	}
	return View{}, ErrNotFound
}

// ---- timers ----

// timer is a message due to a person.
type timer struct {
	Name     string    `json:"name"`
	Email    string    `json:"email"`
	Products []string  `json:"products,omitempty"` // the trigger's products
	Trigger  time.Time `json:"trigger"`            // the triggering event's time
}

type dueKey struct {
	at   time.Time
	name string
	prof string
}

// "due/<unix ns, 16 hex>/<name>/<profile>": scans come out by time.
func (d dueKey) String() string {
	return fmt.Sprintf("due/%016x/%s/%s", uint64(d.at.UnixNano()), d.name, d.prof)
}

func parseDueKey(k string) (dueKey, error) {
	parts := strings.SplitN(strings.TrimPrefix(k, "due/"), "/", 3)
	if len(parts) != 3 || len(parts[0]) != 16 {
		return dueKey{}, errors.New("automation: bad timer key " + k)
	}
	b, err := hex.DecodeString(parts[0])
	if err != nil {
		return dueKey{}, err
	}
	var ns uint64
	for _, c := range b {
		ns = ns<<8 | uint64(c)
	}
	return dueKey{at: time.Unix(0, int64(ns)), name: parts[1], prof: parts[2]}, nil
}

func pendingKey(name, profile string) string { return "pending/" + name + "/" + profile }

// schedule sets (or moves) the timer of name for a profile.
func schedule(tx *store.Tx, name, profile string, at time.Time, t timer) error {
	if err := cancel(tx, name, profile); err != nil {
		return err
	}
	k := dueKey{at: at, name: name, prof: profile}.String()
	if err := tx.Set(sp, k, t); err != nil {
		return err
	}
	return tx.Set(sp, pendingKey(name, profile), k)
}

// cancel drops the timer of name for a profile, if any (exit condition).
func cancel(tx *store.Tx, name, profile string) error {
	var k string
	if err := tx.Get(sp, pendingKey(name, profile), &k); errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if err := tx.Delete(sp, k); err != nil {
		return err
	}
	return tx.Delete(sp, pendingKey(name, profile))
}

// Duration is a time.Duration written as Go writes it ("4h0m0s").
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	d.Duration = v
	return err
}

// SetMailer gives the mailer (made after the projections). Call before Run.
func (s *Service) SetMailer(m Mailer) { s.o.Mailer = m }
