package app_test

import (
	"bytes"
	"flag"
	"io"
	"net/http"
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
	overFor     = flag.Duration("overload.for", 4*time.Second, "how long each overload phase runs")
	overClients = flag.Int("overload.clients", 300, "concurrent clients in the overload phase")
	overInfl    = flag.Int64("overload.inflight", 0, "[ingest] max_inflight_bytes for the run; 0: the default")
	overMax     = flag.Float64("overload.max", 0, "skip the unsaturated phase and take this as its events/s (for profiling one phase)")
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
// as refused and retried after pause; only 200s count as accepted.
func overload(b *testing.B, url string, clients int, d, pause time.Duration, seq *atomic.Uint64) overloadResult {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var res overloadResult
	var mu sync.Mutex
	var lat []time.Duration
	cpu0 := cpuTime()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			var mine []time.Duration
			var acc, ref, fail int64
			var body []byte // retried as it is until accepted, as a client does
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
					time.Sleep(pause)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					acc++
					mine = append(mine, time.Since(t0))
					body = nil
				case 503:
					ref++
					if resp.Header.Get("Retry-After") == "" {
						b.Errorf("503 without Retry-After")
					}
					time.Sleep(pause)
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
	elapsed := time.Since(start)
	res.eventsPerSec = float64(res.accepted*500) / elapsed.Seconds()
	res.eventsPerCPUSec = float64(res.accepted*500) / (cpuTime() - cpu0).Seconds()
	if len(lat) > 0 {
		slices.Sort(lat)
		res.p50, res.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return res
}

// BenchmarkIngestOverload measures what overload does to ingestion:
// 500-event batches (~165 KB) from a few clients (the unsaturated
// maximum: the best of 2, 4 and 8 clients), then from -overload.clients
// clients in two ways: "eager" clients retry a 503 after -overload.pause
// (they ignore Retry-After; about 20 times the requests the server can
// take), "polite" ones wait the Retry-After second, as the tracker does.
// For each it reports accepted events/s, the ratio to the maximum, the p50
// and p99 of accepted requests, and refusals/s.
func BenchmarkIngestOverload(b *testing.B) {
	a := enginetest.NewApp(b, func(c *config.Config) {
		if *overInfl != 0 {
			c.Ingest.MaxInflightBytes = *overInfl
		}
	})
	url := a.PublicURL + "/t"
	var seq atomic.Uint64
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	// the projections catch up before each phase, so that all start alike
	folded := func() { a.FoldWithin(b, 5*time.Minute) }
	for b.Loop() {
		best := overloadResult{eventsPerSec: *overMax}
		for _, c := range []int{2, 4, 8} {
			if *overMax > 0 {
				break
			}
			r := overload(b, url, c, *overFor/2, *overPause, &seq)
			if r.eventsPerSec > best.eventsPerSec {
				best = r
			}
		}
		b.ReportMetric(best.eventsPerSec, "max-events/s")
		b.ReportMetric(best.eventsPerCPUSec, "max-events/cpu-s")
		b.ReportMetric(ms(best.p99), "max-p99-ms")
		for _, ph := range []struct {
			name  string
			pause time.Duration
		}{{"eager", *overPause}, {"polite", time.Second}} {
			folded()
			r := overload(b, url, *overClients, *overFor, ph.pause, &seq)
			b.ReportMetric(r.eventsPerSec, ph.name+"-events/s")
			b.ReportMetric(r.eventsPerSec/best.eventsPerSec, ph.name+"-ratio")
			b.ReportMetric(r.eventsPerCPUSec, ph.name+"-events/cpu-s")
			b.ReportMetric(ms(r.p50), ph.name+"-p50-ms")
			b.ReportMetric(ms(r.p99), ph.name+"-p99-ms")
			b.ReportMetric(float64(r.refused)/overFor.Seconds(), ph.name+"-refused/s")
			if r.failed > 0 {
				b.Errorf("%s: %d requests failed (neither 200 nor 503)", ph.name, r.failed)
			}
		}
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
