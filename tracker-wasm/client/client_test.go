package client

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/shoptrail/shoptrail/tracker-wasm/wire"
)

type mem map[string]string

func (m mem) Get(k string) (string, bool) { v, ok := m[k]; return v, ok }
func (m mem) Set(k, v string)             { m[k] = v }

func ids() func() string {
	n := 0
	return func() string { n++; return fmt.Sprint("id", n) }
}

func TestSessionEndsTwelveHoursAfterTheLastEvent(t *testing.T) {
	st, id := mem{}, ids()
	t0 := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	steps := []struct {
		at   time.Duration
		want string
	}{
		{0, "id1"},
		{11 * time.Hour, "id1"},              // 11 h after the last event
		{22 * time.Hour, "id1"},              // 11 h after that: still the same session
		{22*time.Hour + 12*time.Hour, "id1"}, // exactly 12 h: still in
		{22*time.Hour + 24*time.Hour + time.Millisecond, "id2"}, // 12 h and a millisecond after the last: a new one
	}
	for _, s := range steps {
		if got := Session(st, t0.Add(s.at).UnixMilli(), MaxSessionIdle, id); got != s.want {
			t.Errorf("at +%s: session %s, want %s", s.at, got, s.want)
		}
	}
}

func TestAnonymousIDIsKept(t *testing.T) {
	st, id := mem{}, ids()
	if a, b := AnonymousID(st, id), AnonymousID(st, id); a != "id1" || b != "id1" {
		t.Fatalf("%s %s", a, b)
	}
}

func TestOutboxRetriesWithBackoffAndSurvivesReload(t *testing.T) {
	st := mem{}
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	now := at.UnixMilli()
	iso := at.Format(time.RFC3339Nano)
	o := LoadOutbox(st)
	o.Add(Event{ID: "1", Type: "page_view", Time: iso, URL: "https://shop.example/p/1?a=\"<b>&c", Props: `{"price":1.5,"name":"Jäger \"x\" \u2028"}`})
	o.Add(Event{ID: "2", Type: "order", Email: "a@b.c", Referrer: "bad \xff utf8 \u2028 \x01"})
	if !o.Due(now) {
		t.Fatal("a new outbox is due at once")
	}
	for i, want := range []int64{1000, 2000, 4000} {
		if d := o.Failed(now); d != want {
			t.Errorf("failure %d: retry in %d ms, want %d", i+1, d, want)
		}
	}
	if o.Due(now + 3000) {
		t.Error("due before the backoff ended")
	}
	// the page changes: the next page finds the events
	o = LoadOutbox(st)
	if !o.Due(now+4000) || len(o.Events) != 2 || o.Failures != 3 {
		t.Fatalf("after reload: %+v", o)
	}
	body, n := o.Take(iso)
	var b wire.Batch
	if err := json.Unmarshal(body, &b); err != nil || n != 2 || len(b.Events) != 2 || b.SentAt == nil {
		t.Fatalf("batch %s (%d): %v", body, n, err)
	}
	e0, e1 := b.Events[0], b.Events[1]
	if e0.ID != "1" || e0.Type != "page_view" || !e0.Time.Equal(at) || !b.SentAt.Equal(at) || e0.URL != "https://shop.example/p/1?a=\"<b>&c" || string(e0.Props["name"]) != `"Jäger \"x\" \u2028"` ||
		e1.Email != "a@b.c" || e1.Referrer != "bad \ufffd utf8 \u2028 \x01" || e1.Time != nil {
		t.Fatalf("decoded %+v %+v", e0, e1)
	}
	o.Add(Event{ID: "3", Type: "x"}) // arrives while the batch is in flight
	o.Sent(n)
	if len(o.Events) != 1 || id(o.Events[0]) != "3" || o.Failures != 0 {
		t.Fatalf("after sent: %+v", o)
	}
	for range 10 {
		o.Failed(now)
	}
	if d := o.Failed(now); d != maxRetry {
		t.Errorf("backoff capped at %d ms, got %d", maxRetry, d)
	}
}

func id(raw string) string {
	var e wire.Event
	json.Unmarshal([]byte(raw), &e)
	return e.ID
}

