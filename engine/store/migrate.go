package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// migrations bring the data up to date, in order. The schema version is the
// number of migrations applied; append, never edit or reorder.
var migrations = []func(txn *badger.Txn) error{
	// 1: the initial layout (keys.go). Nothing to convert.
	func(*badger.Txn) error { return nil },
}

// SchemaVersion is the version this binary writes.
func SchemaVersion() int { return len(migrations) }

func (s *Store) migrate() error {
	return s.update(func(txn *badger.Txn) error {
		var version uint32
		item, err := txn.Get(keySchema)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("store: read schema version: %w", err)
		default:
			err = item.Value(func(b []byte) error {
				if len(b) != 4 {
					return fmt.Errorf("store: schema version holds %d bytes", len(b))
				}
				version = binary.BigEndian.Uint32(b)
				return nil
			})
			if err != nil {
				return err
			}
		}
		if int(version) > len(migrations) {
			return fmt.Errorf("%w: schema %d, this binary knows up to %d", ErrTooNew, version, len(migrations))
		}
		for v := int(version); v < len(migrations); v++ {
			if err := migrations[v](txn); err != nil {
				return fmt.Errorf("store: migration %d: %w", v+1, err)
			}
		}
		return txn.Set(keySchema, binary.BigEndian.AppendUint32(nil, uint32(len(migrations))))
	})
}
