package segment_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/segment"
	"github.com/shoptrail/shoptrail/engine/store"
)

const facebook30 = `{"name":"Facebook visitors, last 30 days","conditions":[
 {"event":"visit_from_referrer","where":[{"prop":"source","op":"eq","value":"facebook"}],"count":{"op":"gte","value":1},"within":"720h"}]}`

func vfr(anon, source string) *model.Event {
	return &model.Event{Type: model.VisitFromReferrer, AnonymousID: anon, SessionID: "s-" + anon,
		Props: props("source", source, "medium", "social"), Traffic: &model.Traffic{Source: source, Medium: "social", Channel: "Organic Social"}}
}

func TestMembershipFollowsEventsAndWindowCloses(t *testing.T) {
	e := newEnv(t)
	id := e.create(facebook30)
	e.add(vfr("a1", "facebook"), vfr("a2", "google"))
	if got := e.members(id); !slices.Equal(got, []string{"a:a1"}) {
		t.Fatalf("members %v, want a:a1", got)
	}
	if e.count(id) != 1 {
		t.Fatalf("count %d", e.count(id))
	}
	// exactly 30 days after the visit: still a member
	e.advance(720 * time.Hour)
	if got := e.members(id); !slices.Equal(got, []string{"a:a1"}) {
		t.Fatalf("30 days after: members %v, want a:a1", got)
	}
	// a millisecond later the window has closed, with no new event
	e.advance(time.Millisecond)
	e.membersAre(id)
	if e.count(id) != 0 {
		t.Fatalf("count %d", e.count(id))
	}
}

// login merges the anonymous profile of anon into the user with email.
func login(anon, email string) *model.Event {
	return &model.Event{Type: model.Login, AnonymousID: anon, SessionID: "s-" + anon, Email: email}
}

func order(email, id string, value float64, cur string) *model.Event {
	return &model.Event{Type: model.Order, Email: email, Props: props("order_id", id, "value", value, "currency", cur)}
}

// setUser stores Users API attributes with their user_update event, as
// engine/user does.
func (e *env) setUser(u model.User, changed map[string]any) {
	e.t.Helper()
	ev := &model.Event{Type: "user_update", Email: u.Email, Time: e.clk.Now(), Props: props("changed", changed)}
	if err := e.rec.Record(context.Background(), []*model.Event{ev}, func(tx *store.Tx) error { return tx.PutUser(u) }); err != nil {
		e.t.Fatal(err)
	}
	e.p.Fold(e.t)
}

// The issue's example rule, condition by condition.
func TestIssueExample(t *testing.T) {
	e := newEnv(t)
	id := e.create(`{"name":"Facebook visitors, last 30 days","match":"all","conditions":[
   {"event":"visit_from_referrer","where":[{"prop":"source","op":"eq","value":"facebook"}],"count":{"op":"gte","value":1},"within":"720h"},
   {"attribute":"city","op":"eq","value":"Paris"},
   {"not":{"event":"order","within":"2160h"}},
   {"any":[{"attribute":"gender","op":"eq","value":"female"},{"spent":{"op":"gte","value":200,"currency":"EUR"},"within":"2160h"}]}]}`)
	e.add(vfr("b1", "facebook"), login("b1", "jane@x.com"))
	e.membersAre(id) // no city yet
	e.setUser(model.User{Email: "jane@x.com", City: "Paris"}, map[string]any{"city": "Paris"})
	e.membersAre(id) // not female, no spend
	e.setUser(model.User{Email: "jane@x.com", City: "Paris", Gender: "female"}, map[string]any{"gender": "female"})
	e.membersAre(id, "u:jane@x.com")
	// an order takes her out (not ordered within 90 days)
	e.add(order("jane@x.com", "O1", 20, "EUR"))
	e.membersAre(id)
	// 90 days later the order leaves the window, but so did the visit
	e.advance(2160*time.Hour + time.Second)
	e.membersAre(id)
	e.add(vfr("b1", "facebook"))
	e.membersAre(id, "u:jane@x.com")
	// the timeline has her entries and exits, oldest first
	var got []string
	e.eventually("entries and exits recorded", func() bool {
		got = nil
		e.st.ScanProfileEvents("u:jane@x.com", math.MaxUint64, func(ev *model.Event) (bool, error) {
			if ev.Type == segment.Entered || ev.Type == segment.Exited {
				got = append([]string{ev.Type}, got...)
			}
			return true, nil
		})
		return len(got) == 3
	})
	if want := []string{segment.Entered, segment.Exited, segment.Entered}; !slices.Equal(got, want) {
		t.Fatalf("recorded %v, want %v", got, want)
	}
	segs, err := e.svc.ProfileSegments("u:jane@x.com")
	if err != nil || len(segs) != 1 || segs[0].ID != id || segs[0].Name != "Facebook visitors, last 30 days" {
		t.Fatalf("profile segments %+v %v", segs, err)
	}
}

