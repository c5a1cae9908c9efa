package attribution_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/attribution"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
)

// The daily summaries a report reads give the figures the orders
// themselves give, after late touches, cross-device merges, superseded
// orders, two currencies and an erasure.
func TestSummariesMatchTheOrders(t *testing.T) {
	const lookback = 30 * 24 * time.Hour
	p := enginetest.NewPipeline(t, attribution.Projection(lookback))
	rng := rand.New(rand.NewPCG(3, 4))
	traffic := []*model.Traffic{nil,
		{Source: "google", Medium: "organic", Channel: "Organic Search"},
		{Source: "newsletter", Medium: "email", Channel: "Email"},
		{Source: "facebook", Medium: "referral", Channel: "Organic Social"},
		{Source: "google", Medium: "cpc", Channel: "Paid Search"}}
	start := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	var batch []*model.Event
	n := 0
	add := func(ev *model.Event) {
		n++
		ev.ID = fmt.Sprint("e", n)
		batch = append(batch, ev)
		if len(batch) == 200 {
			p.Append(t, batch...)
			batch = nil
		}
	}
	for i := range 3000 {
		shopper := rng.IntN(150)
		anon := fmt.Sprint("a", shopper)
		if rng.IntN(3) == 0 {
			anon += "-phone"
		}
		email := fmt.Sprintf("s%d@example.com", shopper)
		// events arrive out of order: late touches re-path kept orders
		at := start.Add(time.Duration(rng.Int64N(int64(60 * 24 * time.Hour))))
		sess := fmt.Sprint("s", i)
		add(&model.Event{Type: model.PageView, AnonymousID: anon, SessionID: sess, Time: at, URL: "https://shop.example/", Traffic: traffic[rng.IntN(len(traffic))]})
		if rng.IntN(3) == 0 {
			add(&model.Event{Type: model.CampaignImpression, AnonymousID: anon, SessionID: sess, Time: at.Add(30 * time.Second), URL: "https://shop.example/",
				Props: map[string]json.RawMessage{"campaign_id": json.RawMessage(fmt.Sprintf(`"c%d"`, rng.IntN(4))), "group": json.RawMessage("0"), "variation": json.RawMessage(`"A"`)}})
		}
		if rng.IntN(5) == 0 {
			add(&model.Event{Type: model.Login, AnonymousID: anon, SessionID: sess, Email: email, Time: at.Add(time.Minute), URL: "https://shop.example/login"})
		}
		if rng.IntN(4) == 0 {
			currency := "EUR"
			if rng.IntN(5) == 0 {
				currency = "USD"
			}
			via := model.ViaAPI
			if rng.IntN(3) == 0 {
				via = model.ViaBrowser
			}
			// order ids collide now and then: a later event supersedes
			add(&model.Event{Type: model.Order, AnonymousID: anon, SessionID: sess, Time: at.Add(2 * time.Minute), Via: via,
				Props: map[string]json.RawMessage{"order_id": json.RawMessage(fmt.Sprintf(`"o%d"`, rng.IntN(600))),
					"value": json.RawMessage(fmt.Sprintf("%d.%02d", 1+rng.IntN(300), rng.IntN(100))), "currency": json.RawMessage(`"` + currency + `"`)}})
		}
	}
	p.Append(t, batch...)
	if _, err := p.Runner.Erase(context.Background(), model.UserProfileID("s7@example.com"), nil); err != nil {
		t.Fatal(err)
	}
	p.Fold(t)

	paris, _ := time.LoadLocation("Europe/Paris")
	day := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 0, 0, 0, 0, time.UTC) }
	for _, q := range []attribution.Query{
		{From: day(9, 1), To: day(10, 31), Lookback: lookback},
		{From: day(9, 1), To: day(10, 31), Lookback: lookback, All: true},
		{From: day(9, 10), To: day(10, 20), Lookback: lookback, Location: paris, Currency: "USD"},
		{From: day(10, 3), To: day(10, 4), Lookback: lookback, All: true},
	} {
		fast, err := attribution.Run(p.Store, q)
		if err != nil {
			t.Fatal(err)
		}
		q.FromOrders = true
		slow, err := attribution.Run(p.Store, q)
		if err != nil {
			t.Fatal(err)
		}
		if slow.Orders < 5 || len(slow.Onsite()) == 0 {
			t.Fatalf("%+v: only %d orders: the test tests nothing", q, slow.Orders)
		}
		sameReport(t, fmt.Sprintf("%s..%s all=%v %s", q.From.Format(time.DateOnly), q.To.Format(time.DateOnly), q.All, q.Currency), fast, slow)
	}

	// the default lookback changes: the summaries are rewritten from the
	// orders (the pipeline is idle: nothing folds meanwhile)
	const week = 7 * 24 * time.Hour
	q := attribution.Query{From: day(9, 1), To: day(10, 31), Lookback: week}
	before, err := attribution.Run(p.Store, q)
	if err != nil {
		t.Fatal(err)
	}
	days, err := attribution.Resummarise(p.Store, week)
	if err != nil || days < 50 {
		t.Fatalf("Resummarise: %d days, %v", days, err)
	}
	if again, err := attribution.Resummarise(p.Store, week); again != 0 || err != nil {
		t.Fatalf("Resummarise again: %d days, %v", again, err)
	}
	after, err := attribution.Run(p.Store, q)
	if err != nil {
		t.Fatal(err)
	}
	sameReport(t, "after Resummarise", after, before)
	q.Lookback = lookback
	q.FromOrders = true
	slow, err := attribution.Run(p.Store, q)
	if err != nil {
		t.Fatal(err)
	}
	q.FromOrders = false
	fast, err := attribution.Run(p.Store, q)
	if err != nil {
		t.Fatal(err)
	}
	sameReport(t, "the old lookback after Resummarise", fast, slow)
}

