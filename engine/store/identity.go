package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/shoptrail/shoptrail/engine/model"
)

// The identity projection's data (engine/identity): profiles, identity
// links, sessions, touchpoints and the event indexes.

// Profile returns the profile with id, or ErrNotFound.
func (tx *Tx) Profile(id string) (model.Profile, error) {
	var p model.Profile
	return p, tx.getJSON(nsProfile.key(id), &p)
}

// PutProfile stores p.
func (tx *Tx) PutProfile(p model.Profile) error { return tx.setJSON(nsProfile.key(p.ID), p) }

// AnonymousProfile returns the id of the profile an anonymous id belongs to.
func (tx *Tx) AnonymousProfile(anonymousID string) (string, error) {
	return tx.getString(nsAnon.key(anonymousID))
}

// LinkAnonymous makes the anonymous id belong to profileID.
func (tx *Tx) LinkAnonymous(anonymousID, profileID string) error {
	return tx.set(nsAnon.key(anonymousID), []byte(profileID))
}

// Session returns the session with id, or ErrNotFound.
func (tx *Tx) Session(id string) (model.Session, error) {
	var s model.Session
	return s, tx.getJSON(nsSession.key(id), &s)
}

// PutSession stores s. A new session must also be indexed: IndexSession.
func (tx *Tx) PutSession(s model.Session) error { return tx.setJSON(nsSession.key(s.ID), s) }

// IndexSession lists a session under its profile.
func (tx *Tx) IndexSession(profileID, sessionID string) error {
	return tx.set(profileSessionKey(profileID, sessionID), nil)
}

// ClientSession returns the current session id for a browser session id.
func (tx *Tx) ClientSession(clientID string) (string, error) {
	return tx.getString(nsClientSess.key(clientID))
}

// SetClientSession maps a browser session id to the current session id.
func (tx *Tx) SetClientSession(clientID, sessionID string) error {
	return tx.set(nsClientSess.key(clientID), []byte(sessionID))
}

// OpenSession returns the session id that server-side events of a profile
// without a session id currently go to.
func (tx *Tx) OpenSession(profileID string) (string, error) {
	return tx.getString(nsOpenSess.key(profileID))
}

// SetOpenSession records the open server-side session of a profile.
func (tx *Tx) SetOpenSession(profileID, sessionID string) error {
	return tx.set(nsOpenSess.key(profileID), []byte(sessionID))
}

// IndexEvent lists the event under its profile and its type, and records
// the session it belongs to (EventSession).
func (tx *Tx) IndexEvent(profileID, sessionID, typ string, seq uint64) error {
	if err := tx.set(profileEventKey(profileID, seq), nil); err != nil {
		return err
	}
	return tx.set(typeEventKey(typ, seq), []byte(sessionID))
}

// EventSession returns the id of the session an indexed event belongs to,
// or ErrNotFound.
func (tx *Tx) EventSession(typ string, seq uint64) (string, error) {
	return tx.getString(typeEventKey(typ, seq))
}

// PutTouchpoint stores a touchpoint of a profile.
func (tx *Tx) PutTouchpoint(profileID string, seq uint64, tp model.Touchpoint) error {
	return tx.setJSON(touchpointKey(profileID, tp.Time, seq), tp)
}

// Touchpoint returns the touchpoint an event made, nil if it made none.
func (tx *Tx) Touchpoint(profileID string, t time.Time, seq uint64) (*model.Touchpoint, error) {
	var tp model.Touchpoint
	err := tx.getJSON(touchpointKey(profileID, t, seq), &tp)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &tp, nil
}

// TouchpointsBetween returns the touchpoints of a profile from from to to
// (inclusive), oldest first.
func (tx *Tx) TouchpointsBetween(profileID string, from, to time.Time) ([]model.Touchpoint, error) {
	pfx := nsTouch.sub(profileID)
	end := binary.BigEndian.AppendUint64(append([]byte{}, pfx...), uint64(to.UnixNano()))
	var out []model.Touchpoint
	it := tx.txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: true})
	defer it.Close()
	for it.Seek(binary.BigEndian.AppendUint64(append([]byte{}, pfx...), uint64(max(from.UnixNano(), 0)))); it.Valid(); it.Next() {
		k := it.Item().Key()
		if string(k[:len(end)]) > string(end) {
			break
		}
		var tp model.Touchpoint
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &tp) }); err != nil {
			return nil, err
		}
		out = append(out, tp)
	}
	return out, nil
}

// errDangling is a profile's entry for a session that no longer exists,
// or that belongs to another profile (see Sessions).
var errDangling = errors.New("store: an entry for a session that is gone")