// A merge moves the anonymous profile's facts and memberships to the user:
// visits on two devices add up.
func TestMergeAddsUp(t *testing.T) {
	e := newEnv(t)
	two := e.create(`{"name":"Two facebook visits","conditions":[{"event":"visit_from_referrer","where":[{"prop":"source","value":"facebook"}],"count":{"op":"gte","value":2}}]}`)
	one := e.create(facebook30)
	e.add(vfr("phone", "facebook"), vfr("laptop", "facebook"))
	e.membersAre(one, "a:laptop", "a:phone")
	e.membersAre(two)
	since := e.clk.Now()
	e.advance(time.Hour)
	e.add(login("phone", "sam@x.com"))
	e.membersAre(one, "a:laptop", "u:sam@x.com")
	e.membersAre(two)
	e.add(login("laptop", "sam@x.com"))
	e.membersAre(one, "u:sam@x.com")
	e.membersAre(two, "u:sam@x.com")
	if n := e.count(one); n != 1 {
		t.Fatalf("count %d, want 1", n)
	}
	ms, _, _ := e.svc.Members(one, "", 10, true)
	if len(ms) != 1 || !ms[0].Since.Equal(since) {
		t.Fatalf("members %+v: since should be the first visit's %v", ms, since)
	}
}

// Erasing a user removes their memberships.
func TestEraseRemovesMembership(t *testing.T) {
	e := newEnv(t)
	id := e.create(facebook30)
	e.add(vfr("c1", "facebook"), login("c1", "del@x.com"), vfr("c2", "facebook"))
	e.membersAre(id, "a:c2", "u:del@x.com")
	if _, err := e.p.Runner.Erase(context.Background(), "u:del@x.com", nil); err != nil {
		t.Fatal(err)
	}
	e.membersAre(id, "a:c2")
	if n := e.count(id); n != 1 {
		t.Fatalf("count %d", n)
	}
	if segs, _ := e.svc.ProfileSegments("u:del@x.com"); len(segs) != 0 {
		t.Fatalf("segments %v", segs)
	}
}

// A preview selects what the saved segment then holds, here with a custom
// event and a where on its property.
func TestPreviewEqualsSaved(t *testing.T) {
	e := newEnv(t)
	for i := range 30 {
		anon := fmt.Sprint("p", i)
		evs := []*model.Event{{Type: "wishlist_add", AnonymousID: anon, SessionID: "s" + anon, Props: props("product_id", fmt.Sprint(1000+i%3))}}
		if i%2 == 0 {
			evs = append(evs, &model.Event{Type: "wishlist_add", AnonymousID: anon, SessionID: "s" + anon, Props: props("product_id", 1000)})
		}
		if i%5 == 0 {
			evs = append(evs, login(anon, fmt.Sprintf("p%d@x.com", i)))
		}
		e.add(evs...)
	}
	rule := `{"name":"Wishlisted 1000 twice","conditions":[{"event":"wishlist_add","where":[{"prop":"product_id","op":"eq","value":1000}],"count":{"op":"gte","value":2},"within":"24h"}]}`
	pre, err := e.svc.Preview(context.Background(), []byte(rule))
	if err != nil {
		t.Fatal(err)
	}
	id := e.create(rule)
	got := e.members(id)
	if int64(len(got)) != pre.Count || pre.Count != 5 {
		t.Fatalf("preview %d, saved %d (%v)", pre.Count, len(got), got)
	}
	for i, m := range pre.Sample {
		if m.Profile != got[i] {
			t.Fatalf("sample %d: %s, saved %s", i, m.Profile, got[i])
		}
	}
	// now from the built segment's facts: the same again
	again, err := e.svc.Preview(context.Background(), []byte(rule))
	if err != nil || again.Count != pre.Count {
		t.Fatalf("second preview %d %v", again.Count, err)
	}
}

