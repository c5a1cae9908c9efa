package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/dgraph-io/badger/v4"

	"github.com/shoptrail/shoptrail/engine/model"
)

// Tx is a read-write transaction over the projections, for the code that
// folds the event log (engine/track). Its changes and the new checkpoint
// commit together or not at all.
type Tx struct{ txn *badger.Txn }

// Project runs fn in one transaction. ErrTooBig means the transaction grew
// past Badger's limit: fold fewer events per call.
func (s *Store) Project(fn func(tx *Tx) error) error {
	err := s.update(func(txn *badger.Txn) error { return fn(&Tx{txn}) })
	if errors.Is(err, badger.ErrTxnTooBig) {
		return ErrTooBig
	}
	return err
}

// ErrTooBig means a transaction holds more than Badger can commit at once.
var ErrTooBig = errors.New("store: transaction too big")

// Checkpoint returns the seq of the last event folded into the projections.
func (s *Store) Checkpoint() (uint64, error) { return s.uint64OrZero(keyCheckpoint) }

// Rebuild drops every projection and the checkpoint, so that the next fold
// starts again from the first event in the log.
func (s *Store) Rebuild() error {
	pfx := make([][]byte, 0, len(projectionPrefixes))
	for _, p := range projectionPrefixes {
		pfx = append(pfx, prefix(p))
	}
	if err := s.db.DropPrefix(pfx...); err != nil {
		return fmt.Errorf("store: drop projections: %w", err)
	}
	return s.update(func(txn *badger.Txn) error { return txn.Delete(keyCheckpoint) })
}

// SetCheckpoint records seq as the last folded event.
func (tx *Tx) SetCheckpoint(seq uint64) error { return tx.txn.Set(keyCheckpoint, uint64Bytes(seq)) }

// Profile returns the profile with id, or ErrNotFound.
func (tx *Tx) Profile(id string) (model.Profile, error) {
	var p model.Profile
	return p, tx.getJSON(key(pProfile, id), &p)
}

// PutProfile stores p.
func (tx *Tx) PutProfile(p model.Profile) error { return tx.setJSON(key(pProfile, p.ID), p) }

// AnonymousProfile returns the id of the profile an anonymous id belongs to.
func (tx *Tx) AnonymousProfile(anonymousID string) (string, error) {
	return tx.getString(key(pAnon, anonymousID))
}

// LinkAnonymous makes the anonymous id belong to profileID.
func (tx *Tx) LinkAnonymous(anonymousID, profileID string) error {
	return tx.txn.Set(key(pAnon, anonymousID), []byte(profileID))
}

// Session returns the session with id, or ErrNotFound.
func (tx *Tx) Session(id string) (model.Session, error) {
	var s model.Session
	return s, tx.getJSON(key(pSession, id), &s)
}

// PutSession stores s. A new session must also be indexed: IndexSession.
func (tx *Tx) PutSession(s model.Session) error { return tx.setJSON(key(pSession, s.ID), s) }

// IndexSession lists a session under its profile.
func (tx *Tx) IndexSession(profileID, sessionID string) error {
	return tx.txn.Set(profileSessionKey(profileID, sessionID), nil)
}

// ClientSession returns the current session id for a browser session id.
func (tx *Tx) ClientSession(clientID string) (string, error) {
	return tx.getString(key(pClientSess, clientID))
}

// SetClientSession maps a browser session id to the current session id.
func (tx *Tx) SetClientSession(clientID, sessionID string) error {
	return tx.txn.Set(key(pClientSess, clientID), []byte(sessionID))
}

// OpenSession returns the session id that server-side events of a profile
// without a session id currently go to.
func (tx *Tx) OpenSession(profileID string) (string, error) {
	return tx.getString(key(pOpenSess, profileID))
}

// SetOpenSession records the open server-side session of a profile.
func (tx *Tx) SetOpenSession(profileID, sessionID string) error {
	return tx.txn.Set(key(pOpenSess, profileID), []byte(sessionID))
}

// IndexEvent lists the event under its profile and its type.
func (tx *Tx) IndexEvent(profileID, typ string, seq uint64) error {
	if err := tx.txn.Set(profileEventKey(profileID, seq), nil); err != nil {
		return err
	}
	return tx.txn.Set(typeEventKey(typ, seq), nil)
}

// PutTouchpoint stores a touchpoint of a profile.
func (tx *Tx) PutTouchpoint(profileID string, seq uint64, tp model.Touchpoint) error {
	return tx.setJSON(touchpointKey(profileID, tp.Time, seq), tp)
}

// MoveProfile moves everything of profile from to profile to: its events,
// sessions, touchpoints and open session, and deletes profile from. Merging
// the two profile records is the caller's business. It returns the ids of
// the sessions it moved.
func (tx *Tx) MoveProfile(from, to string) (moved []string, err error) {
	moves := []struct {
		p   byte
		fix func(k, v []byte) ([]byte, error)
	}{
		{pProfileEv, nil},
		{pTouch, nil},
		{pProfSess, func(k, v []byte) ([]byte, error) {
			// the session record names its profile: rewrite it too
			id := string(k[len(sub(pProfSess, from)):])
			moved = append(moved, id)
			s, err := tx.Session(id)
			if err != nil {
				return v, fmt.Errorf("session %q: %w", id, err)
			}
			s.ProfileID = to
			return v, tx.setJSON(key(pSession, id), s)
		}},
	}
	for _, m := range moves {
		old, nu := sub(m.p, from), sub(m.p, to)
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
				if v, err = m.fix(k, v); err != nil {
					return nil, err
				}
			}
			if err := tx.txn.Delete(k); err != nil {
				return nil, err
			}
			if err := tx.txn.Set(append(append([]byte{}, nu...), k[len(old):]...), v); err != nil {
				return nil, err
			}
		}
	}
	if sid, err := tx.OpenSession(from); err == nil {
		if err := tx.SetOpenSession(to, sid); err != nil {
			return nil, err
		}
		if err := tx.txn.Delete(key(pOpenSess, from)); err != nil {
			return nil, err
		}
	}
	return moved, tx.txn.Delete(key(pProfile, from))
}

func (tx *Tx) getJSON(k []byte, v any) error {
	item, err := tx.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}

func (tx *Tx) setJSON(k []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.txn.Set(k, b)
}

func (tx *Tx) getString(k []byte) (string, error) {
	item, err := tx.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", err
	}
	b, err := item.ValueCopy(nil)
	return string(b), err
}

// Read runs fn in a read-only transaction: a consistent snapshot of the
// projections. Writing through tx fails.
func (s *Store) Read(fn func(tx *Tx) error) error {
	return s.db.View(func(txn *badger.Txn) error { return fn(&Tx{txn}) })
}

// Touchpoints returns the touchpoints of a profile, oldest first.
func (tx *Tx) Touchpoints(profileID string) ([]model.Touchpoint, error) {
	var out []model.Touchpoint
	it := tx.txn.NewIterator(badger.IteratorOptions{Prefix: sub(pTouch, profileID), PrefetchValues: true})
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

// Sessions returns the sessions of a profile, oldest first.
func (tx *Tx) Sessions(profileID string) ([]model.Session, error) {
	pfx := sub(pProfSess, profileID)
	var out []model.Session
	it := tx.txn.NewIterator(badger.IteratorOptions{Prefix: pfx})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		s, err := tx.Session(string(it.Item().Key()[len(pfx):]))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}
