package track

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/tracker-wasm/wire"
)

// Ingest, Record and Derived.Record race each other and Busy: every event
// acknowledged is stored once; right after a shopper's batch or a Record
// returns, Busy says so; derived records alone leave the
// tracker idle.
func TestIngestRecordDerivedAndBusyRace(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tr := New(st, Options{MaxPendingEvents: 400, MaxBatchEvents: 100})
	defer tr.Close()
	der := tr.Derived()

	var missed atomic.Int64 // Busy said idle right after a batch or record returned
	// justDone checks Busy right after a shopper's batch or a record
	// returned: the moment after it is busy (a look that came late, under
	// -race on a shared machine, proves nothing)
	justDone := func() {
		t0 := time.Now()
		if !tr.Busy() && time.Since(t0) < 20*time.Millisecond {
			missed.Add(1)
		}
	}

	const workers, rounds = 4, 60
	var stored, overloaded atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(3)
		go func() { // a shopper's batches
			defer wg.Done()
			for i := range rounds {
				b := &wire.Batch{Events: []wire.Event{{ID: fmt.Sprintf("i%d-%d", w, i), Type: "page_view", AnonymousID: "a", URL: "https://shop.example/"}}}
				res, err := tr.Ingest(b, model.ViaAPI)
				justDone()
				switch {
				case err == ErrOverloaded:
					overloaded.Add(1)
				case err != nil:
					t.Error(err)
				default:
					stored.Add(int64(res.Accepted))
				}
			}
		}()
		go func() { // what Shoptrail records (a user changed through the API)
			defer wg.Done()
			for i := range rounds {
				err := tr.Record(context.Background(), []*model.Event{{ID: fmt.Sprintf("r%d-%d", w, i), Type: "x", Email: "r@example.com"}}, nil)
				justDone()
				if err == ErrOverloaded {
					overloaded.Add(1)
				} else if err != nil {
					t.Error(err)
				} else {
					stored.Add(1)
				}
			}
		}()
		go func() { // segment entries, in big chunks
			defer wg.Done()
			for i := range rounds {
				evs := make([]*model.Event, 50)
				for j := range evs {
					evs[j] = &model.Event{ID: fmt.Sprintf("d%d-%d-%d", w, i, j), Type: "segment_entered", Email: "d@example.com"}
				}
				if err := der.Record(context.Background(), evs, nil); err == ErrOverloaded {
					overloaded.Add(1)
				} else if err != nil {
					t.Error(err)
				} else {
					stored.Add(int64(len(evs)))
				}
			}
		}()
	}
	wg.Wait()
	if n := missed.Load(); n > 0 {
		t.Errorf("Busy said idle %d times right after a batch or record returned", n)
	}
	last, err := st.LastSeq()
	if err != nil {
		t.Fatal(err)
	}
	if int64(last) != stored.Load() {
		t.Errorf("%d events acknowledged, the log holds %d", stored.Load(), last)
	}
	t.Logf("%d stored, %d overloaded", stored.Load(), overloaded.Load())

	// derived records alone: idle once the last shopper's moment is over
	time.Sleep(150 * time.Millisecond)
	for i := range 10 {
		if err := der.Record(context.Background(), []*model.Event{{ID: fmt.Sprint("late", i), Type: "segment_exited", Email: "d@example.com"}}, nil); err != nil {
			t.Fatal(err)
		}
		if tr.Busy() {
			t.Fatalf("busy after derived record %d alone", i)
		}
	}
}
