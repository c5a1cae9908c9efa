package automation_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/app"
	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// The server's clock ran 60 days ahead while some shoppers viewed a sold
// out product, and was put right. Today's viewers of the product are
// mailed once when it is back in stock: the views stamped 60 days ahead
// hid them (measured against the latest of those, today's views were
// older than the 30-day window), and nobody was mailed until the clock
// caught up.
func TestBackInStockAfterTheClockRanAhead(t *testing.T) {
	clock := enginetest.NewClock()
	a, srv := mailApp(t, app.WithClock(clock.Now))
	importFeed(t, a, catalogue("99.00", "0", "50.00", "0", "20.00"))
	put(t, a, "back_in_stock", map[string]any{"enabled": true, "delay": "0s", "subject": "Back in stock", "html": `{{products .Products}}`, "cooldown": "168h"})

	clock.Advance(60 * 24 * time.Hour)
	subscribe(t, a, "ahead@example.com")
	events(t, a, view("ahead@example.com", "p2"))
	settle(t, a)
	clock.Advance(-60 * 24 * time.Hour) // put right

	var real []string
	for i := range 3 {
		e := fmt.Sprintf("real%d@example.com", i)
		real = append(real, e)
		subscribe(t, a, e)
		events(t, a, view(e, "p2"))
	}
	settle(t, a)
	clock.Advance(time.Hour)
	importFeed(t, a, catalogue("99.00", "4", "50.00", "0", "20.00")) // p2 back
	settle(t, a)
	for _, e := range real {
		if n := queued(t, a, e, "back_in_stock"); n != 1 {
			t.Errorf("%s viewed p2 an hour before it came back: %d messages, want 1", e, n)
		}
	}
	for _, e := range real {
		if m := waitFor(t, srv, e, 1, 10*time.Second); !has(m, "City Sneaker") {
			t.Errorf("%s's message lacks p2", e)
		}
	}
}
