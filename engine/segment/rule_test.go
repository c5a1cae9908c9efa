package segment

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
)

func TestParseIssueExample(t *testing.T) {
	r, err := Parse([]byte(`{"name":"Facebook visitors, last 30 days",
 "match":"all",
 "conditions":[
   {"event":"visit_from_referrer","where":[{"prop":"source","op":"eq","value":"facebook"}],
    "count":{"op":"gte","value":1},"within":"720h"},
   {"attribute":"city","op":"eq","value":"Paris"},
   {"not":{"event":"order","within":"2160h"}},
   {"any":[{"attribute":"gender","op":"eq","value":"female"},{"spent":{"op":"gte","value":200,"currency":"EUR"},"within":"2160h"}]}
 ]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Types(), ","); got != "order,visit_from_referrer" {
		t.Errorf("types %s", got)
	}
	if got := strings.Join(r.Attributes(), ","); got != "city,gender" {
		t.Errorf("attributes %s", got)
	}
	if len(r.atoms) != 2 { // "order" within 90 days and spent share one atom
		t.Errorf("%d atoms, want 2", len(r.atoms))
	}
}

func TestParseAliases(t *testing.T) {
	for _, name := range []string{"Order Completed", "purchase", "order"} {
		r, err := Parse([]byte(`{"name":"x","conditions":[{"event":"` + name + `"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		if r.Types()[0] != "order" {
			t.Errorf("%s: type %s", name, r.Types()[0])
		}
	}
	r, err := Parse([]byte(`{"name":"x","conditions":[{"event":"wishlist_add"}]}`))
	if err != nil || r.Types()[0] != "wishlist_add" {
		t.Errorf("custom event: %v %v", r, err)
	}
}

// The bad-input table: every bad rule is refused with the JSON path of the
// bad node.
func TestParseErrors(t *testing.T) {
	ok := `{"event":"order"}`
	for _, tc := range []struct {
		name, body, field string
	}{
		{"not json", `{`, "body"},
		{"a list", `[]`, "body"},
		{"no name", `{"conditions":[` + ok + `]}`, "name"},
		{"blank name", `{"name":"  ","conditions":[` + ok + `]}`, "name"},
		{"name a number", `{"name":5,"conditions":[` + ok + `]}`, "name"},
		{"long name", `{"name":"` + strings.Repeat("x", 201) + `","conditions":[` + ok + `]}`, "name"},
		{"unknown top field", `{"name":"x","conditions":[` + ok + `],"colour":1}`, "colour"},
		{"bad match", `{"name":"x","match":"most","conditions":[` + ok + `]}`, "match"},
		{"no conditions", `{"name":"x","conditions":[]}`, "conditions"},
		{"conditions an object", `{"name":"x","conditions":{}}`, "conditions"},
		{"condition a string", `{"name":"x","conditions":["order"]}`, "conditions[0]"},
		{"condition null", `{"name":"x","conditions":[null]}`, "conditions[0]"},
		{"empty condition", `{"name":"x","conditions":[{}]}`, "conditions[0]"},
		{"bad where op", `{"name":"x","conditions":[` + ok + `,` + ok + `,{"event":"page_view","where":[{"prop":"source","op":"like","value":"x"}]}]}`, "conditions[2].where[0].op"},
		{"where prop missing", `{"name":"x","conditions":[{"event":"page_view","where":[{"op":"eq","value":"x"}]}]}`, "conditions[0].where[0].prop"},
		{"where prop odd", `{"name":"x","conditions":[{"event":"page_view","where":[{"prop":"a b","value":"x"}]}]}`, "conditions[0].where[0].prop"},
		{"where value missing", `{"name":"x","conditions":[{"event":"page_view","where":[{"prop":"source","op":"eq"}]}]}`, "conditions[0].where[0].value"},
		{"where value object", `{"name":"x","conditions":[{"event":"page_view","where":[{"prop":"source","value":{"a":1}}]}]}`, "conditions[0].where[0].value"},
		{"where unknown key", `{"name":"x","conditions":[{"event":"page_view","where":[{"prop":"source","value":"x","case":1}]}]}`, "conditions[0].where[0].case"},
		{"in not a list", `{"name":"x","conditions":[{"event":"page_view","where":[{"prop":"source","op":"in","value":"x"}]}]}`, "conditions[0].where[0].value"},
		{"in a list of lists", `{"name":"x","conditions":[{"event":"page_view","where":[{"prop":"source","op":"in","value":[[1]]}]}]}`, "conditions[0].where[0].value[0]"},
		{"contains a number", `{"name":"x","conditions":[{"attribute":"city","op":"contains","value":5}]}`, "conditions[0].value"},
		{"gt true", `{"name":"x","conditions":[{"attribute":"age","op":"gt","value":true}]}`, "conditions[0].value"},
		{"exists a string", `{"name":"x","conditions":[{"attribute":"city","op":"exists","value":"yes"}]}`, "conditions[0].value"},
		{"event empty", `{"name":"x","conditions":[{"event":""}]}`, "conditions[0].event"},
		{"event a number", `{"name":"x","conditions":[{"event":3}]}`, "conditions[0].event"},
		{"event segment_entered", `{"name":"x","conditions":[{"event":"segment_entered"}]}`, "conditions[0].event"},
		{"event unknown field", `{"name":"x","conditions":[{"event":"order","when":"now"}]}`, "conditions[0].when"},
		{"count op", `{"name":"x","conditions":[{"event":"order","count":{"op":"ge","value":1}}]}`, "conditions[0].count.op"},
		{"count negative", `{"name":"x","conditions":[{"event":"order","count":{"op":"gte","value":-1}}]}`, "conditions[0].count.value"},
		{"count fraction", `{"name":"x","conditions":[{"event":"order","count":{"op":"gte","value":1.5}}]}`, "conditions[0].count.value"},
		{"count a string", `{"name":"x","conditions":[{"event":"order","count":"2"}]}`, "conditions[0].count"},
		{"within bad", `{"name":"x","conditions":[{"event":"order","within":"a month"}]}`, "conditions[0].within"},
		{"within zero", `{"name":"x","conditions":[{"event":"order","within":"0s"}]}`, "conditions[0].within"},
		{"within negative", `{"name":"x","conditions":[{"event":"order","within":"-5h"}]}`, "conditions[0].within"},
		{"within too long", `{"name":"x","conditions":[{"event":"order","within":"3651d"}]}`, "conditions[0].within"},
		{"within and between", `{"name":"x","conditions":[{"event":"order","within":"1h","between":["2026-01-01","2026-02-01"]}]}`, "conditions[0].between"},
		{"between one date", `{"name":"x","conditions":[{"event":"order","between":["2026-01-01"]}]}`, "conditions[0].between"},
		{"between bad date", `{"name":"x","conditions":[{"event":"order","between":["2026-01-01","2026-13-01"]}]}`, "conditions[0].between[1]"},
		{"between reversed", `{"name":"x","conditions":[{"event":"order","between":["2026-02-01","2026-01-01"]}]}`, "conditions[0].between"},
		{"attribute bad name", `{"name":"x","conditions":[{"attribute":"1city","op":"eq","value":"x"}]}`, "conditions[0].attribute"},
		{"attribute bad op", `{"name":"x","conditions":[{"attribute":"city","op":"is","value":"x"}]}`, "conditions[0].op"},
		{"attribute with where", `{"name":"x","conditions":[{"attribute":"city","value":"x","where":[]}]}`, "conditions[0].where"},
		{"spent no currency", `{"name":"x","conditions":[{"spent":{"op":"gte","value":200}}]}`, "conditions[0].spent.currency"},
		{"spent bad currency", `{"name":"x","conditions":[{"spent":{"op":"gte","value":200,"currency":"€"}}]}`, "conditions[0].spent.currency"},
		{"spent negative", `{"name":"x","conditions":[{"spent":{"op":"gte","value":-1,"currency":"EUR"}}]}`, "conditions[0].spent.value"},
		{"spent huge", `{"name":"x","conditions":[{"spent":{"op":"gte","value":1e309,"currency":"EUR"}}]}`, "conditions[0].spent.value"},
		{"spent a string", `{"name":"x","conditions":[{"spent":{"op":"gte","value":"12,50","currency":"EUR"}}]}`, "conditions[0].spent.value"},
		{"spent where", `{"name":"x","conditions":[{"spent":{"op":"gte","value":1,"currency":"EUR"},"where":[]}]}`, "conditions[0].where"},
		{"orders fraction", `{"name":"x","conditions":[{"orders":{"op":"gte","value":0.5}}]}`, "conditions[0].orders.value"},
		{"nested bad", `{"name":"x","conditions":[{"any":[` + ok + `,{"not":{"spent":{"op":"gte","value":1}}}]}]}`, "conditions[0].any[1].not.spent.currency"},
		{"any empty", `{"name":"x","conditions":[{"any":[]}]}`, "conditions[0].any"},
		{"any with extra", `{"name":"x","conditions":[{"any":[` + ok + `],"event":"order"}]}`, "conditions[0].event"},
		{"not a list", `{"name":"x","conditions":[{"not":[` + ok + `]}]}`, "conditions[0].not"},
		{"too deep", `{"name":"x","conditions":[` + strings.Repeat(`{"not":`, 9) + ok + strings.Repeat(`}`, 9) + `]}`, "conditions[0].not.not.not.not.not.not.not.not"},
		{"too many", `{"name":"x","conditions":[` + strings.TrimSuffix(strings.Repeat(ok+",", 101), ",") + `]}`, "conditions[100]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.body))
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err %v, want a field error", err)
			}
			if fe.Field != tc.field {
				t.Errorf("field %q (%s), want %q", fe.Field, fe.Message, tc.field)
			}
		})
	}
}

// Every operator of attributes and properties, with the values they meet.
func TestOperators(t *testing.T) {
	u := &model.User{Email: "a@x.com", City: "Paris", Custom: map[string]any{"age": 34.0, "tier": "Gold", "vip": true, "since": "2024-05-01", "code": "012"}}
	sub := true
	u.IsSubscribed = &sub
	attr := attributes("a@x.com", u)
	anon := attributes("", nil)
	for _, tc := range []struct {
		rule string
		want bool
		anon bool // the anonymous profile's answer
	}{
		{`{"attribute":"city","op":"eq","value":"paris"}`, true, false},
		{`{"attribute":"city","value":"Paris"}`, true, false},
		{`{"attribute":"city","op":"eq","value":"Lyon"}`, false, false},
		{`{"attribute":"city","op":"ne","value":"Lyon"}`, true, true},
		{`{"attribute":"city","op":"ne","value":"PARIS"}`, false, true},
		{`{"attribute":"city","op":"in","value":["Lyon","Paris"]}`, true, false},
		{`{"attribute":"city","op":"in","value":["Lyon"]}`, false, false},
		{`{"attribute":"city","op":"contains","value":"ari"}`, true, false},
		{`{"attribute":"city","op":"starts_with","value":"pa"}`, true, false},
		{`{"attribute":"city","op":"starts_with","value":"ar"}`, false, false},
		{`{"attribute":"age","op":"gt","value":30}`, true, false},
		{`{"attribute":"age","op":"gt","value":34}`, false, false},
		{`{"attribute":"age","op":"lt","value":35}`, true, false},
		{`{"attribute":"age","op":"eq","value":34}`, true, false},
		{`{"attribute":"age","op":"eq","value":"34"}`, true, false},
		{`{"attribute":"code","op":"eq","value":"12"}`, false, false}, // text stays text
		{`{"attribute":"code","op":"eq","value":12}`, true, false},
		{`{"attribute":"since","op":"gt","value":"2024-01-01"}`, true, false},
		{`{"attribute":"since","op":"lt","value":"2024-01-01"}`, false, false},
		{`{"attribute":"vip","op":"eq","value":true}`, true, false},
		{`{"attribute":"vip","op":"eq","value":"true"}`, false, false},
		{`{"attribute":"tier","op":"exists"}`, true, false},
		{`{"attribute":"tier","op":"exists","value":false}`, false, true},
		{`{"attribute":"gender","op":"exists"}`, false, false},
		{`{"attribute":"isSubscribed","op":"eq","value":true}`, true, false},
		{`{"attribute":"isSubscribed","op":"eq","value":false}`, false, true},
		{`{"attribute":"email","op":"exists"}`, true, false},
		{`{"attribute":"email","op":"starts_with","value":"A@"}`, true, false},
	} {
		r, err := Parse([]byte(`{"name":"x","conditions":[` + tc.rule + `]}`))
		if err != nil {
			t.Fatalf("%s: %v", tc.rule, err)
		}
		if got := r.root.eval(&evalCtx{attr: attr}); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.rule, got, tc.want)
		}
		if got := r.root.eval(&evalCtx{attr: anon}); got != tc.anon {
			t.Errorf("%s, anonymous: %v, want %v", tc.rule, got, tc.anon)
		}
	}
}

