package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// ErrDiskFull means the data directory's file system has less free space
// than the configured minimum, or cannot be written at all: writes are
// refused (503) until it recovers, so that Badger never meets ENOSPC or an
// unwritable directory half-way through a write. Badger does not survive
// either: a write into its memory-mapped value log on a full disk is a
// SIGBUS, and a memtable it cannot create leaves it with a nil memtable
// that panics at the next read or write.
var ErrDiskFull = errors.New("store: the data directory is full or cannot be written")

// DiskError is ErrDiskFull with the reason, for logs, /healthz and pages.
type DiskError struct {
	Reason string
}

func (e *DiskError) Error() string { return "store: " + e.Reason }
func (e *DiskError) Unwrap() error { return ErrDiskFull }

// MinFreeFloor is the least free space writes ever go on with, whatever
// min_free says: what Badger may write at once without asking (a memtable
// flush of 16 MiB per memtable, three memtables, and compaction's new
// tables).
const MinFreeFloor = 64 << 20

// MinFreeToOpen is the least free space to open the store with (for
// reading, when under MinFreeFloor): what Badger writes when it opens and
// what the projections fold after a restart. Below it shoptrail does not
// start and says why.
const MinFreeToOpen = 32 << 20

// DiskOptions configures a DiskGuard.
type DiskOptions struct {
	Dir     string
	MinFree int64         // bytes; the smaller of this and 5 % of the file system is kept free (MinFreeFloor at least)
	Every   time.Duration // how often the loop checks free space and writability (default 500 ms)
	Logger  *slog.Logger
	// Statfs replaces syscall.Statfs (tests).
	Statfs func(dir string) (free, total uint64, err error)
}

// DiskStatus is the last check's result.
type DiskStatus struct {
	Free, Total, Need uint64
	Checked           time.Time
	Err               *DiskError // nil when writes are allowed
}

// DiskGuard watches the data directory's free space and writability. Check
// is cheap enough for every write request: it re-reads free space at most
// every 250 ms; the writability probe (create, write, fsync, remove a small
// file) runs in Run's loop, every 500 ms by default: with the directory
// unwritable, Badger's next memtable (after ~100 000 events, a few seconds
// at full load) would leave it to panic.
type DiskGuard struct {
	o      DiskOptions
	status atomic.Pointer[DiskStatus]

	mu          sync.Mutex // one refresh at a time
	lastProbeOK atomic.Bool
	probeErr    atomic.Pointer[string]
}

// NewDiskGuard checks once and returns the guard.
func NewDiskGuard(o DiskOptions) *DiskGuard {
	if o.Every <= 0 {
		o.Every = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Statfs == nil {
		o.Statfs = statfs
	}
	g := &DiskGuard{o: o}
	g.probe()
	g.refresh()
	return g
}

// need is the free space to keep on a file system of total bytes.
func (g *DiskGuard) need(total uint64) uint64 {
	if g.o.MinFree <= 0 {
		return 0 // the check is off
	}
	n := min(uint64(g.o.MinFree), total/20)
	return max(n, MinFreeFloor)
}

// refresh re-reads free space and updates the status.
func (g *DiskGuard) refresh() *DiskStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refreshLocked()
}

func (g *DiskGuard) refreshLocked() *DiskStatus {
	st := &DiskStatus{Checked: time.Now()}
	free, total, err := g.o.Statfs(g.o.Dir)
	st.Free, st.Total = free, total
	switch {
	case err != nil:
		st.Err = &DiskError{Reason: fmt.Sprintf("cannot read the free space of %s: %v", g.o.Dir, err)}
	case g.probeErr.Load() != nil:
		st.Err = &DiskError{Reason: *g.probeErr.Load()}
	default:
		st.Need = g.need(total)
		if free < st.Need {
			st.Err = &DiskError{Reason: fmt.Sprintf("the data directory %s has %s free, less than the %s kept free ([storage] min_free); writes are refused until space is freed",
				g.o.Dir, Bytes(free), Bytes(st.Need))}
		}
	}
	old := g.status.Swap(st)
	switch {
	case st.Err != nil && (old == nil || old.Err == nil || old.Err.Reason != st.Err.Reason):
		g.o.Logger.Error("writes refused", "reason", st.Err.Reason)
	case st.Err == nil && old != nil && old.Err != nil:
		g.o.Logger.Info("writes allowed again", "free", Bytes(free))
	}
	return st
}

// probe writes, syncs and removes a small file in the directory.
func (g *DiskGuard) probe() {
	path := filepath.Join(g.o.Dir, ".shoptrail-write-probe")
	err := func() error {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		_, werr := f.Write(make([]byte, 4096))
		serr := f.Sync()
		cerr := f.Close()
		return errors.Join(werr, serr, cerr, os.Remove(path))
	}()
	if err != nil {
		msg := fmt.Sprintf("the data directory %s cannot be written (%v); writes are refused until it can", g.o.Dir, err)
		g.probeErr.Store(&msg)
		return
	}
	g.probeErr.Store(nil)
}

// Check returns nil when writes may go ahead, a *DiskError (ErrDiskFull)
// when they must not.
func (g *DiskGuard) Check() error {
	st := g.status.Load()
	if time.Since(st.Checked) > 250*time.Millisecond && g.mu.TryLock() {
		// one caller re-reads; the others meanwhile use the last status
		st = g.refreshLocked()
		g.mu.Unlock()
	}
	if st.Err != nil {
		return st.Err
	}
	return nil
}

// CanOpen tells whether Badger may be opened at all: the directory can be
// written and has MinFreeToOpen free. Opening on a full disk would crash
// (SIGBUS) at the first write into a fresh memory-mapped file, at every
// restart; a directory short of min_free but above the floor opens, for
// reading, with writes refused.
func (g *DiskGuard) CanOpen() error {
	st := g.refresh()
	switch {
	case g.probeErr.Load() != nil:
		return st.Err // the probe's reason
	case g.o.MinFree <= 0 || (st.Total > 0 && st.Free >= MinFreeToOpen):
		return nil
	case st.Total == 0 && st.Err != nil:
		return st.Err // statfs failed
	}
	return &DiskError{Reason: fmt.Sprintf("the data directory %s has %s free; shoptrail needs at least %s to start (free some space, or move [storage] dir)",
		g.o.Dir, Bytes(st.Free), Bytes(MinFreeToOpen))}
}

// Status is the last check's result.
func (g *DiskGuard) Status() DiskStatus { return *g.status.Load() }

// Run probes writability and free space every Every until ctx ends.
func (g *DiskGuard) Run(ctx context.Context) {
	t := time.NewTicker(g.o.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.probe()
			g.refresh()
		}
	}
}

// Bytes writes n as "512 MiB".
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
