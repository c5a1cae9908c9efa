package store

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// The campaigns of engine/campaign, kept as the JSON it hands over: the
// store does not need to know their shape. Writes that read first (status
// changes, updates) hold Lock("campaign", id).

// PutCampaign stores a campaign's JSON under its id.
func (s *Store) PutCampaign(id string, b []byte) error {
	return s.update(func(txn *badger.Txn) error { return txn.Set(nsCampaign.key(id), b) })
}

// Campaign returns a campaign's JSON, or ErrNotFound.
func (s *Store) Campaign(id string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(nsCampaign.key(id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	return out, err
}

// Campaigns calls fn with every campaign's id and JSON, in id order.
func (s *Store) Campaigns(fn func(id string, b []byte) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: nsCampaign.prefix(), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			b, err := it.Item().ValueCopy(nil)
			if err != nil {
				return fmt.Errorf("store: read campaign: %w", err)
			}
			if err := fn(string(it.Item().Key()[len(nsCampaign):]), b); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteCampaign removes a campaign; ErrNotFound if there is none.
func (s *Store) DeleteCampaign(id string) error {
	return s.update(func(txn *badger.Txn) error {
		if _, err := txn.Get(nsCampaign.key(id)); errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		return txn.Delete(nsCampaign.key(id))
	})
}
