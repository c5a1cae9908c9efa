// Package track turns what shoppers do, and what Shoptrail itself does,
// into events in the log.
//
// The hot path (Ingest) decodes, validates and appends events to the log
// with group commit, and answers after the commit. Record appends the
// facts Shoptrail produces (subscription and attribute changes through the
// Users API; email and campaign events tomorrow) through the same
// committer. Everything derived is folded from the log asynchronously by
// the projections (engine/project).
package track

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shoptrail/shoptrail/engine/channel"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/tracker-wasm/wire"
)

// Options configures a Tracker.
type Options struct {
	Sites             channel.Sites
	VisitFromReferrer bool
	MaxPendingEvents  int // events waiting for a commit before Ingest answers ErrOverloaded
	MaxBatchEvents    int // events in one group commit
	// MaxOrderValue bounds an order's value in major units of its
	// currency; 0: no bound but overflow's.
	MaxOrderValue float64
	// Committed is given the events just appended to the log, in seq
	// order (the projection runner).
	Committed func(stored []*model.Event)
	// Indexed returns the seq up to which the identity projection has
	// indexed the log; Events reads the log itself after it.
	Indexed func() uint64
	Now     func() time.Time
	Logger  *slog.Logger
	// IdentifyLink returns the email a page URL's signed email-link token
	// (st_id, engine/mail) stands for, or "": a browser arriving from a
	// message is then identified as its recipient (cross-device
	// stitching). nil: no stitching.
	IdentifyLink func(pageURL string) string
}

// Tracker ingests events.
type Tracker struct {
	st    *store.Store
	opts  Options
	log   *slog.Logger
	now   func() time.Time
	vfr   atomic.Bool
	sites atomic.Pointer[channel.Sites]
	c     *committer
	live  hub
}

// New starts a Tracker's committer. Call Close when done.
func New(st *store.Store, o Options) *Tracker {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Indexed == nil {
		o.Indexed = func() uint64 { return 0 }
	}
	t := &Tracker{st: st, opts: o, log: o.Logger, now: o.Now}
	t.vfr.Store(o.VisitFromReferrer)
	t.sites.Store(&o.Sites)
	t.c = newCommitter(st, max(o.MaxPendingEvents, 1), max(o.MaxBatchEvents, 1), func(stored []*model.Event) {
		if o.Committed != nil {
			o.Committed(stored)
		}
		t.live.publish(stored)
	})
	return t
}

// Busy reports whether events arrived in the last moment: folding then
// waits, so that acknowledging events keeps priority.
func (t *Tracker) Busy() bool { return t.c.busy() }

// SetVisitFromReferrer turns the automatic visit_from_referrer event on or off.
func (t *Tracker) SetVisitFromReferrer(on bool) { t.vfr.Store(on) }

// SetOwnHosts changes which hosts besides a page's own are the shop's:
// visits from them are not visits from another site.
func (t *Tracker) SetOwnHosts(hosts []string) {
	sites := *t.sites.Load()
	sites.Own = hosts
	t.sites.Store(&sites)
}

// VisitFromReferrer reports whether visit_from_referrer events are generated.
func (t *Tracker) VisitFromReferrer() bool { return t.vfr.Load() }

// Pending is how many events were accepted and wait for their commit.
func (t *Tracker) Pending() int64 { return t.c.pending.Load() }

// Close commits the events already accepted and stops accepting more.
func (t *Tracker) Close() { t.c.close() }

// Errors of Ingest that concern the whole batch.
var (
	ErrNoEvents   = errors.New("track: the batch has no events")
	ErrTooManyEvs = fmt.Errorf("track: a batch holds at most %d events", wire.MaxEvents)
)

// Ingest validates and stores a batch. Invalid events are reported in
// Response.Errors, and the valid ones are stored all the same. It returns
// only after the stored events are committed. Result.Stored lists the
// stored form of each accepted event (duplicates and the generated
// visit_from_referrer events left out), in batch order.
func (t *Tracker) Ingest(b *wire.Batch, via string) (Result, error) {
	return t.Receive(&Request{Batch: *b, Via: via})
}

