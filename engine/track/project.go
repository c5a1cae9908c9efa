package track

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// projector folds the event log, in order, into profiles, identity links,
// sessions, touchpoints and the event indexes. Each fold step commits its
// results together with the checkpoint (the last seq folded), so a crash
// repeats no work and loses none, and `shoptrail rebuild` can start over.
type projector struct {
	st      *store.Store
	timeout atomic.Int64 // the session timeout, nanoseconds
	log     *slog.Logger
	cache   *state
	busy    func() bool // whether ingestion is busy
	known   func(productID string) bool
	wake    chan struct{}
	urgent  chan struct{} // someone waits for the fold: skip the gathering delay
	erase   chan eraseRequest

	mu      sync.Mutex
	folded  uint64         // checkpoint after the last step
	advance chan struct{}  // closed and replaced when folded moves
	recent  []*model.Event // events just committed, in seq order: spares reading them back
	latest  uint64         // seq of the newest committed event
}

const (
	// cacheEntries bounds each map of the in-memory working set (about
	// 0.5 KiB an entry).
	cacheEntries = 100_000
	foldChunk    = 4096 // events per transaction; halved when Badger says too big
	// deferLimit is the backlog up to which folding waits while events
	// keep arriving (about 10 s at full ingestion rate on 2 cores).
	deferLimit = 250_000
	// maxRecent bounds the events kept in memory for the next fold.
	maxRecent = 16 * foldChunk
	// foldDelay lets events gather before a fold, so that the events of a
	// profile or session share one read and one write of it. Projections
	// lag the log by about this much; the event list reads the log itself.
	foldDelay = 250 * time.Millisecond
)

func newProjector(st *store.Store, timeout time.Duration, log *slog.Logger) *projector {
	p := &projector{st: st, log: log, cache: newState(cacheEntries), wake: make(chan struct{}, 1), urgent: make(chan struct{}, 1), erase: make(chan eraseRequest), advance: make(chan struct{})}
	p.timeout.Store(int64(timeout))
	return p
}

// committed hands the projector events just appended to the log, in seq
// order, and wakes it. If it is far behind, it drops them and reads the log.
func (p *projector) committed(evs []*model.Event) {
	p.mu.Lock()
	if len(p.recent)+len(evs) > maxRecent {
		p.recent = nil
	}
	p.recent = append(p.recent, evs...)
	p.latest = max(p.latest, evs[len(evs)-1].Seq)
	p.mu.Unlock()
	p.notify()
}

// next returns up to max events after seq cp: from the recent ones when
// they continue the checkpoint, from the log otherwise.
func (p *projector) next(cp uint64, max int) ([]*model.Event, error) {
	p.mu.Lock()
	i := 0
	for i < len(p.recent) && p.recent[i].Seq <= cp {
		i++
	}
	p.recent = p.recent[i:]
	if len(p.recent) > 0 && p.recent[0].Seq == cp+1 {
		n := min(max, len(p.recent))
		evs := slices.Clone(p.recent[:n])
		p.mu.Unlock()
		return evs, nil
	}
	p.mu.Unlock()
	return p.st.EventsAfter(cp, max)
}

// notify tells the projector that the log has grown. It never blocks.
func (p *projector) notify() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *projector) run(ctx context.Context) {
	chunk := foldChunk
	backoff := time.Second
	for {
		// Ingestion has priority: while events keep arriving, folding
		// waits, up to a backlog of deferLimit events, and then takes a
		// quarter of the time. The projections catch up at full speed when
		// the burst is over.
		select {
		case req := <-p.erase:
			req.done <- p.eraseNow(req)
		default:
		}
		throttle := p.busy != nil && p.busy()
		if throttle && p.backlog() < deferLimit && !p.hurried() {
			if !sleep(ctx, 50*time.Millisecond) {
				return
			}
			continue
		}
		began := time.Now()
		n, err := p.step(chunk)
		switch {
		case errors.Is(err, store.ErrTooBig) && chunk > 1:
			chunk /= 2
			continue
		case err != nil:
			p.log.Error("fold events", "err", err, "retry_in", backoff.String())
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, time.Minute)
			continue
		}
		chunk, backoff = foldChunk, time.Second
		if n == chunk {
			if throttle && !sleep(ctx, 3*time.Since(began)) {
				return
			}
			continue // a backlog: keep folding
		}
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case req := <-p.erase:
			req.done <- p.eraseNow(req)
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-p.urgent:
		case <-time.After(foldDelay):
		}
	}
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

// backlog is how many committed events are not folded yet.
func (p *projector) backlog() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latest - min(p.folded, p.latest)
}

// hurried reports whether someone waits for the fold (WaitFolded).
func (p *projector) hurried() bool {
	select {
	case <-p.urgent:
		return true
	default:
		return false
	}
}

// step folds up to max events and returns how many it folded.
func (p *projector) step(max int) (int, error) {
	cp, err := p.st.Checkpoint()
	if err != nil {
		return 0, err
	}
	evs, err := p.next(cp, max)
	if err != nil || len(evs) == 0 {
		p.setFolded(cp)
		return 0, err
	}
	var f *fold
	err = p.st.Project(func(tx *store.Tx) error {
		f = newFold(tx, time.Duration(p.timeout.Load()), p.cache, p.known)
		for _, ev := range evs {
			if err := f.fold(ev); err != nil {
				return err
			}
		}
		if err := f.write(); err != nil {
			return err
		}
		return tx.SetCheckpoint(evs[len(evs)-1].Seq)
	})
	if err != nil {
		return 0, err
	}
	f.commit()
	p.setFolded(evs[len(evs)-1].Seq)
	return len(evs), nil
}

func (p *projector) setFolded(seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq != p.folded {
		p.folded = seq
		close(p.advance)
		p.advance = make(chan struct{})
	}
}

// wait blocks until the event with seq is folded.
func (p *projector) wait(ctx context.Context, seq uint64) error {
	for {
		p.mu.Lock()
		folded, advance := p.folded, p.advance
		p.mu.Unlock()
		if folded >= seq {
			return nil
		}
		select {
		case p.urgent <- struct{}{}:
		default:
		}
		p.notify()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-advance:
		}
	}
}

type eraseRequest struct {
	email string
	done  chan eraseResult
}

type eraseResult struct {
	events int
	err    error
}

// eraseNow folds what the log holds, so that every event of the user is
// indexed under the profile, then deletes the profile and all it indexes.
func (p *projector) eraseNow(req eraseRequest) eraseResult {
	for {
		n, err := p.step(foldChunk)
		if err != nil {
			return eraseResult{err: err}
		}
		if n < foldChunk {
			break
		}
	}
	n, err := p.st.Erase("u:"+req.email, req.email)
	// what was kept in memory may name what is gone
	p.cache = newState(cacheEntries)
	return eraseResult{events: n, err: err}
}

// requestErase asks the running projector to erase a user and waits.
func (p *projector) requestErase(ctx context.Context, email string) (int, error) {
	req := eraseRequest{email: email, done: make(chan eraseResult, 1)}
	select {
	case p.erase <- req:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case r := <-req.done:
		return r.events, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
