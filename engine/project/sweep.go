package project

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shoptrail/shoptrail/engine/store"
)

// Sweep drops from the log events received before cutoff ([storage]
// retention), at most `most` of them, oldest first, and returns how many it
// dropped: 0 when none is left to drop. It runs between two folds, like
// Erase, and drops only events that every projection has folded, so no
// projection misses one: a projection that is behind (backfilling or
// failed) holds the sweep back. Each call is one transaction: the events,
// their index entries and the retention horizon go together, so a kill -9
// at any point leaves every event either whole or gone, and the next sweep
// goes on from there.
//
// What the projections derived (profiles, sessions, touchpoints, rollups,
// attribution records) stays. A projection folded again from the start (a
// new version, shoptrail rebuild) sees only the events that were kept.
func (r *Runner) Sweep(ctx context.Context, cutoff time.Time, most int) (int, error) {
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	fn := func() {
		n, err := r.sweepNow(cutoff, most)
		done <- result{n, err}
	}
	select {
	case r.exclusive <- fn:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case res := <-done:
		return res.n, res.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (r *Runner) sweepNow(cutoff time.Time, most int) (int, error) {
	r.mu.Lock()
	floor := r.live
	for _, q := range r.projs {
		floor = min(floor, q.checkpoint)
	}
	r.mu.Unlock()
	if floor == 0 {
		return 0, nil
	}
	raw, err := r.st.EventsAfter(0, most)
	if err != nil {
		return 0, err
	}
	n := 0
	for n < len(raw) && raw[n].Seq <= floor && raw[n].ReceivedAt.Before(cutoff) {
		n++
	}
	if n == 0 {
		return 0, nil
	}
	evs := wrap(raw[:n])
	last := raw[n-1].Seq
	err = r.st.Project(func(tx *store.Tx) error {
		if err := r.id.Resolve(tx, evs); err != nil {
			return fmt.Errorf("resolve identities: %w", err)
		}
		for _, ev := range evs {
			if err := tx.DropEvent(ev.Event, ev.ProfileID); err != nil {
				return err
			}
		}
		h, err := tx.RetentionHorizon()
		if err != nil {
			return err
		}
		return tx.SetRetentionHorizon(max(h, last))
	})
	if errors.Is(err, store.ErrTooBig) && most > 1 {
		return r.sweepNow(cutoff, most/2)
	}
	if err != nil {
		return 0, fmt.Errorf("project: retention sweep: %w", err)
	}
	// the recent events kept in memory may include dropped ones
	r.mu.Lock()
	i := 0
	for i < len(r.recent) && r.recent[i].Seq <= last {
		i++
	}
	r.recent = r.recent[i:]
	r.mu.Unlock()
	return n, nil
}
