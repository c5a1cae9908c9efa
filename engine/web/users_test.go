package web_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/apikey"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// do is a.Do with a fresh destination: decoding into a used map would keep
// the keys of the previous answer.
func do(a *enginetest.App, t *testing.T, method, path string, body any, out any, header ...string) int {
	t.Helper()
	if m, ok := out.(*map[string]any); ok {
		*m = nil
	}
	return a.Do(t, method, path, body, out, header...)
}

type apiError struct {
	Error *struct{ Code, Field, Message string }
}

func TestUsersAPI(t *testing.T) {
	a := enginetest.NewApp(t)
	auth := a.Auth()
	var u map[string]any

	// create: POST, 201; the article's shape; email normalised
	st := do(a, t, "POST", "/api/v1/user", map[string]any{"email": " Jane@Example.COM ", "isSubscribed": true, "gender": "female", "city": "Paris", "loyaltyTier": "gold", "points": 120}, &u, auth...)
	if st != 201 || u["email"] != "jane@example.com" || u["isSubscribed"] != true || u["gender"] != "female" || u["city"] != "Paris" || u["loyaltyTier"] != "gold" || u["points"] != 120.0 {
		t.Fatalf("create: %d %v", st, u)
	}
	// POST again: updates the given fields, 200
	if st := do(a, t, "POST", "/api/v1/user", map[string]any{"email": "jane@example.com", "city": "Lyon"}, &u, auth...); st != 200 || u["city"] != "Lyon" || u["gender"] != "female" {
		t.Fatalf("upsert: %d %v", st, u)
	}
	// GET
	if st := do(a, t, "GET", "/api/v1/user/JANE@example.com", nil, &u, auth...); st != 200 || u["city"] != "Lyon" || u["loyaltyTier"] != "gold" {
		t.Fatalf("get: %d %v", st, u)
	}
	// PATCH: one field; null removes a custom attribute
	if st := do(a, t, "PATCH", "/api/v1/user/jane@example.com", map[string]any{"points": nil, "birthday": "1990-04-23"}, &u, auth...); st != 200 || u["points"] != nil || u["birthday"] != "1990-04-23" || u["city"] != "Lyon" {
		t.Fatalf("patch: %d %v", st, u)
	}
	// PUT: replaces
	if st := do(a, t, "PUT", "/api/v1/user/jane@example.com", map[string]any{"isSubscribed": false, "city": "Nice"}, &u, auth...); st != 200 || u["gender"] != nil || u["city"] != "Nice" || u["isSubscribed"] != false {
		t.Fatalf("put: %d %v", st, u)
	}
	// PUT creates an unknown user; PATCH does not
	if st := do(a, t, "PUT", "/api/v1/user/a+tag@shop.example", map[string]any{"city": "Oslo"}, &u, auth...); st != 201 || u["email"] != "a+tag@shop.example" {
		t.Fatalf("put new: %d %v", st, u)
	}
	// an internationalised domain, in the body and URL-encoded in the path
	if st := do(a, t, "POST", "/api/v1/user", map[string]any{"email": "Jürgen@Bücher.de"}, &u, auth...); st != 201 || u["email"] != "jürgen@xn--bcher-kva.de" {
		t.Fatalf("IDN: %d %v", st, u)
	}
	if st := do(a, t, "GET", "/api/v1/user/j%C3%BCrgen@b%C3%BCcher.de", nil, &u, auth...); st != 200 {
		t.Fatalf("IDN in the path: %d", st)
	}
	var e apiError
	if st := do(a, t, "PATCH", "/api/v1/user/nobody@shop.example", map[string]any{"city": "x"}, &e, auth...); st != 404 || e.Error.Field != "email" {
		t.Fatalf("patch unknown: %d %+v", st, e.Error)
	}
	if st := do(a, t, "GET", "/api/v1/user/nobody@shop.example", nil, &e, auth...); st != 404 || e.Error.Code != "not_found" {
		t.Fatalf("get unknown: %d %+v", st, e.Error)
	}

	// isSubscribed changes were recorded as events on the user, and every
	// change of attributes as a user_update
	var l listing
	do(a, t, "GET", "/api/v1/events?email=jane@example.com", nil, &l, auth...)
	var subs []string
	updates := 0
	for _, ev := range l.Events {
		switch ev.Type {
		case "subscribe", "unsubscribe":
			subs = append(subs, ev.Type)
		case "user_update":
			updates++
		}
	}
	if strings.Join(subs, ",") != "unsubscribe,subscribe" {
		t.Errorf("subscription events %v, want unsubscribe,subscribe (newest first)", subs)
	}
	if updates == 0 {
		t.Errorf("no user_update event among %+v", l.Events)
	}

	// errors name the field
	for _, tt := range []struct {
		method, path string
		body         any
		field        string
	}{
		{"POST", "/api/v1/user", map[string]any{"city": "x"}, "email"},
		{"POST", "/api/v1/user", map[string]any{"email": "jane"}, "email"},
		{"POST", "/api/v1/user", map[string]any{"email": "a@x.com\r\nBcc: b@y.com"}, "email"},
		{"POST", "/api/v1/user", map[string]any{"email": "b@x.com", "gender": "robot"}, "gender"},
		{"POST", "/api/v1/user", map[string]any{"email": "b@x.com", "isSubscribed": "yes"}, "isSubscribed"},
		{"POST", "/api/v1/user", map[string]any{"email": "b@x.com", "birthday": "23/04/1990"}, "birthday"},
		{"POST", "/api/v1/user", map[string]any{"email": "b@x.com", "sessions": 3}, "sessions"},
		{"POST", "/api/v1/user", map[string]any{"email": "b@x.com", "prefs": map[string]any{"a": 1}}, "prefs"},
		{"POST", "/api/v1/user", map[string]any{"email": "b@x.com", "bad name": 1}, "bad name"},
		{"POST", "/api/v1/user", "[1,2]", "body"},
		{"PATCH", "/api/v1/user/jane@example.com", map[string]any{"email": "other@example.com"}, "email"},
		{"GET", "/api/v1/user/not-an-email", nil, "email"},
		{"GET", "/api/v1/user/jane@example.com/events?limit=5000", nil, "limit"},
		{"GET", "/api/v1/user/jane@example.com/events?before=x", nil, "before"},
	} {
		var e apiError
		if st := do(a, t, tt.method, tt.path, tt.body, &e, auth...); st != 400 || e.Error == nil || e.Error.Field != tt.field {
			t.Errorf("%s %s %v: %d %+v, want 400 naming %s", tt.method, tt.path, tt.body, st, e.Error, tt.field)
		}
	}
}

