package segment

import (
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/shoptrail/shoptrail/engine/model"
)

// A preview over the index (index.go) counts without a fact per profile:
// what a rule compares is a handful of counts (an atom's events within a
// window, of a currency; a sum for spent), each counted into a flat array
// by profile number while its type's column is scanned, so that an event
// outside the count's window costs a comparison and a profile nothing.
// The rule is then evaluated only for the profiles that can match: those
// with one of the counts it cannot do without (the event of an all that
// must happen at least once, say), not every one of a million.
//
// Per preview that is an array of 4 bytes a profile per count (and 8 for a
// sum) and a bit a profile, instead of a pointer a profile per atom, a fact
// with its events per profile that has one, and a map per profile
// evaluated: at 1 M shoppers 280 MB allocated became about 21 (the
// benchmark's 3-condition rule), under a heap that the index has already
// brought near its soft limit.

// term is one count a rule's nodes compare: an atom's events within a
// window (orders of a currency when cur is set), per profile number.
type term struct {
	atom string
	win  window
	cur  string
	// lo, hi: the window as an inclusive range of Unix ms (window.in)
	lo, hi int64
	sum    bool // a spent node reads minor
	cnt    []uint32
	minor  []int64
	nz     []uint64 // a bit per profile whose count or sum is not 0
	pop    int      // how many bits nz has
}

type termKey struct {
	atom string
	win  window
	cur  string
}

// bounds returns w as an inclusive range of Unix ms at now: what w.in
// accepts.
func (w window) bounds(now int64) (lo, hi int64) {
	switch {
	case w.within > 0:
		return now - w.within.Milliseconds(), now
	case !w.from.IsZero():
		return w.from.UnixMilli(), w.to.UnixMilli() - 1
	}
	return math.MinInt64, math.MaxInt64
}

// set records a profile's count and sum.
func (t *term) set(p uint32, cnt, minor int64) {
	if cnt == 0 && minor == 0 {
		return
	}
	t.cnt[p] = uint32(min(cnt, math.MaxUint32))
	if t.sum {
		t.minor[p] = minor
	}
	t.mark(p)
}

func (t *term) mark(p uint32) {
	if t.nz[p/64]&(1<<(p%64)) == 0 {
		t.nz[p/64] |= 1 << (p % 64)
		t.pop++
	}
}

// pnode is a node of a rule with its count.
type pnode struct {
	n        *Node
	term     *term
	children []*pnode
}

func compileNode(n *Node, terms map[termKey]*term) *pnode {
	pn := &pnode{n: n}
	switch n.kind {
	case kEvent, kOrders, kSpent:
		k := termKey{atom: n.atom, win: n.win()}
		if n.kind != kEvent {
			k.cur = n.cur
		}
		t := terms[k]
		if t == nil {
			t = &term{atom: k.atom, win: k.win, cur: k.cur}
			terms[k] = t
		}
		t.sum = t.sum || n.kind == kSpent
		pn.term = t
	}
	for _, c := range n.children {
		pn.children = append(pn.children, compileNode(c, terms))
	}
	return pn
}

// need returns counts of which a profile must have one not 0 to pass the
// node (false: any profile may), and how many profiles have one at most.
func (pn *pnode) need() ([]*term, int, bool) {
	n := pn.n
	switch n.kind {
	case kEvent, kOrders:
		if n.countPasses(0) {
			return nil, 0, false
		}
		return []*term{pn.term}, pn.term.pop, true
	case kSpent:
		if n.spentPasses(0) {
			return nil, 0, false
		}
		return []*term{pn.term}, pn.term.pop, true
	case kAll:
		// one child that fails is enough: the one with the fewest
		var best []*term
		bestPop, found := 0, false
		for _, c := range pn.children {
			if ts, pop, ok := c.need(); ok && (!found || pop < bestPop) {
				best, bestPop, found = ts, pop, true
			}
		}
		return best, bestPop, found
	case kAny:
		// every child must fail
		var all []*term
		total := 0
		for _, c := range pn.children {
			ts, pop, ok := c.need()
			if !ok {
				return nil, 0, false
			}
			all, total = append(all, ts...), total+pop
		}
		return all, total, true
	}
	return nil, 0, false // an attribute; not (which passes on nothing)
}

// pctx is a profile a compiled rule is evaluated for: its number, and its
// attributes read when a node first asks.
type pctx struct {
	p     uint32
	attrs func(string) (any, bool)
	load  func(p uint32) (func(string) (any, bool), error)
	err   error
}

