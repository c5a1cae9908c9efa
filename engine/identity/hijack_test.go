package identity_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// An unauthenticated caller of /t who knows a shopper's browser session id
// (not the anonymous id) names it in a stream of page views from paid
// campaigns of their own, alternating with their own session id, from
// two anonymous ids. The shopper's session, profile and touchpoints (what
// attribution credits) stay the shopper's; each hostile anonymous id gets
// one session of its own for the stream, not a session per event; and the
// browser session id still leads to the shopper's session.
func TestNamingAnotherShoppersSessionHijacksNothing(t *testing.T) {
	a := enginetest.NewApp(t)
	post := func(evs ...map[string]any) {
		t.Helper()
		var ans struct{ Accepted int }
		if st := a.Do(t, "POST", "/t", map[string]any{"events": evs}, &ans, "Origin", "http://localhost:8080"); st != 200 || ans.Accepted != len(evs) {
			t.Fatalf("POST /t: %d %+v", st, ans)
		}
	}
	page := func(id, anon, sess, url string) map[string]any {
		return map[string]any{"id": id, "type": "page_view", "anonymous_id": anon, "session_id": sess, "url": url}
	}
	post(page("v1", "victim", "s-victim", "https://shop.example/?utm_source=newsletter&utm_medium=email"))
	post(map[string]any{"id": "v2", "type": "login", "anonymous_id": "victim", "session_id": "s-victim", "url": "https://shop.example/login", "email": "victim@example.com"})
	for i := range 20 {
		for _, anon := range []string{"evil1", "evil2"} {
			sess := "s-victim"
			if i%2 == 1 {
				sess = "s-" + anon
			}
			post(page(fmt.Sprint(anon, "-", i), anon, sess, "https://shop.example/?utm_source=evil&utm_medium=cpc&gclid=x"+fmt.Sprint(i)))
		}
	}
	post(page("v3", "victim", "s-victim", "https://shop.example/p/1001"))
	// the victim's events: v1, its visit_from_referrer, the login, v3; the
	// stream's: 10 page views and their visit_from_referrer per session
	a.Fold(t)
	victim := model.UserProfileID("victim@example.com")
	read(t, a, func(tx *store.Tx) error {
		ss, err := tx.Sessions(victim)
		if err != nil {
			return err
		}
		if len(ss) != 1 || ss[0].ID != "s-victim" || ss[0].Events != 4 || ss[0].PageViews != 2 || ss[0].Source != "newsletter" {
			t.Errorf("the victim's sessions: %+v", ss)
		}
		p, err := tx.Profile(victim)
		if err != nil {
			return err
		}
		if p.Events != 4 || p.Sessions != 1 || len(p.AnonymousIDs) != 1 {
			t.Errorf("the victim's profile: %+v", p)
		}
		tps, err := tx.Touchpoints(victim)
		if err != nil {
			return err
		}
		for _, tp := range tps {
			if tp.Traffic.Source != "newsletter" || tp.SessionID != "s-victim" {
				t.Errorf("the victim has a touchpoint of %+v", tp)
			}
		}
		if link, err := tx.ClientSession("s-victim"); err != nil || link != "s-victim" {
			t.Errorf("s-victim links to %q, %v", link, err)
		}
		for _, anon := range []string{"evil1", "evil2"} {
			ss, err := tx.Sessions(model.AnonymousProfileID(anon))
			if err != nil {
				return err
			}
			events := int64(0)
			for _, s := range ss {
				events += s.Events
			}
			if len(ss) != 2 || events != 40 {
				t.Errorf("%s: %d sessions for 40 events in two session ids: %+v", anon, len(ss), ss)
			}
		}
		return nil
	})
	res := resolved(t, a.Store)
	for id, r := range res {
		if evil := strings.Contains(id, "evil"); !evil && r[0] != victim || evil && r[0] == victim {
			t.Errorf("Resolve: %s is %s's (session %s)", id, r[0], r[1])
		}
	}
	sessionsAreTheirProfiles(t, a, "after the stream", victim, model.AnonymousProfileID("evil1"), model.AnonymousProfileID("evil2"))
}
