package model

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// FuzzAppendDecodeRoundTrip writes events of arbitrary fields (props and
// traffic included) with AppendJSON, as the log stores them, and reads
// them back with DecodeEvent, as every projection does: the log entry is
// valid JSON, DecodeEvent reads what json.Unmarshal reads, and that is the
// event json.Marshal would have stored (props compared compacted:
// AppendJSON keeps a prop's bytes as the decoder validated them).
func FuzzAppendDecodeRoundTrip(f *testing.F) {
	f.Add(uint64(7), "id\u2028<>&", "page_view", "x\x00y\xff", "a\\\"b", "é😀", int64(1763632800), `{"a":[1, 2,{"b":null}]}`, "k\xfe", true, true)
	f.Add(uint64(0), "", "", "", "", "", int64(0), `"\ud800\u0041\/"`, "", false, false)
	f.Add(uint64(1<<64-1), "\xed\xa0\x80", "t", "\u00e9", "\t\r\n", "\x7f", int64(-62135596800), `-0.5e-3`, "p", false, true)
	f.Fuzz(func(t *testing.T, seq uint64, id, typ, s1, s2, s3 string, sec int64, prop, key string, traffic, bot bool) {
		at := time.Unix(sec, int64(seq%1e9)).UTC()
		if at.Year() < 1 || at.Year() > 9999 {
			return
		}
		e := Event{Seq: seq, ID: id, Type: typ, OriginalType: s1, Time: at, ReceivedAt: at.Add(time.Second), TimeClamped: bot,
			Via: s2, AnonymousID: s3, SessionID: s1, Email: s2, URL: s3, Referrer: s1, DerivedFrom: s2, UserAgent: s3, Bot: bot}
		if json.Valid([]byte(prop)) {
			e.Props = map[string]json.RawMessage{key: json.RawMessage(bytes.TrimSpace([]byte(prop))), "z": json.RawMessage(`1`)}
		}
		if traffic {
			e.Traffic = &Traffic{Source: s1, Medium: s2, Campaign: s3, Term: id, Content: typ, ClickID: s1, ReferrerHost: s2, Channel: s3}
		}
		b := e.AppendJSON(nil)
		if !json.Valid(b) {
			t.Fatalf("AppendJSON wrote invalid JSON: %q", b)
		}
		var fast, slow, want Event
		if err := DecodeEvent(b, &fast); err != nil {
			t.Fatalf("DecodeEvent %q: %v", b, err)
		}
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q\nfast %#v\nslow %#v", b, fast, slow)
		}
		m, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(m, &want); err != nil {
			t.Fatal(err)
		}
		compact := func(p map[string]json.RawMessage) {
			for k, v := range p {
				var c bytes.Buffer
				if json.Compact(&c, v) == nil {
					// encoding/json's escapes of <, >, & and U+2028/9 aside
					var x any
					json.Unmarshal(c.Bytes(), &x)
					p[k], _ = json.Marshal(x)
				}
			}
		}
		compact(fast.Props)
		compact(want.Props)
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("%q\nread %#v\nwant %#v", b, fast, want)
		}
	})
}
