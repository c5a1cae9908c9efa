package identity_test

import (
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/app"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/identity"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
)

func ev(id, typ, anon, sess, url, ref string, at time.Time) map[string]any {
	m := map[string]any{"id": id, "type": typ, "anonymous_id": anon, "session_id": sess, "url": url, "referrer": ref, "time": at}
	if typ == "product_view" {
		m["props"] = map[string]any{"product_id": "1001"}
	}
	return m
}

// send posts events through the server-side API (which honours times).
func send(t *testing.T, a *enginetest.App, evs ...map[string]any) {
	t.Helper()
	var ans struct{ Accepted, Duplicates int }
	if st := a.Do(t, "POST", "/api/v1/events", map[string]any{"events": evs}, &ans, a.Auth()...); st != 200 {
		t.Fatalf("POST events: %d", st)
	}
}

func read(t *testing.T, a *enginetest.App, fn func(tx *store.Tx) error) {
	t.Helper()
	a.Fold(t)
	if err := a.Store.Read(fn); err != nil {
		t.Fatal(err)
	}
}

var day0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func TestAnonymousProfileMergesIntoUser(t *testing.T) {
	a := enginetest.NewApp(t)
	send(t, a,
		ev("1", "page_view", "anon-1", "s-1", "https://shop.example/?utm_source=newsletter&utm_medium=email", "", day0),
		ev("2", "product_view", "anon-1", "s-1", "https://shop.example/p/1001", "https://shop.example/", day0.Add(time.Minute)),
	)
	read(t, a, func(tx *store.Tx) error {
		p, err := tx.Profile("a:anon-1")
		if err != nil || p.Events != 3 || p.Sessions != 1 { // 2 + visit_from_referrer
			t.Fatalf("anonymous profile %+v %v", p, err)
		}
		return nil
	})
	// the shopper logs in: mixed case email, on the same browser
	login := ev("3", "login", "anon-1", "s-1", "https://shop.example/login", "", day0.Add(2*time.Minute))
	login["email"] = "Jane@Example.COM"
	send(t, a, login)
	// and orders from another device, server-side, email only
	send(t, a, map[string]any{"id": "4", "type": "order", "email": "jane@example.com", "time": day0.Add(time.Hour),
		"props": map[string]any{"order_id": "A-17", "value": 99.9, "currency": "EUR"}})
	read(t, a, func(tx *store.Tx) error {
		if _, err := tx.Profile("a:anon-1"); err != store.ErrNotFound {
			t.Errorf("anonymous profile still there: %v", err)
		}
		u, err := tx.Profile("u:jane@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if u.Email != "jane@example.com" || u.Events != 5 || u.Orders != 1 || u.Revenue["EUR"] != 9990 || len(u.AnonymousIDs) != 1 || !u.FirstSeen.Equal(day0) {
			t.Errorf("user %+v", u)
		}
		if pid, _ := tx.AnonymousProfile("anon-1"); pid != "u:jane@example.com" {
			t.Errorf("anon-1 links to %q", pid)
		}
		tps, _ := tx.Touchpoints(u.ID)
		if len(tps) != 1 || tps[0].Channel != "Email" {
			t.Errorf("touchpoints followed the merge? %+v", tps)
		}
		sess, _ := tx.Sessions(u.ID)
		if len(sess) != 2 || sess[0].ProfileID != u.ID {
			t.Errorf("sessions %+v", sess)
		}
		return nil
	})
	// every event of the user is listed by email, the anonymous ones too
	var l struct{ Events []track.Listed }
	a.Do(t, "GET", "/api/v1/events?email=JANE@example.com", nil, &l, a.Auth()...)
	if len(l.Events) != 5 {
		t.Fatalf("listed %d events by email, want 5", len(l.Events))
	}
	for _, e := range l.Events {
		if e.User != "jane@example.com" {
			t.Errorf("event %s user %q", e.ID, e.User)
		}
	}
	// merging is idempotent: another login changes nothing
	login["id"] = "5"
	send(t, a, login)
	read(t, a, func(tx *store.Tx) error {
		u, _ := tx.Profile("u:jane@example.com")
		if len(u.AnonymousIDs) != 1 || u.Events != 6 {
			t.Errorf("after a second login %+v", u)
		}
		return nil
	})
}

