package project

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// State says where a projection is.
type State string

// States of a projection.
const (
	Live        State = "live"        // keeps up with new events
	Backfilling State = "backfilling" // folds the log from its checkpoint to catch up
	Failed      State = "failed"      // stopped by an error; retried later
)

// Status is what the admin UI and the logs show about a projection.
type Status struct {
	Name       string
	Version    uint32
	State      State
	Checkpoint uint64  // seq of the last event folded
	Behind     uint64  // events of the log not folded yet
	Rate       float64 // events folded per second lately
	// Folded and Spent are the events the projection folded since the
	// start and the time its Fold took for them (its own cost, without
	// the transaction's commit): what each projection costs per event.
	Folded  uint64
	Spent   time.Duration
	Error   string // the last error, when failed
	RetryAt time.Time
}

// Options configure a Runner.
type Options struct {
	// Busy reports whether ingestion is busy: folding then waits or slows
	// down, so that acknowledging events keeps priority.
	Busy func() bool
	// Yield reports whether background work (Tick) should yield: ingestion
	// is busy and the processors have no time to spare (Run.Yield).
	Yield  func() bool
	Logger *slog.Logger
	// ProgressEvery is how often a backfill logs its progress (default 5 s).
	ProgressEvery time.Duration
}

const (
	foldChunk = 4096 // events per transaction; halved when Badger says too big
	// deferLimit is the backlog up to which the projections that are not
	// eager wait while events keep arriving (about 10 s at full ingestion
	// rate on 2 cores).
	deferLimit = 250_000
	// fastDelay is how often the fast lane (identity and the eager
	// projections) folds what arrived while ingestion is busy, and
	// fastRest how long it then leaves the CPU to ingestion, in multiples
	// of the time it took: at most half of the runner's time, so that the
	// fast lane keeps up with ingestion below its maximum and takes at
	// most a share of the CPU at the maximum.
	fastDelay = 150 * time.Millisecond
	fastRest  = 1
	// maxRecent bounds the events kept in memory for the next fold.
	maxRecent = 16 * foldChunk
	// foldDelay lets events gather before a fold, so that the events of a
	// profile or session share one read and one write of it. Projections
	// lag the log by about this much; the event list reads the log itself.
	foldDelay = 250 * time.Millisecond
	// retryFirst is how long a failed projection waits before it is tried
	// again; the wait doubles up to retryMax.
	retryFirst = 30 * time.Second
	retryMax   = time.Hour
)

// Runner folds the log into every projection. One goroutine (Run) does all
// the folding, so projections need no locks of their own.
type Runner struct {
	st    *store.Store
	id    *Identity
	projs []*proj // projs[0] is the identity stage
	opts  Options
	log   *slog.Logger
	wake  chan struct{}
	// urgent: someone waits for the fold, skip the gathering delay
	urgent chan struct{}
	erase  chan eraseRequest
	// exclusive runs functions between two folds (Sweep)
	exclusive chan func()
	poked     atomic.Bool // Poke: every Tick is due

	mu      sync.Mutex
	live    uint64         // checkpoint of the identity stage
	synced  uint64         // checkpoint of the live projection furthest behind
	advance chan struct{}  // closed and replaced when live moves
	recent  []*model.Event // events just committed, in seq order: spares reading them back
	// ahead holds what the last read of the log returned beyond what was
	// folded (a run ends early at an identity merge): the next steps fold
	// it without reading it again. It is apart from recent, which holds the
	// newest events, not necessarily the ones after ahead's.
	ahead []*model.Event
	// logReads counts the events read back from the log (for tests)
	logReads atomic.Int64
	latest   uint64 // seq of the newest committed event
}

// proj is a projection and what the runner knows of it. Only Run's
// goroutine writes it; mu guards what Status reads.
type proj struct {
	p          *Projection
	state      State
	checkpoint uint64
	err        error
	retryAt    time.Time
	failures   int
	rate       float64
	rateSeq    uint64
	rateAt     time.Time
	loggedAt   time.Time
	tickAt     time.Time // when Tick is due; zero: at the next Poke
	folded     uint64
	spent      time.Duration
}

// eager reports whether q folds in the fast lane.
func (r *Runner) eager(q *proj) bool { return q == r.projs[0] || q.p.Eager }

