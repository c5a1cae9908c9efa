package attribution

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Name is the attribution projection's name.
const Name = "attribution"

// MaxLookback is the longest lookback a report may ask for: orders keep the
// touchpoints of this long before them.
const MaxLookback = 90 * 24 * time.Hour

// maxJourney bounds the touches a non-converting journey remembers.
const maxJourney = 32

// maxOnsite bounds the campaign impressions a shopper's record keeps.
const maxOnsite = 64

var space = store.ProjectionSpace(Name)

// What the projection keeps, in its space:
//
//	day/<YYYY-MM-DD>/<order key>  the order with its path (Stored), by the day of the order (UTC)
//	order/<order key>             the day the order is kept under
//	profile/<profile id>          the profile's touches of the last 90 days, its orders and its open journey (shopper)
//	nc/<YYYY-MM-DD>               transitions of journeys that have not converted, by the day of their last touch (tally)
//	sum/<YYYY-MM-DD>              the day's orders summed per currency, with the touches of the default lookback (daySummary)
//	lookback                      the lookback of every sum/ (time.Duration)
//
// An order's key is its order_id, or "event:" and the event's id when it
// has none. The fold reads and writes single keys only: an iterator in a
// Badger transaction sorts all its pending writes, which made folding
// runs of thousands of events crawl.

// Stored is an order as the projection keeps it.
type Stored struct {
	Order
	Key      string `json:"key"`
	Profile  string `json:"profile"`
	Verified bool   `json:"verified,omitempty"` // confirmed by the shop through the API
}

// shopper is what the projection keeps about a profile.
type shopper struct {
	Touches []Touch    `json:"touches,omitempty"` // oldest first, the last MaxLookback
	Onsite  []Touch    `json:"onsite,omitempty"`  // onsite campaign impressions, oldest first, the last MaxLookback (at most maxOnsite)
	Orders  []orderRef `json:"orders,omitempty"`
	Journey journey    `json:"journey,omitzero"`
}

type orderRef struct {
	Key  string    `json:"k"`
	Time time.Time `json:"t"`
}

// journey is a profile's touches since its last order: a path that has not
// converted (yet).
type journey struct {
	Channels []string  `json:"c,omitempty"`
	Last     time.Time `json:"t,omitzero"`
}

// tally counts the transitions of non-converting journeys: "from\x1fto".
type tally map[string]float64

// sep separates the states of a tally's key.
const sep = "\x1f"

func (j journey) transitions(add func(from, to string)) {
	prev := StartState
	for _, c := range j.Channels {
		add(prev, c)
		prev = c
	}
	if prev != StartState {
		add(prev, NullState)
	}
}

// daySummary is a day's orders summed with the touches of one lookback,
// by currency and whether the shop confirmed them (group).
type daySummary struct {
	Lookback time.Duration       `json:"lookback"`
	Groups   map[string]*Summary `json:"groups,omitempty"`
}

// group is the key of an order's summary in its day's.
func group(o *Stored) string {
	if o.Verified {
		return o.Currency + "/confirmed"
	}
	return o.Currency + "/unconfirmed"
}

// Projection returns the attribution projection: every order (once per
// order_id, the shop's confirmation superseding a browser's claim) with
// the touchpoints of the 90 days before it, kept current as late events
// and identity merges change paths; the journeys that did not convert, for
// the data-driven model; and each day's orders summed with the touches of
// lookback (the reports' default), which reports of that lookback read
// instead of every order. When the default lookback changes, Resummarise
// rewrites the summaries from the orders before the pipeline starts.
func Projection(lookback time.Duration) *project.Projection {
	return &project.Projection{
		Name:    Name,
		Version: 3,
		Owns:    []store.Space{space},
		Fold:    func(run *project.Run) error { return fold(run, lookback) },
		Move:    func(tx *store.Tx, from, to string) error { return move(tx, lookback, from, to) },
		Erase:   func(tx *store.Tx, profile string) error { return erase(tx, lookback, profile) },
	}
}

