package project_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/identity"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
)

// running is a runner folding a store until stop.
type running struct {
	*project.Runner
	st   *store.Store
	stop func()
}

func start(t *testing.T, st *store.Store, log *slog.Logger, others ...*project.Projection) *running {
	t.Helper()
	if log == nil {
		log = enginetest.Logger(t)
	}
	r, err := project.New(st, identity.New(12*time.Hour).Projection(), others, project.Options{Logger: log, ProgressEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return &running{Runner: r, st: st, stop: stop}
}

var seq int

// appendEvents stores n page views of anonymous browsers b0..b9 and hands
// them to the runner.
func (r *running) appendEvents(t *testing.T, n int, typ string) {
	t.Helper()
	evs := make([]*model.Event, n)
	for i := range evs {
		seq++
		at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Second)
		evs[i] = &model.Event{ID: fmt.Sprint("e", seq), Type: typ, Via: model.ViaAPI, Time: at, ReceivedAt: at,
			AnonymousID: fmt.Sprint("b", seq%10), SessionID: fmt.Sprint("s", seq%10)}
	}
	if _, err := r.st.Append(evs, nil); err != nil {
		t.Fatal(err)
	}
	r.Committed(evs)
}

func (r *running) wait(t *testing.T) {
	t.Helper()
	last, _ := r.st.LastSeq()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Wait(ctx, last); err != nil {
		t.Fatal(err)
	}
}

func status(r *project.Runner, name string) project.Status {
	for _, s := range r.Status() {
		if s.Name == name {
			return s
		}
	}
	return project.Status{}
}

// waitState waits until a projection is in state with every event folded.
func waitState(t *testing.T, r *running, name string, state project.State) project.Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := status(r.Runner, name)
		last, _ := r.st.LastSeq()
		if s.State == state && (state == project.Failed || s.Checkpoint == last) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %+v, want %s at seq %d", name, s, state, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func count(t *testing.T, st *store.Store, name, key string) int {
	t.Helper()
	var n int
	err := st.Read(func(tx *store.Tx) error { return tx.Get(store.ProjectionSpace(name), key, &n) })
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return n
}

func TestANewProjectionBackfillsWhileEventsKeepArriving(t *testing.T) {
	st := enginetest.NewStore(t)
	first := start(t, st, nil)
	for range 5 {
		first.appendEvents(t, 4000, model.PageView)
	}
	first.wait(t)
	first.stop()

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	r := start(t, st, log, counter("toy", 1))
	// new events keep arriving while the toy catches up
	for range 10 {
		r.appendEvents(t, 500, model.ProductView)
		time.Sleep(2 * time.Millisecond)
	}
	s := waitState(t, r, "toy", project.Live)
	if s.Behind != 0 {
		t.Errorf("toy %+v", s)
	}
	r.appendEvents(t, 100, "custom")
	r.wait(t)
	if id := status(r.Runner, identity.Name); id.State != project.Live || id.Checkpoint != 25_100 {
		t.Errorf("identity %+v", id)
	}
	for typ, want := range map[string]int{model.PageView: 20_000, model.ProductView: 5000, "custom": 100} {
		if got := count(t, st, "toy", "type/"+typ); got != want {
			t.Errorf("toy counted %d %s, want %d", got, typ, want)
		}
	}
	// the backfill saw the profile the identity stage found for each event
	if got := count(t, st, "toy", "profile/"+model.AnonymousProfileID("b3")); got != 2510 {
		t.Errorf("profile b3: %d events, want 2510", got)
	}
	if !strings.Contains(logs.String(), "projection backfill") || !strings.Contains(logs.String(), "events_per_s") ||
		!strings.Contains(logs.String(), "projection caught up") {
		t.Errorf("no progress in the log:\n%s", logs.String())
	}
}

func TestAFailingProjectionStopsAloneAndTheOthersGoOn(t *testing.T) {
	st := enginetest.NewStore(t)
	broken := counter("broken", 1)
	fold := broken.Fold
	broken.Fold = func(r *project.Run) error {
		for _, ev := range r.Events {
			if ev.Type == "boom" {
				return errors.New("cannot fold boom")
			}
		}
		return fold(r)
	}
	panicky := counter("panicky", 1)
	panicky.Fold = func(r *project.Run) error {
		for _, ev := range r.Events {
			if ev.Type == "boom" {
				var m map[string]int
				m["x"]++ // a bug
			}
		}
		return nil
	}
	r := start(t, st, nil, broken, panicky, counter("healthy", 1))
	r.appendEvents(t, 10, model.PageView)
	r.wait(t)
	r.appendEvents(t, 1, "boom")
	r.appendEvents(t, 10, model.PageView)
	r.wait(t)
	if s := waitState(t, r, "broken", project.Failed); !strings.Contains(s.Error, "cannot fold boom") || s.Checkpoint != 10 || s.RetryAt.IsZero() {
		t.Errorf("broken %+v", s)
	}
	if s := waitState(t, r, "panicky", project.Failed); !strings.Contains(s.Error, "panicked") {
		t.Errorf("panicky %+v", s)
	}
	if s := waitState(t, r, "healthy", project.Live); s.Checkpoint != 21 {
		t.Errorf("healthy %+v", s)
	}
	if got := count(t, st, "healthy", "type/"+model.PageView); got != 20 {
		t.Errorf("healthy counted %d page views", got)
	}
	if got := count(t, st, "broken", "type/"+model.PageView); got != 10 {
		t.Errorf("broken counted %d page views, want the 10 before the failure", got)
	}
}

