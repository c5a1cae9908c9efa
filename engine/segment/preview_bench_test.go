package segment_test

import (
	"context"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/segment"
)

// BenchmarkPreview times the preview of a new 3-condition rule over a
// folded shop (-seg.events / 10, -seg.profiles / 10 of the big benchmark's).
func BenchmarkPreview(b *testing.B) {
	st := enginetest.NewStore(b)
	generateShop(b, st, *benchEvents/10, *benchProfiles/10)
	svc, err := segment.New(st, nil, segment.Options{})
	if err != nil {
		b.Fatal(err)
	}
	p := enginetest.RunPipeline(b, st, svc.Projection())
	t0 := time.Now()
	p.Fold(b)
	b.Logf("folded in %s", time.Since(t0))
	rule := []byte(`{"name":"Facebook, carts, no order","conditions":[
 {"event":"visit_from_referrer","where":[{"prop":"source","value":"facebook"}],"within":"720h"},
 {"event":"add_to_cart","count":{"op":"gte","value":2},"within":"2160h"},
 {"not":{"event":"order","within":"2160h"}}]}`)
	for b.Loop() {
		res, err := svc.Preview(context.Background(), rule)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(res.Count), "members")
	}
}
