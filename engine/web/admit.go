package web

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoptrail/shoptrail/tracker-wasm/wire"
)

// inflight is a semaphore counted in request body bytes: the ingestion
// requests being read, decoded, validated and committed at once.
//
// Its window, what it admits now, is limit at most and shrinks while the
// server is slow: a fixed budget did not shrink when the CPU did (other
// work on the machine, eager clients' refused bodies), and then the
// admitted requests queued for seconds. Each admitted request reports how
// long the server took for it after its body arrived (observe); one that
// took longer than admitTarget cuts the window by a quarter (at most once
// per admitTarget, so one slow burst counts once), and answers under half
// of it open the window again, a little each (AIMD, as TCP's congestion
// window). The window never goes below a quarter of limit, where the
// committer still has batches to overlap with decoding.
type inflight struct {
	limit  int64
	used   atomic.Int64
	window atomic.Int64

	mu      sync.Mutex // serialises cuts
	lastCut time.Time

	// requests waiting for room, in arrival order; the newest is admitted
	// first (acquire)
	qmu     sync.Mutex
	queue   []*waiter
	waiting atomic.Int64
}

// waiter is a request waiting for room; granted (under qmu) once admitted.
type waiter struct {
	n       int64
	ready   chan struct{}
	granted bool
}

// admitWait is how long an ingestion request waits for room before it is
// refused. While it waits its body is not read, so a client that sends
// again at once is held back by TCP instead of costing the server its
// body: refused at once, clients that retried after 10 ms without heeding
// Retry-After made the server read and drop their bodies, and the accepted
// rate fell to 0.14–0.37 of the maximum. What the 500 ms p99 goal leaves
// after admitTarget, and a little to spare.
const admitWait = 250 * time.Millisecond

// admitTarget is the server's time for an admitted request that the
// window aims under: well inside the 500 ms p99 the overload goal allows.
const admitTarget = 200 * time.Millisecond

func newInflight(limit int64) *inflight {
	f := &inflight{limit: limit}
	f.window.Store(limit)
	return f
}

// tryAcquire reserves n bytes, or reports false when they do not fit the
// window. A request is admitted when nothing else is in flight, whatever
// its size: bodies are at most limit, and the window can be smaller.
func (f *inflight) tryAcquire(n int64) bool {
	if used := f.used.Add(n); used > f.window.Load() && used != n {
		f.used.Add(-n)
		return false
	}
	return true
}

// acquire reserves n bytes, waiting up to wait for room or until ctx ends,
// and reports whether it did. The newest waiter is admitted first: under
// overload the one admitted has waited least, so the answers that are
// given come fast (a first-come queue made every one wait most of
// admitWait), and the oldest are refused when their wait is over.
func (f *inflight) acquire(ctx context.Context, n int64, wait time.Duration) bool {
	if f.waiting.Load() == 0 && f.tryAcquire(n) {
		return true
	}
	if wait <= 0 {
		return false
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	f.qmu.Lock()
	f.queue = append(f.queue, w)
	f.waiting.Add(1)
	f.dispatchLocked() // room freed before it queued
	f.qmu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-w.ready:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	f.qmu.Lock()
	defer f.qmu.Unlock()
	if w.granted {
		return true // admitted as the wait ended
	}
	i := slices.Index(f.queue, w)
	f.queue = slices.Delete(f.queue, i, i+1)
	f.waiting.Add(-1)
	f.dispatchLocked() // a smaller one before it may fit
	return false
}

func (f *inflight) release(n int64) {
	f.used.Add(-n)
	if f.waiting.Load() > 0 {
		f.qmu.Lock()
		f.dispatchLocked()
		f.qmu.Unlock()
	}
}

// dispatchLocked admits the newest waiters while they fit (tryAcquire).
func (f *inflight) dispatchLocked() {
	for len(f.queue) > 0 {
		last := len(f.queue) - 1
		w := f.queue[last]
		if !f.tryAcquire(w.n) {
			return
		}
		w.granted = true
		close(w.ready)
		f.queue[last] = nil
		f.queue = f.queue[:last]
		f.waiting.Add(-1)
	}
}

// observe adapts the window to how long the server took for an admitted
// request of n bytes, from its body's arrival to its answer.
func (f *inflight) observe(n int64, took time.Duration, now time.Time) {
	w := f.window.Load()
	switch {
	case took > admitTarget:
		f.mu.Lock()
		if now.Sub(f.lastCut) >= admitTarget {
			f.lastCut = now
			f.window.Store(max(f.limit/4, w-w/4))
		}
		f.mu.Unlock()
	case took < admitTarget/2 && w < f.limit:
		// a lost race with a cut or another opening is left at that
		f.window.CompareAndSwap(w, min(f.limit, w+max(n/4, 1<<10)))
	}
}

// admitted reports an admitted request's time after its body was read
// (since); ingestion handlers defer it once the body is read.
func (s *Server) admitted(n int64, since time.Time) {
	if s.inflight != nil {
		now := time.Now()
		s.inflight.observe(n, now.Sub(since), now)
	}
}

// bodyDeadline is how long an admitted request may take to send its body:
// a slow sender must not hold its reservation for the server's whole
// ReadTimeout.
const bodyDeadline = 10 * time.Second

// admit admits an ingestion request or refuses it before its body is read.
// Under overload, decoding and validating batches that are then refused
// spent the CPU that the admitted ones needed: at 300 clients of 500-event
// batches the accepted rate fell to a quarter and p99 rose to seconds. A
// request reserves its Content-Length (the largest body allowed when it
// has none) from [ingest] max_inflight_bytes; when that is used up it
// waits, its body unread, up to admitWait for room, and is then answered
// 503 with Retry-After, for the cost of reading headers.
func (s *Server) admit(next handlerFunc) handlerFunc {
	return s.admitUpTo(wire.MaxBodyBytes, next)
}

// admitUpTo is admit for an endpoint whose bodies are at most limit bytes.
// A compressed body reserves limit: what it costs is its uncompressed size.
func (s *Server) admitUpTo(limit int64, next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		n := r.ContentLength
		switch {
		case n > limit:
			return &http.MaxBytesError{Limit: limit} // 413 before reading
		case n < 0, r.Header.Get("Content-Encoding") != "":
			n = limit
		}
		if s.inflight == nil {
			return next(w, r)
		}
		if !s.inflight.acquire(r.Context(), n, admitWait) {
			w.Header().Set("Retry-After", "1")
			// net/http reads the unread body (up to 256 KiB) to keep the
			// connection: BenchmarkIngestOverload found that cheaper than
			// closing it and having the client dial again.
			return errorf(http.StatusServiceUnavailable, "overloaded", "",
				"the server is busy storing other events ("+strconv.FormatInt(s.inflight.window.Load()>>10, 10)+" KiB of requests in flight); retry after 1 second")
		}
		defer s.inflight.release(n)
		if n > 0 {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyDeadline))
		}
		return next(w, r)
	}
}
