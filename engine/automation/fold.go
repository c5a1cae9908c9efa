package automation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shoptrail/shoptrail/engine/mail"
	"github.com/shoptrail/shoptrail/engine/mailcampaign"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/segment"
	"github.com/shoptrail/shoptrail/engine/store"
)

// projSpace keeps what the triggers count (product views per person).
var projSpace = store.ProjectionSpace("automations")

// stale is how long past its due time a trigger still counts: folding old
// history again (a rebuild, a new installation's backfill) must not mail
// people about what they did long ago.
const stale = time.Hour

// Projection folds the triggers: it sets, moves and cancels the timers.
// Version 2: product views keep their last time, and each product has an
// index of its recent viewers (back_in_stock, price_drop).
func (s *Service) Projection() *project.Projection {
	return &project.Projection{
		Name:    "automations",
		Version: 2,
		Owns:    []store.Space{projSpace},
		Fold:    s.fold,
		Move:    s.move,
		Erase:   s.erase,
	}
}

func propString(ev *model.Event, k string) string {
	var v string
	if raw, ok := ev.Props[k]; ok {
		json.Unmarshal(raw, &v)
	}
	return v
}

func (s *Service) fold(r *project.Run) error {
	now := s.now()
	set := false
	for _, e := range r.Events {
		ev := e.Event
		if ev.Bot {
			continue
		}
		switch ev.Type {
		case model.ProductBackInStock, model.ProductPriceDrop:
			// a feed import's fact; only Shoptrail records them (a browser
			// or an API client must not make the shop mail its viewers)
			if ev.Via == model.ViaServer {
				n, err := s.productChanged(r.Tx, ev, now)
				if err != nil {
					return err
				}
				set = set || n > 0
			}
			continue
		case model.ProductView:
			if e.ProfileID == "" {
				continue
			}
			// anonymous views count too: they follow the profile when
			// the shopper is identified (move)
			if err := s.viewed(r.Tx, e.ProfileID, ev, now, &set); err != nil {
				return err
			}
			continue
		}
		email := model.ProfileEmail(e.ProfileID)
		if email == "" {
			continue // anonymous: no address to write to
		}
		start := func(name string, products []string) error {
			ok, err := s.start(r.Tx, name, e.ProfileID, ev, products, now)
			set = set || ok
			return err
		}
		var err error
		switch ev.Type {
		case model.Subscribe:
			err = start(Welcome, nil)
		case model.AddToCart:
			if err = cancel(r.Tx, BrowseAbandonment, e.ProfileID); err == nil {
				err = start(AbandonedCart, ev.ProductIDs())
			}
		case model.Order:
			// the exit condition of both
			if err = cancel(r.Tx, AbandonedCart, e.ProfileID); err == nil {
				err = cancel(r.Tx, BrowseAbandonment, e.ProfileID)
			}
		case segment.Entered:
			if a, _ := s.get(SegmentEntered); a.Segment != "" && propString(ev, "segment_id") == a.Segment {
				err = start(SegmentEntered, nil)
			}
		}
		if err != nil {
			return err
		}
	}
	if set {
		r.AfterCommit(s.poke)
	}
	return nil
}

// start sets the timer of the automation name for a profile, if the
// automation is on and the event is not history (stale).
func (s *Service) start(tx *store.Tx, name, profile string, ev *model.Event, products []string, now time.Time) (bool, error) {
	a, _ := s.get(name)
	email := model.ProfileEmail(profile)
	if !a.Enabled || email == "" {
		return false, nil
	}
	due := ev.Time.Add(a.Delay.Duration)
	if due.Add(stale).Before(now) {
		return false, nil
	}
	return true, schedule(tx, name, profile, due, timer{Name: name, Email: email, Products: products, Trigger: ev.Time})
}

