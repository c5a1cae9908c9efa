package segment_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/segment"
	"github.com/shoptrail/shoptrail/engine/store"
)

// storeRecorder appends what the relay records to the log, with the
// outbox's deletions in the same transaction, and counts it.
type storeRecorder struct {
	st *store.Store
	mu sync.Mutex
	n  int
}

func (r *storeRecorder) Record(ctx context.Context, evs []*model.Event, also func(tx *store.Tx) error) error {
	for i, ev := range evs {
		ev.Via, ev.ReceivedAt, ev.ID = model.ViaServer, ev.Time, fmt.Sprintf("rec-%d-%d", time.Now().UnixNano(), i)
	}
	if _, err := r.st.Append(evs, also); err != nil {
		return err
	}
	r.mu.Lock()
	r.n += len(evs)
	r.mu.Unlock()
	return nil
}

// relayAll records the whole outbox and returns how many it recorded.
func relayAll(t testing.TB, svc *segment.Service) int {
	t.Helper()
	total := 0
	for {
		n, err := svc.RelayOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		total += n
		if n == 0 {
			return total
		}
	}
}

// The relay reads the outbox from after the last key it recorded. When
// the outbox's counter starts again (the segments projection folded anew),
// entries under keys before that are still recorded, by the read from the
// start that it makes when the one after the last key finds little.
func TestRelayRecordsEntriesUnderKeysBeforeTheLastOne(t *testing.T) {
	st := enginetest.NewStore(t)
	rec := &storeRecorder{st: st}
	svc, err := segment.New(st, rec, segment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	for seq := uint64(1); seq <= 450; seq++ {
		if err := svc.PutChange(seq, "s1", fmt.Sprintf("u%d@x.com", seq), true, at); err != nil {
			t.Fatal(err)
		}
	}
	if n := relayAll(t, svc); n != 450 {
		t.Fatalf("relayed %d of 450", n)
	}
	// the counter started again: keys 1 and 2, before the last recorded
	for seq := uint64(1); seq <= 2; seq++ {
		if err := svc.PutChange(seq, "s1", fmt.Sprintf("again%d@x.com", seq), false, at); err != nil {
			t.Fatal(err)
		}
	}
	svc.SetRelayFullEvery(time.Hour)
	if n := relayAll(t, svc); n != 0 {
		t.Fatalf("read the outbox from its start within the hour: %d", n)
	}
	svc.SetRelayFullEvery(0)
	if n := relayAll(t, svc); n != 2 {
		t.Fatalf("relayed %d of the 2 entries under earlier keys", n)
	}
	if rec.n != 452 {
		t.Fatalf("recorded %d, want 452", rec.n)
	}
}

// BenchmarkRelay records 20 000 entries and exits in the relay's chunks of
// 200: each chunk's read of the outbox stepped over every key deleted
// before it, from the start.
func BenchmarkRelay(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		st := enginetest.NewStore(b)
		svc, err := segment.New(st, &storeRecorder{st: st}, segment.Options{})
		if err != nil {
			b.Fatal(err)
		}
		at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		for seq := uint64(1); seq <= 20_000; seq++ {
			if err := svc.PutChange(seq, "s1", fmt.Sprintf("u%d@x.com", seq%5000), seq%2 == 0, at); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if n := relayAll(b, svc); n != 20_000 {
			b.Fatalf("relayed %d", n)
		}
	}
}

// Relays running at once (the service's loop and a caller's RelayOnce)
// record each entry once. Each reads the outbox, records what it read and
// deletes it, so two that read the same entries before either deleted them
// would both record them: the relay's mutex runs them one after the
// other, and the second read under the users' locks would keep them apart
// without it (with neither, 1 400 events were recorded for 1 000 entries).
func TestConcurrentRelaysRecordEachEntryOnce(t *testing.T) {
	st := enginetest.NewStore(t)
	rec := &storeRecorder{st: st}
	svc, err := segment.New(st, rec, segment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	const entries = 1000
	for seq := uint64(1); seq <= entries; seq++ {
		if err := svc.PutChange(seq, "s1", fmt.Sprintf("u%d@x.com", seq), true, at); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { relayAll(t, svc) })
	}
	wg.Wait()
	if rec.n != entries {
		t.Fatalf("recorded %d events for %d entries", rec.n, entries)
	}
	if n := relayAll(t, svc); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}
