package identity

import (
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/shoptrail/shoptrail/engine/channel"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
)

// fold applies a run of events to the identity projection inside one
// transaction. What it reads comes from its own changes, then from the
// committed working set (state), then from the store; what it changes is
// kept here, written to the transaction by write, and handed to state by
// commit once the transaction has committed.
type fold struct {
	run     *project.Run
	tx      *store.Tx
	timeout time.Duration
	cache   *state

	profiles    map[string]*model.Profile
	sessions    map[string]*model.Session
	links       map[string]string
	deleted     []string // profiles merged away
	newSessions []*model.Session
	orders      map[string]model.OrderRecord // order_id → the event counted, as changed by this run
	confirmed   int64                        // orders the shop confirmed, added by this run
}

func newFold(run *project.Run, timeout time.Duration, cache *state) *fold {
	return &fold{
		run: run, tx: run.Tx, timeout: timeout, cache: cache,
		profiles: map[string]*model.Profile{},
		sessions: map[string]*model.Session{},
		links:    map[string]string{},
		orders:   map[string]model.OrderRecord{},
	}
}

// write puts the changed profiles and sessions into the transaction.
// Links are written as they change.
func (f *fold) write() error {
	for _, p := range f.profiles {
		if err := f.tx.PutProfile(*p); err != nil {
			return err
		}
	}
	for _, s := range f.sessions {
		if err := f.tx.PutSession(*s); err != nil {
			return err
		}
	}
	for _, s := range f.newSessions {
		if err := f.tx.IndexSession(s.ProfileID, s.ID); err != nil {
			return err
		}
	}
	f.newSessions = f.newSessions[:0]
	for id, rec := range f.orders {
		if err := f.tx.PutOrder(store.IdentityOrders, id, rec); err != nil {
			return err
		}
	}
	clear(f.orders)
	if f.confirmed != 0 {
		if err := f.tx.AddConfirmedOrders(store.IdentityOrders, f.confirmed); err != nil {
			return err
		}
		f.confirmed = 0
	}
	return nil
}

// commit hands what the committed transaction wrote to the working set.
func (f *fold) commit() {
	c := f.cache
	for _, id := range f.deleted {
		delete(c.profiles, id)
		delete(c.links, linkKey(linkOpen, id))
	}
	for id, p := range f.profiles {
		put(c.profiles, c.max, id, cloneProfile(*p))
	}
	for id, s := range f.sessions {
		put(c.sessions, c.max, id, *s)
	}
	for k, v := range f.links {
		if v == "" {
			delete(c.links, k)
		} else {
			put(c.links, c.max, k, v)
		}
	}
}

// profile returns the profile with id, a new one (not yet stored) if there
// is none.
func (f *fold) profile(id string, ev *model.Event) (*model.Profile, error) {
	if p, ok := f.profiles[id]; ok {
		return p, nil
	}
	p, shared, err := f.storedProfile(id)
	switch {
	case shared:
		p = cloneProfile(p)
	case errors.Is(err, store.ErrNotFound):
		p = model.Profile{ID: id, FirstSeen: ev.Time, LastSeen: ev.Time}
	case err != nil:
		return nil, err
	}
	f.profiles[id] = &p
	return &p, nil
}

// storedProfile reads a profile that is not in the fold's working set:
// from the cache, shared with it (clone it before changing it), or from
// the store.
func (f *fold) storedProfile(id string) (p model.Profile, shared bool, err error) {
	if p, ok := f.cache.profiles[id]; ok {
		return p, true, nil
	}
	p, err = f.tx.Profile(id)
	return p, false, err
}

func (f *fold) session(id string) (*model.Session, error) {
	if s, ok := f.sessions[id]; ok {
		return s, nil
	}
	s, ok := f.cache.sessions[id]
	if !ok {
		var err error
		if s, err = f.tx.Session(id); err != nil {
			return nil, err
		}
	}
	f.sessions[id] = &s
	return &s, nil
}

