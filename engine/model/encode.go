package model

import (
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the event's JSON, the same as json.Marshal writes,
// without reflection: it runs once per stored event, on the hot path.
// Props values are appended as they are: they come from the decoder, which
// has validated them.
func (e *Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = appendField(b, "id", e.ID)
	b = appendField(b, "type", e.Type)
	b = appendOptional(b, "original_type", e.OriginalType)
	b = append(b, `,"time":`...)
	b = appendTime(b, e.Time)
	b = append(b, `,"received_at":`...)
	b = appendTime(b, e.ReceivedAt)
	if e.TimeClamped {
		b = append(b, `,"time_clamped":true`...)
	}
	b = appendField(b, "via", e.Via)
	b = appendOptional(b, "anonymous_id", e.AnonymousID)
	b = appendOptional(b, "session_id", e.SessionID)
	b = appendOptional(b, "email", e.Email)
	b = appendOptional(b, "url", e.URL)
	b = appendOptional(b, "referrer", e.Referrer)
	if len(e.Props) > 0 {
		b = append(b, `,"props":{`...)
		keys := make([]string, 0, len(e.Props))
		for k := range e.Props {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = append(b, e.Props[k]...)
		}
		b = append(b, '}')
	}
	if t := e.Traffic; t != nil {
		b = append(b, `,"traffic":{"source":`...)
		b = appendString(b, t.Source)
		b = appendField(b, "medium", t.Medium)
		b = appendOptional(b, "campaign", t.Campaign)
		b = appendOptional(b, "term", t.Term)
		b = appendOptional(b, "content", t.Content)
		b = appendOptional(b, "click_id", t.ClickID)
		b = appendOptional(b, "referrer_host", t.ReferrerHost)
		b = appendField(b, "channel", t.Channel)
		b = append(b, '}')
	}
	b = appendOptional(b, "derived_from", e.DerivedFrom)
	b = appendOptional(b, "user_agent", e.UserAgent)
	if e.Bot {
		b = append(b, `,"bot":true`...)
	}
	return append(b, '}')
}

func appendField(b []byte, name, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

func appendOptional(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	return appendField(b, name, v)
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString appends s as a JSON string, escaped as encoding/json does
// (including <, >, & and U+2028/U+2029, so stored text is safe in HTML).
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
