package app_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// segmentBatchSize is how many events each request of BenchmarkSegmentBatch
// carries: Segment's Node SDK sends 15 by default.
const segmentBatchSize = 20

// apiBatch is a POST /api/v1/events body: segmentBatchSize product views
// of one shopper, as a shop's server sends them.
func apiBatch(n uint64) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"events":[`)
	for i := range uint64(segmentBatchSize) {
		if i > 0 {
			buf.WriteByte(',')
		}
		k := n*segmentBatchSize + i
		fmt.Fprintf(&buf, `{"id":"api-%016d","type":"product_view","time":"2026-11-20T10:00:00.000Z","anonymous_id":"uid:%d","url":"https://shop.example/p/1001-trail-runner-3","props":{"product_id":"1001","name":"Trail Runner 3","price":139.68,"currency":"EUR"}}`, k, n%5000)
	}
	buf.WriteString(`]}`)
	return buf.Bytes()
}

// segmentBatch is the same events as the Node SDK sends them to /v1/batch.
func segmentBatch(n uint64) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"batch":[`)
	for i := range uint64(segmentBatchSize) {
		if i > 0 {
			buf.WriteByte(',')
		}
		k := n*segmentBatchSize + i
		fmt.Fprintf(&buf, `{"type":"track","event":"Product Viewed","userId":"%d","properties":{"product_id":"1001","name":"Trail Runner 3","price":139.68,"currency":"EUR"},"context":{"page":{"url":"https://shop.example/p/1001-trail-runner-3"},"library":{"name":"@segment/analytics-node","version":"3.1.0"}},"messageId":"node-next-1763632800000-%016d","timestamp":"2026-11-20T10:00:00.000Z","integrations":{},"_metadata":{"nodeVersion":"20.20.2","jsRuntime":"node"}}`, n%5000, k)
	}
	buf.WriteString(`],"writeKey":"st_x","sentAt":"2026-11-20T10:00:00.100Z"}`)
	return buf.Bytes()
}

// BenchmarkSegmentBatch measures Segment's POST /v1/batch against Shoptrail's
// own POST /api/v1/events in the same run, with the same 20 product views
// a request, each answered after the commit; and the bare net/http handler
// as the yardstick. Run it with:
// go test -run='^$' -bench=SegmentBatch -benchtime=1x ./engine/app/
func BenchmarkSegmentBatch(b *testing.B) {
	bareURL := bare(b)
	a := enginetest.NewApp(b)
	api := http.Header{}
	api.Set("Content-Type", "application/json")
	api.Set("Authorization", "Bearer "+a.Key)
	seg := http.Header{}
	seg.Set("Content-Type", "application/json")
	seg.Set("User-Agent", "analytics-node-next/latest")
	seg.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(a.Key+":")))
	// the projections fold the log asynchronously: each load starts once
	// the previous one's events are folded, or it would pay for them
	folded := func() { a.FoldWithin(b, 5*time.Minute) }
	for b.Loop() {
		bareRPS, _, _ := loadWith(b, bareURL, api, *loadFor, segmentBatch)
		apiRPS, api50, api99 := loadWith(b, a.PublicURL+"/api/v1/events", api, *loadFor, apiBatch)
		folded()
		segRPS, seg50, seg99 := loadWith(b, a.PublicURL+"/v1/batch", seg, *loadFor, segmentBatch)
		folded()
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(bareRPS, "bare-req/s")
		b.ReportMetric(apiRPS*segmentBatchSize, "api-events/s")
		b.ReportMetric(ms(api50), "api-p50-ms")
		b.ReportMetric(ms(api99), "api-p99-ms")
		b.ReportMetric(segRPS*segmentBatchSize, "segment-events/s")
		b.ReportMetric(ms(seg50), "segment-p50-ms")
		b.ReportMetric(ms(seg99), "segment-p99-ms")
		b.ReportMetric(segRPS/apiRPS, "segment/api")
		b.ReportMetric(segRPS/bareRPS, "segment/bare")
	}
}