func sameReport(t *testing.T, name string, a, b *attribution.Report) {
	t.Helper()
	if a.Currency != b.Currency || a.Orders != b.Orders || a.Minor != b.Minor || !slices.Equal(a.Currencies, b.Currencies) || a.Confirmed != b.Confirmed {
		t.Fatalf("%s: summaries say %s %d orders %d (%v), orders say %s %d orders %d (%v)", name,
			a.Currency, a.Orders, a.Minor, a.Currencies, b.Currency, b.Orders, b.Minor, b.Currencies)
	}
	if len(a.Channels) != len(b.Channels) {
		t.Fatalf("%s: %d channels, want %d", name, len(a.Channels), len(b.Channels))
	}
	for i, x := range a.Channels {
		y := b.Channels[i]
		if x.Channel != y.Channel || x.LastOrders != y.LastOrders || x.AssistedOrders != y.AssistedOrders || x.AssistedMinor != y.AssistedMinor {
			t.Fatalf("%s: row %d is %+v, want %+v", name, i, x, y)
		}
		for _, m := range attribution.Models {
			// float sums in another order may round a half differently
			if cx, cy := x.Models[m], y.Models[m]; math.Abs(float64(cx.Minor-cy.Minor)) > 1 || math.Abs(cx.Orders-cy.Orders) > 1e-3 {
				t.Errorf("%s: %s %s is %+v, want %+v", name, x.Channel, m, cx, cy)
			}
		}
	}
	if !slices.EqualFunc(a.Paths(1000), b.Paths(1000), func(x, y attribution.Path) bool {
		return slices.Equal(x.Channels, y.Channels) && x.Count == y.Count
	}) || a.Summary.Lags != b.Summary.Lags || !slices.Equal(a.Lengths(10), b.Lengths(10)) || !slices.Equal(a.Onsite(), b.Onsite()) {
		t.Fatalf("%s: paths, lags or lengths differ:\n%v %v\n%v %v", name, a.Paths(5), a.Summary.Lags, b.Paths(5), b.Summary.Lags)
	}
}
