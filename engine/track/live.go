package track

import (
	"sync"
	"sync/atomic"

	"github.com/shoptrail/shoptrail/engine/model"
)

// hub fans stored events out to live viewers (the admin dashboard). Each
// viewer has a small buffer; a viewer that falls behind misses events
// rather than slowing ingestion down.
type hub struct {
	mu      sync.Mutex
	subs    map[chan []*model.Event]struct{}
	dropped atomic.Int64
}

func (h *hub) publish(evs []*model.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- evs:
		default:
			h.dropped.Add(int64(len(evs)))
		}
	}
}

// Live returns the events stored from now on, in batches, and a function
// that ends the subscription.
func (t *Tracker) Live() (<-chan []*model.Event, func()) {
	ch := make(chan []*model.Event, 16)
	t.live.mu.Lock()
	if t.live.subs == nil {
		t.live.subs = map[chan []*model.Event]struct{}{}
	}
	t.live.subs[ch] = struct{}{}
	t.live.mu.Unlock()
	return ch, func() {
		t.live.mu.Lock()
		delete(t.live.subs, ch)
		t.live.mu.Unlock()
	}
}
