package app_test

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
)

var (
	overFor     = flag.Duration("overload.for", 8*time.Second, "how long each load runs (the maximum and each overload phase)")
	overClients = flag.Int("overload.clients", 300, "concurrent clients in the overload phase")
	overInfl    = flag.Int64("overload.inflight", 0, "[ingest] max_inflight_bytes for the run; 0: the default")
	overMax     = flag.Float64("overload.max", 0, "skip the unsaturated phase and take this as its events/s (for profiling one phase)")
	overProf    = flag.String("overload.cpuprofile", "", "write a CPU profile of each measured load to this file, suffixed -<round>-eager, -<round>-polite and -<round>-max")
	overRounds  = flag.Int("overload.rounds", 3, "rounds of (maximum, eager), (maximum, polite)")
	overPause   = flag.Duration("overload.pause", 10*time.Millisecond, "how long an overload client waits after a 503 (it ignores Retry-After)")
)

// batch500 returns a ~165 KB body of 500 page views with unique ids,
// cheaply: the load generator shares the server's two cores.
func batch500(n uint64) []byte {
	const pre = `{"id":"over-`
	const post = `","type":"page_view","time":"2026-11-20T10:00:00Z","anonymous_id":"anon-1","session_id":"sess-1","url":"https://shop.example/p/1001-trail-runner-3?color=white&size=42","referrer":"https://shop.example/c/running-shoes?page=2","props":{"product_id":"1001","title":"Trail Runner 3"}}`
	b := make([]byte, 0, 500*(len(pre)+len(post)+24)+16)
	b = append(b, `{"events":[`...)
	for i := range uint64(500) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, pre...)
		b = strconv.AppendUint(b, n*500+i, 10)
		b = append(b, post...)
	}
	return append(b, `]}`...)
}

type overloadResult struct {
	accepted, refused, failed int64
	eventsPerSec              float64
	eventsPerCPUSec           float64       // CPU of this process: server and load generator
	p50, p99                  time.Duration // of accepted requests
}

// overload posts 500-event batches from clients for d. A 503 is counted
// as refused and retried after pause; only 200s count as accepted. The
// rate counts the batches accepted by the end of d, over d: a client
// that sleeps past the end (a polite one waits a second after a 503) or
// a request still in flight must not stretch the time they are divided by.
func overload(b *testing.B, url string, clients int, d, pause time.Duration, seq *atomic.Uint64) overloadResult {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var res overloadResult
	var mu sync.Mutex
	var lat []time.Duration
	var inTime atomic.Int64 // batches accepted by the deadline
	cpu0 := cpuTime()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			var mine []time.Duration
			var acc, ref, fail int64
			var body []byte // retried as it is until accepted, as a client does
			rest := func() { time.Sleep(min(pause, time.Until(deadline))) }
			for time.Now().Before(deadline) {
				if body == nil {
					body = batch500(seq.Add(1))
				}
				t0 := time.Now()
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "text/plain")
				req.Header.Set("User-Agent", enginetest.BrowserUA)
				resp, err := client.Do(req)
				if err != nil {
					fail++
					rest()
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					acc++
					if time.Now().Before(deadline) {
						inTime.Add(1)
					}
					mine = append(mine, time.Since(t0))
					body = nil
				case 503:
					ref++
					if resp.Header.Get("Retry-After") == "" {
						b.Errorf("503 without Retry-After")
					}
					rest()
				default:
					fail++
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			res.accepted += acc
			res.refused += ref
			res.failed += fail
			mu.Unlock()
		})
	}
	wg.Wait()
	res.eventsPerSec = float64(inTime.Load()*500) / d.Seconds()
	res.eventsPerCPUSec = float64(res.accepted*500) / (cpuTime() - cpu0).Seconds()
	if len(lat) > 0 {
		slices.Sort(lat)
		res.p50, res.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return res
}

