package track

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/tracker-wasm/wire"
)

// TestSegmentIdentity is the identity table: which anonymous id and email
// a message's event gets, and when a link event carries the other id.
func TestSegmentIdentity(t *testing.T) {
	for _, tt := range []struct {
		name, call, msg string
		anon, email     string
		link            string // the link event's anonymous id, "" for none
	}{
		{"anonymous", "track", `{"anonymousId":"a1","event":"x"}`, "a1", "", ""},
		{"user id", "track", `{"userId":"42","event":"x"}`, "uid:42", "", ""},
		{"numeric user id", "track", `{"userId":42,"event":"x"}`, "uid:42", "", ""},
		{"user id wins over anonymous id", "track", `{"userId":"42","anonymousId":"a1","event":"x"}`, "uid:42", "", ""},
		{"email user id", "track", `{"userId":"Jane@Example.com","anonymousId":"a1","event":"x"}`, "a1", "Jane@Example.com", ""},
		{"context traits email links both ids", "track", `{"userId":"42","anonymousId":"a1","event":"x","context":{"traits":{"email":"j@x.de"}}}`, "uid:42", "j@x.de", "a1"},
		{"identify traits email", "identify", `{"userId":"42","traits":{"email":"j@x.de"}}`, "uid:42", "j@x.de", ""},
		{"identify links the anonymous id", "identify", `{"userId":"42","anonymousId":"a1","traits":{"email":"j@x.de"}}`, "uid:42", "j@x.de", "a1"},
		{"identify without email links nothing", "identify", `{"userId":"42","anonymousId":"a1","traits":{"name":"J"}}`, "uid:42", "", ""},
		{"track's properties.email is not the user's", "track", `{"userId":"42","event":"x","properties":{"email":"friend@x.de"}}`, "uid:42", "", ""},
		{"group traits email is the company's", "group", `{"userId":"42","groupId":"g","traits":{"email":"billing@acme.example"}}`, "uid:42", "", ""},
		{"alias to an email", "alias", `{"previousId":"a1","userId":"j@x.de"}`, "a1", "j@x.de", ""},
		{"alias to a user id with an email", "alias", `{"previousId":"a1","userId":"42","context":{"traits":{"email":"j@x.de"}}}`, "uid:42", "j@x.de", "a1"},
		{"alias without email", "alias", `{"previousId":"a1","userId":"42"}`, "uid:42", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			if err := DecodeSegment(tt.call, []byte(tt.msg), &r); err != nil || len(r.seg.errs) > 0 {
				t.Fatalf("%v %+v", err, r.seg.errs)
			}
			ev := r.Events[0]
			if ev.AnonymousID != tt.anon || ev.Email != tt.email {
				t.Errorf("anonymous id %q email %q, want %q %q", ev.AnonymousID, ev.Email, tt.anon, tt.email)
			}
			if tt.link == "" {
				if len(r.Events) != 1 {
					t.Errorf("events %+v, want one", r.Events)
				}
				return
			}
			if len(r.Events) != 2 {
				t.Fatalf("events %+v, want a link event", r.Events)
			}
			l := r.Events[1]
			if l.Type != SegmentAliasType || l.AnonymousID != tt.link || l.Email != tt.email || r.seg.events[1].derived != ev.ID || !strings.HasPrefix(l.ID, "link-") {
				t.Errorf("link event %+v derived from %q", l, r.seg.events[1].derived)
			}
			// a retried message makes the same link event: it deduplicates
			var again Request
			DecodeSegment(tt.call, []byte(tt.msg), &again)
			if ev.ID != "" && strings.Contains(tt.msg, "messageId") && again.Events[1].ID != l.ID {
				t.Errorf("link id %s then %s", l.ID, again.Events[1].ID)
			}
		})
	}
}

