package segment

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
)

// RandomRule returns a random valid rule over the events RandomEvent
// makes, as JSON: all, any and not nested up to 3 deep, event conditions
// on every type with where on their props and traffic fields (every op),
// counts with every op, windows (none, within, between), orders and spent
// with and without a currency, attributes. Windows and dates are around
// now; the package's external tests use it too.
func RandomRule(rng *rand.Rand, now time.Time) string {
	var node func(depth int) string
	node = func(depth int) string {
		k := rng.IntN(10)
		if depth >= 3 && k < 3 {
			k += 3
		}
		switch k {
		case 0, 1:
			return fmt.Sprintf(`{"%s":[%s]}`, pick(rng, "all", "any"), list(rng, 1+rng.IntN(3), func() string { return node(depth + 1) }))
		case 2:
			return fmt.Sprintf(`{"not":%s}`, node(depth+1))
		case 3, 4, 5:
			return randomEventCond(rng, now)
		case 6:
			return fmt.Sprintf(`{"orders":{"op":"%s","value":%d%s}%s}`, pick(rng, countOps...), rng.IntN(4),
				pick(rng, "", "", `,"currency":"EUR"`, `,"currency":"usd"`, `,"currency":"JPY"`), randomWindow(rng, now))
		case 7:
			return fmt.Sprintf(`{"spent":{"op":"%s","value":%s,"currency":"%s"}%s}`, pick(rng, countOps...),
				pick(rng, "0", "30", "50", "100", "150.5", "1000", "1e12"), pick(rng, "EUR", "USD", "JPY"), randomWindow(rng, now))
		case 8:
			if rng.IntN(2) == 0 {
				return node(depth)
			}
		}
		return pick(rng,
			`{"attribute":"email","op":"exists"}`, `{"attribute":"email","op":"exists","value":false}`,
			`{"attribute":"city","value":"Paris"}`, `{"attribute":"city","op":"starts_with","value":"pa"}`,
			`{"attribute":"gender","op":"ne","value":"female"}`, `{"attribute":"isSubscribed","value":true}`,
			`{"attribute":"age","op":"gt","value":30}`)
	}
	return fmt.Sprintf(`{"name":"random","match":"%s","conditions":[%s]}`, pick(rng, "all", "any"),
		list(rng, 1+rng.IntN(3), func() string { return node(1) }))
}

func randomEventCond(rng *rand.Rand, now time.Time) string {
	typ := pick(rng, model.VisitFromReferrer, model.AddToCart, model.Order, model.PageView, "wishlist_add", "Order Completed")
	var where []string
	for range rng.IntN(3) {
		field := pick(rng, "source", "channel", "medium", "category", "product_id", "currency", "campaign")
		var value string
		switch op := pick(rng, predOps...); op {
		case "exists":
			value = pick(rng, "", `,"value":true`, `,"value":false`)
			where = append(where, fmt.Sprintf(`{"prop":"%s","op":"exists"%s}`, field, value))
			continue
		case "in":
			value = fmt.Sprintf(`["%s",%s]`, randomValue(rng), pick(rng, "1000", `"c1"`, "true"))
			where = append(where, fmt.Sprintf(`{"prop":"%s","op":"in","value":%s}`, field, value))
			continue
		case "contains", "starts_with":
			where = append(where, fmt.Sprintf(`{"prop":"%s","op":"%s","value":"%s"}`, field, op, pick(rng, "face", "c", "G", "Pa", "10")))
			continue
		case "gt", "lt":
			where = append(where, fmt.Sprintf(`{"prop":"%s","op":"%s","value":%s}`, field, op, pick(rng, "1001", `"c1"`, `"m"`, "0")))
			continue
		default:
			where = append(where, fmt.Sprintf(`{"prop":"%s","op":"%s","value":%s}`, field, op, pick(rng, `"`+randomValue(rng)+`"`, "1002", `"1003"`)))
		}
	}
	count := ""
	if rng.IntN(2) == 0 {
		count = fmt.Sprintf(`,"count":{"op":"%s","value":%d}`, pick(rng, countOps...), rng.IntN(4))
	}
	return fmt.Sprintf(`{"event":"%s","where":[%s]%s%s}`, typ, strings.Join(where, ","), count, randomWindow(rng, now))
}

