package project_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
)

// A projection's Tick runs at start, again at once while it has more to
// do, after the wait it asked for, and after Poke; its writes commit; an
// error sets that projection aside while the others go on; folds say
// whether they are a backfill.
func TestTick(t *testing.T) {
	st := enginetest.NewStore(t)
	sp := store.ProjectionSpace("ticker")
	var calls, backfills, lives atomic.Int64
	var fail atomic.Bool
	var waitNext atomic.Int64 // nanoseconds
	tick := &project.Projection{Name: "ticker", Version: 1, Owns: []store.Space{sp},
		Fold: func(r *project.Run) error {
			if r.Backfill {
				backfills.Add(int64(len(r.Events)))
			} else {
				lives.Add(int64(len(r.Events)))
			}
			return nil
		},
		Tick: func(r *project.Run) (bool, time.Duration, error) {
			n := calls.Add(1)
			if fail.Load() {
				return false, 0, errors.New("tick broke")
			}
			if err := r.Tx.Set(sp, "ticks", n); err != nil {
				return false, 0, err
			}
			return n < 3, time.Duration(waitNext.Load()), nil // two more at once, then as asked
		}}
	r := start(t, st, nil, counter("other", 1), tick)
	eventually(t, "three ticks at start", func() bool { return calls.Load() == 3 })
	time.Sleep(100 * time.Millisecond)
	if calls.Load() != 3 {
		t.Fatalf("%d ticks without a wait or a poke", calls.Load())
	}
	r.Poke()
	eventually(t, "a tick after Poke", func() bool { return calls.Load() == 4 })
	waitNext.Store(int64(20 * time.Millisecond))
	r.Poke()
	eventually(t, "ticks after their wait", func() bool { return calls.Load() >= 8 })
	waitNext.Store(0)
	var stored int64
	st.Read(func(tx *store.Tx) error { return tx.Get(sp, "ticks", &stored) })
	if stored < 4 {
		t.Fatalf("stored %d ticks", stored)
	}
	r.appendEvents(t, 5, "page_view")
	r.wait(t)
	if lives.Load() != 5 || backfills.Load() != 0 {
		t.Fatalf("live %d, backfill %d", lives.Load(), backfills.Load())
	}
	fail.Store(true)
	r.Poke()
	eventually(t, "the failed tick sets the projection aside", func() bool {
		for _, s := range r.Status() {
			if s.Name == "ticker" {
				return s.State == project.Failed && s.Error == "tick: tick broke"
			}
		}
		return false
	})
	r.appendEvents(t, 3, "page_view")
	r.wait(t)
	for _, s := range r.Status() {
		if s.Name == "other" && (s.State != project.Live || s.Checkpoint != 8) {
			t.Fatalf("the other projection: %+v", s)
		}
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out: %s", what)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// A projection added to a log that others folded catches up in backfill
// runs (Run.Backfill), then folds new events live.
func TestRunSaysBackfill(t *testing.T) {
	st := enginetest.NewStore(t)
	first := start(t, st, nil, counter("other", 1))
	first.appendEvents(t, 20, "page_view")
	first.wait(t)
	first.stop()
	var backfills, lives atomic.Int64
	late := &project.Projection{Name: "late", Version: 1, Fold: func(r *project.Run) error {
		if r.Backfill {
			backfills.Add(int64(len(r.Events)))
		} else {
			lives.Add(int64(len(r.Events)))
		}
		return nil
	}}
	r := start(t, st, nil, counter("other", 1), late)
	eventually(t, "the late projection caught up", func() bool { return backfills.Load() == 20 })
	eventually(t, "the late projection is live", func() bool {
		for _, s := range r.Status() {
			if s.Name == "late" {
				return s.State == project.Live
			}
		}
		return false
	})
	r.appendEvents(t, 4, "page_view")
	r.wait(t)
	if backfills.Load() != 20 || lives.Load() != 4 {
		t.Fatalf("backfill %d, live %d", backfills.Load(), lives.Load())
	}
}
