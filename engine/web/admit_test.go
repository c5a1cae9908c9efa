package web

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The byte semaphore never lets more than its limit in, however many
// requests race for it.
func TestInflightUnderConcurrency(t *testing.T) {
	f := &inflight{limit: 100}
	var in, peak, admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 300 {
				n := int64(10 + (g*7+i)%40)
				if !f.tryAcquire(n) {
					refused.Add(1)
					continue
				}
				admitted.Add(1)
				cur := in.Add(n)
				for p := peak.Load(); cur > p && !peak.CompareAndSwap(p, cur); p = peak.Load() {
				}
				time.Sleep(20 * time.Microsecond)
				in.Add(-n)
				f.release(n)
			}
		})
	}
	wg.Wait()
	if peak.Load() > 100 || f.used.Load() != 0 || admitted.Load() == 0 || refused.Load() == 0 {
		t.Fatalf("peak %d of 100, used %d, admitted %d, refused %d", peak.Load(), f.used.Load(), admitted.Load(), refused.Load())
	}
}