// Receive validates and stores the batch of a request decoded by
// DecodeBatch, as Ingest does; the events that did not decode are
// reported in Response.Errors with the invalid ones.
func (t *Tracker) Receive(r *Request) (Result, error) {
	b, via := &r.Batch, r.Via
	res := Result{Response: wire.Response{Repaired: r.Repaired}}
	seg := r.seg
	maxEvents := wire.MaxEvents
	if seg != nil {
		// DecodeSegment bounds the messages; each may add a link event
		maxEvents *= 2
	}
	if len(b.Events) == 0 && (seg == nil || len(seg.errs) == 0) {
		return res, ErrNoEvents
	}
	if len(b.Events) > maxEvents {
		return res, ErrTooManyEvs
	}
	received := t.now().UTC()
	// Browsers' clocks are corrected with the batch's sent_at, and so are
	// those of Segment's SDKs (Segment's own rule); the API's are not.
	var skew time.Duration
	if (via == model.ViaBrowser || seg != nil) && b.SentAt != nil {
		skew = received.Sub(*b.SentAt)
	}
	// The user agent is the shopper's browser's on POST /t; on the API it
	// is the shop's server's, which is neither stored nor judged.
	var ua string
	var bot bool
	if via == model.ViaBrowser {
		ua, bot = userAgent(r.UserAgent)
	}
	vfr := t.vfr.Load()
	evs := make([]*model.Event, 0, len(b.Events)+1)
	clients := 0
	bad := r.bad
	for i := range b.Events {
		if len(bad) > 0 && bad[0].Index == i {
			res.Errors = append(res.Errors, bad[0])
			bad = bad[1:]
			continue
		}
		sk := skew
		if seg != nil && seg.events[i].sentAt != nil {
			sk = received.Sub(*seg.events[i].sentAt)
		}
		ev, fe := normalise(&b.Events[i], via, received, sk, t.opts.MaxOrderValue)
		if fe != nil {
			fe.Index = i
			res.Errors = append(res.Errors, *fe)
			continue
		}
		ev.UserAgent, ev.Bot = ua, bot
		if ev.Email == "" && via == model.ViaBrowser && t.opts.IdentifyLink != nil && strings.Contains(ev.URL, "st_id=") {
			ev.Email = t.opts.IdentifyLink(ev.URL)
		}
		if seg != nil {
			// a Segment message names the shopper's browser in
			// context.userAgent; the SDK's own is not the shopper's
			se := &seg.events[i]
			if se.userAgent != "" {
				ev.UserAgent, ev.Bot = userAgent(se.userAgent)
			}
			ev.DerivedFrom = se.derived
		}
		evs = append(evs, ev)
		clients++
		if ev.Type != model.PageView {
			continue
		}
		if tr, ok := t.sites.Load().Visit(ev.URL, ev.Referrer); ok {
			ev.Traffic = &tr
			if vfr {
				evs = append(evs, visitFromReferrer(ev))
			}
		}
	}
	if seg != nil {
		res.Errors = seg.segmentErrors(res.Errors)
	}
	res.Rejected = len(res.Errors)
	if len(evs) == 0 {
		return res, nil
	}
	dup, err := t.c.commit(evs, nil, false)
	if err != nil {
		return res, err
	}
	for i, ev := range evs {
		if ev.DerivedFrom != "" {
			continue
		}
		if dup[i] {
			res.Duplicates++
		} else {
			res.Accepted++
			res.Stored = append(res.Stored, ev)
		}
	}
	return res, nil
}

// Record appends events that Shoptrail itself produces, through the same
// committer as Ingest, so that every projection sees them like shoppers'
// events and a rebuild reproduces them. Each event gets an id, the current
// time if it has none, and Via model.ViaServer. also, if not nil, commits in
// the same transaction (the state the events describe); the events must
// then fit one transaction. Record returns after the commit. Like Ingest,
// it makes the tracker Busy for a moment.
func (t *Tracker) Record(ctx context.Context, evs []*model.Event, also func(tx *store.Tx) error) error {
	return t.record(ctx, evs, also, false)
}

// Derived records what the projections derive from the log (segment
// entries and exits). It is Record, except that it does not make the
// tracker Busy: the projections slow down while ingestion is busy, and the
// facts their own folds produce kept them slowed down for as long as they
// folded (a from-scratch fold of a shop with segments used a fifth of the
// CPU it could).
type Derived struct{ t *Tracker }

// Derived returns the recorder of derived facts.
func (t *Tracker) Derived() Derived { return Derived{t} }

// Record is Tracker.Record for derived facts.
func (d Derived) Record(ctx context.Context, evs []*model.Event, also func(tx *store.Tx) error) error {
	return d.t.record(ctx, evs, also, true)
}

func (t *Tracker) record(ctx context.Context, evs []*model.Event, also func(tx *store.Tx) error, derived bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := t.now().UTC()
	for _, ev := range evs {
		if ev.ID == "" {
			ev.ID = newID()
		}
		if ev.Time.IsZero() {
			ev.Time = now
		}
		ev.ReceivedAt, ev.Via = now, model.ViaServer
	}
	_, err := t.c.commit(evs, also, derived)
	return err
}

// Result reports what Ingest did with a batch.
type Result struct {
	wire.Response
	Stored []*model.Event `json:"-"`
}

// visitFromReferrer is the event generated for a visit from another site,
// UTM tags or a click id. Its id derives from the page view's, so a retried
// page view does not generate it twice.
func visitFromReferrer(pv *model.Event) *model.Event {
	tr := pv.Traffic
	props := map[string]json.RawMessage{
		"source":  jsonString(tr.Source),
		"medium":  jsonString(tr.Medium),
		"channel": jsonString(tr.Channel),
	}
	for k, v := range map[string]string{"referrer_host": tr.ReferrerHost, "campaign": tr.Campaign, "term": tr.Term, "content": tr.Content, "click_id": tr.ClickID} {
		if v != "" {
			props[k] = jsonString(v)
		}
	}
	return &model.Event{
		ID:          "vfr-" + pv.ID,
		Type:        model.VisitFromReferrer,
		Time:        pv.Time,
		ReceivedAt:  pv.ReceivedAt,
		Via:         pv.Via,
		AnonymousID: pv.AnonymousID,
		SessionID:   pv.SessionID,
		Email:       pv.Email,
		URL:         pv.URL,
		Referrer:    pv.Referrer,
		Props:       props,
		Traffic:     tr,
		DerivedFrom: pv.ID,
		UserAgent:   pv.UserAgent,
		Bot:         pv.Bot,
	}
}
