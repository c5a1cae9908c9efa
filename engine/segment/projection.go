package segment

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Name is the segments projection's name.
const Name = "segments"

// version of what the projection stores.
const version = 1

// The projection's keys, in store.ProjectionSpace(Name):
//
//	p/<profile id>                 record: facts, memberships, next due time
//	m/<segment id>/<profile id>    member since (Unix ms)
//	c/<segment id>                 members (int64)
//	d/<due, 20 digits ms>/<profile id>  the profile's counts change then
//	b/<segment id>                 build state of a segment (buildState)
//	o/<20 digits>                  an entry or exit waiting to be recorded in the log (change)
//	oseq                           the last o/ number
var sp = store.ProjectionSpace(Name)

// Chunk sizes of the background work: each is one transaction between
// folds.
const (
	buildChunk   = 200  // profiles per build step
	sweepChunk   = 500  // due profiles per sweep step
	cleanupChunk = 2000 // member keys of a deleted segment per step
	// minWait is the least time between two sweeps
	minWait = 100 * time.Millisecond
	// yieldRest is how long builds rest after a step, in multiples of the
	// time it took, while ingestion needs the processors (run.Yield): a
	// build then takes an eighth of one, and full speed when they are free.
	yieldRest = 7
)

// record is what the projection keeps per profile.
type record struct {
	F   map[string]*fact `json:"f,omitempty"`   // per atom
	In  map[string]int64 `json:"in,omitempty"`  // segment id → member since (Unix ms)
	Due int64            `json:"due,omitempty"` // when a count within a window next drops (Unix ms)
}

// buildState is where the build of a segment's revision is: profiles are
// visited in id order, and Cursor is the last one done.
type buildState struct {
	Rev      int       `json:"rev"`
	Cursor   string    `json:"cursor,omitempty"`
	Done     bool      `json:"done,omitempty"`
	Profiles int64     `json:"profiles"` // visited
	Total    int64     `json:"total"`    // profiles when the build began
	Events   int64     `json:"events"`   // events read
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
}

// ready reports whether the build of rev is finished.
func (b *buildState) ready(rev int) bool { return b != nil && b.Rev == rev && b.Done }

// covers reports whether the build of rev has visited profile.
func (b *buildState) covers(rev int, profile string) bool {
	return b != nil && b.Rev == rev && (b.Done || (b.Cursor != "" && profile <= b.Cursor))
}

// change is an entry into or exit from a segment, kept until it is
// recorded in the log as a segment_entered or segment_exited event.
type change struct {
	Segment string    `json:"segment"`
	Name    string    `json:"name"`
	Profile string    `json:"profile"`
	Email   string    `json:"email"`
	Entered bool      `json:"entered"`
	At      time.Time `json:"at"`
}

func dueKey(ms int64, profile string) string {
	return fmt.Sprintf("d/%020d/%s", ms, profile)
}

// Projection is what the runner needs.
func (s *Service) Projection() *project.Projection {
	return &project.Projection{
		Name:    Name,
		Version: version,
		Owns:    []store.Space{sp},
		Fold:    s.fold,
		Move:    s.move,
		Erase:   s.eraseProfile,
		Reset: func() {
			s.moved, s.builds, s.merges = nil, nil, nil
			s.idx.Store(newIndex(s.indexBudget)) // built again
		},
		Tick:  s.tick,
		Eager: true,
	}
}

// work is what one transaction changes: records read and changed, member
// counts, entries and exits.
type work struct {
	s      *Service
	tx     *store.Tx
	defs   *defSet
	builds map[string]*buildState
	now    int64
	emit   bool // record entries and exits (live folds and sweeps, not backfills)
	recs   map[string]*recWork
	order  []string
	counts map[string]int64
	users  map[string]*model.User
	attrs  map[string]func(string) (any, bool)
	// changed: entries or exits wait to be recorded once committed
	changed bool
}

type recWork struct {
	rec    record
	stored bool            // the record existed before
	dirty  map[string]bool // segments to evaluate
	force  map[string]bool // building segments to evaluate (the build visits it)
	all    bool            // evaluate every segment
	moved  map[string]int64
	skip   bool // not a shopper's (only bots' events): not written
}

