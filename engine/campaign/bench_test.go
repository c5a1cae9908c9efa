package campaign_test

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/app"
	"github.com/shoptrail/shoptrail/engine/campaign"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	tracker "github.com/shoptrail/shoptrail/tracker-wasm"
)

// pacedShare is the share of the bare handler's requests/s at which the
// goal asks decisions' p99 (the throughput goal: ratio ≥ 0.3).
const pacedShare = 0.3

var (
	loadFor     = flag.Duration("load.for", 2*time.Second, "how long each load (bare or decisions) runs in a round, in -load.slices alternated slices")
	loadSlices  = flag.Int("load.slices", 4, "slices a round alternates between the bare handler and decisions, so both see the same machine")
	loadRounds  = flag.Int("load.rounds", 3, "rounds; the ratio is their median")
	loadClients = flag.Int("load.clients", 32, "concurrent keep-alive clients")
	loadLimiter = flag.Bool("load.limiter", true, "run the public listener's rate limiter (on by default in config.toml) at a rate no client reaches")
	loadProfile = flag.String("load.profile", "", "write CPU, allocation, mutex and block profiles of the decision load alone into this directory (cpu.out, and allocs/mutex/block as -before.out and -after.out, for pprof -base)")
)

// profileLoad profiles what runs while load runs: a CPU profile, and the
// allocation, mutex and block profiles before and after it.
func profileLoad(b *testing.B, dir string, load func()) {
	if dir == "" {
		load()
		return
	}
	runtime.SetMutexProfileFraction(5)
	runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	defer runtime.SetMutexProfileFraction(0)
	defer runtime.SetBlockProfileRate(0)
	write := func(name, when string) {
		f, err := os.Create(filepath.Join(dir, name+"-"+when+".out"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	for _, n := range []string{"allocs", "mutex", "block"} {
		write(n, "before")
	}
	f, err := os.Create(filepath.Join(dir, "cpu.out"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	load()
	pprof.StopCPUProfile()
	runtime.GC() // the allocation profile is as of the last GC
	for _, n := range []string{"allocs", "mutex", "block"} {
		write(n, "after")
	}
}

// halfVIP is a segment answer for the benchmark: every other shopper is in
// "vip" (engine/segment's real membership reads Badger as well).
type halfVIP struct{}

func (halfVIP) IsMember(profile, segment string) (bool, error) {
	return len(profile)%2 == 0, nil
}

// load is what a load measured: the latencies of the requests answered
// 200, in the time it ran.
type load struct {
	lat     []time.Duration
	elapsed time.Duration
}

func (l load) rps() float64 { return float64(len(l.lat)) / l.elapsed.Seconds() }

func (l *load) add(m load) {
	l.lat = append(l.lat, m.lat...)
	l.elapsed += m.elapsed
}

// loader asks url(n) over its own keep-alive connections.
type loader struct {
	client *http.Client
	seq    *atomic.Uint64
	url    func(n uint64) string
}

func newLoader(url func(n uint64) string) loader {
	tr := &http.Transport{MaxIdleConnsPerHost: *loadClients, MaxConnsPerHost: *loadClients}
	return loader{client: &http.Client{Transport: tr, Timeout: 10 * time.Second}, seq: new(atomic.Uint64), url: url}
}

// alternate runs a and b in turn, slices times each, for d each in all.
func alternate(tb *testing.B, d time.Duration, slices int, rate float64, a, b loader) (load, load) {
	var la, lb load
	for range slices {
		la.add(a.get(tb, d/time.Duration(slices), rate))
		lb.add(b.get(tb, d/time.Duration(slices), rate))
	}
	return la, lb
}

// pct returns the p-th percentile of the latencies of loads.
func pct(p int, loads ...load) time.Duration {
	var all []time.Duration
	for _, l := range loads {
		all = append(all, l.lat...)
	}
	slices.Sort(all)
	return all[len(all)*p/100]
}

// get loads url(n) from concurrent clients for d: as fast as they can, or
// at rate requests/s when rate > 0, the latency of each then counted from
// when it was due (a request that waits for a free client is late).
func (l loader) get(b *testing.B, d time.Duration, rate float64) load {
	var seq atomic.Uint64
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	client := l.client
	start := time.Now()
	var wg sync.WaitGroup
	for range *loadClients {
		wg.Go(func() {
			var mine []time.Duration
			for time.Since(start) < d {
				n := seq.Add(1)
				t0 := time.Now()
				if rate > 0 {
					due := start.Add(time.Duration(float64(n-1) / rate * float64(time.Second)))
					if due.Sub(start) >= d {
						break
					}
					if wait := time.Until(due); wait > 0 {
						time.Sleep(wait)
					}
					t0 = due
				}
				req, _ := http.NewRequest("GET", l.url(l.seq.Add(1)), nil)
				req.Header.Set("User-Agent", enginetest.BrowserUA)
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		b.Errorf("%d requests failed", f)
	}
	if len(lat) == 0 {
		b.Fatal("no request succeeded")
	}
	return load{lat: lat, elapsed: time.Since(start)}
}

// BenchmarkDecide measures GET /c/decide with 50 active campaigns (two
// steps each, URL, page-type, device and segment conditions, caps, one
// product block in every fifth) against a bare net/http handler answering
// a small JSON in the same run, alternated (-load.rounds, -load.for):
// requests/s, the median ratio of the rounds and its range, p50 and p99
// over all rounds. Then, in each round, the latency at the load the goal
// names: decisions and the bare handler each paced at 0.3 × the bare
// handler's requests/s of that round (paced-p50/p99). 5 000 shoppers have an impression folded, so the
// per-shopper state is read. It also reports the weight of the stub and
// of the renderer.
func BenchmarkDecide(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	bare := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"css":"h1{opacity:0!important}","show":[],"n":false,"r":"/c/render.js"}` + "\n"))
	})}
	go bare.Serve(ln)
	defer bare.Close()
	bareURL := "http://" + ln.Addr().String() + "/c/decide?"

	cfg := enginetest.Config(b)
	if *loadLimiter {
		// the per-client rate limiter runs as it does by default, at a
		// rate that the one loopback client of the benchmark never reaches
		cfg.HTTP.RateLimit, cfg.HTTP.RateBurst = 1<<30, 1<<30
	}
	a := enginetest.Start(b, cfg, app.WithSegments(halfVIP{}))
	var first string
	for i := range 50 {
		block := ""
		if i%5 == 0 {
			block = `{{product \"1001\"}}`
		}
		body := fmt.Sprintf(`{"name":"c%d","status":"active","groups":[
		 {"conditions":[{"kind":"url","op":"contains","value":"/p/"},{"kind":"page_type","op":"eq","value":"product"},{"kind":"segment","op":"%s","value":"vip"},{"kind":"device","op":"eq","value":"desktop"}],
		  "placement":{"selector":"#slot-%d","mode":"after"},"limits":{"per_session":2,"per_user":5},"goal":"click",
		  "variations":[{"name":"A","weight":50,"html":"<div class=\"promo\">Offer %d %s</div>"},{"name":"B","weight":50,"control":true}]},
		 {"conditions":[{"kind":"url","op":"contains","value":"/cart"}],"placement":{"mode":"popup"},
		  "variations":[{"name":"only","weight":100,"html":"<p>Step 2 of %d</p>"}]}]}`, i, map[bool]string{true: "in", false: "not_in"}[i%2 == 0], i, i, block, i)
		var c campaign.Campaign
		if st := a.Do(b, "POST", "/api/v1/campaigns", body, &c, a.Auth()...); st != 201 {
			b.Fatalf("campaign %d: %d", i, st)
		}
		if i == 0 {
			first = c.ID
		}
	}
	var events bytes.Buffer
	for i := range 5000 {
		if i%100 == 0 {
			events.Reset()
			events.WriteString(`{"events":[`)
		} else {
			events.WriteByte(',')
		}
		fmt.Fprintf(&events, `{"type":"campaign_impression","anonymous_id":"shopper%d","session_id":"s%d","url":"https://shop.example/p/1001","props":{"campaign_id":%q,"group":0,"variation":"A"}}`, i, i, first)
		if i%100 == 99 {
			events.WriteString(`]}`)
			if st := a.Do(b, "POST", "/t", events.String(), nil); st != 200 {
				b.Fatalf("events: %d", st)
			}
		}
	}
	a.Fold(b)
	decide := func(n uint64) string {
		q := url.Values{"a": {fmt.Sprintf("shopper%d", n%10000)}, "s": {fmt.Sprintf("s%d", n%10000)},
			"u": {"https://shop.example/p/1001?color=white"}, "r": {"https://www.google.com/"}, "pt": {"product"}, "pid": {"1001"}}
		return a.PublicURL + "/c/decide?" + q.Encode()
	}
	bareLoad, decideLoad := newLoader(func(uint64) string { return bareURL + "a=x" }), newLoader(decide)
	for b.Loop() {
		var bares, decides, pacedBare, pacedDecide []load
		var ratios []float64
		for range max(*loadRounds, 1) {
			bare, dec := alternate(b, *loadFor, *loadSlices, 0, bareLoad, decideLoad)
			rate := pacedShare * bare.rps()
			pb, pd := alternate(b, *loadFor, *loadSlices, rate, bareLoad, decideLoad)
			bares, decides, pacedBare, pacedDecide = append(bares, bare), append(decides, dec), append(pacedBare, pb), append(pacedDecide, pd)
			ratios = append(ratios, dec.rps()/bare.rps())
			b.Logf("round %d: bare %.0f req/s, decide %.0f req/s, ratio %.3f, decide p99 %v; at %.0f req/s: decide p99 %v (%.0f req/s), bare p99 %v",
				len(ratios), bare.rps(), dec.rps(), ratios[len(ratios)-1], pct(99, dec), rate, pct(99, pd), pd.rps(), pct(99, pb))
		}
		slices.Sort(ratios)
		total := func(loads []load) float64 {
			n, d := 0, time.Duration(0)
			for _, l := range loads {
				n, d = n+len(l.lat), d+l.elapsed
			}
			return float64(n) / d.Seconds()
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(total(bares), "bare-req/s")
		b.ReportMetric(ms(pct(99, bares...)), "bare-p99-ms")
		b.ReportMetric(total(decides), "decide-req/s")
		b.ReportMetric(ratios[len(ratios)/2], "ratio")
		b.ReportMetric(ratios[0], "ratio-min")
		b.ReportMetric(ratios[len(ratios)-1], "ratio-max")
		b.ReportMetric(ms(pct(50, decides...)), "decide-p50-ms")
		b.ReportMetric(ms(pct(99, decides...)), "decide-p99-ms")
		b.ReportMetric(ms(pct(50, pacedDecide...)), "paced-p50-ms")
		b.ReportMetric(ms(pct(99, pacedDecide...)), "paced-p99-ms")
		b.ReportMetric(ms(pct(99, pacedBare...)), "paced-bare-p99-ms")
	}
	if *loadProfile != "" {
		profileLoad(b, *loadProfile, func() { decideLoad.get(b, *loadFor, 0) })
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write([]byte(campaign.RendererJS))
	zw.Close()
	b.ReportMetric(float64(tracker.StubSize()), "stub-bytes")
	b.ReportMetric(float64(gz.Len()), "renderer-gzip-bytes")
	if !strings.Contains(campaign.RendererJS, "shoptrail") {
		b.Fatal("renderer")
	}
}