func TestUserSeenByTheTrackerIsOneProfile(t *testing.T) {
	a := enginetest.NewApp(t)
	do(a, t, "POST", "/api/v1/user", map[string]any{"email": "sam@example.com", "city": "Berlin"}, nil, a.Auth()...)
	// the shopper browses anonymously, then logs in with the same email
	do(a, t, "POST", "/t", batch(
		pv("t1", "anon-sam", "s", "https://shop.example/", ""),
		map[string]any{"id": "t2", "type": "login", "anonymous_id": "anon-sam", "session_id": "s", "url": "https://shop.example/", "email": "SAM@example.com"},
		map[string]any{"id": "t3", "type": "order", "anonymous_id": "anon-sam", "session_id": "s", "url": "https://shop.example/thanks",
			"props": map[string]any{"order_id": "1", "value": 20, "currency": "EUR"}},
	), nil)
	a.Fold(t)
	var u map[string]any
	do(a, t, "GET", "/api/v1/user/sam@example.com", nil, &u, a.Auth()...)
	// three from the browser and the user_update of the creation, which
	// opens no session
	if u["city"] != "Berlin" || u["events"] != 4.0 || u["sessions"] != 1.0 || u["orders"] != 1.0 || u["firstSeen"] == nil {
		t.Fatalf("user %v", u)
	}
	if rev, _ := u["revenue"].(map[string]any); rev["EUR"] != 20.0 {
		t.Errorf("revenue %v", u["revenue"])
	}
	// a user the tracker saw but the API never created exists too
	do(a, t, "POST", "/t", batch(map[string]any{"type": "subscribe", "anonymous_id": "x", "url": "https://shop.example/", "email": "new@example.com"}), nil)
	a.Fold(t)
	if st := do(a, t, "GET", "/api/v1/user/new@example.com", nil, &u, a.Auth()...); st != 200 || u["events"] != 1.0 {
		t.Errorf("tracked-only user: %d %v", st, u)
	}
}

