package segment_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/identity"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/segment"
)

// While ingestion needs the processors (Options.Yield), a segment's build
// takes a step and then rests seven times as long; otherwise it goes at
// full speed. Measured as the share of the build's time spent in the
// segments' Tick.
func TestBuildsYieldWhileIngestionNeedsTheProcessors(t *testing.T) {
	share := map[bool]float64{}
	for _, yield := range []bool{false, true} {
		st := enginetest.NewStore(t)
		var evs []*model.Event
		day := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		for i := range 800 {
			for k, typ := range []string{model.PageView, model.ProductView, model.AddToCart} {
				evs = append(evs, &model.Event{ID: fmt.Sprintf("e%d-%d", i, k), Type: typ, AnonymousID: fmt.Sprintf("a%05d", i),
					Time: day.Add(time.Duration(k) * time.Minute), ReceivedAt: day, Via: model.ViaAPI})
			}
		}
		if _, err := st.Append(evs, nil); err != nil {
			t.Fatal(err)
		}
		svc, err := segment.New(st, nil, segment.Options{Logger: enginetest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		p := *svc.Projection()
		var mu sync.Mutex
		var working time.Duration
		tick := p.Tick
		p.Tick = func(r *project.Run) (bool, time.Duration, error) {
			if r.Yield != yield {
				t.Errorf("run.Yield %v, the runner's Yield says %v", r.Yield, yield)
			}
			t0 := time.Now()
			more, wait, err := tick(r)
			mu.Lock()
			working += time.Since(t0)
			mu.Unlock()
			return more, wait, err
		}
		runner, err := project.New(st, identity.New(12*time.Hour).Projection(), []*project.Projection{&p},
			project.Options{Yield: func() bool { return yield }, Logger: enginetest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		svc.SetPoke(runner.Poke)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { runner.Run(ctx); close(done) }()
		last, _ := st.LastSeq()
		if err := runner.Wait(ctx, last); err != nil {
			t.Fatal(err)
		}
		for !svc.IndexStats().Ready {
			time.Sleep(5 * time.Millisecond)
		}
		mu.Lock()
		working = 0
		mu.Unlock()
		start := time.Now()
		v, err := svc.Create([]byte(`{"name":"carts","conditions":[{"event":"add_to_cart"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		for {
			got, err := svc.Get(v.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Building {
				if got.Count != 800 {
					t.Errorf("yield %v: %d members, want 800", yield, got.Count)
				}
				break
			}
			if time.Since(start) > time.Minute {
				t.Fatalf("yield %v: still building after a minute: %+v", yield, got.Progress)
			}
			time.Sleep(2 * time.Millisecond)
		}
		elapsed := time.Since(start)
		cancel()
		<-done
		mu.Lock()
		share[yield] = working.Seconds() / elapsed.Seconds()
		mu.Unlock()
		t.Logf("yield %v: built in %s, %.2f of it in Tick", yield, elapsed.Round(time.Millisecond), share[yield])
	}
	if share[true] > 0.2 {
		t.Errorf("while yielding the build took %.2f of the time (at most an eighth, and some slack)", share[true])
	}
	if share[false] < 2*share[true] {
		t.Errorf("not yielding, the build took %.2f of the time, against %.2f yielding", share[false], share[true])
	}
}
