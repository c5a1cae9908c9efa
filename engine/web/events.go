package web

import (
	_ "embed"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/track"
	"github.com/shoptrail/shoptrail/tracker-wasm/wire"
)

// collect is POST /t, the browser endpoint.
func (s *Server) collect(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Tracking.RespectGPC && r.Header.Get("Sec-GPC") == "1" {
		// The shopper opted out with Global Privacy Control: store nothing.
		writeJSON(w, http.StatusOK, map[string]any{"accepted": 0, "duplicates": 0, "rejected": 0, "ignored": "Sec-GPC"})
		return nil
	}
	return s.ingest(w, r, model.ViaBrowser)
}

// ingestAPI is POST /api/v1/events, the server-side endpoint.
func (s *Server) ingestAPI(w http.ResponseWriter, r *http.Request) error {
	return s.ingest(w, r, model.ViaAPI)
}

// ingestAnswer is the body of an ingestion answer. With invalid events it
// goes with status 400, names the first problem in "error" and lists all
// in "errors"; the valid events of the batch are stored all the same.
type ingestAnswer struct {
	Error *Error `json:"error,omitempty"`
	wire.Response
}

func (s *Server) ingest(w http.ResponseWriter, r *http.Request, via string) error {
	body, err := readBody(w, r, wire.MaxBodyBytes)
	defer putBody(body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return err
	case err != nil: // cut short, or slower than the body deadline
		return errorf(http.StatusBadRequest, "invalid_body", "body", "the body could not be read: "+err.Error())
	}
	defer s.admitted(int64(len(*body)), time.Now())
	req := track.Request{Via: via, UserAgent: r.UserAgent()}
	if err := track.DecodeBatch(*body, &req); err != nil {
		var be *track.BodyError
		if errors.As(err, &be) {
			code := "invalid_field"
			if be.Field == "body" {
				code = "invalid_json"
			}
			return errorf(http.StatusBadRequest, code, be.Field, be.Message)
		}
		return err
	}
	res, err := s.tracker.Receive(&req)
	switch {
	case errors.Is(err, track.ErrNoEvents):
		return errorf(http.StatusBadRequest, "required", "events", "the batch has no events")
	case errors.Is(err, track.ErrTooManyEvs):
		return errorf(http.StatusRequestEntityTooLarge, "too_large", "events", "a batch holds at most "+strconv.Itoa(wire.MaxEvents)+" events")
	case err != nil:
		return err
	}
	for _, fe := range res.Errors {
		s.metrics.Rejected(fe.Code, 1)
	}
	s.metrics.Rejected("duplicate", res.Duplicates)
	ans := ingestAnswer{Response: res.Response}
	status := http.StatusOK
	if len(res.Errors) > 0 {
		fe := res.Errors[0]
		status = http.StatusBadRequest
		field := "events[" + strconv.Itoa(fe.Index) + "]"
		if fe.Field != "" {
			field += "." + fe.Field
		}
		ans.Error = &Error{Code: fe.Code, Field: field, Message: fe.Message}
	}
	if ans.Error == nil && res.Repaired == 0 {
		// the common answer, written without reflection: it goes with
		// every request of the hot path
		b := make([]byte, 0, 64)
		b = append(b, `{"accepted":`...)
		b = strconv.AppendInt(b, int64(res.Accepted), 10)
		b = append(b, `,"duplicates":`...)
		b = strconv.AppendInt(b, int64(res.Duplicates), 10)
		b = append(b, `,"rejected":0}`+"\n"...)
		h := w.Header()
		h["Content-Type"] = jsonContentType
		h["X-Content-Type-Options"] = nosniff
		w.WriteHeader(status)
		w.Write(b)
		return nil
	}
	writeJSON(w, status, ans)
	return nil
}

// Header values shared by every answer of the hot path (net/http only
// reads them).
var (
	jsonContentType = []string{"application/json; charset=utf-8"}
	nosniff         = []string{"nosniff"}
)

// bodies recycles request body buffers: ingestion reads each body whole
// before decoding it, and the decoder copies what it keeps.
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// readBody reads the request body, at most limit bytes: a longer body (or
// a Content-Length that announces one) is an *http.MaxBytesError. The
// caller gives the buffer back with putBody, also after an error.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) (*[]byte, error) {
	b := bodies.Get().(*[]byte)
	if r.ContentLength > limit {
		return b, &http.MaxBytesError{Limit: limit}
	}
	buf := (*b)[:0]
	if n := int(r.ContentLength); n > cap(buf) {
		buf = make([]byte, 0, n+1) // +1: room to see EOF without growing
	}
	// net/http reads no more than a Content-Length; without one (chunked)
	// MaxBytesReader counts, and closes the connection past limit. The
	// check in the loop is for bodies that are neither.
	var rd io.Reader = r.Body
	if r.ContentLength < 0 {
		rd = http.MaxBytesReader(w, r.Body, limit)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			*b = buf
			return b, &http.MaxBytesError{Limit: limit}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			*b = buf
			return b, err
		}
	}
	*b = buf
	return b, nil
}

func putBody(b *[]byte) {
	if cap(*b) <= 64<<10 { // keep the pool small; large bodies are rare
		*b = (*b)[:0]
		bodies.Put(b)
	}
}

// listEvents is GET /api/v1/events: newest first, a page at a time. A
// page with next_before has more after it, even when it is short.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	q := track.Query{AnonymousID: v.Get("anonymous_id"), Type: v.Get("type")}
	var err error
	if q.Limit, err = parseLimit(v.Get("limit"), 100, track.MaxLimit); err != nil {
		return err
	}
	if e := v.Get("email"); e != "" {
		email, err := track.NormaliseEmail(e)
		if err != nil {
			return errorf(http.StatusBadRequest, "invalid_field", "email", err.Error())
		}
		q.Email = email
	}
	if since := v.Get("since"); since != "" {
		t, err := parseTime(since)
		if err != nil {
			return errorf(http.StatusBadRequest, "invalid_field", "since", "since must be a time like 2026-11-20T10:00:00Z or a date like 2026-11-20")
		}
		q.Since = t
	}
	if b := v.Get("before"); b != "" {
		n, err := strconv.ParseUint(b, 10, 64)
		if err != nil || n == 0 {
			return errorf(http.StatusBadRequest, "invalid_field", "before", "before must be the next_before of the previous page")
		}
		q.Before = n
	}
	page, err := s.tracker.EventsPage(q)
	if err != nil {
		return err
	}
	out := map[string]any{"events": page.Events}
	if page.Events == nil {
		out["events"] = []track.Listed{}
	}
	if page.NextBefore > 0 {
		out["next_before"] = page.NextBefore
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Parse(time.DateOnly, strings.TrimSpace(s))
}
