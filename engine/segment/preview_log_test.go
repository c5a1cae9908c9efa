package segment_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/segment"
)

// The preview from the index agrees with the preview from the log on
// random rules (every op, window, between, nesting, not, orders and spent
// in and across currencies, attributes) over a shop of merged shoppers with
// random events at the windows' edges, orders sent again and Users API
// attributes; and a few of those rules, saved, select what their preview
// said.
func TestPreviewIndexEqualsTheLogRandomRules(t *testing.T) {
	e := newEnv(t)
	e.shop(0, 80)
	rng := rand.New(rand.NewPCG(11, 12))
	now := e.clk.Now()
	for i := range 80 {
		anon := fmt.Sprint("ix", i)
		var evs []*model.Event
		for range rng.IntN(6) {
			ev := segment.RandomEvent(rng, now)
			ev.AnonymousID, ev.SessionID = anon, "s-"+anon
			if ev.Type == model.Order && i%3 == 0 {
				ev.Email = fmt.Sprintf("ix%d@x.com", i%40)
			}
			evs = append(evs, ev)
		}
		if len(evs) > 0 {
			e.add(evs...)
		}
	}
	for i := range 40 {
		if i%4 == 0 {
			yes := i%8 == 0
			email := fmt.Sprintf("ix%d@x.com", i)
			e.setUser(model.User{Email: email, City: []string{"Paris", "Lyon", "paris"}[i%3], Gender: "female", IsSubscribed: &yes,
				Custom: map[string]any{"age": float64(20 + i)}}, map[string]any{"city": true})
		}
	}
	e.eventually("the preview index is built", func() bool { return e.svc.IndexStats().Ready })
	e.settle()
	indexed, selective, saved := 0, 0, 0
	for range 300 {
		rule := segment.RandomRule(rng, now)
		want, err := e.svc.PreviewFromLog(context.Background(), []byte(rule))
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.svc.Preview(context.Background(), []byte(rule))
		if err != nil {
			t.Fatal(err)
		}
		if e.svc.Indexed([]byte(rule)) {
			indexed++
		}
		if got.Count != want.Count || got.Profiles != want.Profiles || !slices.Equal(profiles(got.Sample), profiles(want.Sample)) {
			t.Fatalf("%s\nindex %d of %d %v\nlog   %d of %d %v", rule, got.Count, got.Profiles, profiles(got.Sample),
				want.Count, want.Profiles, profiles(want.Sample))
		}
		if got.Count == 0 || got.Count == got.Profiles {
			continue
		}
		selective++
		if saved < 6 {
			saved++
			id := e.create(rule)
			if m := e.members(id); int64(len(m)) != got.Count || !slices.Equal(m[:min(len(m), 20)], profiles(got.Sample)) {
				t.Errorf("%s: saved %d %v, preview %d %v", rule, len(m), m, got.Count, profiles(got.Sample))
			}
		}
	}
	t.Logf("of 300 rules %d read the index, %d selected some profiles but not all", indexed, selective)
	if indexed < 250 || selective < 100 {
		t.Errorf("of 300 rules %d read the index, %d selected some profiles but not all: a weak test", indexed, selective)
	}
}
