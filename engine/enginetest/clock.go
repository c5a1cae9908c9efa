package enginetest

import (
	"sync"
	"time"
)

// Clock is a fake clock for app.WithClock: it runs with the real one from
// where it was set, and tests move it forward (a 4 h delay, a 30-day
// window) instead of sleeping.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// NewClock returns a clock that tells the real time until moved.
func NewClock() *Clock { return &Clock{} }

// Now is the clock's time: app.WithClock(c.Now).
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}
