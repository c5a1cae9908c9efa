package segment

import (
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/shoptrail/shoptrail/engine/model"
)

// The preview over the index as it was before it counted into flat arrays
// (a fact per profile and atom, a map and an evalCtx per profile): the
// baseline BenchmarkPreviewIndex times the new one against in the same run,
// and an oracle the equivalence tests compare the new one with.

// scanAtomOld counts an atom's events per profile number from its type's
// column.
func scanAtomOld(a *atomDef, sn snapshot, n int) []*fact {
	facts := make([]*fact, n)
	c := sn.cols[a.typ]
	match := make([]int8, len(sn.protos)) // 0 not tested yet, 1 yes, -1 no
	order := a.typ == model.Order
	run := -1
	for i, w := range c.fld {
		if w&newRun != 0 {
			run++
		}
		f := (w &^ newRun) >> msBits
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
		root := c.prof[run]
		if isMerged(sn.merged, root) {
			continue
		}
		ff := facts[root]
		if ff == nil {
			ff = &fact{}
			facts[root] = ff
		}
		e := entry{T: int64(c.sec[i])*1000 + int64(w&msMask)}
		if order {
			k := c.ord[i]
			o := sn.orders[k]
			start := uint32(0)
			if k > 0 {
				start = sn.orders[k-1].end
			}
			id := sn.oids[start:o.end]
			e.O, e.C, e.M, e.V = unsafe.String(unsafe.SliceData(id), len(id)), sn.curs[o.cur], o.minor, o.verified
		}
		ff.addEntry(e, order)
	}
	return facts
}

// previewIndexedOld evaluates a rule over the index: the facts of each atom
// counted per profile from the columns, then the rule per profile (only
// those with a fact, when a profile without any cannot match).
func (s *Service) previewIndexedOld(r *Rule, sn snapshot, now int64, user func(email string) (*model.User, error)) (PreviewResult, error) {
	res := PreviewResult{Sample: []Member{}}
	n := len(sn.ends)
	var atomIDs []string
	var atoms []*atomDef
	for id, a := range r.atoms {
		atomIDs = append(atomIDs, id)
		atoms = append(atoms, a)
	}
	per := make([][]*fact, len(atoms)) // per atom, per profile number
	var wg sync.WaitGroup
	for k, a := range atoms {
		wg.Go(func() { per[k] = scanAtomOld(a, sn, n) })
	}
	wg.Wait()
	cur := map[string]*fact{}
	// whether a profile without a fact can match: then every one is
	// evaluated
	all := len(r.attrs) > 0 || r.root.eval(&evalCtx{facts: cur, attr: attributes("", nil), now: now})
	for p := range uint32(n) {
		if isMerged(sn.merged, p) {
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
		profile := idOf(sn.arena, sn.ends, p)
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