// Counts over windows, at their edges, and where conditions on an
// event's fields.
func TestCountsAndWindows(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ev := func(typ string, ago time.Duration, kv ...any) *model.Event {
		p := map[string]json.RawMessage{}
		for i := 0; i < len(kv); i += 2 {
			b, _ := json.Marshal(kv[i+1])
			p[kv[i].(string)] = b
		}
		return &model.Event{Type: typ, Time: now.Add(-ago), Props: p, URL: "https://shop.example/shoes?x=1"}
	}
	events := []*model.Event{
		ev("visit_from_referrer", 720*time.Hour, "source", "facebook"), // exactly 30 days ago
		ev("visit_from_referrer", 100*time.Hour, "source", "google"),
		ev("order", 10*24*time.Hour, "order_id", "A", "value", 150, "currency", "EUR", "items", []any{map[string]any{"product_id": "P1"}}),
		ev("order", 9*24*time.Hour, "order_id", "A", "value", 150, "currency", "EUR"), // the same order again: counts once
		ev("order", 5*24*time.Hour, "order_id", "B", "value", 60.5, "currency", "EUR"),
		ev("order", 4*24*time.Hour, "order_id", "C", "value", 1000, "currency", "JPY"),
		ev("order", 200*24*time.Hour, "order_id", "D", "value", 500, "currency", "EUR"),
		ev("wishlist_add", time.Hour, "product_id", 1001),
		ev("wishlist_add", 2*time.Hour, "product_id", "1001"),
	}
	for _, tc := range []struct {
		cond string
		want bool
	}{
		{`{"event":"visit_from_referrer","where":[{"prop":"source","value":"facebook"}],"within":"720h"}`, true},
		{`{"event":"visit_from_referrer","where":[{"prop":"source","value":"facebook"}],"within":"719h59m59s"}`, false},
		{`{"event":"visit_from_referrer","within":"720h","count":{"op":"eq","value":2}}`, true},
		{`{"event":"visit_from_referrer","within":"30d","count":{"op":"gt","value":1}}`, true},
		{`{"event":"visit_from_referrer","within":"200h","count":{"op":"lt","value":2}}`, true},
		{`{"event":"visit_from_referrer","count":{"op":"lte","value":1}}`, false},
		{`{"event":"order","count":{"op":"eq","value":4}}`, true},
		{`{"orders":{"op":"eq","value":4}}`, true},
		{`{"orders":{"op":"gte","value":2},"within":"2160h"}`, true},
		{`{"orders":{"op":"eq","value":2,"currency":"EUR"},"within":"2160h"}`, true},
		{`{"spent":{"op":"eq","value":210.5,"currency":"EUR"},"within":"2160h"}`, true},
		{`{"spent":{"op":"gte","value":200,"currency":"EUR"},"within":"2160h"}`, true},
		{`{"spent":{"op":"gte","value":200,"currency":"EUR"},"within":"6d"}`, false},
		{`{"spent":{"op":"eq","value":710.5,"currency":"EUR"}}`, true},
		{`{"spent":{"op":"eq","value":1000,"currency":"JPY"}}`, true},
		{`{"spent":{"op":"gt","value":0,"currency":"USD"}}`, false},
		{`{"event":"order","where":[{"prop":"product_id","value":"P1"}]}`, true},
		{`{"event":"order","between":["2026-11-20","2026-11-26"],"count":{"op":"eq","value":3}}`, true},
		{`{"event":"wishlist_add","where":[{"prop":"product_id","op":"in","value":[1001,1002]}],"count":{"op":"gte","value":2}}`, true},
		{`{"event":"wishlist_add","where":[{"prop":"url","op":"contains","value":"/shoes"}],"within":"1h"}`, true},
		{`{"not":{"event":"order","within":"72h"}}`, true},
		{`{"not":{"event":"order","within":"2160h"}}`, false},
	} {
		r, err := Parse([]byte(`{"name":"x","conditions":[` + tc.cond + `]}`))
		if err != nil {
			t.Fatalf("%s: %v", tc.cond, err)
		}
		facts := map[string]*fact{}
		for _, e := range events {
			for id, a := range r.atoms {
				if a.typ == e.Type && a.matches(e) {
					if facts[id] == nil {
						facts[id] = &fact{}
					}
					facts[id].add(e)
				}
			}
		}
		if got := r.root.eval(&evalCtx{facts: facts, attr: attributes("", nil), now: now.UnixMilli()}); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.cond, got, tc.want)
		}
	}
}