func randomValue(rng *rand.Rand) string {
	return pick(rng, "facebook", "google", "Paid", "Organic Social", "cpc", "c0", "c1", "c2", "EUR", "USD", "spring")
}

func randomWindow(rng *rand.Rand, now time.Time) string {
	switch rng.IntN(4) {
	case 0:
		return ""
	case 1, 2:
		return fmt.Sprintf(`,"within":"%s"`, pick(rng, "1h", "24h", "720h", "30d", "2160h", "100d", "1s"))
	}
	day := func(back int) string { return now.AddDate(0, 0, -back).Format(time.DateOnly) }
	from := rng.IntN(120)
	to := rng.IntN(from + 1)
	if rng.IntN(3) == 0 {
		// instants, to the millisecond of events at the window's edges
		return fmt.Sprintf(`,"between":["%s","%s"]`, now.Add(-720*time.Hour).Format(time.RFC3339), now.Format(time.RFC3339))
	}
	return fmt.Sprintf(`,"between":["%s","%s"]`, day(from), day(to))
}

func pick[T any](rng *rand.Rand, vs ...T) T { return vs[rng.IntN(len(vs))] }

func list(rng *rand.Rand, n int, f func() string) string {
	var out []string
	for range n {
		out = append(out, f())
	}
	return strings.Join(out, ",")
}

// RandomEvent returns a random event of the kinds RandomRule tests, at a
// time near now: often exactly at a window's edge (30 or 90 days ago, a
// millisecond either side), sometimes in the future; orders with an id of
// a few (so that some are sent again, by the browser or the shop), in
// EUR, USD, eur, no currency or JPY, of any value up to one that
// saturates the sums.
func RandomEvent(rng *rand.Rand, now time.Time) *model.Event {
	str := func(s string) json.RawMessage { j, _ := json.Marshal(s); return j }
	at := now.Add(-time.Duration(rng.Int64N(int64(130 * 24 * time.Hour)))).Truncate(time.Millisecond)
	edge := time.Duration(rng.IntN(3)-1) * time.Millisecond
	switch rng.IntN(8) {
	case 0:
		at = now.Add(-720 * time.Hour).Add(edge)
	case 1:
		at = now.Add(-2160 * time.Hour).Add(edge)
	case 2:
		at = now.Add(time.Duration(rng.IntN(3)-1) * time.Hour)
	case 3:
		// the ends of between's instants (to the second) and days
		at = pick(rng, now.Truncate(time.Second), now.Add(-720*time.Hour).Truncate(time.Second),
			now.Truncate(24*time.Hour).AddDate(0, 0, -rng.IntN(120))).Add(edge)
	}
	ev := &model.Event{Time: at, Via: pick(rng, model.ViaAPI, model.ViaBrowser)}
	switch rng.IntN(6) {
	case 0, 1:
		src := pick(rng, "facebook", "google", "newsletter")
		ch := pick(rng, "Paid", "Organic Social", "Email")
		ev.Type = model.VisitFromReferrer
		ev.Traffic = &model.Traffic{Source: src, Medium: pick(rng, "cpc", "social", ""), Channel: ch, Campaign: pick(rng, "", "spring")}
		ev.Props = map[string]json.RawMessage{"source": str(src), "channel": str(ch)}
	case 2:
		ev.Type = model.AddToCart
		ev.Props = map[string]json.RawMessage{"product_id": json.RawMessage(fmt.Sprint(1000 + rng.IntN(5))), "category": str(fmt.Sprint("c", rng.IntN(3)))}
	case 3:
		ev.Type = model.Order
		value := pick(rng, "0", "12.5", "30", "49.99", "100", "150.5", "1000", "92233720368547758")
		ev.Props = map[string]json.RawMessage{"order_id": str(fmt.Sprint("o", rng.IntN(6))), "value": json.RawMessage(value)}
		if cur := pick(rng, "EUR", "EUR", "USD", "eur", "", "JPY"); cur != "" {
			ev.Props["currency"] = str(cur)
		}
	case 4:
		ev.Type = "wishlist_add"
		ev.Props = map[string]json.RawMessage{"product_id": json.RawMessage(fmt.Sprint(1000 + rng.IntN(3)))}
	default:
		ev.Type = model.PageView
	}
	return ev
}