// New returns a Runner for the identity stage and the other projections,
// and prepares their data: a projection whose stored version differs from
// its Version is dropped, to be folded again (all of them when identity's
// changed). Call it before anything folds or reads the projections.
func New(st *store.Store, id *Identity, others []*Projection, o Options) (*Runner, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 5 * time.Second
	}
	r := &Runner{st: st, id: id, opts: o, log: o.Logger, wake: make(chan struct{}, 1), urgent: make(chan struct{}, 1),
		erase: make(chan eraseRequest), exclusive: make(chan func()), advance: make(chan struct{})}
	names := map[string]bool{}
	for _, p := range append([]*Projection{&id.Projection}, others...) {
		if names[p.Name] || p.Name == "" || p.Fold == nil {
			return nil, fmt.Errorf("project: projection %q: empty, duplicate or without Fold", p.Name)
		}
		names[p.Name] = true
		r.projs = append(r.projs, &proj{p: p, tickAt: time.Now()})
	}
	idState, err := st.ProjectionState(id.Name)
	if err != nil {
		return nil, err
	}
	rebuildAll := idState.Version != id.Version
	for _, q := range r.projs {
		ps, err := st.ProjectionState(q.p.Name)
		if err != nil {
			return nil, err
		}
		// A projection ahead of identity folded with contexts identity no
		// longer has (identity was rebuilt): fold it again too.
		if rebuildAll || ps.Version != q.p.Version || ps.Checkpoint > idState.Checkpoint {
			if ps != (store.ProjectionState{}) {
				r.log.Info("projection changed: it will be folded again from the start", "projection", q.p.Name,
					"stored_version", ps.Version, "version", q.p.Version)
				if h, err := st.RetentionHorizon(); err == nil && h > 0 {
					r.log.Warn("[storage] retention dropped old events: the projection folds only the events kept", "projection", q.p.Name, "dropped_up_to_seq", h)
				}
			}
			if err := Drop(st, q.p); err != nil {
				return nil, err
			}
			ps = store.ProjectionState{Version: q.p.Version}
		}
		q.checkpoint = ps.Checkpoint
		q.state = Live
		if q.checkpoint < r.projs[0].checkpoint {
			q.state = Backfilling
		}
	}
	r.live = r.projs[0].checkpoint
	r.synced = r.live
	r.latest, err = st.LastSeq()
	return r, err
}

// Drop deletes what a projection keeps and its checkpoint: it folds the log
// again from the start. Nothing may fold meanwhile (shoptrail rebuild runs
// with the appliance stopped).
func Drop(st *store.Store, p *Projection) error {
	if err := st.DropProjection(p.Name, p.Owns...); err != nil {
		return err
	}
	return st.Project(func(tx *store.Tx) error {
		return tx.SetProjectionState(p.Name, store.ProjectionState{Version: p.Version})
	})
}

// Committed hands the runner events just appended to the log, in seq
// order, and wakes it. If it is far behind, it drops them and reads the log.
func (r *Runner) Committed(evs []*model.Event) {
	if len(evs) == 0 {
		return
	}
	r.mu.Lock()
	// recent holds a run of consecutive events: ones that do not continue
	// it (the runner read ahead in the log meanwhile) replace it
	if len(r.recent)+len(evs) > maxRecent || (len(r.recent) > 0 && r.recent[len(r.recent)-1].Seq+1 != evs[0].Seq) {
		r.recent = nil
	}
	r.recent = append(r.recent, evs...)
	r.latest = max(r.latest, evs[len(evs)-1].Seq)
	r.mu.Unlock()
	r.notify()
}

// notify tells the runner that the log has grown. It never blocks.
func (r *Runner) notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Checkpoint returns the seq up to which the identity stage (and the
// eager projections with it) has folded the log.
func (r *Runner) Checkpoint() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live
}

// Status returns where each projection is, identity first.
func (r *Runner) Status() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Status, 0, len(r.projs))
	for _, q := range r.projs {
		s := Status{Name: q.p.Name, Version: q.p.Version, State: q.state, Checkpoint: q.checkpoint, Rate: q.rate, RetryAt: q.retryAt,
			Folded: q.folded, Spent: q.spent}
		s.Behind = r.latest - min(q.checkpoint, r.latest)
		if q.err != nil {
			s.Error = q.err.Error()
		}
		out = append(out, s)
	}
	return out
}

