package attribution_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/attribution"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/identity"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
)

var (
	benchEvents   = flag.Int("attr.events", 10_000_000, "events the attribution benchmark generates")
	benchProfiles = flag.Int("attr.profiles", 1_000_000, "shoppers the attribution benchmark generates")
	benchMemLimit = flag.Int64("attr.memlimit", config.Default().Storage.MemoryLimit>>20, "the Go runtime's soft memory limit in MiB during the attribution benchmark (0: none; default: Shoptrail's, [storage] memory_limit)")
)

// channel mix of visits: landing URL and referrer
var visits = []struct {
	weight   int
	url, ref string
}{
	{30, "https://shop.example/p/%d", "https://www.google.com/"},
	{20, "https://shop.example/p/%d", ""},
	{12, "https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=w%d", ""},
	{10, "https://shop.example/p/%d?utm_source=google&utm_medium=cpc&gclid=x", ""},
	{8, "https://shop.example/p/%d", "https://www.facebook.com/"},
	{6, "https://shop.example/p/%d?utm_source=facebook&utm_medium=paid_social", ""},
	{5, "https://shop.example/p/%d", "https://blog.example.org/"},
	{4, "https://shop.example/p/%d?utm_source=partner&utm_medium=affiliate", ""},
	{3, "https://shop.example/p/%d?utm_source=display&utm_medium=display", ""},
	{2, "https://shop.example/p/%d", "https://www.bing.com/"},
}

// generate writes a realistic shop's log straight into st: shoppers (a
// third of them known by email, a tenth of those on two devices) visiting
// over 180 days from a mix of channels, viewing products, about one
// order per 50 events.
func generate(b *testing.B, st *store.Store, events, profiles int) (orders int) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	total := 0
	for _, v := range visits {
		total += v.weight
	}
	end := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	start := end.AddDate(0, 0, -180)
	var batch []*model.Event
	flush := func() {
		if _, err := st.Append(batch, nil); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	seq := 0
	add := func(ev *model.Event) {
		seq++
		ev.ID = fmt.Sprint("g", seq)
		ev.Via = model.ViaAPI
		ev.ReceivedAt = ev.Time
		batch = append(batch, ev)
		if len(batch) == 2000 {
			flush()
		}
	}
	for n := 0; seq < events; n++ {
		p := n % profiles
		anon := fmt.Sprintf("anon-%d", p) // one browser per shopper
		email := ""
		if p%3 == 0 {
			email = fmt.Sprintf("shopper%d@example.com", p)
		}
		if p%30 == 0 && rng.IntN(2) == 0 {
			anon += "-phone" // the same shopper on a second device
		}
		t := start.Add(time.Duration(rng.Int64N(int64(end.Sub(start)))))
		sess := fmt.Sprintf("s-%d", n)
		pick := rng.IntN(total)
		v := visits[0]
		for _, c := range visits {
			if pick < c.weight {
				v = c
				break
			}
			pick -= c.weight
		}
		add(&model.Event{Type: model.PageView, AnonymousID: anon, SessionID: sess, Time: t, URL: fmt.Sprintf(v.url, rng.IntN(5000)), Referrer: v.ref,
			Traffic: trafficOf(v.url, v.ref)})
		views := 2 + rng.IntN(10)
		for range views {
			t = t.Add(time.Duration(20+rng.IntN(120)) * time.Second)
			add(&model.Event{Type: model.ProductView, AnonymousID: anon, SessionID: sess, Time: t, URL: "https://shop.example/p/x",
				Props: map[string]json.RawMessage{"product_id": json.RawMessage(fmt.Sprintf(`"%d"`, 1000+rng.IntN(5000)))}})
		}
		if email != "" && rng.IntN(4) == 0 {
			t = t.Add(time.Minute)
			add(&model.Event{Type: model.Login, AnonymousID: anon, SessionID: sess, Email: email, Time: t, URL: "https://shop.example/login"})
		}
		if rng.IntN(6) == 0 {
			orders++
			t = t.Add(2 * time.Minute)
			add(&model.Event{Type: model.Order, AnonymousID: anon, SessionID: sess, Email: email, Time: t,
				Props: map[string]json.RawMessage{"order_id": json.RawMessage(fmt.Sprintf(`"o%d"`, orders)),
					"value": json.RawMessage(fmt.Sprintf("%d.%02d", 10+rng.IntN(200), rng.IntN(100))), "currency": json.RawMessage(`"EUR"`)}})
		}
	}
	flush()
	return orders
}

