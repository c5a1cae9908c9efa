package track

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/identity"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/tracker-wasm/wire"
)

// lagging returns a tracker whose projections have folded the first
// folded events of n and not the rest, with maxTail set to tail.
func lagging(t *testing.T, n, folded int, tail uint64) *Tracker {
	t.Helper()
	// on disk: the projections write values over the in-memory store's
	// 256-byte limit
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := project.New(st, identity.New(12*time.Hour).Projection(), nil, project.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr := New(st, Options{MaxPendingEvents: 10_000, MaxBatchEvents: 100, Committed: runner.Committed, Indexed: runner.Checkpoint})
	t.Cleanup(func() { tr.Close(); st.Close() })
	old := maxTail
	maxTail = tail
	t.Cleanup(func() { maxTail = old })
	send := func(from, to int) {
		for i := from; i < to; i++ {
			typ := "search"
			if i%3 == 0 {
				typ = "login"
			}
			b := wire.Batch{Events: []wire.Event{{ID: fmt.Sprint("ev-", i), Type: typ, AnonymousID: fmt.Sprint("anon-", i%2), URL: "https://shop.example/"}}}
			if res, err := tr.Ingest(&b, model.ViaAPI); err != nil || res.Accepted != 1 {
				t.Fatalf("ingest %d: %+v %v", i, res, err)
			}
		}
	}
	send(0, folded)
	if folded > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { runner.Run(ctx); close(done) }()
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		if err := runner.Wait(wctx, uint64(folded)); err != nil {
			t.Fatal(err)
		}
		wcancel()
		cancel()
		<-done
	}
	send(folded, n) // acknowledged; the projections no longer run
	if cp := runner.Checkpoint(); cp != uint64(folded) {
		t.Fatalf("checkpoint %d, want %d", cp, folded)
	}
	return tr
}

// An acknowledged event is listed however far the projections are
// behind: before, the events between the checkpoint and the last maxTail
// were read from neither the log nor the indexes.
func TestEventsFarBehindTheProjectionsAreListed(t *testing.T) {
	tr := lagging(t, 60, 12, 10)
	evs, err := tr.Events(Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 60 {
		t.Fatalf("listed %d of 60 acknowledged events", len(evs))
	}
	for i, ev := range evs {
		if ev.Seq != uint64(60-i) {
			t.Fatalf("events[%d].seq = %d, want newest first", i, ev.Seq)
		}
	}
	// unfiltered pages: full pages, then the end
	var seen int
	q := Query{Limit: 25}
	for pages := 0; ; pages++ {
		p, err := tr.EventsPage(q)
		if err != nil || pages > 10 {
			t.Fatal(err, pages)
		}
		seen += len(p.Events)
		if p.NextBefore == 0 {
			break
		}
		q.Before = p.NextBefore
	}
	if seen != 60 {
		t.Errorf("unfiltered pages listed %d events, want 60", seen)
	}
}

// A filtered query reads at most maxTail unfolded events per page and
// says where to go on: following next_before lists every match once.
func TestFilteredPagesAreBoundedAndComplete(t *testing.T) {
	tr := lagging(t, 60, 12, 10)
	for _, tt := range []struct {
		name string
		q    Query
		want int
	}{
		{"type", Query{Type: "login"}, 20},
		{"type alias", Query{Type: "Signed In"}, 20}, // Segment's name for login
		{"custom type", Query{Type: "nothing"}, 0},
		{"anonymous id", Query{AnonymousID: "anon-1"}, 30},
	} {
		t.Run(tt.name, func(t *testing.T) {
			all, err := tr.Events(tt.q)
			if err != nil || len(all) != tt.want {
				t.Fatalf("unbounded: %d events, %v; want %d", len(all), err, tt.want)
			}
			q := tt.q
			q.Limit = 4
			got := map[uint64]bool{}
			for pages := 0; ; pages++ {
				if pages > 40 {
					t.Fatal("no end of pages")
				}
				p, err := tr.EventsPage(q)
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range p.Events {
					if got[ev.Seq] || (q.Before > 0 && ev.Seq >= q.Before) {
						t.Fatalf("seq %d twice or out of its page", ev.Seq)
					}
					got[ev.Seq] = true
				}
				if p.NextBefore == 0 {
					break
				}
				q.Before = p.NextBefore
			}
			if len(got) != tt.want {
				t.Errorf("pages listed %d events, want %d", len(got), tt.want)
			}
		})
	}
}
