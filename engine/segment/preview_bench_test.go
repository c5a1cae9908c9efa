package segment_test

import (
	"context"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/segment"
)

// previewRule is the benchmarks' new 3-condition rule (segment's).
const previewRule = segment.PreviewRule

// BenchmarkPreview times the preview of a new 3-condition rule over a
// folded shop (-seg.events / 10, -seg.profiles / 10 of the big benchmark's)
// from the preview index and, in the same run, from the log as before; and
// reports the index: its build, its events and its estimated size per
// profile.
func BenchmarkPreview(b *testing.B) {
	st := enginetest.NewStore(b)
	generateShop(b, st, *benchEvents/10, *benchProfiles/10)
	svc, err := segment.New(st, nil, segment.Options{})
	if err != nil {
		b.Fatal(err)
	}
	p := enginetest.RunPipeline(b, st, svc.Projection())
	t0 := time.Now()
	last, _ := st.LastSeq()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if err := p.Runner.Wait(ctx, last); err != nil {
		b.Fatal(err)
	}
	b.Logf("folded in %s", time.Since(t0).Round(time.Millisecond))
	for !svc.IndexStats().Ready {
		time.Sleep(10 * time.Millisecond)
	}
	ix := svc.IndexStats()
	b.Logf("index: %+v", ix)
	rule := []byte(previewRule)
	for b.Loop() {
		b.ReportMetric(ix.Built.Seconds(), "index-build-s")
		b.ReportMetric(float64(ix.Bytes)/float64(ix.Profiles), "index-B/profile")
		t0 := time.Now()
		res, err := svc.Preview(context.Background(), rule)
		if err != nil {
			b.Fatal(err)
		}
		indexed := time.Since(t0)
		t0 = time.Now()
		slow, err := svc.PreviewFromLog(context.Background(), rule)
		if err != nil {
			b.Fatal(err)
		}
		fromLog := time.Since(t0)
		if res.Count != slow.Count || res.Profiles != slow.Profiles {
			b.Errorf("index %d of %d, log %d of %d", res.Count, res.Profiles, slow.Count, slow.Profiles)
		}
		b.ReportMetric(float64(res.Count), "members")
		b.ReportMetric(float64(res.Profiles), "profiles")
		b.ReportMetric(indexed.Seconds(), "preview-index-s")
		b.ReportMetric(fromLog.Seconds(), "preview-log-s")
		b.ReportMetric(fromLog.Seconds()/indexed.Seconds(), "speedup")
	}
}