// move gives profile to the timers and counts of profile from.
func (s *Service) move(tx *store.Tx, from, to string) error {
	for _, name := range Names {
		var k string
		if err := tx.Get(sp, pendingKey(name, from), &k); errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		var t timer
		if err := tx.Get(sp, k, &t); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		dk, err := parseDueKey(k)
		if err != nil {
			return err
		}
		if err := cancel(tx, name, from); err != nil {
			return err
		}
		if t.Email = model.ProfileEmail(to); t.Email == "" {
			continue
		}
		if err := schedule(tx, name, to, dk.at, t); err != nil {
			return err
		}
	}
	if err := moveChanges(tx, from, to); err != nil {
		return err
	}
	return moveViews(tx, from, to, s.now())
}

// erase forgets a profile: its timers, views and cooldowns.
func (s *Service) erase(tx *store.Tx, profile string) error {
	for _, name := range Names {
		if err := cancel(tx, name, profile); err != nil {
			return err
		}
	}
	if email := model.ProfileEmail(profile); email != "" {
		if err := forgetCooldowns(tx, email); err != nil {
			return err
		}
	}
	if err := moveChanges(tx, profile, ""); err != nil { // to nobody: deleted
		return err
	}
	return eraseViews(tx, profile)
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Wake makes Run look at the timers now (a fake clock was moved).
func (s *Service) Wake() { s.poke() }

// Flush waits until Run has sent every message due at the clock's time
// when Flush was called (tests move a fake clock, then Flush). Run must be
// running; Flush returns ctx's error if it ends first.
func (s *Service) Flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case s.flush <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run sends the messages whose timers are due, until ctx ends. It looks at
// the timers when one is set (the projection wakes it), when the next is
// due, and at least every second: the clock may be a fake one that jumps.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	var flushed []chan struct{}
	for {
		next, err := s.RunDue(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("sending automation messages failed; retrying", "err", err)
			next = s.now().Add(5 * time.Second)
		}
		for _, done := range flushed {
			close(done)
		}
		flushed = flushed[:0]
		wait := time.Second
		if !next.IsZero() {
			wait = min(max(next.Sub(s.now()), 0), time.Second)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case done := <-s.flush:
			flushed = append(flushed, done)
		case <-t.C:
		}
	}
}

// RunDue sends every due message and returns when the next timer is due
// (zero: none).
func (s *Service) RunDue(ctx context.Context) (time.Time, error) {
	for {
		now := s.now()
		var keys []string
		var timers []timer
		var next time.Time
		err := s.st.Read(func(tx *store.Tx) error {
			return tx.ScanFrom(sp, "due/", "", false, true, func(k string, v json.RawMessage) (bool, error) {
				dk, err := parseDueKey(k)
				if err != nil {
					return false, err
				}
				if dk.at.After(now) {
					next = dk.at
					return false, nil
				}
				var t timer
				if err := json.Unmarshal(v, &t); err != nil {
					return false, err
				}
				keys, timers = append(keys, k), append(timers, t)
				return len(keys) < 100, nil
			})
		})
		if err != nil || len(keys) == 0 {
			return next, err
		}
		for i, k := range keys {
			if err := ctx.Err(); err != nil {
				return time.Time{}, err
			}
			if err := s.fire(ctx, k, timers[i]); err != nil {
				return time.Time{}, err
			}
		}
	}
}

