package segment_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/segment"
)

// shop adds a mix of shoppers' events from offset on: visits from
// Facebook and Google (with a click id), carts, orders (one sent again by
// the shop after the browser's claim), a custom event, a bot, logins that
// merge a browser into its user, at times from 100 days ago to now (one
// visit exactly 30 days ago).
func (e *env) shop(offset, n int) {
	e.t.Helper()
	now := e.clk.Now()
	for i := offset; i < offset+n; i++ {
		anon := fmt.Sprint("ix", i)
		at := now.Add(-time.Duration(i%100) * 24 * time.Hour)
		if i%10 == 3 {
			at = now.Add(-720 * time.Hour) // exactly 30 days ago
		}
		src := []string{"facebook", "google", "newsletter"}[i%3]
		vfr := &model.Event{Type: model.VisitFromReferrer, AnonymousID: anon, SessionID: "s-" + anon, Time: at,
			Traffic: &model.Traffic{Source: src, Medium: "cpc", Channel: "Paid", ClickID: fmt.Sprint("click", i)},
			Props:   props("source", src)}
		evs := []*model.Event{vfr}
		for j := range i % 4 {
			evs = append(evs, &model.Event{Type: model.AddToCart, AnonymousID: anon, SessionID: "s-" + anon,
				Time: at.Add(time.Duration(j) * time.Minute), Props: props("product_id", fmt.Sprint(1000+i%5), "category", fmt.Sprint("c", i%3), "sku", fmt.Sprint(e.seq, "-", j))})
		}
		if i%5 == 0 {
			evs = append(evs, &model.Event{Type: "wishlist_add", AnonymousID: anon, SessionID: "s-" + anon, Time: at, Props: props("product_id", 1000+i%2)})
		}
		if i%7 == 0 {
			evs = append(evs, &model.Event{Type: model.PageView, AnonymousID: anon, SessionID: "s-" + anon, Time: at, Bot: true})
		}
		if i%3 == 0 {
			email := fmt.Sprintf("ix%d@x.com", i%40)
			l := login(anon, email)
			l.Time = at
			evs = append(evs, l)
			if i%6 == 0 {
				o := order(email, fmt.Sprint("o", i%25), float64(50+i), "EUR")
				o.Time, o.Via = at.Add(time.Minute), model.ViaBrowser
				evs = append(evs, o)
				again := order(email, fmt.Sprint("o", i%25), float64(60+i), "EUR")
				again.Time = at.Add(2 * time.Minute)
				evs = append(evs, again)
			}
		}
		e.add(evs...)
	}
}

var indexRules = []string{
	`{"name":"Facebook, carts, no order","conditions":[
 {"event":"visit_from_referrer","where":[{"prop":"source","value":"facebook"}],"within":"720h"},
 {"event":"add_to_cart","count":{"op":"gte","value":2},"within":"2160h"},
 {"not":{"event":"order","within":"2160h"}}]}`,
	`{"name":"a","conditions":[{"event":"visit_from_referrer","where":[{"prop":"channel","value":"Paid"},{"prop":"medium","op":"starts_with","value":"cp"}],"within":"720h"}]}`,
	`{"name":"b","match":"any","conditions":[{"orders":{"op":"gte","value":2}},{"spent":{"op":"gte","value":100,"currency":"EUR"},"within":"2160h"}]}`,
	`{"name":"c","conditions":[{"not":{"event":"add_to_cart","where":[{"prop":"category","op":"in","value":["c1","c2"]}]}}]}`,
	`{"name":"d","conditions":[{"event":"wishlist_add","where":[{"prop":"product_id","value":1000}]},{"attribute":"email","op":"exists","value":true}]}`,
	`{"name":"e","conditions":[{"event":"page_view"}]}`,
	`{"name":"f","conditions":[{"event":"add_to_cart","count":{"op":"eq","value":3},"between":["2026-08-01T00:00:00Z","2026-10-15T00:00:00Z"]}]}`,
	`{"name":"g","conditions":[{"event":"visit_from_referrer","where":[{"prop":"click_id","op":"exists","value":true}]}]}`,
	`{"name":"h","conditions":[{"event":"add_to_cart","where":[{"prop":"sku","op":"starts_with","value":"1"}]}]}`,
}

