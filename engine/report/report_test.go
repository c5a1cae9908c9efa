package report_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/report"
)

func TestDashboardTotals(t *testing.T) {
	a := enginetest.NewApp(t)
	now := time.Now().UTC()
	var evs []map[string]any
	add := func(id string, daysAgo int, typ, anon string, props map[string]any) {
		evs = append(evs, map[string]any{"id": id, "type": typ, "anonymous_id": anon, "session_id": fmt.Sprint(anon, daysAgo),
			"url": "https://shop.example/", "time": now.AddDate(0, 0, -daysAgo), "props": props})
	}
	add("1", 0, "page_view", "a", nil)
	add("2", 0, "page_view", "a", nil)
	add("3", 0, "page_view", "b", nil)
	add("4", 0, "order", "b", map[string]any{"order_id": "o1", "value": 10.5, "currency": "EUR"})
	add("5", 3, "page_view", "a", nil)
	add("6", 3, "page_view", "c", nil)
	add("7", 20, "order", "d", map[string]any{"order_id": "o2", "value": 5, "currency": "USD"})
	add("8", 40, "page_view", "e", nil)
	a.Do(t, "POST", "/api/v1/events", map[string]any{"events": evs}, nil, a.Auth()...)
	a.Fold(t)
	d, err := report.Summarise(a.Store, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		visitors, sessions, pageViews, orders int64
		eur, usd                              int64
	}{
		{2, 2, 3, 1, 1050, 0}, // today: a and b
		{3, 4, 5, 1, 1050, 0}, // 7 days: a, b, c
		{4, 5, 5, 2, 1050, 500},
	}
	for i, w := range want {
		p := d.Periods[i]
		if p.Visitors != w.visitors || p.Sessions != w.sessions || p.PageViews != w.pageViews || p.Orders != w.orders || p.Revenue["EUR"] != w.eur || p.Revenue["USD"] != w.usd {
			t.Errorf("%s: %+v, want %+v", p.Label, p, w)
		}
	}
	if len(d.Days) != 30 || d.Days[29].Sessions != 2 || d.Days[26].Sessions != 2 || d.Days[9].Orders != 1 {
		t.Errorf("days %+v", d.Days)
	}
}
