// Package report keeps the dashboard's daily rollups (a projection of the
// event log, rollups.go) and sums them into the figures the dashboard shows.
package report

import (
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Totals are the figures of a period.
type Totals struct {
	Label     string
	Days      int
	Visitors  int64 // distinct browsers (estimated, ±2 %)
	Sessions  int64
	PageViews int64
	Orders    int64
	Revenue   model.Amounts
}

// Day is one bar of the chart.
type Day struct {
	Date     time.Time
	Sessions int64
	Orders   int64
}

// Dashboard is what the dashboard shows.
type Dashboard struct {
	Periods []Totals // today, 7 days, 30 days
	Days    []Day    // the last 30 days, oldest first, days without events included
	// ConfirmedOnly: the shop confirms orders through the API, so orders
	// and revenue count those alone; browsers' unconfirmed claims are left
	// out (model.OrderSums.Counted).
	ConfirmedOnly bool
}

// Summarise reads the last 30 days' rollups (UTC days) up to now.
func Summarise(st *store.Store, now time.Time) (Dashboard, error) {
	today := now.UTC().Truncate(24 * time.Hour)
	first := today.AddDate(0, 0, -29)
	rollups, err := st.Rollups(first.Format(time.DateOnly), today.Format(time.DateOnly))
	if err != nil {
		return Dashboard{}, err
	}
	confirmed, err := st.ConfirmedOrders(store.RollupOrders)
	if err != nil {
		return Dashboard{}, err
	}
	byDay := map[string]model.Rollup{}
	for _, r := range rollups {
		byDay[r.Day] = r
	}
	d := Dashboard{ConfirmedOnly: confirmed > 0}
	for i := range 30 {
		day := first.AddDate(0, 0, i)
		r := byDay[day.Format(time.DateOnly)]
		orders, _ := r.Counted(d.ConfirmedOnly)
		d.Days = append(d.Days, Day{Date: day, Sessions: r.Sessions, Orders: orders})
	}
	for _, p := range []struct {
		label string
		days  int
	}{{"Today", 1}, {"Last 7 days", 7}, {"Last 30 days", 30}} {
		t := Totals{Label: p.label, Days: p.days}
		visitors := model.NewSketch()
		for i := range p.days {
			r, ok := byDay[today.AddDate(0, 0, -i).Format(time.DateOnly)]
			if !ok {
				continue
			}
			t.Sessions += r.Sessions
			t.PageViews += r.PageViews
			orders, revenue := r.Counted(d.ConfirmedOnly)
			t.Orders += orders
			t.Revenue.AddAll(revenue)
			visitors.Merge(r.Visitors)
		}
		t.Visitors = visitors.Count()
		d.Periods = append(d.Periods, t)
	}
	return d, nil
}