// BenchmarkIngestOverload measures what overload does to ingestion:
// 500-event batches (~165 KB) from 8 clients (the unsaturated maximum),
// and from -overload.clients clients in two ways: "eager" clients retry a
// 503 after -overload.pause (they ignore Retry-After; about 20 times the
// requests the server can take), "polite" ones wait the Retry-After
// second, as the tracker does.
//
// Each overload phase is compared with a maximum measured beside it, for
// as long, each after the projections have caught up and Badger has no
// compaction due, and the order of the two alternates between rounds
// (-overload.rounds). A maximum taken once at the start, on an empty
// store, as the best of three 2-second loads, counted none of the
// compactions that the loads and folds before leave Badger to do: in a
// profile of a later polite phase they took 31 % of the CPU, and two
// polite phases in a row kept 0.85 and then 0.62 of such a maximum. For
// each phase it reports the median ratio, the worst p99 of accepted
// requests, and the medians of accepted events/s, of the maximum, of
// refusals/s and of p50, and it logs every round.
func BenchmarkIngestOverload(b *testing.B) {
	a := enginetest.NewApp(b, func(c *config.Config) {
		if *overInfl != 0 {
			c.Ingest.MaxInflightBytes = *overInfl
		}
	})
	url := a.PublicURL + "/t"
	var seq atomic.Uint64
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	// the projections catch up before each measurement, so that all start
	// alike
	folded := func() {
		a.FoldWithin(b, 5*time.Minute)
		// and Badger has compacted what the loads and folds before wrote
		deadline := time.Now().Add(2 * time.Minute)
		for a.Store.Compacting() {
			if time.Now().After(deadline) {
				b.Log("compactions still due after 2 minutes: measuring all the same")
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	profile := func(name string) (stop func()) {
		if *overProf == "" {
			return func() {}
		}
		f, err := os.Create(*overProf + "-" + name)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err) // -test.cpuprofile and -overload.cpuprofile exclude each other
		}
		return func() { pprof.StopCPUProfile(); f.Close() }
	}
	// the unsaturated maximum: 8 clients keep the pipeline full (the 2
	// MiB window holds 12 of their batches) and are never refused
	maximum := func(round int) overloadResult {
		if *overMax > 0 {
			return overloadResult{eventsPerSec: *overMax}
		}
		folded()
		stop := profile(fmt.Sprintf("%d-max", round))
		r := overload(b, url, 8, *overFor, *overPause, &seq)
		stop()
		if r.refused > 0 {
			b.Logf("round %d: the maximum's 8 clients were refused %d times: it is not unsaturated", round, r.refused)
		}
		return r
	}
	median := func(xs []float64) float64 {
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	for b.Loop() {
		type phase struct {
			name                              string
			pause                             time.Duration
			ratio, rate, perCPU, p50, refused []float64
			maxRate                           []float64
			p99                               float64
		}
		phases := []*phase{{name: "eager", pause: *overPause}, {name: "polite", pause: time.Second}}
		for round := range max(*overRounds, 1) {
			for _, ph := range phases {
				// the load before pays part of its compactions in the
				// load after: the order alternates between rounds
				var best, r overloadResult
				over := func() {
					folded()
					stop := profile(fmt.Sprintf("%d-%s", round+1, ph.name))
					r = overload(b, url, *overClients, *overFor, ph.pause, &seq)
					stop()
				}
				if round%2 == 0 {
					best = maximum(round + 1)
					over()
				} else {
					over()
					best = maximum(round + 1)
				}
				if r.failed > 0 {
					b.Errorf("%s: %d requests failed (neither 200 nor 503)", ph.name, r.failed)
				}
				ratio := r.eventsPerSec / best.eventsPerSec
				b.Logf("round %d, %s: maximum %.0f events/s (p99 %.0f ms), %s %.0f events/s, ratio %.2f, p50 %.0f ms, p99 %.0f ms, %.0f refused/s, %.0f events/cpu-s (maximum %.0f)",
					round+1, ph.name, best.eventsPerSec, ms(best.p99), ph.name, r.eventsPerSec, ratio, ms(r.p50), ms(r.p99),
					float64(r.refused)/overFor.Seconds(), r.eventsPerCPUSec, best.eventsPerCPUSec)
				ph.ratio = append(ph.ratio, ratio)
				ph.rate = append(ph.rate, r.eventsPerSec)
				ph.maxRate = append(ph.maxRate, best.eventsPerSec)
				ph.perCPU = append(ph.perCPU, r.eventsPerCPUSec)
				ph.p50 = append(ph.p50, ms(r.p50))
				ph.refused = append(ph.refused, float64(r.refused)/overFor.Seconds())
				ph.p99 = max(ph.p99, ms(r.p99))
			}
		}
		for _, ph := range phases {
			b.ReportMetric(median(ph.ratio), ph.name+"-ratio")
			b.ReportMetric(median(ph.rate), ph.name+"-events/s")
			b.ReportMetric(median(ph.maxRate), ph.name+"-max-events/s")
			b.ReportMetric(median(ph.perCPU), ph.name+"-events/cpu-s")
			b.ReportMetric(median(ph.p50), ph.name+"-p50-ms")
			b.ReportMetric(ph.p99, ph.name+"-worst-p99-ms")
			b.ReportMetric(median(ph.refused), ph.name+"-refused/s")
		}
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
