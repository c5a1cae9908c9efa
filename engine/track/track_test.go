package track

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/tracker-wasm/wire"
)

func TestCheckShape(t *testing.T) {
	for _, tt := range []struct {
		json string
		ok   bool
	}{
		{`"short"`, true},
		{`"` + strings.Repeat("x", 11) + `"`, false},
		{`"a\"b\\"`, true},
		{`[1,2,3]`, true},
		{`[1,2,3,4]`, false},
		{`[[1],[2],[3]]`, true},
		{`{"a":{"b":{"c":1}}}`, true},
		{`{"a":{"b":{"c":{"d":1}}}}`, false},
		{`{"k":"x,y,z,w,v"}`, true},
	} {
		err := checkShape([]byte(tt.json), 3, 10, 3)
		if (err == nil) != tt.ok {
			t.Errorf("checkShape(%s) = %v, want ok=%v", tt.json, err, tt.ok)
		}
	}
}

func TestNormaliseEmail(t *testing.T) {
	for in, want := range map[string]string{
		" Jane@Example.COM ":   "jane@example.com",
		"a+tag@x.de":           "a+tag@x.de",
		"jane":                 "",
		"a@x.com\r\nBcc: b":    "",
		"Jane <j@x.com>":       "",
		"a@localhost":          "",
		"Bob@Bücher.de":        "bob@xn--bcher-kva.de",
		"bob@xn--bcher-kva.de": "bob@xn--bcher-kva.de",
		"a@exa_mple.com":       "",
	} {
		got, err := NormaliseEmail(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("NormaliseEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestOverloadIsRefusedNotQueued(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := newCommitter(st, 2, 100, nil)
	defer c.close()
	if _, err := c.commit([]*model.Event{{ID: "1"}, {ID: "2"}, {ID: "3"}}, nil, false); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("3 events with room for 2: %v", err)
	}
	if _, err := c.commit([]*model.Event{{ID: "1"}, {ID: "2"}}, nil, false); err != nil {
		t.Fatalf("2 events: %v", err)
	}
	c.close()
	if _, err := c.commit([]*model.Event{{ID: "4"}}, nil, false); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

// Facts the projections derive (segment entries and exits) do not make
// the committer busy, so the folds that produce them are not slowed down
// by their own output; anything else does, while it waits and for a moment
// after.
func TestDerivedRecordsLeaveTheCommitterIdle(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := newCommitter(st, 1000, 100, nil)
	defer c.close()
	time.Sleep(150 * time.Millisecond)
	for i := range 20 {
		if _, err := c.commit([]*model.Event{{ID: fmt.Sprint("d", i)}}, nil, true); err != nil {
			t.Fatal(err)
		}
		if c.busy() {
			t.Fatalf("busy after derived record %d", i)
		}
	}
	if _, err := c.commit([]*model.Event{{ID: "x"}}, nil, false); err != nil {
		t.Fatal(err)
	}
	if !c.busy() {
		t.Fatal("not busy right after a record")
	}
	time.Sleep(150 * time.Millisecond)
	if c.busy() {
		t.Fatal("still busy 150 ms after the last record")
	}
}

// FuzzNormalise feeds arbitrary request bodies through the decoder and the
// validation: no panic, and whatever is accepted is within the limits.
func FuzzNormalise(f *testing.F) {
	f.Add(`{"events":[{"type":"page_view","anonymous_id":"a","url":"https://s.example/?utm_source=x","referrer":"https://www.google.com/"}]}`)
	f.Add(`{"sent_at":"2026-11-20T10:00:00Z","events":[{"type":"purchase","anonymous_id":"a","url":"https://s.example/","time":"2026-11-20T09:00:00Z","props":{"transaction_id":1,"value":1e309,"currency":"eur","items":[{"item_id":"1","price":"1","quantity":-1}]}}]}`)
	f.Add(`{"events":[{"type":"Order Completed","email":"A@B.CO","props":{"order_id":"x","revenue":1,"currency":"EUR","products":[{"sku":"1","price":2}]}}]}`)
	f.Add(`{"events":[{"type":"x","anonymous_id":"a","url":"https://s.example/","props":{"a":[[[[[[1]]]]]]}}]}`)
	f.Add("{\"events\":[{\"id\":1,\"type\":\"x\"},{\"type\":\"x\",\"anonymous_id\":\"a\",\"url\":\"https://s.example/\xff\",\"props\":{\"q\":\"\xc3\"}}]}")
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body string) {
		var r Request
		if DecodeBatch([]byte(body), &r) != nil {
			return
		}
		b := &r.Batch
		for i := range b.Events {
			if slices.ContainsFunc(r.bad, func(fe FieldError) bool { return fe.Index == i }) {
				continue
			}
			for _, via := range []string{model.ViaBrowser, model.ViaAPI} {
				in := b.Events[i]
				in.Props = cloneProps(in.Props)
				ev, fe := normalise(&in, via, now, 0, 1e6)
				if fe != nil {
					if fe.Field == "" || fe.Message == "" {
						t.Fatalf("error without field or message: %+v", fe)
					}
					continue
				}
				if ev.Time.After(now) || ev.ID == "" || len(ev.ID) > wire.MaxIDLen || (ev.AnonymousID == "" && ev.Email == "") {
					t.Fatalf("accepted an event outside the limits: %+v", ev)
				}
				if _, err := json.Marshal(ev); err != nil {
					t.Fatalf("accepted event does not encode: %v", err)
				}
				if j := ev.AppendJSON(nil); !json.Valid(j) {
					t.Fatalf("accepted event stores as invalid JSON: %q", j)
				}
			}
		}
	})
}

func cloneProps(p map[string]json.RawMessage) map[string]json.RawMessage {
	if p == nil {
		return nil
	}
	out := make(map[string]json.RawMessage, len(p))
	for k, v := range p {
		out[k] = v
	}
	return out
}

func TestEventFieldsMatchWire(t *testing.T) {
	typ := reflect.TypeOf(wire.Event{})
	var names []string
	for i := range typ.NumField() {
		names = append(names, strings.Split(typ.Field(i).Tag.Get("json"), ",")[0])
	}
	if !slices.Equal(names, eventFields) {
		t.Fatalf("eventFields %v, wire.Event has %v", eventFields, names)
	}
	// a bad field named in another case is found too; unknown keys are not at fault
	var r Request
	if err := DecodeBatch([]byte(`{"events":[{"zzz":1,"ID":5,"type":"x"}]}`), &r); err != nil || len(r.bad) != 1 || r.bad[0].Field != "id" {
		t.Fatalf("%v %+v", err, r.bad)
	}
}