func (s *Service) newWork(tx *store.Tx, emit bool) (*work, error) {
	w := &work{s: s, tx: tx, defs: s.defs.Load(), now: s.now().UnixMilli(), emit: emit,
		recs: map[string]*recWork{}, counts: map[string]int64{}, users: map[string]*model.User{},
		attrs: map[string]func(string) (any, bool){}}
	builds, err := s.cachedBuilds(tx)
	if err != nil {
		return nil, err
	}
	w.builds = builds
	return w, nil
}

// cachedBuilds returns the build states, read once: only the runner's
// goroutine writes them (tick), and Reset forgets them after a failure.
func (s *Service) cachedBuilds(tx *store.Tx) (map[string]*buildState, error) {
	if s.builds != nil {
		return s.builds, nil
	}
	b, err := loadBuilds(tx)
	if err == nil {
		s.builds = b
	}
	return b, err
}

func loadBuilds(tx *store.Tx) (map[string]*buildState, error) {
	out := map[string]*buildState{}
	err := tx.Scan(sp, "b/", func(k string, v json.RawMessage) (bool, error) {
		var b buildState
		if err := json.Unmarshal(v, &b); err != nil {
			return false, err
		}
		out[strings.TrimPrefix(k, "b/")] = &b
		return true, nil
	})
	return out, err
}

func (w *work) record(profile string) (*recWork, error) {
	if r, ok := w.recs[profile]; ok {
		return r, nil
	}
	r := &recWork{dirty: map[string]bool{}, force: map[string]bool{}}
	switch err := w.tx.Get(sp, "p/"+profile, &r.rec); {
	case err == nil:
		r.stored = true
	case errors.Is(err, store.ErrNotFound):
		r.all = true // a profile new to the projection: every segment
	default:
		return nil, err
	}
	if r.rec.F == nil {
		r.rec.F = map[string]*fact{}
	}
	if r.rec.In == nil {
		r.rec.In = map[string]int64{}
	}
	w.recs[profile] = r
	w.order = append(w.order, profile)
	return r, nil
}

// event counts an event for its profile and marks the segments it may
// change.
func (w *work) event(ev *project.Event) error {
	r, err := w.record(ev.ProfileID)
	if err != nil {
		return err
	}
	fields := map[string][]any{} // the event's fields, decoded once
	for _, a := range w.defs.byType[ev.Type] {
		if !a.matchesCached(ev.Event, fields) {
			continue
		}
		f := r.rec.F[a.id]
		if f == nil {
			f = &fact{}
			r.rec.F[a.id] = f
		}
		f.add(ev.Event)
		for _, seg := range w.defs.byAtom[a.id] {
			r.dirty[seg.ID] = true
		}
	}
	var attrs []string
	switch ev.Type {
	case model.Subscribe, model.Unsubscribe:
		attrs = []string{"isSubscribed"}
	case "user_update":
		var changed map[string]json.RawMessage
		if json.Unmarshal(ev.Props["changed"], &changed) == nil {
			for k := range changed {
				attrs = append(attrs, k)
			}
		}
	}
	for _, a := range attrs {
		for _, seg := range w.defs.byAttr[a] {
			r.dirty[seg.ID] = true
		}
	}
	return nil
}

