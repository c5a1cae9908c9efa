// Package identity is the first projection: it folds the event log into
// profiles (one per shopper, whatever the device), identity links
// (anonymous id → profile), sessions (the timeout rule, and server-side
// sessionising) and touchpoints (visits that started from outside), and
// indexes the events by profile and type. Every other projection folds the
// events with the profile and session it found (project.Event).
package identity

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Name is the identity projection's name.
const Name = "identity"

// version of what the projection stores: 2 added Session.FirstSeq and the
// session id in the type index; 3 counts orders once per order_id, the
// shop's confirmation superseding a browser's claim; 4 records the user
// agent on sessions. A browser that changes hands within a session opening
// a session of the new user's (sessionOf) kept 4: a new version folds every
// projection again from what the log still holds, losing what retention
// dropped, for sessions that only a login as another user within one
// session shared; `shoptrail rebuild` splits those where the shop wants it.
const version = 4

// cacheEntries bounds each map of the in-memory working set (about 0.5 KiB
// an entry).
const cacheEntries = 100_000

// Identity is the identity projection.
type Identity struct {
	timeout atomic.Int64 // the session timeout, nanoseconds
	cache   *state       // only the runner's goroutine uses it
}

// New returns the identity projection with a session timeout.
func New(sessionTimeout time.Duration) *Identity {
	id := &Identity{cache: newState(cacheEntries)}
	id.timeout.Store(int64(sessionTimeout))
	return id
}

// SetSessionTimeout changes how long a session lasts after its last event,
// for the events folded from now on.
func (id *Identity) SetSessionTimeout(d time.Duration) { id.timeout.Store(int64(d)) }

// Projection is what the runner needs.
func (id *Identity) Projection() *project.Identity {
	return &project.Identity{
		Projection: project.Projection{
			Name:    Name,
			Version: version,
			Owns:    []store.Space{store.SpaceIdentity},
			Fold:    id.fold,
			Erase:   func(tx *store.Tx, profileID string) error { return tx.EraseProfile(profileID) },
			Reset:   func() { id.cache = newState(cacheEntries) },
		},
		Resolve: resolve,
		Split:   id.split,
	}
}

// split ends a run before the second event that may merge an anonymous
// profile into a user (the first may open the run): merging moves keys with
// iterators, whose cost grows with the writes the transaction holds.
func (id *Identity) split(tx *store.Tx, evs []*model.Event) int {
	for i, ev := range evs {
		if i == 0 || ev.Email == "" || ev.AnonymousID == "" {
			continue
		}
		user := model.UserProfileID(ev.Email)
		cur, ok := id.cache.links[linkKey(linkAnon, ev.AnonymousID)]
		if !ok {
			cur, _ = tx.AnonymousProfile(ev.AnonymousID) // a failed read only ends the run early
		}
		if cur != user {
			return i
		}
	}
	return len(evs)
}

func (id *Identity) fold(run *project.Run) error {
	f := newFold(run, time.Duration(id.timeout.Load()), id.cache)
	for i := range run.Events {
		if err := f.fold(&run.Events[i]); err != nil {
			return err
		}
	}
	if err := f.write(); err != nil {
		return err
	}
	run.AfterCommit(f.commit)
	return nil
}

// resolve finds the session of each event through the type index, and the
// profile through the session: the profile it belongs to now, after every
// merge folded so far.
func resolve(tx *store.Tx, evs []project.Event) error {
	sessions := map[string]struct {
		profile  string
		firstSeq uint64
	}{}
	for i := range evs {
		ev := &evs[i]
		sid, err := tx.EventSession(ev.Type, ev.Seq)
		if errors.Is(err, store.ErrNotFound) {
			continue // erased
		}
		if err != nil {
			return err
		}
		if sid == "" { // recorded by Shoptrail: always a user's
			ev.ProfileID = model.UserProfileID(ev.Email)
			continue
		}
		s, ok := sessions[sid]
		if !ok {
			sess, err := tx.Session(sid)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			s.profile, s.firstSeq = sess.ProfileID, sess.FirstSeq
			sessions[sid] = s
		}
		ev.ProfileID, ev.SessionID, ev.NewSession = s.profile, sid, s.firstSeq == ev.Seq
		if ev.Type == model.PageView {
			if ev.Touch, err = tx.Touchpoint(s.profile, ev.Time, ev.Seq); err != nil {
				return err
			}
		}
	}
	return nil
}