// sessionExists reports whether a session with id exists.
func (f *fold) sessionExists(id string) (bool, error) {
	if _, ok := f.sessions[id]; ok {
		return true, nil
	}
	if _, ok := f.cache.sessions[id]; ok {
		return true, nil
	}
	_, err := f.tx.Session(id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// link reads an identity or session link; "" when there is none.
func (f *fold) link(kind byte, k string) (string, error) {
	lk := linkKey(kind, k)
	if v, ok := f.links[lk]; ok {
		return v, nil
	}
	if v, ok := f.cache.links[lk]; ok {
		return v, nil
	}
	var v string
	var err error
	switch kind {
	case linkAnon:
		v, err = f.tx.AnonymousProfile(k)
	case linkClient:
		v, err = f.tx.ClientSession(k)
	case linkOpen:
		v, err = f.tx.OpenSession(k)
	}
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return v, err
}

func (f *fold) setLink(kind byte, k, v string) error {
	f.links[linkKey(kind, k)] = v
	switch kind {
	case linkAnon:
		return f.tx.LinkAnonymous(k, v)
	case linkClient:
		return f.tx.SetClientSession(k, v)
	default:
		return f.tx.SetOpenSession(k, v)
	}
}

// fold applies one event and records what it found in it.
func (f *fold) fold(pe *project.Event) error {
	ev := pe.Event
	if ev.Via == model.ViaServer && ev.Email == "" && ev.AnonymousID == "" {
		// a fact about the shop, not a person (a product back in stock):
		// no profile; the other projections get it with no ProfileID
		return nil
	}
	profileID, err := f.identify(ev)
	if err != nil {
		return err
	}
	prof, err := f.profile(profileID, ev)
	if err != nil {
		return err
	}
	if ev.Email != "" {
		prof.Email = ev.Email
	}
	if ev.AnonymousID != "" && !slices.Contains(prof.AnonymousIDs, ev.AnonymousID) {
		prof.AnonymousIDs = append(prof.AnonymousIDs, ev.AnonymousID)
	}
	if ev.Time.Before(prof.FirstSeen) {
		prof.FirstSeen = ev.Time
	}
	if ev.Time.After(prof.LastSeen) {
		prof.LastSeen = ev.Time
	}
	prof.Events++
	if ev.Type == model.Order {
		if err := f.order(ev, prof); err != nil {
			return err
		}
	}

	if ev.Via == model.ViaServer {
		// what Shoptrail itself recorded (a change through the Users API,
		// an email sent) is no visit: it opens no session
		pe.ProfileID = profileID
		return f.tx.IndexEvent(profileID, "", ev.Type, ev.Seq)
	}
	sess, isNew, err := f.sessionOf(ev, profileID)
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
			if err := f.tx.PutTouchpoint(profileID, ev.Seq, tp); err != nil {
				return err
			}
			pe.Touch = &tp
		}
	}
	pe.ProfileID, pe.SessionID, pe.NewSession = profileID, sess.ID, isNew
	return f.tx.IndexEvent(profileID, sess.ID, ev.Type, ev.Seq)
}

// order counts an order on its profile, once per order_id: an order the
// shop confirmed supersedes what a browser said about it (model.Supersede),
// on whichever profile the browser's claim was counted.
func (f *fold) order(ev *model.Event, prof *model.Profile) error {
	id, rec := ev.Order()
	rec.Profile = prof.ID
	if id == "" {
		prof.Apply(nil, &rec)
		if rec.Verified {
			f.confirmed++
		}
		return nil
	}
	prev, ok := f.orders[id]
	var prevp *model.OrderRecord
	if ok {
		prevp = &prev
	} else {
		var err error
		if prevp, err = f.tx.Order(store.IdentityOrders, id); err != nil {
			return err
		}
	}
	remove, add, keep := model.Supersede(prevp, rec)
	if remove != nil {
		// the profile it was counted on, or the one that one merged into
		pid := remove.Profile
		if anon := model.ProfileAnonymousID(pid); anon != "" {
			if cur, err := f.link(linkAnon, anon); err != nil {
				return err
			} else if cur != "" {
				pid = cur
			}
		}
		target := prof
		if pid != prof.ID {
			var err error
			if target, err = f.profile(pid, ev); err != nil {
				return err
			}
			if target.Events == 0 { // erased meanwhile: nothing to take back
				delete(f.profiles, pid)
				target = nil
			}
		}
		if target != nil {
			target.Apply(remove, nil)
		}
	}
	prof.Apply(nil, add)
	if add != nil && add.Verified && (remove == nil || !remove.Verified) {
		f.confirmed++
	}
	f.orders[id] = keep
	return nil
}

