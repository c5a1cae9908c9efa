package track

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/shoptrail/shoptrail/engine/channel"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// projector folds the event log, in order, into profiles, identity links,
// sessions, touchpoints and the event indexes. Each fold step commits its
// results together with the checkpoint (the last seq folded), so a crash
// repeats no work and loses none, and `shoptrail rebuild` can start over.
type projector struct {
	st      *store.Store
	timeout time.Duration
	log     *slog.Logger
	wake    chan struct{}

	mu      sync.Mutex
	folded  uint64        // checkpoint after the last step
	advance chan struct{} // closed and replaced when folded moves
}

const foldChunk = 512 // events per transaction; halved when Badger says too big

func newProjector(st *store.Store, timeout time.Duration, log *slog.Logger) *projector {
	return &projector{st: st, timeout: timeout, log: log, wake: make(chan struct{}, 1), advance: make(chan struct{})}
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
		n, err := p.step(chunk)
		switch {
		case errors.Is(err, store.ErrTooBig) && chunk > 1:
			chunk /= 2
			continue
		case err != nil:
			p.log.Error("fold events", "err", err, "retry_in", backoff.String())
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, time.Minute)
			continue
		}
		chunk, backoff = foldChunk, time.Second
		if n > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
	}
}

// step folds up to max events and returns how many it folded.
func (p *projector) step(max int) (int, error) {
	cp, err := p.st.Checkpoint()
	if err != nil {
		return 0, err
	}
	evs, err := p.st.EventsAfter(cp, max)
	if err != nil || len(evs) == 0 {
		p.setFolded(cp)
		return 0, err
	}
	err = p.st.Project(func(tx *store.Tx) error {
		for _, ev := range evs {
			if err := p.fold(tx, ev); err != nil {
				return err
			}
		}
		return tx.SetCheckpoint(evs[len(evs)-1].Seq)
	})
	if err != nil {
		return 0, err
	}
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
		p.notify()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-advance:
		}
	}
}

// fold applies one event to the projections.
func (p *projector) fold(tx *store.Tx, ev *model.Event) error {
	profileID, err := p.identify(tx, ev)
	if err != nil {
		return err
	}
	prof, err := tx.Profile(profileID)
	if errors.Is(err, store.ErrNotFound) {
		prof = model.Profile{ID: profileID, FirstSeen: ev.Time, LastSeen: ev.Time}
		if ev.AnonymousID != "" {
			prof.AnonymousIDs = []string{ev.AnonymousID}
		}
	} else if err != nil {
		return err
	}
	if ev.Email != "" {
		prof.Email = ev.Email
	}
	if ev.Time.Before(prof.FirstSeen) {
		prof.FirstSeen = ev.Time
	}
	if ev.Time.After(prof.LastSeen) {
		prof.LastSeen = ev.Time
	}
	prof.Events++
	if ev.Type == model.Order {
		cur, minor := OrderTotal(ev)
		prof.Orders++
		if prof.Revenue == nil {
			prof.Revenue = map[string]int64{}
		}
		prof.Revenue[cur] += minor
	}

	sess, isNew, err := p.session(tx, ev, profileID)
	if err != nil {
		return err
	}
	if isNew {
		prof.Sessions++
	}
	if ev.Type == model.PageView {
		firstView := sess.PageViews == 0
		sess.PageViews++
		if firstView || ev.Traffic != nil {
			tr := channel.DirectTraffic()
			if ev.Traffic != nil {
				tr = *ev.Traffic
			}
			if firstView {
				sess.LandingURL, sess.Referrer = ev.URL, ev.Referrer
				sess.Source, sess.Medium, sess.Campaign, sess.Channel = tr.Source, tr.Medium, tr.Campaign, tr.Channel
			}
			tp := model.Touchpoint{Time: ev.Time, EventID: ev.ID, SessionID: sess.ID, URL: ev.URL, Traffic: tr}
			if err := tx.PutTouchpoint(profileID, ev.Seq, tp); err != nil {
				return err
			}
		}
	}
	if err := tx.PutSession(sess); err != nil {
		return err
	}
	if err := tx.IndexEvent(profileID, ev.Type, ev.Seq); err != nil {
		return err
	}
	return tx.PutProfile(prof)
}

