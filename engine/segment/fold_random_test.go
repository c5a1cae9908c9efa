package segment_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/segment"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/user"
)

var foldSeeds = flag.Int("fold.seeds", 6, "seeds TestLiveFoldEqualsTheLogRandomRules runs (each a shop of its own)")

// foldStats says what the random live folds went through: the test is as
// good as its input.
type foldStats struct {
	checks, selective    int // segments compared; of them, selecting some shoppers but not all
	bareFolds, leanFolds int // batches folded with a bare segment defined, and without
	unrecorded           int // shoppers without a record (their events skipped), summed over checks
	merges, erasures     int
	created, edited      int
	deleted, userSaves   int
	skippedEvents        int // events folded while no segment was bare, of a type no rule counted
	moves                int // entries and exits seen between two checks of a segment
	attrMoves            int // entries and exits a change of a user's attributes caused
}

// The segments' live fold (segments defined before the events arrive, so
// their members are kept by the fold, not by a build) selects what the log
// says: for random rules, bare ones (a profile with no counted event can
// match) and others, over random events in batches — types counted and not
// counted arriving before and after counted ones, bots, orders sent again
// by the shop, anonymous shoppers logging in (merges) and browsers
// changing hands, Users API changes, erasures — with segments created,
// edited (bare to not bare and back) and deleted between batches, and the
// fake clock moved so that windows close. After every batch and every move
// of the clock each segment's members equal the rule evaluated over every
// profile's events read again from the log (MembersFromLog), its count
// equals its members, and both previews agree.
func TestLiveFoldEqualsTheLogRandomRules(t *testing.T) {
	var st foldStats
	for seed := range uint64(*foldSeeds) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { runFold(t, seed, &st) })
	}
	t.Logf("%+v", st)
	if t.Failed() || *foldSeeds < 6 {
		return
	}
	if st.checks < 200 || st.selective < st.checks/4 || st.moves < 100 || st.bareFolds < 10 || st.leanFolds < 10 ||
		st.unrecorded == 0 || st.skippedEvents < 50 || st.merges < 50 || st.erasures == 0 || st.attrMoves < 10 ||
		st.created == 0 || st.edited == 0 || st.deleted == 0 || st.userSaves == 0 {
		t.Errorf("a weak test: %+v", st)
	}
}

// foldShop is one seed's shop.
type foldShop struct {
	t      *testing.T
	e      *env
	users  *user.Service
	rng    *rand.Rand
	seed   uint64
	st     *foldStats
	when   string              // where the run is, for messages
	segs   map[string]string   // segment id → rule
	last   map[string][]string // segment id → members at the last check
	log    []string            // what happened, for a failure's message
	anons  []string
	emails []string
	orders int
}

// clockRecorder records the Users API's events at the fake clock's time,
// as track.Record does at the real one's.
type clockRecorder struct{ e *env }

func (r clockRecorder) Record(ctx context.Context, evs []*model.Event, also func(tx *store.Tx) error) error {
	for _, ev := range evs {
		if ev.Time.IsZero() {
			ev.Time = r.e.clk.Now()
		}
	}
	return r.e.rec.Record(ctx, evs, also)
}