// MoveProfile moves everything of profile from to profile to: its events,
// sessions, touchpoints and open session, and deletes profile from. Merging
// the two profile records is the caller's business. It returns the ids of
// the sessions it moved.
func (tx *Tx) MoveProfile(from, to string) (moved []string, err error) {
	moves := []struct {
		n   ns
		fix func(k, v []byte) ([]byte, error)
	}{
		{nsProfileEv, nil},
		{nsTouch, nil},
		{nsProfSess, func(k, v []byte) ([]byte, error) {
			// the session record names its profile: rewrite it too
			id := string(k[len(nsProfSess.sub(from)):])
			s, err := tx.Session(id)
			if errors.Is(err, ErrNotFound) || err == nil && s.ProfileID != from {
				// an entry left behind by an erasure: nothing to move, and
				// failing would stop the identity stage for good; or one
				// for another profile's session of the same id, which stays
				return nil, errDangling
			}
			if err != nil {
				return v, fmt.Errorf("session %q: %w", id, err)
			}
			moved = append(moved, id)
			s.ProfileID = to
			return v, tx.PutSession(s)
		}},
	}
	for _, m := range moves {
		old, nu := m.n.sub(from), m.n.sub(to)
		var keys, vals [][]byte
		it := tx.txn.NewIterator(badger.IteratorOptions{Prefix: old, PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				it.Close()
				return nil, err
			}
			keys = append(keys, it.Item().KeyCopy(nil))
			vals = append(vals, v)
		}
		it.Close()
		for i, k := range keys {
			v := vals[i]
			if m.fix != nil {
				var err error
				if v, err = m.fix(k, v); errors.Is(err, errDangling) {
					if err := tx.delete(k); err != nil {
						return nil, err
					}
					continue
				} else if err != nil {
					return nil, err
				}
			}
			if err := tx.delete(k); err != nil {
				return nil, err
			}
			if err := tx.set(append(append([]byte{}, nu...), k[len(old):]...), v); err != nil {
				return nil, err
			}
		}
	}
	if sid, err := tx.OpenSession(from); err == nil {
		if err := tx.SetOpenSession(to, sid); err != nil {
			return nil, err
		}
		if err := tx.delete(nsOpenSess.key(from)); err != nil {
			return nil, err
		}
	}
	return moved, tx.delete(nsProfile.key(from))
}

// EraseProfile deletes a profile and everything the identity projection
// keeps about it, and its events from the log with their dedup keys. Run it
// inside Store.Erase.
func (tx *Tx) EraseProfile(profileID string) error {
	var p model.Profile
	if err := tx.getJSON(nsProfile.key(profileID), &p); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	var del [][]byte
	for _, anon := range p.AnonymousIDs {
		if cur, err := tx.AnonymousProfile(anon); err == nil && cur == profileID {
			del = append(del, nsAnon.key(anon))
		}
	}
	// the events, through the profile's index
	err := tx.scanKeys(nsProfileEv.sub(profileID), func(k []byte) error {
		seq := lastUint64(k)
		del = append(del, k, eventKey(seq))
		item, err := tx.txn.Get(eventKey(seq))
		if err != nil {
			return nil // erased before, the index left behind
		}
		ev, err := decodeEvent(item)
		if err != nil {
			return err
		}
		del = append(del, typeEventKey(ev.Type, seq), dedupKey(ev.Via, ev.ID))
		if ev.Type == model.Order {
			if id, _ := ev.Order(); id != "" {
				del = append(del, IdentityOrders.records.key(id))
			}
		}
		tx.deleted++
		return nil
	})
	if err != nil {
		return err
	}
	// sessions, and the browser session ids that point to them; every
	// entry goes, the sessions of other profiles stay (see Sessions)
	if err := tx.scanKeys(nsProfSess.sub(profileID), func(k []byte) error {
		del = append(del, k)
		return nil
	}); err != nil {
		return err
	}
	sessions, err := tx.Sessions(profileID)
	if err != nil {
		return err
	}
	for _, sess := range sessions {
		del = append(del, nsSession.key(sess.ID))
		if sess.ClientSessionID != "" {
			if cur, err := tx.ClientSession(sess.ClientSessionID); err == nil && cur == sess.ID {
				del = append(del, nsClientSess.key(sess.ClientSessionID))
			}
		}
	}
	if err := tx.scanKeys(nsTouch.sub(profileID), func(k []byte) error {
		del = append(del, k)
		return nil
	}); err != nil {
		return err
	}
	del = append(del, nsOpenSess.key(profileID), nsProfile.key(profileID))
	for _, k := range del {
		if err := tx.delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Touchpoints returns the touchpoints of a profile, oldest first.
func (tx *Tx) Touchpoints(profileID string) ([]model.Touchpoint, error) {
	var out []model.Touchpoint
	it := tx.txn.NewIterator(badger.IteratorOptions{Prefix: nsTouch.sub(profileID), PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var tp model.Touchpoint
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &tp) }); err != nil {
			return nil, err
		}
		out = append(out, tp)
	}
	return out, nil
}

// SessionEntries returns the ids of the sessions listed under a profile,
// as stored: Sessions leaves out those that are not the profile's.
func (tx *Tx) SessionEntries(profileID string) ([]string, error) {
	pfx := nsProfSess.sub(profileID)
	var out []string
	err := tx.scanKeys(pfx, func(k []byte) error {
		out = append(out, string(k[len(pfx):]))
		return nil
	})
	return out, err
}

// Sessions returns the sessions of a profile, oldest first. An entry for a
// session that is gone or that names another profile is not the profile's:
// stores written before new sessions stopped taking ids in use (engine/
// identity) may hold such entries, left by an erasure.
func (tx *Tx) Sessions(profileID string) ([]model.Session, error) {
	pfx := nsProfSess.sub(profileID)
	var out []model.Session
	it := tx.txn.NewIterator(badger.IteratorOptions{Prefix: pfx})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		s, err := tx.Session(string(it.Item().Key()[len(pfx):]))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if s.ProfileID == profileID {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}
