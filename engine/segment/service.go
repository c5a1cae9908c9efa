package segment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// MaxSegments is how many segments may be defined.
const MaxSegments = 500

// Errors.
var (
	ErrNotFound = errors.New("segment: no such segment")
	ErrTooMany  = fmt.Errorf("segment: at most %d segments", MaxSegments)
)

// Recorder appends facts to the log (track.Tracker).
type Recorder interface {
	Record(ctx context.Context, evs []*model.Event, also func(tx *store.Tx) error) error
}

// Options configure a Service.
type Options struct {
	Now    func() time.Time // the clock rules are evaluated at (tests inject one)
	Logger *slog.Logger
	// IndexBudget bounds the memory of the preview index, in bytes (0: no
	// bound): an index that outgrows it is dropped, and previews read the
	// log.
	IndexBudget int64
}

// Service defines segments, keeps their members (its Projection) and
// answers who is in which.
type Service struct {
	st   *store.Store
	rec  Recorder
	now  func() time.Time
	log  *slog.Logger
	defs atomic.Pointer[defSet]
	poke func()

	mu    sync.Mutex // serialises changes of definitions
	moved []moved    // merges the next fold re-evaluates; the runner's goroutine only
	// builds are the build states as committed (cachedBuilds); the
	// runner's goroutine only
	builds map[string]*buildState
	relay  chan struct{}
	// idx is the preview index; merges waits for the next fold to apply
	// them to it (the runner's goroutine only)
	idx         atomic.Pointer[index]
	merges      [][2]string
	indexBudget int64
	overLogged  bool
	// buildAt is when the next build step may run while run.Yield says
	// ingestion needs the processors (Tick's goroutine only)
	buildAt time.Time

	// relayMu serialises RelayOnce; relayed is the last outbox key it
	// recorded, where the next one starts reading, and fullAt when it last
	// read the outbox from its start (see RelayOnce)
	relayMu        sync.Mutex
	relayed        string
	fullAt         time.Time
	relayFullEvery time.Duration
}

// New loads the segment definitions. rec records entries and exits in the
// log (nil: they are kept until Run has one).
func New(st *store.Store, rec Recorder, o Options) (*Service, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{st: st, rec: rec, now: o.Now, log: o.Logger, poke: func() {}, relay: make(chan struct{}, 1), indexBudget: o.IndexBudget,
		relayFullEvery: time.Minute}
	raw, err := st.SegmentDefs()
	if err != nil {
		return nil, err
	}
	segs := map[string]*Segment{}
	for id, b := range raw {
		var seg Segment
		if err := json.Unmarshal(b, &seg); err != nil {
			return nil, fmt.Errorf("segment: stored segment %s: %w", id, err)
		}
		if seg.rule, err = Parse(seg.Def); err != nil {
			return nil, fmt.Errorf("segment: stored segment %s: %w", id, err)
		}
		segs[id] = &seg
	}
	s.defs.Store(newDefSet(segs))
	s.idx.Store(newIndex(o.IndexBudget))
	return s, nil
}

// SetPoke gives the function that wakes the projection runner when the
// definitions change (project.Runner.Poke).
func (s *Service) SetPoke(poke func()) { s.poke = poke }