// folding is what one run changed, written at its end.
type folding struct {
	tx       *store.Tx
	lookback time.Duration // of the daily summaries
	shoppers map[string]*shopper
	tallies  map[string]tally
	days     map[string]*daySummary
	deleted  []string // shoppers to delete
}

func newFolding(tx *store.Tx, lookback time.Duration) *folding {
	return &folding{tx: tx, lookback: lookback, shoppers: map[string]*shopper{}, tallies: map[string]tally{}, days: map[string]*daySummary{}}
}

func fold(run *project.Run, lookback time.Duration) error {
	f := newFolding(run.Tx, lookback)
	for _, ev := range run.Events {
		if ev.ProfileID == "" || ev.Bot {
			continue
		}
		switch {
		case ev.Type == model.Order:
			if err := f.order(ev); err != nil {
				return err
			}
		case ev.Type == model.CampaignImpression:
			var id string
			if json.Unmarshal(ev.Props["campaign_id"], &id) != nil || id == "" || len(id) > 64 {
				continue
			}
			if err := f.impression(ev.ProfileID, Touch{Time: ev.Time, Channel: "Onsite", Campaign: id}); err != nil {
				return err
			}
		case ev.Touch != nil:
			if err := f.touch(ev.ProfileID, Touch{Time: ev.Time, Channel: ev.Touch.Channel,
				Source: ev.Touch.Source, Medium: ev.Touch.Medium, Campaign: ev.Touch.Campaign}); err != nil {
				return err
			}
		}
	}
	return f.write()
}

func (f *folding) shopper(profile string) (*shopper, error) {
	if s, ok := f.shoppers[profile]; ok {
		return s, nil
	}
	s := &shopper{}
	if err := f.tx.Get(space, "profile/"+profile, s); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	f.shoppers[profile] = s
	return s, nil
}

func (f *folding) tally(day string) (tally, error) {
	if t, ok := f.tallies[day]; ok {
		return t, nil
	}
	t := tally{}
	if err := f.tx.Get(space, "nc/"+day, &t); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	f.tallies[day] = t
	return t, nil
}

// count adds (sign 1) or removes (-1) a journey's transitions from the
// tally of the day of its last touch.
func (f *folding) count(j journey, sign float64) error {
	if len(j.Channels) == 0 {
		return nil
	}
	t, err := f.tally(j.Last.UTC().Format(time.DateOnly))
	if err != nil {
		return err
	}
	j.transitions(func(from, to string) {
		k := from + sep + to
		if t[k] += sign; t[k] <= 0 {
			delete(t, k)
		}
	})
	return nil
}

// touch adds a touchpoint to a profile and its journey; a late touch
// (before an order of the profile already kept) re-paths the orders it may
// be on.
func (f *folding) touch(profile string, t Touch) error {
	s, err := f.shopper(profile)
	if err != nil {
		return err
	}
	s.Touches = insertTouch(s.Touches, t)
	s.trim()
	if err := f.count(s.Journey, -1); err != nil {
		return err
	}
	s.Journey.Channels = append(s.Journey.Channels, t.Channel)
	if len(s.Journey.Channels) > maxJourney {
		s.Journey.Channels = s.Journey.Channels[len(s.Journey.Channels)-maxJourney:]
	}
	if t.Time.After(s.Journey.Last) {
		s.Journey.Last = t.Time
	}
	if err := f.count(s.Journey, 1); err != nil {
		return err
	}
	if len(s.Orders) > 0 && t.Time.Before(s.Orders[len(s.Orders)-1].Time) {
		return f.repath(profile, s, t.Time, t.Time.Add(MaxLookback))
	}
	return nil
}

