package app_test

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
)

var (
	loadFor     = flag.Duration("load.for", 4*time.Second, "how long each ingestion load runs")
	loadClients = flag.Int("load.clients", 32, "concurrent keep-alive clients")
)

// load sends requests made by body from concurrent clients for d and
// returns requests/s and the latency percentiles. Only 200 answers count.
func load(b *testing.B, url string, d time.Duration, body func(n uint64) []byte) (rps float64, p50, p99 time.Duration) {
	b.Helper()
	h := http.Header{}
	h.Set("Content-Type", "text/plain")
	h.Set("User-Agent", enginetest.BrowserUA) // a shopper's browser, not a bot
	return loadWith(b, url, h, d, body)
}

// loadWith is load with the given request headers.
func loadWith(b *testing.B, url string, header http.Header, d time.Duration, body func(n uint64) []byte) (rps float64, p50, p99 time.Duration) {
	b.Helper()
	var seq atomic.Uint64
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	tr := &http.Transport{MaxIdleConnsPerHost: *loadClients, MaxConnsPerHost: *loadClients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range *loadClients {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(deadline) {
				t0 := time.Now()
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body(seq.Add(1))))
				req.Header = header.Clone()
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
	elapsed := time.Since(start)
	if f := failed.Load(); f > 0 {
		b.Errorf("%s: %d requests failed", url, f)
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		b.Fatalf("%s: no request succeeded", url)
	}
	return float64(len(lat)) / elapsed.Seconds(), lat[len(lat)/2], lat[len(lat)*99/100]
}

// pageView is a ~330-byte browser event with a unique id: a page view
// inside the shop, the most common event. (A landing page view from another
// site also stores a visit_from_referrer event.)
func pageView(n uint64) string {
	return fmt.Sprintf(`{"id":"bench-%016d","type":"page_view","time":"2026-11-20T10:00:00Z","anonymous_id":"anon-%08d","session_id":"sess-%08d","url":"https://shop.example/p/1001-trail-runner-3?color=white&size=42","referrer":"https://shop.example/c/running-shoes?page=2","props":{"product_id":"1001","title":"Trail Runner 3"}}`, n, n%5000, n%5000)
}

func single(n uint64) []byte { return []byte(`{"events":[` + pageView(n) + `]}`) }

func batch50(n uint64) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"events":[`)
	for i := range uint64(50) {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(pageView(n*50 + i))
	}
	buf.WriteString(`]}`)
	return buf.Bytes()
}

// bare is the yardstick: a net/http handler that reads the body and
// answers with a small JSON, as /t does, but stores nothing.
func bare(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"accepted":1,"duplicates":0,"rejected":0}` + "\n"))
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/t"
}

// BenchmarkIngest measures POST /t against a bare net/http handler in the
// same run: requests/s, the ratio to the bare handler, p50 and p99. Each
// request is acknowledged only after its events are committed to Badger.
// Run it with: make bench (go test -run='^$' -bench=Ingest -benchtime=1x ./engine/app/).
func BenchmarkIngest(b *testing.B) {
	bareURL := bare(b)
	for _, sc := range []struct {
		name string
		body func(uint64) []byte
		sync bool
	}{
		{"single", single, false},
		{"batch50", batch50, false},
		{"single-fsync", single, true},
	} {
		b.Run(sc.name, func(b *testing.B) {
			a := enginetest.NewApp(b, func(c *config.Config) { c.Storage.SyncWrites = sc.sync })
			for b.Loop() {
				bareRPS, bare50, bare99 := load(b, bareURL, *loadFor, sc.body)
				rps, p50, p99 := load(b, a.PublicURL+"/t", *loadFor, sc.body)
				// the projections fold the log asynchronously: how far behind
				// were they when the load stopped?
				t0 := time.Now()
				a.FoldWithin(b, 5*time.Minute)
				b.ReportMetric(float64(time.Since(t0).Milliseconds()), "fold-lag-ms")
				ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
				b.ReportMetric(bareRPS, "bare-req/s")
				b.ReportMetric(ms(bare50), "bare-p50-ms")
				b.ReportMetric(ms(bare99), "bare-p99-ms")
				b.ReportMetric(rps, "req/s")
				b.ReportMetric(rps/bareRPS, "ratio")
				b.ReportMetric(ms(p50), "p50-ms")
				b.ReportMetric(ms(p99), "p99-ms")
				if sc.name == "batch50" {
					b.ReportMetric(rps*50, "events/s")
				}
			}
		})
	}
}
