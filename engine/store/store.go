// Package store keeps everything durable in Badger: the event log, API keys,
// settings and the projections folded from the log. The key layout is in
// keys.go, migrations in migrate.go.
package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Sentinel errors.
var (
	ErrNotFound = errors.New("store: not found")
	// ErrLocked means another process has the data directory open.
	ErrLocked = errors.New("store: the data directory is in use by another shoptrail process")
	// ErrTooNew means the data was written by a newer version of Shoptrail.
	ErrTooNew = errors.New("store: the data directory was written by a newer version of shoptrail")
)

// Options configures Open.
type Options struct {
	Dir        string
	SyncWrites bool // fsync every commit: survives power loss, not only a crash
	InMemory   bool // for tests that need no disk
	Logger     *slog.Logger
}

// Store is the Badger database.
type Store struct {
	db  *badger.DB
	log *slog.Logger

	locks    [lockStripes]sync.Mutex // see Lock
	appendMu sync.Mutex              // one appender at a time keeps seqs dense and ordered
	nextSeq  uint64

	gcStop chan struct{}
	gcDone chan struct{}

	closeMu sync.RWMutex // Close waits for running backups (Backup, Ping hold it to read)
	closed  bool

	// drops keeps writes and DropPrefix apart: while Badger drops a
	// prefix it refuses every write (ErrBlockedWrites), which answered
	// the events, API calls and sign-ins that arrived during a feed import
	// or a projection rebuild with a 500. Writes hold it to read while
	// they hand their entries to Badger; a drop holds it to write.
	drops sync.RWMutex
}

// badgerOptions are chosen from measurements on a 2-core machine (make
// bench; figures in the README's "Storage" section):
//   - a 16 MiB memtable instead of 64 MiB: flushes are 4× smaller, so the p99
//     of a commit does not jump to hundreds of milliseconds while one runs;
//     3 memtables let writes continue during a flush;
//   - 8 level-0 tables before compaction and 24 before writes stall: bursts
//     of batched events keep a p99 near 100 ms instead of stalling;
//   - values over 256 bytes (events, profiles, sessions, products) go to
//     the value log, written once; the LSM tree keeps keys and pointers, so
//     compaction moves far fewer bytes. Measured with 50-event batches:
//     99 000 events/s and a p99 of 54 ms, against 73 000–83 000 events/s
//     and 100–140 ms with values in the tree. Value-log GC (every 5
//     minutes) reclaims what rewritten profiles and sessions leave behind;
//   - no block compression: point reads (deduplication, projections) then
//     skip decompressing a block each; events are short and compress poorly
//     one block at a time anyway. 64 MiB of block cache and 32 MiB for
//     indices and bloom filters bound memory;
//   - no conflict detection: each key has one writer (the event log the
//     group committer, the projections the projection runner), and the
//     keys that requests read, change and write back (users, settings, API
//     keys) are serialised by Lock, so tracking every read of every
//     transaction would cost without protecting anything;
//   - 2 compactors for 2 cores, 128 MiB value-log files so GC can free them.
func badgerOptions(o Options) badger.Options {
	opts := badger.DefaultOptions(o.Dir).
		WithInMemory(o.InMemory).
		WithSyncWrites(o.SyncWrites).
		WithMemTableSize(16 << 20).
		WithNumMemtables(3).
		WithNumLevelZeroTables(8).
		WithNumLevelZeroTablesStall(24).
		WithValueThreshold(256).
		WithCompression(options.None).
		WithBlockCacheSize(64 << 20).
		WithIndexCacheSize(32 << 20).
		WithNumCompactors(2).
		WithValueLogFileSize(128 << 20).
		WithDetectConflicts(false).
		WithLogger(badgerLogger{o.Logger})
	if o.InMemory {
		opts.Dir, opts.ValueDir = "", ""
	}
	return opts
}

// Open opens (creating if needed) the database in o.Dir and migrates it.
func Open(o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	db, err := badger.Open(badgerOptions(o))
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("%w (%s)", ErrLocked, o.Dir)
		}
		return nil, fmt.Errorf("store: open %s: %w", o.Dir, err)
	}
	s := &Store{db: db, log: o.Logger, gcStop: make(chan struct{}), gcDone: make(chan struct{})}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	last, err := s.LastSeq()
	if err != nil {
		db.Close()
		return nil, err
	}
	s.nextSeq = last + 1
	go s.gcLoop(5 * time.Minute)
	return s, nil
}

// Close stops background work and closes the database.
func (s *Store) Close() error {
	s.closeMu.Lock()
	s.closed = true
	s.closeMu.Unlock()
	close(s.gcStop)
	<-s.gcDone
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// gcLoop reclaims value-log space: events and records over 256 bytes live
// in the value log (see badgerOptions), and rewritten profiles and sessions,
// erasures and dropped projections leave garbage there.
func (s *Store) gcLoop(every time.Duration) {
	defer close(s.gcDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.gcStop:
			return
		case <-t.C:
			for s.db.RunValueLogGC(0.5) == nil {
			}
		}
	}
}

