package identity_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/store"
)

// login is a login event of a browser.
func login(id, anon, sess, email string, at time.Time) map[string]any {
	m := ev(id, "login", anon, sess, "https://shop.example/login", "", at)
	m["email"] = email
	return m
}

// erase erases a user through the Users API and waits for the fold.
func erase(t *testing.T, a *enginetest.App, email string) {
	t.Helper()
	if st := a.Do(t, "DELETE", "/api/v1/user/"+url.PathEscape(email), nil, nil, a.Auth()...); st != 200 {
		t.Fatalf("DELETE %s: %d", email, st)
	}
	a.Fold(t)
}

// sessionsAreTheirProfiles checks that every session listed under a
// profile exists and names that profile: a session listed under two
// profiles, or under one it no longer belongs to, is what leaves an entry
// behind when the session is erased with the other.
func sessionsAreTheirProfiles(t *testing.T, a *enginetest.App, when string, profiles ...string) {
	t.Helper()
	read(t, a, func(tx *store.Tx) error {
		for _, p := range profiles {
			ids, err := tx.SessionEntries(p)
			if err != nil {
				return err
			}
			for _, id := range ids {
				s, err := tx.Session(id)
				if err != nil {
					t.Errorf("%s: session %s listed under %s: %v", when, id, p, err)
				} else if s.ProfileID != p {
					t.Errorf("%s: session %s listed under %s belongs to %s", when, id, p, s.ProfileID)
				}
			}
		}
		return nil
	})
}

// A browser whose session ids outlive an erasure: its browser session id
// named a session of the first user (s-b), then, after the timeout, one of
// the second (s-b~…); erasing the second user removed the browser session
// id's link, and the browser's next visit opened a session under the same
// id as the first user's, s-b, overwriting that user's session record. The
// first user's erasure then deleted the record through its own entry and
// left the anonymous profile's entry behind, and the browser's next login
// found it in the merge (the identity stage stalled for good before the
// merge dropped such entries). A new session never takes the id of a
// session that exists.
func TestErasureLeavesNoSessionEntryBehind(t *testing.T) {
	a := enginetest.NewApp(t)
	const b, sid = "b", "s-b"
	send(t, a,
		ev("1", "page_view", b, sid, "https://shop.example/", "", day0),
		login("2", b, sid, "u1@x.com", day0.Add(time.Minute)), // a:b merges into u1 with s-b
		// after the timeout the same browser logs in as another user: a new
		// session, s-b~…, of u2; the browser is linked to u2
		login("3", b, sid, "u2@x.com", day0.Add(24*time.Hour)),
	)
	a.Fold(t)
	sessionsAreTheirProfiles(t, a, "before the erasures", "u:u1@x.com", "u:u2@x.com")
	erase(t, a, "u2@x.com")
	// the browser, now nobody's, visits again with the same session id
	send(t, a, ev("4", "page_view", b, sid, "https://shop.example/", "", day0.Add(25*time.Hour)))
	a.Fold(t)
	sessionsAreTheirProfiles(t, a, "after the visit", "u:u1@x.com", "a:b")
	read(t, a, func(tx *store.Tx) error {
		u1, err := tx.Sessions("u:u1@x.com")
		if err != nil || len(u1) != 1 || u1[0].ID != sid || u1[0].Events != 2 || !u1[0].Start.Equal(day0) {
			t.Errorf("u1's session changed: %+v, %v", u1, err)
		}
		return nil
	})
	erase(t, a, "u1@x.com")
	sessionsAreTheirProfiles(t, a, "after both erasures", "a:b")
	send(t, a, login("5", b, sid, "u3@x.com", day0.Add(26*time.Hour)))
	a.Fold(t)
	sessionsAreTheirProfiles(t, a, "after the third login", "u:u3@x.com")
	read(t, a, func(tx *store.Tx) error {
		ss, err := tx.Sessions("u:u3@x.com")
		if err != nil || len(ss) != 1 || ss[0].Events != 2 {
			t.Errorf("u3's sessions %+v, %v: want the browser's visit and login in one", ss, err)
		}
		if _, err := tx.Profile("a:b"); err != store.ErrNotFound {
			t.Errorf("a:b after the merge: %v", err)
		}
		return nil
	})
}