// View is a segment as the API shows it.
type View struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Match      string            `json:"match"`
	Conditions []json.RawMessage `json:"conditions"`
	Count      int64             `json:"count"`
	Building   bool              `json:"building"`
	Progress   *Progress         `json:"progress,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
}

// Progress is how far the build of a segment is.
type Progress struct {
	Profiles int64     `json:"profiles"` // visited
	Total    int64     `json:"total"`    // when it began
	Events   int64     `json:"events"`   // read
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// definition is what is stored of a rule: name, match and the conditions
// as they were sent.
func definition(raw []byte, r *Rule) (json.RawMessage, error) {
	var d Definition
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, err
	}
	d.Name, d.Match = r.Name, r.Match
	return json.Marshal(d)
}

// Create defines a segment; its members are built in the background.
func (s *Service) Create(raw []byte) (View, error) {
	r, err := Parse(raw)
	if err != nil {
		return View{}, err
	}
	def, err := definition(raw, r)
	if err != nil {
		return View{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.defs.Load()
	if len(cur.segs) >= MaxSegments {
		return View{}, ErrTooMany
	}
	now := s.now().UTC()
	seg := &Segment{ID: newID(), Rev: 1, Def: def, CreatedAt: now, UpdatedAt: now, rule: r}
	if err := s.st.PutSegmentDef(seg.ID, seg); err != nil {
		return View{}, err
	}
	s.swap(func(m map[string]*Segment) { m[seg.ID] = seg })
	return s.Get(seg.ID)
}

// Update replaces a segment's definition. A change of its conditions or
// match builds it again; a new name alone does not.
func (s *Service) Update(id string, raw []byte) (View, error) {
	r, err := Parse(raw)
	if err != nil {
		return View{}, err
	}
	def, err := definition(raw, r)
	if err != nil {
		return View{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.defs.Load().segs[id]
	if !ok {
		return View{}, ErrNotFound
	}
	seg := *old
	seg.Def, seg.rule, seg.UpdatedAt = def, r, s.now().UTC()
	if !sameRule(old, &seg) {
		seg.Rev++
	}
	if err := s.st.PutSegmentDef(id, &seg); err != nil {
		return View{}, err
	}
	s.swap(func(m map[string]*Segment) { m[id] = &seg })
	return s.Get(id)
}

// sameRule reports whether two definitions select the same profiles (they
// may differ in name).
func sameRule(a, b *Segment) bool {
	var da, db Definition
	json.Unmarshal(a.Def, &da)
	json.Unmarshal(b.Def, &db)
	da.Name, db.Name = "", ""
	ja, _ := json.Marshal(da)
	jb, _ := json.Marshal(db)
	return string(ja) == string(jb)
}

// Delete deletes a segment; its members are forgotten in the background.
func (s *Service) Delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.defs.Load().segs[id]; !ok {
		return ErrNotFound
	}
	if err := s.st.DeleteSegmentDef(id); err != nil {
		return err
	}
	s.swap(func(m map[string]*Segment) { delete(m, id) })
	return nil
}

func (s *Service) swap(change func(map[string]*Segment)) {
	m := map[string]*Segment{}
	for id, seg := range s.defs.Load().segs {
		m[id] = seg
	}
	change(m)
	s.defs.Store(newDefSet(m))
	s.poke()
}

// Get returns a segment with its count and build progress.
func (s *Service) Get(id string) (View, error) {
	seg, ok := s.defs.Load().segs[id]
	if !ok {
		return View{}, ErrNotFound
	}
	var v View
	err := s.st.Read(func(tx *store.Tx) error {
		var err error
		v, err = view(tx, seg)
		return err
	})
	return v, err
}

func view(tx *store.Tx, seg *Segment) (View, error) {
	var d Definition
	if err := json.Unmarshal(seg.Def, &d); err != nil {
		return View{}, err
	}
	v := View{ID: seg.ID, Name: d.Name, Match: d.Match, Conditions: d.Conditions, CreatedAt: seg.CreatedAt, UpdatedAt: seg.UpdatedAt}
	if err := tx.Get(sp, "c/"+seg.ID, &v.Count); err != nil && !errors.Is(err, store.ErrNotFound) {
		return v, err
	}
	var b buildState
	switch err := tx.Get(sp, "b/"+seg.ID, &b); {
	case errors.Is(err, store.ErrNotFound):
		v.Building = true
	case err != nil:
		return v, err
	default:
		v.Building = !b.ready(seg.Rev)
		if b.Rev == seg.Rev {
			v.Progress = &Progress{Profiles: b.Profiles, Total: b.Total, Events: b.Events, Started: b.Started, Finished: b.Finished}
		}
	}
	return v, nil
}

// List returns every segment, by name.
func (s *Service) List() ([]View, error) {
	defs := s.defs.Load()
	out := make([]View, 0, len(defs.sorted))
	err := s.st.Read(func(tx *store.Tx) error {
		for _, seg := range defs.sorted {
			v, err := view(tx, seg)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out, err
}

// Member is a profile in a segment.
type Member struct {
	Profile     string    `json:"-"`
	Email       string    `json:"email,omitempty"`
	AnonymousID string    `json:"anonymous_id,omitempty"`
	Since       time.Time `json:"since"`
}

func member(profile string, since int64) Member {
	return Member{Profile: profile, Email: model.ProfileEmail(profile), AnonymousID: model.ProfileAnonymousID(profile),
		Since: time.UnixMilli(since).UTC()}
}

// Members returns up to limit members of a segment after the profile id
// after ("" for the first page), in profile id order, and the cursor of the
// next page ("" at the end). emailableOnly leaves out profiles without an
// email (anonymous shoppers).
func (s *Service) Members(id, after string, limit int, emailableOnly bool) ([]Member, string, error) {
	if _, ok := s.defs.Load().segs[id]; !ok {
		return nil, "", ErrNotFound
	}
	prefix := "m/" + id + "/"
	cursor := after
	if emailableOnly {
		prefix += "u:"
		if rest, ok := strings.CutPrefix(after, "u:"); ok {
			cursor = rest
		} else if after < "u:" {
			cursor = ""
		} else {
			return nil, "", nil
		}
	}
	var out []Member
	more := false
	err := s.st.Read(func(tx *store.Tx) error {
		from := ""
		if cursor != "" {
			from = prefix + cursor
		}
		return tx.ScanFrom(sp, prefix, from, false, true, func(k string, v json.RawMessage) (bool, error) {
			if len(out) == limit {
				more = true
				return false, nil
			}
			var since int64
			if err := json.Unmarshal(v, &since); err != nil {
				return false, err
			}
			out = append(out, member(strings.TrimPrefix(k, "m/"+id+"/"), since))
			return true, nil
		})
	})
	next := ""
	if more && len(out) > 0 {
		next = out[len(out)-1].Profile
	}
	return out, next, err
}

// Exists reports whether a segment is defined (the campaigns' "in segment"
// condition checks the id it names).
func (s *Service) Exists(id string) bool {
	_, ok := s.defs.Load().segs[id]
	return ok
}

// IsMember reports whether a profile (model.UserProfileID,
// model.AnonymousProfileID) is in a segment now.
func (s *Service) IsMember(profileID, segmentID string) (bool, error) {
	if _, ok := s.defs.Load().segs[segmentID]; !ok {
		return false, ErrNotFound
	}
	var since int64
	err := s.st.Read(func(tx *store.Tx) error { return tx.Get(sp, "m/"+segmentID+"/"+profileID, &since) })
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Membership is a segment a profile is in.
type Membership struct {
	ID    string    `json:"id"`
	Name  string    `json:"name"`
	Since time.Time `json:"since"`
}

// ProfileSegments returns the segments a profile is in, by name.
func (s *Service) ProfileSegments(profileID string) ([]Membership, error) {
	defs := s.defs.Load()
	var r record
	err := s.st.Read(func(tx *store.Tx) error { return tx.Get(sp, "p/"+profileID, &r) })
	if errors.Is(err, store.ErrNotFound) {
		return []Membership{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := []Membership{}
	for id, since := range r.In {
		if seg, ok := defs.segs[id]; ok {
			out = append(out, Membership{ID: id, Name: seg.Name(), Since: time.UnixMilli(since).UTC()})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Name < out[j].Name || (out[i].Name == out[j].Name && out[i].ID < out[j].ID)
	})
	return out, nil
}

// PreviewResult is what a rule would select now.
type PreviewResult struct {
	Count    int64    `json:"count"`
	Sample   []Member `json:"sample"`
	Profiles int64    `json:"profiles"` // profiles looked at
}

// errStop ends a scan early.
var errStop = errors.New("stop")

// sampleSize is how many members a preview shows.
const sampleSize = 20

// Preview evaluates a rule over every profile without saving it: over the
// preview index (index.go) once it is built and holds what the rule tests;
// else event conditions that a built segment already counts (with a window
// at least as long) are read from the projection, others from each
// profile's events.
func (s *Service) Preview(ctx context.Context, raw []byte) (PreviewResult, error) {
	res := PreviewResult{Sample: []Member{}}
	r, err := Parse(raw)
	if err != nil {
		return res, err
	}
	defs := s.defs.Load()
	now := s.now().UnixMilli()
	if sn, ok := s.idx.Load().snapshot(r); ok {
		err := s.st.Read(func(tx *store.Tx) error {
			var err error
			res, err = s.previewIndexed(r, sn, now, func(email string) (*model.User, error) {
				u, err := tx.User(email)
				switch {
				case err == nil:
					return &u, nil
				case errors.Is(err, store.ErrNotFound):
					return nil, nil
				}
				return nil, err
			})
			return err
		})
		return res, err
	}
	return s.previewLog(ctx, r, defs, now)
}

// previewLog evaluates a rule over the projection's records and the log.
func (s *Service) previewLog(ctx context.Context, r *Rule, defs *defSet, now int64) (PreviewResult, error) {
	res := PreviewResult{Sample: []Member{}}
	err := s.st.Read(func(tx *store.Tx) error {
		builds, err := loadBuilds(tx)
		if err != nil {
			return err
		}
		need := map[string]*atomDef{}
		for id, a := range r.atoms {
			if !counted(defs, builds, id, r.windows[id], now) {
				need[id] = a
			}
		}
		// the events of the types the rule needs counted, read through the
		// type index: a fraction of the log for most rules
		fresh := map[string]map[string]*fact{} // profile → atom → fact
		byType := map[string][]*atomDef{}
		for _, a := range need {
			byType[a.typ] = append(byType[a.typ], a)
		}
		sessions := map[string]string{}
		for typ, atoms := range byType {
			n := 0
			if err := tx.TypeEvents(typ, func(ev *model.Event, sid string) error {
				if n++; n%4096 == 0 {
					if err := ctx.Err(); err != nil {
						return err
					}
				}
				if ev.Bot {
					return nil
				}
				profile := model.UserProfileID(ev.Email)
				if sid != "" {
					var ok bool
					if profile, ok = sessions[sid]; !ok {
						sess, err := tx.Session(sid)
						if errors.Is(err, store.ErrNotFound) {
							return nil
						}
						if err != nil {
							return err
						}
						profile = sess.ProfileID
						if len(sessions) < 1_000_000 {
							sessions[sid] = profile
						}
					}
				}
				for _, a := range atoms {
					if a.matches(ev) {
						m := fresh[profile]
						if m == nil {
							m = map[string]*fact{}
							fresh[profile] = m
						}
						if m[a.id] == nil {
							m[a.id] = &fact{}
						}
						m[a.id].add(ev)
					}
				}
				return nil
			}); err != nil {
				return err
			}
		}
		after := ""
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			ids, err := tx.ProfileIDsAfter(after, 1000)
			if err != nil {
				return err
			}
			for _, profile := range ids {
				var rec record
				err := tx.Get(sp, "p/"+profile, &rec)
				stored := err == nil
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				facts := rec.F
				if len(need) > 0 {
					facts = map[string]*fact{}
					for id, f := range rec.F {
						if need[id] == nil {
							facts[id] = f
						}
					}
					for id, f := range fresh[profile] {
						facts[id] = f
					}
				}
				if !stored {
					// a shopper the projection has not seen (no segment was
					// defined yet): the events say whether it is one
					if err := tx.ProfileEvents(profile, nil, func(ev *model.Event) error {
						if !ev.Bot {
							stored = true
							return errStop
						}
						return nil
					}); err != nil && !errors.Is(err, errStop) {
						return err
					}
				}
				if !stored {
					continue // bots only, or not folded yet
				}
				res.Profiles++
				attr := attributes(model.ProfileEmail(profile), nil)
				if len(r.attrs) > 0 {
					if email := model.ProfileEmail(profile); email != "" {
						u, err := tx.User(email)
						switch {
						case err == nil:
							attr = attributes(email, &u)
						case !errors.Is(err, store.ErrNotFound):
							return err
						}
					}
				}
				if r.root.eval(&evalCtx{facts: facts, attr: attr, now: now}) {
					res.Count++
					if len(res.Sample) < sampleSize {
						res.Sample = append(res.Sample, member(profile, now))
					}
				}
			}
			if len(ids) < 1000 {
				return nil
			}
			after = ids[len(ids)-1]
		}
	})
	return res, err
}

// counted reports whether the projection's facts about an atom are
// complete for windows ws: a built segment counts it over windows reaching
// at least as far back.
func counted(defs *defSet, builds map[string]*buildState, atom string, ws []window, now int64) bool {
	a, ok := defs.atoms[atom]
	if !ok {
		return false
	}
	if !slices.ContainsFunc(defs.byAtom[atom], func(seg *Segment) bool { return builds[seg.ID].ready(seg.Rev) }) {
		return false
	}
	return cutoff(a.typ, defs.windows[atom], now) <= cutoff(a.typ, ws, now)
}

func (s *Service) relayWake() {
	select {
	case s.relay <- struct{}{}:
	default:
	}
}

// relayChunk is how many entries and exits one transaction records.
const relayChunk = 200

// Run records the entries into and exits from segments of known users (with
// an email) in the log, as segment_entered and segment_exited events with
// props segment_id and segment_name, until ctx ends. Each is deleted from
// the projection in the transaction that appends its event, so a crash
// neither loses nor repeats one. Automations and the timeline follow them
// in the log (a projection folding those types has its own checkpoint).
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.relay:
		case <-t.C:
		}
		for {
			n, err := s.RelayOnce(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("recording segment entries and exits failed; retrying", "err", err)
				}
				break
			}
			if n < relayChunk {
				break
			}
		}
	}
}

// RelayOnce records up to relayChunk waiting entries and exits and returns
// how many it recorded.
func (s *Service) RelayOnce(ctx context.Context) (int, error) {
	if s.rec == nil {
		return 0, nil
	}
	s.relayMu.Lock()
	defer s.relayMu.Unlock()
	var keys []string
	var emails []string
	scan := func(tx *store.Tx, after string) error {
		return tx.ScanFrom(sp, "o/", after, false, true, func(k string, v json.RawMessage) (bool, error) {
			var c change
			if err := json.Unmarshal(v, &c); err != nil {
				return false, err
			}
			keys = append(keys, k)
			if !slices.Contains(emails, c.Email) {
				emails = append(emails, c.Email)
			}
			return len(keys) < relayChunk, nil
		})
	}
	// The outbox is read from after the last key recorded: the keys
	// before it were deleted, and Badger's iterator steps over every
	// deleted key until a compaction drops it, so reading from the start
	// each time cost more the more had been recorded (an eighth of all CPU
	// in BenchmarkPipelineFold). Keys only grow (oseq), but the counter
	// starts again when the projection is folded anew: once a minute, a
	// read that finds little starts from the beginning.
	err := s.st.Read(func(tx *store.Tx) error {
		if err := scan(tx, s.relayed); err != nil {
			return err
		}
		if len(keys) < relayChunk && s.relayed != "" && time.Since(s.fullAt) >= s.relayFullEvery {
			s.fullAt = time.Now()
			keys, emails = keys[:0], emails[:0]
			return scan(tx, "")
		}
		return nil
	})
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	// an erasure holds the user's lock while it deletes the user's
	// waiting changes: read them again under the lock
	defer s.st.Lock("user", emails...)()
	var evs []*model.Event
	var kept []string
	err = s.st.Read(func(tx *store.Tx) error {
		for _, k := range keys {
			var c change
			switch err := tx.Get(sp, k, &c); {
			case errors.Is(err, store.ErrNotFound):
				continue
			case err != nil:
				return err
			}
			typ := Exited
			if c.Entered {
				typ = Entered
			}
			id, _ := json.Marshal(c.Segment)
			name, _ := json.Marshal(c.Name)
			evs = append(evs, &model.Event{Type: typ, Email: c.Email, Time: c.At,
				Props: map[string]json.RawMessage{"segment_id": id, "segment_name": name}})
			kept = append(kept, k)
		}
		return nil
	})
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	err = s.rec.Record(ctx, evs, func(tx *store.Tx) error {
		for _, k := range kept {
			if err := tx.Delete(sp, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.relayed = keys[len(keys)-1]
	return len(keys), nil
}