// Compacting reports whether Badger has compaction work due: some level
// (level 0 by its number of tables) at or over its target. Compactions
// run in the background, long after the writes that made them due, so a
// measurement that starts while one is due pays for the loads before it;
// benchmarks wait for this to turn false.
func (s *Store) Compacting() bool {
	for _, l := range s.db.Levels() {
		if l.Adjusted >= 1 {
			return true
		}
	}
	return false
}

// LastSeq returns the seq of the newest event in the log, 0 if it is empty.
func (s *Store) LastSeq() (uint64, error) {
	var last uint64
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: nsEvent.prefix()})
		defer it.Close()
		it.Seek(eventKey(^uint64(0)))
		if it.Valid() {
			last = seqOfEventKey(it.Item().Key())
		}
		return nil
	})
	return last, err
}

const lockStripes = 256

// Lock serialises read-modify-write cycles on the named things (a user's
// email, a setting's name, ...): it returns once it holds every name and
// gives an unlock function. Conflict detection is off (see badgerOptions),
// so any code that reads a key, changes it and writes it back while other
// requests may do the same must hold its lock across the cycle. Names are
// striped over a fixed set of mutexes, taken in order, so that locking many
// at once cannot deadlock.
func (s *Store) Lock(kind string, names ...string) (unlock func()) {
	if len(names) == 0 {
		names = []string{""}
	}
	var take [lockStripes]bool
	for _, n := range names {
		h := fnv.New32a()
		h.Write([]byte(kind))
		h.Write([]byte{0})
		h.Write([]byte(n))
		take[h.Sum32()%lockStripes] = true
	}
	for i := range take {
		if take[i] {
			s.locks[i].Lock()
		}
	}
	return func() {
		for i := range take {
			if take[i] {
				s.locks[i].Unlock()
			}
		}
	}
}

func getUint64(txn *badger.Txn, k []byte) (uint64, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = item.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("store: %q holds %d bytes, want 8", k, len(b))
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	})
	return v, err
}

func uint64Bytes(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// update runs fn in a read-write transaction. Conflict detection is off
// (see badgerOptions and Lock), so there is nothing to retry. A drop
// waits for the commit, not for fn: fn may write through update again.
func (s *Store) update(fn func(txn *badger.Txn) error) error {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	if err := fn(txn); err != nil {
		return err
	}
	defer s.writing()()
	return txn.Commit()
}

// writing holds off DropPrefix until the returned func is called.
func (s *Store) writing() func() {
	s.drops.RLock()
	return s.drops.RUnlock
}

// dropPrefix drops keys once the writes being committed are in, and keeps
// new ones waiting until it is done (see Store.drops).
func (s *Store) dropPrefix(prefixes ...[]byte) error {
	s.drops.Lock()
	defer s.drops.Unlock()
	return s.db.DropPrefix(prefixes...)
}

// batch is a Badger WriteBatch whose writes wait for a running drop: a
// batch commits as it fills, inside Set and Delete.
type batch struct {
	s  *Store
	wb *badger.WriteBatch
}

func (s *Store) newBatch() *batch { return &batch{s: s, wb: s.db.NewWriteBatch()} }

func (b *batch) Set(k, v []byte) error {
	defer b.s.writing()()
	return b.wb.Set(k, v)
}

func (b *batch) SetEntry(e *badger.Entry) error {
	defer b.s.writing()()
	return b.wb.SetEntry(e)
}

func (b *batch) Delete(k []byte) error {
	defer b.s.writing()()
	return b.wb.Delete(k)
}

func (b *batch) Flush() error {
	defer b.s.writing()()
	return b.wb.Flush()
}

func (b *batch) Cancel() { b.wb.Cancel() }

// uint64OrZero reads a counter-like key: 0 when it was never written.
func (s *Store) uint64OrZero(k []byte) (uint64, error) {
	var v uint64
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		v, err = getUint64(txn, k)
		if errors.Is(err, ErrNotFound) {
			v, err = 0, nil
		}
		return err
	})
	return v, err
}

// badgerLogger sends Badger's log to slog; its INFO chatter becomes DEBUG.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) { b.log(slog.LevelError, f, a...) }
func (b badgerLogger) Warningf(f string, a ...any) {
	b.log(slog.LevelWarn, f, a...)
}
func (b badgerLogger) Infof(f string, a ...any)  { b.log(slog.LevelDebug, f, a...) }
func (b badgerLogger) Debugf(f string, a ...any) { b.log(slog.LevelDebug-4, f, a...) }

func (b badgerLogger) log(level slog.Level, f string, a ...any) {
	if b.l == nil || !b.l.Enabled(context.Background(), level) {
		return
	}
	b.l.Log(context.Background(), level, strings.TrimSpace(fmt.Sprintf(f, a...)))
}