func runFold(t *testing.T, seed uint64, st *foldStats) {
	e := newEnv(t)
	f := &foldShop{t: t, e: e, rng: rand.New(rand.NewPCG(seed, 0x5e9)), seed: seed, st: st, segs: map[string]string{}, last: map[string][]string{}}
	f.users = user.New(e.st, clockRecorder{e}, e.p.Runner, e.clk.Now)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d, what happened:\n%s", seed, strings.Join(f.log, "\n"))
		}
	})
	for i := range 10 {
		f.anons = append(f.anons, fmt.Sprintf("s%da%d", seed, i))
	}
	for i := range 5 {
		f.emails = append(f.emails, fmt.Sprintf("s%du%d@x.com", seed, i))
	}
	// the segments exist before any event: one that a bare profile
	// matches and two or three that it does not
	f.when = "before any event"
	f.create(f.rule(true))
	for range 2 + f.rng.IntN(2) {
		f.create(f.rule(false))
	}
	for batch := range 10 {
		f.when = fmt.Sprintf("batch %d", batch)
		var building []string
		if batch > 0 {
			building = f.change()
		}
		bare := f.bare()
		if bare {
			st.bareFolds++
		} else {
			st.leanFolds++
		}
		evs := f.events(10 + f.rng.IntN(30))
		if !bare {
			st.skippedEvents += f.uncounted(evs)
		}
		f.note("%d events, %d bots'", len(evs), bots(evs))
		// in runs, as requests bring them, between changes of users
		for len(evs) > 0 {
			n := min(len(evs), 1+f.rng.IntN(15))
			e.add(evs[:n]...)
			evs = evs[n:]
			if f.rng.IntN(3) == 0 {
				f.saveUser(choose(f.rng, f.emails...))
			}
		}
		for _, id := range building {
			if _, ok := f.segs[id]; ok {
				f.built(id)
			}
		}
		f.check()
		d := choose(f.rng, 0, time.Millisecond, time.Hour, 24*time.Hour+time.Millisecond, 720*time.Hour, 31*24*time.Hour, 91*24*time.Hour)
		if d > 0 {
			e.clk.Set(e.clk.Now().Add(d))
			f.note("the clock moved %v", d)
			f.swept()
			f.when = fmt.Sprintf("batch %d, the clock moved %v", batch, d)
			f.check()
		}
	}
}

// create defines a segment and waits for its build.
func (f *foldShop) create(rule string) {
	v, err := f.e.svc.Create([]byte(rule))
	if err != nil {
		f.t.Fatalf("create %s: %v", rule, err)
	}
	f.segs[v.ID] = rule
	f.note("created %s %s", v.ID, rule)
	f.built(v.ID)
}

// note logs what happened, for a failure's message.
func (f *foldShop) note(format string, args ...any) {
	f.log = append(f.log, f.when+": "+fmt.Sprintf(format, args...))
}

// built waits until a segment's build is done and the windows due are
// swept.
func (f *foldShop) built(id string) {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := f.e.svc.Get(id)
		if err != nil {
			f.t.Fatal(err)
		}
		if !v.Building {
			break
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("seed %d, %s: segment %s still building: %+v", f.seed, f.when, id, v.Progress)
		}
		f.e.p.Runner.Poke()
		time.Sleep(2 * time.Millisecond)
	}
	f.swept()
}

// swept waits until the sweep has re-evaluated every profile whose
// windows closed by the clock's now (no due time left at or before it).
func (f *foldShop) swept() {
	f.t.Helper()
	now := f.e.clk.Now().UnixMilli()
	deadline := time.Now().Add(10 * time.Second)
	for {
		due := false
		if err := f.e.st.Read(func(tx *store.Tx) error {
			return tx.Scan(store.ProjectionSpace(segment.Name), "d/", func(k string, _ json.RawMessage) (bool, error) {
				ms, _, _ := strings.Cut(strings.TrimPrefix(k, "d/"), "/")
				t, err := strconv.ParseInt(ms, 10, 64)
				due = err != nil || t <= now
				return false, nil
			})
		}); err != nil {
			f.t.Fatal(err)
		}
		if !due {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("seed %d, %s: windows due by now not swept", f.seed, f.when)
		}
		f.e.p.Runner.Poke()
		time.Sleep(2 * time.Millisecond)
	}
}

// bare reports whether a segment defined now makes the fold look at every
// event's profile.
func (f *foldShop) bare() bool {
	for _, rule := range f.segs {
		if segment.Bare([]byte(rule)) {
			return true
		}
	}
	return false
}

// uncounted returns how many of evs are of a type that no segment's rule
// names (the fold skips them while no rule is bare).
func (f *foldShop) uncounted(evs []*model.Event) int {
	n := 0
	for _, ev := range evs {
		counted := false
		for _, rule := range f.segs {
			typ := ev.Type
			if typ == model.Order {
				counted = counted || strings.Contains(rule, `"orders"`) || strings.Contains(rule, `"spent"`) || strings.Contains(rule, "Order Completed")
			}
			counted = counted || strings.Contains(rule, `"event":"`+typ+`"`)
		}
		if !counted && !ev.Bot {
			n++
		}
	}
	return n
}