// TestOutboxReadsWhatEarlierTrackersLeft: encoding/json's outbox.
func TestOutboxReadsWhatEarlierTrackersLeft(t *testing.T) {
	st := mem{KeyOutbox: `{"events":[{"id":"a","type":"page_view","time":"2026-11-20T08:00:00Z","props":{"x":"}"}},{"id":"b","type":"order"}],"failures":1,"retry_at":1700000000000}`}
	o := LoadOutbox(st)
	if len(o.Events) != 2 || id(o.Events[1]) != "b" || o.Failures != 1 || o.RetryAt != 1700000000000 {
		t.Fatalf("%+v", o)
	}
}

func TestLimitsEqualWire(t *testing.T) {
	if MaxBatchEvents != wire.MaxEvents || MaxSessionIdle != wire.MaxSessionIdle.Milliseconds() {
		t.Fatal("client's limits differ from wire's")
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("a\"b<\xff\u2028", "https://x/?q=1&b=2")
	f.Fuzz(func(t *testing.T, s, u string) {
		raw := Event{ID: s, Type: s, AnonymousID: s, URL: u, Time: "2026-11-20T08:00:00.000Z"}.AppendJSON(nil)
		var e wire.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		var want strings.Builder
		for i := 0; i < len(s); {
			r, n := utf8.DecodeRuneInString(s[i:])
			want.WriteRune(r) // RuneError for each invalid byte
			i += n
		}
		if e.ID != want.String() || e.Type != want.String() {
			t.Fatalf("%q → %q", s, e.ID)
		}
	})
}

func TestOutboxIsBounded(t *testing.T) {
	st := mem{}
	o := LoadOutbox(st)
	for i := range MaxEvents + 50 {
		o.Add(Event{ID: fmt.Sprint(i), Type: "x"})
	}
	if len(o.Events) != MaxEvents || id(o.Events[0]) != "50" {
		t.Fatalf("%d events, first %s", len(o.Events), id(o.Events[0]))
	}
	for _, broken := range []string{`{"events":[{"id":"1"}`, `{"events":[}}]}`, `[]`, `{"events":[{"id":"}]"},{"id":"2"}],"failures":2,"retry_at":5}`} {
		st[KeyOutbox] = broken
		o := LoadOutbox(st)
		if broken[len(broken)-1] == '}' && strings.Contains(broken, `"retry_at":5`) {
			if len(o.Events) != 2 || id(o.Events[0]) != "}]" || o.Failures != 2 || o.RetryAt != 5 {
				t.Errorf("%s: %+v", broken, o)
			}
		} else if len(o.Events) != 0 {
			t.Errorf("%s kept %v", broken, o.Events)
		}
	}
	st[KeyOutbox] = "{broken"
	if o := LoadOutbox(st); len(o.Events) != 0 {
		t.Fatal("a damaged outbox is dropped")
	}
}

// A second person identified on the browser is not held to the campaign
// caps and goals of the first: the renderer's counts go, as the server
// starts a session of the second person's own. The same person again, in
// other case or with spaces, keeps them.
func TestAnotherPersonClearsTheCampaignCounts(t *testing.T) {
	st := mem{}
	counts := `{"s":"sid","n":{"c1/0":1}}`
	st.Set(KeyCampaignCounts, counts)
	st.Set(KeyCampaignGoals, "c1/0")
	if Identified(st, "u1@example.com") {
		t.Fatal("the first person identified cleared the anonymous shopper's counts")
	}
	if Identified(st, " U1@Example.com ") {
		t.Fatal("the same person in other case cleared the counts")
	}
	if v, _ := st.Get(KeyCampaignCounts); v != counts {
		t.Fatalf("counts %q", v)
	}
	if !Identified(st, "u2@example.com") {
		t.Fatal("another person kept the first one's counts")
	}
	for _, k := range []string{KeyCampaignCounts, KeyCampaignGoals} {
		if v, _ := st.Get(k); v != "" {
			t.Errorf("%s = %q after another person was identified", k, v)
		}
	}
	if v, _ := st.Get(KeyWho); v == "" || strings.Contains(v, "@") {
		t.Errorf("who = %q: a hash, not the email", v)
	}
	if whoHash("a@b.c") == whoHash("a@b.d") {
		t.Error("two emails share a hash")
	}
}
