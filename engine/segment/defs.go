package segment

import (
	"encoding/json"
	"math"
	"slices"
	"sort"
	"time"
)

// Segment is a stored segment: its definition and its revision (which
// changes with every edit, and starts a new build).
type Segment struct {
	ID        string          `json:"id"`
	Rev       int             `json:"rev"`
	Def       json.RawMessage `json:"def"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	rule      *Rule
}

// Name returns the segment's name.
func (s *Segment) Name() string { return s.rule.Name }

// defSet is the segments defined at one moment, indexed for folding. It
// never changes: a change of definitions makes a new one.
type defSet struct {
	segs   map[string]*Segment
	sorted []*Segment // by id
	atoms  map[string]*atomDef
	// byType lists the atoms counting an event type
	byType map[string][]*atomDef
	// byAtom and byAttr list the segments an atom or an attribute
	// concerns
	byAtom  map[string][]*Segment
	byAttr  map[string][]*Segment
	windows map[string][]window
	// bare: a profile with no counted event can be a member of some
	// segment (a rule like "no order in 90 days", or one on attributes), so
	// every event's profile is looked at; otherwise an event of a type no
	// rule counts changes nothing and is skipped without a read
	bare bool
}

func newDefSet(segs map[string]*Segment) *defSet {
	d := &defSet{segs: segs, atoms: map[string]*atomDef{}, byType: map[string][]*atomDef{},
		byAtom: map[string][]*Segment{}, byAttr: map[string][]*Segment{}, windows: map[string][]window{}}
	for _, s := range segs {
		d.sorted = append(d.sorted, s)
	}
	sort.Slice(d.sorted, func(i, j int) bool { return d.sorted[i].ID < d.sorted[j].ID })
	for _, s := range d.sorted {
		for id, a := range s.rule.atoms {
			if _, ok := d.atoms[id]; !ok {
				d.atoms[id] = a
				d.byType[a.typ] = append(d.byType[a.typ], a)
			}
			d.byAtom[id] = append(d.byAtom[id], s)
			for _, w := range s.rule.windows[id] {
				if !slices.Contains(d.windows[id], w) {
					d.windows[id] = append(d.windows[id], w)
				}
			}
		}
		for _, a := range s.rule.attrs {
			d.byAttr[a] = append(d.byAttr[a], s)
		}
		if s.rule.matchesBare(time.Now().UnixMilli()) {
			d.bare = true
		}
	}
	return d
}

// matters reports whether an event of type typ may change a profile's
// memberships: a rule counts its type, or a profile without counted events
// can be a member (bare, which includes every rule on attributes: an event
// that changes them is looked at).
func (d *defSet) matters(typ string) bool {
	return d.bare || len(d.byType[typ]) > 0
}

// cutoff is the oldest event time (Unix ms) that the conditions counting
// atom need entries from at now; math.MaxInt64 when they need none (all-time
// counts only).
func cutoff(typ string, ws []window, now int64) int64 {
	cut := int64(math.MaxInt64)
	for _, w := range ws {
		switch {
		case w.within > 0:
			cut = min(cut, now-w.within.Milliseconds())
		case !w.from.IsZero():
			cut = min(cut, w.from.UnixMilli())
		}
	}
	if typ == "order" {
		cut = min(cut, now-orderKeep.Milliseconds())
	}
	return cut
}

// due returns the next instant (Unix ms) at which one of f's counts
// within a duration drops, 0 if none will.
func due(f *fact, ws []window, now int64) int64 {
	var next int64
	for _, w := range ws {
		if w.within <= 0 {
			continue
		}
		for _, e := range f.E {
			if w.in(e.T, now) {
				if t := e.T + w.within.Milliseconds() + 1; next == 0 || t < next {
					next = t
				}
				break
			}
		}
	}
	return next
}
