package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/report"
)

// A hostile page cannot make the shop's order vanish by sending its id
// first: browser and API event ids never deduplicate each other.
func TestABrowserCannotClaimTheIDOfTheShopsOrder(t *testing.T) {
	a := enginetest.NewApp(t)
	var ans struct{ Accepted, Duplicates int }
	a.Do(t, "POST", "/t", batch(pv("ord-A-18", "attacker", "s", "https://shop.example/", "")), &ans)
	if ans.Accepted != 1 {
		t.Fatalf("forged page view: %+v", ans)
	}
	order := map[string]any{"id": "ord-A-18", "type": "order", "email": "buyer@example.com",
		"props": map[string]any{"order_id": "A-18", "value": 80, "currency": "EUR"}}
	if st := a.Do(t, "POST", "/api/v1/events", map[string]any{"events": []any{order}}, &ans, a.Auth()...); st != 200 || ans.Accepted != 1 || ans.Duplicates != 0 {
		t.Fatalf("the shop's order: %d %+v", st, ans)
	}
	// and the shop's retry is still a duplicate
	a.Do(t, "POST", "/api/v1/events", map[string]any{"events": []any{order}}, &ans, a.Auth()...)
	if ans.Duplicates != 1 {
		t.Errorf("retry: %+v", ans)
	}
	a.Fold(t)
	var u map[string]any
	a.Do(t, "GET", "/api/v1/user/buyer@example.com", nil, &u, a.Auth()...)
	if u["orders"] != 1.0 {
		t.Errorf("buyer %v", u)
	}
}

// Browser orders are claims: the shop's confirmation through the API
// supersedes them, a thank-you page reloaded counts once, and once the shop
// confirms orders, a claim nobody confirmed is left out of the figures.
func TestOrdersConfirmedThroughTheAPISupersedeBrowserClaims(t *testing.T) {
	a := enginetest.NewApp(t)
	now := time.Now().UTC()
	browserOrder := func(id, anon, orderID string, value float64) map[string]any {
		return map[string]any{"id": id, "type": "order", "anonymous_id": anon, "session_id": "s-" + anon, "url": "https://shop.example/thanks",
			"email": anon + "@example.com", "props": map[string]any{"order_id": orderID, "value": value, "currency": "EUR"}}
	}
	// a shop without API orders: the browsers' orders count, once per order_id
	a.Do(t, "POST", "/t", batch(browserOrder("b1", "ann", "A-1", 100), browserOrder("b2", "ann", "A-1", 100)), nil)
	a.Fold(t)
	dash, err := report.Summarise(a.Store, now)
	if err != nil {
		t.Fatal(err)
	}
	if p := dash.Periods[0]; dash.ConfirmedOnly || p.Orders != 1 || p.Revenue["EUR"] != 10000 {
		t.Fatalf("browser orders only: %+v confirmed-only %v", p, dash.ConfirmedOnly)
	}
	// a forged claim of a huge order, then the shop confirms A-1 with its
	// own value and sends another order
	a.Do(t, "POST", "/t", batch(browserOrder("b3", "bob", "B-9", 999999)), nil)
	api := func(id, email, orderID string, value float64) map[string]any {
		return map[string]any{"id": id, "type": "order", "email": email, "props": map[string]any{"order_id": orderID, "value": value, "currency": "EUR"}}
	}
	a.Do(t, "POST", "/api/v1/events", map[string]any{"events": []any{api("o1", "ann@example.com", "A-1", 90), api("o2", "cy@example.com", "C-1", 10)}}, nil, a.Auth()...)
	// the thank-you page reloaded after the confirmation changes nothing
	a.Do(t, "POST", "/t", batch(browserOrder("b4", "ann", "A-1", 100)), nil)
	a.Fold(t)
	dash, err = report.Summarise(a.Store, now)
	if err != nil {
		t.Fatal(err)
	}
	if p := dash.Periods[0]; !dash.ConfirmedOnly || p.Orders != 2 || p.Revenue["EUR"] != 10000 {
		t.Errorf("with confirmed orders: %+v confirmed-only %v, want 2 orders, 100.00 EUR", p, dash.ConfirmedOnly)
	}
	var u map[string]any
	a.Do(t, "GET", "/api/v1/user/ann@example.com", nil, &u, a.Auth()...)
	if rev, _ := u["revenue"].(map[string]any); u["orders"] != 1.0 || rev["EUR"] != 90.0 {
		t.Errorf("ann: %v", u)
	}
	a.Do(t, "GET", "/api/v1/user/bob@example.com", nil, &u, a.Auth()...)
	if u["orders"] != 0.0 {
		t.Errorf("bob's unconfirmed claim counts: %v", u)
	}
	c := signedIn(t, a)
	if _, page := c.do("GET", "/users/bob@example.com", nil); !containsAll(page, "Orders (confirmed)", "and 1 only a browser reported") {
		t.Errorf("bob's page does not tell the unconfirmed order apart")
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
