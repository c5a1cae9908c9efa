package store

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDiskGuardThresholds(t *testing.T) {
	const GiB, MiB = 1 << 30, 1 << 20
	var free, total atomic.Uint64
	fake := func(string) (uint64, uint64, error) { return free.Load(), total.Load(), nil }
	for _, tt := range []struct {
		name              string
		minFree           int64
		free, total, need uint64
	}{
		{"big disk: min_free", 1 * GiB, 2 * GiB, 100 * GiB, 1 * GiB},
		{"small disk: 5 %", 1 * GiB, 1 * GiB, 10 * GiB, 512 * MiB},
		{"tiny disk: the floor", 1 * GiB, 100 * MiB, 256 * MiB, MinFreeFloor},
		{"min_free under the floor", 1 * MiB, 100 * MiB, 100 * GiB, MinFreeFloor},
	} {
		t.Run(tt.name, func(t *testing.T) {
			free.Store(tt.free)
			total.Store(tt.total)
			g := NewDiskGuard(DiskOptions{Dir: t.TempDir(), MinFree: tt.minFree, Statfs: fake})
			if st := g.Status(); st.Need != tt.need {
				t.Fatalf("need %d, want %d", st.Need, tt.need)
			}
			if err := g.Check(); err != nil {
				t.Fatalf("above the threshold: %v", err)
			}
			free.Store(tt.need - 1)
			time.Sleep(300 * time.Millisecond) // Check re-reads after 250 ms
			var de *DiskError
			if err := g.Check(); !errors.Is(err, ErrDiskFull) || !errors.As(err, &de) || de.Reason == "" {
				t.Fatalf("below the threshold: %v", err)
			}
			free.Store(tt.need)
			time.Sleep(300 * time.Millisecond)
			if err := g.Check(); err != nil {
				t.Fatalf("space freed: %v", err)
			}
		})
	}
	free.Store(0)
	if g := NewDiskGuard(DiskOptions{Dir: t.TempDir(), MinFree: 0, Statfs: fake}); g.Check() != nil || g.CanOpen() != nil {
		t.Error("min_free 0 turns the check off")
	}
}

func TestDiskGuardCanOpen(t *testing.T) {
	const MiB = 1 << 20
	var free atomic.Uint64
	fake := func(string) (uint64, uint64, error) { return free.Load(), 1 << 40, nil }
	free.Store(MinFreeToOpen - 1)
	g := NewDiskGuard(DiskOptions{Dir: t.TempDir(), MinFree: 1 << 30, Statfs: fake})
	if err := g.CanOpen(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("under the floor: %v", err)
	}
	// enough to open but under the floor: it opens, for reading
	free.Store(MinFreeToOpen + MiB)
	if err := g.CanOpen(); err != nil {
		t.Fatalf("enough to open: %v", err)
	}
	if g.Check() == nil {
		t.Fatal("writes must still be refused under min_free")
	}
	// a directory that does not exist cannot be written
	g = NewDiskGuard(DiskOptions{Dir: t.TempDir() + "/missing", MinFree: 1 << 30, Statfs: fake})
	if err := g.CanOpen(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("missing directory: %v", err)
	}
}

// TestDiskGuardConcurrentChecks runs Check from many goroutines (with -race).
func TestDiskGuardConcurrentChecks(t *testing.T) {
	var n atomic.Int64
	fake := func(string) (uint64, uint64, error) { n.Add(1); return 10 << 30, 100 << 30, nil }
	g := NewDiskGuard(DiskOptions{Dir: t.TempDir(), MinFree: 1 << 30, Statfs: fake})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 2000 {
				if err := g.Check(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n.Load() > 100 {
		t.Errorf("%d statfs calls for 32 000 checks", n.Load())
	}
}
