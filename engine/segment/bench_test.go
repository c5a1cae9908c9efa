package segment_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/segment"
	"github.com/shoptrail/shoptrail/engine/store"
)

var (
	benchEvents   = flag.Int("seg.events", 10_000_000, "events the segments benchmark generates")
	benchProfiles = flag.Int("seg.profiles", 1_000_000, "shoppers the segments benchmark generates")
	benchLoad     = flag.Duration("seg.load", 4*time.Second, "how long each ingestion load runs")
	// the load's page views are counted by no segment (skipped by the
	// fold); product views are, by a quarter of the 100 segments
	benchViews = flag.Float64("seg.productviews", 0, "share of the ingestion load that is product views (0: page views only)")
	// a shop of 10 M events takes most of an hour to generate and fold:
	// -seg.dir keeps it (generated once, folded by whichever run gets
	// there) and -seg.foldonly stops once it is folded
	benchDir      = flag.String("seg.dir", "", "keep the generated shop in this dir and reuse it (empty: a fresh temp dir)")
	benchFoldOnly = flag.Bool("seg.foldonly", false, "generate and fold the shop, then stop (with -seg.dir: measure in a later run)")
)

// quiet waits, up to 10 minutes, until the process used less than a tenth
// of a processor for 5 s in a row (Badger's compactions after a bulk write
// done), and returns how long it waited: ingestion is then measured
// against the same background each time.
func quiet() time.Duration {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	t0 := time.Now()
	last, calm := cpu(), 0
	for calm < 5 && time.Since(t0) < 10*time.Minute {
		time.Sleep(time.Second)
		c := cpu()
		if c-last < 100*time.Millisecond {
			calm++
		} else {
			calm = 0
		}
		last = c
	}
	return time.Since(t0)
}

// hundred returns the i-th of the benchmarks' segments: visits per
// channel, categories viewed, orders and spend, windows of 1 to 90 days.
func hundred(i int) string {
	r := []string{
		`{"event":"visit_from_referrer","where":[{"prop":"channel","value":"%s"}],"within":"%dh"}`,
		`{"event":"product_view","where":[{"prop":"category","value":"c%d"}],"count":{"op":"gte","value":2},"within":"%dh"}`,
		`{"orders":{"op":"gte","value":%d},"within":"%dh"}`,
		`{"spent":{"op":"gte","value":%d,"currency":"EUR"},"within":"%dh"}`,
	}[i%4]
	var cond string
	if i%4 == 0 {
		cond = fmt.Sprintf(r, segment.BenchSources[i%len(segment.BenchSources)].Channel, 24*(1+i%90))
	} else {
		cond = fmt.Sprintf(r, i%40, 24*(1+i%90))
	}
	return fmt.Sprintf(`{"name":"s%d","conditions":[%s]}`, i, cond)
}

