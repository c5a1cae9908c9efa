package track

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/shoptrail/shoptrail/tracker-wasm/wire"
)

// fastDecode decodes the common shape of a JSON batch without reflection:
// what json.Unmarshal does, about three times faster on the single-event
// requests of the hot path. It reports false, with b in an undefined
// state, at anything it does not handle exactly as json.Unmarshal would (a
// field name in other letter case, a value of the wrong type), and at
// anything that is not valid JSON; the caller then decodes with
// encoding/json. It validates as it goes: a separate json.Valid of the
// body cost a third of the decoding. FuzzFastDecode holds it to the same
// results, and to accepting only valid JSON. body must be valid UTF-8.
func fastDecode(body []byte, b *wire.Batch) bool {
	d := fastDecoder{buf: body}
	d.ws()
	if !d.consume('{') {
		return false
	}
	seenEvents := false
	ok := d.object(func(key []byte) bool {
		switch string(key) {
		case "sent_at":
			var ok bool
			b.SentAt, ok = d.timeOrNull()
			return ok
		case "events":
			if seenEvents {
				return false // encoding/json would decode into the first one's events
			}
			seenEvents = true
			if d.null() {
				b.Events = nil
				return true
			}
			if !d.consume('[') {
				return false
			}
			ok := d.array(func() bool {
				b.Events = append(b.Events, wire.Event{})
				if d.null() {
					return true
				}
				if !d.consume('{') {
					return false
				}
				return d.event(&b.Events[len(b.Events)-1])
			})
			if b.Events == nil {
				b.Events = []wire.Event{}
			}
			return ok
		}
		if foldsTo(key, "sent_at", "events") {
			return false
		}
		_, ok := d.validValue() // an unknown key: ignored
		return ok
	})
	d.ws()
	return ok && d.i == len(d.buf) // nothing after the batch
}

type fastDecoder struct {
	buf []byte
	i   int
}

func (d *fastDecoder) ws() {
	for d.i < len(d.buf) {
		switch d.buf[d.i] {
		case ' ', '\t', '\r', '\n':
			d.i++
		default:
			return
		}
	}
}

// consume skips white space and then c, if c is next.
func (d *fastDecoder) consume(c byte) bool {
	d.ws()
	if d.i < len(d.buf) && d.buf[d.i] == c {
		d.i++
		return true
	}
	return false
}

// null consumes a null literal, if one is next.
func (d *fastDecoder) null() bool {
	d.ws()
	if bytes.HasPrefix(d.buf[d.i:], []byte("null")) {
		d.i += 4
		return true
	}
	return false
}

// object calls field for each key of the object whose '{' was consumed,
// with the decoder before the key's value.
func (d *fastDecoder) object(field func(key []byte) bool) bool {
	if d.consume('}') {
		return true
	}
	for {
		d.ws()
		key, ok := d.plainString()
		if !ok || !d.consume(':') {
			return false
		}
		if !field(key) {
			return false
		}
		if d.consume(',') {
			continue
		}
		return d.consume('}')
	}
}

// array calls elem for each element of the array whose '[' was consumed.
func (d *fastDecoder) array(elem func() bool) bool {
	if d.consume(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if d.consume(',') {
			continue
		}
		return d.consume(']')
	}
}

// plainString reads a string without escapes and returns its contents;
// false for any other value (which encoding/json is left to decode).
func (d *fastDecoder) plainString() ([]byte, bool) {
	d.ws()
	if d.i >= len(d.buf) || d.buf[d.i] != '"' {
		return nil, false
	}
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.buf); j++ {
		switch c := d.buf[j]; {
		case c == '"':
			s := d.buf[start:j]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			d.i = j + 1
			return s, true
		case c == '\\' || c < ' ': // an escape, or a control character JSON forbids
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// value skips one value and returns its bytes.
func (d *fastDecoder) value() []byte {
	d.ws()
	start, depth := d.i, 0
	for d.i < len(d.buf) {
		c := d.buf[d.i]
		switch {
		case c == '"':
			for d.i++; d.i < len(d.buf) && d.buf[d.i] != '"'; d.i++ {
				if d.buf[d.i] == '\\' {
					d.i++
				}
			}
			d.i++                 // the closing quote
			if d.i > len(d.buf) { // no closing quote: invalid JSON
				d.i = len(d.buf)
				return d.buf[start:]
			}
		case c == '{' || c == '[':
			depth++
			d.i++
		case c == '}' || c == ']':
			if depth == 0 { // the end of the enclosing value: a number or literal ended
				return d.buf[start:d.i]
			}
			depth--
			d.i++
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n'):
			return d.buf[start:d.i]
		default:
			d.i++
		}
		if depth == 0 && (c == '"' || c == '}' || c == ']') {
			return d.buf[start:d.i]
		}
	}
	return d.buf[start:d.i]
}

// validValue skips one value and returns its bytes, and whether they are
// valid JSON: a string without escapes or control characters is checked
// here, anything else by json.Valid.
func (d *fastDecoder) validValue() ([]byte, bool) {
	d.ws()
	start := d.i
	if s, ok := d.plainString(); ok {
		return d.buf[start : start+len(s)+2], true
	}
	d.i = start
	v := d.value()
	return v, len(v) > 0 && json.Valid(v)
}

// event decodes the fields of an event whose '{' was consumed.
func (d *fastDecoder) event(ev *wire.Event) bool {
	return d.object(func(key []byte) bool {
		var dst *string
		switch string(key) {
		case "id":
			dst = &ev.ID
		case "type":
			dst = &ev.Type
		case "anonymous_id":
			dst = &ev.AnonymousID
		case "session_id":
			dst = &ev.SessionID
		case "email":
			dst = &ev.Email
		case "url":
			dst = &ev.URL
		case "referrer":
			dst = &ev.Referrer
		case "time":
			var ok bool
			ev.Time, ok = d.timeOrNull()
			return ok
		case "props":
			if d.null() {
				ev.Props = nil
				return true
			}
			if !d.consume('{') {
				return false
			}
			if ev.Props == nil {
				ev.Props = map[string]json.RawMessage{}
			}
			return d.object(func(k []byte) bool {
				v, ok := d.validValue()
				ev.Props[string(k)] = append(json.RawMessage(nil), v...)
				return ok
			})
		default:
			if foldsTo(key, eventFields...) {
				return false
			}
			_, ok := d.validValue()
			return ok
		}
		if d.null() {
			return true // null leaves a string as it is
		}
		s, ok := d.stringValue()
		if !ok {
			return false
		}
		*dst = s
		return true
	})
}

// stringValue reads a string value. One with escapes (PHP writes "\/" in
// every URL) is unquoted by encoding/json, alone.
func (d *fastDecoder) stringValue() (string, bool) {
	start := d.i
	if s, ok := d.plainString(); ok {
		return string(s), true
	}
	d.i = start
	d.ws()
	if d.i >= len(d.buf) || d.buf[d.i] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(d.value(), &s) != nil {
		return "", false
	}
	return s, true
}

// foldsTo reports whether key matches one of names case-insensitively,
// as encoding/json matches field names.
func foldsTo(key []byte, names ...string) bool {
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return true
		}
	}
	return false
}

// timeOrNull reads a JSON time string (nil for null); false when the value
// is anything else.
func (d *fastDecoder) timeOrNull() (*time.Time, bool) {
	if d.null() {
		return nil, true
	}
	raw := d.value()
	if len(raw) == 0 || raw[0] != '"' {
		return nil, false
	}
	t := new(time.Time)
	if t.UnmarshalJSON(raw) != nil {
		return nil, false
	}
	return t, true
}
