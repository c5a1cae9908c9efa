package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Tx is a transaction over the projections, for the code that folds the
// event log (engine/project and the projections). A projection's changes and
// its new checkpoint commit together or not at all.
type Tx struct {
	txn *badger.Txn
	// wb, when set, takes the writes instead of txn: an erasure reads a
	// snapshot and deletes more than one transaction can hold.
	wb      *batch
	deleted int // events deleted from the log
}

// ErrTooBig means a transaction holds more than Badger can commit at once.
var ErrTooBig = errors.New("store: transaction too big")

// Project runs fn in one read-write transaction. ErrTooBig means the
// transaction grew past Badger's limit: fold fewer events per call.
func (s *Store) Project(fn func(tx *Tx) error) error {
	err := s.update(func(txn *badger.Txn) error { return fn(&Tx{txn: txn}) })
	if errors.Is(err, badger.ErrTxnTooBig) {
		return ErrTooBig
	}
	return err
}

// Read runs fn in a read-only transaction: a consistent snapshot. Writing
// through tx fails.
func (s *Store) Read(fn func(tx *Tx) error) error {
	return s.db.View(func(txn *badger.Txn) error { return fn(&Tx{txn: txn}) })
}

// Erase runs fn over a snapshot and applies what it deletes in batches, so
// that erasing a profile with a long history fits no transaction limit. The
// caller must keep the projections from writing meanwhile (engine/project
// runs it between folds). It returns how many events fn deleted from the log.
func (s *Store) Erase(fn func(tx *Tx) error) (events int, err error) {
	wb := s.newBatch()
	defer wb.Cancel()
	tx := &Tx{wb: wb}
	err = s.db.View(func(txn *badger.Txn) error {
		tx.txn = txn
		return fn(tx)
	})
	if err == nil {
		err = wb.Flush()
	}
	if err != nil {
		return 0, fmt.Errorf("store: erase: %w", err)
	}
	return tx.deleted, nil
}

func (tx *Tx) set(k, v []byte) error {
	if tx.wb != nil {
		return tx.wb.Set(k, v)
	}
	return tx.txn.Set(k, v)
}

func (tx *Tx) delete(k []byte) error {
	if tx.wb != nil {
		return tx.wb.Delete(k)
	}
	return tx.txn.Delete(k)
}

// ProjectionState is what the projection runner keeps about a projection.
type ProjectionState struct {
	Version    uint32
	Checkpoint uint64 // the seq of the last event folded
}

// ProjectionState returns the state of a projection; the zero state if it
// never ran.
func (tx *Tx) ProjectionState(name string) (ProjectionState, error) {
	var st ProjectionState
	item, err := tx.txn.Get(nsProjection.key(name))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	err = item.Value(func(b []byte) error {
		if len(b) != 12 {
			return fmt.Errorf("store: projection %s: state holds %d bytes", name, len(b))
		}
		st.Version, st.Checkpoint = binary.BigEndian.Uint32(b), binary.BigEndian.Uint64(b[4:])
		return nil
	})
	return st, err
}

// SetProjectionState records a projection's version and checkpoint.
func (tx *Tx) SetProjectionState(name string, st ProjectionState) error {
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 12), st.Version)
	return tx.set(nsProjection.key(name), binary.BigEndian.AppendUint64(b, st.Checkpoint))
}

// ProjectionState returns the state of a projection outside a fold.
func (s *Store) ProjectionState(name string) (st ProjectionState, err error) {
	err = s.Read(func(tx *Tx) error {
		st, err = tx.ProjectionState(name)
		return err
	})
	return st, err
}

// DropProjection deletes what a projection keeps and its state, so that it
// folds the log again from the start. The projection must not be running.
func (s *Store) DropProjection(name string, spaces ...Space) error {
	pfx := make([][]byte, 0, len(spaces))
	for _, sp := range spaces {
		pfx = append(pfx, []byte(sp.prefix))
	}
	if len(pfx) > 0 {
		if err := s.dropPrefix(pfx...); err != nil {
			return fmt.Errorf("store: drop projection %s: %w", name, err)
		}
		// DropPrefix leaves no deletions an incremental backup could
		// carry: this key's version makes such a backup refuse (Backup)
		if err := s.update(func(txn *badger.Txn) error { return txn.Set(keyDropped, []byte(name)) }); err != nil {
			return err
		}
	}
	return s.update(func(txn *badger.Txn) error { return txn.Delete(nsProjection.key(name)) })
}

// Get reads a key of a projection's space into v (JSON), or ErrNotFound.
func (tx *Tx) Get(sp Space, k string, v any) error { return tx.getJSON(sp.key(k), v) }

// Set stores v (JSON) under a key of a projection's space.
func (tx *Tx) Set(sp Space, k string, v any) error { return tx.setJSON(sp.key(k), v) }

// Delete removes a key of a projection's space.
func (tx *Tx) Delete(sp Space, k string) error { return tx.delete(sp.key(k)) }

// Scan visits the keys of a projection's space that start with prefix, in
// key order, with their JSON values; fn returns false to stop.
func (tx *Tx) Scan(sp Space, prefix string, fn func(k string, v json.RawMessage) (bool, error)) error {
	pfx := sp.key(prefix)
	it := tx.txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		more, err := fn(string(it.Item().Key()[len(sp.prefix):]), v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (tx *Tx) getJSON(k []byte, v any) error {
	item, err := tx.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}

func (tx *Tx) setJSON(k []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.set(k, b)
}

func (tx *Tx) getString(k []byte) (string, error) {
	item, err := tx.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", err
	}
	b, err := item.ValueCopy(nil)
	return string(b), err
}

// scanKeys visits the keys under pfx, without values.
func (tx *Tx) scanKeys(pfx []byte, fn func(k []byte) error) error {
	it := tx.txn.NewIterator(badger.IteratorOptions{Prefix: pfx})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if err := fn(it.Item().KeyCopy(nil)); err != nil {
			return err
		}
	}
	return nil
}