// change creates, edits or deletes segments, changes users' attributes
// through the Users API and erases shoppers, between two batches. Often a
// bare rule appears (created, or a rule edited into one) or disappears
// (deleted, or edited into a rule a bare profile does not match), so that
// batches fold with and without the skip. It returns the segments whose
// build the next batch may fold alongside.
func (f *foldShop) change() (building []string) {
	rng := f.rng
	var bare, lean []string
	for id, rule := range f.segs {
		if segment.Bare([]byte(rule)) {
			bare = append(bare, id)
		} else {
			lean = append(lean, id)
		}
	}
	sort.Strings(bare)
	sort.Strings(lean)
	switch k := rng.IntN(10); {
	case k < 4 && len(bare) > 0: // the bare rule disappears
		if id := choose(rng, bare...); rng.IntN(2) == 0 && len(f.segs) > 2 {
			f.delete(id)
		} else {
			building = f.edit(id, false)
		}
	case k < 4 && rng.IntN(2) == 0 && len(f.segs) < 7: // a bare rule appears
		building = f.add(true)
	case k < 4:
		building = f.edit(choose(rng, lean...), true)
	case k < 6 && len(f.segs) < 7:
		building = f.add(false)
	case k < 8:
		building = f.edit(choose(rng, lean...), false)
	case k == 8 && len(lean) > 2:
		f.delete(choose(rng, lean...))
	}
	for range rng.IntN(2) {
		f.saveUser(choose(rng, f.emails...))
	}
	if rng.IntN(5) == 0 {
		f.erase()
	}
	return building
}

// rule returns a random rule that a bare profile matches, or not: one
// that selects some of the shoppers but not all today, if one of a few
// does (most random rules select none of a small shop, or all).
func (f *foldShop) rule(bare bool) string {
	var rules [][]byte
	for range 10 {
		rule := attributesRule(f.rng) // half the bare rules: attributes only
		if !bare || f.rng.IntN(2) == 0 {
			for rule = segment.RandomRule(f.rng, f.e.clk.Now()); segment.Bare([]byte(rule)) != bare; {
				rule = segment.RandomRule(f.rng, f.e.clk.Now())
			}
		}
		rules = append(rules, []byte(rule))
	}
	in, err := f.e.svc.MembersFromLog(rules...)
	if err != nil {
		f.t.Fatal(err)
	}
	for i, rule := range rules {
		if len(in[i]) > 0 && len(in[i]) < len(in[len(rules)]) {
			return string(rule)
		}
	}
	return string(rules[0])
}

// attributesRule returns a random rule on the attributes saveUser changes
// (random rules mix them with events: a change of attributes seldom moves
// a profile in or out).
func attributesRule(rng *rand.Rand) string {
	leaf := func() string {
		return choose(rng, `{"attribute":"city","value":"Paris"}`, `{"attribute":"city","op":"starts_with","value":"pa"}`,
			`{"not":{"attribute":"city","op":"exists"}}`, `{"attribute":"gender","op":"ne","value":"female"}`,
			`{"attribute":"gender","value":"male"}`, `{"attribute":"isSubscribed","value":true}`,
			`{"attribute":"age","op":"gt","value":30}`, `{"attribute":"age","op":"lt","value":31}`)
	}
	conds := []string{leaf()}
	if rng.IntN(2) == 0 {
		conds = append(conds, leaf())
	}
	return fmt.Sprintf(`{"name":"attributes","match":"%s","conditions":[%s]}`, choose(rng, "all", "any"), strings.Join(conds, ","))
}

// add defines a new segment; it is built while the next batch folds, or
// before.
func (f *foldShop) add(bare bool) (building []string) {
	rule := f.rule(bare)
	v, err := f.e.svc.Create([]byte(rule))
	if err != nil {
		f.t.Fatal(err)
	}
	f.segs[v.ID] = rule
	f.st.created++
	f.note("created %s (bare %v) %s", v.ID, bare, rule)
	if f.rng.IntN(2) == 0 {
		f.built(v.ID)
		return nil
	}
	return []string{v.ID}
}

// edit gives a segment a new rule; it is built again while the next batch
// folds, or before.
func (f *foldShop) edit(id string, bare bool) (building []string) {
	rule := f.rule(bare)
	if _, err := f.e.svc.Update(id, []byte(rule)); err != nil {
		f.t.Fatal(err)
	}
	f.segs[id] = rule
	f.st.edited++
	f.note("edited %s (bare %v) %s", id, bare, rule)
	if f.rng.IntN(2) == 0 {
		f.built(id)
		return nil
	}
	return []string{id}
}