// Wait blocks until every live projection includes the event with seq.
func (r *Runner) Wait(ctx context.Context, seq uint64) error {
	for {
		r.mu.Lock()
		live, advance := r.synced, r.advance
		r.mu.Unlock()
		if live >= seq {
			return nil
		}
		select {
		case r.urgent <- struct{}{}:
		default:
		}
		r.notify()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-advance:
		}
	}
}

// Run folds the log until ctx ends.
//
// While ingestion is idle, every live projection folds each run of events
// in one transaction with the identity stage. While it is busy,
// acknowledging events keeps priority, and the lanes part: the fast lane
// (identity and the eager projections, segments) folds what arrived every
// fastDelay and then leaves the CPU to ingestion for as long as it took;
// the other projections wait, up to a backlog of deferLimit events, and
// then catch up a quarter of the time. Once the burst is over they catch up
// at full speed, in runs of their own that read the identity stage's
// results (Identity.Resolve), and fold with it again when they reach it.
func (r *Runner) Run(ctx context.Context) {
	chunk := foldChunk
	backoff := time.Second
	var fastAt time.Time // when the fast lane last folded alone
	for ctx.Err() == nil {
		select {
		case req := <-r.erase:
			req.done <- r.eraseNow(req)
		case fn := <-r.exclusive:
			fn()
		default:
		}
		throttle := r.opts.Busy != nil && r.opts.Busy()
		hurry := r.hurried()
		began := time.Now()
		lagCP, lagging := r.lagging()
		backlog := r.backlog()
		fastDue := backlog > 0 && (hurry || backlog >= foldChunk || time.Since(fastAt) >= fastDelay)
		if throttle && !hurry {
			switch {
			case fastDue:
				// what arrived, in runs (a merge starts one), for up to
				// fastDelay
				for {
					n, err := r.liveStep(chunk, true)
					if !r.stepDone(ctx, n, err, &chunk, &backoff) || n == 0 || r.backlog() == 0 || time.Since(began) >= fastDelay {
						break
					}
				}
				fastAt = time.Now()
				r.tickStep(true)
				if !sleep(ctx, fastRest*time.Since(began)) {
					return
				}
			case lagging && r.Checkpoint()-lagCP >= deferLimit:
				r.catchUpStep(foldChunk)
				if !sleep(ctx, 3*time.Since(began)) {
					return
				}
			default:
				if !sleep(ctx, min(50*time.Millisecond, max(time.Until(fastAt.Add(fastDelay)), time.Millisecond))) {
					return
				}
			}
			continue
		}
		filled := false
		switch {
		case lagging && !fastDue:
			filled = r.catchUpStep(foldChunk)
		case lagging:
			n, err := r.liveStep(chunk, true)
			fastAt = time.Now()
			if !r.stepDone(ctx, n, err, &chunk, &backoff) {
				continue
			}
			filled = true
		default:
			n, err := r.liveStep(chunk, false)
			if !r.stepDone(ctx, n, err, &chunk, &backoff) {
				continue
			}
			filled = n == chunk || (n > 0 && r.backlog() > 0) // a run may end early (Split)
		}
		if r.backfillStep(foldChunk) {
			filled = true
		}
		if r.tickStep(false) {
			filled = true
		}
		if filled {
			if throttle && !sleep(ctx, 3*time.Since(began)) {
				return
			}
			continue // a backlog: keep folding
		}
		retry := r.nextRetry()
		tick, stopTick := r.nextTick()
		select {
		case <-ctx.Done():
			stopTick()
			return
		case <-r.wake:
			stopTick()
		case <-retry:
			stopTick()
			continue
		case <-tick:
			continue
		case req := <-r.erase:
			stopTick()
			req.done <- r.eraseNow(req)
			continue
		case fn := <-r.exclusive:
			stopTick()
			fn()
			continue
		}
		if r.poked.Load() {
			continue // a Tick waits: no gathering delay
		}
		select {
		case <-ctx.Done():
			return
		case <-r.urgent:
		case <-time.After(foldDelay):
		}
	}
}

