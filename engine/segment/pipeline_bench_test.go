package segment_test

import (
	"context"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/segment"
	"github.com/shoptrail/shoptrail/engine/store"
)

// BenchmarkPipelineFold folds a generated shop (-seg.events / 10,
// -seg.profiles / 10) through the whole pipeline of the app, with 100
// segments, and reports what each projection's folds cost per event (its
// Fold alone, from the runner's Status): the evidence for which
// projections fold in the fast lane while ingestion is busy.
func BenchmarkPipelineFold(b *testing.B) {
	for b.Loop() {
		cfg := enginetest.Config(b)
		cfg.Demo.Enabled = false
		st, err := store.Open(store.Options{Dir: cfg.Storage.Dir})
		if err != nil {
			b.Fatal(err)
		}
		svc, err := segment.New(st, nil, segment.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for i := range 100 {
			if _, err := svc.Create([]byte(hundred(i))); err != nil {
				b.Fatal(err)
			}
		}
		generateShop(b, st, *benchEvents/10, *benchProfiles/10)
		st.Close()
		a := enginetest.Start(b, cfg)
		t0 := time.Now()
		last, _ := a.Store.LastSeq()
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		if err := a.Pipeline.Wait(ctx, last); err != nil {
			b.Fatal(err)
		}
		cancel()
		b.ReportMetric(float64(last)/time.Since(t0).Seconds(), "fold-events/s")
		for _, s := range a.Pipeline.Status() {
			if s.Folded > 0 {
				us := float64(s.Spent.Microseconds()) / float64(s.Folded)
				b.ReportMetric(us, s.Name+"-µs/event")
			}
		}
		a.Stop()
	}
}
