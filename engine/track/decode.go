package track

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/shoptrail/shoptrail/engine/fastjson"
	"github.com/shoptrail/shoptrail/tracker-wasm/wire"
)

// Request is one ingestion request: the decoded batch and what the server
// knows about its sender.
type Request struct {
	wire.Batch
	Via       string // model.ViaBrowser or model.ViaAPI
	UserAgent string // the request's User-Agent header

	// Repaired counts the invalid UTF-8 sequences DecodeBatch replaced
	// with U+FFFD, and the escapes of lone surrogates it replaced with
	// \ufffd (fastjson.RepairSurrogates).
	Repaired int
	// bad holds the events that did not decode, by index; Events holds a
	// zero event at each of these indexes.
	bad []FieldError
	// seg is set by DecodeSegment: what each event came from.
	seg *segment
}

// BodyError is a request body that is not a JSON batch at all: nothing of
// it is stored.
type BodyError struct {
	Field   string // "body", "sent_at" or "events"
	Offset  int64  // byte offset of a syntax error; 0 if not known
	Message string
}

func (e *BodyError) Error() string { return e.Message }

// repair replaces invalid UTF-8 with U+FFFD and escapes of lone
// surrogates with \ufffd, counting both in r.Repaired: what every decoder
// of a request body does first.
func (r *Request) repair(body []byte) []byte {
	if !utf8.Valid(body) {
		body, r.Repaired = repairUTF8(body)
	}
	return fastjson.RepairSurrogates(body, &r.Repaired)
}

// DecodeBatch decodes a request body {"sent_at":...,"events":[...]} into r.
//
// Invalid UTF-8 is replaced by U+FFFD before decoding, in every string of
// the body (props included), and counted in r.Repaired: what is stored is
// always valid UTF-8, and so is the JSON it is listed as.
//
// An event whose fields have the wrong JSON types (an "id" that is a
// number, a "props" that is a string) fails alone: it is reported by
// Ingest as that event's error and the others are stored. Text after the
// batch, and a body that is not JSON, are a *BodyError.
func DecodeBatch(body []byte, r *Request) error {
	body = r.repair(body)
	// The fast path: the whole batch at once, without reflection when it
	// has the usual shape (and is valid JSON).
	if fastDecode(body, &r.Batch) {
		return nil
	}
	r.Batch = wire.Batch{}
	err := json.Unmarshal(body, &r.Batch)
	if err == nil {
		return nil
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return &BodyError{Field: "body", Offset: syn.Offset,
			Message: fmt.Sprintf("the body is not a JSON batch {\"events\":[...]}: %v (at byte %d)", err, syn.Offset)}
	}
	// Valid JSON, but some value has the wrong type: decode event by event
	// so that one bad event does not cost the others.
	r.Batch = wire.Batch{}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return &BodyError{Field: "body", Message: "the body is not a JSON batch {\"events\":[...]}: it is not an object"}
	}
	var raw struct {
		SentAt json.RawMessage `json:"sent_at"`
		Events json.RawMessage `json:"events"`
	}
	_ = json.Unmarshal(body, &raw) // cannot fail: body is an object and both fields are raw
	if len(raw.SentAt) > 0 {
		if json.Unmarshal(raw.SentAt, &r.SentAt) != nil {
			return &BodyError{Field: "sent_at", Message: "sent_at must be a time like \"2026-11-20T10:00:00Z\""}
		}
	}
	var evs []json.RawMessage
	if len(raw.Events) > 0 && json.Unmarshal(raw.Events, &evs) != nil {
		return &BodyError{Field: "events", Message: "events must be an array of event objects"}
	}
	r.Events = make([]wire.Event, len(evs))
	for i, e := range evs {
		if json.Unmarshal(e, &r.Events[i]) == nil {
			continue
		}
		r.Events[i] = wire.Event{}
		fe := eventDecodeError(e)
		fe.Index = i
		r.bad = append(r.bad, fe)
	}
	return nil
}

// eventDecodeError names the first field of an event that does not
// decode. It runs only for bad events: it decodes each field alone.
func eventDecodeError(raw json.RawMessage) FieldError {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return FieldError{Field: "", Code: CodeInvalid, Message: "an event must be a JSON object"}
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		// only the event's own fields can fail (encoding/json matches
		// their names case-insensitively); other keys are ignored
		if slices.ContainsFunc(eventFields, func(f string) bool { return strings.EqualFold(f, k) }) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		one, _ := json.Marshal(map[string]json.RawMessage{k: fields[k]})
		var ev wire.Event
		if json.Unmarshal(one, &ev) == nil {
			continue
		}
		field := strings.ToLower(k)
		msg := field + " must be a string"
		switch field {
		case "time":
			msg = "time must be a time like \"2026-11-20T10:00:00Z\""
		case "props":
			msg = "props must be an object"
		}
		return FieldError{Field: field, Code: CodeInvalid, Message: msg}
	}
	return FieldError{Code: CodeInvalid, Message: "the event does not decode"}
}

// eventFields are the JSON names of wire.Event's fields.
var eventFields = []string{"id", "type", "time", "anonymous_id", "session_id", "email", "url", "referrer", "props"}

// repairUTF8 returns b with every invalid UTF-8 byte replaced by U+FFFD
// (as encoding/json does for the strings it decodes) and how many it
// replaced.
func repairUTF8(b []byte) ([]byte, int) {
	out := make([]byte, 0, len(b)+16)
	n := 0
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			out = append(out, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			out = append(out, "\uFFFD"...)
			n++
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out, n
}
