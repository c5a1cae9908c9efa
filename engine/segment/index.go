package segment

import (
	"encoding/json"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
)

// The preview index: what a preview of a new rule needs from every
// shopper's events, in memory, so that it scans compact columns instead of
// reading and decoding the events of the rule's types from the log (11 s
// for 30 000 shoppers; minutes for a million).
//
// Per event type, a column of (time, fields), 8 bytes an event, and a
// profile number per run of one profile's events (a build reads a profile
// at once): about 10 bytes an event. The fields are the event's props and traffic fields, interned — a
// where condition is tested once per distinct set of fields, not once per
// event. Only fields with few distinct values are kept: the url, the
// referrer and the click id never, and a prop once it has taken more than
// wideAfter values for its type (a product id, an order id, an order's
// items, a search's words); a rule that tests one of those is previewed
// from the log as before. An order's id, value and currency are kept
// beside it (what the orders and spent conditions count). The profiles'
// ids are a compact table (profileTable): with them, about 140 bytes a
// shopper of 10 events, so a million shoppers fit in half the default
// memory_limit.
//
// The projection keeps it current: its folds append events, a merge drops
// both profiles' events and reads the merged profile's again, and it is
// built at start (and after an erasure or a failure, which forget it)
// profile by profile in the projection's background work (Tick), between
// folds, so that the build and the folds never both count an event: a fold
// appends the events of the profiles the build has passed, the build reads
// the others'. Its memory is bounded (Options.IndexBudget): an index that
// outgrows it is dropped, and previews read the log.
const (
	// indexChunk is how many profiles one build step reads.
	indexChunk = 1000
	// an event's fields word: its top bit (newRun) says that it starts a
	// run of the column's events of one profile, the next fieldBits
	// number its fields, the last msBits hold the milliseconds of its time
	newRun    = 1 << 31
	msBits    = 10
	msMask    = 1<<msBits - 1
	fieldBits = 31 - msBits
	maxFields = 1 << fieldBits
	// the size of a set of fields for the budget: an event, its props
	// map, the key twice, without their bytes (the arrays of events,
	// orders and profiles count their capacity: appendCounted)
	fieldsBytes = int(unsafe.Sizeof(model.Event{})) + 48 + 2*48
	// bigArray is the capacity from which appendCounted grows arrays
	// by an eighth
	bigArray = 1 << 16
	// maxCurrencies is how many currencies the orders' can number
	maxCurrencies = 1 << 16
	// wideAfter is how many distinct values a prop takes before the index
	// stops keeping it
	wideAfter = 256
)

type index struct {
	mu sync.RWMutex
	// cursor: the build has read every profile up to it (in id order);
	// done: every profile
	cursor string
	done   bool
	budget int64         // bytes; 0 no limit
	over   bool          // it outgrew the budget: dropped
	prof   *profileTable // the profiles' ids and numbers
	merged []uint64      // a bit per profile number: set once it counts no more (merged)
	cols   map[string]*column
	fields map[string]uint32 // interned fields → number
	protos []*model.Event    // by fields number: an event with those fields only
	// vals are the values seen of each field of each type, up to
	// wideAfter; wide the fields that took more
	vals   map[string]map[string]map[string]bool
	wide   map[string]map[string]bool
	orders []orderRec // of order events
	oids   []byte     // the orders' ids, one after the other (order.end)
	curs   []string
	cur    map[string]uint16 // currency → its number in curs
	bytes  int64             // estimated
	events int
	built  time.Duration // how long its build took
	start  time.Time
}

// orderRec is what an order event counts: its value, its id (in the index's
// oids), its currency (in curs), whether the shop confirmed it (sent
// through the API). 16 bytes, instead of an entry's 56.
type orderRec struct {
	minor    int64
	end      uint32
	cur      uint16
	verified bool
}

// appendCounted appends to s, and counts in bytes what its array grew by:
// the index's estimate counts the capacity its arrays hold, not only their
// length. A large array grows by an eighth, not append's quarter: the
// index's columns of millions of events keep less room unused.
func appendCounted[T any](bytes *int64, s []T, v ...T) []T {
	c := cap(s)
	if need := len(s) + len(v); need > c && c >= bigArray {
		grown := make([]T, len(s), max(need, c+c/8))
		copy(grown, s)
		s = grown
	}
	s = append(s, v...)
	if d := cap(s) - c; d > 0 {
		var zero T
		*bytes += int64(d) * int64(unsafe.Sizeof(zero))
	}
	return s
}

