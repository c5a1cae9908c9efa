package project_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/identity"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
)

// dump returns every key and value a projection keeps.
func dump(t *testing.T, st *store.Store, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := st.Read(func(tx *store.Tx) error {
		return tx.Scan(store.ProjectionSpace(name), "", func(k string, v json.RawMessage) (bool, error) {
			out[k] = string(v)
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// While ingestion is busy, the eager projections fold with identity every
// moment and the others wait; when it is idle again, they catch up in runs
// of their own (with identities resolved, merges moved meanwhile) and end
// up holding what the eager one holds: the same counts per type and per
// profile, every anonymous profile merged into its user.
func TestTheFastLaneRunsAheadWhileIngestionIsBusy(t *testing.T) {
	st := enginetest.NewStore(t)
	var busy atomic.Bool
	busy.Store(true)
	fast := counter("fast", 1)
	fast.Eager = true
	r, err := project.New(st, identity.New(12*time.Hour).Projection(), []*project.Projection{counter("slow", 1), fast},
		project.Options{Logger: enginetest.Logger(t), Busy: busy.Load})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	for batch := range 20 {
		var evs []*model.Event
		for range 300 {
			n++
			ev := &model.Event{ID: fmt.Sprint("l", n), Type: model.PageView, Via: model.ViaAPI, AnonymousID: fmt.Sprint("b", n%97),
				SessionID: fmt.Sprint("s", n%97, "-", batch/5), Time: at.Add(time.Duration(n) * time.Second)}
			if n%41 == 0 { // a login merges the browser into its user, between runs
				ev.Type, ev.Email = model.Login, fmt.Sprintf("u%d@example.com", n%97%30)
			}
			ev.ReceivedAt = ev.Time
			evs = append(evs, ev)
		}
		if _, err := st.Append(evs, nil); err != nil {
			t.Fatal(err)
		}
		r.Committed(evs)
		time.Sleep(20 * time.Millisecond)
	}
	last, _ := st.LastSeq()
	deadline := time.Now().Add(20 * time.Second)
	for status(r, "fast").Checkpoint < last {
		if time.Now().After(deadline) {
			t.Fatalf("the fast lane did not keep up while busy: %+v", r.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s := status(r, "slow"); s.Checkpoint >= last || s.State != project.Live || s.Behind == 0 {
		t.Errorf("slow while busy: %+v; want live and behind", s)
	}
	if s := status(r, identity.Name); s.Checkpoint != last {
		t.Errorf("identity while busy: %+v", s)
	}

	busy.Store(false)
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	if err := r.Wait(wctx, last); err != nil {
		t.Fatalf("wait: %v %+v", err, r.Status())
	}
	if s := status(r, "slow"); s.Checkpoint != last || s.Behind != 0 || s.Folded != uint64(n) {
		t.Errorf("slow after the burst: %+v, want %d events folded", s, n)
	}
	slow, fastKeys := dump(t, st, "slow"), dump(t, st, "fast")
	if !maps.Equal(slow, fastKeys) {
		t.Errorf("the projection that caught up differs from the eager one:\n slow %v\n fast %v", slow, fastKeys)
	}
	if got := slow["type/"+model.Login]; got != fmt.Sprint(n/41) {
		t.Errorf("logins counted %s, want %d", got, n/41)
	}

	// folding together again: new events reach both in one run
	evs := []*model.Event{{ID: "after", Type: model.ProductView, Via: model.ViaAPI, AnonymousID: "b1", SessionID: "s1-9", Time: at, ReceivedAt: at}}
	if _, err := st.Append(evs, nil); err != nil {
		t.Fatal(err)
	}
	r.Committed(evs)
	if err := r.Wait(wctx, last+1); err != nil {
		t.Fatal(err)
	}
	if a, b := dump(t, st, "slow"), dump(t, st, "fast"); !maps.Equal(a, b) || a["type/"+model.ProductView] != "1" {
		t.Errorf("after the lanes joined: slow %v fast %v", a["type/product_view"], b["type/product_view"])
	}
}

// Events committed while the runner folds a backlog it reads from the log
// do not continue what it read ahead: it must not take them for the next
// ones (it once skipped the rest of the backlog that way, when a merge had
// ended a run before the end of what it read).
func TestEventsCommittedWhileFoldingABacklogSkipNothing(t *testing.T) {
	st := enginetest.NewStore(t)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	mk := func(i int) *model.Event {
		ev := &model.Event{ID: fmt.Sprint("k", i), Type: model.PageView, Via: model.ViaAPI, AnonymousID: fmt.Sprint("b", i/40),
			SessionID: fmt.Sprint("s", i/40), Time: at.Add(time.Duration(i) * time.Second), ReceivedAt: at}
		if i%400 == 20 { // a merge ends a run before the end of what was read
			ev.Email = fmt.Sprintf("u%d@example.com", i/40)
		}
		return ev
	}
	const backlog = 6_000
	for i := 0; i < backlog; i += 1000 {
		var evs []*model.Event
		for j := i; j < i+1000; j++ {
			evs = append(evs, mk(j))
		}
		if _, err := st.Append(evs, nil); err != nil {
			t.Fatal(err)
		}
	}
	r := start(t, st, nil, counter("toy", 1))
	for status(r.Runner, "toy").Checkpoint == 0 {
		time.Sleep(time.Millisecond)
	}
	// it is folding what it read ahead: one more event arrives
	n := backlog + 1
	evs := []*model.Event{mk(backlog)}
	if _, err := st.Append(evs, nil); err != nil {
		t.Fatal(err)
	}
	r.Committed(evs)
	r.wait(t)
	if got := count(t, st, "toy", "type/"+model.PageView); got != n {
		t.Errorf("folded %d page views of %d", got, n)
	}
}

// A backlog where every third event merges a browser into a known shopper
// folds in runs of one to three events (Split). While newer events keep
// being committed, the runner must fold what it read ahead instead of
// reading a whole chunk back from the log for every run: it once did, and
// folded 175 events a second (each run read 4 096 events to fold 3).
func TestABacklogOfMergesIsReadFromTheLogOnce(t *testing.T) {
	st := enginetest.NewStore(t)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	mk := func(i int) *model.Event {
		ev := &model.Event{ID: fmt.Sprint("m", i), Type: model.PageView, Via: model.ViaAPI, AnonymousID: fmt.Sprint("b", i),
			SessionID: fmt.Sprint("s", i), Time: at.Add(time.Duration(i) * time.Second), ReceivedAt: at}
		if i%3 == 0 {
			ev.Email = fmt.Sprintf("u%d@example.com", i)
		}
		return ev
	}
	const backlog = 6_000
	var evs []*model.Event
	for i := range backlog {
		evs = append(evs, mk(i))
	}
	if _, err := st.Append(evs, nil); err != nil {
		t.Fatal(err)
	}
	r := start(t, st, nil, counter("toy", 1))
	// newer events arrive while it folds the backlog: the runner keeps them,
	// and they do not continue what it read
	for i := backlog; i < backlog+200; i++ {
		tail := []*model.Event{mk(i)}
		if _, err := st.Append(tail, nil); err != nil {
			t.Fatal(err)
		}
		r.Committed(tail)
	}
	r.wait(t)
	const n = backlog + 200
	if got := count(t, st, "toy", "type/"+model.PageView); got != n {
		t.Errorf("folded %d page views of %d", got, n)
	}
	if reads := r.LogReads(); reads > 2*n {
		t.Errorf("read %d events back from the log to fold %d", reads, n)
	}
}
