// Package wire is the tracker's payload format: the JSON that the browser
// tracker and server-side integrations POST, and that the engine decodes.
// It depends on the standard library only, so the WASM tracker and the
// engine share one definition.
package wire

import (
	"encoding/json"
	"time"
)

// Batch is one request body: up to MaxEvents events.
type Batch struct {
	// SentAt is the client's clock when the batch left it. The server uses
	// it to correct client clock skew on event times.
	SentAt *time.Time `json:"sent_at,omitempty"`
	Events []Event    `json:"events"`
}

// Event is one thing a shopper did.
type Event struct {
	ID          string                     `json:"id,omitempty"`
	Type        string                     `json:"type"`
	Time        *time.Time                 `json:"time,omitempty"`
	AnonymousID string                     `json:"anonymous_id,omitempty"`
	SessionID   string                     `json:"session_id,omitempty"`
	Email       string                     `json:"email,omitempty"`
	URL         string                     `json:"url,omitempty"`
	Referrer    string                     `json:"referrer,omitempty"`
	Props       map[string]json.RawMessage `json:"props,omitempty"`
}

// Limits of one request, documented in the README. The server enforces them;
// the tracker stays under them.
const (
	MaxBodyBytes   = 1 << 20 // a request body
	MaxEvents      = 500     // events in one batch
	MaxIDLen       = 128     // id, anonymous_id, session_id
	MaxTypeLen     = 100     // event type
	MaxEmailLen    = 254     // RFC 5321 path limit
	MaxURLLen      = 8192    // url and referrer
	MaxProps       = 100     // keys in props
	MaxPropKeyLen  = 100     // one key in props
	MaxStringLen   = 4096    // one string value anywhere in props
	MaxDepth       = 5       // nesting of objects and arrays in props
	MaxItems       = 200     // entries of items[] (GA4's limit)
	MaxArrayLen    = 200     // any other array in props
	MaxPropsBytes  = 32 << 10
	MaxSessionIdle = 12 * time.Hour // the default; the server's config is authoritative
)

// Response is what the ingestion endpoints answer with 200 or 400.
type Response struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Rejected   int `json:"rejected"`
	// Repaired counts the invalid UTF-8 sequences of the body that were
	// replaced by U+FFFD before the events were stored.
	Repaired int     `json:"repaired,omitempty"`
	Errors   []Error `json:"errors,omitempty"`
}

// Error names the event (by index in the batch) and the field at fault.
type Error struct {
	Index   int    `json:"index"`
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}
