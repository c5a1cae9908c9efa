// Package fastjson reads the usual shapes of JSON without reflection: the
// batches browsers and SDKs send, and the events the log stores. A
// Decoder's methods report false at anything they do not read exactly as
// encoding/json would (a field name in other letter case, a value of the
// wrong type, an unusual escape) and at anything that is not valid JSON;
// the caller then decodes the whole value with encoding/json, which also
// says what is wrong. Fuzz tests in the callers' packages hold each fast
// path to json.Unmarshal's results.
package fastjson

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Decoder reads one JSON text from a buffer.
type Decoder struct {
	buf []byte
	i   int
}

// NewDecoder returns a decoder of b.
func NewDecoder(b []byte) Decoder { return Decoder{buf: b} }

// Pos is the offset of the next byte to read.
func (d *Decoder) Pos() int { return d.i }

// End skips white space and reports whether nothing follows.
func (d *Decoder) End() bool {
	d.WS()
	return d.i == len(d.buf)
}

// WS skips white space.
func (d *Decoder) WS() {
	for d.i < len(d.buf) {
		switch d.buf[d.i] {
		case ' ', '\t', '\r', '\n':
			d.i++
		default:
			return
		}
	}
}

// Consume skips white space and then c, if c is next.
func (d *Decoder) Consume(c byte) bool {
	d.WS()
	if d.i < len(d.buf) && d.buf[d.i] == c {
		d.i++
		return true
	}
	return false
}

// Null consumes a null literal, if one is next.
func (d *Decoder) Null() bool {
	d.WS()
	if bytes.HasPrefix(d.buf[d.i:], []byte("null")) {
		d.i += 4
		return true
	}
	return false
}

// Object calls field for each key of the object whose '{' was consumed,
// with the decoder before the key's value. Keys with escapes are left to
// encoding/json (false).
func (d *Decoder) Object(field func(key []byte) bool) bool {
	if d.Consume('}') {
		return true
	}
	for {
		d.WS()
		key, ok := d.PlainString()
		if !ok || !d.Consume(':') {
			return false
		}
		if !field(key) {
			return false
		}
		if d.Consume(',') {
			continue
		}
		return d.Consume('}')
	}
}

// Array calls elem for each element of the array whose '[' was consumed.
func (d *Decoder) Array(elem func() bool) bool {
	if d.Consume(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if d.Consume(',') {
			continue
		}
		return d.Consume(']')
	}
}