// impression adds an onsite campaign's impression to a profile; a late one
// re-paths the orders it may be before.
func (f *folding) impression(profile string, t Touch) error {
	s, err := f.shopper(profile)
	if err != nil {
		return err
	}
	s.Onsite = insertTouch(s.Onsite, t)
	s.trim()
	if len(s.Orders) > 0 && t.Time.Before(s.Orders[len(s.Orders)-1].Time) {
		return f.repath(profile, s, t.Time, t.Time.Add(MaxLookback))
	}
	return nil
}

// insertTouch inserts t in touches, oldest first.
func insertTouch(touches []Touch, t Touch) []Touch {
	i, _ := slices.BinarySearchFunc(touches, t.Time, func(x Touch, at time.Time) int { return x.Time.Compare(at) })
	return slices.Insert(touches, i, t)
}

// trim forgets touches too old to be on the path of any order to come.
func (s *shopper) trim() {
	s.Touches = recent(s.Touches, len(s.Touches))
	s.Onsite = recent(s.Onsite, maxOnsite)
}

// recent returns the newest of touches (oldest first): at most max, none
// older than MaxLookback before the newest.
func recent(touches []Touch, max int) []Touch {
	n := len(touches)
	if n == 0 {
		return touches
	}
	from := touches[n-1].Time.Add(-MaxLookback)
	i := n - min(n, max)
	for i < n-1 && touches[i].Time.Before(from) {
		i++
	}
	return touches[i:]
}

