package store

import (
	"encoding/json"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// SpaceMail is engine/mail's space: the queue, suppressions, tracked links
// and SNS message ids (layout in keys.go). It belongs to no projection: a
// rebuild leaves it alone.
var SpaceMail = Space{"mail/"}

// Write runs fn in one read-write transaction, for state that is not a
// projection (engine/mail). Badger does not detect conflicts here (see
// badgerOptions): callers serialise read-modify-writes of a key with Lock.
func (s *Store) Write(fn func(tx *Tx) error) error { return s.Project(fn) }

// SetTTL stores v (JSON) under a key of sp that expires after ttl.
func (tx *Tx) SetTTL(sp Space, k string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	e := badger.NewEntry(sp.key(k), b).WithTTL(ttl)
	if tx.wb != nil { // an erasure (Store.Erase)
		return tx.wb.SetEntry(e)
	}
	return tx.txn.SetEntry(e)
}

// Has reports whether a key of sp exists.
func (tx *Tx) Has(sp Space, k string) (bool, error) {
	_, err := tx.txn.Get(sp.key(k))
	if err == badger.ErrKeyNotFound {
		return false, nil
	}
	return err == nil, err
}

// ScanFrom visits the keys of sp that start with prefix, from the key
// after (exclusive; "" : the first), in key order or reversed; fn returns
// false to stop. With values false, fn gets no values (cheaper).
func (tx *Tx) ScanFrom(sp Space, prefix, after string, reverse, values bool, fn func(k string, v json.RawMessage) (bool, error)) error {
	pfx := sp.key(prefix)
	it := tx.txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: values, PrefetchSize: 64, Reverse: reverse})
	defer it.Close()
	switch {
	case after != "":
		it.Seek(sp.key(after))
		if it.Valid() && string(it.Item().Key()) == string(sp.key(after)) {
			it.Next()
		}
	case reverse:
		it.Seek(append(append([]byte{}, pfx...), 0xff))
	default:
		it.Rewind()
	}
	for ; it.Valid(); it.Next() {
		var v []byte
		if values {
			var err error
			if v, err = it.Item().ValueCopy(nil); err != nil {
				return err
			}
		}
		more, err := fn(string(it.Item().Key()[len(sp.prefix):]), v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}
