package automation_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/app"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

const header = `"ID";"Product title";"Product URL";"Categories IDs";"Categories Titles";"Description";"Price";"DiscountPrice";"Photos";"Color";"Brand";"Stock";"Main"` + "\n"

// catalogue writes a feed: p1 on sale, p2 sold out, p3, p4 with two
// variations (sold out), p5; the arguments change p1's sale price, p2's
// stock, p3's price, p4-red's stock and p5's price.
func catalogue(p1Sale, p2Stock, p3Price, p4RedStock, p5Price string) string {
	return header +
		`"p1";"Trail Runner";"https://shop.example/p1";"10";"Shoes";"";"120.00";"` + p1Sale + `";"https://shop.example/p1.jpg";"Red";"Northpeak";"5";""` + "\n" +
		`"p2";"City Sneaker";"https://shop.example/p2";"10";"Shoes";"";"80.00";"";"https://shop.example/p2.jpg";"Blue";"Northpeak";"` + p2Stock + `";""` + "\n" +
		`"p3";"Rain Jacket";"https://shop.example/p3";"20";"Jackets";"";"` + p3Price + `";"";"";"";"Northpeak";"3";""` + "\n" +
		`"p4";"Fleece";"https://shop.example/p4";"20";"Jackets";"";"60.00";"";"";"";"Northpeak";"";""` + "\n" +
		`"p4-red";"Fleece - Red";"";"20";"Jackets";"";"60.00";"";"";"Red";"Northpeak";"` + p4RedStock + `";"p4"` + "\n" +
		`"p4-blue";"Fleece - Blue";"";"20";"Jackets";"";"60.00";"";"";"Blue";"Northpeak";"0";"p4"` + "\n" +
		`"p5";"Wool Cap";"https://shop.example/p5";"30";"Hats";"";"` + p5Price + `";"";"";"";"Northpeak";"2";""` + "\n"
}

