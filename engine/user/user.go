// Package user is the Users API's domain: it creates, updates, imports and
// erases users. A user's attributes (model.User) change together with an
// event in the log that records the change (user_update, and subscribe or
// unsubscribe when isSubscribed changes), in one transaction, so that
// segments and automations see every change and nothing is half-written.
package user

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Update is the type of the event that records a change of attributes
// through the API: props.changed holds the new values (null: removed).
const Update = "user_update"

// Errors.
var (
	ErrNotFound = errors.New("user: no such user")
)

// FieldError names the field at fault.
type FieldError = model.FieldError

// Recorder appends facts to the log (track.Tracker).
type Recorder interface {
	Record(ctx context.Context, evs []*model.Event, also func(tx *store.Tx) error) error
}

// Eraser erases a profile from every projection and the log
// (project.Runner).
type Eraser interface {
	Erase(ctx context.Context, profileID string, also func(tx *store.Tx) error) (int, error)
}

// Service creates, changes and erases users.
type Service struct {
	st    *store.Store
	rec   Recorder
	erase Eraser
	now   func() time.Time
	parts []ExportPart // sections of Export, in order
}

// New returns a Service.
func New(st *store.Store, rec Recorder, erase Eraser, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, rec: rec, erase: erase, now: now}
}

// Get returns the stored attributes and the tracked profile of a user;
// ErrNotFound when there is neither.
func (s *Service) Get(email string) (model.User, model.Profile, error) {
	u, p, found, err := s.lookup(email)
	if err == nil && !found {
		err = ErrNotFound
	}
	return u, p, err
}

func (s *Service) lookup(email string) (u model.User, p model.Profile, found bool, err error) {
	u, err = s.st.User(email)
	hasAttrs := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return u, p, false, err
	}
	err = s.st.Read(func(tx *store.Tx) error {
		var e error
		p, e = tx.Profile(model.UserProfileID(email))
		return e
	})
	hasProfile := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return u, p, false, err
	}
	if !hasAttrs {
		u = model.User{Email: email, CreatedAt: p.FirstSeen, UpdatedAt: p.LastSeen}
	}
	return u, p, hasAttrs || hasProfile, nil
}

// ConfirmsOrders reports whether the shop confirms orders through the API:
// then a user's orders and revenue count only confirmed orders
// (model.OrderSums.Counted).
func (s *Service) ConfirmsOrders() (bool, error) {
	n, err := s.st.ConfirmedOrders(store.IdentityOrders)
	return n > 0, err
}

// Visits returns a user's sessions and touchpoints, oldest first.
func (s *Service) Visits(email string) (sessions []model.Session, touchpoints []model.Touchpoint, err error) {
	err = s.st.Read(func(tx *store.Tx) error {
		id := model.UserProfileID(email)
		if sessions, err = tx.Sessions(id); err != nil {
			return err
		}
		touchpoints, err = tx.Touchpoints(id)
		return err
	})
	return sessions, touchpoints, err
}

// Mode says how Save treats fields the patch does not name and users that
// do not exist.
type Mode int

// Modes of Save.
const (
	Upsert  Mode = iota // POST: create, or change the given fields
	Replace             // PUT: create, or clear every field the patch does not name
	Change              // PATCH: change the given fields of an existing user
)

// Save applies a patch to the user with email (normalised by the caller)
// and reports whether it created the user. Concurrent saves of one user are
// serialised, so none loses another's change.
func (s *Service) Save(ctx context.Context, email string, patch model.UserPatch, mode Mode) (u model.User, p model.Profile, created bool, err error) {
	defer s.st.Lock("user", email)()
	u, p, found, err := s.lookup(email)
	if err != nil {
		return u, p, false, err
	}
	if !found && mode == Change {
		return u, p, false, ErrNotFound
	}
	before := u
	before.Custom = maps.Clone(u.Custom)
	now := s.now().UTC()
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now
	}
	if _, err := u.Apply(patch, mode == Replace); err != nil {
		return before, p, false, err
	}
	u.Email, u.UpdatedAt = email, now
	evs := changeEvents(before, u, found)
	err = s.rec.Record(ctx, evs, func(tx *store.Tx) error { return tx.PutUser(u) })
	return u, p, !found, err
}

