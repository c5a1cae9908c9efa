package identity_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/attribution"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/identity"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/report"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
)

// listed returns the ids of the events listed under a profile, oldest
// first, failing the test if the listing fails (an index entry left
// behind for an event that is gone fails it).
func listed(t *testing.T, st *store.Store, profile string) []string {
	t.Helper()
	var ids []string
	if err := st.ScanProfileEvents(profile, ^uint64(0), func(ev *model.Event) (bool, error) {
		ids = append(ids, ev.ID)
		return true, nil
	}); err != nil {
		t.Fatalf("events of %s: %v", profile, err)
	}
	slices.Reverse(ids)
	return ids
}

// resolved returns what identity's Resolve says about every event in the
// log: event id → profile and session.
func resolved(t *testing.T, st *store.Store) map[string][2]string {
	t.Helper()
	raw, err := st.EventsAfter(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]project.Event, len(raw))
	for i, e := range raw {
		evs[i].Event = e
	}
	if err := st.Read(func(tx *store.Tx) error {
		return identity.New(12*time.Hour).Projection().Resolve(tx, evs)
	}); err != nil {
		t.Fatal(err)
	}
	out := map[string][2]string{}
	for _, e := range evs {
		out[e.ID] = [2]string{e.ProfileID, e.SessionID}
	}
	return out
}

