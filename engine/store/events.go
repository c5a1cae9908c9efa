package store

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/shoptrail/shoptrail/engine/model"
)

// Append stores events at the end of the log in one transaction, assigning
// each its seq. An event whose id was stored before (within dedupTTL), or
// earlier in the same call, is not stored again: dup[i] reports it. Ids are
// remembered apart for events from browsers and for the shop's own (API and
// server-made), so that no browser can claim the id of a shop's order
// before it arrives. Append returns after the commit, so a nil error means
// the events are durable against a crash of the process (and against power
// loss with SyncWrites).
//
// also, if not nil, runs in the same transaction: state that must change
// with the events (a user's attributes with the fact that they changed).
// With also, the events must fit one transaction (ErrTooBig otherwise).
//
// Appends are not pipelined: every Badger transaction waits for the commits
// before it (its read timestamp), so a second append in flight would only
// queue behind the first. Callers batch instead (group commit).
func (s *Store) Append(evs []*model.Event, also func(tx *Tx) error) (dup []bool, err error) {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	dup = make([]bool, len(evs))
	return dup, s.appendChunk(evs, dup, also)
}

func (s *Store) appendChunk(evs []*model.Event, dup []bool, also func(tx *Tx) error) error {
	var next uint64
	err := s.update(func(txn *badger.Txn) error {
		next = s.nextSeq
		var seen map[string]struct{} // ids earlier in this call
		if len(evs) > 1 {
			seen = make(map[string]struct{}, len(evs))
		}
		// the values share one buffer: Badger keeps them until the
		// commit, and an append that outgrows it leaves the earlier ones
		// where they are
		vals := make([]byte, 0, 1024*len(evs)) // a page view with its traffic and user agent: ~800 bytes
		for i, ev := range evs {
			dup[i] = false
			idKey := dedupKey(ev.Via, ev.ID)
			if _, ok := seen[string(idKey)]; ok {
				dup[i] = true
				continue
			}
			switch _, err := txn.Get(idKey); {
			case err == nil:
				dup[i] = true
				continue
			case !errors.Is(err, badger.ErrKeyNotFound):
				return err
			}
			if seen != nil {
				seen[string(idKey)] = struct{}{}
			}
			ev.Seq = next
			next++
			start := len(vals)
			vals = ev.AppendJSON(vals)
			if err := txn.Set(eventKey(ev.Seq), vals[start:len(vals):len(vals)]); err != nil {
				return err
			}
			if err := txn.SetEntry(badger.NewEntry(idKey, uint64Bytes(ev.Seq)).WithTTL(dedupTTL)); err != nil {
				return err
			}
		}
		if also != nil {
			return also(&Tx{txn: txn})
		}
		return nil
	})
	if errors.Is(err, badger.ErrTxnTooBig) {
		if also != nil || len(evs) < 2 {
			return ErrTooBig
		}
		h := len(evs) / 2
		if err := s.appendChunk(evs[:h], dup[:h], nil); err != nil {
			return err
		}
		return s.appendChunk(evs[h:], dup[h:], nil)
	}
	if err != nil {
		return fmt.Errorf("store: append events: %w", err)
	}
	s.nextSeq = next
	return nil
}

// EventsAfter returns up to max events with seq > after, oldest first.
func (s *Store) EventsAfter(after uint64, max int) ([]*model.Event, error) {
	var out []*model.Event
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: nsEvent.prefix(), PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Seek(eventKey(after + 1)); it.Valid() && len(out) < max; it.Next() {
			ev, err := decodeEvent(it.Item())
			if err != nil {
				return err
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// Event returns the event with the given id sent through via (browser,
// api), if it is still remembered (see dedupTTL), or ErrNotFound.
func (s *Store) Event(via, id string) (*model.Event, error) {
	var ev *model.Event
	err := s.db.View(func(txn *badger.Txn) error {
		seq, err := getUint64(txn, dedupKey(via, id))
		if err != nil {
			return err
		}
		item, err := txn.Get(eventKey(seq))
		if err != nil {
			return err
		}
		ev, err = decodeEvent(item)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		err = ErrNotFound
	}
	return ev, err
}

// Visit is called for each event of a scan, newest first; it returns false
// to stop the scan.
type Visit func(ev *model.Event) (more bool, err error)

// ScanLog visits the events with lo <= seq <= hi, newest first.
func (s *Store) ScanLog(hi, lo uint64, visit Visit) error {
	if hi < lo {
		return nil
	}
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: nsEvent.prefix(), Reverse: true, PrefetchValues: true, PrefetchSize: 50})
		defer it.Close()
		for it.Seek(eventKey(hi)); it.Valid(); it.Next() {
			if seqOfEventKey(it.Item().Key()) < lo {
				return nil
			}
			ev, err := decodeEvent(it.Item())
			if err != nil {
				return err
			}
			if more, err := visit(ev); err != nil || !more {
				return err
			}
		}
		return nil
	})
}