func (f *foldShop) delete(id string) {
	if err := f.e.svc.Delete(id); err != nil {
		f.t.Fatal(err)
	}
	delete(f.segs, id)
	f.st.deleted++
	f.note("deleted %s", id)
}

// saveUser changes some of a user's attributes through the Users API: a
// user_update event, and subscribe or unsubscribe.
func (f *foldShop) saveUser(email string) {
	rng := f.rng
	patch := model.UserPatch{}
	for range 1 + rng.IntN(3) {
		switch rng.IntN(4) {
		case 0:
			patch["city"] = json.RawMessage(choose(rng, `"Paris"`, `"Lyon"`, `"paris"`, `null`))
		case 1:
			patch["gender"] = json.RawMessage(choose(rng, `"female"`, `"male"`, `null`))
		case 2:
			patch["isSubscribed"] = json.RawMessage(choose(rng, `true`, `false`, `null`))
		default:
			patch["age"] = json.RawMessage(choose(rng, `25`, `30`, `31`, `60`, `null`))
		}
	}
	before, _ := f.fromLog()
	if _, _, _, err := f.users.Save(context.Background(), email, patch, user.Upsert); err != nil {
		f.t.Fatalf("save %s %s: %v", email, patch, err)
	}
	f.e.p.Fold(f.t)
	f.st.userSaves++
	after, _ := f.fromLog()
	for id, in := range after {
		if slices.Contains(in, model.UserProfileID(email)) != slices.Contains(before[id], model.UserProfileID(email)) {
			f.st.attrMoves++
		}
	}
	f.note("saved %s %s", email, patch)
}

// fromLog returns the members of every segment by the log, and every
// shopper.
func (f *foldShop) fromLog() (map[string][]string, []string) {
	ids := make([]string, 0, len(f.segs))
	var rules [][]byte
	for id, rule := range f.segs {
		ids = append(ids, id)
		rules = append(rules, []byte(rule))
	}
	in, err := f.e.svc.MembersFromLog(rules...)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string][]string{}
	for i, id := range ids {
		out[id] = in[i]
	}
	return out, in[len(ids)]
}

// erase erases a user (attributes, profile, events) or an anonymous
// shopper.
func (f *foldShop) erase() {
	ctx := context.Background()
	if f.rng.IntN(2) == 0 {
		email := choose(f.rng, f.emails...)
		if _, err := f.users.Erase(ctx, email); err != nil && !errors.Is(err, user.ErrNotFound) {
			f.t.Fatal(err)
		}
		f.note("erased %s", email)
	} else {
		anon := model.AnonymousProfileID(choose(f.rng, f.anons...))
		if _, err := f.e.p.Runner.Erase(ctx, anon, nil); err != nil {
			f.t.Fatal(err)
		}
		f.note("erased %s", anon)
	}
	f.e.p.Fold(f.t)
	f.st.erasures++
}

// events returns n random events of the shop's shoppers, at most as late
// as now (the tracker clamps later times to the time received): anonymous
// browsing, users' server-side events, logins and events with both an
// anonymous id and an email (merges, and browsers changing hands), bots,
// types no rule counts, and orders, some sent again by the shop.
func (f *foldShop) events(n int) []*model.Event {
	rng, now := f.rng, f.e.clk.Now()
	var out []*model.Event
	for len(out) < n {
		ev := segment.RandomEvent(rng, now)
		if ev.Time.After(now) {
			ev.Time = now
		}
		switch rng.IntN(10) {
		case 0:
			ev.Type, ev.Props, ev.Traffic = choose(rng, "search", "email_open", model.PageView), nil, nil
		case 1:
			ev.Type, ev.Props, ev.Traffic = model.Login, nil, nil
		}
		anon := choose(f.rng, f.anons...)
		switch k := rng.IntN(20); {
		case k < 11:
			ev.AnonymousID = anon
		case k < 15:
			ev.Email = choose(rng, f.emails...)
		case k < 18:
			// a login or an event from a browser that knows the user
			ev.AnonymousID, ev.Email = anon, choose(rng, f.emails...)
			f.st.merges++
		case k == 18:
			ev.AnonymousID, ev.Bot = fmt.Sprint("bot", rng.IntN(2)), true // a crawler
		default:
			ev.AnonymousID, ev.Bot = anon, true // a shopper's browser flagged as a bot
		}
		if ev.Type == model.Login && ev.Email == "" {
			ev.Type = model.PageView
		}
		if ev.AnonymousID != "" {
			ev.SessionID = "s-" + ev.AnonymousID
		}
		if ev.Type != model.Order {
			out = append(out, ev)
			continue
		}
		// order ids are the shop's: one order each, sent again only soon
		// after (a reloaded thank-you page, the shop confirming a browser's
		// claim), within the 30 days the fold keeps orders to recognise
		// them
		f.orders++
		id, _ := json.Marshal(fmt.Sprintf("s%d-o%d", f.seed, f.orders))
		ev.Props["order_id"] = id
		out = append(out, ev)
		if rng.IntN(3) > 0 || now.Sub(ev.Time) > 29*24*time.Hour {
			continue
		}
		again := *ev
		again.Props = map[string]json.RawMessage{}
		for k, v := range ev.Props {
			again.Props[k] = v
		}
		again.Via = choose(rng, model.ViaAPI, model.ViaBrowser)
		again.Props["value"] = json.RawMessage(choose(rng, "10", "49.99", "250"))
		if again.Time = ev.Time.Add(time.Minute); again.Time.After(now) {
			again.Time = now
		}
		out = append(out, &again)
	}
	return out
}