func TestUserTimelinePages(t *testing.T) {
	a := enginetest.NewApp(t)
	var evs []map[string]any
	for i := range 25 {
		evs = append(evs, map[string]any{"id": fmt.Sprint("e", i), "type": "x", "email": "p@example.com", "time": time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC)})
	}
	do(a, t, "POST", "/api/v1/events", map[string]any{"events": evs}, nil, a.Auth()...)
	var ids []string
	path := "/api/v1/user/p@example.com/events?limit=10"
	for pages := 0; ; pages++ {
		var page struct {
			Events     []model.Event
			NextBefore uint64 `json:"next_before"`
		}
		if st := do(a, t, "GET", path, nil, &page, a.Auth()...); st != 200 {
			t.Fatalf("page %d: %d", pages, st)
		}
		for _, e := range page.Events {
			ids = append(ids, e.ID)
		}
		if page.NextBefore == 0 {
			break
		}
		path = fmt.Sprintf("/api/v1/user/p@example.com/events?limit=10&before=%d", page.NextBefore)
	}
	if len(ids) != 25 || ids[0] != "e24" || ids[24] != "e0" {
		t.Fatalf("timeline %v", ids)
	}
	if st := do(a, t, "GET", "/api/v1/user/nobody@example.com/events", nil, nil, a.Auth()...); st != 404 {
		t.Errorf("unknown user's timeline: %d", st)
	}
}

func TestDeleteErasesTheUser(t *testing.T) {
	a := enginetest.NewApp(t)
	do(a, t, "POST", "/api/v1/user", map[string]any{"email": "gone@example.com", "city": "Rome", "isSubscribed": true}, nil, a.Auth()...)
	do(a, t, "POST", "/t", batch(
		pv("g1", "anon-g", "sg", "https://shop.example/?utm_source=news&utm_medium=email", ""),
		map[string]any{"id": "g2", "type": "login", "anonymous_id": "anon-g", "session_id": "sg", "url": "https://shop.example/", "email": "gone@example.com"},
		pv("other", "anon-o", "so", "https://shop.example/", ""),
	), nil)
	var res struct {
		Erased bool
		Events int
	}
	if st := do(a, t, "DELETE", "/api/v1/user/gone@example.com", nil, &res, a.Auth()...); st != 200 || !res.Erased || res.Events != 5 {
		// g1, its visit_from_referrer, g2, the subscribe event and the
		// user_update of the creation
		t.Fatalf("delete: %d %+v", st, res)
	}
	if st := do(a, t, "GET", "/api/v1/user/gone@example.com", nil, nil, a.Auth()...); st != 404 {
		t.Errorf("after delete GET: %d", st)
	}
	var l listing
	do(a, t, "GET", "/api/v1/events", nil, &l, a.Auth()...)
	if len(l.Events) != 1 || l.Events[0].ID != "other" {
		t.Errorf("events left: %+v", l.Events)
	}
	a.Store.Read(func(tx *store.Tx) error {
		if id, err := tx.AnonymousProfile("anon-g"); err != store.ErrNotFound {
			t.Errorf("identity link left: %q %v", id, err)
		}
		if ss, _ := tx.Sessions("u:gone@example.com"); len(ss) != 0 {
			t.Errorf("sessions left: %+v", ss)
		}
		if tps, _ := tx.Touchpoints("u:gone@example.com"); len(tps) != 0 {
			t.Errorf("touchpoints left: %+v", tps)
		}
		if _, err := tx.Session("sg"); err != store.ErrNotFound {
			t.Errorf("session record left: %v", err)
		}
		return nil
	})
	// the same event id may come again later: its dedup key went too
	var ans answer
	do(a, t, "POST", "/t", batch(pv("g1", "anon-g", "sg2", "https://shop.example/", "")), &ans)
	if ans.Accepted != 1 {
		t.Errorf("re-sent after erasure: %+v", ans)
	}
	if st := do(a, t, "DELETE", "/api/v1/user/nobody@example.com", nil, nil, a.Auth()...); st != 404 {
		t.Errorf("delete unknown: %d", st)
	}
}

