package attribution

import (
	"math"
	"testing"
	"time"
)

// DESIGN.md's worked example: an order of 100.00 on day 6 at 09:10 after
// Organic Search (day 1 10:00), Email (day 3 20:00), Organic Social (day 5
// 12:00) and Direct (day 6 09:00).
func TestWorkedExampleToTheCent(t *testing.T) {
	day := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, time.UTC) }
	order := Order{ID: "A-1", Time: day(6, 9, 10), Currency: "EUR", Minor: 10000, Path: []Touch{
		{Time: day(1, 10, 0), Channel: "Organic Search"},
		{Time: day(3, 20, 0), Channel: "Email"},
		{Time: day(5, 12, 0), Channel: "Organic Social"},
		{Time: day(6, 9, 0), Channel: Direct},
	}}
	effects := RemovalEffects([]Journey{{Channels: []string{"Organic Search", "Email", "Organic Social", Direct}, Converted: true}})
	rows := CreditOrders([]Order{order}, 30*24*time.Hour, effects)
	want := map[string]map[Model]int64{
		"Organic Search": {LastInteraction: 0, LastNonDirect: 0, FirstInteraction: 10000, Linear: 2500, PositionBased: 4000, TimeDecay: 1851, DataDriven: 2500},
		"Email":          {LastInteraction: 0, LastNonDirect: 0, FirstInteraction: 0, Linear: 2500, PositionBased: 1000, TimeDecay: 2351, DataDriven: 2500},
		"Organic Social": {LastInteraction: 0, LastNonDirect: 10000, FirstInteraction: 0, Linear: 2500, PositionBased: 1000, TimeDecay: 2773, DataDriven: 2500},
		// DESIGN.md rounds each time-decay share alone (30.24; the four add
		// up to 99.99); a report adds up to the order's 100.00, the cent
		// left over going to the largest share
		Direct: {LastInteraction: 10000, LastNonDirect: 0, FirstInteraction: 0, Linear: 2500, PositionBased: 4000, TimeDecay: 3025, DataDriven: 2500},
	}
	assisted := map[string]int64{"Organic Search": 1, "Email": 1, "Organic Social": 1, Direct: 0}
	if len(rows) != 4 || rows[0].Channel != Direct {
		t.Fatalf("rows %+v", rows)
	}
	for _, r := range rows {
		for m, w := range want[r.Channel] {
			if got := r.Models[m].Minor; got != w {
				t.Errorf("%s %s: %d, want %d", r.Channel, m, got, w)
			}
		}
		if r.AssistedOrders != assisted[r.Channel] || r.AssistedMinor != 10000*assisted[r.Channel] {
			t.Errorf("%s assisted %d / %d", r.Channel, r.AssistedOrders, r.AssistedMinor)
		}
		if r.Channel == "Email" {
			if c := r.Models[TimeDecay]; math.Abs(c.Orders-0.2351) > 1e-9 {
				t.Errorf("Email time decay orders %v", c.Orders)
			}
			if _, ok := r.AssistRatio(); ok {
				t.Error("Email closed no order: no assist ratio")
			}
		}
	}
}

// Three journeys: A → B → conversion, A → conversion, B → no conversion.
// Transitions: start→A 2/3, start→B 1/3, A→B 1/2, A→conv 1/2, B→conv 1/2,
// B→null 1/2. P(conv) = 2/3·(1/2 + 1/2·1/2) + 1/3·1/2 = 2/3. Without A:
// 1/3·1/2 = 1/6, removal effect 1 − (1/6)/(2/3) = 0.75. Without B:
// 2/3·1/2 = 1/3, removal effect 0.5. The order A → B of 100.00 gives A
// 0.75/1.25 = 60.00 and B 40.00; the order A of 50.00 gives A 50.00.
func TestDataDrivenByHand(t *testing.T) {
	effects := RemovalEffects([]Journey{
		{Channels: []string{"A", "B"}, Converted: true},
		{Channels: []string{"A"}, Converted: true},
		{Channels: []string{"B"}},
	})
	if math.Abs(effects["A"]-0.75) > 1e-9 || math.Abs(effects["B"]-0.5) > 1e-9 {
		t.Fatalf("removal effects %v", effects)
	}
	at := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	rows := CreditOrders([]Order{
		{ID: "1", Time: at, Minor: 10000, Path: []Touch{{Time: at.Add(-2 * time.Hour), Channel: "A"}, {Time: at.Add(-time.Hour), Channel: "B"}}},
		{ID: "2", Time: at, Minor: 5000, Path: []Touch{{Time: at.Add(-time.Hour), Channel: "A"}}},
	}, 30*24*time.Hour, effects)
	got := map[string]int64{}
	for _, r := range rows {
		got[r.Channel] = r.Models[DataDriven].Minor
	}
	if got["A"] != 11000 || got["B"] != 4000 {
		t.Errorf("data-driven %v, want A 110.00, B 40.00", got)
	}
}

func TestPathRules(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	o := Order{Time: at, Minor: 999, Path: []Touch{
		{Time: at.Add(-31 * 24 * time.Hour), Channel: "Email"}, // older than the lookback
		{Time: at.Add(-time.Hour), Channel: Direct},
	}}
	if p := o.PathWithin(30 * 24 * time.Hour); len(p) != 1 || p[0].Channel != Direct {
		t.Errorf("within 30 days: %+v", p)
	}
	if p := (Order{Time: at}).PathWithin(time.Hour); len(p) != 1 || p[0].Channel != Direct || !p[0].Time.Equal(at) {
		t.Errorf("no touchpoint: %+v", p)
	}
	// last non-direct: Direct only when nothing else is on the path
	path := []Touch{{Channel: "Email"}, {Channel: Direct}}
	if s := Shares(LastNonDirect, path, at); s[0] != 1 || s[1] != 0 {
		t.Errorf("last non-direct %v", s)
	}
	if s := Shares(LastNonDirect, []Touch{{Channel: Direct}, {Channel: Direct}}, at); s[1] != 1 {
		t.Errorf("only Direct %v", s)
	}
	if s := Shares(PositionBased, path, at); s[0] != 0.5 || s[1] != 0.5 {
		t.Errorf("two touches %v", s)
	}
	// three orders of 3.33 split three ways still add up to 9.99
	var orders []Order
	for range 3 {
		orders = append(orders, Order{Time: at, Minor: 333, Path: []Touch{{Time: at, Channel: "A"}, {Time: at, Channel: "B"}, {Time: at, Channel: "C"}}})
	}
	for _, m := range Models {
		var sum int64
		for _, r := range CreditOrders(orders, time.Hour, map[string]float64{"A": 1, "B": 1, "C": 1}) {
			sum += r.Models[m].Minor
		}
		if sum != 999 {
			t.Errorf("%s adds up to %d, want 999", m, sum)
		}
	}
	// a channel both assisting and closing the same order counts one assist
	email := Touch{Time: at, Channel: "Email"}
	rows := CreditOrders([]Order{{Time: at, Minor: 100, Path: []Touch{email, email, email}}}, time.Hour, nil)
	if r := rows[0]; r.AssistedOrders != 1 || r.LastOrders != 1 {
		t.Errorf("email %+v", r)
	} else if ratio, ok := r.AssistRatio(); !ok || ratio != 1 {
		t.Errorf("ratio %v %v", ratio, ok)
	}
}