// TestSegmentReceive stores a batch through Receive: the link event is not
// counted, errors name the message and Segment's field, and the time is
// corrected with sentAt.
func TestSegmentReceive(t *testing.T) {
	st, err := store.Open(store.Options{Dir: t.TempDir()}) // in memory, Badger has no value log for the larger events
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	tr := New(st, Options{MaxPendingEvents: 1000, MaxBatchEvents: 100, Now: func() time.Time { return now }})
	defer tr.Close()
	body := `{"sentAt":"2026-11-20T13:00:00Z","batch":[
		{"type":"identify","messageId":"m1","userId":"42","anonymousId":"a1","traits":{"email":"j@x.de"},"timestamp":"2026-11-20T12:59:00Z"},
		{"type":"track","messageId":"m2","userId":"42","event":"Order Completed","properties":{"order_id":"1","total":5}},
		{"type":"page","messageId":"m3","anonymousId":"a1","properties":{"url":"https://shop.example/"},"context":{"userAgent":"Googlebot/2.1 (+http://www.google.com/bot.html)"}},
		{"type":"screen","userId":"42","timestamp":"soon"}]}`
	var r Request
	if err := DecodeSegment(SegmentBatch, []byte(body), &r); err != nil {
		t.Fatal(err)
	}
	r.Via = model.ViaAPI
	res, err := tr.Receive(&r)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 2 || res.Rejected != 2 || len(res.Errors) != 2 {
		t.Fatalf("%+v", res.Response)
	}
	for i, want := range []wire.Error{
		{Index: 1, Field: "properties.currency", Code: CodeInvalid, Message: "properties.currency must be an active ISO 4217 currency code such as \"EUR\""},
		{Index: 3, Field: "timestamp", Code: CodeInvalid},
	} {
		got := res.Errors[i]
		if got.Index != want.Index || got.Field != want.Field || got.Code != want.Code || (want.Message != "" && got.Message != want.Message) {
			t.Errorf("error %d: %+v, want %+v", i, got, want)
		}
	}
	if len(res.Stored) != 2 || res.Stored[0].ID != "m1" || res.Stored[1].ID != "m3" {
		t.Fatalf("stored %+v", res.Stored)
	}
	// the sender's clock is 3 h ahead: 12:59 there is 09:59 here
	if id := res.Stored[0]; !id.Time.Equal(now.Add(-time.Minute)) || id.Via != model.ViaAPI || id.UserAgent != "" {
		t.Errorf("identify %+v", id)
	}
	if pv := res.Stored[1]; !pv.Bot || !strings.HasPrefix(pv.UserAgent, "Googlebot") {
		t.Errorf("page from a bot's user agent: %+v", pv)
	}
	// and the link event is in the log, derived from m1
	evs, err := tr.Events(Query{AnonymousID: "a1", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range evs {
		found = found || (e.Type == SegmentAliasType && e.DerivedFrom == "m1" && e.Email == "j@x.de")
	}
	if !found {
		t.Errorf("no link event for a1: %+v", evs)
	}
}

// FuzzDecodeSegment feeds arbitrary bodies through the Segment decoder and
// the validation: no panic, errors name a field, and accepted events are
// within the limits.
func FuzzDecodeSegment(f *testing.F) {
	f.Add("batch", `{"sentAt":"2026-11-20T10:00:00Z","batch":[{"type":"identify","userId":"42","anonymousId":"a","traits":{"email":"J@X.DE"}},{"type":"track","userId":"42","event":"Order Completed","properties":{"order_id":1,"revenue":5,"currency":"eur","products":[{"sku":"1","price":5}]}}]}`)
	f.Add("page", `{"anonymousId":"a","properties":{"url":"https://s.example/?a=1"},"context":{"campaign":{"source":"x","name":"y"},"page":{"referrer":"https://www.google.com/"},"userAgent":"curl/8"}}`)
	f.Add("alias", `{"previousId":"a","userId":"b@c.de","context":{"traits":{"email":5}}}`)
	f.Add("batch", "{\"batch\":[7,{\"type\":\"GROUP\",\"userId\":\"\xff\",\"groupId\":null},{\"type\":\"screen\",\"anonymousId\":\"a\",\"timestamp\":\"2026\"}]}")
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, call, body string) {
		if call != SegmentBatch && !isSegmentCall(call) {
			return
		}
		var r Request
		if DecodeSegment(call, []byte(body), &r) != nil {
			return
		}
		if len(r.Events) != len(r.seg.events) {
			t.Fatalf("%d events, %d segment records", len(r.Events), len(r.seg.events))
		}
		var errs []FieldError
		for i := range r.Events {
			in := r.Events[i]
			in.Props = cloneProps(in.Props)
			ev, fe := normalise(&in, model.ViaAPI, now, 0, 1e6)
			if fe != nil {
				fe.Index = i
				errs = append(errs, *fe)
				continue
			}
			if ev.ID == "" || len(ev.ID) > wire.MaxIDLen || (ev.AnonymousID == "" && ev.Email == "") {
				t.Fatalf("accepted an event outside the limits: %+v", ev)
			}
			if j := ev.AppendJSON(nil); !json.Valid(j) {
				t.Fatalf("accepted event stores as invalid JSON: %q", j)
			}
		}
		for _, fe := range r.seg.segmentErrors(errs) {
			if fe.Message == "" || fe.Code == "" {
				t.Fatalf("error without message or code: %+v", fe)
			}
		}
	})
}