// notIndexed are the rules the index cannot answer: the click id is never
// kept, the sku once it took too many values.
var notIndexed = map[int]bool{7: true, 8: true}

// The preview index agrees with the preview from the log for every rule,
// before and after merges, new shoppers and an erasure; and with the saved
// segment.
func TestPreviewIndexEqualsTheLog(t *testing.T) {
	e := newEnv(t)
	e.shop(0, 120)
	ready := func() {
		e.t.Helper()
		e.eventually("the preview index is built", func() bool { return e.svc.IndexStats().Ready })
		e.settle()
	}
	compare := func(when string) {
		t.Helper()
		for i, rule := range indexRules {
			want, err := e.svc.PreviewFromLog(context.Background(), []byte(rule))
			if err != nil {
				t.Fatal(err)
			}
			if indexed := e.svc.Indexed([]byte(rule)); indexed == notIndexed[i] && (when != "built" || i != 8) {
				t.Errorf("%s: rule %d indexed %v", when, i, indexed)
			}
			got, err := e.svc.Preview(context.Background(), []byte(rule))
			if err != nil {
				t.Fatal(err)
			}
			if got.Count != want.Count || got.Profiles != want.Profiles || !slices.Equal(profiles(got.Sample), profiles(want.Sample)) {
				t.Errorf("%s: rule %d: index %d of %d %v, log %d of %d %v", when, i, got.Count, got.Profiles, profiles(got.Sample),
					want.Count, want.Profiles, profiles(want.Sample))
			}
			if want.Count == 0 && i < 3 {
				t.Errorf("%s: rule %d selects no one: a weak test", when, i)
			}
		}
	}
	ready()
	compare("built")
	// merges of indexed profiles (read again), new shoppers, while built
	e.shop(100, 60)
	e.settle()
	compare("after merges")
	st := e.svc.IndexStats()
	if st.Events == 0 || st.Profiles == 0 || st.Bytes <= 0 {
		t.Errorf("stats %+v", st)
	}
	// an erasure forgets the index; it is built again
	if _, err := e.p.Runner.Erase(context.Background(), model.UserProfileID("ix3@x.com"), nil); err != nil {
		t.Fatal(err)
	}
	ready()
	compare("after an erasure")
	id := e.create(indexRules[0])
	pre, _ := e.svc.Preview(context.Background(), []byte(indexRules[0]))
	if got := e.members(id); int64(len(got)) != pre.Count || !slices.Equal(got[:min(len(got), 20)], profiles(pre.Sample)) {
		t.Errorf("saved %d %v, preview %d %v", len(got), got, pre.Count, profiles(pre.Sample))
	}
}

func profiles(ms []segment.Member) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.Profile)
	}
	return out
}

// An index that outgrows its memory budget is dropped: previews read the
// log, and say the same.
func TestPreviewIndexOverBudget(t *testing.T) {
	e := newEnv(t)
	e.shop(0, 40)
	// a second service with a small budget, on a copy of what the first folded
	over := openEnvWith(t, enginetest.NewStore(t), segment.Options{IndexBudget: 4 << 10})
	over.shop(0, 40)
	svc := over.svc
	over.eventually("the index outgrew its budget", func() bool { return svc.IndexStats().Over })
	for _, rule := range indexRules {
		if svc.Indexed([]byte(rule)) {
			t.Errorf("indexed over budget: %s", rule)
		}
		got, err1 := svc.Preview(context.Background(), []byte(rule))
		want, err2 := e.svc.Preview(context.Background(), []byte(rule))
		if err1 != nil || err2 != nil || got.Count != want.Count {
			t.Errorf("%s: %d %v, want %d %v", rule, got.Count, err1, want.Count, err2)
		}
	}
}