// user returns the Users API attributes of a profile, nil for none.
func (w *work) user(profile string) (*model.User, error) {
	email := model.ProfileEmail(profile)
	if email == "" {
		return nil, nil
	}
	if u, ok := w.users[profile]; ok {
		return u, nil
	}
	u, err := w.tx.User(email)
	var up *model.User
	switch {
	case err == nil:
		up = &u
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	w.users[profile] = up
	return up, nil
}

// evaluate reports whether a profile belongs to a segment.
func (w *work) evaluate(profile string, r *record, seg *Segment) (bool, error) {
	attr := noAttributes
	if len(seg.rule.attrs) > 0 {
		if attr = w.attrs[profile]; attr == nil {
			u, err := w.user(profile)
			if err != nil {
				return false, err
			}
			attr = attributes(model.ProfileEmail(profile), u)
			w.attrs[profile] = attr
		}
	}
	return seg.rule.root.eval(&evalCtx{facts: r.F, attr: attr, now: w.now}), nil
}

// noAttributes is the lookup for rules that name no attribute.
func noAttributes(string) (any, bool) { return nil, false }

// flush evaluates the marked segments of every record touched, and writes
// records, members, counts, due times and changes.
func (w *work) flush() error {
	var changes []change
	for _, profile := range w.order {
		r := w.recs[profile]
		if r.skip {
			continue
		}
		for _, seg := range w.defs.sorted {
			if !r.all && !r.dirty[seg.ID] && !r.force[seg.ID] {
				continue
			}
			b := w.builds[seg.ID]
			ready := b.ready(seg.Rev)
			if !ready && !r.force[seg.ID] && !b.covers(seg.Rev, profile) {
				continue // the build will visit it
			}
			in, err := w.evaluate(profile, &r.rec, seg)
			if err != nil {
				return err
			}
			since, was := r.rec.In[seg.ID]
			if in == was {
				continue
			}
			if in {
				since = w.now
				if t, ok := r.moved[seg.ID]; ok {
					since = t // the merged profile was a member since then
				}
				r.rec.In[seg.ID] = since
				if err := w.tx.Set(sp, "m/"+seg.ID+"/"+profile, since); err != nil {
					return err
				}
				w.counts[seg.ID]++
			} else {
				delete(r.rec.In, seg.ID)
				if err := w.tx.Delete(sp, "m/"+seg.ID+"/"+profile); err != nil {
					return err
				}
				w.counts[seg.ID]--
			}
			if email := model.ProfileEmail(profile); w.emit && ready && email != "" {
				changes = append(changes, change{Segment: seg.ID, Name: seg.Name(), Profile: profile, Email: email,
					Entered: in, At: time.UnixMilli(w.now).UTC()})
			}
		}
		if r.stored && !r.all && len(r.dirty) == 0 && len(r.force) == 0 {
			continue // an event no rule counts, of a shopper already known: nothing changed
		}
		if err := w.writeRecord(profile, r); err != nil {
			return err
		}
	}
	for id, d := range w.counts {
		if d == 0 {
			continue
		}
		if err := addCount(w.tx, id, d); err != nil {
			return err
		}
	}
	if len(changes) > 0 {
		if err := putChanges(w.tx, changes); err != nil {
			return err
		}
		w.changed = true
	}
	return nil
}

// writeRecord trims a record's facts to what the rules need, indexes its
// next due time and stores it.
func (w *work) writeRecord(profile string, r *recWork) error {
	rec := &r.rec
	var next int64
	for id, f := range rec.F {
		a, ok := w.defs.atoms[id]
		if !ok {
			delete(rec.F, id) // no rule counts it any more
			continue
		}
		ws := w.defs.windows[id]
		f.trim(cutoff(a.typ, ws, w.now))
		if f.N == 0 && len(f.E) == 0 {
			delete(rec.F, id)
			continue
		}
		if d := due(f, ws, w.now); d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	for id := range rec.In {
		if _, ok := w.defs.segs[id]; !ok {
			delete(rec.In, id) // a deleted segment (its member keys go in cleanup)
		}
	}
	if next != rec.Due {
		if rec.Due != 0 {
			if err := w.tx.Delete(sp, dueKey(rec.Due, profile)); err != nil {
				return err
			}
		}
		if next != 0 {
			if err := w.tx.Set(sp, dueKey(next, profile), 1); err != nil {
				return err
			}
		}
		rec.Due = next
	}
	return w.tx.Set(sp, "p/"+profile, rec)
}

func addCount(tx *store.Tx, seg string, d int64) error {
	var n int64
	if err := tx.Get(sp, "c/"+seg, &n); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return tx.Set(sp, "c/"+seg, max(n+d, 0))
}

func putChanges(tx *store.Tx, cs []change) error {
	var seq uint64
	if err := tx.Get(sp, "oseq", &seq); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	for _, c := range cs {
		seq++
		if err := tx.Set(sp, fmt.Sprintf("o/%020d", seq), c); err != nil {
			return err
		}
	}
	return tx.Set(sp, "oseq", seq)
}

// fold counts a run of events and re-evaluates, for each profile, the
// segments that mention the events' types or the attributes they changed.
func (s *Service) fold(run *project.Run) error {
	if err := s.indexFold(run); err != nil {
		return err
	}
	moved := s.moved
	if len(s.defs.Load().segs) == 0 && len(moved) == 0 {
		return nil
	}
	w, err := s.newWork(run.Tx, !run.Backfill)
	if err != nil {
		return err
	}
	for _, m := range moved {
		r, err := w.record(m.to)
		if err != nil {
			return err
		}
		r.all, r.moved = true, m.since
	}
	for i := range run.Events {
		ev := &run.Events[i]
		if ev.Bot || ev.ProfileID == "" || ev.Type == Entered || ev.Type == Exited || !w.defs.matters(ev.Type) {
			continue
		}
		if err := w.event(ev); err != nil {
			return err
		}
	}
	if err := w.flush(); err != nil {
		return err
	}
	run.AfterCommit(func() {
		s.moved = s.moved[len(moved):]
		if w.changed {
			s.relayWake()
		}
	})
	return nil
}

// indexFold gives the preview index the fold's merges and events once the
// fold is committed.
func (s *Service) indexFold(run *project.Run) error {
	merges := s.merges
	evs := make([]*project.Event, len(run.Events))
	for i := range run.Events {
		evs[i] = &run.Events[i]
	}
	apply, err := s.idx.Load().foldIndex(run.Tx, merges, evs)
	if err != nil {
		return err
	}
	run.AfterCommit(func() {
		s.merges = s.merges[len(merges):]
		apply()
	})
	return nil
}

// moved is a merge that the next fold re-evaluates: the profile merged
// into, and since when the merged-away profile was in its segments.
type moved struct {
	to    string
	since map[string]int64
}

// move merges profile from into to: their facts add up, from's memberships
// end, and the next fold evaluates every segment for to (a member of a
// segment from was in keeps from's since).
func (s *Service) move(tx *store.Tx, from, to string) error {
	s.merges = append(s.merges, [2]string{from, to})
	var fr record
	switch err := tx.Get(sp, "p/"+from, &fr); {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	var tr record
	if err := tx.Get(sp, "p/"+to, &tr); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if tr.F == nil {
		tr.F = map[string]*fact{}
	}
	for id, f := range fr.F {
		tr.F[id] = mergeFacts(tr.F[id], f)
	}
	for seg := range fr.In {
		if err := tx.Delete(sp, "m/"+seg+"/"+from); err != nil {
			return err
		}
		if err := addCount(tx, seg, -1); err != nil {
			return err
		}
	}
	if fr.Due != 0 {
		if err := tx.Delete(sp, dueKey(fr.Due, from)); err != nil {
			return err
		}
	}
	if err := tx.Delete(sp, "p/"+from); err != nil {
		return err
	}
	if err := tx.Set(sp, "p/"+to, tr); err != nil {
		return err
	}
	s.moved = append(s.moved, moved{to: to, since: fr.In})
	return nil
}

// mergeFacts adds the facts of two profiles about one atom; an order both
// counted counts once.
func mergeFacts(a, b *fact) *fact {
	if a == nil {
		return b
	}
	out := &fact{N: a.N, S: a.S.Clone(), E: append([]entry(nil), a.E...)}
	if a.NC != nil || b.NC != nil {
		out.NC = map[string]int64{}
		for k, v := range a.NC {
			out.NC[k] = v
		}
	}
	for _, e := range b.E {
		if e.O != "" {
			if j := slices.IndexFunc(out.E, func(x entry) bool { return x.O == e.O }); j >= 0 {
				// an order both saw counts once; the shop's confirmation
				// wins over a browser's claim, as in fact.addEntry
				drop := e
				if e.V && !out.E[j].V {
					drop, out.E[j] = out.E[j], e
				}
				out.N--
				out.NC[drop.C]--
				out.S.Add(drop.C, -drop.M)
				continue
			}
		}
		out.E = append(out.E, e)
	}
	out.N += b.N
	for k, v := range b.NC {
		out.NC[k] += v
	}
	out.S.AddAll(b.S)
	sortEntries(out.E)
	return out
}

func sortEntries(es []entry) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j-1].T > es[j].T; j-- {
			es[j-1], es[j] = es[j], es[j-1]
		}
	}
}

