package web

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/shoptrail/shoptrail/tracker-wasm/wire"
)

// inflight is a semaphore counted in request body bytes: the ingestion
// requests being read, decoded, validated and committed at once.
type inflight struct {
	limit int64
	used  atomic.Int64
}

// tryAcquire reserves n bytes, or reports false when they do not fit.
func (f *inflight) tryAcquire(n int64) bool {
	if f.used.Add(n) > f.limit {
		f.used.Add(-n)
		return false
	}
	return true
}

func (f *inflight) release(n int64) { f.used.Add(-n) }

// bodyDeadline is how long an admitted request may take to send its body:
// a slow sender must not hold its reservation for the server's whole
// ReadTimeout.
const bodyDeadline = 10 * time.Second

// admit admits an ingestion request or refuses it before its body is read.
// Under overload, decoding and validating batches that are then refused
// spent the CPU that the admitted ones needed: at 300 clients of 500-event
// batches the accepted rate fell to a quarter and p99 rose to seconds. A
// request reserves its Content-Length (the largest body allowed when it
// has none) from [ingest] max_inflight_bytes; when that is used up, the
// answer is 503 with Retry-After at once, for the cost of reading headers.
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
		if !s.inflight.tryAcquire(n) {
			w.Header().Set("Retry-After", "1")
			// net/http reads the unread body (up to 256 KiB) to keep the
			// connection: BenchmarkIngestOverload found that cheaper than
			// closing it and having the client dial again.
			return errorf(http.StatusServiceUnavailable, "overloaded", "",
				"the server is busy storing other events ("+strconv.FormatInt(s.inflight.limit>>10, 10)+" KiB of requests in flight); retry after 1 second")
		}
		defer s.inflight.release(n)
		if n > 0 {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyDeadline))
		}
		return next(w, r)
	}
}
