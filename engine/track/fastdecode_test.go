package track

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/shoptrail/shoptrail/tracker-wasm/wire"
)

var fastDecodeSeeds = []string{
	`{"events":[{"id":"bench-1","type":"page_view","time":"2026-11-20T10:00:00Z","anonymous_id":"anon-1","session_id":"sess-1","url":"https://shop.example/p/1?a=1&b=2","referrer":"https://shop.example/c","props":{"product_id":"1001","title":"Trail Runner 3"}}]}`,
	`{"sent_at":"2026-11-20T10:00:00.123Z","events":[{"type":"x","props":{"a":[1,{"b":"c\"d"}],"n":-1.5e3,"t":true,"z":null,"e":{}}},null,{}]}`,
	`{"events":[{"type":"page_view","url":"https:\/\/shop.example\/p\/1","referrer":"a\u00e9\"b\\"}]}`,
	` { "events" : [ { "type" : "x" , "props" : { "a" : 1 } } ] , "other" : {"x":[1,2]} } `,
	`{"events":[]}`, `{"events":null}`, `{}`, `null`, `[]`, `{"events":{}}`,
	`{"Events":[{"type":"x"}]}`, `{"events":[{"TYPE":"x"}]}`, `{"events":[{"ſession_id":"x"}]}`,
	`{"events":[{"id":5}]}`, `{"events":[{"id":"a\u00e9b"}]}`, `{"events":[{"id":"é"}]}`, `{"events":[{"id":null,"type":"x"}]}`,
	`{"events":[{"time":null}]}`, `{"events":[{"time":5}]}`, `{"events":[{"time":"yesterday"}]}`, `{"sent_at":null,"events":[]}`,
	`{"events":[{"props":{"a":1},"props":{"b":2}}]}`, `{"events":[{"props":{"a":1},"props":null}]}`, `{"events":[{"props":"x"}]}`,
	`{"events":[{"type":"x"}],"events":[{"id":"y"}]}`, `{"events":[{"id":"a","id":"b"}]}`, `{"events":[1]}`,
	`{"events":[{"props":{"k\u00e9":1,"a\"b":2}}]}`, `{"events":[{"props":{"a":"\ud800"}}]}`,
}

// FuzzFastDecode holds fastDecode to encoding/json: whatever it decodes,
// it decodes exactly as json.Unmarshal does, and only valid JSON.
func FuzzFastDecode(f *testing.F) {
	for _, s := range fastDecodeSeeds {
		f.Add(s)
	}
	for _, s := range fastDecodeInvalid {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if !utf8.ValidString(body) {
			return // DecodeBatch repairs it first
		}
		var fast wire.Batch
		if !fastDecode([]byte(body), &fast) {
			return
		}
		if !json.Valid([]byte(body)) {
			t.Fatalf("fastDecode accepted invalid JSON: %q", body)
		}
		var slow wire.Batch
		if err := json.Unmarshal([]byte(body), &slow); err != nil {
			t.Fatalf("fastDecode accepted what json.Unmarshal refuses (%v): %s", err, body)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s\nfast %#v\nslow %#v", body, fast, slow)
		}
	})
}

// fastDecodeInvalid are bodies of the usual shape made invalid JSON in
// the places fastDecode skips over or reads itself.
var fastDecodeInvalid = []string{
	`{"events":[{"type":"x"}]} x`, `{"events":[{"type":"x"}]}}`, `{"events":[{"type":"x"}]},`,
	`{"events":[{"type":"x","props":{"a":01}}]}`, `{"events":[{"type":"x","props":{"a":[1,}}}]}`,
	`{"events":[{"type":"x","props":{"a":tru}}]}`, `{"events":[{"type":"x","props":{"a":"b` + "\x01" + `"}}]}`,
	`{"events":[{"type":"x` + "\n" + `y"}]}`, `{"events":[{"type":"x"}],"other":[1 2]}`, `{"events":[{"type":"x"}],"other":{"a"}}`,
	`{"events":[{"type":"x","extra":nul}]}`, `{"events":[{"type":"x","props":{"a":"\q"}}]}`, `{"events":[{"type":"x","props":{"a":1"b":2}}]}`,
	`{"events":[{"type":"x","props":{"a":-}}]}`, `{"events":[{"type":"x","props":{"a":}}]}`, `{"events":[{"type":"x","props":{"a":1.}}]}`,
}

// Invalid JSON never takes the fast path, so DecodeBatch reports it as
// encoding/json does.
func TestFastDecodeRefusesInvalidJSON(t *testing.T) {
	for _, s := range fastDecodeInvalid {
		if json.Valid([]byte(s)) {
			t.Fatalf("test case is valid JSON: %s", s)
		}
		var b wire.Batch
		if fastDecode([]byte(s), &b) {
			t.Errorf("fastDecode accepted %q", s)
		}
		var r Request
		var be *BodyError
		if err := DecodeBatch([]byte(s), &r); !errors.As(err, &be) || be.Field != "body" {
			t.Errorf("DecodeBatch(%q) = %v, want a body error", s, err)
		}
	}
}

func TestFastDecodeTakesTheUsualShape(t *testing.T) {
	for _, s := range fastDecodeSeeds[:5] {
		var b wire.Batch
		if !fastDecode([]byte(s), &b) {
			t.Errorf("fell back on %s", s)
		}
	}
}

// BenchmarkDecodeBatch decodes the single page view of BenchmarkIngest:
// 10.8 µs and 25 allocations with json.Unmarshal alone, 3.1 µs and 15
// with fastDecode (2 shared cores).
func BenchmarkDecodeBatch(b *testing.B) {
	body := []byte(fastDecodeSeeds[0])
	for b.Loop() {
		var r Request
		if err := DecodeBatch(body, &r); err != nil {
			b.Fatal(err)
		}
	}
}
