package automation_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// queuedTotal is how many messages the mail queue holds, in any state.
func queuedTotal(b *testing.B, a *enginetest.App) int64 {
	counts, err := a.Mail.Counts()
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, c := range counts {
		n += c
	}
	return n
}

// waitQueued polls the queue until it holds more than before and returns
// when it did (the poll adds up to a quarter of a millisecond).
func waitQueued(b *testing.B, a *enginetest.App, before int64) time.Time {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Microsecond) {
		if queuedTotal(b, a) > before {
			return time.Now()
		}
		if time.Now().After(deadline) {
			b.Fatal("no message queued within 30 s")
		}
	}
}

// samples is how many triggers a run measures: b.N, and at least 30 so
// that make bench's one iteration gives percentiles too.
func samples(b *testing.B) int { return max(b.N, 30) }

func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(int(p*float64(len(lat))), len(lat)-1)].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkAutomationDecision measures the issue's "automation decision
// after the triggering event < 1 s": from the acknowledgement of the
// triggering request to the message in the mail queue, through the whole
// app (ingest, the log, the projections, the timer, the sender). The
// figures that matter are p50-ms and p99-ms.
//
//	welcome:    POST /api/v1/user subscribing someone → their welcome queued
//	price_drop: a feed import that makes a viewed product cheaper returns →
//	            the viewer's message queued
func BenchmarkAutomationDecision(b *testing.B) {
	b.Run("welcome", func(b *testing.B) {
		a, _ := mailAppWith(b, func(c *config.Config) { c.Email.MaxPerDay = 0 }) // no daily cap
		put(b, a, "welcome", map[string]any{"enabled": true, "subject": "Welcome!", "html": `<p>Hi {{.FirstName}}</p>`})
		var lat []time.Duration
		b.ResetTimer()
		for i := range samples(b) {
			before := queuedTotal(b, a)
			subscribe(b, a, fmt.Sprintf("w%06d@example.com", i))
			acked := time.Now()
			lat = append(lat, waitQueued(b, a, before).Sub(acked))
		}
		report(b, lat)
	})
	b.Run("price_drop", func(b *testing.B) {
		a, _ := mailAppWith(b, func(c *config.Config) { c.Email.MaxPerDay = 0 }) // no daily cap
		put(b, a, "price_drop", map[string]any{"enabled": true, "delay": "0s", "cooldown": "0s", "subject": "Now cheaper", "html": `{{products .Products}}`})
		subscribe(b, a, "v@example.com")
		events(b, a, view("v@example.com", "d1"))
		feed := func(price int) string {
			var sb strings.Builder
			sb.WriteString("ID;Title;Price;Stock\n")
			fmt.Fprintf(&sb, "d1;Deal;%d.00;5\n", price)
			for i := range 200 { // a catalogue around it
				fmt.Fprintf(&sb, "x%03d;Other %d;50.00;5\n", i, i)
			}
			return sb.String()
		}
		importFeed(b, a, feed(5000))
		settle(b, a)
		var lat []time.Duration
		b.ResetTimer()
		for i := range samples(b) {
			before := queuedTotal(b, a)
			importFeed(b, a, feed(4999-i)) // a cent cheaper each time
			acked := time.Now()
			lat = append(lat, waitQueued(b, a, before).Sub(acked))
		}
		report(b, lat)
	})
}
