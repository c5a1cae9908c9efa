// Package project runs the projections: the read models folded from the
// event log (profiles and sessions, product counts, dashboard rollups, and
// what the next capabilities add).
//
// A projection is a value (Projection) with a name, a version, the key
// spaces it owns and functions to fold a run of events, to move a profile's
// data when two identities merge and to erase a profile. Identity is the
// first stage: it finds the profile and session of every event, and the
// other projections fold the events with what it found.
//
// Each projection keeps its own checkpoint, written in the same transaction
// as its results, so a crash repeats no work and loses none. A projection
// that is new, or whose version changed, folds the log from the start in
// the background (a backfill) while the others keep up with new events, and
// joins them when it has caught up. One that fails stops alone: its error is
// logged and shown in the admin UI, it is retried later, and the others go
// on.
package project

import (
	"fmt"
	"runtime/debug"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Event is an event of the log with what the identity stage found.
type Event struct {
	*model.Event
	ProfileID  string // the profile the event belongs to (after merges)
	SessionID  string // the session it belongs to
	NewSession bool   // whether it opened that session
	// Touch is the touchpoint the event made (a visit from outside), nil
	// if none.
	Touch *model.Touchpoint
}

// Projection is one read model folded from the log.
type Projection struct {
	Name string
	// Version changes when what the projection stores changes meaning:
	// a projection whose stored version differs is dropped and folded again.
	Version uint32
	// Owns are the key spaces the projection writes; a rebuild drops them.
	Owns []store.Space
	// Fold applies a run of events, in log order, inside the transaction
	// that also records the checkpoint. What it keeps in memory about the
	// store must change only in functions given to Run.AfterCommit: the
	// transaction may be discarded.
	Fold func(r *Run) error
	// Move gives profile to what profile from had: the identity stage
	// merged them. Optional.
	Move func(tx *store.Tx, from, to string) error
	// Erase deletes what the projection keeps about a profile. Optional.
	Erase func(tx *store.Tx, profileID string) error
	// Reset forgets what the projection keeps in memory (after an erasure
	// or a failure). Optional.
	Reset func()
	// Tick, if set, does the projection's own background work in the
	// runner's goroutine, between folds, in a transaction of its own (with
	// its checkpoint unchanged): what changes with time alone (a window
	// that closes) or a backfill of part of it (a segment whose definition
	// changed). The runner calls it while the projection is live, at start,
	// after Poke, and when the wait it returned has passed. It returns
	// whether more work is ready now (it is called again soon, between
	// folds) and how long until it next wants to run (<= 0: not before the
	// next Poke). Keep each call small: folds wait meanwhile. Optional.
	Tick func(r *Run) (more bool, wait time.Duration, err error)
	// Eager projections fold with identity in the fast lane: while
	// ingestion is busy they fold what arrived every fastDelay, and the
	// others (heavier, and wanted less soon) fall behind and catch up
	// later in runs of their own. Segments are eager: their members must be
	// current within a second.
	Eager bool
}

// Identity is the first stage: a projection that also finds the profile
// and session of the events it folded, for projections that fold them later.
type Identity struct {
	Projection
	// Resolve fills ProfileID, SessionID, NewSession and Touch of events
	// the identity projection has folded. An event it does not know (erased
	// meanwhile) keeps an empty ProfileID.
	Resolve func(tx *store.Tx, evs []Event) error
	// Split, if set, returns how many of the next events to fold in one
	// run (at least 1): an event that is costly in a transaction already
	// holding many writes (a merge iterates over keys, and Badger sorts a
	// transaction's pending writes for every iterator) should start a run.
	Split func(tx *store.Tx, evs []*model.Event) int
}

// Run is a run of events being folded by one projection.
type Run struct {
	Tx     *store.Tx
	Events []Event
	// Backfill is true when the run folds history to catch up (the
	// projection is new, changed, rebuilt or retried after a failure),
	// false when it folds events as they arrive.
	Backfill bool
	// Yield is true, in a Tick, when ingestion is busy and the processors
	// are all taken (Options.Yield): work that can wait should take a small
	// share of the time (ask for a wait of several times what the step took).
	Yield  bool
	merged func(from, to string) error
	after  *[]func()
}

// Merged tells the other projections that the identity stage merged
// profile from into profile to, inside the same transaction.
func (r *Run) Merged(from, to string) error {
	if r.merged == nil {
		return nil
	}
	return r.merged(from, to)
}

// AfterCommit runs fn once the transaction has committed.
func (r *Run) AfterCommit(fn func()) { *r.after = append(*r.after, fn) }

// safely calls fn, turning a panic into an error: a bug in one projection
// must not take the process down.
func safely(name string, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{name: name, value: p, stack: debug.Stack()}
		}
	}()
	return fn()
}

// panicError is a panic of a projection, with its stack for the log.
type panicError struct {
	name  string
	value any
	stack []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("projection %s panicked: %v", e.name, e.value)
}
