package segment

import (
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// The preview index: what a preview of a new rule needs from every
// shopper's events, in memory, so that it scans compact columns instead of
// reading and decoding the events of the rule's types from the log (11 s
// for 30 000 shoppers; minutes for a million).
//
// Per event type, a column of (profile number, time, fields): the fields
// are the event's props and traffic fields (without the click id), interned
// — a where condition is tested once per distinct set of fields, not once
// per event. The url, the referrer and the click id are left out (nearly
// one distinct value per event): a rule that tests them is previewed from
// the log as before. So is a rule over a type whose distinct fields
// outgrew maxFieldBytes (free-text props).
//
// The projection keeps it current: its folds append events, merges alias a
// profile to the one it merged into, and it is built at start (and after
// an erasure or a failure, which forget it) profile by profile in the
// projection's background work (Tick), between folds, so that the build
// and the folds never both count an event: a fold appends the events of
// the profiles the build has passed, the build reads the others'.
const (
	// indexChunk is how many profiles one build step reads.
	indexChunk = 1000
	// maxFieldBytes bounds the interned fields of all types together.
	maxFieldBytes = 64 << 20
	// gone marks a profile number that counts no more (merged into a
	// profile the build has yet to read, which brings its events).
	gone = ^uint32(0)
)

type index struct {
	mu sync.RWMutex
	// cursor: the build has read every profile up to it (in id order);
	// done: every profile
	cursor string
	done   bool
	ids    []string // by number
	num    map[string]uint32
	parent []uint32 // the number a profile merged into; itself if none; gone
	cols   map[string]*column
	reread map[string]bool   // profiles to read again (merged)
	fields map[string]uint32 // interned fields → number
	protos []*model.Event    // by fields number: an event with those fields only
	bytes  int               // of the interned fields
	events int
	built  time.Duration // how long the build took
	start  time.Time
}

type column struct {
	prof []uint32
	ms   []int64
	fld  []uint32
	// full: the type's distinct fields outgrew maxFieldBytes; its events
	// are no longer indexed
	full bool
}

func newIndex() *index {
	return &index{num: map[string]uint32{}, cols: map[string]*column{}, fields: map[string]uint32{}, reread: map[string]bool{},
		start: time.Now()}
}

// covers reports whether the index holds profile's events (the build has
// read it). Call with mu held.
func (x *index) covers(profile string) bool {
	return x.done || (x.cursor != "" && profile <= x.cursor)
}

// number returns profile's number, adding it. Call with mu held.
func (x *index) number(profile string) uint32 {
	if n, ok := x.num[profile]; ok {
		return n
	}
	n := uint32(len(x.ids))
	x.ids = append(x.ids, profile)
	x.parent = append(x.parent, n)
	x.num[profile] = n
	return n
}

// fieldsKey is what interns an event's fields: its type, whether the shop
// sent it (orders it confirmed count over a browser's claim), its props
// and its traffic fields but the click id.
func fieldsKey(ev *model.Event) string {
	var b strings.Builder
	b.WriteString(ev.Type)
	b.WriteByte(0)
	if ev.Via == model.ViaBrowser {
		b.WriteByte('b')
	}
	keys := make([]string, 0, len(ev.Props))
	for k := range ev.Props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteByte(0)
		b.WriteString(k)
		b.WriteByte(0)
		b.Write(ev.Props[k])
	}
	if t := ev.Traffic; t != nil {
		for _, s := range []string{t.Source, t.Medium, t.Campaign, t.Term, t.Content, t.ReferrerHost, t.Channel} {
			b.WriteByte(1)
			b.WriteString(s)
		}
	}
	return b.String()
}