// facts counts the product facts in the log, by type and product.
func facts(t *testing.T, a *enginetest.App) map[string]int {
	t.Helper()
	evs, err := a.Store.EventsAfter(0, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, ev := range evs {
		if ev.Type == model.ProductBackInStock || ev.Type == model.ProductPriceDrop {
			var id string
			json.Unmarshal(ev.Props["product_id"], &id)
			out[ev.Type+" "+id]++
			if ev.Via != model.ViaServer {
				t.Errorf("a product fact via %s", ev.Via)
			}
		}
	}
	return out
}

// back_in_stock and price_drop end to end on a fake clock: feed imports
// make products cheaper or bring them back in stock, and the people who
// viewed them in the last 30 days get one message each, through the real
// SMTP server; the others do not.
func TestBackInStockAndPriceDrop(t *testing.T) {
	clock := enginetest.NewClock()
	a, srv := mailApp(t, app.WithClock(clock.Now))
	importFeed(t, a, catalogue("99.00", "0", "50.00", "0", "20.00"))
	put(t, a, "back_in_stock", map[string]any{"enabled": true, "delay": "0s", "subject": "Back in stock", "html": `<p>Good news:</p>{{products .Products}}`, "cooldown": "168h"})
	put(t, a, "price_drop", map[string]any{"enabled": true, "delay": "0s", "subject": "Now cheaper", "html": `<p>Now for less:</p>{{products .Products}}`, "cooldown": "168h"})

	// old@ viewed them 30 days and 3 hours before the import: too long ago
	subscribe(t, a, "old@example.com")
	events(t, a, view("old@example.com", "p1"), view("old@example.com", "p2"))
	settle(t, a)
	clock.Advance(30*24*time.Hour + time.Hour)

	for _, e := range []string{"viewer@example.com", "non@example.com", "buyer@example.com", "anon@example.com", "gone@example.com"} {
		subscribe(t, a, e)
	}
	events(t, a,
		view("viewer@example.com", "p1"), view("viewer@example.com", "p2"), view("viewer@example.com", "p4"),
		view("non@example.com", "p3"), // p3 gets dearer
		view("buyer@example.com", "p1"),
		view("gone@example.com", "p1"),
		// a browser views p5 before its shopper logs in: the view follows the profile
		map[string]any{"type": "product_view", "anonymous_id": "anon-1", "props": map[string]any{"product_id": "p5"}})
	settle(t, a)
	clock.Advance(time.Hour)
	events(t, a,
		map[string]any{"type": "login", "anonymous_id": "anon-1", "email": "anon@example.com"},
		// buyer@ bought p1 after viewing it
		map[string]any{"type": "order", "email": "buyer@example.com", "props": map[string]any{"order_id": "o-b", "value": 99, "currency": "EUR",
			"items": []map[string]any{{"product_id": "p1", "price": 99, "quantity": 1}}}})
	if st := a.Do(t, "DELETE", "/api/v1/user/gone@example.com", nil, nil, a.Auth()...); st != 200 && st != 204 {
		t.Fatalf("erase: %d", st)
	}
	settle(t, a)
	// the erased viewer is gone from the product's index of viewers
	a.Store.Read(func(tx *store.Tx) error {
		return tx.Scan(store.ProjectionSpace("automations"), "", func(k string, _ json.RawMessage) (bool, error) {
			if strings.Contains(k, "gone@") {
				t.Errorf("the erased profile is still in the projection: %s", k)
			}
			return true, nil
		})
	})

	// the import: p1 99 → 89, p2 back, p3 dearer, p4-red back, p5 20 → 15
	clock.Advance(time.Hour)
	importFeed(t, a, catalogue("89.00", "4", "60.00", "2", "15.00"))
	settle(t, a)

	want := map[string]int{
		"product_price_drop p1": 1, "product_back_in_stock p2": 1, "product_back_in_stock p4-red": 1,
		"product_back_in_stock p4": 1, // the main product's stock is its variations'
		"product_price_drop p5":    1,
	}
	got := facts(t, a)
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d facts, want %d (all: %v)", k, got[k], n, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("facts %v, want %v", got, want)
	}

	m := waitFor(t, srv, "viewer@example.com", 2, 10*time.Second)
	var drop, back string
	for _, x := range m {
		switch s := string(x.Data); {
		case strings.Contains(s, "Now cheaper"):
			drop = s
		case strings.Contains(s, "Back in stock"):
			back = s
		}
	}
	if !strings.Contains(drop, "Trail Runner") || !strings.Contains(drop, "99.00") || !strings.Contains(drop, "89.00") {
		t.Errorf("the price drop message lacks the product with its old and new price:\n%s", drop)
	}
	if !strings.Contains(back, "City Sneaker") || !strings.Contains(back, "Fleece") {
		t.Errorf("the back-in-stock message lacks a product:\n%s", back)
	}
	if n := strings.Count(back, "Fleece"); n > 2 { // title and alt of one block item
		t.Errorf("the Fleece family is in the message %d times", n)
	}
	if m := waitFor(t, srv, "anon@example.com", 1, 10*time.Second); !has(m, "Wool Cap") {
		t.Errorf("the merged profile's message lacks the product it viewed anonymously")
	}
	for _, who := range []string{"old@example.com", "non@example.com", "buyer@example.com", "gone@example.com"} {
		if n := queued(t, a, who, "price_drop") + queued(t, a, who, "back_in_stock"); n != 0 {
			t.Errorf("%s: %d messages, want none", who, n)
		}
	}
	if n := queued(t, a, "viewer@example.com", "price_drop") + queued(t, a, "viewer@example.com", "back_in_stock"); n != 2 {
		t.Errorf("viewer@: %d messages, want 2", n)
	}

	// the same feed again: no change, no fact, no message
	importFeed(t, a, catalogue("89.00", "4", "60.00", "2", "15.00"))
	settle(t, a)
	if again := facts(t, a); len(again) != len(got) {
		t.Errorf("facts after the same import again: %v", again)
	}
	// cheaper again within the 168 h cooldown: nothing
	clock.Advance(time.Hour)
	importFeed(t, a, catalogue("79.00", "4", "60.00", "2", "15.00"))
	settle(t, a)
	if got := facts(t, a)["product_price_drop p1"]; got != 2 {
		t.Errorf("%d price drop facts of p1, want 2", got)
	}
	if n := queued(t, a, "viewer@example.com", "price_drop"); n != 1 {
		t.Errorf("%d price drop messages within the cooldown, want 1", n)
	}
	// after the cooldown (the views are still within 30 days), again
	clock.Advance(169 * time.Hour)
	importFeed(t, a, catalogue("69.00", "4", "60.00", "2", "15.00"))
	settle(t, a)
	if n := queued(t, a, "viewer@example.com", "price_drop"); n != 2 {
		t.Errorf("%d price drop messages after the cooldown, want 2", n)
	}

	// the admin API reports them like the others
	var out struct {
		Automations []struct {
			Name    string
			Enabled bool
		}
	}
	a.Do(t, "GET", "/api/v1/automations", nil, &out, a.Auth()...)
	on := map[string]bool{}
	for _, x := range out.Automations {
		on[x.Name] = x.Enabled
	}
	if !on["back_in_stock"] || !on["price_drop"] {
		t.Errorf("automations %+v", out.Automations)
	}
}