// stepDone handles the outcome of a liveStep: a run too big for one
// transaction is halved, an error of the identity stage is retried after a
// growing pause. It reports whether the step succeeded.
func (r *Runner) stepDone(ctx context.Context, n int, err error, chunk *int, backoff *time.Duration) bool {
	switch {
	case errors.Is(err, store.ErrTooBig) && *chunk > 1:
		*chunk /= 2
		return false
	case err != nil:
		r.setError(r.projs[0], err)
		r.log.Error("fold events", "projection", r.id.Name, "err", err, "retry_in", backoff.String())
		sleep(ctx, *backoff)
		*backoff = min(*backoff*2, time.Minute)
		return false
	}
	if *backoff > time.Second {
		r.setError(r.projs[0], nil)
	}
	*chunk, *backoff = foldChunk, time.Second
	return true
}

// sleep waits for d, or returns false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// backlog is how many committed events the live projections lack.
func (r *Runner) backlog() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.latest - min(r.live, r.latest)
}

// hurried reports whether someone waits for the fold (Wait).
func (r *Runner) hurried() bool {
	select {
	case <-r.urgent:
		return true
	default:
		return false
	}
}

// next returns up to max events after seq cp: from those read ahead or the
// recent ones when they continue the checkpoint, from the log otherwise
// (keeping them for the next calls).
func (r *Runner) next(cp uint64, max int) ([]*model.Event, error) {
	r.mu.Lock()
	r.ahead = dropTo(r.ahead, cp)
	r.recent = dropTo(r.recent, cp)
	for _, run := range [][]*model.Event{r.ahead, r.recent} {
		if len(run) > 0 && run[0].Seq == cp+1 {
			n := 1
			for n < min(max, len(run)) && run[n].Seq == run[n-1].Seq+1 {
				n++
			}
			evs := slices.Clone(run[:n])
			r.mu.Unlock()
			return evs, nil
		}
	}
	r.mu.Unlock()
	evs, err := r.st.EventsAfter(cp, max)
	if err != nil || len(evs) == 0 {
		return evs, err
	}
	r.logReads.Add(int64(len(evs)))
	r.mu.Lock()
	r.ahead = slices.Clone(evs)
	r.mu.Unlock()
	return evs, nil
}

// dropTo drops the events up to seq cp from the front of run.
func dropTo(run []*model.Event, cp uint64) []*model.Event {
	i := 0
	for i < len(run) && run[i].Seq <= cp {
		i++
	}
	return run[i:]
}

func wrap(evs []*model.Event) []Event {
	out := make([]Event, len(evs))
	for i, ev := range evs {
		out[i].Event = ev
	}
	return out
}

// liveStep folds up to max events into the live projections that have
// folded as far as the identity stage (only the eager ones when fast),
// identity first, in one transaction, and returns how many it folded. A
// projection other than identity that fails is set aside and the step
// repeated without it.
func (r *Runner) liveStep(max int, fast bool) (int, error) {
	for {
		cp := r.Checkpoint()
		raw, err := r.next(cp, max)
		if err != nil || len(raw) == 0 {
			return 0, err
		}
		if r.id.Split != nil {
			// a costly event (an identity merge) starts a run of its own
			var n int
			if err := r.st.Read(func(tx *store.Tx) error {
				n = r.id.Split(tx, raw)
				return nil
			}); err != nil {
				return 0, err
			}
			if n >= 1 && n < len(raw) {
				raw = raw[:n]
			}
		}
		evs := wrap(raw)
		last := raw[len(raw)-1].Seq
		var live []*proj
		for _, q := range r.projs {
			if q.state == Live && q.checkpoint == cp && (!fast || r.eager(q)) {
				live = append(live, q)
			}
		}
		var culprit *proj
		var after []func()
		err = r.st.Project(func(tx *store.Tx) error {
			merges := map[string]string{}
			merged := func(from, to string) error {
				merges[from] = to
				for _, q := range r.projs[1:] {
					if q.p.Move == nil || q.state == Failed {
						continue
					}
					if err := safely(q.p.Name, func() error { return q.p.Move(tx, from, to) }); err != nil {
						culprit = q
						return fmt.Errorf("move %s to %s: %w", from, to, err)
					}
				}
				return nil
			}
			for _, q := range live {
				run := &Run{Tx: tx, Events: evs, after: &after}
				if q == r.projs[0] {
					run.merged = merged
				}
				t0 := time.Now()
				err := safely(q.p.Name, func() error { return q.p.Fold(run) })
				r.cost(q, t0)
				if err != nil {
					if culprit == nil {
						culprit = q
					}
					return err
				}
				if err := tx.SetProjectionState(q.p.Name, store.ProjectionState{Version: q.p.Version, Checkpoint: last}); err != nil {
					return err
				}
				if q == r.projs[0] && len(merges) > 0 {
					// the others fold the run after the merges moved their
					// data: they see each event under its final profile
					for i := range evs {
						for to, ok := merges[evs[i].ProfileID]; ok; to, ok = merges[to] {
							evs[i].ProfileID = to
						}
					}
				}
			}
			return nil
		})
		switch {
		case errors.Is(err, store.ErrTooBig):
			return 0, err
		case err != nil && culprit != nil && culprit != r.projs[0]:
			r.fail(culprit, err)
			continue
		case err != nil:
			return 0, err
		}
		for _, fn := range after {
			fn()
		}
		r.mu.Lock()
		for _, q := range live {
			q.advance(last, len(raw))
		}
		r.live = last
		r.moved()
		r.mu.Unlock()
		return len(raw), nil
	}
}