func (pn *pnode) eval(c *pctx) bool {
	n := pn.n
	switch n.kind {
	case kAll:
		for _, ch := range pn.children {
			if !ch.eval(c) {
				return false
			}
		}
		return true
	case kAny:
		for _, ch := range pn.children {
			if ch.eval(c) {
				return true
			}
		}
		return false
	case kNot:
		return !pn.children[0].eval(c)
	case kEvent, kOrders:
		return n.countPasses(int64(pn.term.cnt[c.p]))
	case kSpent:
		return n.spentPasses(pn.term.minor[c.p])
	case kAttr:
		if c.attrs == nil {
			if c.err != nil {
				return false
			}
			if c.attrs, c.err = c.load(c.p); c.err != nil {
				return false
			}
		}
		return n.attrPasses(c.attrs)
	}
	return false
}

// matcher tells which of the index's sets of fields an atom's where
// accepts, testing each set once.
type matcher struct {
	a      *atomDef
	protos []*model.Event
	match  []int8 // 0 not tested yet, 1 yes, -1 no
}

func (m *matcher) ok(f uint32) bool {
	v := m.match[f]
	if v == 0 {
		v = -1
		if m.a.matches(m.protos[f]) {
			v = 1
		}
		m.match[f] = v
	}
	return v > 0
}

func newMatcher(a *atomDef, sn snapshot) matcher {
	return matcher{a: a, protos: sn.protos, match: make([]int8, len(sn.protos))}
}

// runs follows a column's runs of one profile's events: at each event, the
// profile number it belongs to and whether that profile still counts.
type runs struct {
	prof   []uint32
	merged []uint64
	run    int
	p      uint32
	dead   bool // merged into another
}

func newRuns(c column, sn snapshot) runs { return runs{prof: c.prof, merged: sn.merged, run: -1} }

// at moves to the next event, whose fields word is w.
func (r *runs) at(w uint32) (p uint32, live bool) {
	if w&newRun != 0 {
		r.run++
		r.p = r.prof[r.run]
		r.dead = isMerged(r.merged, r.p)
	}
	return r.p, !r.dead
}

// countEvents counts an atom's events (not orders) into its terms.
func countEvents(a *atomDef, ts []*term, sn snapshot, now int64) {
	c := sn.cols[a.typ]
	m := newMatcher(a, sn)
	// an event outside every window counts for none: not even tested
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, tm := range ts {
		lo, hi = min(lo, tm.lo), max(hi, tm.hi)
	}
	rs := newRuns(c, sn)
	for i, w := range c.fld {
		p, live := rs.at(w)
		if !live {
			continue
		}
		t := int64(c.sec[i])*1000 + int64(w&msMask)
		if t < lo || t > hi || !m.ok((w&^newRun)>>msBits) {
			continue
		}
		for _, tm := range ts {
			if t < tm.lo || t > tm.hi {
				continue
			}
			switch v := tm.cnt[p]; v {
			case 0:
				tm.mark(p)
			case math.MaxUint32:
				continue // more than any count compares with
			}
			tm.cnt[p]++
		}
	}
}

// countOrders counts an atom's orders into its terms: an order sent again
// (the same order_id) counts once, as a fact counts it (fact.addEntry), so
// a profile's orders are gathered in the column's order and counted through
// one fact used again for every profile.
func countOrders(a *atomDef, ts []*term, sn snapshot, n int, now int64) {
	c := sn.cols[a.typ]
	m := newMatcher(a, sn)
	type hit struct{ p, i uint32 }
	var hits []hit
	seen := make([]uint64, (n+63)/64)
	grouped := true // each profile's hits are together
	rs := newRuns(c, sn)
	for i, w := range c.fld {
		p, live := rs.at(w)
		if !live || !m.ok((w&^newRun)>>msBits) {
			continue
		}
		if len(hits) == 0 || hits[len(hits)-1].p != p {
			if seen[p/64]&(1<<(p%64)) != 0 {
				grouped = false
			}
			seen[p/64] |= 1 << (p % 64)
		}
		hits = append(hits, hit{p, uint32(i)})
	}
	if !grouped {
		// the folds appended a profile's later orders after other
		// profiles': together again, each profile's in the column's order
		slices.SortStableFunc(hits, func(x, y hit) int { return int(x.p) - int(y.p) })
	}
	f := fact{NC: map[string]int64{}, S: model.Amounts{}}
	for start := 0; start < len(hits); {
		p := hits[start].p
		if start+1 == len(hits) || hits[start+1].p != p {
			// one order (most profiles with any): what a fact of it
			// counts, without one (a sum across currencies, which no
			// node reads, aside)
			e := orderEntry(c, sn, hits[start].i)
			for _, tm := range ts {
				if e.T >= tm.lo && e.T <= tm.hi && (tm.cur == "" || e.C == tm.cur) {
					tm.set(p, 1, e.M)
				}
			}
			start++
			continue
		}
		f.N, f.E = 0, f.E[:0]
		clear(f.NC)
		clear(f.S)
		end := start
		for ; end < len(hits) && hits[end].p == p; end++ {
			f.addEntry(orderEntry(c, sn, hits[end].i), true)
		}
		for _, tm := range ts {
			cnt, minor := f.count(tm.win, now, tm.cur)
			tm.set(p, cnt, minor)
		}
		start = end
	}
}

