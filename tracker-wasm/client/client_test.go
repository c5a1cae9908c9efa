package client

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

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
		{11 * time.Hour, "id1"},                  // 11 h after the last event
		{22 * time.Hour, "id1"},                  // 11 h after that: still the same session
		{22*time.Hour + 12*time.Hour, "id1"},     // exactly 12 h: still in
		{22*time.Hour + 24*time.Hour + 1, "id2"}, // 12 h and a bit after the last: a new one
	}
	for _, s := range steps {
		if got := Session(st, t0.Add(s.at), 12*time.Hour, id); got != s.want {
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
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	o := LoadOutbox(st)
	o.Add(wire.Event{ID: "1", Type: "page_view"})
	o.Add(wire.Event{ID: "2", Type: "order"})
	if !o.Due(now) {
		t.Fatal("a new outbox is due at once")
	}
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if d := o.Failed(now); d != want {
			t.Errorf("failure %d: retry in %s, want %s", i+1, d, want)
		}
	}
	if o.Due(now.Add(3 * time.Second)) {
		t.Error("due before the backoff ended")
	}
	// the page changes: the next page finds the events
	o = LoadOutbox(st)
	if !o.Due(now.Add(4*time.Second)) || len(o.Events) != 2 || o.Failures != 3 {
		t.Fatalf("after reload: %+v", o)
	}
	body, n := o.Take(now)
	var b wire.Batch
	if err := json.Unmarshal(body, &b); err != nil || n != 2 || len(b.Events) != 2 || b.SentAt == nil {
		t.Fatalf("batch %s (%d)", body, n)
	}
	o.Add(wire.Event{ID: "3", Type: "x"}) // arrives while the batch is in flight
	o.Sent(n)
	if len(o.Events) != 1 || o.Events[0].ID != "3" || o.Failures != 0 {
		t.Fatalf("after sent: %+v", o)
	}
	for range 10 {
		o.Failed(now)
	}
	if d := o.Failed(now); d != maxRetry {
		t.Errorf("backoff capped at %s, got %s", maxRetry, d)
	}
}

func TestOutboxIsBounded(t *testing.T) {
	st := mem{}
	o := LoadOutbox(st)
	for i := range MaxEvents + 50 {
		o.Add(wire.Event{ID: fmt.Sprint(i)})
	}
	if len(o.Events) != MaxEvents || o.Events[0].ID != "50" {
		t.Fatalf("%d events, first %s", len(o.Events), o.Events[0].ID)
	}
	st[KeyOutbox] = "{broken"
	if o := LoadOutbox(st); len(o.Events) != 0 {
		t.Fatal("a damaged outbox is dropped")
	}
}
