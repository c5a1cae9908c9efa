// Package client is the browser tracker's logic that needs no browser:
// sessions and the outbox of events waiting to be sent. The WASM program
// (cmd/tracker) wires it to localStorage, fetch and sendBeacon; tests run it
// as plain Go.
//
// It writes the payload of package wire by hand and imports no package
// but unicode/utf8: reflection-based JSON made up about 300 KB of the
// tracker's 880 KB (brotli), package time and strconv most of another 80.
// Times are unix milliseconds and ISO 8601 strings from the browser's Date.
// Its tests check that what it writes decodes as wire.Batch and that its
// limits equal wire's.
package client

import "unicode/utf8"

// Limits shared with package wire (a test keeps them equal).
const (
	MaxBatchEvents = 500                 // wire.MaxEvents
	MaxSessionIdle = 12 * 60 * 60 * 1000 // wire.MaxSessionIdle, in milliseconds
)

// Event is one event to send, as package wire's Event. Props is a JSON
// object's text (from the page's JSON.stringify) or "".
type Event struct {
	ID, Type                      string
	Time                          string // ISO 8601 (Date.toISOString); "": the server's receive time
	AnonymousID, SessionID, Email string
	URL, Referrer                 string
	Props                         string
}

// AppendJSON appends the event as wire.Event's JSON.
func (e Event) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	first := true
	field := func(name, v string) {
		if v == "" {
			return
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(append(appendString(b, name), ':'), v)
	}
	field("id", e.ID)
	if !first {
		b = append(b, ',')
	}
	first = false
	b = appendString(append(appendString(b, "type"), ':'), e.Type)
	if e.Time != "" {
		b = appendString(append(b, `,"time":`...), e.Time)
	}
	field("anonymous_id", e.AnonymousID)
	field("session_id", e.SessionID)
	field("email", e.Email)
	field("url", e.URL)
	field("referrer", e.Referrer)
	if len(e.Props) > 1 && e.Props[0] == '{' {
		b = append(b, `,"props":`...)
		b = append(b, e.Props...)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == 0x2028 || r == 0x2029:
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

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
func Session(st Storage, now, timeout int64, newID func() string) string {
	id, ok := st.Get(KeySession)
	last := parseInt(st.Get(KeyLast))
	if !ok || id == "" || now-last > timeout {
		id = newID()
		st.Set(KeySession, id)
	}
	st.Set(KeyLast, string(appendInt(nil, now)))
	return id
}

// Keys of the campaign renderer's state (engine/campaign/render.js) and of
// who was identified last on this browser.
const (
	KeyCampaignCounts = "shoptrail_cs" // impressions per group in this browser session
	KeyCampaignGoals  = "shoptrail_cg" // groups whose goal this browser reached
	KeyWho            = "shoptrail_who"
)

// Identified records that the shopper on this browser is email (identify)
// and reports whether another person was identified on it before. Then
// the campaign renderer's impression counts and reached goals are the
// other person's, and they are cleared: the server starts a session of
// the new person's own (engine/identity), and the counts the renderer
// sends with each decision would otherwise hold the new person to the
// caps the first one used up, and unlock chained steps for them. Only a
// hash of the email is kept (FNV-1a of its lower-case ASCII).
func Identified(st Storage, email string) bool {
	who := whoHash(email)
	prev, _ := st.Get(KeyWho)
	st.Set(KeyWho, who)
	if prev == "" || prev == who {
		return false
	}
	st.Set(KeyCampaignCounts, "")
	st.Set(KeyCampaignGoals, "")
	return true
}

func whoHash(email string) string {
	h := uint64(14695981039346656037)
	start, end := 0, len(email)
	for start < end && (email[start] == ' ' || email[start] == '\t') {
		start++
	}
	for end > start && (email[end-1] == ' ' || email[end-1] == '\t') {
		end--
	}
	for i := start; i < end; i++ {
		c := email[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h ^= uint64(c)
		h *= 1099511628211
	}
	const hex = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = hex[h&15]
		h >>= 4
	}
	return string(b[:])
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
	Events   []string // each a wire.Event's JSON
	Failures int
	RetryAt  int64 // unix ms; 0: send at once
}

// MaxEvents bounds the outbox (and so localStorage use, ~100 KB).
const MaxEvents = 200

// Backoff bounds.
const (
	firstRetry = 1000          // ms
	maxRetry   = 5 * 60 * 1000 // ms
)

// LoadOutbox reads the outbox from st; a damaged one is dropped. It reads
// what save writes, {"events":[{...},...],"failures":N,"retry_at":N}, which
// is also what earlier trackers (with encoding/json) left.
func LoadOutbox(st Storage) *Outbox {
	o := &Outbox{st: st}
	if s, ok := st.Get(KeyOutbox); ok && s != "" {
		if !o.parse(s) {
			o.Events, o.Failures, o.RetryAt = nil, 0, 0
		}
	}
	return o
}

// parse reads a saved outbox: the objects of "events" are kept as text
// (found by counting braces outside strings), the two numbers are read.
func (o *Outbox) parse(s string) bool {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return false
	}
	num := func(key string) int64 {
		i := indexOf(s, `"`+key+`":`)
		if i < 0 {
			return 0
		}
		j := i + len(key) + 3
		k := j
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		return parseInt(s[j:k], true)
	}
	i := indexOf(s, `"events":[`)
	if i < 0 {
		return false
	}
	depth, start, inStr := 0, -1, false
	for j := i + len(`"events":[`); j < len(s); j++ {
		c := s[j]
		switch {
		case inStr:
			if c == '\\' {
				j++
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{':
			if depth == 0 {
				start = j
			}
			depth++
		case c == '}':
			depth--
			if depth < 0 {
				return false
			}
			if depth == 0 {
				o.Events = append(o.Events, s[start:j+1])
			}
		case c == ']' && depth == 0:
			o.Failures, o.RetryAt = int(num("failures")), num("retry_at")
			return true
		}
	}
	return false
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// Add queues an event.
func (o *Outbox) Add(ev Event) {
	o.Events = append(o.Events, string(ev.AppendJSON(nil)))
	if over := len(o.Events) - MaxEvents; over > 0 {
		o.Events = append(o.Events[:0], o.Events[over:]...)
	}
	o.save()
}

// Due reports whether the outbox should be sent now.
func (o *Outbox) Due(now int64) bool {
	return len(o.Events) > 0 && now >= o.RetryAt
}

// Take returns the batch to send now (at most MaxBatchEvents events),
// sent at sentAt (ISO 8601), and how many events it holds, for Sent.
func (o *Outbox) Take(sentAt string) (body []byte, n int) {
	n = min(len(o.Events), MaxBatchEvents)
	body = appendString(append(body, `{"sent_at":`...), sentAt)
	body = append(body, `,"events":[`...)
	for i, ev := range o.Events[:n] {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, ev...)
	}
	return append(body, "]}"...), n
}

// Sent removes the first n events, which the server acknowledged.
func (o *Outbox) Sent(n int) {
	o.Events = append(o.Events[:0], o.Events[min(n, len(o.Events)):]...)
	o.Failures, o.RetryAt = 0, 0
	o.save()
}

// Failed schedules the next try with exponential backoff and returns in
// how many milliseconds.
func (o *Outbox) Failed(now int64) int64 {
	o.Failures++
	d := int64(firstRetry) << min(o.Failures-1, 16)
	d = min(d, maxRetry)
	o.RetryAt = now + d
	o.save()
	return d
}

func (o *Outbox) save() {
	b := []byte(`{"events":[`)
	for i, ev := range o.Events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, ev...)
	}
	b = append(b, `],"failures":`...)
	b = appendInt(b, int64(o.Failures))
	b = append(b, `,"retry_at":`...)
	b = appendInt(b, o.RetryAt)
	o.st.Set(KeyOutbox, string(append(b, '}')))
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

// appendInt appends n in decimal.
func appendInt(b []byte, n int64) []byte {
	if n < 0 {
		b = append(b, '-')
		n = -n
	}
	var d [20]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, d[i:]...)
}
