package segment

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
)

// checkTable compares a profile table with what it should hold: every
// live id's number, and every number's id.
func checkTable(t *testing.T, tab *profileTable, live map[string]uint32, ids []string, grew int64) {
	t.Helper()
	if want := int64(cap(tab.arena) + 4*cap(tab.ends) + slotBytes*len(tab.slots)); grew != want {
		t.Fatalf("it says it grew by %d bytes in all; it holds %d", grew, want)
	}
	if tab.live != len(live) || tab.len() != len(ids) {
		t.Fatalf("live %d numbers %d, want %d %d", tab.live, tab.len(), len(live), len(ids))
	}
	for id, want := range live {
		if n, ok := tab.lookup(id); !ok || n != want {
			t.Fatalf("lookup %q = %d %v, want %d", id, n, ok, want)
		}
	}
	for n, id := range ids {
		if got := tab.id(uint32(n)); got != id {
			t.Fatalf("id %d = %q, want %q", n, got, id)
		}
	}
	if (tab.used+1)*4 > len(tab.slots)*3+4 {
		t.Fatalf("%d of %d slots used", tab.used, len(tab.slots))
	}
}

// The profile table against a map, under random adds, removes (merges),
// re-adds and lookups of absent ids: with its hash, and with hashes that
// collide (all ids in one probe run; in 4 runs), through growth and the
// sweeps of tombstones.
func TestProfileTable(t *testing.T) {
	hashes := map[string]func(maphash.Seed, string) uint64{
		"maphash":   maphash.String,
		"one value": func(maphash.Seed, string) uint64 { return 7 },
		"4 values":  func(_ maphash.Seed, s string) uint64 { return uint64(len(s) % 4 * 1000) },
	}
	for name, h := range hashes {
		t.Run(name, func(t *testing.T) {
			tab := newProfileTable()
			tab.hash = h
			live := map[string]uint32{}
			var ids []string
			var bytes int64
			rng := rand.New(rand.NewPCG(1, 2))
			n := 30000
			if name != "maphash" {
				n = 3000 // probes are the whole table
			}
			for i := range n {
				id := fmt.Sprintf("a:anon-%d", rng.IntN(n/2))
				if i%3 == 0 {
					id = fmt.Sprintf("u:shopper%d@example.com", rng.IntN(n/4))
				}
				switch rng.IntN(4) {
				case 0: // a merge
					want, had := live[id]
					got, ok := tab.remove(id)
					if ok != had || got != want {
						t.Fatalf("remove %q = %d %v, want %d %v", id, got, ok, want, had)
					}
					delete(live, id)
				default:
					want, had := live[id]
					got, grew, ok := tab.add(id)
					bytes += grew
					if !ok || (had && (got != want || grew != 0)) {
						t.Fatalf("add %q = %d %d %v, want %d (had %v)", id, got, grew, ok, want, had)
					}
					if !had {
						if got != uint32(len(ids)) {
							t.Fatalf("add %q = %d, want the next number %d", id, got, len(ids))
						}
						ids = append(ids, id)
						live[id] = got
					}
				}
				if _, ok := tab.lookup(fmt.Sprint("absent", i)); ok {
					t.Fatal("found an absent id")
				}
				if i%(n/10) == 0 {
					checkTable(t, tab, live, ids, bytes)
				}
			}
			checkTable(t, tab, live, ids, bytes)
			// removing every id leaves the table empty; adding them back
			// numbers them anew
			for id := range live {
				tab.remove(id)
			}
			checkTable(t, tab, map[string]uint32{}, ids, bytes)
			for id := range live {
				n, grew, _ := tab.add(id)
				bytes += grew
				ids = append(ids, id)
				live[id] = n
			}
			checkTable(t, tab, live, ids, bytes)
		})
	}
}

// Churn (a merge removes ids, a new shopper adds one) sweeps tombstones
// instead of growing the table without end.
func TestProfileTableChurn(t *testing.T) {
	tab := newProfileTable()
	for i := range 200000 {
		tab.add(fmt.Sprint("a:", i))
		if i >= 100 {
			tab.remove(fmt.Sprint("a:", i-100))
		}
	}
	if tab.live != 100 || len(tab.slots) > minSlots {
		t.Errorf("%d live in %d slots", tab.live, len(tab.slots))
	}
}

