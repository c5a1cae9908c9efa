package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/shoptrail/shoptrail/engine/model"
)

// PutAPIKey stores a new API key under its hash.
func (s *Store) PutAPIKey(k model.APIKey) error {
	defer s.Lock("apikeys")()
	return s.putAPIKey(k)
}

func (s *Store) putAPIKey(k model.APIKey) error {
	b, err := json.Marshal(k)
	if err != nil {
		return err
	}
	return s.update(func(txn *badger.Txn) error { return txn.Set(nsAPIKey.key(string(k.Hash)), b) })
}

// APIKeyByHash returns the key whose secret hashes to hash, or ErrNotFound.
func (s *Store) APIKeyByHash(hash []byte) (model.APIKey, error) {
	var k model.APIKey
	err := s.Read(func(tx *Tx) error { return tx.getJSON(nsAPIKey.key(string(hash)), &k) })
	return k, err
}

// APIKeys lists every key, revoked ones included, oldest first.
func (s *Store) APIKeys() ([]model.APIKey, error) {
	var out []model.APIKey
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: nsAPIKey.prefix(), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var k model.APIKey
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &k) }); err != nil {
				return fmt.Errorf("store: decode api key: %w", err)
			}
			out = append(out, k)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

// TouchAPIKey records that the key with hash was used at t.
func (s *Store) TouchAPIKey(hash []byte, t time.Time) error {
	defer s.Lock("apikeys")()
	k, err := s.APIKeyByHash(hash)
	if err != nil {
		return err
	}
	k.LastUsed = t.UTC()
	return s.putAPIKey(k)
}

// RevokeAPIKey revokes the key with the given id (or prefix).
func (s *Store) RevokeAPIKey(idOrPrefix string) (model.APIKey, error) {
	// Key writes are read-modify-write and Badger runs here without
	// conflict detection: one lock serialises them.
	defer s.Lock("apikeys")()
	keys, err := s.APIKeys()
	if err != nil {
		return model.APIKey{}, err
	}
	for _, k := range keys {
		if k.ID == idOrPrefix || k.Prefix == idOrPrefix {
			k.Revoked = true
			return k, s.putAPIKey(k)
		}
	}
	return model.APIKey{}, fmt.Errorf("api key %q: %w", idOrPrefix, ErrNotFound)
}