func TestSessionsEndAfterTheTimeout(t *testing.T) {
	a := enginetest.NewApp(t)
	send(t, a,
		ev("1", "page_view", "b", "s-1", "https://shop.example/", "", day0),
		ev("2", "page_view", "b", "s-1", "https://shop.example/p/1", "https://shop.example/", day0.Add(11*time.Hour)),
		// 13 hours after the last event: a new session although the id is the same
		ev("3", "page_view", "b", "s-1", "https://shop.example/p/2", "https://shop.example/", day0.Add(24*time.Hour)),
		// server-side events without a session id
		map[string]any{"id": "4", "type": "x", "anonymous_id": "b", "time": day0.Add(30 * time.Hour)},
		map[string]any{"id": "5", "type": "x", "anonymous_id": "b", "time": day0.Add(31 * time.Hour)},
		map[string]any{"id": "6", "type": "x", "anonymous_id": "b", "time": day0.Add(44 * time.Hour)},
	)
	read(t, a, func(tx *store.Tx) error {
		ss, err := tx.Sessions("a:b")
		if err != nil {
			return err
		}
		if len(ss) != 4 {
			t.Fatalf("%d sessions, want 4: %+v", len(ss), ss)
		}
		want := []struct {
			events int64
			start  time.Duration
			last   time.Duration
		}{{2, 0, 11 * time.Hour}, {1, 24 * time.Hour, 24 * time.Hour}, {2, 30 * time.Hour, 31 * time.Hour}, {1, 44 * time.Hour, 44 * time.Hour}}
		for i, w := range want {
			s := ss[i]
			if s.Events != w.events || !s.Start.Equal(day0.Add(w.start)) || !s.Last.Equal(day0.Add(w.last)) {
				t.Errorf("session %d: %+v, want %+v", i, s, w)
			}
		}
		if ss[0].ID != "s-1" || ss[1].ClientSessionID != "s-1" || ss[1].ID == "s-1" {
			t.Errorf("session ids %q %q", ss[0].ID, ss[1].ID)
		}
		if ss[1].LandingURL != "https://shop.example/p/2" || ss[1].Channel != "Direct" {
			t.Errorf("second session %+v", ss[1])
		}
		p, _ := tx.Profile("a:b")
		if p.Sessions != 4 {
			t.Errorf("profile counts %d sessions", p.Sessions)
		}
		return nil
	})
}

func TestSessionTimeoutIsConfigurable(t *testing.T) {
	a := enginetest.NewApp(t, func(c *config.Config) { c.Tracking.SessionTimeout = config.Duration{Duration: 30 * time.Minute} })
	send(t, a,
		ev("1", "page_view", "c", "s", "https://shop.example/", "", day0),
		ev("2", "page_view", "c", "s", "https://shop.example/", "", day0.Add(31*time.Minute)))
	read(t, a, func(tx *store.Tx) error {
		if ss, _ := tx.Sessions("a:c"); len(ss) != 2 {
			t.Errorf("%d sessions, want 2", len(ss))
		}
		return nil
	})
}

