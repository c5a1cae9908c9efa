package automation

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

func viewEvent(product string, at time.Time) *model.Event {
	return &model.Event{Type: model.ProductView, Time: at, Props: map[string]json.RawMessage{"product_id": json.RawMessage(`"` + product + `"`)}}
}

func indexKeys(t *testing.T, st *store.Store, product string) int {
	t.Helper()
	n := 0
	st.Read(func(tx *store.Tx) error {
		return tx.ScanFrom(projSpace, indexPrefix(product), "", false, false, func(string, json.RawMessage) (bool, error) {
			n++
			return true, nil
		})
	})
	return n
}

// openViews opens a store in a temporary directory and a Service on it.
func openViews(tb testing.TB) (*store.Store, *Service) {
	tb.Helper()
	st, err := store.Open(store.Options{Dir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	s, err := New(Options{Store: st})
	if err != nil {
		tb.Fatal(err)
	}
	return st, s
}

// A product's index of viewers holds the most recent maxViewers people
// (give or take the slack before a prune), none older than the window, and
// one entry per person however often they view it.
func TestViewerIndexIsBounded(t *testing.T) {
	st, s := openViews(t)
	t0 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	fold := func(from, to int, product string, at func(i int) time.Time) {
		t.Helper()
		for lo := from; lo < to; lo += 200 {
			err := st.Project(func(tx *store.Tx) error {
				set := false
				for i := lo; i < min(lo+200, to); i++ {
					profile := model.UserProfileID(fmt.Sprintf("v%05d@example.com", i))
					if err := s.viewed(tx, profile, viewEvent(product, at(i)), at(i), &set); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	// 3 000 people view p1, a second apart; the first 100 again at the end
	fold(0, 3000, "p1", func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) })
	fold(0, 100, "p1", func(i int) time.Time { return t0.Add(time.Hour + time.Duration(i)*time.Second) })
	if n := indexKeys(t, st, "p1"); n > maxViewers+maxViewers/8 || n < maxViewers {
		t.Errorf("p1's index holds %d entries, want %d to %d", n, maxViewers, maxViewers+maxViewers/8)
	}
	got := map[string]bool{}
	st.Read(func(tx *store.Tx) error {
		return viewers(tx, "p1", t0, func(profile string, _ time.Time) {
			if got[profile] {
				t.Errorf("%s twice", profile)
			}
			got[profile] = true
		})
	})
	for _, who := range []string{"v00000@example.com", "v00099@example.com", "v02999@example.com"} { // viewed last
		if !got[model.UserProfileID(who)] {
			t.Errorf("%s, among the latest viewers, is not in the index", who)
		}
	}
	if got[model.UserProfileID("v00500@example.com")] {
		t.Error("an early viewer stayed in a full index")
	}

	// p2: 50 views, then one 32 days later: the old ones are pruned
	fold(0, 50, "p2", func(int) time.Time { return t0 })
	fold(50, 51, "p2", func(int) time.Time { return t0.Add(32 * 24 * time.Hour) })
	if n := indexKeys(t, st, "p2"); n != 1 {
		t.Errorf("p2's index holds %d entries after the window passed, want 1", n)
	}

	// a person's views follow them when merged, and go when erased
	anon := model.AnonymousProfileID("browser-1")
	st.Project(func(tx *store.Tx) error {
		set := false
		return s.viewed(tx, anon, viewEvent("p3", t0), t0, &set)
	})
	if n := indexKeys(t, st, "p3"); n != 0 {
		t.Errorf("an anonymous view is in the index (%d): it has no address", n)
	}
	user := model.UserProfileID("late@example.com")
	if err := st.Project(func(tx *store.Tx) error { return s.move(tx, anon, user) }); err != nil {
		t.Fatal(err)
	}
	var who []string
	st.Read(func(tx *store.Tx) error {
		return viewers(tx, "p3", t0.Add(-time.Hour), func(p string, _ time.Time) { who = append(who, p) })
	})
	if len(who) != 1 || who[0] != user {
		t.Errorf("p3's viewers after the merge: %v", who)
	}
	if _, err := st.Erase(func(tx *store.Tx) error { return s.erase(tx, user) }); err != nil {
		t.Fatal(err)
	}
	if n := indexKeys(t, st, "p3"); n != 0 {
		t.Errorf("p3's index holds %d entries after the erasure", n)
	}
}

// History folded in no order of time (the log folded again, an import of
// past events): the index keeps the views within the window before the
// product's latest view, all of them, and nothing older.
func TestViewerIndexInNoOrderOfTime(t *testing.T) {
	st, s := openViews(t)
	end := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]bool{}
	var latest time.Time
	ats := make([]time.Time, 3000)
	for i := range ats {
		ats[i] = end.Add(-time.Duration(rng.Int64N(int64(180 * 24 * time.Hour))))
		if ats[i].After(latest) {
			latest = ats[i]
		}
	}
	for lo := 0; lo < len(ats); lo += 200 {
		err := st.Project(func(tx *store.Tx) error {
			set := false
			for i := lo; i < lo+200; i++ {
				if err := s.viewed(tx, model.UserProfileID(fmt.Sprintf("h%05d@example.com", i)), viewEvent("p4", ats[i]), end, &set); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, at := range ats {
		if !at.Before(latest.Add(-viewWindow)) {
			want[model.UserProfileID(fmt.Sprintf("h%05d@example.com", i))] = true
		}
	}
	got := map[string]bool{}
	st.Read(func(tx *store.Tx) error {
		return viewers(tx, "p4", time.Time{}, func(profile string, at time.Time) {
			if at.Before(latest.Add(-viewWindow)) {
				t.Errorf("%s viewed at %s, more than the window before the latest view (%s)", profile, at, latest)
			}
			got[profile] = true
		})
	})
	if len(want) == 0 || len(want) > maxViewers || !maps.Equal(got, want) {
		t.Errorf("the index holds %d viewers, want the %d within the window", len(got), len(want))
	}
}

// BenchmarkViewsInNoOrderOfTime folds product views of 100 products at
// random times over 180 days, 4 000 to a transaction as the runner does:
// before the product's latest view was kept, nearly every view pruned its
// product's index, and Badger sorted the transaction's writes for each.
func BenchmarkViewsInNoOrderOfTime(b *testing.B) {
	st, s := openViews(b)
	end := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	const chunk = 4000
	n := 0
	for b.Loop() {
		err := st.Project(func(tx *store.Tx) error {
			set := false
			for range chunk {
				n++
				at := end.Add(-time.Duration(rng.Int64N(int64(180 * 24 * time.Hour))))
				product := fmt.Sprint("p", rng.IntN(100))
				if err := s.viewed(tx, model.UserProfileID(fmt.Sprintf("b%07d@example.com", n)), viewEvent(product, at), end, &set); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n), "µs/view")
}