// A product fact sent by a client is not Shoptrail's: it mails nobody.
func TestProductFactsFromClientsAreIgnored(t *testing.T) {
	a, _ := mailApp(t)
	put(t, a, "price_drop", map[string]any{"enabled": true, "subject": "Now cheaper", "html": `{{products .Products}}`})
	subscribe(t, a, "v@example.com")
	events(t, a, view("v@example.com", "p1"))
	settle(t, a)
	events(t, a, map[string]any{"type": "product_price_drop", "email": "x@example.com",
		"props": map[string]any{"product_id": "p1", "old_price": 99999, "new_price": 1}})
	settle(t, a)
	if n := queued(t, a, "v@example.com", "price_drop"); n != 0 {
		t.Errorf("an API client's product_price_drop sent %d messages", n)
	}
}

// Facts keep arriving while the sender mails the earlier ones (imports one
// after another, no delay): every product reaches the person exactly once,
// none lost between the sender's read and its delete, none twice, also
// when more are waiting than one message shows.
func TestPriceDropsWhileSending(t *testing.T) {
	a, srv := mailAppWith(t, func(c *config.Config) { c.Email.MaxPerDay = 1000 })
	const n = 30
	feed := func(cheaper int) string {
		var b strings.Builder
		b.WriteString("ID;Title;Price;Stock\n")
		for i := range n {
			price := 100
			if i < cheaper {
				price = 90
			}
			fmt.Fprintf(&b, "i%02d;Item %02d;%d.00;5\n", i, i, price)
		}
		return b.String()
	}
	importFeed(t, a, feed(0))
	put(t, a, "price_drop", map[string]any{"enabled": true, "delay": "0s", "subject": "Now cheaper", "html": `{{products .Products}}`})
	subscribe(t, a, "v@example.com")
	var views []map[string]any
	for i := range n {
		views = append(views, view("v@example.com", fmt.Sprintf("i%02d", i)))
	}
	events(t, a, views...)
	a.Fold(t)
	for k := 1; k <= n; k++ { // one more product cheaper each time
		importFeed(t, a, feed(k))
	}
	settle(t, a)
	deadline := time.Now().Add(30 * time.Second)
	for {
		seen := map[string]int{}
		for _, m := range to(srv, "v@example.com") {
			// quoted-printable: a long line is broken with "=" at its end
			data := strings.NewReplacer("=\r\n", "", "=\n", "").Replace(string(m.Data))
			for i := range n {
				if strings.Contains(data, fmt.Sprintf("Item %02d", i)) {
					seen[fmt.Sprintf("Item %02d", i)]++
				}
			}
		}
		done := len(seen) == n
		for item, k := range seen {
			if k > 1 {
				t.Fatalf("%s in %d messages", item, k)
			}
		}
		if done {
			t.Logf("%d products in %d messages", n, len(to(srv, "v@example.com")))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d products reached the person: %v", len(seen), n, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
