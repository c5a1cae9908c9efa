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

var (
	loadFor     = flag.Duration("load.for", 4*time.Second, "how long each decision load runs")
	loadClients = flag.Int("load.clients", 32, "concurrent keep-alive clients")
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

// get loads url(n) from concurrent clients for d: requests/s, p50, p99.
func get(b *testing.B, d time.Duration, url func(n uint64) string) (float64, time.Duration, time.Duration) {
	var seq atomic.Uint64
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	tr := &http.Transport{MaxIdleConnsPerHost: *loadClients, MaxConnsPerHost: *loadClients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	start := time.Now()
	var wg sync.WaitGroup
	for range *loadClients {
		wg.Go(func() {
			var mine []time.Duration
			for time.Since(start) < d {
				t0 := time.Now()
				req, _ := http.NewRequest("GET", url(seq.Add(1)), nil)
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
	slices.Sort(lat)
	return float64(len(lat)) / time.Since(start).Seconds(), lat[len(lat)/2], lat[len(lat)*99/100]
}

// BenchmarkDecide measures GET /c/decide with 50 active campaigns (two
// steps each, URL, page-type, device and segment conditions, caps, one
// product block in every fifth) against a bare net/http handler answering
// a small JSON in the same run: requests/s, the ratio, p50 and p99. 5 000
// shoppers have an impression folded, so the per-shopper state is read.
// It also reports the weight of the stub and of the renderer.
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

	a := enginetest.Start(b, enginetest.Config(b), app.WithSegments(halfVIP{}))
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
	for b.Loop() {
		bareRPS, _, bare99 := get(b, *loadFor, func(n uint64) string { return bareURL + "a=x" })
		var rps float64
		var p50, p99 time.Duration
		profileLoad(b, *loadProfile, func() { rps, p50, p99 = get(b, *loadFor, decide) })
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(bareRPS, "bare-req/s")
		b.ReportMetric(ms(bare99), "bare-p99-ms")
		b.ReportMetric(rps, "decide-req/s")
		b.ReportMetric(rps/bareRPS, "ratio")
		b.ReportMetric(ms(p50), "decide-p50-ms")
		b.ReportMetric(ms(p99), "decide-p99-ms")
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