// backfillStep folds up to max events into one projection that is behind
// (backfilling, or failed and due for a retry), and reports whether it did
// anything: false when no projection is behind.
func (r *Runner) backfillStep(max int) (more bool) {
	now := time.Now()
	var q *proj
	for _, c := range r.projs[1:] {
		if c.state == Backfilling || (c.state == Failed && !now.Before(c.retryAt)) {
			q = c
			break
		}
	}
	if q == nil {
		return false
	}
	target := r.Checkpoint()
	if q.state == Failed {
		r.log.Info("retrying a failed projection", "projection", q.p.Name, "from", q.checkpoint)
		r.setState(q, Backfilling)
	}
	if q.checkpoint >= target {
		r.setState(q, Live)
		r.mu.Lock()
		r.moved()
		r.mu.Unlock()
		r.log.Info("projection caught up", "projection", q.p.Name, "checkpoint", q.checkpoint)
		return true // another may be behind
	}
	raw, err := r.st.EventsAfter(q.checkpoint, int(min(uint64(max), target-q.checkpoint)))
	if err != nil {
		r.fail(q, err)
		return true
	}
	if len(raw) == 0 { // erased meanwhile
		r.mu.Lock()
		q.checkpoint = target
		r.mu.Unlock()
		return true
	}
	evs := wrap(raw)
	last := raw[len(raw)-1].Seq
	var after []func()
	err = r.st.Project(func(tx *store.Tx) error {
		if err := r.id.Resolve(tx, evs); err != nil {
			return fmt.Errorf("resolve identities: %w", err)
		}
		run := &Run{Tx: tx, Events: evs, Backfill: true, after: &after}
		t0 := time.Now()
		err := safely(q.p.Name, func() error { return q.p.Fold(run) })
		r.cost(q, t0)
		if err != nil {
			return err
		}
		return tx.SetProjectionState(q.p.Name, store.ProjectionState{Version: q.p.Version, Checkpoint: last})
	})
	if errors.Is(err, store.ErrTooBig) && max > 1 {
		return r.backfillStep(max / 2)
	}
	if err != nil {
		r.fail(q, err)
		return true
	}
	for _, fn := range after {
		fn()
	}
	r.mu.Lock()
	q.advance(last, len(raw))
	behind := target - min(last, target)
	log := time.Since(q.loggedAt) >= r.opts.ProgressEvery
	if log {
		q.loggedAt = time.Now()
	}
	rate := q.rate
	r.mu.Unlock()
	if log {
		r.log.Info("projection backfill", "projection", q.p.Name, "checkpoint", last, "behind", behind, "events_per_s", int(rate))
	}
	return true
}

// advance records that q folded n more events, up to last (r.mu held).
func (q *proj) advance(last uint64, n int) {
	q.checkpoint = last
	q.measure(last)
	q.folded += uint64(n)
}

// measure updates the fold rate, a moving average over about a second.
func (q *proj) measure(seq uint64) {
	now := time.Now()
	if q.rateAt.IsZero() {
		q.rateAt, q.rateSeq = now, seq
		return
	}
	if d := now.Sub(q.rateAt); d >= time.Second {
		q.rate = float64(seq-min(q.rateSeq, seq)) / d.Seconds()
		q.rateAt, q.rateSeq = now, seq
	}
}