func TestTouchpointsAndVisitFromReferrer(t *testing.T) {
	for _, vfr := range []bool{true, false} {
		a := enginetest.NewApp(t, func(c *config.Config) { c.Tracking.VisitFromReferrer = vfr })
		send(t, a,
			// first page view of a session, no referrer: Direct
			ev("1", "page_view", "d", "s-1", "https://shop.example/", "", day0),
			// an internal page view: not a touchpoint
			ev("2", "page_view", "d", "s-1", "https://shop.example/p/1", "https://shop.example/", day0.Add(time.Minute)),
			// back from Google in the same session
			ev("3", "page_view", "d", "s-1", "https://shop.example/p/2", "https://www.google.de/", day0.Add(2*time.Minute)),
			// a paid Facebook click
			ev("4", "page_view", "d", "s-1", "https://shop.example/p/3?utm_source=facebook&utm_medium=cpc&utm_campaign=bf", "https://l.facebook.com/", day0.Add(3*time.Minute)),
			// an ad click with gclid only
			ev("5", "page_view", "d", "s-1", "https://shop.example/?gclid=abc", "", day0.Add(4*time.Minute)),
			// the return from the payment gateway is not a new visit
			ev("6", "page_view", "d", "s-1", "https://shop.example/thanks", "https://www.paypal.com/checkout", day0.Add(5*time.Minute)),
			// a referral
			ev("7", "page_view", "d", "s-1", "https://shop.example/", "https://blog.example.org/post", day0.Add(6*time.Minute)),
		)
		read(t, a, func(tx *store.Tx) error {
			tps, err := tx.Touchpoints("a:d")
			if err != nil {
				return err
			}
			want := []string{"Direct", "Organic Search", "Paid Social", "Paid Search", "Referral"}
			if len(tps) != len(want) {
				t.Fatalf("touchpoints %+v", tps)
			}
			for i, w := range want {
				if tps[i].Channel != w {
					t.Errorf("touchpoint %d: %s (%s/%s), want %s", i, tps[i].Channel, tps[i].Source, tps[i].Medium, w)
				}
			}
			if tps[2].Campaign != "bf" || tps[3].ClickID != "gclid" || tps[1].Source != "google" || tps[1].ReferrerHost != "www.google.de" {
				t.Errorf("touchpoint details %+v", tps)
			}
			return nil
		})
		var l struct{ Events []track.Listed }
		a.Do(t, "GET", "/api/v1/events?type=visit_from_referrer", nil, &l, a.Auth()...)
		wantN := 0
		if vfr {
			wantN = 4
		}
		if len(l.Events) != wantN {
			t.Fatalf("visit_from_referrer=%v: %d events, want %d", vfr, len(l.Events), wantN)
		}
		if vfr {
			last := l.Events[len(l.Events)-1] // the oldest: Google
			if string(last.Props["referrer_host"]) != `"www.google.de"` || string(last.Props["source"]) != `"google"` || string(last.Props["medium"]) != `"organic"` || last.DerivedFrom != "3" {
				t.Errorf("visit_from_referrer %+v", last.Event)
			}
		}
	}
}

func TestRebuildGivesTheSameProjections(t *testing.T) {
	cfg := enginetest.Config(t)
	var before model.Profile
	t.Run("first run", func(t *testing.T) {
		a := enginetest.Start(t, cfg)
		login := ev("3", "login", "r", "s", "https://shop.example/", "", day0.Add(time.Minute))
		login["email"] = "r@example.com"
		send(t, a, ev("1", "page_view", "r", "s", "https://shop.example/?utm_source=x&utm_medium=email", "", day0), login)
		read(t, a, func(tx *store.Tx) (err error) {
			before, err = tx.Profile("u:r@example.com")
			return err
		})
	})
	st, err := store.Open(store.Options{Dir: cfg.Storage.Dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Rebuild(st); err != nil {
		t.Fatal(err)
	}
	if ps, _ := st.ProjectionState(identity.Name); ps.Checkpoint != 0 {
		t.Fatalf("checkpoint %d after rebuild", ps.Checkpoint)
	}
	st.Close()
	a := enginetest.Start(t, cfg)
	read(t, a, func(tx *store.Tx) error {
		after, err := tx.Profile("u:r@example.com")
		if err != nil {
			return err
		}
		if after.Events != before.Events || after.Sessions != before.Sessions || !after.FirstSeen.Equal(before.FirstSeen) {
			t.Errorf("rebuilt %+v, before %+v", after, before)
		}
		return nil
	})
}
