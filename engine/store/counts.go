package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"sort"

	"github.com/dgraph-io/badger/v4"

	"github.com/shoptrail/shoptrail/engine/model"
)

// PairKind is what products did together.
type PairKind struct{ ns ns }

// Pair kinds, aggregated from events; they hold no personal data and stay
// when a user is erased.
var (
	ViewedTogether = PairKind{nsViewedWith}
	BoughtTogether = PairKind{nsBoughtWith}
)

// AddPairCount adds delta to how often products a and b went together.
func (tx *Tx) AddPairCount(kind PairKind, a, b string, delta int64) error {
	return tx.addCount(append(kind.ns.sub(a), b...), delta)
}

// SessionProducts returns the products viewed in a session, as
// PutSessionProducts stored them.
func (tx *Tx) SessionProducts(sessionID string) ([]string, error) {
	var ids []string
	err := tx.getJSON(nsSessionProd.key(sessionID), &ids)
	if errors.Is(err, ErrNotFound) {
		err = nil
	}
	return ids, err
}

// PutSessionProducts records the products viewed in a session.
func (tx *Tx) PutSessionProducts(sessionID string, ids []string) error {
	return tx.setJSON(nsSessionProd.key(sessionID), ids)
}

// AddUnknownProduct counts events naming a product ID the catalogue lacks.
func (tx *Tx) AddUnknownProduct(id string, delta int64) error {
	return tx.addCount(nsUnknownPID.key(id), delta)
}

func (tx *Tx) addCount(k []byte, delta int64) error {
	n, err := getUint64(tx.txn, k)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return tx.set(k, uint64Bytes(n+uint64(delta)))
}

// Count is an ID and how often it was counted.
type Count struct {
	ID    string `json:"id"`
	Count uint64 `json:"count"`
}

// PairCounts returns the products that went together with a, most often
// first.
func (s *Store) PairCounts(kind PairKind, a string, limit int) ([]Count, error) {
	return s.counts(kind.ns.sub(a), limit)
}

// UnknownProducts returns the product IDs events named that the catalogue
// lacks, most often first.
func (s *Store) UnknownProducts(limit int) ([]Count, error) {
	return s.counts(nsUnknownPID.prefix(), limit)
}

func (s *Store) counts(pfx []byte, limit int) ([]Count, error) {
	var out []Count
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var n uint64
			if err := it.Item().Value(func(b []byte) error {
				if len(b) == 8 {
					n = binary.BigEndian.Uint64(b)
				}
				return nil
			}); err != nil {
				return err
			}
			out = append(out, Count{string(it.Item().Key()[len(pfx):]), n})
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, err
}

// Rollup returns a day's totals, or ErrNotFound.
func (tx *Tx) Rollup(day string) (model.Rollup, error) {
	var r model.Rollup
	return r, tx.getJSON(nsRollup.key(day), &r)
}

// PutRollup stores a day's totals.
func (tx *Tx) PutRollup(r model.Rollup) error { return tx.setJSON(nsRollup.key(r.Day), r) }

// Rollups returns the totals of the days from first to last (YYYY-MM-DD),
// oldest first; days without events are left out.
func (s *Store) Rollups(first, last string) ([]model.Rollup, error) {
	var out []model.Rollup
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: nsRollup.prefix(), PrefetchValues: true})
		defer it.Close()
		for it.Seek(nsRollup.key(first)); it.Valid(); it.Next() {
			if string(it.Item().Key()[len(nsRollup):]) > last {
				break
			}
			var r model.Rollup
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &r) }); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}
