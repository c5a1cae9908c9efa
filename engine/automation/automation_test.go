package automation_test

import (
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/smtpfallback/smtptest"
)

const feed = `"ID";"Product title";"Product URL";"Categories IDs";"Categories Titles";"Description";"Price";"DiscountPrice";"Photos";"Color";"Brand";"Stock";"Main"
"p1";"Trail Runner";"https://shop.example/p1";"10";"Shoes";"";"120.00";"99.00";"https://shop.example/p1.jpg";"Red";"Northpeak";"5";""
"p2";"City Sneaker";"https://shop.example/p2";"10";"Shoes";"";"80.00";"";"https://shop.example/p2.jpg";"Blue";"Northpeak";"3";""
`

func mailApp(t *testing.T) (*enginetest.App, *smtptest.Server) {
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
	a := enginetest.Start(t, cfg)
	if _, err := a.Catalog.ImportWith(strings.NewReader(feed), "test", catalog.ImportOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	return a, srv
}

func put(t *testing.T, a *enginetest.App, name string, body map[string]any) {
	t.Helper()
	var out map[string]any
	if st := a.Do(t, "PUT", "/api/v1/automations/"+name, body, &out, a.Auth()...); st != 200 {
		t.Fatalf("PUT %s: %d %v", name, st, out)
	}
}

func events(t *testing.T, a *enginetest.App, evs ...map[string]any) {
	t.Helper()
	if st := a.Do(t, "POST", "/api/v1/events", map[string]any{"events": evs}, nil, a.Auth()...); st != 200 {
		t.Fatalf("events: %d", st)
	}
}

func subscribe(t *testing.T, a *enginetest.App, email string) {
	t.Helper()
	if st := a.Do(t, "POST", "/api/v1/user", map[string]any{"email": email, "firstName": "Kim", "isSubscribed": true}, nil, a.Auth()...); st != 201 && st != 200 {
		t.Fatalf("user: %d", st)
	}
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

func waitFor(t *testing.T, srv *smtptest.Server, addr string, n int, within time.Duration) []smtptest.Message {
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

// Each automation from its triggering event to the message the SMTP
// server receives, with its delay, exit condition and cooldown.
func TestAutomations(t *testing.T) {
	a, srv := mailApp(t)
	put(t, a, "welcome", map[string]any{"enabled": true, "subject": "Welcome!", "html": `<p>Hi {{.FirstName | default "there"}}</p>`, "cooldown": "168h"})
	put(t, a, "abandoned_cart", map[string]any{"enabled": true, "delay": "2s", "subject": "You left something behind", "html": `<p>Your cart:</p>{{products .CartItems}}`, "cooldown": "168h"})
	put(t, a, "browse_abandonment", map[string]any{"enabled": true, "delay": "1s", "subject": "Still thinking?", "html": `{{products .LastViewed}}{{recommend "similar" 2}}`})

	// welcome: subscribing sends it at once (well within a second of the event)
	t0 := time.Now()
	subscribe(t, a, "w@example.com")
	m := waitFor(t, srv, "w@example.com", 1, 5*time.Second)
	t.Logf("welcome received %v after the subscription", time.Since(t0).Round(time.Millisecond))
	if !strings.Contains(string(m[0].Data), "Hi Kim") {
		t.Errorf("welcome: %s", m[0].Data)
	}

	// abandoned cart: sent after the delay with the cart's products
	subscribe(t, a, "cart@example.com")
	subscribe(t, a, "buyer@example.com")
	waitFor(t, srv, "cart@example.com", 1, 5*time.Second) // their welcome
	waitFor(t, srv, "buyer@example.com", 1, 5*time.Second)
	events(t, a,
		map[string]any{"type": "add_to_cart", "email": "cart@example.com", "props": map[string]any{"product_id": "p1"}},
		map[string]any{"type": "add_to_cart", "email": "buyer@example.com", "props": map[string]any{"product_id": "p2"}})
	// the buyer orders before the delay: the exit condition
	events(t, a, map[string]any{"type": "order", "email": "buyer@example.com", "props": map[string]any{"order_id": "o1", "value": 80, "currency": "EUR"}})
	a.Fold(t)
	time.Sleep(500 * time.Millisecond)
	if n := len(to(srv, "cart@example.com")); n != 1 {
		t.Fatalf("the cart reminder came before its delay")
	}
	m = waitFor(t, srv, "cart@example.com", 2, 10*time.Second) // the welcome and the reminder
	var reminder string
	for _, x := range m {
		if strings.Contains(string(x.Data), "You left something behind") {
			reminder = string(x.Data)
		}
	}
	if !strings.Contains(reminder, "Trail Runner") {
		t.Errorf("the reminder has no cart product: %s", reminder)
	}
	time.Sleep(time.Second)
	for _, x := range to(srv, "buyer@example.com") {
		if strings.Contains(string(x.Data), "You left something behind") {
			t.Errorf("the buyer got a cart reminder after ordering")
		}
	}
	// cooldown: another cart within 168h sends nothing
	events(t, a, map[string]any{"type": "add_to_cart", "email": "cart@example.com", "props": map[string]any{"product_id": "p2"}})
	a.Fold(t)
	time.Sleep(3 * time.Second)
	if n := len(to(srv, "cart@example.com")); n != 2 {
		t.Errorf("%d messages to cart@, want 2 (the cooldown)", n)
	}

	// browse abandonment: two views of a product, no cart
	subscribe(t, a, "look@example.com")
	events(t, a,
		map[string]any{"type": "product_view", "email": "look@example.com", "props": map[string]any{"product_id": "p2"}},
		map[string]any{"type": "product_view", "email": "look@example.com", "props": map[string]any{"product_id": "p2"}})
	m = waitFor(t, srv, "look@example.com", 2, 10*time.Second)
	if !strings.Contains(string(m[1].Data), "City Sneaker") {
		t.Errorf("browse abandonment without the product: %s", m[1].Data)
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
		if sent["welcome"] == 4 && sent["abandoned_cart"] == 1 && sent["browse_abandonment"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sent %v", sent)
		}
	}
}

// segment_entered: a person who enters the segment gets the message.
func TestSegmentEntered(t *testing.T) {
	a, srv := mailApp(t)
	var seg struct{ ID string }
	if st := a.Do(t, "POST", "/api/v1/segments", `{"name":"Bergen","conditions":[{"attribute":"city","op":"eq","value":"Bergen"}]}`, &seg, a.Auth()...); st != 201 {
		t.Fatalf("segment: %d", st)
	}
	put(t, a, "segment_entered", map[string]any{"enabled": true, "segment": seg.ID, "subject": "Hello Bergen", "html": `<p>Velkommen {{.FirstName}}</p>`})
	if st := a.Do(t, "POST", "/api/v1/user", map[string]any{"email": "b@example.com", "firstName": "Bo", "city": "Bergen", "isSubscribed": true}, nil, a.Auth()...); st != 201 {
		t.Fatalf("user: %d", st)
	}
	if st := a.Do(t, "POST", "/api/v1/user", map[string]any{"email": "o@example.com", "firstName": "Ola", "city": "Oslo", "isSubscribed": true}, nil, a.Auth()...); st != 201 {
		t.Fatalf("user: %d", st)
	}
	m := waitFor(t, srv, "b@example.com", 1, 15*time.Second)
	if !strings.Contains(string(m[0].Data), "Velkommen Bo") {
		t.Errorf("message: %s", m[0].Data)
	}
	time.Sleep(time.Second)
	if n := len(to(srv, "o@example.com")); n != 0 {
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
		{"back_in_stock not built", "back_in_stock", map[string]any{"enabled": true, "subject": "s", "html": "h"}, 400, "enabled"},
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
