package enginetest

import (
	"context"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/identity"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Pipeline is the projection pipeline over a store in a temp dir, without
// HTTP: tests of a projection append events and read what it folded.
type Pipeline struct {
	Store  *store.Store
	Runner *project.Runner
}

// NewStore opens a store in a temp dir, closed when the test ends.
func NewStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir(), Logger: Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// NewPipeline runs the identity projection (12-hour sessions) and others
// over a new store until the test ends.
func NewPipeline(t testing.TB, others ...*project.Projection) *Pipeline {
	t.Helper()
	return RunPipeline(t, NewStore(t), others...)
}

// RunPipeline runs the identity projection and others over st until the
// test ends.
func RunPipeline(t testing.TB, st *store.Store, others ...*project.Projection) *Pipeline {
	t.Helper()
	return RunPipelineWith(t, st, project.Options{ProgressEvery: time.Millisecond}, others...)
}

// RunPipelineWith is RunPipeline with the runner's options (Busy, to hold
// the projections other than the fast lane back); the test's logger when
// o has none.
func RunPipelineWith(t testing.TB, st *store.Store, o project.Options, others ...*project.Projection) *Pipeline {
	t.Helper()
	if o.Logger == nil {
		o.Logger = Logger(t)
	}
	r, err := project.New(st, identity.New(12*time.Hour).Projection(), others, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &Pipeline{Store: st, Runner: r}
}

// Append stores events (through the API unless they say otherwise, with
// the time of day0 plus their index in minutes unless they have one) and
// waits until the live projections folded them.
func (p *Pipeline) Append(t testing.TB, evs ...*model.Event) {
	t.Helper()
	for i, ev := range evs {
		if ev.Via == "" {
			ev.Via = model.ViaAPI
		}
		if ev.Time.IsZero() {
			ev.Time = time.Date(2026, 11, 1, 10, i, 0, 0, time.UTC)
		}
		if ev.ReceivedAt.IsZero() {
			ev.ReceivedAt = ev.Time
		}
	}
	dup, err := p.Store.Append(evs, nil)
	if err != nil {
		t.Fatal(err)
	}
	var stored []*model.Event
	for i, ev := range evs {
		if !dup[i] {
			stored = append(stored, ev)
		}
	}
	p.Runner.Committed(stored)
	p.Fold(t)
}

// Fold waits until the live projections include every stored event.
func (p *Pipeline) Fold(t testing.TB) {
	t.Helper()
	last, err := p.Store.LastSeq()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Runner.Wait(ctx, last); err != nil {
		t.Fatalf("projections did not catch up with seq %d: %v", last, err)
	}
}
