package store

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/shoptrail/shoptrail/engine/model"
)

// The catalogue is replaced whole: an import writes a new generation of
// products beside the current one, then switches m/catalogue to it in one
// transaction and drops the old one. A crash before the switch leaves the
// old catalogue; leftovers are dropped by the next import.

// Catalogue is the generation readers see, 0 when no feed was imported.
func (s *Store) Catalogue() (uint64, error) { return s.uint64OrZero(keyCatalogue) }

// Staging is a catalogue being written.
type Staging struct {
	s    *Store
	gen  uint64
	wb   *batch
	seen map[string]bool
}

// StageCatalogue starts a new generation.
func (s *Store) StageCatalogue() (*Staging, error) {
	cur, err := s.Catalogue()
	if err != nil {
		return nil, err
	}
	gen := cur + 1
	if err := s.dropPrefix(generationPrefix(gen)); err != nil { // a crashed import's leftovers
		return nil, fmt.Errorf("store: stage catalogue: %w", err)
	}
	return &Staging{s: s, gen: gen, wb: s.newBatch(), seen: map[string]bool{}}, nil
}

// Put adds a product to the new generation.
func (st *Staging) Put(p model.Product) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	st.seen[p.ID] = true
	return st.wb.Set(productKey(st.gen, p.ID), b)
}

// Flush writes what was Put so far, so that Get and Scan see it; later
// Puts go to a new batch.
func (st *Staging) Flush() error {
	if err := st.wb.Flush(); err != nil {
		return fmt.Errorf("store: write catalogue: %w", err)
	}
	st.wb = st.s.newBatch()
	return nil
}

// Get returns a product of the new generation as last flushed, or
// ErrNotFound.
func (st *Staging) Get(id string) (model.Product, error) {
	var p model.Product
	err := st.s.Read(func(tx *Tx) error { return tx.getJSON(productKey(st.gen, id), &p) })
	return p, err
}

// Scan calls fn for every product of the new generation as last flushed,
// in ID order. fn may Put.
func (st *Staging) Scan(fn func(model.Product) error) error { return st.s.ScanProducts(st.gen, fn) }

// Discard abandons the new generation.
func (st *Staging) Discard() {
	st.wb.Cancel()
	st.s.dropPrefix(generationPrefix(st.gen))
}

// Commit carries over the current catalogue's products missing from the new
// one, marked removed, stores the report, switches readers to the new
// generation, and drops the old one. It returns how many were removed.
func (st *Staging) Commit(report any) (removed int, err error) {
	s := st.s
	cur, err := s.Catalogue()
	if err != nil {
		return 0, err
	}
	err = s.ScanProducts(cur, func(p model.Product) error {
		if st.seen[p.ID] {
			return nil
		}
		if !p.Removed {
			removed++
		}
		p.Removed = true
		return st.Put(p)
	})
	if err != nil {
		st.Discard()
		return 0, err
	}
	if err := st.wb.Flush(); err != nil {
		st.Discard()
		return 0, fmt.Errorf("store: write catalogue: %w", err)
	}
	rep, err := json.Marshal(report)
	if err != nil {
		return 0, err
	}
	err = s.update(func(txn *badger.Txn) error {
		if err := txn.Set(keyFeedReport, rep); err != nil {
			return err
		}
		return txn.Set(keyCatalogue, uint64Bytes(st.gen))
	})
	if err != nil {
		return 0, fmt.Errorf("store: switch catalogue: %w", err)
	}
	if cur > 0 {
		if err := s.dropPrefix(generationPrefix(cur)); err != nil {
			s.log.Warn("drop the previous catalogue", "err", err)
		}
	}
	return removed, nil
}

// Generation is the generation being staged.
func (st *Staging) Generation() uint64 { return st.gen }

// SaveFeedReport stores the report of an import that failed as a whole
// (the catalogue is unchanged).
func (s *Store) SaveFeedReport(report any) error {
	b, err := json.Marshal(report)
	if err != nil {
		return err
	}
	return s.update(func(txn *badger.Txn) error { return txn.Set(keyFeedReport, b) })
}

// FeedReport decodes the report of the last import into v.
func (s *Store) FeedReport(v any) error {
	return s.Read(func(tx *Tx) error { return tx.getJSON(keyFeedReport, v) })
}

// Product returns a product of the current catalogue, or ErrNotFound.
func (s *Store) Product(id string) (model.Product, error) {
	var p model.Product
	err := s.Read(func(tx *Tx) error {
		gen, err := getUint64(tx.txn, keyCatalogue)
		if err != nil {
			return err
		}
		return tx.getJSON(productKey(gen, id), &p)
	})
	return p, err
}

// Products returns the products of the current catalogue with the given
// IDs, in one transaction; missing IDs are left out.
func (s *Store) Products(ids []string) (map[string]model.Product, error) {
	out := make(map[string]model.Product, len(ids))
	err := s.Read(func(tx *Tx) error {
		gen, err := getUint64(tx.txn, keyCatalogue)
		if err != nil {
			return err
		}
		for _, id := range ids {
			var p model.Product
			switch err := tx.getJSON(productKey(gen, id), &p); {
			case err == nil:
				out[id] = p
			case !errors.Is(err, ErrNotFound):
				return err
			}
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		err = nil // no catalogue yet
	}
	return out, err
}

// ScanProducts calls fn for every product of generation gen, in ID order.
func (s *Store) ScanProducts(gen uint64, fn func(model.Product) error) error {
	if gen == 0 {
		return nil
	}
	return s.db.View(func(txn *badger.Txn) error {
		pfx := generationPrefix(gen)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var p model.Product
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &p) }); err != nil {
				return fmt.Errorf("store: decode product %q: %w", it.Item().Key()[len(pfx):], err)
			}
			if err := fn(p); err != nil {
				return err
			}
		}
		return nil
	})
}
