package store

import (
	"bytes"
	"encoding/json"

	"github.com/dgraph-io/badger/v4"

	"github.com/shoptrail/shoptrail/engine/model"
)

// Segment definitions (engine/segment) are kept apart from the segments
// projection's space, so that a rebuild of the projection keeps them.

// SegmentDefs returns every stored segment definition by id.
func (s *Store) SegmentDefs() (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: nsSegment.prefix(), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[string(it.Item().Key()[len(nsSegment):])] = v
		}
		return nil
	})
	return out, err
}

// PutSegmentDef stores a segment definition (JSON). Callers serialise
// changes of one segment (Lock).
func (s *Store) PutSegmentDef(id string, v any) error {
	return s.update(func(txn *badger.Txn) error { return (&Tx{txn: txn}).setJSON(nsSegment.key(id), v) })
}

// DeleteSegmentDef deletes a segment definition.
func (s *Store) DeleteSegmentDef(id string) error {
	return s.update(func(txn *badger.Txn) error { return txn.Delete(nsSegment.key(id)) })
}

// ProfileIDsAfter returns up to n ids of profiles the identity projection
// keeps, in id order, after the id after ("" for the first).
func (tx *Tx) ProfileIDsAfter(after string, n int) ([]string, error) {
	pfx := nsProfile.prefix()
	it := tx.txn.NewIterator(badger.IteratorOptions{Prefix: pfx})
	defer it.Close()
	var out []string
	for it.Seek(append(nsProfile.key(after), 0)); it.Valid() && len(out) < n; it.Next() {
		out = append(out, string(it.Item().Key()[len(pfx):]))
	}
	return out, nil
}

// CountProfiles returns how many profiles the identity projection keeps.
func (tx *Tx) CountProfiles() (int64, error) {
	it := tx.txn.NewIterator(badger.IteratorOptions{Prefix: nsProfile.prefix()})
	defer it.Close()
	var n int64
	for it.Rewind(); it.Valid(); it.Next() {
		n++
	}
	return n, nil
}

// ProfileEvents visits the events of a profile that the identity
// projection folded, oldest first; with want, only those of the types it
// accepts (the others are not decoded).
func (tx *Tx) ProfileEvents(profileID string, want func(typ string) bool, fn func(ev *model.Event) error) error {
	it := tx.txn.NewIterator(badger.IteratorOptions{Prefix: nsProfileEv.sub(profileID)})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item, err := tx.txn.Get(eventKey(lastUint64(it.Item().Key())))
		if err != nil {
			continue // erased meanwhile
		}
		if want != nil {
			skip := false
			if err := item.Value(func(b []byte) error {
				if typ, ok := peekType(b); ok && !want(typ) {
					skip = true
				}
				return nil
			}); err != nil {
				return err
			}
			if skip {
				continue
			}
		}
		ev, err := decodeEvent(item)
		if err != nil {
			return err
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	return nil
}

// peekType reads the type of a stored event without decoding the rest
// (model.Event.AppendJSON writes seq, id, then type; a quote inside the id
// is escaped, so the first `,"type":"` is the field). ok is false when it
// cannot tell (an escape in the type): decode the event then.
func peekType(b []byte) (typ string, ok bool) {
	i := bytes.Index(b, []byte(`,"type":"`))
	if i < 0 {
		return "", false
	}
	rest := b[i+len(`,"type":"`):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
		return "", false
	}
	return string(rest[:j]), true
}

// User returns the attributes of the user with email, or ErrNotFound.
func (tx *Tx) User(email string) (model.User, error) {
	var u model.User
	return u, tx.getJSON(nsUser.key(email), &u)
}

// TypeEvents visits the events of one type that the identity projection
// folded, oldest first, with the session each belongs to ("" for events
// Shoptrail recorded, which belong to the user of their email).
func (tx *Tx) TypeEvents(typ string, fn func(ev *model.Event, sessionID string) error) error {
	it := tx.txn.NewIterator(badger.IteratorOptions{Prefix: nsTypeEv.sub(typ), PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		sid, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		item, err := tx.txn.Get(eventKey(lastUint64(it.Item().Key())))
		if err != nil {
			continue // erased meanwhile
		}
		ev, err := decodeEvent(item)
		if err != nil {
			return err
		}
		if err := fn(ev, string(sid)); err != nil {
			return err
		}
	}
	return nil
}