// randomIndex fills an index with n profiles' random events, added in
// runs of a profile's events broken by others' (as folds append them),
// with merges of one profile into another (both count no more; the merged
// profile's events, its own and the other's, are read again), and users
// for some profiles' emails.
func randomIndex(rng *rand.Rand, now time.Time, n int) (*index, map[string]*model.User) {
	x := newIndex(0)
	ids := make([]string, n)
	users := map[string]*model.User{}
	for i := range ids {
		if i%2 == 0 {
			email := fmt.Sprintf("r%d@x.com", i)
			ids[i] = model.UserProfileID(email)
			if i%4 == 0 {
				yes := i%8 == 0
				users[email] = &model.User{Email: email, City: pick(rng, "Paris", "Lyon", "paris"), Gender: pick(rng, "female", "male", ""),
					IsSubscribed: &yes, Custom: map[string]any{"age": float64(rng.IntN(60))}}
			}
		} else {
			ids[i] = model.AnonymousProfileID(fmt.Sprint("r", i))
		}
	}
	evs := map[string][]*model.Event{}
	for range n * 8 {
		p := ids[rng.IntN(n)]
		for range 1 + rng.IntN(4) {
			ev := RandomEvent(rng, now)
			evs[p] = append(evs[p], ev)
			x.add(p, ev)
		}
		if rng.IntN(30) == 0 {
			from, to := ids[rng.IntN(n)], ids[rng.IntN(n)]
			if from == to {
				continue
			}
			evs[to] = append(evs[to], evs[from]...)
			delete(evs, from)
			var read []pev
			for _, ev := range evs[to] {
				read = append(read, pev{to, ev})
			}
			x.merge(from, to, read)
		}
	}
	x.done = true
	return x, users
}

// The preview's flat counts select the same profiles as a fact per
// profile did (previewIndexedOld: what the log's preview and the saved
// segments count, fact by fact) for random rules over random indexes:
// every op, window (at its edges too), between, nesting, not, spent and
// orders in and across currencies, orders sent again, merged profiles,
// attributes.
func TestPreviewCountsAsFacts(t *testing.T) {
	s := &Service{}
	rules, matched := 0, 0
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
		x, users := randomIndex(rng, now, 20+rng.IntN(100))
		user := func(email string) (*model.User, error) { return users[email], nil }
		for range 60 {
			raw := RandomRule(rng, now)
			r, err := Parse([]byte(raw))
			if err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
			sn, ok := x.snapshot(r)
			if !ok {
				continue
			}
			want, err := s.previewIndexedOld(r, sn, now.UnixMilli(), user)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.previewIndexed(r, sn, now.UnixMilli(), user)
			if err != nil {
				t.Fatal(err)
			}
			rules++
			if want.Count > 0 && want.Count < want.Profiles {
				matched++
			}
			if got.Count != want.Count || got.Profiles != want.Profiles || !slices.Equal(got.Sample, want.Sample) {
				t.Fatalf("seed %d: %s\nflat counts: %d of %d %v\nfacts:       %d of %d %v", seed, raw,
					got.Count, got.Profiles, got.Sample, want.Count, want.Profiles, want.Sample)
			}
		}
	}
	// the test is as good as its rules: most indexed, many selecting
	// some profiles but not all
	if rules < 1500 || matched < rules/4 {
		t.Errorf("%d rules compared, %d selecting some but not all", rules, matched)
	}
	t.Logf("%d rules compared, %d selecting some but not all", rules, matched)
}

// A failure to read a user's attributes ends the preview with the error.
func TestPreviewIndexedUserError(t *testing.T) {
	now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	x := newIndex(0)
	x.add(model.UserProfileID("a@x.com"), &model.Event{Type: model.PageView, Time: now})
	x.done = true
	r, err := Parse([]byte(`{"name":"x","conditions":[{"event":"page_view"},{"attribute":"city","value":"Paris"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	sn, _ := x.snapshot(r)
	boom := errors.New("boom")
	if _, err := (&Service{}).previewIndexed(r, sn, now.UnixMilli(), func(string) (*model.User, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
}