// eraseProfile deletes what the projection keeps about a profile, and its
// entries and exits not yet recorded.
func (s *Service) eraseProfile(tx *store.Tx, profile string) error {
	var r record
	switch err := tx.Get(sp, "p/"+profile, &r); {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	default:
		for seg := range r.In {
			if err := tx.Delete(sp, "m/"+seg+"/"+profile); err != nil {
				return err
			}
			if err := addCount(tx, seg, -1); err != nil {
				return err
			}
		}
		if r.Due != 0 {
			if err := tx.Delete(sp, dueKey(r.Due, profile)); err != nil {
				return err
			}
		}
		if err := tx.Delete(sp, "p/"+profile); err != nil {
			return err
		}
	}
	var del []string
	if err := tx.Scan(sp, "o/", func(k string, v json.RawMessage) (bool, error) {
		var c change
		if json.Unmarshal(v, &c) == nil && c.Profile == profile {
			del = append(del, k)
		}
		return true, nil
	}); err != nil {
		return err
	}
	for _, k := range del {
		if err := tx.Delete(sp, k); err != nil {
			return err
		}
	}
	return nil
}

// tick is the background work, one step per call: forget deleted
// segments, start builds of new revisions, re-evaluate the profiles whose
// windows closed, and build segments a chunk of profiles at a time.
func (s *Service) tick(run *project.Run) (more bool, wait time.Duration, err error) {
	defs := s.defs.Load()
	tx := run.Tx
	builds, err := s.cachedBuilds(tx)
	if err != nil {
		return false, 0, err
	}
	// deleted segments: their member keys, count and build state
	for id := range builds {
		if _, ok := defs.segs[id]; ok {
			continue
		}
		n := 0
		if err := tx.Scan(sp, "m/"+id+"/", func(k string, _ json.RawMessage) (bool, error) {
			n++
			return n < cleanupChunk, tx.Delete(sp, k)
		}); err != nil {
			return false, 0, err
		}
		if n == cleanupChunk {
			return true, 0, nil
		}
		if err := tx.Delete(sp, "c/"+id); err != nil {
			return false, 0, err
		}
		if err := tx.Delete(sp, "b/"+id); err != nil {
			return false, 0, err
		}
		delete(builds, id)
	}
	now := s.now()
	// a new segment, or an edited one: build it from the start
	var total int64 = -1
	for _, seg := range defs.sorted {
		if b := builds[seg.ID]; b != nil && b.Rev == seg.Rev {
			continue
		}
		if total < 0 {
			if total, err = tx.CountProfiles(); err != nil {
				return false, 0, err
			}
		}
		b := &buildState{Rev: seg.Rev, Total: total, Started: now.UTC()}
		if err := tx.Set(sp, "b/"+seg.ID, b); err != nil {
			return false, 0, err
		}
		builds[seg.ID] = b
		s.log.Info("segment build started", "segment", seg.ID, "name", seg.Name(), "rev", seg.Rev, "profiles", total)
	}
	// windows that closed
	var due []string
	var nextDue int64
	if err := tx.Scan(sp, "d/", func(k string, _ json.RawMessage) (bool, error) {
		ms, profile, ok := strings.Cut(strings.TrimPrefix(k, "d/"), "/")
		if !ok {
			return true, nil
		}
		t, _ := strconv.ParseInt(ms, 10, 64)
		if t > now.UnixMilli() {
			nextDue = t
			return false, nil
		}
		due = append(due, profile)
		return len(due) < sweepChunk, nil
	}); err != nil {
		return false, 0, err
	}
	if len(due) > 0 {
		w, err := s.newWork(tx, true)
		if err != nil {
			return false, 0, err
		}
		for _, p := range due {
			r, err := w.record(p)
			if err != nil {
				return false, 0, err
			}
			r.all = true
		}
		run.AfterCommit(s.relayWake)
		return true, 0, w.flush()
	}
	if nextDue > 0 {
		// a little late rather than a tick per millisecond
		wait = max(time.Duration(nextDue-now.UnixMilli())*time.Millisecond, minWait)
	}
	// builds, and then the preview index: they wait while ingestion needs
	// the processors, and take a step in yieldRest + 1 then
	began := time.Now()
	if run.Yield && began.Before(s.buildAt) {
		return false, sooner(wait, s.buildAt.Sub(began)), nil
	}
	building := false
	for _, seg := range defs.sorted {
		if !builds[seg.ID].ready(seg.Rev) {
			building = true
		}
	}
	var done bool
	if building {
		done, err = s.buildStep(tx, defs, builds)
	} else {
		x := s.idx.Load()
		done, err = x.buildStep(tx, run.AfterCommit)
		if st := s.IndexStats(); st.Over && !s.overLogged {
			s.overLogged = true
			s.log.Warn("the segments' preview index outgrew its memory budget: previews of new rules read the log (slower); raise [storage] memory_limit",
				"budget_bytes", x.budget, "events", st.Events)
		}
	}
	if err != nil || done {
		return false, wait, err
	}
	if !run.Yield {
		return true, wait, nil
	}
	rest := yieldRest * time.Since(began)
	s.buildAt = began.Add(rest)
	return false, sooner(wait, rest), nil
}

