package track

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Errors of the committer.
var (
	// ErrOverloaded means too many events wait for a commit: the caller
	// should answer 503 with Retry-After rather than queue more.
	ErrOverloaded = errors.New("track: too many events waiting to be stored")
	// ErrClosed means the committer has stopped.
	ErrClosed = errors.New("track: shutting down")
)

// committer appends events to the log with group commit: requests that
// arrive while a commit runs share the next one, so under load one Badger
// transaction carries many requests, and each request is answered only
// after its events are committed.
type committer struct {
	st         *store.Store
	maxPending int64
	maxBatch   int
	onCommit   func(stored []*model.Event) // the events stored, in seq order

	pending    atomic.Int64 // events accepted but not yet committed
	waiting    atomic.Int64 // requests not derived (busy) waiting for a commit
	lastCommit atomic.Int64 // unix nanoseconds of the last commit of a request not derived
	mu         sync.RWMutex // guards closed against sends on a closed reqs
	closed     bool
	reqs       chan *request
	done       chan struct{}
}

type request struct {
	evs  []*model.Event
	also func(tx *store.Tx) error // commits alone, in the events' transaction
	dup  []bool
	err  error
	done chan struct{}
}

func newCommitter(st *store.Store, maxPending, maxBatch int, onCommit func([]*model.Event)) *committer {
	c := &committer{
		st:         st,
		maxPending: int64(maxPending),
		maxBatch:   maxBatch,
		onCommit:   onCommit,
		reqs:       make(chan *request, 1024),
		done:       make(chan struct{}),
	}
	go c.run()
	return c
}

// commit stores evs (and what also writes) and returns which were
// duplicates. Unless derived, the committer is busy meanwhile and for a
// moment after.
func (c *committer) commit(evs []*model.Event, also func(tx *store.Tx) error, derived bool) ([]bool, error) {
	n := int64(len(evs))
	if c.pending.Add(n) > c.maxPending {
		c.pending.Add(-n)
		return nil, ErrOverloaded
	}
	if !derived {
		c.waiting.Add(1)
		defer func() {
			c.lastCommit.Store(time.Now().UnixNano())
			c.waiting.Add(-1)
		}()
	}
	r := &request{evs: evs, also: also, done: make(chan struct{})}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		c.pending.Add(-n)
		return nil, ErrClosed
	}
	c.reqs <- r
	c.mu.RUnlock()
	<-r.done
	return r.dup, r.err
}

// run gathers the requests that wait into one append: under load, one
// Badger transaction carries many requests. A request with state to write
// (also) commits alone.
func (c *committer) run() {
	defer close(c.done)
	var reqs []*request
	var evs []*model.Event
	var held *request // a request with also, met while gathering others
	for {
		r := held
		held = nil
		if r == nil {
			var ok bool
			if r, ok = <-c.reqs; !ok {
				return
			}
		}
		reqs, evs = append(reqs[:0], r), append(evs[:0], r.evs...)
	drain:
		for r.also == nil && len(evs) < c.maxBatch {
			select {
			case r, ok := <-c.reqs:
				if !ok {
					break drain
				}
				if r.also != nil {
					held = r
					break drain
				}
				reqs = append(reqs, r)
				evs = append(evs, r.evs...)
			default:
				break drain
			}
		}
		dup, err := c.st.Append(evs, reqs[0].also)
		var stored []*model.Event
		if err == nil {
			stored = make([]*model.Event, 0, len(evs))
			for i, ev := range evs {
				if !dup[i] {
					stored = append(stored, ev)
				}
			}
		}
		off := 0
		for _, r := range reqs {
			if err == nil {
				r.dup = dup[off : off+len(r.evs)]
			}
			r.err = err
			off += len(r.evs)
			close(r.done)
		}
		c.pending.Add(-int64(len(evs)))
		clear(evs)
		if c.onCommit != nil && len(stored) > 0 {
			c.onCommit(stored)
		}
	}
}

// busy reports whether events other than derived ones arrived in the last
// moment.
func (c *committer) busy() bool {
	return c.waiting.Load() > 0 || time.Since(time.Unix(0, c.lastCommit.Load())) < 100*time.Millisecond
}

// close commits what was accepted and stops. Callers must have stopped
// calling commit (the HTTP servers are shut down first); a late call gets
// ErrClosed.
func (c *committer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.reqs)
	}
	c.mu.Unlock()
	<-c.done
}
