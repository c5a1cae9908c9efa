package resident

import (
	"testing"
	"time"
)

// TestStartStop: Stop ends the loop, also when the limit turns it off, and
// may be called twice.
func TestStartStop(t *testing.T) {
	for _, limit := range []int64{0, 1 << 20} {
		tr := New(t.TempDir(), limit, nil)
		tr.Start(time.Millisecond)
		time.Sleep(5 * time.Millisecond)
		tr.Stop()
		tr.Stop()
	}
	New(t.TempDir(), 1<<20, nil).Stop() // never started
}