// cost adds the time since t0 to what q's folds took.
func (r *Runner) cost(q *proj, t0 time.Time) {
	d := time.Since(t0)
	r.mu.Lock()
	q.spent += d
	r.mu.Unlock()
}

// moved recomputes synced after a checkpoint or a state changed, and wakes
// those who Wait. Call it with mu held.
func (r *Runner) moved() {
	synced := r.live
	for _, q := range r.projs {
		if q.state == Live {
			synced = min(synced, q.checkpoint)
		}
	}
	r.synced = synced
	close(r.advance)
	r.advance = make(chan struct{})
}

// lagging returns the checkpoint of the live projection furthest behind
// the identity stage, and whether one is.
func (r *Runner) lagging() (uint64, bool) {
	cp := r.projs[0].checkpoint
	low := cp
	for _, q := range r.projs[1:] {
		if q.state == Live {
			low = min(low, q.checkpoint)
		}
	}
	return low, low < cp
}

// catchUpStep folds up to max events into the live projections furthest
// behind the identity stage (those that waited while the fast lane went
// ahead), in one transaction with the identities Resolve finds, and reports
// whether it did anything. A projection that fails is set aside.
func (r *Runner) catchUpStep(max int) bool {
	low, lagging := r.lagging()
	if !lagging {
		return false
	}
	target := r.Checkpoint()
	var group []*proj
	for _, q := range r.projs[1:] {
		if q.state == Live && q.checkpoint == low {
			group = append(group, q)
		}
	}
	raw, err := r.st.EventsAfter(low, int(min(uint64(max), target-low)))
	if err != nil {
		for _, q := range group {
			r.fail(q, err)
		}
		return true
	}
	last := target // erased meanwhile: nothing left to fold up to target
	if len(raw) > 0 {
		last = raw[len(raw)-1].Seq
	}
	evs := wrap(raw)
	var culprit *proj
	var after []func()
	err = r.st.Project(func(tx *store.Tx) error {
		if len(evs) > 0 {
			if err := r.id.Resolve(tx, evs); err != nil {
				return fmt.Errorf("resolve identities: %w", err)
			}
		}
		for _, q := range group {
			if len(evs) > 0 {
				run := &Run{Tx: tx, Events: evs, after: &after}
				t0 := time.Now()
				err := safely(q.p.Name, func() error { return q.p.Fold(run) })
				r.cost(q, t0)
				if err != nil {
					culprit = q
					return err
				}
			}
			if err := tx.SetProjectionState(q.p.Name, store.ProjectionState{Version: q.p.Version, Checkpoint: last}); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, store.ErrTooBig) && max > 1:
		return r.catchUpStep(max / 2)
	case err != nil && culprit != nil:
		r.fail(culprit, err)
		return true
	case err != nil:
		for _, q := range group {
			r.fail(q, err)
		}
		return true
	}
	for _, fn := range after {
		fn()
	}
	r.mu.Lock()
	for _, q := range group {
		q.advance(last, len(raw))
	}
	r.moved()
	r.mu.Unlock()
	return true
}

func (r *Runner) setState(q *proj, s State) {
	r.mu.Lock()
	q.state = s
	if s != Failed {
		q.err = nil
	}
	r.mu.Unlock()
}

// setError records the error of the identity stage, which is retried
// rather than set aside: everything else depends on it.
func (r *Runner) setError(q *proj, err error) {
	r.mu.Lock()
	q.err = err
	r.mu.Unlock()
}

// fail sets a projection aside until its retry time.
func (r *Runner) fail(q *proj, err error) {
	r.mu.Lock()
	q.state, q.err = Failed, err
	wait := retryFirst << min(q.failures, 7)
	q.failures++
	q.retryAt = time.Now().Add(min(wait, retryMax))
	r.moved() // a failed projection holds no one waiting
	r.mu.Unlock()
	if q.p.Reset != nil {
		q.p.Reset()
	}
	args := []any{"projection", q.p.Name, "err", err, "retry_at", q.retryAt.Format(time.RFC3339)}
	if pe := (*panicError)(nil); errors.As(err, &pe) {
		args = append(args, "stack", string(pe.stack))
	}
	r.log.Error("projection failed; the others go on", args...)
}

// Poke makes every projection's Tick due now (a projection's definitions
// changed) and wakes the runner. It never blocks.
func (r *Runner) Poke() {
	r.poked.Store(true)
	r.notify()
	select {
	case r.urgent <- struct{}{}: // no gathering delay
	default:
	}
}

// tickStep runs the Tick of one live projection that is due (an eager one
// when eager), and reports whether it did anything.
func (r *Runner) tickStep(eager bool) bool {
	now := time.Now()
	if r.poked.Swap(false) {
		for _, q := range r.projs[1:] {
			q.tickAt = now
		}
	}
	for _, q := range r.projs[1:] {
		if q.p.Tick == nil || (eager && !q.p.Eager) {
			continue
		}
		if q.state != Live || q.tickAt.IsZero() || now.Before(q.tickAt) {
			continue
		}
		var after []func()
		var more bool
		var wait time.Duration
		err := r.st.Project(func(tx *store.Tx) error {
			run := &Run{Tx: tx, after: &after, Yield: r.opts.Yield != nil && r.opts.Yield()}
			return safely(q.p.Name, func() error {
				var err error
				more, wait, err = q.p.Tick(run)
				return err
			})
		})
		if err != nil {
			r.fail(q, fmt.Errorf("tick: %w", err))
			q.tickAt = now // again once it is live
			return true
		}
		for _, fn := range after {
			fn()
		}
		switch {
		case more:
			q.tickAt = now
			return true
		case wait > 0:
			q.tickAt = now.Add(wait)
		default:
			q.tickAt = time.Time{}
		}
	}
	return false
}

// nextTick fires when the first Tick is due; stop releases its timer.
func (r *Runner) nextTick() (<-chan time.Time, func()) {
	var first time.Time
	for _, q := range r.projs[1:] {
		if q.p.Tick != nil && q.state == Live && !q.tickAt.IsZero() && (first.IsZero() || q.tickAt.Before(first)) {
			first = q.tickAt
		}
	}
	if first.IsZero() {
		return nil, func() {}
	}
	t := time.NewTimer(time.Until(first))
	return t.C, func() { t.Stop() }
}

// nextRetry fires when the first failed projection is due for a retry.
func (r *Runner) nextRetry() <-chan time.Time {
	var first time.Time
	for _, q := range r.projs[1:] {
		if q.state == Failed && (first.IsZero() || q.retryAt.Before(first)) {
			first = q.retryAt
		}
	}
	if first.IsZero() {
		return nil
	}
	return time.After(time.Until(first))
}

type eraseRequest struct {
	profileID string
	also      func(tx *store.Tx) error
	done      chan eraseResult
}

type eraseResult struct {
	events int
	err    error
}

// Erase deletes a profile from every projection, its events from the log,
// and what also deletes, between two folds. It first folds what the log
// holds, so that every event of the profile is indexed under it. It returns
// how many events it deleted.
func (r *Runner) Erase(ctx context.Context, profileID string, also func(tx *store.Tx) error) (int, error) {
	req := eraseRequest{profileID: profileID, also: also, done: make(chan eraseResult, 1)}
	select {
	case r.erase <- req:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case res := <-req.done:
		return res.events, res.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (r *Runner) eraseNow(req eraseRequest) eraseResult {
	for {
		n, err := r.liveStep(foldChunk, false)
		if err != nil {
			return eraseResult{err: err}
		}
		if n == 0 || r.backlog() == 0 {
			break
		}
	}
	n, err := r.st.Erase(func(tx *store.Tx) error {
		for _, q := range r.projs {
			if q.p.Erase == nil {
				continue
			}
			if err := q.p.Erase(tx, req.profileID); err != nil {
				return fmt.Errorf("projection %s: %w", q.p.Name, err)
			}
		}
		if req.also != nil {
			return req.also(tx)
		}
		return nil
	})
	// what was kept in memory may name what is gone
	r.mu.Lock()
	r.ahead, r.recent = nil, nil
	r.mu.Unlock()
	for _, q := range r.projs {
		if q.p.Reset != nil {
			q.p.Reset()
		}
	}
	return eraseResult{events: n, err: err}
}