// The index's estimate of its memory is honest: within a factor of the
// heap it grows by, for shoppers' events read profile by profile (a
// build: runs of a profile's events) and then folded interleaved.
func TestIndexBytesEstimate(t *testing.T) {
	const shoppers = 40000
	str := func(s string) json.RawMessage { j, _ := json.Marshal(s); return j }
	at := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	events := func(i, k int) []*model.Event {
		var evs []*model.Event
		for j := range 3 + k {
			evs = append(evs, &model.Event{Type: model.ProductView, Time: at.Add(time.Duration(i*10+j) * time.Second),
				Props: map[string]json.RawMessage{"category": str(fmt.Sprint("c", (i+j)%40))}})
		}
		evs = append(evs, &model.Event{Type: model.PageView, Time: at, Traffic: &model.Traffic{Source: "google", Channel: "Organic Search"}})
		if i%6 == 0 {
			evs = append(evs, &model.Event{Type: model.Order, Time: at, Props: map[string]json.RawMessage{
				"order_id": str(fmt.Sprint("o", i, "-", k)), "value": json.RawMessage("12.50"), "currency": str("EUR")}})
		}
		return evs
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	// the events exist before and after: only the index is measured
	built := make([][]*model.Event, shoppers)
	folded := make([][]*model.Event, shoppers)
	for i := range shoppers {
		built[i], folded[i] = events(i, i%5), events(i, 1)
	}
	before := heap()
	x := newIndex(0)
	for i, evs := range built {
		for _, ev := range evs {
			x.add(fmt.Sprintf("a:anon-%d", i), ev)
		}
	}
	for k := range 2 {
		for i, evs := range folded {
			x.add(fmt.Sprintf("a:anon-%d", i), evs[k])
		}
	}
	grown := heap() - before
	ratio := float64(grown) / float64(x.bytes)
	t.Logf("%d profiles, %d events: estimated %d B (%.1f a profile), heap grew %d B: ratio %.2f",
		x.prof.len(), x.events, x.bytes, float64(x.bytes)/float64(x.prof.len()), grown, ratio)
	if ratio < 0.8 || ratio > 1.25 {
		t.Errorf("the heap grew %.2f times the estimate", ratio)
	}
	runtime.KeepAlive(x)
	runtime.KeepAlive(built)
	runtime.KeepAlive(folded)
}

// The index's columns keep a profile number per run of its events: runs
// broken by other profiles' events, a merge (both profiles count no more;
// the merged one's events are read again under a new number), orders'
// ids, currencies, values and confirmations, and times to the millisecond
// all read back from a scan as they went in.
func TestIndexRunsMergesOrders(t *testing.T) {
	str := func(s string) json.RawMessage { j, _ := json.Marshal(s); return j }
	t0 := time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)
	view := func(ms int, cat string) *model.Event {
		return &model.Event{Type: model.ProductView, Time: t0.Add(time.Duration(ms) * time.Millisecond),
			Props: map[string]json.RawMessage{"category": str(cat)}}
	}
	ord := func(id, value, cur string, via string) *model.Event {
		return &model.Event{Type: model.Order, Time: t0, Via: via, Props: map[string]json.RawMessage{
			"order_id": str(id), "value": json.RawMessage(value), "currency": str(cur)}}
	}
	x := newIndex(0)
	a1 := []*model.Event{view(1, "c1"), view(2500, "c2"), view(4999, "c1")}
	x.add("a:1", a1[0])
	x.add("a:1", a1[1])
	x.add("a:2", view(3000, "c1"))
	x.add("a:1", a1[2])
	x.add("a:3", ord("o1", "12.50", "EUR", model.ViaBrowser))
	x.add("a:3", ord("o1", "12.60", "EUR", model.ViaAPI))
	x.add("a:4", ord("order-22", "3", "USD", model.ViaAPI))
	if c := x.cols[model.ProductView]; len(c.prof) != 3 || len(c.sec) != 4 {
		t.Fatalf("%d runs of %d events, want 3 of 4", len(c.prof), len(c.sec))
	}
	// a:1 merges into a:2: a:2's events (a:1's among them) read again
	var read []pev
	for _, ev := range append(a1, view(3000, "c1")) {
		read = append(read, pev{"a:2", ev})
	}
	x.merge("a:1", "a:2", read)
	x.done = true
	if _, ok := x.prof.lookup("a:1"); ok {
		t.Error("a:1 still numbered")
	}
	if n, ok := x.prof.lookup("a:2"); !ok || n != 4 {
		t.Errorf("a:2 numbered %d %v, want 4", n, ok)
	}
	r, err := Parse([]byte(`{"name":"x","conditions":[{"event":"product_view","where":[{"prop":"category","value":"c1"}]},{"orders":{"op":"gte","value":1}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	sn, ok := x.snapshot(r)
	if !ok {
		t.Fatal("not previewable")
	}
	for _, a := range r.atoms {
		facts := scanAtomOld(a, sn, len(sn.ends)) // the facts as a profile keeps them
		var got []string
		for p, f := range facts {
			if f == nil {
				continue
			}
			var es []string
			for _, e := range f.E {
				es = append(es, fmt.Sprintf("%d %s %s %d %v", e.T-t0.UnixMilli(), e.O, e.C, e.M, e.V))
			}
			got = append(got, fmt.Sprintf("%s n=%d %v", x.prof.id(uint32(p)), f.N, es))
		}
		want := map[string]string{
			model.ProductView: "[a:2 n=3 [1   0 false 3000   0 false 4999   0 false]]",
			model.Order:       "[a:3 n=1 [0 o1 EUR 1260 true] a:4 n=1 [0 order-22 USD 300 true]]",
		}[a.typ]
		if fmt.Sprint(got) != want {
			t.Errorf("%s: %v, want %s", a.typ, got, want)
		}
	}
}