// identify returns the profile an event belongs to, linking and merging
// as the event's email and anonymous id require:
//   - no email: the profile the anonymous id is linked to, or a new
//     anonymous profile (model.AnonymousProfileID);
//   - an email: the user (model.UserProfileID); an anonymous profile of the same
//     anonymous id is merged into it (events, sessions and touchpoints
//     follow); an anonymous id linked to another user is re-linked, and the
//     history stays with the user it happened to.
func (f *fold) identify(ev *model.Event) (string, error) {
	anon := ev.AnonymousID
	cur := ""
	if anon != "" {
		var err error
		if cur, err = f.link(linkAnon, anon); err != nil {
			return "", err
		}
	}
	if ev.Email == "" {
		if cur != "" {
			return cur, nil
		}
		return model.AnonymousProfileID(anon), f.setLink(linkAnon, anon, model.AnonymousProfileID(anon))
	}
	user := model.UserProfileID(ev.Email)
	switch {
	case anon == "", cur == user:
		return user, nil
	case cur == model.AnonymousProfileID(anon):
		if err := f.merge(cur, user, ev); err != nil {
			return "", err
		}
	}
	// no link yet, or linked to another user: this browser changed hands
	return user, f.setLink(linkAnon, anon, user)
}

// merge folds the anonymous profile anon into user.
func (f *fold) merge(anon, user string, ev *model.Event) error {
	// Moving keys reads the transaction: put what is kept here into it.
	if err := f.write(); err != nil {
		return err
	}
	a, err := f.profile(anon, ev)
	if err != nil {
		return err
	}
	u, err := f.profile(user, ev)
	if err != nil {
		return err
	}
	u.Email = ev.Email
	if a.FirstSeen.Before(u.FirstSeen) {
		u.FirstSeen = a.FirstSeen
	}
	if a.LastSeen.After(u.LastSeen) {
		u.LastSeen = a.LastSeen
	}
	u.Events += a.Events
	u.Sessions += a.Sessions
	u.AddSums(a.OrderSums)
	for _, id := range a.AnonymousIDs {
		if !slices.Contains(u.AnonymousIDs, id) {
			u.AnonymousIDs = append(u.AnonymousIDs, id)
		}
		if err := f.setLink(linkAnon, id, user); err != nil {
			return err
		}
	}
	moved, err := f.tx.MoveProfile(anon, user)
	if err != nil {
		return err
	}
	if err := f.run.Merged(anon, user); err != nil {
		return err
	}
	// what MoveProfile rewrote in the store replaces what is kept here
	delete(f.profiles, anon)
	f.deleted = append(f.deleted, anon)
	for _, id := range moved {
		s, err := f.tx.Session(id)
		if err != nil {
			return err
		}
		f.sessions[id] = &s
	}
	if open, err := f.tx.OpenSession(user); err == nil {
		f.links[linkKey(linkOpen, user)] = open
	}
	f.links[linkKey(linkOpen, anon)] = ""
	return nil
}