// add indexes an event of profile. Call with mu held.
func (x *index) add(profile string, ev *model.Event) {
	c := x.cols[ev.Type]
	if c == nil {
		c = &column{}
		x.cols[ev.Type] = c
	}
	if c.full {
		return
	}
	key := fieldsKey(ev)
	f, ok := x.fields[key]
	if !ok {
		if x.bytes+len(key) > maxFieldBytes {
			x.events -= len(c.prof)
			*c = column{full: true}
			return
		}
		f = uint32(len(x.protos))
		p := &model.Event{Type: ev.Type, Via: ev.Via, Props: ev.Props}
		if t := ev.Traffic; t != nil {
			tt := *t
			tt.ClickID = ""
			p.Traffic = &tt
		}
		x.protos = append(x.protos, p)
		x.fields[key] = f
		x.bytes += len(key)
	}
	c.prof = append(c.prof, x.number(profile))
	c.ms = append(c.ms, ev.Time.UnixMilli())
	c.fld = append(c.fld, f)
	x.events++
}

// merge records that profile from merged into to: the events of both
// count no more, and to's are read again from the log (Reread) if the
// build has passed it, or when the build gets there. Call with mu held.
func (x *index) merge(from, to string) {
	for _, p := range []string{from, to} {
		if n, ok := x.num[p]; ok {
			x.parent[n] = gone
			delete(x.num, p)
		}
	}
	if x.covers(to) {
		x.reread[to] = true
	}
}

// fold indexes the events of a fold, after its merges. Call with mu held.
func (x *index) fold(merges [][2]string, evs []pev) {
	for _, m := range merges {
		x.merge(m[0], m[1])
	}
	for _, e := range evs {
		if x.covers(e.profile) && !x.reread[e.profile] {
			x.add(e.profile, e.ev)
		}
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

// rereadStep reads again the events of the profiles merges changed, and
// reports whether there were any.
func (x *index) rereadStep(tx *store.Tx, after func(func())) (bool, error) {
	x.mu.RLock()
	var profiles []string
	for p := range x.reread {
		profiles = append(profiles, p)
	}
	x.mu.RUnlock()
	if len(profiles) == 0 {
		return false, nil
	}
	var read []pev
	for _, p := range profiles {
		var err error
		if read, err = readProfile(tx, p, read); err != nil {
			return false, err
		}
	}
	after(func() {
		x.mu.Lock()
		defer x.mu.Unlock()
		for _, p := range profiles {
			delete(x.reread, p)
		}
		for _, r := range read {
			x.add(r.profile, r.ev)
		}
	})
	return true, nil
}

// find returns the number a profile counts under now, or gone.
func find(parent []uint32, n uint32) uint32 {
	root := n
	for root != gone && parent[root] != root {
		root = parent[root]
	}
	for n != root && n != gone {
		next := parent[n]
		parent[n] = root
		n = next
	}
	return root
}

// buildStep reads the next chunk of profiles' events into the index, in
// the runner's goroutine between folds; it applies what it read once tx
// is done (after). It reports whether the build is done.
func (x *index) buildStep(tx *store.Tx, after func(func())) (bool, error) {
	x.mu.RLock()
	cursor, done := x.cursor, x.done
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
		if x.cursor != cursor || x.done {
			return // forgotten meanwhile (Reset)
		}
		for _, r := range read {
			x.add(r.profile, r.ev)
		}
		if len(ids) > 0 {
			x.cursor = ids[len(ids)-1]
		}
		if last {
			x.done = true
			x.built = time.Since(x.start)
		}
	})
	return last, nil
}

// IndexStats is what the preview index holds.
type IndexStats struct {
	Ready    bool
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
	st := IndexStats{Ready: x.done, Profiles: len(x.ids), Events: x.events, Fields: len(x.protos), Built: x.built}
	b := int64(x.events) * (4 + 8 + 4)
	for _, id := range x.ids {
		b += int64(len(id)) + int64(unsafe.Sizeof(id)) + 4 /* parent */ + 48 /* map entry */
	}
	b += int64(x.bytes)*2 + int64(len(x.protos))*(int64(unsafe.Sizeof(model.Event{}))+48)
	st.Bytes = b
	return st
}

