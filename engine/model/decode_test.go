package model

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// decodeSeeds are events as AppendJSON writes them, and what older
// versions or hand edits could have left in the log.
func decodeSeeds() []string {
	at := time.Date(2026, 11, 20, 10, 0, 0, 123456789, time.UTC)
	var out []string
	for _, e := range []Event{
		{ID: "a", Type: "page_view", Time: at, ReceivedAt: at, Via: ViaBrowser},
		{Seq: 42, ID: "id\"\\<>&", Type: "Order Completed", OriginalType: "x\u2028y\u2029", Time: at, ReceivedAt: at.Add(time.Second),
			TimeClamped: true, Via: ViaAPI, AnonymousID: "a\x00\x1f\t\n\r", SessionID: "s", Email: "j@x.de", URL: "https://s.example/?a=1&b=<2>",
			Referrer: "https://r.example/é", DerivedFrom: "p", UserAgent: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", Bot: true,
			Props:   map[string]json.RawMessage{"b": json.RawMessage(`[1,{"x":"y"}]`), "a": json.RawMessage(`"\u00e9"`), "ü": json.RawMessage(`null`), "n": json.RawMessage(`-1.5e3`)},
			Traffic: &Traffic{Source: "google", Medium: "organic", Campaign: "c", Term: "t", Content: "ct", ClickID: "gclid", ReferrerHost: "www.google.de", Channel: "Organic Search"}},
		{Seq: 1<<64 - 1, ID: "bad utf8 \xff\xfe", Type: "x", Time: at, ReceivedAt: at, Traffic: &Traffic{Source: "(direct)", Medium: "(none)", Channel: "Direct"}},
		{ID: "😀 \U0001F600", Type: "x", Props: map[string]json.RawMessage{}},
	} {
		out = append(out, string(e.AppendJSON(nil)))
	}
	return append(out,
		`{"seq":1,"id":"a","ID":"b"}`, `{"SEQ":1}`, `{"ſeq":1}`, `{"seq":-1}`, `{"seq":1.0}`, `{"seq":1e2}`, `{"seq":01}`, `{"seq":18446744073709551616}`,
		`{"seq":null,"id":null,"time":null,"bot":null,"props":null,"traffic":null}`, `{"bot":1}`, `{"bot":"true"}`, `{"time":"yesterday"}`, `{"time":5}`,
		`{"props":{"a":1},"props":{"b":2}}`, `{"traffic":{"source":"a"},"traffic":{"medium":"b"}}`, `{"traffic":{"Source":"a"}}`, `{"traffic":[]}`,
		`{"id":"\ud83d\ude00 \ud800 \udc00x \u00e9\/\b\f\n\r\t"}`, `{"id":"\ud800\u0041"}`, `{"id":"a\qb"}`, `{"id":"a`+"\x01"+`"}`,
		`{"other":{"x":[1,2,{"y":null}]},"id":"a"}`, `{"other":[1 2]}`, `{"props":{"a":01}}`, `{"props":{"a":tru}}`, `{"props":{"a":1"b":2}}`,
		` { "id" : "a" , "seq" : 7 } `, `{"id":"a"} x`, `{"id":"a"}}`, `{"id":"a",}`, `null`, `[]`, `{}`, ``, `{"props":"x"}`, `{"props":{"k\u00e9":1}}`,
	)
}

// FuzzDecodeEvent holds DecodeEvent to json.Unmarshal: the same event, or
// an error for the same inputs.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range decodeSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var fast, slow Event
		if fastEvent([]byte(s), &fast) && !json.Valid([]byte(s)) {
			t.Fatalf("the fast path accepted invalid JSON: %q", s)
		}
		errFast := DecodeEvent([]byte(s), &fast)
		errSlow := json.Unmarshal([]byte(s), &slow)
		if (errFast == nil) != (errSlow == nil) {
			t.Fatalf("%q: DecodeEvent %v, json.Unmarshal %v", s, errFast, errSlow)
		}
		if errSlow == nil && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q\nfast %#v\nslow %#v", s, fast, slow)
		}
	})
}

// What AppendJSON writes takes the fast path, with escapes and all.
func TestDecodeEventTakesTheFastPath(t *testing.T) {
	for _, s := range decodeSeeds()[:4] {
		var e Event
		if !fastEvent([]byte(s), &e) {
			t.Errorf("fell back on %s", s)
		}
	}
	// a reused Event keeps nothing of the last one
	e := Event{ID: "old", Props: map[string]json.RawMessage{"x": nil}, Traffic: &Traffic{Source: "old"}}
	if err := DecodeEvent([]byte(`{"type":"x"}`), &e); err != nil || !reflect.DeepEqual(e, Event{Type: "x"}) {
		t.Fatalf("%+v %v", e, err)
	}
	if err := DecodeEvent([]byte(`{"seq":"1"}`), &e); err == nil || !strings.Contains(err.Error(), "seq") {
		t.Fatalf("a bad seq: %v", err)
	}
}

// BenchmarkDecodeEvent decodes a stored page view from a campaign, with
// its traffic and user agent, the way the projections read the log.
func BenchmarkDecodeEvent(b *testing.B) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 123456789, time.UTC)
	raw := (&Event{Seq: 123456, ID: "01J9Z3K5W8Q2B7N4M6P1R3T5V7", Type: "page_view", Time: at, ReceivedAt: at, Via: ViaBrowser,
		AnonymousID: "a8f0c2e4-1b3d-4f5a-9c7e-2d4b6f8a0c1e", SessionID: "s-a8f0c2e4-7", URL: "https://shop.example/p/1001-trail-runner-3?utm_source=facebook&utm_medium=cpc&utm_campaign=autumn",
		Referrer: "https://l.facebook.com/", UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
		Props:   map[string]json.RawMessage{"product_id": json.RawMessage(`"1001"`), "title": json.RawMessage(`"Trail Runner 3"`)},
		Traffic: &Traffic{Source: "facebook", Medium: "cpc", Campaign: "autumn", ReferrerHost: "l.facebook.com", Channel: "Paid Social"}}).AppendJSON(nil)
	for _, bc := range []struct {
		name   string
		decode func([]byte, *Event) error
	}{{"fast", DecodeEvent}, {"encoding-json", func(b []byte, e *Event) error { return json.Unmarshal(b, e) }}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var e Event
				if err := bc.decode(raw, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
