package catalog

import (
	"runtime/debug"
	"testing"
)

func TestLowGCRestores(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	for _, tt := range []struct{ before, during int }{{100, importGCPercent}, {200, importGCPercent}, {10, 10}, {-1, -1}} {
		debug.SetGCPercent(tt.before)
		restore := lowGC()
		if got := debug.SetGCPercent(tt.during); got != tt.during {
			t.Errorf("GOGC %d: %d during the import, want %d", tt.before, got, tt.during)
		}
		restore()
		if got := debug.SetGCPercent(100); got != tt.before {
			t.Errorf("GOGC %d: %d after the import", tt.before, got)
		}
	}
}
