package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/shoptrail/shoptrail/engine/model"
)

// What an import changed (a product back in stock, a price drop) reaches
// the event log through an outbox: the import stages the facts beside the
// new generation's products (PutFact), the switch to that generation makes
// them live in the same transaction as the catalogue, and Facts/DoneFacts
// move them into the log in chunks, each deleted in the transaction that
// appends it. A crash before the switch leaves neither the catalogue nor
// the facts; one after it leaves the facts still to record, once.

// Diff calls fn, in ID order, for every product of the new generation (as
// last flushed: call after the last Put) that the current catalogue also
// holds, with its current and its new version. It reads both generations
// side by side, holding neither.
func (st *Staging) Diff(fn func(old, cur *model.Product) error) error {
	if err := st.Flush(); err != nil {
		return err
	}
	cur, err := st.s.Catalogue()
	if err != nil || cur == 0 {
		return err
	}
	return st.s.db.View(func(txn *badger.Txn) error {
		oldPfx, newPfx := generationPrefix(cur), generationPrefix(st.gen)
		oi := txn.NewIterator(badger.IteratorOptions{Prefix: oldPfx, PrefetchValues: true, PrefetchSize: 100})
		defer oi.Close()
		ni := txn.NewIterator(badger.IteratorOptions{Prefix: newPfx, PrefetchValues: true, PrefetchSize: 100})
		defer ni.Close()
		decode := func(it *badger.Iterator, p *model.Product) error {
			return it.Item().Value(func(b []byte) error { return json.Unmarshal(b, p) })
		}
		oi.Rewind()
		for ni.Rewind(); ni.Valid(); ni.Next() {
			id := ni.Item().Key()[len(newPfx):]
			for oi.Valid() && bytes.Compare(oi.Item().Key()[len(oldPfx):], id) < 0 {
				oi.Next()
			}
			if !oi.Valid() {
				return nil
			}
			if !bytes.Equal(oi.Item().Key()[len(oldPfx):], id) {
				continue
			}
			var o, n model.Product
			if err := decode(oi, &o); err != nil {
				return fmt.Errorf("store: decode product %q: %w", id, err)
			}
			if err := decode(ni, &n); err != nil {
				return fmt.Errorf("store: decode product %q: %w", id, err)
			}
			if err := fn(&o, &n); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutFact stages the n-th fact of the new generation: an event that is
// recorded in the log once the generation is the catalogue.
func (st *Staging) PutFact(n uint32, ev *model.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return st.wb.Set(factKey(st.gen, n), b)
}

// Fact is a staged fact of a catalogue that readers see, waiting to be
// recorded in the log.
type Fact struct {
	key   []byte
	Event *model.Event
}

// Facts returns up to limit facts waiting to be recorded, oldest first,
// after the fact after (nil: from the first): those of the current
// catalogue and of earlier ones (a crash before they were recorded), not
// those of a generation still being staged. A caller going through many
// passes the last fact it got, so that it does not walk again over the
// ones it deleted.
func (s *Store) Facts(after *Fact, limit int) ([]Fact, error) {
	var out []Fact
	err := s.db.View(func(txn *badger.Txn) error {
		cur, err := getUint64(txn, keyCatalogue)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		pfx := nsCatFact.prefix()
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		if after != nil {
			it.Seek(append(append([]byte{}, after.key...), 0))
		} else {
			it.Rewind()
		}
		for ; it.Valid() && len(out) < limit; it.Next() {
			k := it.Item().KeyCopy(nil)
			if len(k) != len(pfx)+12 || binary.BigEndian.Uint64(k[len(pfx):]) > cur {
				break // a staged generation's: not live yet
			}
			var ev model.Event
			if err := it.Item().Value(func(b []byte) error { return model.DecodeEvent(b, &ev) }); err != nil {
				return fmt.Errorf("store: decode catalogue fact: %w", err)
			}
			out = append(out, Fact{key: k, Event: &ev})
		}
		return nil
	})
	return out, err
}

// DoneFacts deletes facts that the transaction records in the log.
func (tx *Tx) DoneFacts(facts []Fact) error {
	for _, f := range facts {
		if err := tx.delete(f.key); err != nil {
			return err
		}
	}
	return nil
}