// order keeps an order with its path, and closes the profile's journey.
func (f *folding) order(ev project.Event) error {
	id, rec := ev.Order()
	key := id
	if key == "" {
		key = "event:" + ev.ID
	}
	o := Stored{Key: key, Profile: ev.ProfileID, Verified: rec.Verified,
		Order: Order{ID: id, Time: ev.Time, Currency: rec.Currency, Minor: rec.Minor}}
	var day string
	switch err := f.tx.Get(space, "order/"+key, &day); {
	case err == nil:
		prev, err := f.load(day, key)
		if err != nil {
			return err
		}
		if prev.Verified && !o.Verified {
			return nil // a browser's claim after the shop's confirmation
		}
		if err := f.drop(prev); err != nil {
			return err
		}
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	s, err := f.shopper(ev.ProfileID)
	if err != nil {
		return err
	}
	if err := f.put(&o, s); err != nil {
		return err
	}
	i, _ := slices.BinarySearchFunc(s.Orders, o.Time, func(x orderRef, at time.Time) int { return x.Time.Compare(at) })
	s.Orders = slices.Insert(s.Orders, i, orderRef{key, o.Time})
	if err := f.count(s.Journey, -1); err != nil {
		return err
	}
	s.Journey = journey{}
	return nil
}

// dayOf is the day an order is kept under: its UTC date.
func dayOf(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// load reads an order kept under day.
func (f *folding) load(day, key string) (Stored, error) {
	var o Stored
	err := f.tx.Get(space, "day/"+day+"/"+key, &o)
	return o, err
}

// put sets an order's path from its shopper's touches, keeps it and adds
// it to its day's summary.
func (f *folding) put(o *Stored, s *shopper) error {
	from := o.Time.Add(-MaxLookback)
	o.Path = o.Path[:0]
	for _, t := range s.Touches {
		if !t.Time.Before(from) && !t.Time.After(o.Time) {
			o.Path = append(o.Path, t)
		}
	}
	o.Onsite = o.Onsite[:0]
	for _, t := range s.Onsite {
		if !t.Time.Before(from) && !t.Time.After(o.Time) {
			o.Onsite = append(o.Onsite, t)
		}
	}
	day := dayOf(o.Time)
	if err := f.tx.Set(space, "day/"+day+"/"+o.Key, o); err != nil {
		return err
	}
	if err := f.tx.Set(space, "order/"+o.Key, day); err != nil {
		return err
	}
	return f.summarise(o, 1)
}

// drop forgets a kept order (superseded or erased).
func (f *folding) drop(o Stored) error {
	day := dayOf(o.Time)
	if err := f.tx.Delete(space, "day/"+day+"/"+o.Key); err != nil {
		return err
	}
	if err := f.tx.Delete(space, "order/"+o.Key); err != nil {
		return err
	}
	if err := f.summarise(&o, -1); err != nil {
		return err
	}
	s, err := f.shopper(o.Profile)
	if err != nil {
		return err
	}
	s.Orders = slices.DeleteFunc(s.Orders, func(r orderRef) bool { return r.Key == o.Key })
	return nil
}

// summarise adds an order to its day's summary (sign 1) or takes it out
// (-1).
func (f *folding) summarise(o *Stored, sign int64) error {
	day := dayOf(o.Time)
	d := f.days[day]
	if d == nil {
		d = &daySummary{}
		if err := f.tx.Get(space, "sum/"+day, d); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if len(d.Groups) > 0 && d.Lookback != f.lookback {
			return fmt.Errorf("attribution: the summary of %s is for a lookback of %s, not %s: Resummarise first", day, d.Lookback, f.lookback)
		}
		if d.Groups == nil {
			d.Groups = map[string]*Summary{}
		}
		d.Lookback = f.lookback
		f.days[day] = d
	}
	g := d.Groups[group(o)]
	if g == nil {
		g = &Summary{}
		d.Groups[group(o)] = g
	}
	g.Add(o.Order, f.lookback, sign)
	if g.empty() {
		delete(d.Groups, group(o))
	}
	return nil
}

// repath recomputes the paths of a shopper's orders from from to to.
func (f *folding) repath(profile string, s *shopper, from, to time.Time) error {
	for _, ref := range s.Orders {
		if ref.Time.Before(from) || ref.Time.After(to) {
			continue
		}
		o, err := f.load(dayOf(ref.Time), ref.Key)
		if err != nil {
			return err
		}
		if err := f.summarise(&o, -1); err != nil {
			return err
		}
		o.Profile = profile
		if err := f.put(&o, s); err != nil {
			return err
		}
	}
	return nil
}

func (f *folding) write() error {
	for p, s := range f.shoppers {
		var err error
		if slices.Contains(f.deleted, p) {
			err = f.tx.Delete(space, "profile/"+p)
		} else {
			err = f.tx.Set(space, "profile/"+p, s)
		}
		if err != nil {
			return err
		}
	}
	for day, t := range f.tallies {
		if err := f.tx.Set(space, "nc/"+day, t); err != nil {
			return err
		}
	}
	if len(f.days) > 0 {
		if err := f.tx.Set(space, "lookback", f.lookback); err != nil {
			return err
		}
	}
	for day, d := range f.days {
		var err error
		if len(d.Groups) == 0 {
			err = f.tx.Delete(space, "sum/"+day)
		} else {
			err = f.tx.Set(space, "sum/"+day, d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// move gives profile to the touches and orders of profile from (the
// identity stage merged them) and re-paths every order of to, whose paths
// now hold the touches of both; from's open journey leaves the tally.
func move(tx *store.Tx, lookback time.Duration, from, to string) error {
	f := newFolding(tx, lookback)
	src, err := f.shopper(from)
	if err != nil {
		return err
	}
	dst, err := f.shopper(to)
	if err != nil {
		return err
	}
	if len(src.Touches) == 0 && len(src.Orders) == 0 && len(src.Journey.Channels) == 0 && len(src.Onsite) == 0 {
		return nil
	}
	dst.Touches = append(dst.Touches, src.Touches...)
	slices.SortStableFunc(dst.Touches, func(a, b Touch) int { return a.Time.Compare(b.Time) })
	dst.Onsite = append(dst.Onsite, src.Onsite...)
	slices.SortStableFunc(dst.Onsite, func(a, b Touch) int { return a.Time.Compare(b.Time) })
	dst.trim()
	dst.Orders = append(dst.Orders, src.Orders...)
	slices.SortStableFunc(dst.Orders, func(a, b orderRef) int { return a.Time.Compare(b.Time) })
	if err := f.count(src.Journey, -1); err != nil {
		return err
	}
	f.deleted = append(f.deleted, from)
	if err := f.repath(to, dst, time.Time{}, time.Unix(1<<40, 0)); err != nil {
		return err
	}
	return f.write()
}

// erase deletes a profile's orders, touches and journey.
func erase(tx *store.Tx, lookback time.Duration, profile string) error {
	f := newFolding(tx, lookback)
	s, err := f.shopper(profile)
	if err != nil {
		return err
	}
	for _, ref := range slices.Clone(s.Orders) {
		o, err := f.load(dayOf(ref.Time), ref.Key)
		if err != nil {
			return err
		}
		if err := f.drop(o); err != nil {
			return err
		}
	}
	if err := f.count(s.Journey, -1); err != nil {
		return err
	}
	f.deleted = append(f.deleted, profile)
	return f.write()
}

// Resummarise rewrites the daily summaries from the orders kept when they
// are for another lookback than this one (the default changed), and
// returns how many days it wrote: seconds for a year of orders, where
// folding the log again would take minutes. The projection must not fold
// meanwhile: call it before the pipeline starts. Cut short, it starts over
// next time, since the lookback it is for is written last.
//
// A crash half-way leaves days of both lookbacks: reports read the orders
// of a day summarised for another lookback than theirs, and the fold
// refuses to add to one, until Resummarise ran to the end.
func Resummarise(st *store.Store, lookback time.Duration) (int, error) {
	var kept time.Duration
	if err := st.Read(func(tx *store.Tx) error { return tx.Get(space, "lookback", &kept) }); errors.Is(err, store.ErrNotFound) {
		kept = 0
	} else if err != nil {
		return 0, err
	}
	if kept == lookback {
		return 0, nil
	}
	// forget the old lookback first: cut short, the next start redoes it
	// whatever lookback it is for
	if err := st.Project(func(tx *store.Tx) error { return tx.Delete(space, "lookback") }); err != nil {
		return 0, err
	}
	days := map[string]*daySummary{}
	var stale []string
	err := st.Read(func(tx *store.Tx) error {
		if err := tx.Scan(space, "sum/", func(k string, _ json.RawMessage) (bool, error) {
			stale = append(stale, strings.TrimPrefix(k, "sum/"))
			return true, nil
		}); err != nil {
			return err
		}
		return tx.Scan(space, "day/", func(_ string, v json.RawMessage) (bool, error) {
			var o Stored
			if err := json.Unmarshal(v, &o); err != nil {
				return false, err
			}
			d := days[dayOf(o.Time)]
			if d == nil {
				d = &daySummary{Lookback: lookback, Groups: map[string]*Summary{}}
				days[dayOf(o.Time)] = d
			}
			g := d.Groups[group(&o)]
			if g == nil {
				g = &Summary{}
				d.Groups[group(&o)] = g
			}
			g.Add(o.Order, lookback, 1)
			return true, nil
		})
	})
	if err != nil {
		return 0, err
	}
	// a few days per transaction: a day's summary can be large
	var batch []string
	flush := func(last bool) error {
		err := st.Project(func(tx *store.Tx) error {
			for _, day := range batch {
				var err error
				if d := days[day]; d != nil {
					err = tx.Set(space, "sum/"+day, d)
				} else {
					err = tx.Delete(space, "sum/"+day)
				}
				if err != nil {
					return err
				}
			}
			if last {
				return tx.Set(space, "lookback", lookback)
			}
			return nil
		})
		batch = batch[:0]
		return err
	}
	for day := range days {
		stale = append(stale, day)
	}
	slices.Sort(stale)
	stale = slices.Compact(stale)
	for _, day := range stale {
		if batch = append(batch, day); len(batch) == 30 {
			if err := flush(false); err != nil {
				return 0, err
			}
		}
	}
	if err := flush(true); err != nil {
		return 0, err
	}
	return len(days), nil
}
