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

// maxTail bounds how many not-yet-folded events a query reads from the log.
const maxTail = 100_000

// Events lists stored events, newest first (by arrival). It reads the
// indexes for what the identity projection has folded and the log itself for the rest,
// so an event is listed as soon as Ingest has acknowledged it.
func (t *Tracker) Events(q Query) ([]Listed, error) {
	if q.Limit <= 0 || q.Limit > MaxLimit {
		q.Limit = min(max(q.Limit, 100), MaxLimit)
	}
	if q.Type != "" {
		q.Type, _ = canonicalType(q.Type)
	}
	cp := t.opts.Indexed()
	last, err := t.st.LastSeq()
	if err != nil {
		return nil, err
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
	visit := func(ev *model.Event) (bool, error) {
		if !q.Since.IsZero() && ev.ReceivedAt.Before(q.Since.Add(-time.Minute)) {
			// Event times never exceed receive times, and receive times
			// follow the log's order to within microseconds: nothing
			// further down can match.
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

	// 1. the tail the identity projection has not indexed yet, from the log
	lo := cp + 1
	if last > maxTail && lo < last-maxTail {
		lo = last - maxTail
	}
	err = t.st.ScanLog(last, lo, visit)
	cp = min(cp, last)
	if err == nil && len(out) < q.Limit && cp > 0 {
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
		default:
			err = t.st.ScanLog(cp, 1, visit)
		}
	}
	if errors.Is(err, stop) {
		err = nil
	}
	return out, err
}
