package demo_test

import (
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/shoptrail/shoptrail/engine/demo"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	tracker "github.com/shoptrail/shoptrail/tracker-wasm"
)

// BenchmarkTracker reports the tracker's size (raw, gzip, brotli) and, in
// headless Chromium with the cache disabled, the demo product page's load
// time (navigation start → load event end) with and without the snippet,
// and when the WASM tracker is running. Medians of 15 loads each.
func BenchmarkTracker(b *testing.B) {
	assets, err := tracker.Build()
	if err != nil || !assets.Built {
		b.Skip("the WASM tracker is not built: run make bench")
	}
	a := enginetest.NewApp(b)
	plain, err := demo.New(func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	bare := httptest.NewServer(plain.Handler())
	defer bare.Close()
	ctx := browser(b)
	if err := chromedp.Run(ctx, network.Enable(), network.SetCacheDisabled(true)); err != nil {
		b.Fatal(err)
	}
	loadMS := func(url string, waitTracker bool) (load, ready float64) {
		start := time.Now()
		err := chromedp.Run(ctx,
			chromedp.Navigate(url),
			chromedp.Poll(`performance.getEntriesByType("navigation")[0].loadEventEnd > 0`, nil),
			chromedp.Evaluate(`performance.getEntriesByType("navigation")[0].loadEventEnd`, &load),
		)
		if err != nil {
			b.Fatal(err)
		}
		if waitTracker {
			if err := chromedp.Run(ctx, waitWASM()); err != nil {
				b.Fatal(err)
			}
			ready = float64(time.Since(start).Microseconds()) / 1000
		}
		return load, ready
	}
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	for b.Loop() {
		var with, without, ready []float64
		for range 15 {
			l, r := loadMS(a.PublicURL+"/demo/p/1001", true)
			with, ready = append(with, l), append(ready, r)
			l, _ = loadMS(bare.URL+"/demo/p/1001", false)
			without = append(without, l)
		}
		b.ReportMetric(median(with), "load-ms-with-snippet")
		b.ReportMetric(median(without), "load-ms-without")
		b.ReportMetric(median(ready), "tracker-ready-ms")
	}
	for _, path := range []string{"/tracker.js"} {
		as, _ := assets.Lookup(path)
		b.ReportMetric(float64(len(as.Raw)), "loader-bytes")
	}
	for _, as := range assets.All() {
		if as.ContentType == "application/wasm" {
			b.ReportMetric(float64(len(as.Raw))/1024, "wasm-KiB")
			b.ReportMetric(float64(len(as.Gzip))/1024, "wasm-gzip-KiB")
			b.ReportMetric(float64(len(as.Brotli))/1024, "wasm-br-KiB")
		}
	}
	b.ReportMetric(float64(tracker.StubSize()), "stub-bytes")
}