func TestUsersImport(t *testing.T) {
	a := enginetest.NewApp(t)
	do(a, t, "POST", "/api/v1/user", map[string]any{"email": "old@example.com", "city": "Paris"}, nil, a.Auth()...)
	ndjson := strings.Join([]string{
		`{"email":"a@example.com","isSubscribed":true,"gender":"female"}`,
		`{"email":"old@example.com","gender":"male"}`,
		``,
		`{"email":"bad","city":"x"}`,
		`{"email":"c@example.com","gender":"robot"}`,
		`not json`,
		`{"email":"a@example.com","city":"Berlin"}`,
	}, "\n")
	var rep struct {
		Created, Updated, Failed int
		Errors                   []struct {
			Line           int
			Field, Message string
		}
	}
	if st := do(a, t, "POST", "/api/v1/users/import", ndjson, &rep, append(a.Auth(), "Content-Type", "application/x-ndjson")...); st != 200 {
		t.Fatalf("import: %d", st)
	}
	if rep.Created != 1 || rep.Updated != 1 || rep.Failed != 3 || len(rep.Errors) != 3 ||
		rep.Errors[0].Line != 4 || rep.Errors[0].Field != "email" || rep.Errors[1].Line != 5 || rep.Errors[1].Field != "gender" || rep.Errors[2].Line != 6 {
		t.Fatalf("report %+v", rep)
	}
	var u map[string]any
	do(a, t, "GET", "/api/v1/user/a@example.com", nil, &u, a.Auth()...)
	if u["city"] != "Berlin" || u["gender"] != "female" || u["isSubscribed"] != true {
		t.Errorf("a: %v", u)
	}
	do(a, t, "GET", "/api/v1/user/old@example.com", nil, &u, a.Auth()...)
	if u["city"] != "Paris" || u["gender"] != "male" {
		t.Errorf("old: %v", u)
	}
	csvBody := "\ufeffemail,isSubscribed,city,zip\r\nx@example.com,yes,Oslo,01234\r\ny@example.com,maybe,Bergen,\r\n\"z@example.com\",0,\"Trond,heim\",5000\r\nshort@example.com\r\n"
	do(a, t, "POST", "/api/v1/users/import", csvBody, &rep, append(a.Auth(), "Content-Type", "text/csv")...)
	if rep.Created != 2 || rep.Failed != 2 || rep.Errors[0].Line != 3 || rep.Errors[0].Field != "isSubscribed" || rep.Errors[1].Line != 5 {
		t.Fatalf("csv report %+v", rep)
	}
	do(a, t, "GET", "/api/v1/user/z@example.com", nil, &u, a.Auth()...)
	if u["city"] != "Trond,heim" || u["zip"] != "5000" || u["isSubscribed"] != false {
		t.Errorf("z: %v", u)
	}
	do(a, t, "GET", "/api/v1/user/x@example.com", nil, &u, a.Auth()...)
	if u["zip"] != "01234" {
		t.Errorf("a CSV value stays text: %v", u["zip"])
	}
}