// column holds the events of one type. Its events come in runs of one
// profile's (a build reads a profile's events at once): the profile number
// is kept once a run, 12 bytes an event become about 8.
type column struct {
	prof []uint32 // a profile number per run
	sec  []uint32 // Unix seconds
	fld  []uint32 // newRun | fields number << msBits | milliseconds
	ord  []uint32 // of an order column: the order in orders
}

func newIndex(budget int64) *index {
	return &index{prof: newProfileTable(), cur: map[string]uint16{}, cols: map[string]*column{}, fields: map[string]uint32{},
		vals: map[string]map[string]map[string]bool{}, budget: budget, start: time.Now(),
		wide: map[string]map[string]bool{model.Order: {"order_id": true, "value": true}}}
}

// trafficFields are the traffic fields a where may test, as lookup reads
// them (the click id is left out).
var trafficFields = []struct {
	name string
	get  func(*model.Traffic) *string
}{
	{"source", func(t *model.Traffic) *string { return &t.Source }},
	{"medium", func(t *model.Traffic) *string { return &t.Medium }},
	{"campaign", func(t *model.Traffic) *string { return &t.Campaign }},
	{"term", func(t *model.Traffic) *string { return &t.Term }},
	{"content", func(t *model.Traffic) *string { return &t.Content }},
	{"referrer_host", func(t *model.Traffic) *string { return &t.ReferrerHost }},
	{"channel", func(t *model.Traffic) *string { return &t.Channel }},
}

// keep reports whether the index keeps a field of an event type, counting
// its value. Call with mu held.
func (x *index) keep(typ, field, value string) bool {
	wide := x.wide[typ]
	if wide[field] {
		return false
	}
	byField := x.vals[typ]
	if byField == nil {
		byField = map[string]map[string]bool{}
		x.vals[typ] = byField
	}
	seen := byField[field]
	if seen == nil {
		seen = map[string]bool{}
		byField[field] = seen
	}
	if !seen[value] {
		if len(seen) == wideAfter {
			if wide == nil {
				wide = map[string]bool{}
				x.wide[typ] = wide
			}
			wide[field] = true
			delete(byField, field)
			return false
		}
		seen[value] = true
		x.bytes += int64(len(value) + 48)
	}
	return true
}

// covers reports whether the index holds profile's events (the build has
// read it). Call with mu held.
func (x *index) covers(profile string) bool {
	return x.done || (x.cursor != "" && profile <= x.cursor)
}

// number returns profile's number, adding it; false when the profile
// table is full. Call with mu held.
func (x *index) number(profile string) (uint32, bool) {
	n, grew, ok := x.prof.add(profile)
	if !ok {
		return 0, false
	}
	if int(n) == 64*len(x.merged) {
		x.merged = appendCounted(&x.bytes, x.merged, 0)
	}
	x.bytes += grew
	return n, true
}