func TestANewVersionIsFoldedAgainAndRebuildDropsOne(t *testing.T) {
	st := enginetest.NewStore(t)
	r := start(t, st, nil, counter("toy", 1), counter("other", 1))
	r.appendEvents(t, 50, model.PageView)
	r.wait(t)
	waitState(t, r, "toy", project.Live)
	r.stop()
	// version 2 counts from scratch: nothing is counted twice
	r = start(t, st, nil, counter("toy", 2), counter("other", 1))
	waitState(t, r, "toy", project.Live)
	if got := count(t, st, "toy", "type/"+model.PageView); got != 50 {
		t.Errorf("toy v2 counted %d page views, want 50", got)
	}
	r.stop()
	// two projections catch up one after the other, with no new event to
	// wake the runner
	r = start(t, st, nil, counter("toy", 3), counter("other", 2))
	waitState(t, r, "toy", project.Live)
	waitState(t, r, "other", project.Live)
	r.stop()
	// dropping one projection leaves the others alone
	if err := project.Drop(st, counter("other", 1)); err != nil {
		t.Fatal(err)
	}
	if got := count(t, st, "other", "type/"+model.PageView); got != 0 {
		t.Fatalf("dropped, still %d", got)
	}
	r = start(t, st, nil, counter("toy", 3), counter("other", 1))
	if s := status(r.Runner, "other"); s.State != project.Backfilling || s.Checkpoint != 0 {
		t.Errorf("other after a drop %+v", s)
	}
	waitState(t, r, "other", project.Live)
	if got, toy := count(t, st, "other", "type/"+model.PageView), count(t, st, "toy", "type/"+model.PageView); got != 50 || toy != 50 {
		t.Errorf("other %d, toy %d, want 50 each", got, toy)
	}
}

func TestMergesAndErasuresReachEveryProjection(t *testing.T) {
	p := enginetest.NewPipeline(t, counter("toy", 1))
	p.Append(t,
		&model.Event{ID: "1", Type: model.PageView, AnonymousID: "anon", SessionID: "s"},
		&model.Event{ID: "2", Type: model.ProductView, AnonymousID: "anon", SessionID: "s"},
		&model.Event{ID: "3", Type: model.Login, AnonymousID: "anon", SessionID: "s", Email: "ann@example.com"},
	)
	user := model.UserProfileID("ann@example.com")
	if n, anon := count(t, p.Store, "toy", "profile/"+user), count(t, p.Store, "toy", "profile/"+model.AnonymousProfileID("anon")); n != 3 || anon != 0 {
		t.Errorf("after the merge: user %d, anonymous %d; want 3, 0", n, anon)
	}
	n, err := p.Runner.Erase(context.Background(), user, nil)
	if err != nil || n != 3 {
		t.Fatalf("erase: %d %v", n, err)
	}
	if n := count(t, p.Store, "toy", "profile/"+user); n != 0 {
		t.Errorf("toy kept %d for the erased user", n)
	}
	if evs, _ := p.Store.EventsAfter(0, 10); len(evs) != 0 {
		t.Errorf("events left in the log: %d", len(evs))
	}
}

// Runs end early before identity merges (Split); the runner must go on
// folding the backlog by itself, with nothing waking it.
func TestRunsSplitAtMergesFoldTheWholeBacklog(t *testing.T) {
	st := enginetest.NewStore(t)
	var evs []*model.Event
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3000 {
		ev := &model.Event{ID: fmt.Sprint("m", i), Type: model.PageView, Via: model.ViaAPI, AnonymousID: fmt.Sprint("b", i%300),
			SessionID: fmt.Sprint("s", i%300), Time: at.Add(time.Duration(i) * time.Second)}
		if i%10 == 0 {
			ev.Type, ev.Email = model.Login, fmt.Sprintf("u%d@example.com", i%300)
		}
		evs = append(evs, ev)
	}
	if _, err := st.Append(evs, nil); err != nil {
		t.Fatal(err)
	}
	r := start(t, st, nil, counter("toy", 1))
	deadline := time.Now().Add(20 * time.Second)
	for status(r.Runner, identity.Name).Checkpoint < 3000 {
		if time.Now().After(deadline) {
			t.Fatalf("stalled: %+v", r.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := count(t, st, "toy", "type/"+model.Login); got != 300 {
		t.Errorf("toy counted %d logins", got)
	}
}