// BenchmarkDecode compares the decoders of the two server endpoints on the
// same 20 product views: DecodeSegment (POST /v1/batch) and DecodeBatch
// (POST /api/v1/events), each followed by the validation.
func BenchmarkDecode(b *testing.B) {
	seg := `{"batch":[`
	api := `{"events":[`
	for i := range 20 {
		if i > 0 {
			seg += ","
			api += ","
		}
		seg += fmt.Sprintf(`{"type":"track","event":"Product Viewed","userId":"42","properties":{"product_id":"1001","name":"Trail Runner 3","price":139.68,"currency":"EUR"},"context":{"page":{"url":"https://shop.example/p/1001-trail-runner-3"},"library":{"name":"@segment/analytics-node","version":"3.1.0"}},"messageId":"node-next-1763632800000-%016d","timestamp":"2026-11-20T10:00:00.000Z","integrations":{},"_metadata":{"nodeVersion":"20.20.2","jsRuntime":"node"}}`, i)
		api += fmt.Sprintf(`{"id":"api-%016d","type":"product_view","time":"2026-11-20T10:00:00.000Z","anonymous_id":"uid:42","url":"https://shop.example/p/1001-trail-runner-3","props":{"product_id":"1001","name":"Trail Runner 3","price":139.68,"currency":"EUR"}}`, i)
	}
	seg += `],"writeKey":"st_x","sentAt":"2026-11-20T10:00:00.100Z"}`
	api += `]}`
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for _, bc := range []struct {
		name   string
		decode func(body []byte, r *Request) error
		body   []byte
	}{
		{"segment", func(body []byte, r *Request) error { return DecodeSegment(SegmentBatch, body, r) }, []byte(seg)},
		{"api", DecodeBatch, []byte(api)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				var r Request
				if err := bc.decode(bc.body, &r); err != nil {
					b.Fatal(err)
				}
				for i := range r.Events {
					if _, fe := normalise(&r.Events[i], model.ViaAPI, now, 0, 1e6); fe != nil {
						b.Fatal(fe)
					}
				}
			}
		})
	}
}

// FuzzFastSegment holds fastSegmentBatch to encoding/json: whatever a body
// decodes to through the fast path, it decodes to the same without it.
func FuzzFastSegment(f *testing.F) {
	for _, s := range fastSegmentSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		decode := func(fast bool) Request {
			useFastSegment = fast
			defer func() { useFastSegment = true }()
			var r Request
			if err := DecodeSegment(SegmentBatch, []byte(body), &r); err != nil {
				return Request{}
			}
			for i := range r.Events {
				r.Events[i].ID = "" // random for messages without messageId
			}
			for i := range r.seg.events {
				r.seg.events[i].derived = ""
			}
			return r
		}
		fast, slow := decode(true), decode(false)
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s\nfast %+v %+v\nslow %+v %+v", body, fast.Batch, fast.seg, slow.Batch, slow.seg)
		}
	})
}

var fastSegmentSeeds = []string{
	`{"batch":[{"type":"track","event":"Product Viewed","userId":"42","properties":{"product_id":"1001","price":1.5},"context":{"page":{"url":"https://s.example/p","referrer":null},"library":{"name":"x"},"traits":{"email":"j@x.de","name":"J"},"userAgent":"Mozilla/5.0"},"messageId":"m1","timestamp":"2026-11-20T10:00:00.000Z","integrations":{}}],"writeKey":"k","sentAt":"2026-11-20T10:00:00.100Z"}`,
	`{"batch":[{"type":"page","anonymousId":"a","name":"Home","properties":{"url":"https://s.example/?a=1"},"context":{"campaign":{"source":"g","medium":"cpc","name":"n","term":"t","content":"c"}}},{"type":"identify","userId":7,"anonymousId":"a","traits":{"email":"A@B.DE"}}]}`,
	`{"batch":[{"type":"alias","previousId":"a","userId":"b@c.de"},{"type":"group","userId":"u","groupId":"g","traits":null,"context":null}]}`,
	`{"batch":[{"Type":"track","userId":"u","event":"x"}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"x","context":{"page":"x"}}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"x","properties":{"a":1},"properties":{"b":2}}]}`,
	`{"context":{"userAgent":"x"},"batch":[{"type":"track","userId":"u","event":"x"}]}`,
	`{"batch":[{"type":"track","userId":"u","event":"x\u00e9\"","messageId":"a\/b"}],"batch":[]}`,
	`{"batch":[7,{"type":"screen","anonymousId":"a"}],"sentAt":"now"}`,
}

func TestFastSegmentTakesTheUsualShape(t *testing.T) {
	for _, s := range fastSegmentSeeds[:3] {
		var msgs []segMessage
		var sentAt json.RawMessage
		if !fastSegmentBatch([]byte(s), &msgs, &sentAt) || len(msgs) == 0 {
			t.Errorf("the fast path did not take %s", s)
		}
	}
	for _, i := range []int{3, 4, 6, 7} { // letter case, a page that is no object, a shared context, two batches
		s := fastSegmentSeeds[i]
		var msgs []segMessage
		var sentAt json.RawMessage
		if fastSegmentBatch([]byte(s), &msgs, &sentAt) {
			t.Errorf("the fast path took %s", s)
		}
	}
}
