package track

import (
	"github.com/shoptrail/shoptrail/engine/fastjson"
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
	d := fastDecoder{fastjson.NewDecoder(body)}
	d.WS()
	if !d.Consume('{') {
		return false
	}
	seenEvents := false
	ok := d.Object(func(key []byte) bool {
		switch string(key) {
		case "sent_at":
			var ok bool
			b.SentAt, ok = d.TimeOrNull()
			return ok
		case "events":
			if seenEvents {
				return false // encoding/json would decode into the first one's events
			}
			seenEvents = true
			if d.Null() {
				b.Events = nil
				return true
			}
			if !d.Consume('[') {
				return false
			}
			ok := d.Array(func() bool {
				b.Events = append(b.Events, wire.Event{})
				if d.Null() {
					return true
				}
				if !d.Consume('{') {
					return false
				}
				return d.event(&b.Events[len(b.Events)-1])
			})
			if b.Events == nil {
				b.Events = []wire.Event{}
			}
			return ok
		}
		if fastjson.FoldsTo(key, "sent_at", "events") {
			return false
		}
		_, ok := d.ValidValue() // an unknown key: ignored
		return ok
	})
	return ok && d.End() // nothing after the batch
}

// fastDecoder reads the shapes of track's bodies (a batch, a Segment
// message) with fastjson's primitives.
type fastDecoder struct{ fastjson.Decoder }

// event decodes the fields of an event whose '{' was consumed.
func (d *fastDecoder) event(ev *wire.Event) bool {
	return d.Object(func(key []byte) bool {
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
			ev.Time, ok = d.TimeOrNull()
			return ok
		case "props":
			return d.RawMap(&ev.Props)
		default:
			if fastjson.FoldsTo(key, eventFields...) {
				return false
			}
			_, ok := d.ValidValue()
			return ok
		}
		if d.Null() {
			return true // null leaves a string as it is
		}
		s, ok := d.String()
		if !ok {
			return false
		}
		*dst = s
		return true
	})
}