// sooner returns the sooner of two waits, wait ≤ 0 being none.
func sooner(wait, d time.Duration) time.Duration {
	if wait <= 0 {
		return d
	}
	return min(wait, d)
}

// buildStep visits the next chunk of profiles for the segments being built:
// their facts are counted again from the profile's events, and the segments
// evaluated. It reports whether every build is done.
func (s *Service) buildStep(tx *store.Tx, defs *defSet, builds map[string]*buildState) (bool, error) {
	var segs []*Segment
	cursor := string([]byte{0xff})
	for _, seg := range defs.sorted {
		if b := builds[seg.ID]; !b.ready(seg.Rev) {
			segs = append(segs, seg)
			cursor = min(cursor, b.Cursor)
		}
	}
	ids, err := tx.ProfileIDsAfter(cursor, buildChunk)
	if err != nil {
		return false, err
	}
	w, err := s.newWork(tx, false)
	if err != nil {
		return false, err
	}
	var events int64
	for _, profile := range ids {
		r, err := w.record(profile)
		if err != nil {
			return false, err
		}
		if r.stored {
			r.all = false // only what is built here
		}
		need := map[string]*atomDef{}
		types := map[string]bool{}
		for _, seg := range segs {
			if b := builds[seg.ID]; b.Cursor == "" || profile > b.Cursor {
				r.force[seg.ID] = true
				for id, a := range seg.rule.atoms {
					need[id] = a
					types[a.typ] = true
				}
			}
		}
		if len(need) == 0 && r.stored {
			continue
		}
		// a profile new to the projection is read even when the segments
		// built count no event (rules on attributes only): a bot's is no
		// shopper's, and gets no record
		fresh := map[string]*fact{}
		shopper := false
		if err := tx.ProfileEvents(profile, func(typ string) bool {
			events++
			// a profile new to the projection: is it a shopper's (not
			// only bots')? any event decoded until one says so
			return types[typ] || (!r.stored && !shopper)
		}, func(ev *model.Event) error {
			if ev.Bot {
				return nil
			}
			shopper = true
			for id, a := range need {
				if a.typ == ev.Type && a.matches(ev) {
					f := fresh[id]
					if f == nil {
						f = &fact{}
						fresh[id] = f
					}
					f.add(ev)
				}
			}
			return nil
		}); err != nil {
			return false, err
		}
		if !shopper && !r.stored {
			r.skip = true
			continue
		}
		for id := range need {
			if f := fresh[id]; f != nil {
				r.rec.F[id] = f
			} else {
				delete(r.rec.F, id)
			}
			for _, seg := range defs.byAtom[id] {
				r.dirty[seg.ID] = true // the counts may be more complete now
			}
		}
	}
	last := ""
	if len(ids) > 0 {
		last = ids[len(ids)-1]
	}
	allDone := true
	now := s.now().UTC()
	for _, seg := range segs {
		b := builds[seg.ID]
		if last != "" && (b.Cursor == "" || last > b.Cursor) {
			for _, p := range ids {
				if b.Cursor == "" || p > b.Cursor {
					b.Profiles++
				}
			}
			b.Cursor = last
		}
		b.Events += events
		if len(ids) < buildChunk {
			b.Done, b.Finished = true, now
			s.log.Info("segment built", "segment", seg.ID, "name", seg.Name(), "profiles", b.Profiles, "events", b.Events,
				"seconds", b.Finished.Sub(b.Started).Seconds(),
				"events_per_s", math.Round(float64(b.Events)/max(b.Finished.Sub(b.Started).Seconds(), 0.001)))
		} else {
			allDone = false
		}
		if err := tx.Set(sp, "b/"+seg.ID, b); err != nil {
			return false, err
		}
	}
	w.builds = builds
	return allDone, w.flush()
}