// sessionOf returns the session an event belongs to, updated with the
// event, and whether it is new. A browser session id idle longer than the
// timeout starts a new session; server-side events without a session id
// are sessionised per profile by the same rule.
//
// A session is one profile's: every event in it is its profile's, since
// the projections that fold later learn an event's profile from its
// session (resolve). An event of another profile than the session its
// browser session id names (a merge has made the session the event's
// profile's already) is one of two things:
//   - the browser changed hands: its anonymous id, one the session's
//     profile had, now names another user (u1 logged in, then u2 on the
//     same browser). The second person's visit is theirs: a new session,
//     as after the timeout, that the browser session id links to from now
//     on;
//   - another shopper naming that browser's session (the shop's server
//     sending a user's events with the session id but no anonymous id,
//     another anonymous id): the event goes where it would without the
//     session id, to the profile's own server-side session, and the
//     browser keeps its session. Moving the link would make each event of
//     the two a new session, turn by turn.
func (f *fold) sessionOf(ev *model.Event, profileID string) (*model.Session, bool, error) {
	kind, k := linkClient, ev.SessionID
	if k == "" {
		kind, k = linkOpen, profileID
	}
	curID, err := f.link(kind, k)
	if err != nil {
		return nil, false, err
	}
	if curID != "" {
		s, err := f.session(curID)
		if err == nil && s.ProfileID != profileID && kind == linkClient {
			var handed bool
			if handed, err = f.handedOver(ev, s.ProfileID); err != nil {
				return nil, false, err
			}
			if !handed {
				kind, k = linkOpen, profileID
				if curID, err = f.link(kind, k); err != nil {
					return nil, false, err
				}
				if curID != "" {
					s, err = f.session(curID)
				}
			}
		}
		switch {
		case curID == "": // the profile has no server-side session yet
		case errors.Is(err, store.ErrNotFound):
			// a link to a session that is gone, as stores written before
			// new sessions stopped taking ids in use may hold: a new
			// session, since failing would stop the identity stage for good
			curID = ""
		case err != nil:
			return nil, false, err
		case s.ProfileID != profileID:
			// another profile's: a new session (see above)
		case !ev.Time.After(s.Last.Add(f.timeout)) && !ev.Time.Before(s.Start.Add(-f.timeout)):
			if ev.Time.Before(s.Start) {
				s.Start = ev.Time
			}
			if ev.Time.After(s.Last) {
				s.Last = ev.Time
			}
			s.Events++
			return s, false, nil
		}
	}
	// A new session. The first one of a browser session id keeps that id;
	// later ones (after the timeout, or the browser changed hands) get the
	// id of the event that opened them.
	seq := strconv.FormatUint(ev.Seq, 36)
	id := ev.SessionID
	if kind == linkOpen {
		id = "" // a server-side session
	}
	switch {
	case id == "":
		id = "srv-" + seq
	case curID != "":
		id += "~" + seq
	}
	// The id may be taken: an erasure removes the link of the session it
	// erases while an earlier session of the same browser session id may
	// belong to a profile that stays, and a browser may send an id that the
	// fold gave another session, or will give. Taking it would overwrite
	// that session and list it under two profiles.
	for {
		taken, err := f.sessionExists(id)
		if err != nil {
			return nil, false, err
		}
		if !taken {
			break
		}
		id += "~" + seq
	}
	if err := f.setLink(kind, k, id); err != nil {
		return nil, false, err
	}
	client := ev.SessionID
	if kind == linkOpen {
		client = "" // the browser session id does not lead to it
	}
	s := &model.Session{ID: id, ClientSessionID: client, ProfileID: profileID, Start: ev.Time, Last: ev.Time, Events: 1, FirstSeq: ev.Seq,
		UserAgent: ev.UserAgent, Bot: ev.Bot}
	f.sessions[id] = s
	f.newSessions = append(f.newSessions, s)
	return s, true, nil
}

// handedOver reports whether an event of another profile than owner's, in
// a session of owner's, says that the browser changed hands: its
// anonymous id is one owner had (a login as another user re-linked it).
func (f *fold) handedOver(ev *model.Event, owner string) (bool, error) {
	if ev.AnonymousID == "" {
		return false, nil
	}
	if p, ok := f.profiles[owner]; ok {
		return slices.Contains(p.AnonymousIDs, ev.AnonymousID), nil
	}
	p, _, err := f.storedProfile(owner)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil && slices.Contains(p.AnonymousIDs, ev.AnonymousID), err
}