// previewable reports whether the index can count every event condition
// of a rule: it is built, none of the rule's types outgrew it, and no where
// tests a field it leaves out.
func (x *index) previewable(r *Rule) bool {
	if !x.done || len(x.reread) > 0 {
		return false
	}
	for _, a := range r.atoms {
		if c := x.cols[a.typ]; c != nil && c.full {
			return false
		}
		for _, p := range a.where {
			switch p.field {
			case "url", "referrer", "click_id":
				return false
			}
		}
	}
	return true
}

// snapshot is what a preview reads of the index: the columns as they were
// (they only grow), and a copy of the merges.
type snapshot struct {
	ids    []string
	parent []uint32
	cols   map[string]column
	protos []*model.Event
}

func (x *index) snapshot(r *Rule) (snapshot, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if !x.previewable(r) {
		return snapshot{}, false
	}
	sn := snapshot{ids: x.ids[:len(x.ids):len(x.ids)], parent: slices.Clone(x.parent), cols: map[string]column{},
		protos: x.protos[:len(x.protos):len(x.protos)]}
	for _, a := range r.atoms {
		if c := x.cols[a.typ]; c != nil {
			n := len(c.prof)
			sn.cols[a.typ] = column{prof: c.prof[:n:n], ms: c.ms[:n:n], fld: c.fld[:n:n]}
		}
	}
	return sn, true
}

// previewIndexed evaluates a rule over the index: the facts of each atom
// counted per profile from the columns, then the rule per profile (only
// those with a fact, when a profile without any cannot match).
func (s *Service) previewIndexed(r *Rule, sn snapshot, now int64, user func(email string) (*model.User, error)) (PreviewResult, error) {
	res := PreviewResult{Sample: []Member{}}
	n := len(sn.ids)
	var atomIDs []string
	var per [][]*fact // per atom, per profile number
	for id, a := range r.atoms {
		facts := make([]*fact, n)
		atomIDs = append(atomIDs, id)
		per = append(per, facts)
		c := sn.cols[a.typ]
		match := make([]int8, len(sn.protos)) // 0 not tested yet, 1 yes, -1 no
		var ev model.Event
		for i, p := range c.prof {
			f := c.fld[i]
			m := match[f]
			if m == 0 {
				m = -1
				if a.matches(sn.protos[f]) {
					m = 1
				}
				match[f] = m
			}
			if m < 0 {
				continue
			}
			root := find(sn.parent, p)
			if root == gone {
				continue
			}
			ff := facts[root]
			if ff == nil {
				ff = &fact{}
				facts[root] = ff
			}
			ev = *sn.protos[f]
			ev.Time = time.UnixMilli(c.ms[i])
			ff.add(&ev)
		}
	}
	cur := map[string]*fact{}
	// whether a profile without a fact can match: then every one is
	// evaluated
	all := len(r.attrs) > 0 || r.root.eval(&evalCtx{facts: cur, attr: attributes("", nil), now: now})
	for p := range uint32(n) {
		if sn.parent[p] != p {
			continue // merged into another
		}
		res.Profiles++
		if !all && !slices.ContainsFunc(per, func(f []*fact) bool { return f[p] != nil }) {
			continue
		}
		clear(cur)
		for i, id := range atomIDs {
			if f := per[i][p]; f != nil {
				cur[id] = f
			}
		}
		profile := sn.ids[p]
		attr := noAttributes
		if len(r.attrs) > 0 {
			email := model.ProfileEmail(profile)
			var u *model.User
			if email != "" {
				var err error
				if u, err = user(email); err != nil {
					return res, err
				}
			}
			attr = attributes(email, u)
		}
		if !r.root.eval(&evalCtx{facts: cur, attr: attr, now: now}) {
			continue
		}
		res.Count++
		// the first members by profile id, as the saved segment lists them
		i, _ := slices.BinarySearchFunc(res.Sample, profile, func(m Member, p string) int { return strings.Compare(m.Profile, p) })
		if i < sampleSize {
			res.Sample = slices.Insert(res.Sample, i, member(profile, now))
			if len(res.Sample) > sampleSize {
				res.Sample = res.Sample[:sampleSize]
			}
		}
	}
	return res, nil
}