// check compares every segment's members with the log's, its count with
// its members, and the previews with the members.
func (f *foldShop) check() {
	t, e := f.t, f.e
	t.Helper()
	ids := make([]string, 0, len(f.segs))
	for id := range f.segs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	// the fold is done; sweeps of windows that closed run in the
	// background
	deadline := time.Now().Add(5 * time.Second)
	var shoppers []string
	got := map[string][]string{}
	for {
		var want map[string][]string
		want, shoppers = f.fromLog()
		wrong := ""
		for _, id := range ids {
			got[id] = e.members(id)
			count := e.count(id)
			if !slices.Equal(got[id], want[id]) || count != int64(len(got[id])) {
				rule := f.segs[id]
				wrong = fmt.Sprintf("segment %s (bare %v) %s\nkept %d members %v\nlog           %v\nonly kept: %v\nonly log:  %v",
					id, segment.Bare([]byte(rule)), rule, count, got[id], want[id], minus(got[id], want[id]), minus(want[id], got[id]))
				break
			}
		}
		if wrong == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("seed %d, %s: %s", f.seed, f.when, wrong)
		}
		e.p.Runner.Poke()
		time.Sleep(10 * time.Millisecond)
		e.p.Fold(t)
	}
	for _, id := range ids {
		rule, got := f.segs[id], got[id]
		for name, preview := range map[string]func(context.Context, []byte) (segment.PreviewResult, error){
			"preview from the log": e.svc.PreviewFromLog, "preview": e.svc.Preview,
		} {
			pre, err := preview(context.Background(), []byte(rule))
			if err != nil {
				t.Fatal(err)
			}
			if pre.Count != int64(len(got)) || pre.Profiles != int64(len(shoppers)) || !slices.Equal(profiles(pre.Sample), got[:min(len(got), 20)]) {
				t.Fatalf("seed %d, %s: segment %s %s\nkept %d of %d %v\n%s %d of %d %v", f.seed, f.when, id, rule,
					len(got), len(shoppers), got, name, pre.Count, pre.Profiles, profiles(pre.Sample))
			}
		}
		f.st.checks++
		f.st.moves += len(minus(got, f.last[id])) + len(minus(f.last[id], got))
		f.last[id] = got
		if len(got) > 0 && len(got) < len(shoppers) {
			f.st.selective++
		}
	}
	// shoppers whose events the fold skipped: no record
	if err := e.st.Read(func(tx *store.Tx) error {
		ps, err := tx.ProfileIDsAfter("", 1000)
		for _, p := range ps {
			if !strings.HasPrefix(p, "a:bot") && !e.svc.HasRecord(p) {
				f.st.unrecorded++
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func bots(evs []*model.Event) int {
	n := 0
	for _, ev := range evs {
		if ev.Bot {
			n++
		}
	}
	return n
}

// minus returns the elements of a not in b.
func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

func choose[T any](rng *rand.Rand, vs ...T) T { return vs[rng.IntN(len(vs))] }
