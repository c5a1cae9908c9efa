package automation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/app"
	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/smtpfallback/smtptest"
)

const feed = `"ID";"Product title";"Product URL";"Categories IDs";"Categories Titles";"Description";"Price";"DiscountPrice";"Photos";"Color";"Brand";"Stock";"Main"
"p1";"Trail Runner";"https://shop.example/p1";"10";"Shoes";"";"120.00";"99.00";"https://shop.example/p1.jpg";"Red";"Northpeak";"5";""
"p2";"City Sneaker";"https://shop.example/p2";"10";"Shoes";"";"80.00";"";"https://shop.example/p2.jpg";"Blue";"Northpeak";"3";""
`

func mailApp(t testing.TB, opts ...app.Option) (*enginetest.App, *smtptest.Server) {
	t.Helper()
	return mailAppWith(t, nil, opts...)
}

// mailAppWith is mailApp with a change to its configuration.
func mailAppWith(t testing.TB, edit func(*config.Config), opts ...app.Option) (*enginetest.App, *smtptest.Server) {
	t.Helper()
	srv, err := smtptest.Start(smtptest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := enginetest.Config(t)
	cfg.Email.From = "Northpeak <hello@shop.example>"
	cfg.Email.SMTP = config.EmailSMTP{Host: "127.0.0.1", Port: srv.Port, TLS: "none"}
	cfg.Email.MaxPerDay = 10
	cfg.Sites.AllowedOrigins = []string{"https://shop.example"}
	if edit != nil {
		edit(&cfg)
	}
	a := enginetest.Start(t, cfg, opts...)
	importFeed(t, a, feed)
	return a, srv
}

func importFeed(t testing.TB, a *enginetest.App, f string) {
	t.Helper()
	if _, err := a.Catalog.ImportWith(strings.NewReader(f), "test", catalog.ImportOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

func put(t testing.TB, a *enginetest.App, name string, body map[string]any) {
	t.Helper()
	var out map[string]any
	if st := a.Do(t, "PUT", "/api/v1/automations/"+name, body, &out, a.Auth()...); st != 200 {
		t.Fatalf("PUT %s: %d %v", name, st, out)
	}
}

func events(t testing.TB, a *enginetest.App, evs ...map[string]any) {
	t.Helper()
	if st := a.Do(t, "POST", "/api/v1/events", map[string]any{"events": evs}, nil, a.Auth()...); st != 200 {
		t.Fatalf("events: %d", st)
	}
}

func subscribe(t testing.TB, a *enginetest.App, email string) {
	t.Helper()
	if st := a.Do(t, "POST", "/api/v1/user", map[string]any{"email": email, "firstName": "Kim", "isSubscribed": true}, nil, a.Auth()...); st != 201 && st != 200 {
		t.Fatalf("user: %d", st)
	}
}

func view(email, product string) map[string]any {
	return map[string]any{"type": "product_view", "email": email, "props": map[string]any{"product_id": product}}
}

// to returns the messages the server received for an address.
func to(srv *smtptest.Server, addr string) []smtptest.Message {
	var out []smtptest.Message
	for _, m := range srv.Messages() {
		if m.To[0] == addr {
			out = append(out, m)
		}
	}
	return out
}

func waitFor(t testing.TB, srv *smtptest.Server, addr string, n int, within time.Duration) []smtptest.Message {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(20 * time.Millisecond) {
		if got := to(srv, addr); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d messages, want %d", addr, len(to(srv, addr)), n)
		}
	}
}

// settle waits until the projections have folded every event and the
// sender has sent everything due at the clock's time: what is not queued
// then is not sent.
func settle(t testing.TB, a *enginetest.App) {
	t.Helper()
	a.Fold(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Automations.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// queued counts the messages of an automation queued for an address.
func queued(t testing.TB, a *enginetest.App, addr, automation string) int {
	t.Helper()
	recs, err := a.Mail.List("", "", 10000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.To == addr && r.Automation == automation {
			n++
		}
	}
	return n
}

func has(m []smtptest.Message, s string) bool {
	for _, x := range m {
		if strings.Contains(string(x.Data), s) {
			return true
		}
	}
	return false
}

// Each automation from its triggering event to the message the SMTP
// server receives, on a fake clock with the real delays: the
// welcome at once, the cart reminder after 4 h unless an order comes
// first, browse abandonment after 24 h without a cart, and the 168 h
// cooldown.
func TestAutomationsOnAFakeClock(t *testing.T) {
	clock := enginetest.NewClock()
	a, srv := mailApp(t, app.WithClock(clock.Now))
	put(t, a, "welcome", map[string]any{"enabled": true, "subject": "Welcome!", "html": `<p>Hi {{.FirstName | default "there"}}</p>`, "cooldown": "168h"})
	put(t, a, "abandoned_cart", map[string]any{"enabled": true, "delay": "4h", "subject": "You left something behind", "html": `<p>Your cart:</p>{{products .CartItems}}`, "cooldown": "168h"})
	put(t, a, "browse_abandonment", map[string]any{"enabled": true, "delay": "24h", "subject": "Still thinking?", "html": `{{products .LastViewed}}{{recommend "similar" 2}}`})

	// welcome: subscribing sends it at once
	subscribe(t, a, "w@example.com")
	settle(t, a)
	if m := waitFor(t, srv, "w@example.com", 1, 5*time.Second); !has(m, "Hi Kim") {
		t.Errorf("welcome: %s", m[0].Data)
	}

	// abandoned cart: sent 4 h after the cart, with the cart's products
	subscribe(t, a, "cart@example.com")
	subscribe(t, a, "buyer@example.com")
	events(t, a,
		map[string]any{"type": "add_to_cart", "email": "cart@example.com", "props": map[string]any{"product_id": "p1"}},
		map[string]any{"type": "add_to_cart", "email": "buyer@example.com", "props": map[string]any{"product_id": "p2"}})
	settle(t, a) // folded before the clock moves: events folded more than an hour late start nothing
	// the buyer orders an hour later, before the delay: the exit condition
	clock.Advance(time.Hour)
	events(t, a, map[string]any{"type": "order", "email": "buyer@example.com", "props": map[string]any{"order_id": "o1", "value": 80, "currency": "EUR"}})
	settle(t, a)
	clock.Advance(3*time.Hour - time.Minute) // 3h59m after the cart
	settle(t, a)
	if n := queued(t, a, "cart@example.com", "abandoned_cart"); n != 0 {
		t.Fatalf("the cart reminder came before its 4 h delay")
	}
	clock.Advance(2 * time.Minute)
	settle(t, a)
	if n := queued(t, a, "cart@example.com", "abandoned_cart"); n != 1 {
		t.Fatalf("%d cart reminders queued 4 h after the cart, want 1", n)
	}
	if m := waitFor(t, srv, "cart@example.com", 2, 5*time.Second); !has(m, "Trail Runner") { // the welcome and the reminder
		t.Errorf("the reminder has no cart product")
	}
	if n := queued(t, a, "buyer@example.com", "abandoned_cart"); n != 0 {
		t.Errorf("the buyer got a cart reminder after ordering")
	}

	// cooldown: another cart within 168 h sends nothing
	events(t, a, map[string]any{"type": "add_to_cart", "email": "cart@example.com", "props": map[string]any{"product_id": "p2"}})
	settle(t, a)
	clock.Advance(5 * time.Hour)
	settle(t, a)
	if n := queued(t, a, "cart@example.com", "abandoned_cart"); n != 1 {
		t.Errorf("%d reminders within the cooldown, want 1", n)
	}
	// after the 168 h, a new cart is reminded again
	clock.Advance(168 * time.Hour)
	events(t, a, map[string]any{"type": "add_to_cart", "email": "cart@example.com", "props": map[string]any{"product_id": "p2"}})
	settle(t, a)
	clock.Advance(4*time.Hour + time.Minute)
	settle(t, a)
	if n := queued(t, a, "cart@example.com", "abandoned_cart"); n != 2 {
		t.Errorf("%d reminders after the cooldown, want 2", n)
	}

	// browse abandonment: two views of a product, no cart in 24 h
	subscribe(t, a, "look@example.com")
	subscribe(t, a, "carts@example.com")
	events(t, a, view("look@example.com", "p2"), view("look@example.com", "p2"), view("carts@example.com", "p1"), view("carts@example.com", "p1"))
	settle(t, a)
	clock.Advance(time.Hour)
	events(t, a, map[string]any{"type": "add_to_cart", "email": "carts@example.com", "props": map[string]any{"product_id": "p1"}})
	settle(t, a)
	clock.Advance(22 * time.Hour)
	settle(t, a)
	if n := queued(t, a, "look@example.com", "browse_abandonment"); n != 0 {
		t.Fatal("browse abandonment before its 24 h")
	}
	clock.Advance(2 * time.Hour)
	settle(t, a)
	if m := waitFor(t, srv, "look@example.com", 2, 5*time.Second); !has(m, "City Sneaker") {
		t.Errorf("browse abandonment without the product")
	}
	if n := queued(t, a, "carts@example.com", "browse_abandonment"); n != 0 {
		t.Errorf("browse abandonment for someone who added the product to the cart")
	}

	// the report of each counts what was sent
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		a.Fold(t)
		var out struct {
			Automations []struct {
				Name  string
				Stats struct{ Sent int64 }
			}
		}
		a.Do(t, "GET", "/api/v1/automations", nil, &out, a.Auth()...)
		sent := map[string]int64{}
		for _, x := range out.Automations {
			sent[x.Name] = x.Stats.Sent
		}
		// carts@ got a cart reminder instead of browse abandonment
		if sent["welcome"] == 5 && sent["abandoned_cart"] == 3 && sent["browse_abandonment"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sent %v", sent)
		}
	}
}

// The sender on the real clock: a reminder with a 1 s delay arrives after
// it, with nobody moving time (the timer wakes the sender by itself).
func TestAbandonedCartRealTime(t *testing.T) {
	a, srv := mailApp(t)
	put(t, a, "abandoned_cart", map[string]any{"enabled": true, "delay": "1s", "subject": "You left something behind", "html": `{{products .CartItems}}`})
	subscribe(t, a, "cart@example.com")
	t0 := time.Now()
	events(t, a, map[string]any{"type": "add_to_cart", "email": "cart@example.com", "props": map[string]any{"product_id": "p1"}})
	m := waitFor(t, srv, "cart@example.com", 1, 15*time.Second)
	if took := time.Since(t0); took < time.Second {
		t.Errorf("the reminder came %v after the cart, before its delay", took)
	}
	if !has(m, "Trail Runner") {
		t.Errorf("reminder: %s", m[0].Data)
	}
}

// segment_entered: a person who enters the segment gets the message.
func TestSegmentEntered(t *testing.T) {
	clock := enginetest.NewClock()
	a, srv := mailApp(t, app.WithClock(clock.Now))
	var seg struct{ ID string }
	if st := a.Do(t, "POST", "/api/v1/segments", `{"name":"Bergen","conditions":[{"attribute":"city","op":"eq","value":"Bergen"}]}`, &seg, a.Auth()...); st != 201 {
		t.Fatalf("segment: %d", st)
	}
	put(t, a, "segment_entered", map[string]any{"enabled": true, "segment": seg.ID, "delay": "2h", "subject": "Hello Bergen", "html": `<p>Velkommen {{.FirstName}}</p>`})
	if st := a.Do(t, "POST", "/api/v1/user", map[string]any{"email": "b@example.com", "firstName": "Bo", "city": "Bergen", "isSubscribed": true}, nil, a.Auth()...); st != 201 {
		t.Fatalf("user: %d", st)
	}
	if st := a.Do(t, "POST", "/api/v1/user", map[string]any{"email": "o@example.com", "firstName": "Ola", "city": "Oslo", "isSubscribed": true}, nil, a.Auth()...); st != 201 {
		t.Fatalf("user: %d", st)
	}
	// the segment records b@'s entry, and the automations fold it: a timer
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		settle(t, a)
		v, err := a.Automations.Get("segment_entered")
		if err != nil {
			t.Fatal(err)
		}
		if v.Pending == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d timers waiting, want 1", v.Pending)
		}
	}
	clock.Advance(2*time.Hour - time.Minute)
	settle(t, a)
	if n := queued(t, a, "b@example.com", "segment_entered"); n != 0 {
		t.Fatal("the message came before its 2 h delay")
	}
	clock.Advance(2 * time.Minute)
	settle(t, a)
	m := waitFor(t, srv, "b@example.com", 1, 15*time.Second)
	if !strings.Contains(string(m[0].Data), "Velkommen Bo") {
		t.Errorf("message: %s", m[0].Data)
	}
	if n := queued(t, a, "o@example.com", "segment_entered"); n != 0 {
		t.Errorf("someone outside the segment got %d messages", n)
	}
}

// The bad-input table of PUT /api/v1/automations/{name}.
func TestAutomationBadInput(t *testing.T) {
	a, _ := mailApp(t)
	cases := []struct {
		name, path string
		body       any
		status     int
		field      string
	}{
		{"unknown automation", "nope", map[string]any{"enabled": false}, 404, "name"},
		{"not json", "welcome", "{", 400, "body"},
		{"unknown field", "welcome", map[string]any{"colour": 1}, 400, "colour"},
		{"delay not a duration", "welcome", map[string]any{"delay": "soon"}, 400, "delay"},
		{"negative delay", "welcome", map[string]any{"delay": "-1h"}, 400, "delay"},
		{"cooldown a number", "welcome", map[string]any{"cooldown": 5}, 400, "cooldown"},
		{"enabled without subject", "welcome", map[string]any{"enabled": true, "html": "x"}, 400, "subject"},
		{"enabled without html", "welcome", map[string]any{"enabled": true, "subject": "x"}, 400, "html"},
		{"bad template", "welcome", map[string]any{"html": "{{.X"}, 400, "html"},
		{"unsafe function", "welcome", map[string]any{"html": `{{readFile "/etc/passwd"}}`}, 400, "html"},
		{"subject with newline", "welcome", map[string]any{"subject": "a\nb"}, 400, "subject"},
		{"segment_entered without segment", "segment_entered", map[string]any{"enabled": true, "subject": "s", "html": "h"}, 400, "segment"},
		{"unknown segment", "segment_entered", map[string]any{"segment": "0123456789abcdef"}, 400, "segment"},
		{"segment on another", "welcome", map[string]any{"segment": "0123456789abcdef"}, 400, "segment"},
		{"back_in_stock without subject", "back_in_stock", map[string]any{"enabled": true, "html": "{{products .Products}}"}, 400, "subject"},
		{"back_in_stock without html", "back_in_stock", map[string]any{"enabled": true, "subject": "Back"}, 400, "html"},
		{"back_in_stock with a segment", "back_in_stock", map[string]any{"segment": "0123456789abcdef"}, 400, "segment"},
		{"back_in_stock delay too long", "back_in_stock", map[string]any{"delay": "9000h"}, 400, "delay"},
		{"back_in_stock enabled a string", "back_in_stock", map[string]any{"enabled": "yes"}, 400, "enabled"},
		{"price_drop bad template", "price_drop", map[string]any{"html": "{{products .Products"}, 400, "html"},
		{"price_drop unknown function", "price_drop", map[string]any{"html": `{{env "HOME"}}`}, 400, "html"},
		{"price_drop negative cooldown", "price_drop", map[string]any{"cooldown": "-5m"}, 400, "cooldown"},
		{"price_drop subject too long", "price_drop", map[string]any{"subject": strings.Repeat("x", 2000)}, 400, "subject"},
		{"price_drop array body", "price_drop", "[]", 400, "body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out struct {
				Error struct{ Field, Message string }
			}
			if st := a.Do(t, "PUT", "/api/v1/automations/"+tc.path, tc.body, &out, a.Auth()...); st != tc.status || out.Error.Field != tc.field {
				t.Errorf("%d %+v, want %d naming %s", st, out.Error, tc.status, tc.field)
			}
		})
	}
	// nothing was changed by the bad requests
	var out struct {
		Automations []struct {
			Name    string
			Enabled bool
			Delay   string
			HTML    string
		}
	}
	a.Do(t, "GET", "/api/v1/automations", nil, &out, a.Auth()...)
	if len(out.Automations) != 6 {
		t.Fatalf("%d automations", len(out.Automations))
	}
	for _, x := range out.Automations {
		if x.Enabled || x.HTML != "" {
			t.Errorf("%s changed by a bad request: %+v", x.Name, x)
		}
	}
}
