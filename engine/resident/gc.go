package resident

import "runtime/debug"

// LowGC lowers the Go collector's target (GOGC) to percent for a job that
// makes much short-lived garbage (a feed import, a campaign being queued)
// and returns what puts it back: the heap grows percent past what is live
// instead of 100 %. A lower target, or none (GOGC=off), is left alone, so
// jobs that overlap never leave it lowered.
func LowGC(percent int) (restore func()) {
	old := debug.SetGCPercent(percent)
	if old < 0 || old <= percent {
		debug.SetGCPercent(old)
		return func() {}
	}
	return func() { debug.SetGCPercent(old) }
}