// identify returns the profile an event belongs to, linking and merging
// as the event's email and anonymous id require:
//   - no email: the profile the anonymous id is linked to, or a new
//     anonymous profile "a:<anonymous id>";
//   - an email: the user "u:<email>"; an anonymous profile of the same
//     anonymous id is merged into it (events, sessions and touchpoints
//     follow); an anonymous id linked to another user is re-linked, and the
//     history stays with the user it happened to.
func (p *projector) identify(tx *store.Tx, ev *model.Event) (string, error) {
	anon := ev.AnonymousID
	if ev.Email == "" {
		id, err := tx.AnonymousProfile(anon)
		if errors.Is(err, store.ErrNotFound) {
			id = "a:" + anon
			err = tx.LinkAnonymous(anon, id)
		}
		return id, err
	}
	user := "u:" + ev.Email
	if anon == "" {
		return user, nil
	}
	cur, err := tx.AnonymousProfile(anon)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if err := p.addAnonymousID(tx, user, ev); err != nil {
			return "", err
		}
		return user, tx.LinkAnonymous(anon, user)
	case err != nil:
		return "", err
	case cur == user:
		return user, nil
	case cur != "a:"+anon: // linked to another user: this browser changed hands
		if err := p.addAnonymousID(tx, user, ev); err != nil {
			return "", err
		}
		return user, tx.LinkAnonymous(anon, user)
	}
	return user, p.merge(tx, cur, user, ev)
}

// addAnonymousID records anon on the user's profile, creating it if needed.
func (p *projector) addAnonymousID(tx *store.Tx, user string, ev *model.Event) error {
	prof, err := tx.Profile(user)
	if errors.Is(err, store.ErrNotFound) {
		prof = model.Profile{ID: user, Email: ev.Email, FirstSeen: ev.Time, LastSeen: ev.Time}
	} else if err != nil {
		return err
	}
	for _, a := range prof.AnonymousIDs {
		if a == ev.AnonymousID {
			return nil
		}
	}
	prof.AnonymousIDs = append(prof.AnonymousIDs, ev.AnonymousID)
	return tx.PutProfile(prof)
}

// merge folds the anonymous profile anon into user.
func (p *projector) merge(tx *store.Tx, anon, user string, ev *model.Event) error {
	a, err := tx.Profile(anon)
	if err != nil {
		return err
	}
	u, err := tx.Profile(user)
	if errors.Is(err, store.ErrNotFound) {
		u = model.Profile{ID: user, Email: ev.Email, FirstSeen: a.FirstSeen, LastSeen: a.LastSeen}
	} else if err != nil {
		return err
	}
	if a.FirstSeen.Before(u.FirstSeen) {
		u.FirstSeen = a.FirstSeen
	}
	if a.LastSeen.After(u.LastSeen) {
		u.LastSeen = a.LastSeen
	}
	u.Events += a.Events
	u.Sessions += a.Sessions
	u.Orders += a.Orders
	for cur, v := range a.Revenue {
		if u.Revenue == nil {
			u.Revenue = map[string]int64{}
		}
		u.Revenue[cur] += v
	}
	for _, id := range a.AnonymousIDs {
		known := false
		for _, have := range u.AnonymousIDs {
			known = known || have == id
		}
		if !known {
			u.AnonymousIDs = append(u.AnonymousIDs, id)
		}
		if err := tx.LinkAnonymous(id, user); err != nil {
			return err
		}
	}
	if err := tx.MoveProfile(anon, user); err != nil {
		return err
	}
	return tx.PutProfile(u)
}

// session returns the session an event belongs to, updated with the event
// (but not yet stored), and whether it is new. A browser session id idle
// longer than the timeout starts a new session; server-side events without
// a session id are sessionised per profile by the same rule.
func (p *projector) session(tx *store.Tx, ev *model.Event, profileID string) (model.Session, bool, error) {
	var curID string
	var err error
	if ev.SessionID != "" {
		curID, err = tx.ClientSession(ev.SessionID)
	} else {
		curID, err = tx.OpenSession(profileID)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return model.Session{}, false, err
	}
	if curID != "" {
		s, err := tx.Session(curID)
		if err != nil {
			return s, false, err
		}
		if !ev.Time.After(s.Last.Add(p.timeout)) && !ev.Time.Before(s.Start.Add(-p.timeout)) {
			if ev.Time.Before(s.Start) {
				s.Start = ev.Time
			}
			if ev.Time.After(s.Last) {
				s.Last = ev.Time
			}
			s.Events++
			s.ProfileID = profileID
			return s, false, nil
		}
	}
	// A new session. The first one of a browser session id keeps that id;
	// later ones (after the timeout) get the id of the event that opened them.
	id := ev.SessionID
	switch {
	case id == "":
		id = "srv-" + strconv.FormatUint(ev.Seq, 36)
		err = tx.SetOpenSession(profileID, id)
	case curID != "":
		id = ev.SessionID + "~" + strconv.FormatUint(ev.Seq, 36)
		fallthrough
	default:
		err = tx.SetClientSession(ev.SessionID, id)
	}
	s := model.Session{ID: id, ClientSessionID: ev.SessionID, ProfileID: profileID, Start: ev.Time, Last: ev.Time, Events: 1}
	return s, true, err
}
