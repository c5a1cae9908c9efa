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

var space = store.ProjectionSpace(Name)

// What the projection keeps, in its space:
//
//	day/<YYYY-MM-DD>/<order key>   the order with its path (Stored), by the day of the order (UTC)
//	order/<order key>              the day the order is kept under
//	profile/<profile id>\0<order key>  the day, for the orders of a profile
//	journey/<profile id>           the profile's touches since its last order (journey)
//	nc/<YYYY-MM-DD>                transitions of journeys that have not converted, by the day of their last touch (tally)
//
// An order's key is its order_id, or "event:" and the event's id when it
// has none.

// Stored is an order as the projection keeps it.
type Stored struct {
	Order
	Key      string `json:"key"`
	Profile  string `json:"profile"`
	Verified bool   `json:"verified,omitempty"` // confirmed by the shop through the API
}

type journey struct {
	Channels []string  `json:"c,omitempty"`
	Last     time.Time `json:"t,omitzero"`
	Ordered  time.Time `json:"o,omitzero"` // the time of the profile's latest order
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

// Projection returns the attribution projection: every order (once per
// order_id, the shop's confirmation superseding a browser's claim) with
// the touchpoints of the 90 days before it, kept current as late events
// and identity merges change paths; and the journeys that did not convert,
// for the data-driven model.
func Projection() *project.Projection {
	return &project.Projection{
		Name:    Name,
		Version: 1,
		Owns:    []store.Space{space},
		Fold:    fold,
		Move:    move,
		Erase:   erase,
	}
}

// folding is what one run changed, written at its end.
type folding struct {
	tx       *store.Tx
	journeys map[string]*journey
	tallies  map[string]tally
}

func fold(run *project.Run) error {
	f := &folding{tx: run.Tx, journeys: map[string]*journey{}, tallies: map[string]tally{}}
	for _, ev := range run.Events {
		if ev.ProfileID == "" || ev.Bot {
			continue
		}
		switch {
		case ev.Type == model.Order:
			if err := f.order(ev); err != nil {
				return err
			}
		case ev.Touch != nil:
			if err := f.touch(ev); err != nil {
				return err
			}
		}
	}
	return f.write()
}

func (f *folding) journey(profile string) (*journey, error) {
	if j, ok := f.journeys[profile]; ok {
		return j, nil
	}
	j := &journey{}
	if err := f.tx.Get(space, "journey/"+profile, j); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	f.journeys[profile] = j
	return j, nil
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
func (f *folding) count(j *journey, sign float64) error {
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

// touch extends the profile's journey; a late touch (before an order of the
// profile already kept) re-attributes the orders it may be on.
func (f *folding) touch(ev project.Event) error {
	j, err := f.journey(ev.ProfileID)
	if err != nil {
		return err
	}
	if err := f.count(j, -1); err != nil {
		return err
	}
	j.Channels = append(j.Channels, ev.Touch.Channel)
	if len(j.Channels) > maxJourney {
		j.Channels = j.Channels[len(j.Channels)-maxJourney:]
	}
	if ev.Time.After(j.Last) {
		j.Last = ev.Time
	}
	if err := f.count(j, 1); err != nil {
		return err
	}
	if ev.Time.Before(j.Ordered) {
		return f.repath(ev.ProfileID, ev.Time, ev.Time.Add(MaxLookback))
	}
	return nil
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
		var prev Stored
		if err := f.tx.Get(space, "day/"+day+"/"+key, &prev); err != nil {
			return err
		}
		if prev.Verified && !o.Verified {
			return nil // a browser's claim after the shop's confirmation
		}
		if err := f.drop(prev, day); err != nil {
			return err
		}
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	if err := f.put(&o); err != nil {
		return err
	}
	j, err := f.journey(ev.ProfileID)
	if err != nil {
		return err
	}
	if err := f.count(j, -1); err != nil {
		return err
	}
	*j = journey{Ordered: maxTime(j.Ordered, ev.Time)}
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// put computes an order's path and keeps it.
func (f *folding) put(o *Stored) error {
	tps, err := f.tx.TouchpointsBetween(o.Profile, o.Time.Add(-MaxLookback), o.Time)
	if err != nil {
		return err
	}
	o.Path = o.Path[:0]
	for _, tp := range tps {
		o.Path = append(o.Path, Touch{Time: tp.Time, Channel: tp.Channel, Source: tp.Source, Medium: tp.Medium, Campaign: tp.Campaign})
	}
	day := o.Time.UTC().Format(time.DateOnly)
	if err := f.tx.Set(space, "day/"+day+"/"+o.Key, o); err != nil {
		return err
	}
	if err := f.tx.Set(space, "order/"+o.Key, day); err != nil {
		return err
	}
	return f.tx.Set(space, profileKey(o.Profile, o.Key), day)
}

func (f *folding) drop(o Stored, day string) error {
	if err := f.tx.Delete(space, "day/"+day+"/"+o.Key); err != nil {
		return err
	}
	if err := f.tx.Delete(space, "order/"+o.Key); err != nil {
		return err
	}
	return f.tx.Delete(space, profileKey(o.Profile, o.Key))
}

func profileKey(profile, key string) string { return "profile/" + profile + "\x00" + key }

// orders returns the orders kept for a profile.
func orders(tx *store.Tx, profile string) ([]Stored, error) {
	var out []Stored
	err := tx.Scan(space, "profile/"+profile+"\x00", func(k string, v json.RawMessage) (bool, error) {
		var day string
		if err := json.Unmarshal(v, &day); err != nil {
			return false, err
		}
		key := k[strings.IndexByte(k, 0)+1:]
		var o Stored
		if err := tx.Get(space, "day/"+day+"/"+key, &o); err != nil {
			return false, fmt.Errorf("attribution: order %q: %w", key, err)
		}
		out = append(out, o)
		return true, nil
	})
	return out, err
}

// repath recomputes the paths of a profile's orders from from to to: a
// touchpoint arrived late, or two profiles merged.
func (f *folding) repath(profile string, from, to time.Time) error {
	os, err := orders(f.tx, profile)
	if err != nil {
		return err
	}
	for _, o := range os {
		if o.Time.Before(from) || o.Time.After(to) {
			continue
		}
		if err := f.put(&o); err != nil {
			return err
		}
	}
	return nil
}

func (f *folding) write() error {
	for p, j := range f.journeys {
		var err error
		if len(j.Channels) == 0 && j.Ordered.IsZero() {
			err = f.tx.Delete(space, "journey/"+p)
		} else {
			err = f.tx.Set(space, "journey/"+p, j)
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
	return nil
}

// move gives profile to the orders of profile from (the identity stage
// merged them) and recomputes their paths, which now hold the touchpoints
// of both; from's open journey is dropped from the tally.
func move(tx *store.Tx, from, to string) error {
	f := &folding{tx: tx, journeys: map[string]*journey{}, tallies: map[string]tally{}}
	os, err := orders(tx, from)
	if err != nil {
		return err
	}
	for _, o := range os {
		if err := tx.Delete(space, profileKey(from, o.Key)); err != nil {
			return err
		}
		o.Profile = to
		if err := f.put(&o); err != nil {
			return err
		}
	}
	if err := f.forget(from); err != nil {
		return err
	}
	mine, err := orders(tx, to)
	if err != nil {
		return err
	}
	j, err := f.journey(to)
	if err != nil {
		return err
	}
	for _, o := range mine {
		j.Ordered = maxTime(j.Ordered, o.Time)
		if !slices.ContainsFunc(os, func(m Stored) bool { return m.Key == o.Key }) {
			if err := f.put(&o); err != nil {
				return err
			}
		}
	}
	return f.write()
}

// forget drops a profile's journey.
func (f *folding) forget(profile string) error {
	j, err := f.journey(profile)
	if err != nil {
		return err
	}
	if err := f.count(j, -1); err != nil {
		return err
	}
	*j = journey{}
	return nil
}

// erase deletes a profile's orders and journey.
func erase(tx *store.Tx, profile string) error {
	os, err := orders(tx, profile)
	if err != nil {
		return err
	}
	f := &folding{tx: tx, journeys: map[string]*journey{}, tallies: map[string]tally{}}
	for _, o := range os {
		day := o.Time.UTC().Format(time.DateOnly)
		if err := f.drop(o, day); err != nil {
			return err
		}
	}
	if err := f.forget(profile); err != nil {
		return err
	}
	return f.write()
}
