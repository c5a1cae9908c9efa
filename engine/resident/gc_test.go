package resident

import (
	"runtime/debug"
	"testing"
)

// TestLowGC: a job lowers GOGC and puts it back; a job that overlaps it,
// whichever ends first, never leaves it lowered; a lower GOGC or GOGC=off
// is left alone.
func TestLowGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	gogc := func() int { v := debug.SetGCPercent(-1); debug.SetGCPercent(v); return v }
	a := LowGC(25)
	if got := gogc(); got != 25 {
		t.Fatalf("GOGC %d during a job", got)
	}
	b := LowGC(25) // overlapping: finds it lowered
	a()            // the first ends first
	b()
	if got := gogc(); got != 100 {
		t.Fatalf("GOGC %d after overlapping jobs", got)
	}
	for _, v := range []int{10, -1} {
		debug.SetGCPercent(v)
		LowGC(25)()
		if got := gogc(); got != v {
			t.Fatalf("GOGC %d: a job left %d", v, got)
		}
	}
}