// orderEntry returns the i-th event of an order column as a fact's entry
// (its order id not copied).
func orderEntry(c column, sn snapshot, i uint32) entry {
	k := c.ord[i]
	o := sn.orders[k]
	from := uint32(0)
	if k > 0 {
		from = sn.orders[k-1].end
	}
	id := sn.oids[from:o.end]
	return entry{T: int64(c.sec[i])*1000 + int64(c.fld[i]&msMask), O: unsafe.String(unsafe.SliceData(id), len(id)),
		C: sn.curs[o.cur], M: o.minor, V: o.verified}
}

// previewIndexed evaluates a rule over the index: its counts from the
// columns (the atoms' in parallel), then the rule for each profile that
// can match.
func (s *Service) previewIndexed(r *Rule, sn snapshot, now int64, user func(email string) (*model.User, error)) (PreviewResult, error) {
	res := PreviewResult{Sample: []Member{}}
	n := len(sn.ends)
	words := (n + 63) / 64
	terms := map[termKey]*term{}
	root := compileNode(r.root, terms)
	byAtom := map[string][]*term{}
	for _, t := range terms {
		t.lo, t.hi = t.win.bounds(now)
		t.cnt, t.nz = make([]uint32, n), make([]uint64, words)
		if t.sum {
			t.minor = make([]int64, n)
		}
		byAtom[t.atom] = append(byAtom[t.atom], t)
	}
	var wg sync.WaitGroup
	for id, ts := range byAtom {
		a := r.atoms[id]
		wg.Go(func() {
			if a.typ == model.Order {
				countOrders(a, ts, sn, n, now)
			} else {
				countEvents(a, ts, sn, now)
			}
		})
	}
	wg.Wait()

	// the profiles: not merged into another
	live := make([]uint64, words)
	for i := range live {
		live[i] = ^uint64(0)
		if i < len(sn.merged) {
			live[i] = ^sn.merged[i]
		}
	}
	if n%64 != 0 {
		live[words-1] &= 1<<(n%64) - 1
	}
	for _, w := range live {
		res.Profiles += int64(bits.OnesCount64(w))
	}
	// those that can match
	cand := live
	ts, _, bounded := root.need()
	if !bounded && !r.matchesBare(now) {
		// one without any count cannot match
		ts, bounded = nil, true
		for _, t := range terms {
			ts = append(ts, t)
		}
	}
	if bounded {
		cand = make([]uint64, words)
		for _, t := range ts {
			for i, w := range t.nz {
				cand[i] |= w
			}
		}
		for i := range cand {
			cand[i] &= live[i]
		}
	}
	c := &pctx{load: func(p uint32) (func(string) (any, bool), error) {
		email := model.ProfileEmail(idOf(sn.arena, sn.ends, p))
		var u *model.User
		if email != "" {
			var err error
			if u, err = user(email); err != nil {
				return nil, err
			}
		}
		return attributes(email, u), nil
	}}
	for i, w := range cand {
		for w != 0 {
			p := uint32(i*64 + bits.TrailingZeros64(w))
			w &= w - 1
			c.p, c.attrs = p, nil
			ok := root.eval(c)
			if c.err != nil {
				return res, c.err
			}
			if !ok {
				continue
			}
			res.Count++
			// the first members by profile id, as the saved segment lists them
			profile := idOf(sn.arena, sn.ends, p)
			if len(res.Sample) == sampleSize && profile >= res.Sample[sampleSize-1].Profile {
				continue
			}
			j, _ := slices.BinarySearchFunc(res.Sample, profile, func(m Member, p string) int { return strings.Compare(m.Profile, p) })
			res.Sample = slices.Insert(res.Sample, j, member(profile, now))
			if len(res.Sample) > sampleSize {
				res.Sample = res.Sample[:sampleSize]
			}
		}
	}
	return res, nil
}
