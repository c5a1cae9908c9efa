package app_test

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/track"
)

var (
	wrkRounds = flag.Int("wrk.rounds", 3, "BenchmarkIngestWrk: rounds of bare handler then /t")
	wrkFor    = flag.Duration("wrk.for", 4*time.Second, "BenchmarkIngestWrk: how long each wrk load runs")
	wrkProf   = flag.String("wrk.cpuprofile", "", "BenchmarkIngestWrk: write a CPU profile of the server during each /t load to this file, suffixed -1, -2, ...")
)

// wrkScript is wrk's Lua for single page views: a fresh id per request
// (per run, thread and request), 5 000 anonymous ids, a shopper's browser.
// done prints one line BenchmarkIngestWrk parses.
const wrkScript = `
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
local run, n = "x", 0
function init(args) run = args[1] or "x" end
local headers = {["Content-Type"] = "text/plain", ["User-Agent"] = %q}
function request()
  n = n + 1
  local a = n %% 5000
  local body = string.format('{"events":[{"id":"wrk-%%s-%%d-%%016d","type":"page_view","time":"2026-11-20T10:00:00Z","anonymous_id":"anon-%%08d","session_id":"sess-%%08d","url":"https://shop.example/p/1001-trail-runner-3?color=white&size=42","referrer":"https://shop.example/c/running-shoes?page=2","props":{"product_id":"1001","title":"Trail Runner 3"}}]}', run, tid, n, a, a)
  return wrk.format("POST", "/t", headers, body)
end
function done(summary, latency, requests)
  local s = summary.duration / 1e6
  io.write(string.format("WRK %%f %%f %%f %%d\n", summary.requests / s, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
`

type wrkResult struct {
	rps, p50, p99 float64 // requests/s; ms
	loaderCPU     float64 // wrk's CPU time ÷ wall time: cores it used
}

// runWrk runs wrk -t2 -c32 against url for d.
func runWrk(b *testing.B, script, url, run string, d time.Duration) wrkResult {
	b.Helper()
	var out bytes.Buffer
	cmd := exec.Command("wrk", "-t2", "-c32", "-d"+strconv.Itoa(int(d.Seconds()))+"s", "-s", script, url, "--", run)
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("wrk: %v\n%s", err, out.String())
	}
	wall := time.Since(t0)
	var r wrkResult
	var failed int
	sc := bufio.NewScanner(&out)
	found := false
	for sc.Scan() {
		if f, ok := strings.CutPrefix(sc.Text(), "WRK "); ok {
			if _, err := fmt.Sscan(f, &r.rps, &r.p50, &r.p99, &failed); err != nil {
				b.Fatalf("wrk output %q: %v", f, err)
			}
			found = true
		}
	}
	if !found {
		b.Fatalf("wrk printed no result:\n%s", out.String())
	}
	if failed > 0 {
		b.Errorf("%s: %d requests failed or were not 200", url, failed)
	}
	st := cmd.ProcessState
	r.loaderCPU = (st.UserTime() + st.SystemTime()).Seconds() / wall.Seconds()
	return r
}

// BenchmarkIngestWrk is BenchmarkIngest/single with wrk as the load
// generator, in its own process: the Go client of BenchmarkIngest shares
// this process and costs more CPU than the server, so there the profile
// (-cpuprofile) and the ratio say as much about the client as about the
// server. wrk -t2 -c32 posts one page view per request to the bare handler
// and then to /t, alternated -wrk.rounds times; it reports each round's
// ratio, the median, and the cores wrk used. Skipped without wrk on PATH.
// Run it with: go test -run='^$' -bench=IngestWrk -benchtime=1x ./engine/app/
func BenchmarkIngestWrk(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Skip("wrk is not installed (apt-get install wrk)")
	}
	script := filepath.Join(b.TempDir(), "single.lua")
	if err := os.WriteFile(script, fmt.Appendf(nil, wrkScript, enginetest.BrowserUA), 0o600); err != nil {
		b.Fatal(err)
	}
	bareURL := bare(b)
	a := enginetest.NewApp(b)
	// the projections fold after a burst: wait, so that the next load
	// starts on a quiet server
	folded := func() { a.FoldWithin(b, 5*time.Minute) }
	for b.Loop() {
		var ratios, loader []float64
		for i := range *wrkRounds {
			br := runWrk(b, script, bareURL, fmt.Sprintf("b%d", i), *wrkFor)
			stop := func() {}
			if *wrkProf != "" {
				f, err := os.Create(fmt.Sprintf("%s-%d", *wrkProf, i+1))
				if err != nil {
					b.Fatal(err)
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					b.Fatal(err) // -test.cpuprofile and -wrk.cpuprofile exclude each other
				}
				stop = func() { pprof.StopCPUProfile(); f.Close() }
			}
			r := runWrk(b, script, a.PublicURL+"/t", fmt.Sprintf("t%d", i), *wrkFor)
			stop()
			folded()
			ratios = append(ratios, r.rps/br.rps)
			loader = append(loader, r.loaderCPU)
			b.Logf("round %d: bare %.0f req/s (p50 %.2f, p99 %.2f ms, wrk %.2f cores), /t %.0f req/s (p50 %.2f, p99 %.2f ms, wrk %.2f cores), ratio %.3f",
				i+1, br.rps, br.p50, br.p99, br.loaderCPU, r.rps, r.p50, r.p99, r.loaderCPU, r.rps/br.rps)
			b.ReportMetric(r.rps/br.rps, fmt.Sprintf("ratio-%d", i+1))
		}
		slices.Sort(ratios)
		slices.Sort(loader)
		b.ReportMetric(ratios[len(ratios)/2], "median-ratio")
		b.ReportMetric(loader[len(loader)/2], "wrk-cores")
	}
}

// BenchmarkReceive is the part of a single-event /t request after HTTP:
// decoding, validation, enrichment and the group commit to Badger, from 32
// goroutines at once (so commits are shared as under wrk's 32
// connections). ns/op is wall time per event (the inverse of the rate),
// cpu-ns/op this process's CPU per event (the loop's own JSON included);
// allocs/op does not depend on the machine's load.
func BenchmarkReceive(b *testing.B) {
	a := enginetest.NewApp(b)
	settle() // the start's background work (compressing assets) is not the events'
	var seq atomic.Uint64
	b.SetParallelism(16) // × GOMAXPROCS 2 = 32
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op") }()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := track.Request{Via: model.ViaBrowser, UserAgent: enginetest.BrowserUA}
			if err := track.DecodeBatch(single(seq.Add(1)), &req); err != nil {
				b.Error(err)
				return
			}
			res, err := a.Tracker.Receive(&req)
			if err != nil || res.Accepted != 1 {
				b.Errorf("receive: %+v, %v", res.Response, err)
				return
			}
		}
	})
}

// settle waits until this process has used under 5 ms of CPU in 100 ms
// (at most 30 s).
func settle() {
	for range 300 {
		c := cpuTime()
		time.Sleep(100 * time.Millisecond)
		if cpuTime()-c < 5*time.Millisecond {
			return
		}
	}
}
