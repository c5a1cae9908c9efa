package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// A migration brings the data from one schema version to the next. Each
// runs in its own transaction (tx), or, for data too large for one, in
// idempotent steps through the migrator (a crash half-way repeats what was
// not done; the schema version moves only when the whole migration is done).
// Migrations may drop what projections derived from the log: the projection
// runner then folds the log again (see engine/project).
type migration func(m *migrator) error

// migrations bring the data up to date, in order. The schema version is the
// number of migrations applied; append, never edit or reorder.
var migrations = []migration{
	// 1: the initial layout. Nothing to convert.
	func(*migrator) error { return nil },
	// 2: readable namespaces instead of one-byte prefixes (keys.go); event
	// ids remembered apart for browsers and for the shop; projections
	// folded again, each with its own checkpoint.
	migrateNamespaces,
}

// SchemaVersion is the version this binary writes.
func SchemaVersion() int { return len(migrations) }

// legacySchemaKey is where schema 1 kept its version.
var legacySchemaKey = []byte("m/schema")

func (s *Store) migrate() error {
	version, err := s.schemaVersion()
	if err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("%w: schema %d, this binary knows up to %d", ErrTooNew, version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		if v > 0 {
			s.log.Info("migrating the data", "from_schema", v, "to_schema", v+1)
		}
		if err := migrations[v](&migrator{s: s}); err != nil {
			return fmt.Errorf("store: migration %d: %w", v+1, err)
		}
		if err := s.update(func(txn *badger.Txn) error {
			return txn.Set(keySchema, binary.BigEndian.AppendUint32(nil, uint32(v+1)))
		}); err != nil {
			return fmt.Errorf("store: migration %d: %w", v+1, err)
		}
	}
	return nil
}

func (s *Store) schemaVersion() (int, error) {
	var version uint32
	err := s.db.View(func(txn *badger.Txn) error {
		for _, k := range [][]byte{keySchema, legacySchemaKey} {
			item, err := txn.Get(k)
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			return item.Value(func(b []byte) error {
				if len(b) != 4 {
					return fmt.Errorf("store: schema version holds %d bytes", len(b))
				}
				version = binary.BigEndian.Uint32(b)
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: read schema version: %w", err)
	}
	return int(version), nil
}

// migrator runs the steps of one migration.
type migrator struct{ s *Store }

// tx runs fn in one transaction.
func (m *migrator) tx(fn func(txn *badger.Txn) error) error { return m.s.update(fn) }

// moveChunk bounds the keys one step of move rewrites.
const moveChunk = 2000

// move rewrites every key under from: rename returns its new key (nil drops
// it) and may change the value. Each step writes the new keys and deletes
// the old ones in one transaction, so a crash leaves every key either moved
// or still to move, and running move again finishes the work. An entry's
// expiry is kept.
func (m *migrator) move(from []byte, rename func(txn *badger.Txn, k, v []byte) (newKey, newValue []byte, err error)) error {
	for {
		n := 0
		err := m.tx(func(txn *badger.Txn) error {
			type entry struct {
				k, v    []byte
				expires uint64
			}
			var batch []entry
			it := txn.NewIterator(badger.IteratorOptions{Prefix: from, PrefetchValues: true})
			for it.Rewind(); it.Valid() && len(batch) < moveChunk; it.Next() {
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					it.Close()
					return err
				}
				batch = append(batch, entry{it.Item().KeyCopy(nil), v, it.Item().ExpiresAt()})
			}
			it.Close()
			n = len(batch)
			for _, e := range batch {
				nk, nv, err := rename(txn, e.k, e.v)
				if err != nil {
					return fmt.Errorf("key %q: %w", e.k, err)
				}
				if err := txn.Delete(e.k); err != nil {
					return err
				}
				if nk == nil {
					continue
				}
				ne := badger.NewEntry(nk, nv)
				if e.expires > 0 {
					ttl := time.Until(time.Unix(int64(e.expires), 0))
					if ttl <= 0 {
						continue
					}
					ne = ne.WithTTL(ttl)
				}
				if err := txn.SetEntry(ne); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || n < moveChunk {
			return err
		}
	}
}

// migrateNamespaces is migration 2.
func migrateNamespaces(m *migrator) error {
	keep := func(to ns) func(*badger.Txn, []byte, []byte) ([]byte, []byte, error) {
		return func(_ *badger.Txn, k, v []byte) ([]byte, []byte, error) {
			return append([]byte(to), k[2:]...), v, nil
		}
	}
	drop := func(*badger.Txn, []byte, []byte) ([]byte, []byte, error) { return nil, nil, nil }
	steps := []struct {
		from   string
		rename func(*badger.Txn, []byte, []byte) ([]byte, []byte, error)
	}{
		{"m/setting/", func(_ *badger.Txn, k, v []byte) ([]byte, []byte, error) {
			return nsSetting.key(string(k[len("m/setting/"):])), v, nil
		}},
		{"m/admin", func(_ *badger.Txn, _, v []byte) ([]byte, []byte, error) { return keyAdmin, v, nil }},
		{"m/catalogue", func(_ *badger.Txn, _, v []byte) ([]byte, []byte, error) { return keyCatalogue, v, nil }},
		{"m/feed/report", func(_ *badger.Txn, _, v []byte) ([]byte, []byte, error) { return keyFeedReport, v, nil }},
		{"m/checkpoint", drop},
		{"e/", keep(nsEvent)},
		// dedup keys: the event they name says where it came from
		{"i/", func(txn *badger.Txn, k, v []byte) ([]byte, []byte, error) {
			if len(v) != 8 {
				return nil, nil, nil
			}
			item, err := txn.Get(eventKey(binary.BigEndian.Uint64(v)))
			if errors.Is(err, badger.ErrKeyNotFound) {
				return nil, nil, nil
			}
			if err != nil {
				return nil, nil, err
			}
			ev, err := decodeEvent(item)
			if err != nil {
				return nil, nil, err
			}
			return dedupKey(ev.Via, string(k[2:])), v, nil
		}},
		{"k/", keep(nsAPIKey)},
		{"u/", keep(nsUser)},
		{"A/", keep(nsAdminSess)},
		{"g/", keep(nsProduct)},
	}
	for _, st := range steps {
		if err := m.move([]byte(st.from), st.rename); err != nil {
			return fmt.Errorf("move %s: %w", st.from, err)
		}
	}
	// the projections are folded again from the log
	for _, p := range []string{"p/", "a/", "x/", "y/", "s/", "c/", "o/", "q/", "t/", "v/", "b/", "n/", "r/"} {
		if err := m.move([]byte(p), drop); err != nil {
			return fmt.Errorf("drop %s: %w", p, err)
		}
	}
	return m.tx(func(txn *badger.Txn) error { return txn.Delete(legacySchemaKey) })
}