// trafficOf classifies a generated visit as ingestion would.
func trafficOf(url, ref string) *model.Traffic {
	switch {
	case strings.Contains(url, "utm_medium=email"):
		return &model.Traffic{Source: "newsletter", Medium: "email", Channel: "Email"}
	case strings.Contains(url, "utm_medium=cpc"):
		return &model.Traffic{Source: "google", Medium: "cpc", Channel: "Paid Search"}
	case strings.Contains(url, "paid_social"):
		return &model.Traffic{Source: "facebook", Medium: "paid_social", Channel: "Paid Social"}
	case strings.Contains(url, "affiliate"):
		return &model.Traffic{Source: "partner", Medium: "affiliate", Channel: "Affiliates"}
	case strings.Contains(url, "utm_medium=display"):
		return &model.Traffic{Source: "display", Medium: "display", Channel: "Display"}
	case strings.Contains(ref, "google"), strings.Contains(ref, "bing"):
		return &model.Traffic{Source: "google", Medium: "organic", Channel: "Organic Search"}
	case strings.Contains(ref, "facebook"):
		return &model.Traffic{Source: "facebook", Medium: "referral", Channel: "Organic Social"}
	case ref != "":
		return &model.Traffic{Source: "blog.example.org", Medium: "referral", Channel: "Referral"}
	}
	return nil
}

// dirSize is the disk space the files under dir take (allocated blocks:
// Badger's preallocated value-log and memtable files are sparse).
func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if st, ok := fi.Sys().(*syscall.Stat_t); err == nil && !fi.IsDir() && ok {
			n += st.Blocks * 512
		}
		return nil
	})
	return n
}

// BenchmarkAttribution generates a shop (10 M events, 1 M shoppers, 180
// days by default; -attr.events, -attr.profiles), folds it through the
// identity and attribution projections, and times the reports over 90 days
// (all models), the drill-down and the top paths, a report of another
// lookback, and a re-attribution of every order for a new default
// lookback.
func BenchmarkAttribution(b *testing.B) {
	if *benchMemLimit > 0 {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(*benchMemLimit << 20))
	}
	dir := b.TempDir()
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	orders := generate(b, st, *benchEvents, *benchProfiles)
	gen := time.Since(t0)
	st.Close()
	b.Logf("generated %d events (%d orders) in %s", *benchEvents, orders, gen.Round(time.Second))

	// the peak of anonymous memory, sampled
	var peakAnon atomic.Uint64
	stopSampling := make(chan struct{})
	defer close(stopSampling)
	go func() {
		for {
			if _, anon := enginetest.Memory(); uint64(anon) > peakAnon.Load() {
				peakAnon.Store(uint64(anon))
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	var overall uint64
	phase := func(name string) {
		p := peakAnon.Swap(0)
		overall = max(overall, p)
		b.Logf("peak anonymous memory %s: %d MiB", name, p)
	}
	const lookback = 30 * 24 * time.Hour
	for b.Loop() {
		st, err := store.Open(store.Options{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := attribution.Resummarise(st, lookback); err != nil {
			b.Fatal(err)
		}
		r, err := project.New(st, identity.New(12*time.Hour).Projection(), []*project.Projection{attribution.Projection(lookback)}, project.Options{})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		t0 = time.Now()
		go func() { r.Run(ctx); close(done) }()
		last, _ := st.LastSeq()
		wait, cancelWait := context.WithTimeout(context.Background(), 2*time.Hour)
		if err := r.Wait(wait, last); err != nil {
			b.Fatal(err)
		}
		cancelWait()
		fold := time.Since(t0)
		cancel()
		<-done
		b.ReportMetric(float64(*benchEvents)/fold.Seconds(), "fold-events/s")
		phase("folding")

		best := func(fn func()) float64 {
			d := time.Hour
			for range 5 {
				t0 := time.Now()
				fn()
				d = min(d, time.Since(t0))
			}
			return float64(d.Microseconds()) / 1000
		}
		end := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
		q := attribution.Query{From: end.AddDate(0, 0, -89), To: end, Lookback: lookback}
		run := func(q attribution.Query) *attribution.Report {
			rep, err := attribution.Run(st, q)
			if err != nil || rep.Orders == 0 {
				b.Fatalf("report: %v, %+v", err, rep)
			}
			return rep
		}
		b.ReportMetric(best(func() { run(q) }), "report-90d-ms")
		b.ReportMetric(best(func() {
			if _, _, err := run(q).Drill(st, "Email", attribution.Linear, 0, 100); err != nil {
				b.Fatal(err)
			}
		}), "drilldown-90d-ms")
		b.ReportMetric(best(func() { run(q).Paths(20) }), "paths-90d-ms")
		other := q
		other.Lookback = 90 * 24 * time.Hour
		b.ReportMetric(best(func() { run(other) }), "report-90d-lookback90-ms")
		rep := run(q)
		b.Logf("90 days: %d orders, %d channels", rep.Orders, len(rep.Channels))
		phase("reporting")

		// a new default lookback: every order re-attributed
		t0 = time.Now()
		days, err := attribution.Resummarise(st, 60*24*time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(t0).Seconds(), "reattribute-s")
		b.Logf("re-attributed %d days of orders", days)
		phase("re-attributing")
		st.Close()
		b.ReportMetric(float64(dirSize(dir))/(1<<20), "datadir-MiB")
		peak, _ := enginetest.Memory()
		b.ReportMetric(peak, "peak-RSS-MiB")
		b.ReportMetric(float64(overall), "peak-anon-MiB")
	}
}