// A browser changes hands within a session: u1 logs in on it, then u2
// logs in on the same browser before the session timed out, looks at a
// product and orders (the order says nothing but the browser's ids). The
// order is u2's everywhere: in the profile event index the identity fold
// writes, in what Resolve tells the projections that fold later (the
// catch-up of deferred projections while ingestion is busy, a single
// projection's backfill, the retention sweep), and so in attribution; and
// u2's visit is a session of u2's, with u2's touchpoint.
func TestABrowserThatChangesHandsStartsASessionOfItsOwn(t *testing.T) {
	st := enginetest.NewStore(t)
	var busy atomic.Bool
	busy.Store(true) // attribution waits, and catches up later through Resolve
	r := enginetest.RunPipelineWith(t, st, project.Options{Busy: busy.Load}, attribution.Projection(30*24*time.Hour), report.Rollups()).Runner

	const u1, u2 = "u:u1@x.com", "u:u2@x.com"
	paid := &model.Traffic{Channel: "Paid Search", Source: "google", Medium: "cpc"}
	mk := func(id, typ, email string, at time.Duration) *model.Event {
		return &model.Event{ID: id, Type: typ, Via: model.ViaAPI, AnonymousID: "b", SessionID: "s-b", Email: email,
			URL: "https://shop.example/p/1", Referrer: "https://shop.example/", Time: day0.Add(at), ReceivedAt: day0.Add(at)}
	}
	evs := []*model.Event{
		mk("1", model.PageView, "", 0),
		mk("2", model.Login, "u1@x.com", time.Minute),
		mk("3", model.PageView, "", 5*time.Minute),
		mk("4", model.Login, "u2@x.com", time.Hour),
		mk("5", model.PageView, "", time.Hour+time.Minute),
		mk("6", model.Order, "", time.Hour+2*time.Minute),
	}
	evs[0].Traffic = paid
	evs[5].Props = map[string]json.RawMessage{"order_id": json.RawMessage(`"A-2"`), "value": json.RawMessage(`50`), "currency": json.RawMessage(`"EUR"`)}
	if _, err := st.Append(evs, nil); err != nil {
		t.Fatal(err)
	}
	r.Committed(evs)
	last, _ := st.LastSeq()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var idCP uint64
		for _, s := range r.Status() {
			if s.Name == identity.Name {
				idCP = s.Checkpoint
			} else if s.Checkpoint >= last {
				t.Fatalf("%s folded with identity: the test does not reach the catch-up", s.Name)
			}
		}
		if idCP == last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("identity did not fold while busy: %+v", r.Status())
		}
	}
	busy.Store(false)
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := r.Wait(wctx, last); err != nil {
		t.Fatal(err)
	}

	// the identity fold's listing
	if got, want := listed(t, st, u1), []string{"1", "2", "3"}; !slices.Equal(got, want) {
		t.Errorf("listed under u1: %v, want %v", got, want)
	}
	if got, want := listed(t, st, u2), []string{"4", "5", "6"}; !slices.Equal(got, want) {
		t.Errorf("listed under u2: %v, want %v", got, want)
	}
	// what Resolve tells the projections that fold later
	res := resolved(t, st)
	for id, want := range map[string]string{"1": u1, "2": u1, "3": u1, "4": u2, "5": u2, "6": u2} {
		if res[id][0] != want {
			t.Errorf("Resolve: event %s is %s's (session %s), want %s's", id, res[id][0], res[id][1], want)
		}
	}
	if res["4"][1] == res["3"][1] || res["6"][1] != res["4"][1] {
		t.Errorf("sessions: u1's last event in %s, u2's login in %s, u2's order in %s", res["3"][1], res["4"][1], res["6"][1])
	}
	// the sessions, and u2's visit as u2's touchpoint
	if err := st.Read(func(tx *store.Tx) error {
		s1, err := tx.Sessions(u1)
		if err != nil {
			return err
		}
		s2, err := tx.Sessions(u2)
		if err != nil {
			return err
		}
		if len(s1) != 1 || s1[0].ID != "s-b" || s1[0].Events != 3 || s1[0].Channel != "Paid Search" {
			t.Errorf("u1's sessions %+v", s1)
		}
		if len(s2) != 1 || s2[0].ID == "s-b" || s2[0].ClientSessionID != "s-b" || s2[0].Events != 3 || !s2[0].Start.Equal(day0.Add(time.Hour)) ||
			s2[0].Channel != "Direct" || s2[0].LandingURL != "https://shop.example/p/1" {
			t.Errorf("u2's sessions %+v", s2)
		}
		if link, err := tx.ClientSession("s-b"); err != nil || len(s2) == 1 && link != s2[0].ID {
			t.Errorf("s-b links to %q (%v), want u2's session", link, err)
		}
		for _, c := range []struct {
			profile  string
			sessions int64
			orders   int64
		}{{u1, 1, 0}, {u2, 1, 1}} {
			p, err := tx.Profile(c.profile)
			if err != nil {
				return err
			}
			if p.Sessions != c.sessions || p.Orders != c.orders {
				t.Errorf("%s counts %d sessions and %d orders, want %d and %d", c.profile, p.Sessions, p.Orders, c.sessions, c.orders)
			}
		}
		tp, err := tx.Touchpoints(u2)
		if err != nil {
			return err
		}
		if len(tp) != 1 || tp[0].EventID != "5" || tp[0].Channel != "Direct" {
			t.Errorf("u2's touchpoints %+v", tp)
		}
		// the dashboard, folded in the catch-up: u2's visit is a session
		if r, err := tx.Rollup(day0.Format(time.DateOnly)); err != nil || r.Sessions != 2 || r.Orders != 1 {
			t.Errorf("the day's rollup: %d sessions, %d orders (%v), want 2 and 1", r.Sessions, r.Orders, err)
		}
		// attribution, folded in the catch-up: the order and its path are u2's
		o1, err := attribution.ProfileOrders(tx, u1)
		if err != nil {
			return err
		}
		o2, err := attribution.ProfileOrders(tx, u2)
		if err != nil {
			return err
		}
		if len(o1) != 0 {
			t.Errorf("attribution credits u1 with %+v", o1)
		}
		if len(o2) != 1 || o2[0].Key != "A-2" || len(o2[0].Path) != 1 || o2[0].Path[0].Channel != "Direct" {
			t.Errorf("attribution's orders of u2: %+v", o2)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// the retention sweep drops every event with its index entries
	if n, err := r.Sweep(context.Background(), day0.Add(24*time.Hour), 1000); err != nil || n != len(evs) {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	for _, p := range []string{u1, u2} {
		if got := listed(t, st, p); len(got) != 0 {
			t.Errorf("after the sweep, listed under %s: %v", p, got)
		}
	}
}

// The same through the real app: the events API lists u2's events under
// u2, and erasing u1 leaves u2's session and events whole.
func TestErasingTheFirstHandLeavesTheSecondsSession(t *testing.T) {
	a := enginetest.NewApp(t)
	order := ev("6", "order", "b", "s-b", "https://shop.example/thanks", "https://shop.example/", day0.Add(time.Hour+2*time.Minute))
	order["props"] = map[string]any{"order_id": "A-2", "value": 50, "currency": "EUR"}
	send(t, a,
		ev("1", "page_view", "b", "s-b", "https://shop.example/?utm_source=google&utm_medium=cpc", "", day0),
		login("2", "b", "s-b", "u1@x.com", day0.Add(time.Minute)),
		login("4", "b", "s-b", "u2@x.com", day0.Add(time.Hour)),
		ev("5", "page_view", "b", "s-b", "https://shop.example/p/1", "https://shop.example/", day0.Add(time.Hour+time.Minute)),
		order,
	)
	a.Fold(t)
	events := func(email string) []string {
		t.Helper()
		var l struct{ Events []track.Listed }
		if st := a.Do(t, "GET", "/api/v1/events?email="+email, nil, &l, a.Auth()...); st != 200 {
			t.Fatalf("events of %s: %d", email, st)
		}
		var ids []string
		for _, e := range l.Events {
			ids = append(ids, e.ID)
		}
		slices.Sort(ids)
		return ids
	}
	if got := events("u2@x.com"); !slices.Equal(got, []string{"4", "5", "6"}) {
		t.Errorf("u2's events %v", got)
	}
	sessionsAreTheirProfiles(t, a, "before the erasure", "u:u1@x.com", "u:u2@x.com")
	erase(t, a, "u1@x.com")
	sessionsAreTheirProfiles(t, a, "after u1's erasure", "u:u2@x.com")
	if got := events("u2@x.com"); !slices.Equal(got, []string{"4", "5", "6"}) {
		t.Errorf("u2's events after u1's erasure %v", got)
	}
	res := resolved(t, a.Store)
	for _, id := range []string{"4", "5", "6"} {
		if res[id][0] != "u:u2@x.com" || res[id][1] == "" {
			t.Errorf("after u1's erasure, Resolve: event %s is %q's, in session %q", id, res[id][0], res[id][1])
		}
	}
	read(t, a, func(tx *store.Tx) error {
		ss, err := tx.Sessions("u:u2@x.com")
		if err != nil || len(ss) != 1 || ss[0].Events != 3 {
			t.Errorf("u2's sessions after u1's erasure %+v, %v", ss, err)
		}
		return nil
	})
}

// Events of other shoppers that name a browser's session id — the shop's
// server sending a user's events with the session id but no anonymous id,
// another browser sending the same id — go to their own profile's session,
// and the browser keeps its own: neither flips the browser session id's
// link, which would make each of their events, turn by turn, a new session.
func TestOthersNamingABrowsersSessionDoNotSplitIt(t *testing.T) {
	a := enginetest.NewApp(t)
	server := func(id string, at time.Duration) map[string]any {
		return map[string]any{"id": id, "type": "wishlist", "email": "u@x.com", "session_id": "s-b", "time": day0.Add(at)}
	}
	var evs []map[string]any
	for i := range 3 {
		at := time.Duration(i) * 3 * time.Minute
		evs = append(evs,
			ev(fmt.Sprint("b", i), "page_view", "b", "s-b", "https://shop.example/", "", day0.Add(at)),
			server(fmt.Sprint("u", i), at+time.Minute),
			ev(fmt.Sprint("c", i), "page_view", "c", "s-b", "https://shop.example/", "", day0.Add(at+2*time.Minute)))
	}
	send(t, a, evs...)
	a.Fold(t)
	sessionsAreTheirProfiles(t, a, "after the events", "a:b", "a:c", "u:u@x.com")
	read(t, a, func(tx *store.Tx) error {
		for _, c := range []struct{ profile, id, client string }{{"a:b", "s-b", "s-b"}, {"u:u@x.com", "", ""}, {"a:c", "", ""}} {
			ss, err := tx.Sessions(c.profile)
			if err != nil {
				return err
			}
			p, err := tx.Profile(c.profile)
			if err != nil {
				return err
			}
			if len(ss) != 1 || ss[0].Events != 3 || p.Sessions != 1 || c.id != "" && ss[0].ID != c.id || ss[0].ClientSessionID != c.client {
				t.Errorf("%s (%d sessions counted): %+v", c.profile, p.Sessions, ss)
			}
		}
		if link, err := tx.ClientSession("s-b"); err != nil || link != "s-b" {
			t.Errorf("s-b links to %q, %v", link, err)
		}
		return nil
	})
	res := resolved(t, a.Store)
	for i := range 3 {
		for id, want := range map[string]string{fmt.Sprint("b", i): "a:b", fmt.Sprint("u", i): "u:u@x.com", fmt.Sprint("c", i): "a:c"} {
			if res[id][0] != want {
				t.Errorf("Resolve: event %s is %q's, want %s's", id, res[id][0], want)
			}
		}
	}
	// the browser's session is the browser's: a login on it is a merge
	send(t, a, login("b9", "b", "s-b", "u@x.com", day0.Add(10*time.Minute)))
	a.Fold(t)
	sessionsAreTheirProfiles(t, a, "after the login", "a:b", "a:c", "u:u@x.com")
	read(t, a, func(tx *store.Tx) error {
		ss, err := tx.Sessions("u:u@x.com")
		if err != nil || len(ss) != 2 || ss[0].ID != "s-b" || ss[0].Events != 4 {
			t.Errorf("u's sessions after the login %+v, %v", ss, err)
		}
		return nil
	})
}
