package segment

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
)

// benchPreviewRules are the rules BenchmarkPreviewIndex times: the
// segments benchmark's new 3-condition rule (previewRule in
// preview_bench_test.go), a rule with an any, and one with spent.
var benchPreviewRules = []struct{ name, rule string }{
	{"3-conditions", previewRule},
	{"any", `{"name":"Paid, or keen on c3","match":"any","conditions":[
 {"event":"visit_from_referrer","where":[{"prop":"channel","op":"in","value":["Paid Search","Paid Social"]}],"within":"168h"},
 {"all":[{"event":"product_view","where":[{"prop":"category","value":"c3"}],"count":{"op":"gte","value":2},"within":"720h"},
   {"not":{"event":"add_to_cart","within":"720h"}}]}]}`},
	{"spent", `{"name":"Spenders","conditions":[
 {"spent":{"op":"gte","value":100,"currency":"EUR"},"within":"2160h"},
 {"orders":{"op":"gte","value":1},"within":"720h"}]}`},
}

// benchBallast is heap that BenchmarkPreviewIndex holds beside the index,
// as a server's heap holds Badger's caches, the other projections' state
// and requests (337 MiB of anonymous memory with the index built at 1 M
// shoppers).
var benchBallast = flag.Int("seg.ballast", 0, "MiB of heap BenchmarkPreviewIndex holds beside the preview index")

// segProfiles is -seg.profiles: the segments benchmarks' flag, defined by
// bench_test.go in package segment_test (compiled into the same test
// binary).
func segProfiles() int {
	if f := flag.Lookup("seg.profiles"); f != nil {
		if g, ok := f.Value.(flag.Getter); ok {
			if n, ok := g.Get().(int); ok && n > 0 {
				return n
			}
		}
	}
	return 1_000_000
}

// fillBenchIndex fills an index the way its build does (profile by
// profile, each profile's events at once, through add) with generateShop's
// mix for n shoppers: about 10 events a shopper (3 in 10 visit twice), over
// 180 days up to end; a visit from outside with its visit_from_referrer,
// 2 to 9 product views (one in 8 a cart), a login for one in 4 of the
// visits of a shopper known by email (a third), an order for one in 6
// visits. A shopper who logged in or ordered with their email is their user
// profile (the anonymous one merged into it), any other their anonymous
// profile: a profile a shopper, as the fold gives.
func fillBenchIndex(x *index, n int, end time.Time) {
	rng := rand.New(rand.NewPCG(1, 2))
	start := end.AddDate(0, 0, -180)
	var evs []*model.Event
	seq := 0
	for p := range n {
		evs = evs[:0]
		anonID, email := fmt.Sprintf("anon-%d", p), ""
		if p%3 == 0 {
			email = fmt.Sprintf("shopper%d@example.com", p)
		}
		known := false
		visits := 1
		if p%10 < 3 {
			visits = 2
		}
		for range visits {
			seq++
			benchVisit(rng, start, end, email, fmt.Sprint("o", seq), func(ev *model.Event) {
				ev.Via = model.ViaAPI
				known = known || ev.Email != ""
				evs = append(evs, ev)
			})
		}
		id := model.AnonymousProfileID(anonID)
		if known {
			id = model.UserProfileID(email)
		}
		slices.SortStableFunc(evs, func(a, b *model.Event) int { return a.Time.Compare(b.Time) })
		for _, ev := range evs {
			x.add(id, ev)
		}
	}
	x.done = true
}

// BenchmarkPreviewIndex times the preview of three rules over a preview
// index filled directly (fillBenchIndex: -seg.profiles shoppers, 1 M by
// default, about 10 events each; no log, no fold), under serve's default
// soft memory limit (384 MiB; -seg.ballast holds more heap beside the
// index, as a server does), against the preview as it was
// (previewIndexedOld) in the same run. It logs the index's estimated size
// and the heap it takes; the index is dropped at the end (make bench runs
// the segments benchmark after it in the same process).
func BenchmarkPreviewIndex(b *testing.B) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(384 << 20))
	now := time.Now()
	t0 := time.Now()
	x := newIndex(0)
	x.mu.Lock()
	fillBenchIndex(x, segProfiles(), now)
	x.mu.Unlock()
	filled := time.Since(t0)
	ballast := make([]byte, *benchBallast<<20)
	for i := 0; i < len(ballast); i += 4096 {
		ballast[i] = 1
	}
	defer runtime.KeepAlive(ballast)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.Logf("index of %d profiles, %d events, %d sets of fields: %.1f MB estimated (%.0f B a profile); heap %.1f MB with %d MiB of ballast; filled in %s",
		x.prof.live, x.events, len(x.protos), float64(x.bytes)/1e6, float64(x.bytes)/float64(x.prof.live),
		float64(ms.HeapAlloc)/1e6, *benchBallast, filled.Round(time.Millisecond))
	s := &Service{}
	noUser := func(string) (*model.User, error) { return nil, nil }
	for _, br := range benchPreviewRules {
		r, err := Parse([]byte(br.rule))
		if err != nil {
			b.Fatal(err)
		}
		for _, impl := range []struct {
			name string
			run  func(*Rule, snapshot, int64, func(string) (*model.User, error)) (PreviewResult, error)
		}{{"old", s.previewIndexedOld}, {"new", s.previewIndexed}} {
			b.Run(br.name+"/"+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				var res PreviewResult
				for b.Loop() {
					sn, ok := x.snapshot(r)
					if !ok {
						b.Fatal("not previewable")
					}
					if res, err = impl.run(r, sn, now.UnixMilli(), noUser); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(res.Count), "members")
				b.ReportMetric(float64(res.Profiles), "profiles")
				b.ReportMetric(float64(x.bytes)/1e6, "index-MB")
			})
		}
	}
}
