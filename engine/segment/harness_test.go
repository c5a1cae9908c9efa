package segment_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/segment"
	"github.com/shoptrail/shoptrail/engine/store"
)

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// recorder appends Shoptrail's own events to the log like track.Record.
type recorder struct {
	p *enginetest.Pipeline
}

func (r *recorder) Record(ctx context.Context, evs []*model.Event, also func(tx *store.Tx) error) error {
	for _, ev := range evs {
		ev.Via, ev.ReceivedAt = model.ViaServer, ev.Time
		if ev.ID == "" {
			ev.ID = "rec-" + time.Now().Format("150405.000000000") + ev.Email + ev.Type
		}
	}
	if _, err := r.p.Store.Append(evs, also); err != nil {
		return err
	}
	r.p.Runner.Committed(evs)
	return nil
}

// day0 is the fake clock's start.
var day0 = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

type env struct {
	t     testing.TB
	clk   *clock
	svc   *segment.Service
	p     *enginetest.Pipeline
	st    *store.Store
	rec   *recorder
	seq   int
	start func()
}

func newEnv(t testing.TB) *env {
	return openEnv(t, enginetest.NewStore(t))
}

func openEnv(t testing.TB, st *store.Store) *env {
	return openEnvWith(t, st, segment.Options{})
}

// openEnvWith is openEnv with options (the clock and the logger are the
// env's).
func openEnvWith(t testing.TB, st *store.Store, o segment.Options) *env {
	t.Helper()
	e := &env{t: t, clk: &clock{t: day0}, st: st}
	e.rec = &recorder{}
	o.Now, o.Logger = e.clk.Now, enginetest.Logger(t)
	svc, err := segment.New(st, e.rec, o)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.p = enginetest.RunPipeline(t, st, svc.Projection())
	e.rec.p = e.p
	svc.SetPoke(e.p.Runner.Poke)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// add appends events (times default to the clock's now) and waits for the
// fold.
func (e *env) add(evs ...*model.Event) {
	e.t.Helper()
	for _, ev := range evs {
		e.seq++
		if ev.Time.IsZero() {
			ev.Time = e.clk.Now()
		}
		if ev.ID == "" {
			ev.ID = "e" + time.Duration(e.seq).String()
		}
	}
	e.p.Append(e.t, evs...)
}

func (e *env) create(def string) string {
	e.t.Helper()
	v, err := e.svc.Create([]byte(def))
	if err != nil {
		e.t.Fatalf("create %s: %v", def, err)
	}
	e.built(v.ID)
	return v.ID
}

// built waits until a segment's build is done and every window due is swept.
func (e *env) built(id string) segment.View {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := e.svc.Get(id)
		if err != nil {
			e.t.Fatal(err)
		}
		if !v.Building {
			e.settle()
			v, _ = e.svc.Get(id)
			return v
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("segment %s still building: %+v", id, v.Progress)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settle lets the runner do every tick that is due now (after the clock
// moved) and fold what it recorded.
func (e *env) settle() {
	e.t.Helper()
	for range 3 {
		e.p.Runner.Poke()
		time.Sleep(30 * time.Millisecond)
		e.p.Fold(e.t)
	}
}

// tick moves the clock and lets the sweep run.
func (e *env) advance(d time.Duration) {
	e.clk.Set(e.clk.Now().Add(d))
	e.settle()
}

// eventually waits until cond holds (the runner works in the background).
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting: %s", what)
		}
		e.p.Runner.Poke()
		time.Sleep(5 * time.Millisecond)
	}
	e.p.Fold(e.t)
}

// membersAre waits until a segment's members are want.
func (e *env) membersAre(id string, want ...string) {
	e.t.Helper()
	var got []string
	e.eventually("members", func() bool {
		got = e.members(id)
		return slices.Equal(got, want) || (len(got) == 0 && len(want) == 0)
	})
}

func (e *env) members(id string) []string {
	e.t.Helper()
	ms, _, err := e.svc.Members(id, "", 1000, false)
	if err != nil {
		e.t.Fatal(err)
	}
	out := []string{}
	for _, m := range ms {
		out = append(out, m.Profile)
	}
	return out
}

func (e *env) count(id string) int64 {
	v, err := e.svc.Get(id)
	if err != nil {
		e.t.Fatal(err)
	}
	return v.Count
}

func props(kv ...any) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	for i := 0; i < len(kv); i += 2 {
		b, _ := json.Marshal(kv[i+1])
		m[kv[i].(string)] = b
	}
	return m
}