// fire sends one due message (or drops it: disabled, in its cooldown,
// unsubscribed, over the daily cap) and deletes its timer. The message's
// idempotency key is the timer's: a crash after Send and before the
// timer is deleted sends nothing twice.
func (s *Service) fire(ctx context.Context, k string, t timer) error {
	dk, err := parseDueKey(k)
	if err != nil {
		return err
	}
	a, ok := s.get(t.Name)
	outcome, sent := "", false
	lastKey := "last/" + t.Name + "/" + t.Email
	var last time.Time
	if err := s.st.Read(func(tx *store.Tx) error { return tx.Get(sp, lastKey, &last) }); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	perProduct := t.Name == BackInStock || t.Name == PriceDrop
	var changes []change
	var chgKeys []string   // the waiting changes read: deleted when done
	var laterKeys []string // those that did not fit in the message
	if perProduct {
		var waiting []change
		if err := s.st.Read(func(tx *store.Tx) error {
			var err error
			chgKeys, waiting, err = waitingChanges(tx, t.Name, dk.prof)
			return err
		}); err != nil {
			return err
		}
		// the cooldown is the person's and the product's, and each
		// product is checked again (changes.go)
		var why string
		var later []int
		if changes, later, why, err = s.stillTrue(a, t, waiting); err != nil {
			return err
		} else if len(changes) == 0 && outcome == "" {
			outcome = why
		}
		// those that did not fit wait for a message of their own
		for i := len(later) - 1; i >= 0; i-- {
			laterKeys = append(laterKeys, chgKeys[later[i]])
			chgKeys = slices.Delete(chgKeys, later[i], later[i]+1)
		}
	}
	switch {
	case !ok || !a.Enabled:
		outcome = "disabled"
	case perProduct:
		// no cooldown per person alone: it is per product (above)
	case !last.IsZero() && s.now().Sub(last) < a.Cooldown.Duration:
		outcome = "cooldown"
	}
	if outcome == "" {
		if ok, why, err := s.o.Mailer.Sendable(t.Email); err != nil {
			return err
		} else if !ok {
			outcome = why
		}
	}
	if outcome == "" && s.o.Cap != nil {
		if ok, err := s.o.Cap.TakeCap(t.Email); err != nil {
			return err
		} else if !ok {
			outcome = "capped"
		}
	}
	if outcome == "" {
		msg, err := s.render(a, t, changes)
		if err != nil {
			outcome = "template: " + err.Error()
		} else {
			msg.IdempotencyKey = fmt.Sprintf("automation/%s/%s/%x", t.Name, t.Email, dk.at.UnixNano())
			_, _, err := s.o.Mailer.Send(ctx, msg)
			var fe *model.FieldError
			switch {
			case errors.As(err, &fe):
				outcome = "refused: " + fe.Error()
			case err != nil:
				return err
			default:
				sent = true
			}
		}
	}
	if !sent {
		s.log.Info("automation message not sent", "automation", t.Name, "reason", outcome)
	}
	return s.st.Write(func(tx *store.Tx) error {
		// the pending/ key stays: the projection writes it (in its own
		// transaction), and one left pointing at a fired timer is harmless
		if err := tx.Delete(sp, k); err != nil {
			return err
		}
		for _, ck := range chgKeys {
			if err := tx.Delete(sp, ck); err != nil {
				return err
			}
		}
		switch {
		case sent && len(laterKeys) > 0:
			// the next message, at once
			if err := schedule(tx, t.Name, dk.prof, s.now().UTC(), timer{Name: t.Name, Email: t.Email, Trigger: t.Trigger}); err != nil {
				return err
			}
		case !sent:
			for _, ck := range laterKeys {
				if err := tx.Delete(sp, ck); err != nil {
					return err
				}
			}
		}
		if !sent {
			return nil
		}
		for _, c := range changes {
			if err := tx.Set(sp, productCooldownKey(t.Name, t.Email, c.family()), s.now().UTC()); err != nil {
				return err
			}
		}
		return tx.Set(sp, lastKey, s.now().UTC())
	})
}

func (s *Service) render(a Automation, t timer, changes []change) (mail.Message, error) {
	tmpl, err := mailcampaign.ParseTemplate(a.HTML, a.Text)
	if err != nil {
		return mail.Message{}, err
	}
	d, err := mailcampaign.LoadData(s.st, t.Email)
	if err != nil {
		return mail.Message{}, err
	}
	switch t.Name {
	case AbandonedCart:
		if len(d.CartItems) == 0 {
			d.CartItems = t.Products
		}
	case BrowseAbandonment:
		if len(t.Products) > 0 {
			d.LastViewed = t.Products[0]
		}
	}
	products := s.o.Products
	if len(changes) > 0 {
		old := map[string]int64{}
		for _, c := range changes {
			d.Products = append(d.Products, c.Product)
			old[c.Product] = c.Old
		}
		if products != nil {
			products = oldPrices{Products: products, old: old}
		}
	}
	h, text, err := tmpl.Render(products, d)
	if err != nil {
		return mail.Message{}, err
	}
	return mail.Message{To: t.Email, Subject: a.Subject, HTML: h, Text: text, Automation: a.Name}, nil
}
