// Package client is the browser tracker's logic that needs no browser:
// sessions and the outbox of events waiting to be sent. The WASM program
// (cmd/tracker) wires it to localStorage, fetch and sendBeacon; tests run it
// as plain Go.
package client

import (
	"encoding/json"
	"time"

	"github.com/shoptrail/shoptrail/tracker-wasm/wire"
)

// Storage is where the tracker keeps its state: localStorage in a browser.
type Storage interface {
	Get(key string) (string, bool)
	Set(key, value string)
}

// Keys in Storage, shared with the inline stub (stub.js).
const (
	KeyAnonymous = "shoptrail_aid"
	KeySession   = "shoptrail_sid"
	KeyLast      = "shoptrail_last" // unix milliseconds of the last event
	KeyOutbox    = "shoptrail_outbox"
)

// Session returns the session id for an event at now: the current one, or a
// new one when the last event is more than timeout ago. It records now as
// the last event.
func Session(st Storage, now time.Time, timeout time.Duration, newID func() string) string {
	id, ok := st.Get(KeySession)
	last := time.UnixMilli(parseInt(st.Get(KeyLast)))
	if !ok || id == "" || now.Sub(last) > timeout {
		id = newID()
		st.Set(KeySession, id)
	}
	st.Set(KeyLast, itoa(now.UnixMilli()))
	return id
}

// AnonymousID returns the browser's anonymous id, making one the first time.
func AnonymousID(st Storage, newID func() string) string {
	if id, ok := st.Get(KeyAnonymous); ok && id != "" {
		return id
	}
	id := newID()
	st.Set(KeyAnonymous, id)
	return id
}

// Outbox holds events until the server has acknowledged them. It is kept in
// Storage, so events survive a page change or a closed tab and are sent by
// the next page. It holds at most MaxEvents; when full, the oldest go.
type Outbox struct {
	st       Storage
	Events   []wire.Event `json:"events"`
	Failures int          `json:"failures"`
	RetryAt  int64        `json:"retry_at"` // unix ms; 0: send at once
}

// MaxEvents bounds the outbox (and so localStorage use, ~100 KB).
const MaxEvents = 200

// Backoff bounds.
const (
	firstRetry = time.Second
	maxRetry   = 5 * time.Minute
)

// LoadOutbox reads the outbox from st; a damaged one is dropped.
func LoadOutbox(st Storage) *Outbox {
	o := &Outbox{st: st}
	if s, ok := st.Get(KeyOutbox); ok && s != "" {
		if json.Unmarshal([]byte(s), o) != nil {
			o.Events, o.Failures, o.RetryAt = nil, 0, 0
		}
	}
	return o
}

// Add queues an event.
func (o *Outbox) Add(ev wire.Event) {
	o.Events = append(o.Events, ev)
	if over := len(o.Events) - MaxEvents; over > 0 {
		o.Events = append(o.Events[:0], o.Events[over:]...)
	}
	o.save()
}

// Due reports whether the outbox should be sent now.
func (o *Outbox) Due(now time.Time) bool {
	return len(o.Events) > 0 && now.UnixMilli() >= o.RetryAt
}

// Take returns the batch to send now (at most wire.MaxEvents events) and
// how many events it holds, for Sent.
func (o *Outbox) Take(now time.Time) (body []byte, n int) {
	n = min(len(o.Events), wire.MaxEvents)
	t := now.UTC()
	body, _ = json.Marshal(wire.Batch{SentAt: &t, Events: o.Events[:n]})
	return body, n
}

// Sent removes the first n events, which the server acknowledged.
func (o *Outbox) Sent(n int) {
	o.Events = append(o.Events[:0], o.Events[min(n, len(o.Events)):]...)
	o.Failures, o.RetryAt = 0, 0
	o.save()
}

// Failed schedules the next try with exponential backoff and returns when.
func (o *Outbox) Failed(now time.Time) time.Duration {
	o.Failures++
	d := firstRetry << min(o.Failures-1, 16)
	d = min(d, maxRetry)
	o.RetryAt = now.Add(d).UnixMilli()
	o.save()
	return d
}

func (o *Outbox) save() {
	b, _ := json.Marshal(o)
	o.st.Set(KeyOutbox, string(b))
}

func parseInt(s string, ok bool) int64 {
	if !ok {
		return 0
	}
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