// ScanProfileEvents visits the events of a profile with seq <= hi, newest
// first. It sees the events the identity projection has folded.
func (s *Store) ScanProfileEvents(profileID string, hi uint64, visit Visit) error {
	return s.scanIndex(nsProfileEv.sub(profileID), hi, visit)
}

// ScanTypeEvents visits the events of one type with seq <= hi, newest first.
// It sees the events the identity projection has folded.
func (s *Store) ScanTypeEvents(typ string, hi uint64, visit Visit) error {
	return s.scanIndex(nsTypeEv.sub(typ), hi, visit)
}

func (s *Store) scanIndex(pfx []byte, hi uint64, visit Visit) error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx, Reverse: true})
		defer it.Close()
		start := append(append([]byte{}, pfx...), uint64Bytes(hi)...)
		for it.Seek(start); it.Valid(); it.Next() {
			item, err := txn.Get(eventKey(lastUint64(it.Item().Key())))
			if errors.Is(err, badger.ErrKeyNotFound) {
				// the event is gone (the retention sweep dropped it with
				// the entries of the profile its session named, which was
				// not always this one: see engine/identity): nothing to list
				continue
			}
			if err != nil {
				return fmt.Errorf("store: index %q: %w", it.Item().Key(), err)
			}
			ev, err := decodeEvent(item)
			if err != nil {
				return err
			}
			if more, err := visit(ev); err != nil || !more {
				return err
			}
		}
		return nil
	})
}

func decodeEvent(item *badger.Item) (*model.Event, error) {
	ev := new(model.Event)
	err := item.Value(func(b []byte) error { return model.DecodeEvent(b, ev) })
	if err != nil {
		return nil, fmt.Errorf("store: decode event %x: %w", item.Key(), err)
	}
	return ev, nil
}

// DropEvent deletes an event from the log with the identity projection's
// index entries of it (profileID is the profile it belongs to now, "" if
// none), for the retention sweeper. Its dedup key stays until it expires,
// so a late retry of the event is still recognised. The caller keeps the
// projections from writing meanwhile (engine/project runs it between
// folds) and only drops events every projection has folded.
func (tx *Tx) DropEvent(ev *model.Event, profileID string) error {
	dels := [][]byte{eventKey(ev.Seq), typeEventKey(ev.Type, ev.Seq)}
	if profileID != "" {
		dels = append(dels, profileEventKey(profileID, ev.Seq))
	}
	for _, k := range dels {
		if err := tx.delete(k); err != nil {
			return err
		}
	}
	return nil
}

// RetentionHorizon is the seq up to which the retention sweeper may have
// dropped events (0: it never dropped any): a projection folded again from
// the start sees only the events after it.
func (tx *Tx) RetentionHorizon() (uint64, error) {
	v, err := getUint64(tx.txn, keyRetention)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return v, err
}

// SetRetentionHorizon records how far the retention sweeper went.
func (tx *Tx) SetRetentionHorizon(seq uint64) error { return tx.set(keyRetention, uint64Bytes(seq)) }

// RetentionHorizon is Tx.RetentionHorizon outside a transaction.
func (s *Store) RetentionHorizon() (seq uint64, err error) {
	err = s.Read(func(tx *Tx) error {
		seq, err = tx.RetentionHorizon()
		return err
	})
	return seq, err
}