// PlainString reads a string without escapes and returns its contents;
// false for any other value.
func (d *Decoder) PlainString() ([]byte, bool) {
	d.WS()
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

// Skip skips one value without validating it and returns its bytes; the
// buffer must be valid JSON (or the caller validates what it gets).
func (d *Decoder) Skip() []byte {
	d.WS()
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

// ValidValue skips one value and returns its bytes, and whether they are
// valid JSON: a string without escapes or control characters is checked
// here, anything else by json.Valid.
func (d *Decoder) ValidValue() ([]byte, bool) {
	d.WS()
	start := d.i
	if s, ok := d.PlainString(); ok {
		return d.buf[start : start+len(s)+2], true
	}
	d.i = start
	v := d.Skip()
	return v, len(v) > 0 && json.Valid(v)
}

// String reads a string value. Escapes are unquoted here as encoding/json
// does; anything unusual in one (invalid UTF-8, a lone surrogate) is left
// to encoding/json, for that string alone.
func (d *Decoder) String() (string, bool) {
	start := d.i
	if s, ok := d.PlainString(); ok {
		return string(s), true
	}
	d.i = start
	d.WS()
	if d.i >= len(d.buf) || d.buf[d.i] != '"' {
		return "", false
	}
	raw := d.Skip()
	if s, ok := unquote(raw); ok {
		return s, true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// unquote unquotes a JSON string of valid UTF-8 whose escapes are all
// well formed; false for anything else.
func unquote(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[len(raw)-1] != '"' {
		return "", false
	}
	in := raw[1 : len(raw)-1]
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); {
		c := in[i]
		switch {
		case c == '\\':
			if i+1 >= len(in) {
				return "", false
			}
			i += 2
			switch in[i-1] {
			case '"', '\\', '/':
				out = append(out, in[i-1])
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(in[i:])
				if !ok {
					return "", false
				}
				i += 4
				if utf16.IsSurrogate(r) {
					if i+6 > len(in) || in[i] != '\\' || in[i+1] != 'u' {
						return "", false // a lone surrogate: encoding/json's U+FFFD
					}
					r2, ok := hex4(in[i+2:])
					if r = utf16.DecodeRune(r, r2); !ok || r == utf8.RuneError {
						return "", false
					}
					i += 6
				}
				out = utf8.AppendRune(out, r)
			default:
				return "", false
			}
		case c < ' ' || c == '"':
			return "", false
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, n := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && n == 1 {
				return "", false
			}
			out = append(out, in[i:i+n]...)
			i += n
		}
	}
	return string(out), true
}

// RepairSurrogates returns b with every \u escape of a lone UTF-16
// surrogate (a high one not followed by the escape of a low one, a low
// one alone) replaced by \ufffd, adding how many it replaced to *n.
// encoding/json decodes such an escape as U+FFFD, so no decoded string
// changes; but a property's value is stored and listed as sent, and strict
// parsers refuse the escape (serde_json, PostgreSQL's jsonb). Browsers
// send them: JSON.stringify escapes the half of an emoji that a string
// cut in two ends with. Backslashes occur only in strings of valid JSON,
// so b is searched for \u without tracking strings (a \u after an odd
// number of backslashes is an escape); invalid JSON is left to the
// decoder.
func RepairSurrogates(b []byte, n *int) []byte {
	var out []byte
	last := 0
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(`\u`))
		if j < 0 {
			break
		}
		i += j
		k := 1 // the backslashes that end at i: an even run escapes itself
		for i-k >= 0 && b[i-k] == '\\' {
			k++
		}
		r, ok := hex4(b[i+2:])
		if k%2 == 0 || !ok || !utf16.IsSurrogate(r) {
			i += 2
			continue
		}
		if r < 0xDC00 && i+12 <= len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
			if r2, ok := hex4(b[i+8:]); ok && 0xDC00 <= r2 && r2 < 0xE000 {
				i += 12 // a pair
				continue
			}
		}
		if out == nil {
			out = make([]byte, 0, len(b))
		}
		out = append(append(out, b[last:i]...), `\ufffd`...)
		i += 6
		last = i
		*n++
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

// hex4 reads the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// RawMap reads an object of raw values into *m, as json.Unmarshal does
// into a map[string]json.RawMessage: null clears it, and keys are added to
// what is there. The values are copied, and validated (ValidValue).
func (d *Decoder) RawMap(m *map[string]json.RawMessage) bool {
	if d.Null() {
		*m = nil
		return true
	}
	if !d.Consume('{') {
		return false
	}
	if *m == nil {
		*m = map[string]json.RawMessage{}
	}
	return d.Object(func(k []byte) bool {
		v, ok := d.ValidValue()
		(*m)[string(k)] = append(json.RawMessage(nil), v...)
		return ok
	})
}

// TimeOrNull reads a JSON time string (nil for null); false when the value
// is anything else.
func (d *Decoder) TimeOrNull() (*time.Time, bool) {
	if d.Null() {
		return nil, true
	}
	t := new(time.Time)
	if !d.Time(t) {
		return nil, false
	}
	return t, true
}

// Time reads a JSON time string into t; null leaves t as it is.
func (d *Decoder) Time(t *time.Time) bool {
	if d.Null() {
		return true
	}
	raw := d.Skip()
	return len(raw) > 0 && raw[0] == '"' && t.UnmarshalJSON(raw) == nil
}

// Uint reads an unsigned integer into u; null leaves u as it is.
func (d *Decoder) Uint(u *uint64) bool {
	if d.Null() {
		return true
	}
	d.WS()
	start := d.i
	var v uint64
	for d.i < len(d.buf) && '0' <= d.buf[d.i] && d.buf[d.i] <= '9' {
		c := uint64(d.buf[d.i] - '0')
		if v > (1<<64-1-c)/10 {
			return false // out of range
		}
		v = v*10 + c
		d.i++
	}
	n := d.i - start
	if n == 0 || n > 1 && d.buf[start] == '0' {
		return false
	}
	if d.i < len(d.buf) {
		switch d.buf[d.i] {
		case '.', 'e', 'E', '-', '+':
			return false // a fraction or exponent: encoding/json refuses it for a uint
		}
	}
	*u = v
	return true
}

// Bool reads true or false into b; null leaves b as it is.
func (d *Decoder) Bool(b *bool) bool {
	if d.Null() {
		return true
	}
	d.WS()
	switch rest := d.buf[d.i:]; {
	case bytes.HasPrefix(rest, []byte("true")):
		*b = true
		d.i += 4
	case bytes.HasPrefix(rest, []byte("false")):
		*b = false
		d.i += 5
	default:
		return false
	}
	return true
}

// FoldsTo reports whether key matches one of names case-insensitively,
// as encoding/json matches field names.
func FoldsTo(key []byte, names ...string) bool {
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return true
		}
	}
	return false
}
