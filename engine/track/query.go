package track

import (
	"errors"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Query selects stored events. Empty fields match everything.
type Query struct {
	Email       string // the user's events, including those merged from anonymous profiles
	AnonymousID string // events sent with this anonymous id
	Type        string // canonical type or alias
	Since       time.Time
	Before      uint64 // only events with a smaller seq: the cursor of the next page
	Limit       int
}

// MaxLimit bounds Query.Limit.
const MaxLimit = 1000

// Listed is a stored event with the user it belongs to.
type Listed struct {
	*model.Event
	User    string `json:"user,omitempty"`
	Channel string `json:"channel,omitempty"`
}

// maxTail bounds how many not-yet-folded events one page of a filtered
// query reads from the log (a variable: tests make it small). Past it, the
// page ends early with a NextBefore cursor, however few events it holds.
var maxTail uint64 = 100_000

// Page is one page of a query's answer.
type Page struct {
	Events []Listed
	// NextBefore is the Query.Before of the next page; 0 when there are
	// no more events to look at. A page can be short (even empty) and
	// still have a NextBefore: its work bound ran out first.
	NextBefore uint64
}

// Events lists stored events, newest first (by arrival), as EventsPage
// does but without its work bound: it reads as much of the log as it takes
// to fill the page.
func (t *Tracker) Events(q Query) ([]Listed, error) {
	p, err := t.events(q, 0)
	return p.Events, err
}

// EventsPage lists stored events, newest first (by arrival). It reads the
// log itself for what the identity projection has not indexed yet, and the indexes
// for the rest, so an event is listed as soon as Ingest has acknowledged
// it, however far behind the projections are. An unfiltered query reads
// the log alone and stops when the page is full; a filtered one reads at
// most maxTail unfolded events per page, then answers with NextBefore.
func (t *Tracker) EventsPage(q Query) (Page, error) { return t.events(q, maxTail) }

func (t *Tracker) events(q Query, budget uint64) (Page, error) {
	var page Page
	if q.Limit <= 0 || q.Limit > MaxLimit {
		q.Limit = min(max(q.Limit, 100), MaxLimit)
	}
	if q.Type != "" {
		q.Type, _ = canonicalType(q.Type)
	}
	cp := t.opts.Indexed()
	last, err := t.st.LastSeq()
	if err != nil {
		return page, err
	}
	if q.Before > 0 {
		last = min(last, q.Before-1)
	}

	// The user a profile id or anonymous id belongs to, memoised per query.
	users := map[string]string{}
	userOf := func(ev *model.Event) string {
		if ev.Email != "" {
			return ev.Email
		}
		u, ok := users[ev.AnonymousID]
		if !ok {
			_ = t.st.Read(func(tx *store.Tx) error {
				id, err := tx.AnonymousProfile(ev.AnonymousID)
				if err == nil {
					if p, err := tx.Profile(id); err == nil {
						u = p.Email
					}
				}
				return nil
			})
			users[ev.AnonymousID] = u
		}
		return u
	}

	var out []Listed
	stop := errors.New("stop")
	stopped := false // by since: nothing older can match
	visit := func(ev *model.Event) (bool, error) {
		if !q.Since.IsZero() && ev.ReceivedAt.Before(q.Since.Add(-time.Minute)) {
			// Event times never exceed receive times, and receive times
			// follow the log's order to within microseconds: nothing
			// further down can match.
			stopped = true
			return false, stop
		}
		switch {
		case q.Type != "" && ev.Type != q.Type,
			q.AnonymousID != "" && ev.AnonymousID != q.AnonymousID,
			!q.Since.IsZero() && ev.Time.Before(q.Since):
			return true, nil
		}
		if q.Email != "" && userOf(ev) != q.Email {
			return true, nil
		}
		l := Listed{Event: ev, User: userOf(ev)}
		if ev.Traffic != nil {
			l.Channel = ev.Traffic.Channel
		}
		out = append(out, l)
		return len(out) < q.Limit, nil
	}
	finish := func(err error) (Page, error) {
		if errors.Is(err, stop) {
			err = nil
		}
		page.Events = out
		if len(out) == q.Limit && !stopped && out[len(out)-1].Seq > 1 {
			page.NextBefore = out[len(out)-1].Seq
		}
		return page, err
	}

	if q.Email == "" && q.AnonymousID == "" && q.Type == "" {
		// Every event matches but for since: the log itself, newest
		// first, until the page is full.
		return finish(t.st.ScanLog(last, 1, visit))
	}

	// 1. the tail the identity projection has not indexed yet, from the log, at most
	// budget events of it
	lo := cp + 1
	truncated := false
	if budget > 0 && last >= lo && last-lo+1 > budget {
		lo, truncated = last-budget+1, true
	}
	if err := t.st.ScanLog(last, lo, visit); err != nil || len(out) == q.Limit {
		return finish(err)
	}
	if truncated {
		page.NextBefore = lo
		return finish(nil)
	}
	cp = min(cp, last)
	if cp == 0 {
		return finish(nil)
	}
	// 2. the folded part, through the narrowest index
	switch {
	case q.Email != "":
		err = t.st.ScanProfileEvents(model.UserProfileID(q.Email), cp, visit)
	case q.AnonymousID != "":
		var pid string
		_ = t.st.Read(func(tx *store.Tx) error {
			pid, _ = tx.AnonymousProfile(q.AnonymousID)
			return nil
		})
		if pid != "" {
			err = t.st.ScanProfileEvents(pid, cp, visit)
		}
	case q.Type != "":
		err = t.st.ScanTypeEvents(q.Type, cp, visit)
	}
	return finish(err)
}
