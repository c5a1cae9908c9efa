package mailcampaign_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/attribution"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/mailcampaign"
	"github.com/shoptrail/shoptrail/engine/model"
)

// TestReportRevenueByAttributionModels credits a campaign with the orders
// of the 7 days after its send whose path holds a visit from its links,
// under last_non_direct and linear, against figures worked out by hand:
//
//	ann: email (10 Nov) → Google (11 Nov) → order 100.00 EUR
//	     linear 1/2 → 50.00; last non-direct: Google → 0
//	bob: Google → email (12 Nov) → order 60.00 EUR
//	     linear 1/2 → 30.00; last non-direct: email → 60.00
//	cat: email → Direct → order 30.01 EUR
//	     linear 1/2 of 3001 = 1500.5 → 15.01; last non-direct skips Direct → 30.01
//	dan: email → order 20.00 USD: 20.00 under both, in its own currency
//
// and not: another campaign's visit (eve), an order 7 days and 1 hour after
// the send (fay), a visit of the campaign's tag before the send (gus).
// Totals, EUR: linear 50.00+30.00+15.01 = 95.01, last non-direct
// 0+60.00+30.01 = 90.01; orders with the email on the path: 4.
func TestReportRevenueByAttributionModels(t *testing.T) {
	p := enginetest.NewPipeline(t, attribution.Projection(30*24*time.Hour), mailcampaign.ReportProjection())
	sent := time.Date(2026, 11, 10, 9, 0, 0, 0, time.UTC)
	now := sent
	svc := mailcampaign.New(mailcampaign.Options{Store: p.Store, Segments: listSegment{}, Now: func() time.Time { return now }, Lookback: 30 * 24 * time.Hour})
	c, err := svc.Create(mailcampaign.Input{Name: "Autumn", Subject: "Autumn sale", HTML: "<p>Sale</p>", Segment: "s", Send: true})
	if err != nil {
		t.Fatal(err)
	}
	// before sending starts the report has no attributed figures
	if rep, err := svc.Report(c.ID); err != nil || rep.Attributed != nil {
		t.Fatalf("report before the send: %+v, %v", rep.Attributed, err)
	}
	if _, err := svc.Step(context.Background()); err != nil { // scheduled → sending: the send time
		t.Fatal(err)
	}
	if got, _ := svc.Get(c.ID); !got.Started.Equal(sent) {
		t.Fatalf("started %v, want %v", got.Started, sent)
	}

	email := func(campaign string) *model.Traffic {
		return &model.Traffic{Source: "shoptrail", Medium: "email", Campaign: campaign, Channel: "Email"}
	}
	google := &model.Traffic{Source: "google", Medium: "organic", Channel: "Organic Search"}
	n := 0
	var evs []*model.Event
	visit := func(who string, tr *model.Traffic, at time.Time) {
		n++
		evs = append(evs, &model.Event{ID: fmt.Sprint("v", n), Type: model.PageView, AnonymousID: who, SessionID: fmt.Sprint("s", n),
			Time: at, URL: "https://shop.example/", Traffic: tr})
	}
	order := func(who, id, value, currency string, at time.Time) {
		n++
		evs = append(evs, &model.Event{ID: fmt.Sprint("o", n), Type: model.Order, AnonymousID: who, SessionID: fmt.Sprint("s", n), Time: at,
			Props: map[string]json.RawMessage{"order_id": json.RawMessage(`"` + id + `"`), "value": json.RawMessage(value), "currency": json.RawMessage(`"` + currency + `"`)}})
	}
	day := func(d, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, time.UTC) }
	visit("ann", email(c.ID), day(10, 10))
	visit("ann", google, day(11, 12))
	order("ann", "A1", "100.00", "EUR", day(11, 13))
	visit("bob", google, day(12, 8))
	visit("bob", email(c.ID), day(12, 9))
	order("bob", "B1", "60.00", "EUR", day(12, 10))
	visit("cat", email(c.ID), day(12, 11))
	visit("cat", nil, day(13, 9)) // Direct
	order("cat", "C1", "30.01", "EUR", day(13, 10))
	visit("dan", email(c.ID), day(14, 9))
	order("dan", "D1", "20.00", "USD", day(14, 10))
	visit("eve", email("another"), day(12, 9))
	order("eve", "E1", "70.00", "EUR", day(12, 10))
	visit("fay", email(c.ID), day(16, 9))
	order("fay", "F1", "40.00", "EUR", day(17, 10)) // the send + 7 days + 1 hour
	visit("gus", email(c.ID), day(9, 9))            // before the send
	order("gus", "G1", "50.00", "EUR", day(10, 12))
	p.Append(t, evs...)

	rep, err := svc.Report(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	a := rep.Attributed
	if a == nil {
		t.Fatal("no attributed figures after the send")
	}
	if a.Orders != 4 || a.Revenue["EUR"] != 19001 || a.Revenue["USD"] != 2000 {
		t.Errorf("orders %d, revenue %v; want 4, EUR 19001 and USD 2000", a.Orders, a.Revenue)
	}
	if !a.From.Equal(sent) || !a.To.Equal(sent.Add(7*24*time.Hour)) {
		t.Errorf("window %v – %v", a.From, a.To)
	}
	want := map[string]struct {
		orders   float64
		eur, usd int64
	}{
		"linear":          {2.5, 9501, 2000},
		"last_non_direct": {3, 9001, 2000},
	}
	for m, w := range want {
		got := a.Models[m]
		if got.Orders != w.orders || got.Revenue["EUR"] != w.eur || got.Revenue["USD"] != w.usd {
			t.Errorf("%s: %+v, want orders %v, EUR %d, USD %d", m, got, w.orders, w.eur, w.usd)
		}
	}
	if len(a.Models) != 2 {
		t.Errorf("models %v, want last_non_direct and linear", a.Models)
	}
}
