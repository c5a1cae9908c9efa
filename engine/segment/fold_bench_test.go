package segment_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/segment"
)

// BenchmarkFold folds a generated shop (-seg.events / 10, -seg.profiles /
// 10) through identity and the segments projection, with no segment and
// with 100: events/s.
func BenchmarkFold(b *testing.B) {
	for _, n := range []int{0, 100} {
		b.Run(fmt.Sprint(n, "-segments"), func(b *testing.B) {
			for b.Loop() {
				st := enginetest.NewStore(b)
				svc, err := segment.New(st, nil, segment.Options{})
				if err != nil {
					b.Fatal(err)
				}
				for i := range n {
					if _, err := svc.Create([]byte(hundred(i))); err != nil {
						b.Fatal(err)
					}
				}
				generateShop(b, st, *benchEvents/10, *benchProfiles/10)
				p := enginetest.RunPipeline(b, st, svc.Projection())
				t0 := time.Now()
				last, _ := st.LastSeq()
				ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
				if err := p.Runner.Wait(ctx, last); err != nil {
					b.Fatal(err)
				}
				cancel()
				b.ReportMetric(float64(*benchEvents/10)/time.Since(t0).Seconds(), "fold-events/s")
			}
		})
	}
}