// A browser session id that is the id of another browser's later session
// (s-x~…, chosen by the fold; the tracker makes random ids, but a browser
// can send anything) opens a session of its own, instead of overwriting
// the other's and being listed under both profiles.
func TestANewSessionTakesNoIdInUse(t *testing.T) {
	a := enginetest.NewApp(t)
	send(t, a,
		ev("1", "page_view", "x", "s-x", "https://shop.example/", "", day0),
		ev("2", "page_view", "x", "s-x", "https://shop.example/", "", day0.Add(24*time.Hour)))
	var later string
	read(t, a, func(tx *store.Tx) error {
		ss, err := tx.Sessions("a:x")
		if err != nil || len(ss) != 2 {
			t.Fatalf("sessions of a:x: %+v, %v", ss, err)
		}
		later = ss[1].ID
		return nil
	})
	send(t, a, ev("3", "page_view", "y", later, "https://shop.example/", "", day0.Add(25*time.Hour)))
	sessionsAreTheirProfiles(t, a, "after y's visit", "a:x", "a:y")
	read(t, a, func(tx *store.Tx) error {
		x, _ := tx.Sessions("a:x")
		y, _ := tx.Sessions("a:y")
		if len(x) != 2 || len(y) != 1 || y[0].ID == later || y[0].ClientSessionID != later || x[1].ID != later || !x[1].Start.Equal(day0.Add(24*time.Hour)) {
			t.Errorf("x's sessions %+v\ny's %+v", x, y)
		}
		return nil
	})
}

// Nor does a session the fold names take an id a browser already used:
// server-side sessions are named after the event that opens them (srv-…),
// and a browser can send such an id first.
func TestAServerSideSessionTakesNoIdInUse(t *testing.T) {
	a := enginetest.NewApp(t)
	send(t, a, ev("1", "page_view", "y", "srv-2", "https://shop.example/", "", day0)) // seq 1
	// seq 2: a server-side event of a user, without a session id
	send(t, a, map[string]any{"id": "2", "type": "x", "email": "u@x.com", "time": day0.Add(time.Minute)})
	sessionsAreTheirProfiles(t, a, "after u's event", "a:y", "u:u@x.com")
	read(t, a, func(tx *store.Tx) error {
		y, _ := tx.Sessions("a:y")
		u, _ := tx.Sessions("u:u@x.com")
		if len(y) != 1 || y[0].ID != "srv-2" || len(u) != 1 || u[0].ID == "srv-2" {
			t.Errorf("y's sessions %+v\nu's %+v", y, u)
		}
		return nil
	})
}

// A store written before new sessions stopped taking ids in use may hold a
// browser session id's link to a session that is gone (the session was
// overwritten by another browser's, then erased with it). The browser's
// next event opens a new session instead of failing the fold for good.
func TestALinkToASessionThatIsGoneOpensANewSession(t *testing.T) {
	a := enginetest.NewApp(t)
	if err := a.Store.Project(func(tx *store.Tx) error { return tx.SetClientSession("s-x", "s-x~9") }); err != nil {
		t.Fatal(err)
	}
	send(t, a, ev("1", "page_view", "x", "s-x", "https://shop.example/", "", day0))
	sessionsAreTheirProfiles(t, a, "after x's visit", "a:x")
	read(t, a, func(tx *store.Tx) error {
		if ss, err := tx.Sessions("a:x"); err != nil || len(ss) != 1 || ss[0].ID != "s-x" {
			t.Errorf("x's sessions %+v, %v", ss, err)
		}
		if id, err := tx.ClientSession("s-x"); err != nil || id != "s-x" {
			t.Errorf("s-x links to %q, %v", id, err)
		}
		return nil
	})
}