// generateShop writes a shop's log into st like the attribution benchmark's:
// shoppers (a third known by email) visiting over 180 days from a mix of
// channels (with a visit_from_referrer event for visits from outside),
// viewing products, adding to the cart, about one order per 50 events.
func generateShop(b *testing.B, st *store.Store, events, profiles int) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	end := time.Now().UTC()
	start := end.AddDate(0, 0, -180)
	var batch []*model.Event
	seq := 0
	add := func(ev *model.Event) {
		seq++
		ev.ID, ev.Via, ev.ReceivedAt = fmt.Sprint("g", seq), model.ViaAPI, ev.Time
		batch = append(batch, ev)
		if len(batch) == 2000 {
			if _, err := st.Append(batch, nil); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	for n := 0; seq < events; n++ {
		p := n % profiles
		anon, email := fmt.Sprintf("anon-%d", p), ""
		if p%3 == 0 {
			email = fmt.Sprintf("shopper%d@example.com", p)
		}
		sess := fmt.Sprintf("s-%d", n)
		segment.BenchVisit(rng, start, end, email, fmt.Sprint("o", n), func(ev *model.Event) {
			ev.AnonymousID, ev.SessionID = anon, sess
			add(ev)
		})
	}
	if _, err := st.Append(batch, nil); err != nil {
		b.Fatal(err)
	}
}

// drive posts single page views to url from 32 clients for d, at most rate
// requests/s (0: as fast as it goes), and returns the requests/s answered 200.
func drive(b *testing.B, url string, d time.Duration, rate float64) float64 {
	var n, seq atomic.Int64
	tr := &http.Transport{MaxIdleConnsPerHost: 32, MaxConnsPerHost: 32}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				i := seq.Add(1)
				if rate > 0 {
					if wait := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); wait > 0 {
						time.Sleep(wait)
					}
				}
				body := fmt.Sprintf(`{"events":[{"id":"load-%d-%d","type":"page_view","anonymous_id":"load-%d","session_id":"ls-%d","url":"https://shop.example/p/1001"}]}`,
					start.UnixNano(), i, i%20000, i%20000)
				if float64(i%100) < *benchViews*100 {
					body = fmt.Sprintf(`{"events":[{"id":"load-%d-%d","type":"product_view","anonymous_id":"load-%d","session_id":"ls-%d","url":"https://shop.example/p/1001","props":{"product_id":"p%d","category":"c%d"}}]}`,
						start.UnixNano(), i, i%20000, i%20000, i%1000, i%40)
				}
				req, _ := http.NewRequest("POST", url, strings.NewReader(body))
				req.Header.Set("Content-Type", "text/plain")
				req.Header.Set("User-Agent", enginetest.BrowserUA)
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

// BenchmarkSegments generates a shop (10 M events, 1 M shoppers by
// default; -seg.events, -seg.profiles), folds it, and measures: ingestion
// without segments; a new segment's build and ingestion meanwhile; the
// preview of a new 3-condition rule; ingestion with 100 segments; and how
// long a membership change takes to show through the API, p50 and p99,
// while ingestion runs at half its maximum.
func BenchmarkSegments(b *testing.B) {
	cfg := enginetest.Config(b)
	cfg.Demo.Enabled = false
	// the soft memory limit serve sets (the index's budget is half of it),
	// and the mapped files unbounded: the README's advice for a shop of more
	// than 500 000 shoppers (at 10 M events, a 32 MiB bound had the fold
	// read its tables from the disk again and again)
	if *benchProfiles > 500_000 {
		cfg.Storage.MemoryLimit = 512 << 20
		cfg.Storage.MappedLimit = 0
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(cfg.Storage.MemoryLimit))
	generated := ""
	if *benchDir != "" {
		cfg.Storage.Dir = filepath.Join(*benchDir, "data")
		generated = filepath.Join(*benchDir, "generated")
	}
	// a benchmark's log shows when it ends: at this size, each line goes to
	// stderr as well, as it comes (how far a run got)
	logf := func(format string, args ...any) {
		b.Helper()
		b.Logf(format, args...)
		fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	if raw, err := os.ReadFile(generated); err == nil {
		logf("reusing the shop in %s: %s", *benchDir, raw)
	} else {
		if generated != "" {
			os.RemoveAll(cfg.Storage.Dir) // half-generated
		}
		st, err := store.Open(store.Options{Dir: cfg.Storage.Dir})
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		generateShop(b, st, *benchEvents, *benchProfiles)
		st.Close()
		logf("generated %d events in %s", *benchEvents, time.Since(t0).Round(time.Second))
		if generated != "" {
			if err := os.WriteFile(generated, fmt.Appendf(nil, "%d events, %d shoppers", *benchEvents, *benchProfiles), 0o600); err != nil {
				b.Fatal(err)
			}
		}
	}
	report := func(v float64, unit string) {
		b.Helper()
		b.ReportMetric(v, unit)
		logf("%s: %.3f", unit, v)
	}
	// the peak of anonymous memory, sampled
	var peakAnon atomic.Int64
	sampling := make(chan struct{})
	defer close(sampling)
	go func() {
		for {
			if _, anon := enginetest.Memory(); int64(anon) > peakAnon.Load() {
				peakAnon.Store(int64(anon))
			}
			select {
			case <-sampling:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	mem := func(when string) {
		peak, anon := enginetest.Memory()
		logf("memory %s: peak RSS %.0f MiB, RssAnon now %.0f MiB, peak RssAnon (sampled) %d MiB", when, peak, anon, peakAnon.Load())
	}
	for b.Loop() {
		a := enginetest.Start(b, cfg)
		wait := func() {
			last, _ := a.Store.LastSeq()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
			defer cancel()
			if err := a.Pipeline.Wait(ctx, last); err != nil {
				b.Fatal(err)
			}
		}
		t0 := time.Now()
		wait()
		logf("folded in %s", time.Since(t0).Round(time.Second))
		mem("after the fold")
		if *benchFoldOnly {
			a.Stop()
			continue
		}
		var api func(method, path, body string, out any) int
		api = func(method, path, body string, out any) int {
			req, _ := http.NewRequest(method, a.PublicURL+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+a.Key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if out != nil {
				json.Unmarshal(raw, out)
			}
			if resp.StatusCode >= 300 && !(resp.StatusCode == 404 && strings.HasPrefix(path, "/api/v1/user/")) &&
				!(resp.StatusCode == 503 && strings.HasSuffix(path, "/preview")) { // over 20 s: the time says it
				b.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
			}
			return resp.StatusCode
		}
		type view struct {
			ID       string
			Building bool
			Count    int64
			Progress struct {
				Profiles, Events  int64
				Started, Finished time.Time
			}
		}
		built := func(id string) view {
			for {
				var v view
				api("GET", "/api/v1/segments/"+id, "", &v)
				if !v.Building {
					return v
				}
				time.Sleep(50 * time.Millisecond)
			}
		}

		// the preview index is built at start, between folds (a minute or
		// more at 10 M events): ingestion is measured once it is
		for !a.Segments.IndexStats().Ready && !a.Segments.IndexStats().Over {
			time.Sleep(50 * time.Millisecond)
		}
		ix := a.Segments.IndexStats()
		logf("preview index: %+v", ix)
		report(ix.Built.Seconds(), "index-build-s")
		report(float64(ix.Bytes)/float64(max(ix.Profiles, 1)), "index-B/profile")
		mem("with the preview index")

		logf("quiet after %s", quiet().Round(time.Second))
		max0 := drive(b, a.PublicURL+"/t", *benchLoad, 0)
		wait()
		report(max0, "ingest-no-segments-req/s")

		// a preview of a new 3-condition rule: its conditions are counted
		// by no segment yet; the preview index has every shopper's events
		rule := previewRule
		t0 = time.Now()
		var pre struct{ Count int64 }
		api("POST", "/api/v1/segments/preview", rule, &pre)
		report(time.Since(t0).Seconds(), "preview-new-rule-s")

		// the same segment built in the background while ingestion runs
		var v view
		api("POST", "/api/v1/segments", rule, &v)
		var during float64
		done := make(chan struct{})
		go func() { during = drive(b, a.PublicURL+"/t", *benchLoad, 0); close(done) }()
		v = built(v.ID)
		<-done
		wait()
		secs := v.Progress.Finished.Sub(v.Progress.Started).Seconds()
		report(secs, "build-s")
		report(float64(v.Progress.Events)/secs, "build-events/s")
		report(during/max0, "ingest-during-build-ratio")
		if pre.Count > 0 && v.Count != pre.Count {
			b.Errorf("preview %d, built %d", pre.Count, v.Count)
		}
		// a preview now reads the built segment's counts
		t0 = time.Now()
		api("POST", "/api/v1/segments/preview", strings.Replace(rule, `"value":2`, `"value":3`, 1), nil)
		report(time.Since(t0).Seconds(), "preview-counted-rule-s")

		// 100 segments
		for i := range 99 {
			api("POST", "/api/v1/segments", hundred(i), &v)
		}
		var list struct{ Segments []view }
		t0 = time.Now()
		for {
			api("GET", "/api/v1/segments", "", &list)
			if !slices.ContainsFunc(list.Segments, func(v view) bool { return v.Building }) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		report(time.Since(t0).Seconds(), "build-99-s")
		// right after the builds (Badger compacts what they wrote), then
		// once the process is quiet, as it was for max0
		fresh := drive(b, a.PublicURL+"/t", *benchLoad, 0)
		wait()
		report(fresh/max0, "ingest-100-segments-after-builds-ratio")
		logf("quiet after %s", quiet().Round(time.Second))
		max100 := drive(b, a.PublicURL+"/t", *benchLoad, 0)
		wait()
		report(max100, "ingest-100-segments-req/s")
		report(max100/max0, "ingest-100-segments-ratio")

		// freshness: while ingestion runs at half its maximum, an event
		// that makes a known user a member, until the Users API shows it
		var probe view
		api("POST", "/api/v1/segments", `{"name":"probe","conditions":[{"event":"bench_probe"}]}`, &probe)
		built(probe.ID)
		probe1 := func(i int) time.Duration {
			email := fmt.Sprintf("probe%d@example.com", i)
			start := time.Now()
			api("POST", "/api/v1/events", `{"events":[{"type":"bench_probe","email":"`+email+`"}]}`, nil)
			for time.Since(start) < 30*time.Second {
				var u struct{ Segments []struct{ ID string } }
				api("GET", "/api/v1/user/"+email, "", &u)
				if len(u.Segments) > 0 && bytes.Contains([]byte(fmt.Sprint(u.Segments)), []byte(probe.ID)) {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			return time.Since(start)
		}
		pct := func(lat []time.Duration, unit string) {
			slices.Sort(lat)
			report(float64(lat[len(lat)/2].Milliseconds()), unit+"-p50-ms")
			report(float64(lat[len(lat)*99/100].Milliseconds()), unit+"-p99-ms")
		}
		var idle []time.Duration
		for i := range 50 {
			idle = append(idle, probe1(i))
		}
		pct(idle, "fresh-idle")
		stop := make(chan struct{})
		loadDone := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					close(loadDone)
					return
				default:
				}
				drive(b, a.PublicURL+"/t", time.Second, max0/2)
			}
		}()
		var loaded []time.Duration
		for i := range 20 { // at most 30 s each
			loaded = append(loaded, probe1(1000+i))
		}
		close(stop)
		<-loadDone
		pct(loaded, "fresh-half-load")
		mem("at the end")
		peak, _ := enginetest.Memory()
		report(peak, "peak-rss-MiB")
		report(float64(peakAnon.Load()), "peak-anon-MiB")
		a.Stop()
	}
}