// A segment created after the events is built from them; an edit builds it
// again; a deleted one is forgotten.
func TestBuildEditDelete(t *testing.T) {
	e := newEnv(t)
	e.add(order("a@x.com", "1", 250, "EUR"), order("b@x.com", "2", 150, "EUR"), order("c@x.com", "3", 300, "USD"))
	id := e.create(`{"name":"Big spenders","conditions":[{"spent":{"op":"gte","value":200,"currency":"EUR"}}]}`)
	e.membersAre(id, "u:a@x.com")
	v, err := e.svc.Update(id, []byte(`{"name":"Big spenders","conditions":[{"spent":{"op":"gte","value":100,"currency":"EUR"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Building {
		t.Fatalf("an edited segment should build again: %+v", v)
	}
	v = e.built(id)
	e.membersAre(id, "u:a@x.com", "u:b@x.com")
	if v.Count != 2 || v.Progress == nil || v.Progress.Total != 3 || v.Progress.Profiles != 3 {
		t.Fatalf("view %+v %+v", v, v.Progress)
	}
	// a new name alone keeps the members and the build
	v, err = e.svc.Update(id, []byte(`{"name":"Spenders","conditions":[{"spent":{"op":"gte","value":100,"currency":"EUR"}}]}`))
	if err != nil || v.Building || v.Name != "Spenders" {
		t.Fatalf("rename: %+v %v", v, err)
	}
	if err := e.svc.Delete(id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Get(id); !errors.Is(err, segment.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if _, _, err := e.svc.Members(id, "", 10, false); !errors.Is(err, segment.ErrNotFound) {
		t.Fatalf("members after delete: %v", err)
	}
	e.eventually("member keys of the deleted segment removed", func() bool {
		n := 0
		e.st.Read(func(tx *store.Tx) error {
			return tx.Scan(store.ProjectionSpace(segment.Name), "m/"+id+"/", func(string, json.RawMessage) (bool, error) { n++; return true, nil })
		})
		return n == 0
	})
}

// Events of a type no rule mentions re-evaluate nothing, but a profile new
// to the projection is evaluated for every segment ("not ordered").
func TestNewProfilesJoinNegativeSegments(t *testing.T) {
	e := newEnv(t)
	id := e.create(`{"name":"Never ordered","conditions":[{"not":{"event":"order"}}]}`)
	e.add(&model.Event{Type: model.PageView, AnonymousID: "n1", SessionID: "s1"})
	e.membersAre(id, "a:n1")
	e.add(&model.Event{Type: model.Order, AnonymousID: "n1", SessionID: "s1", Props: props("order_id", "9", "value", 5, "currency", "EUR")})
	e.membersAre(id)
	// bots are no shoppers
	e.add(&model.Event{Type: model.PageView, AnonymousID: "bot", SessionID: "sb", Bot: true})
	e.membersAre(id)
}

// A bot is no shopper for a build either: not when the segments built
// count no event (a rule on attributes only, which a bot's anonymous
// profile matches), nor for a bare rule built afterwards.
func TestBuildsLeaveBotsOut(t *testing.T) {
	e := newEnv(t)
	e.add(&model.Event{Type: model.PageView, AnonymousID: "bot", SessionID: "sb", Bot: true},
		&model.Event{Type: model.PageView, AnonymousID: "h1", SessionID: "sh"})
	anon := e.create(`{"name":"Anonymous","conditions":[{"attribute":"email","op":"exists","value":false}]}`)
	e.membersAre(anon, "a:h1")
	never := e.create(`{"name":"Never ordered","conditions":[{"not":{"event":"order"}}]}`)
	e.membersAre(never, "a:h1")
	if e.svc.HasRecord("a:bot") {
		t.Error("a build kept a record of a bot's profile")
	}
}

// An event of a type no rule counts is not looked at (no read of the
// profile's record, nothing written) unless a profile without counted
// events can be a member; either way memberships are what the rules say.
func TestEventsNoRuleCountsAreSkipped(t *testing.T) {
	e := newEnv(t)
	carts := e.create(`{"name":"Carts","conditions":[{"event":"add_to_cart"}]}`)
	e.add(&model.Event{Type: model.PageView, AnonymousID: "v1", SessionID: "s1"})
	if e.svc.HasRecord("a:v1") {
		t.Error("a page view no rule counts made a record")
	}
	e.add(&model.Event{Type: model.AddToCart, AnonymousID: "v1", SessionID: "s1"})
	e.membersAre(carts, "a:v1")
	if !e.svc.HasRecord("a:v1") {
		t.Error("no record after a counted event")
	}
	// a rule a bare profile matches: every profile is looked at
	never := e.create(`{"name":"Never ordered","conditions":[{"not":{"event":"order"}}]}`)
	e.add(&model.Event{Type: model.PageView, AnonymousID: "v2", SessionID: "s2"})
	e.membersAre(never, "a:v1", "a:v2")
	e.membersAre(carts, "a:v1")
	// and once it is gone, page views are skipped again
	if err := e.svc.Delete(never); err != nil {
		t.Fatal(err)
	}
	e.settle()
	e.add(&model.Event{Type: model.PageView, AnonymousID: "v3", SessionID: "s3"})
	if e.svc.HasRecord("a:v3") {
		t.Error("a page view made a record after the bare rule was deleted")
	}
	// a rule on an attribute looks at every profile too
	paris := e.create(`{"name":"Paris","conditions":[{"attribute":"city","op":"eq","value":"Paris"}]}`)
	e.add(&model.Event{Type: model.PageView, AnonymousID: "v4", SessionID: "s4"})
	if !e.svc.HasRecord("a:v4") {
		t.Error("a rule on attributes: a page view of a new profile was not looked at")
	}
	e.membersAre(paris)
}

// Definitions change while events fold, previews and reads run: under
// -race, and the counts end equal to the members.
func TestConcurrentChanges(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	ids := make(chan string, 100)
	wg.Go(func() { // definitions
		for i := range 20 {
			v, err := e.svc.Create([]byte(fmt.Sprintf(`{"name":"s%d","conditions":[{"event":"page_view","count":{"op":"gte","value":%d}}]}`, i, 1+i%3)))
			if err != nil {
				t.Error(err)
				return
			}
			ids <- v.ID
			if i%4 == 0 {
				if _, err := e.svc.Update(v.ID, []byte(`{"name":"edited","conditions":[{"event":"page_view","count":{"op":"gte","value":2}}]}`)); err != nil {
					t.Error(err)
				}
			}
			if i%5 == 0 {
				if err := e.svc.Delete(v.ID); err != nil {
					t.Error(err)
				}
			}
		}
		close(ids)
	})
	wg.Go(func() { // readers
		for {
			select {
			case <-stop:
				return
			default:
			}
			list, _ := e.svc.List()
			for _, v := range list {
				e.svc.Members(v.ID, "", 10, false)
				e.svc.IsMember("a:c1", v.ID)
			}
			e.svc.Preview(context.Background(), []byte(`{"name":"p","conditions":[{"event":"page_view"}]}`))
			e.svc.ProfileSegments("a:c1")
		}
	})
	for i := range 60 {
		anon := fmt.Sprint("c", i%15)
		dup := *(&model.Event{Type: model.PageView, AnonymousID: anon, SessionID: "s" + anon})
		e.add(&dup)
	}
	for range ids {
	}
	close(stop)
	wg.Wait()
	list, err := e.svc.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range list {
		v = e.built(v.ID)
		e.eventually("count equals members", func() bool {
			v, _ = e.svc.Get(v.ID)
			return int64(len(e.members(v.ID))) == v.Count && v.Count == 15
		})
	}
	if len(list) != 16 {
		t.Fatalf("%d segments, want 16", len(list))
	}
}

// A preview before any segment exists sees every shopper, with rules on
// attributes only too.
func TestPreviewWithoutSegments(t *testing.T) {
	e := newEnv(t)
	e.add(&model.Event{Type: model.PageView, AnonymousID: "x1", SessionID: "sx"}, login("x1", "x@x.com"))
	e.setUser(model.User{Email: "x@x.com", City: "Lyon"}, map[string]any{"city": "Lyon"})
	for rule, want := range map[string]int64{
		`{"name":"p","conditions":[{"attribute":"city","value":"lyon"}]}`:           1,
		`{"name":"p","conditions":[{"attribute":"city","op":"ne","value":"lyon"}]}`: 0,
		`{"name":"p","conditions":[{"not":{"event":"order"}}]}`:                     1,
	} {
		pre, err := e.svc.Preview(context.Background(), []byte(rule))
		if err != nil || pre.Count != want {
			t.Errorf("%s: %d %v, want %d", rule, pre.Count, err, want)
		}
	}
}