// fieldsKey returns what interns an event's fields, and an event with
// those fields only: its type, whether a browser sent it (the shop's
// confirmation of an order counts over a browser's claim), the props and
// traffic fields the index keeps. Call with mu held.
func (x *index) fieldsKey(ev *model.Event) (string, *model.Event) {
	var b strings.Builder
	b.WriteString(ev.Type)
	b.WriteByte(0)
	if ev.Via == model.ViaBrowser {
		b.WriteByte('b')
	}
	keys := make([]string, 0, len(ev.Props))
	for k, v := range ev.Props {
		if x.keep(ev.Type, k, string(v)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	p := &model.Event{Type: ev.Type, Via: ev.Via}
	if len(keys) > 0 {
		p.Props = make(map[string]json.RawMessage, len(keys))
	}
	for _, k := range keys {
		b.WriteByte(0)
		b.WriteString(k)
		b.WriteByte(0)
		b.Write(ev.Props[k])
		p.Props[k] = ev.Props[k]
	}
	if t := ev.Traffic; t != nil {
		p.Traffic = &model.Traffic{}
		for _, f := range trafficFields {
			v := *f.get(t)
			if v != "" && x.keep(ev.Type, f.name, v) {
				*f.get(p.Traffic) = v
			}
			b.WriteByte(1)
			b.WriteString(*f.get(p.Traffic))
		}
	}
	return b.String(), p
}

// add indexes an event of profile. Call with mu held.
func (x *index) add(profile string, ev *model.Event) {
	if x.over {
		return
	}
	ms := ev.Time.UnixMilli()
	if ms < 0 || ms/1000 > math.MaxUint32 {
		return // not a time a shop sends (ingestion clamps them)
	}
	pn, ok := x.number(profile)
	if !ok {
		x.drop()
		return
	}
	c := x.cols[ev.Type]
	if c == nil {
		c = &column{}
		x.cols[ev.Type] = c
	}
	key, p := x.fieldsKey(ev)
	f, ok := x.fields[key]
	if !ok {
		if len(x.protos) == maxFields {
			x.drop()
			return
		}
		f = uint32(len(x.protos))
		x.protos = append(x.protos, p)
		x.fields[key] = f
		x.bytes += int64(fieldsBytes + 2*len(key))
	}
	if ev.Type == model.Order {
		id, rec := ev.Order()
		cur, ok := x.cur[rec.Currency]
		if !ok {
			if len(x.curs) == maxCurrencies {
				x.drop()
				return
			}
			cur = uint16(len(x.curs))
			x.curs = append(x.curs, rec.Currency)
			x.cur[rec.Currency] = cur
			x.bytes += int64(2*len(rec.Currency) + 64)
		}
		if len(x.oids)+len(id) > math.MaxUint32 || len(x.orders) == math.MaxUint32 {
			x.drop()
			return
		}
		x.oids = appendCounted(&x.bytes, x.oids, []byte(id)...)
		c.ord = appendCounted(&x.bytes, c.ord, uint32(len(x.orders)))
		x.orders = appendCounted(&x.bytes, x.orders, orderRec{minor: rec.Minor, end: uint32(len(x.oids)), cur: cur, verified: rec.Verified})
	}
	w := f<<msBits | uint32(ms%1000)
	if len(c.prof) == 0 || c.prof[len(c.prof)-1] != pn {
		c.prof = appendCounted(&x.bytes, c.prof, pn)
		w |= newRun
	}
	c.sec = appendCounted(&x.bytes, c.sec, uint32(ms/1000))
	c.fld = appendCounted(&x.bytes, c.fld, w)
	x.events++
	if x.budget > 0 && x.bytes > x.budget {
		x.drop()
	}
}

// drop forgets the index: it outgrew its budget. Call with mu held.
func (x *index) drop() {
	x.over, x.done = true, false
	x.prof, x.merged, x.cols, x.fields, x.protos = newProfileTable(), nil, nil, nil, nil
	x.vals, x.orders, x.oids, x.curs, x.cur = nil, nil, nil, nil, nil
}

// merge records that profile from merged into to: the events of both
// count no more, and read are to's events, read again from the log in the
// fold's transaction (nil when the build has yet to read it). Call with mu
// held.
func (x *index) merge(from, to string, read []pev) {
	if x.over {
		return
	}
	for _, p := range []string{from, to} {
		if n, ok := x.prof.remove(p); ok {
			x.merged[n/64] |= 1 << (n % 64)
		}
	}
	for _, r := range read {
		x.add(r.profile, r.ev)
	}
}

// pev is an event and the profile it counts for.
type pev struct {
	profile string
	ev      *model.Event
}

// readProfile returns the events of a profile that the index counts.
func readProfile(tx *store.Tx, profile string, out []pev) ([]pev, error) {
	err := tx.ProfileEvents(profile, nil, func(ev *model.Event) error {
		if !ev.Bot && ev.Type != Entered && ev.Type != Exited {
			out = append(out, pev{profile, ev})
		}
		return nil
	})
	return out, err
}

// foldIndex reads what a fold changes in the index, and returns what
// applies it once the fold is committed: the merges (the merged profiles'
// events read again, with the fold's among them), then the fold's events
// of the other profiles the build has passed.
func (x *index) foldIndex(tx *store.Tx, merges [][2]string, evs []*project.Event) (func(), error) {
	x.mu.RLock()
	over := x.over
	var reread []string
	for _, m := range merges {
		if x.covers(m[1]) {
			reread = append(reread, m[1])
		}
	}
	x.mu.RUnlock()
	if over {
		return func() {}, nil
	}
	read := map[string][]pev{}
	for _, p := range reread {
		r, err := readProfile(tx, p, nil)
		if err != nil {
			return nil, err
		}
		read[p] = r
	}
	var add []pev
	for i := range evs {
		ev := evs[i]
		if ev.Bot || ev.ProfileID == "" || ev.Type == Entered || ev.Type == Exited {
			continue
		}
		if _, ok := read[ev.ProfileID]; !ok {
			add = append(add, pev{ev.ProfileID, ev.Event})
		}
	}
	return func() {
		x.mu.Lock()
		defer x.mu.Unlock()
		for _, m := range merges {
			r := read[m[1]]
			delete(read, m[1]) // a second merge into it in the run reads nothing more
			x.merge(m[0], m[1], r)
		}
		for _, e := range add {
			if x.covers(e.profile) {
				x.add(e.profile, e.ev)
			}
		}
	}, nil
}

// isMerged reports whether profile number n counts no more.
func isMerged(merged []uint64, n uint32) bool { return merged[n/64]&(1<<(n%64)) != 0 }

// buildStep reads the next chunk of profiles' events into the index, in
// the runner's goroutine between folds; it applies what it read once tx
// is done (after). It reports whether the build is done.
func (x *index) buildStep(tx *store.Tx, after func(func())) (bool, error) {
	x.mu.RLock()
	cursor, done := x.cursor, x.done || x.over
	x.mu.RUnlock()
	if done {
		return true, nil
	}
	ids, err := tx.ProfileIDsAfter(cursor, indexChunk)
	if err != nil {
		return false, err
	}
	var read []pev
	for _, profile := range ids {
		if read, err = readProfile(tx, profile, read); err != nil {
			return false, err
		}
	}
	last := len(ids) < indexChunk
	after(func() {
		x.mu.Lock()
		defer x.mu.Unlock()
		if x.cursor != cursor || x.done || x.over {
			return
		}
		for _, r := range read {
			x.add(r.profile, r.ev)
		}
		if len(ids) > 0 {
			x.cursor = ids[len(ids)-1]
		}
		if last && !x.over {
			x.done = true
			x.built = time.Since(x.start)
		}
	})
	return last, nil
}

// IndexStats is what the preview index holds.
type IndexStats struct {
	Ready    bool
	Over     bool // it outgrew its budget: previews read the log
	Profiles int
	Events   int
	Fields   int           // distinct sets of fields
	Bytes    int64         // estimated memory
	Built    time.Duration // how long its build took
}

// IndexStats returns what the preview index holds and about how much
// memory it takes.
func (s *Service) IndexStats() IndexStats {
	x := s.idx.Load()
	x.mu.RLock()
	defer x.mu.RUnlock()
	return IndexStats{Ready: x.done, Over: x.over, Profiles: x.prof.len(), Events: x.events, Fields: len(x.protos),
		Bytes: x.bytes, Built: x.built}
}

// previewable reports whether the index can count every event condition
// of a rule: it is built, none of the rule's types outgrew it, and no where
// tests a field it leaves out.
func (x *index) previewable(r *Rule) bool {
	if !x.done || x.over {
		return false
	}
	for _, a := range r.atoms {
		wide := x.wide[a.typ]
		for _, p := range a.where {
			head, _, _ := strings.Cut(p.field, ".")
			switch {
			case p.field == "url" || p.field == "referrer" || p.field == "click_id":
				return false
			case wide[p.field] || wide[head] || wide["items"]:
				// lookup may have read it from a prop the index left
				// out, or from an order's items
				return false
			}
		}
	}
	return true
}

// snapshot is what a preview reads of the index: the columns as they were
// (they only grow), and a copy of the merges.
type snapshot struct {
	arena  []byte // the profiles' ids (idOf)
	ends   []uint32
	merged []uint64
	cols   map[string]column
	protos []*model.Event
	orders []orderRec
	oids   []byte
	curs   []string
}

func (x *index) snapshot(r *Rule) (snapshot, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if !x.previewable(r) {
		return snapshot{}, false
	}
	a, e := x.prof.arena, x.prof.ends
	sn := snapshot{arena: a[:len(a):len(a)], ends: e[:len(e):len(e)], merged: slices.Clone(x.merged), cols: map[string]column{},
		protos: x.protos[:len(x.protos):len(x.protos)], orders: x.orders[:len(x.orders):len(x.orders)],
		oids: x.oids[:len(x.oids):len(x.oids)], curs: x.curs[:len(x.curs):len(x.curs)]}
	for _, a := range r.atoms {
		if c := x.cols[a.typ]; c != nil {
			n, r := len(c.sec), len(c.prof)
			sn.cols[a.typ] = column{prof: c.prof[:r:r], sec: c.sec[:n:n], fld: c.fld[:n:n], ord: c.ord[:min(n, len(c.ord)):min(n, len(c.ord))]}
		}
	}
	return sn, true
}