// A merge counts an order both profiles saw once, and keeps the shop's
// confirmation over a browser's claim whichever side holds it.
func TestMergeFactsKeepsTheConfirmedOrder(t *testing.T) {
	claim := entry{T: 1000, O: "o1", C: "EUR", M: 1000}
	confirmed := entry{T: 2000, O: "o1", C: "EUR", M: 1250, V: true}
	other := entry{T: 3000, O: "o2", C: "EUR", M: 500, V: true}
	build := func(es ...entry) *fact {
		f := &fact{}
		for _, e := range es {
			f.addEntry(e, true)
		}
		return f
	}
	for _, tc := range []struct {
		name string
		a, b *fact
	}{
		{"claim kept, confirmation merged in", build(claim), build(confirmed, other)},
		{"confirmation kept, claim merged in", build(confirmed, other), build(claim)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mergeFacts(tc.a, tc.b)
			if m.N != 2 || m.NC["EUR"] != 2 || m.S["EUR"] != 1750 {
				t.Fatalf("N %d, NC %v, S %v; want 2 orders, 17.50 EUR", m.N, m.NC, m.S)
			}
			for _, e := range m.E {
				if e.O == "o1" && !e.V {
					t.Fatalf("the browser's claim kept: %+v", m.E)
				}
			}
		})
	}
}