// changeEvents are the events that record a change of attributes: none
// when nothing changed, user_update with the changed fields, and subscribe
// or unsubscribe when isSubscribed changed.
func changeEvents(before, after model.User, existed bool) []*model.Event {
	old, nu := before.Flat(), after.Flat()
	if !existed {
		old = map[string]any{"email": after.Email}
	}
	changed := map[string]any{}
	for k, v := range nu {
		if ov, ok := old[k]; !ok || !reflect.DeepEqual(ov, v) {
			changed[k] = v
		}
	}
	for k := range old {
		if _, ok := nu[k]; !ok {
			changed[k] = nil
		}
	}
	delete(changed, "email")
	if len(changed) == 0 {
		return nil
	}
	source := json.RawMessage(`"api"`)
	b, _ := json.Marshal(changed)
	evs := []*model.Event{{Type: Update, Email: after.Email,
		Props: map[string]json.RawMessage{"changed": b, "source": source}}}
	was, is := before.IsSubscribed != nil && *before.IsSubscribed, after.IsSubscribed != nil && *after.IsSubscribed
	if was != is && after.IsSubscribed != nil {
		typ := model.Unsubscribe
		if is {
			typ = model.Subscribe
		}
		evs = append(evs, &model.Event{Type: typ, Email: after.Email, Props: map[string]json.RawMessage{"source": source}})
	}
	return evs
}

// Erase deletes a user and everything tracked about them: attributes,
// profile, events, sessions, touchpoints and identity links. It returns how
// many events it deleted.
func (s *Service) Erase(ctx context.Context, email string) (int, error) {
	defer s.st.Lock("user", email)()
	if _, _, found, err := s.lookup(email); err != nil {
		return 0, err
	} else if !found {
		return 0, ErrNotFound
	}
	return s.erase.Erase(ctx, model.UserProfileID(email), func(tx *store.Tx) error { return tx.DeleteUser(email) })
}

// saveMany applies rows to their users with one read of the existing ones
// and one transaction, holding the lock of every email meanwhile. A row
// whose patch is invalid is reported by fail and changes nothing.
func (s *Service) saveMany(ctx context.Context, rows []row, rep *ImportReport, fail func(line int, field, msg string)) error {
	emails := make([]string, len(rows))
	for i, r := range rows {
		emails[i] = r.email
	}
	defer s.st.Lock("user", emails...)()
	existing, err := s.st.Users(emails)
	if err != nil {
		return err
	}
	// users known only from tracking exist too (found)
	if err := s.st.Read(func(tx *store.Tx) error {
		for _, e := range emails {
			if _, ok := existing[e]; ok {
				continue
			}
			p, err := tx.Profile(model.UserProfileID(e))
			if err == nil {
				existing[e] = model.User{Email: e, CreatedAt: p.FirstSeen, UpdatedAt: p.LastSeen}
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	now := s.now().UTC()
	type change struct {
		before, after model.User
		existed       bool
	}
	changes := map[string]*change{}
	var order []string
	for _, r := range rows {
		c, seen := changes[r.email]
		if !seen {
			base, had := existing[r.email]
			if !had {
				base = model.User{Email: r.email, CreatedAt: now}
			}
			base.Custom = maps.Clone(base.Custom)
			c = &change{before: base, after: base, existed: had}
			c.after.Custom = maps.Clone(base.Custom)
		}
		trial := c.after
		trial.Custom = maps.Clone(c.after.Custom)
		if _, err := trial.Apply(r.patch, false); err != nil {
			var fe *model.FieldError
			if errors.As(err, &fe) {
				fail(r.line, fe.Field, fe.Message)
				continue
			}
			return err
		}
		trial.UpdatedAt = now
		c.after = trial
		if !seen {
			changes[r.email] = c
			order = append(order, r.email)
		}
	}
	var evs []*model.Event
	users := make([]model.User, 0, len(order))
	for _, e := range order {
		c := changes[e]
		if c.existed {
			rep.Updated++
		} else {
			rep.Created++
		}
		evs = append(evs, changeEvents(c.before, c.after, c.existed)...)
		users = append(users, c.after)
	}
	if len(users) == 0 {
		return nil
	}
	return s.rec.Record(ctx, evs, func(tx *store.Tx) error {
		for _, u := range users {
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		return nil
	})
}

// sortErrors orders an import report's errors by line.
func sortErrors(errs []ImportError) {
	slices.SortStableFunc(errs, func(a, b ImportError) int { return a.Line - b.Line })
}