func TestUsersAPIScopes(t *testing.T) {
	a := enginetest.NewApp(t)
	do(a, t, "POST", "/api/v1/user", map[string]any{"email": "s@example.com"}, nil, a.Auth()...)
	keys := map[string]string{}
	for _, scope := range model.AllScopes() {
		secret, k, _ := apikey.New(scope, []string{scope}, time.Now())
		a.Store.PutAPIKey(k)
		keys[scope] = secret
	}
	calls := []struct {
		method, path string
		body         any
		scope        string
	}{
		{"GET", "/api/v1/user/s@example.com", nil, model.ScopeUsersRead},
		{"GET", "/api/v1/user/s@example.com/events", nil, model.ScopeUsersRead},
		{"POST", "/api/v1/user", map[string]any{"email": "s@example.com"}, model.ScopeUsersWrite},
		{"PUT", "/api/v1/user/s@example.com", map[string]any{}, model.ScopeUsersWrite},
		{"PATCH", "/api/v1/user/s@example.com", map[string]any{}, model.ScopeUsersWrite},
		{"POST", "/api/v1/users/import", `{"email":"s@example.com"}`, model.ScopeUsersWrite},
		{"POST", "/api/v1/events", batch(map[string]any{"type": "x", "email": "s@example.com"}), model.ScopeEventsWrite},
		{"GET", "/api/v1/events", nil, model.ScopeEventsRead},
		{"DELETE", "/api/v1/user/s@example.com", nil, model.ScopeUsersWrite},
	}
	for _, c := range calls {
		if st := do(a, t, c.method, c.path, c.body, nil); st != http.StatusUnauthorized {
			t.Errorf("%s %s without a key: %d", c.method, c.path, st)
		}
		for _, scope := range model.AllScopes() {
			if scope == c.scope {
				continue
			}
			if st := do(a, t, c.method, c.path, c.body, nil, "Authorization", "Bearer "+keys[scope]); st != http.StatusForbidden {
				t.Errorf("%s %s with %s: %d, want 403", c.method, c.path, scope, st)
			}
		}
		if st := do(a, t, c.method, c.path, c.body, nil, "Authorization", "Bearer "+keys[c.scope]); st >= 400 {
			t.Errorf("%s %s with %s: %d", c.method, c.path, c.scope, st)
		}
	}
}

// Concurrent changes of one user each keep theirs: the read-modify-write
// of the attributes is serialised (40 PATCHes kept 4–7 attributes before).
func TestConcurrentPatchesLoseNoUpdate(t *testing.T) {
	a := enginetest.NewApp(t)
	if st := do(a, t, "POST", "/api/v1/user", map[string]any{"email": "race@example.com"}, nil, a.Auth()...); st != 201 {
		t.Fatal(st)
	}
	const n = 40
	var wg sync.WaitGroup
	status := make([]int, n)
	for i := range n {
		wg.Go(func() {
			status[i] = a.Do(t, "PATCH", "/api/v1/user/race@example.com", map[string]any{fmt.Sprintf("attr%d", i): i}, nil, a.Auth()...)
		})
	}
	// and an import touching the same user at the same time
	wg.Go(func() {
		a.Do(t, "POST", "/api/v1/users/import", `{"email":"race@example.com","city":"Oslo"}`+"\n", nil, a.Auth()...)
	})
	wg.Wait()
	var u map[string]any
	do(a, t, "GET", "/api/v1/user/race@example.com", nil, &u, a.Auth()...)
	for i := range n {
		if status[i] != 200 {
			t.Errorf("PATCH %d answered %d", i, status[i])
		}
		if u[fmt.Sprintf("attr%d", i)] != float64(i) {
			t.Errorf("attr%d lost: %v", i, u)
		}
	}
	if u["city"] != "Oslo" {
		t.Errorf("the import's city was lost: %v", u)
	}
	// every change is a fact in the log: the creation, the PATCHes, the import
	var l listing
	do(a, t, "GET", "/api/v1/events?email=race@example.com&type=user_update&limit=100", nil, &l, a.Auth()...)
	if len(l.Events) != n+2 {
		t.Errorf("%d user_update events, want %d", len(l.Events), n+2)
	}
}
