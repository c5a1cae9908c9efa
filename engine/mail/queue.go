package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// queue is the durable queue and its workers. Every change of a message's
// state, the due index and the counters commits in one transaction under
// mu, so that two workers never claim one message and the counts stay right
// (Badger does not detect conflicts here; see store.Write).
type queue struct {
	m        *Mailer
	mu       sync.Mutex
	wakeMu   sync.Mutex
	wakeup   chan struct{} // closed (and replaced) to wake every sleeping worker
	pace     pacer
	provMu   sync.Mutex
	prov     providers
	sesHTTP  httpDoer
	paused   string    // a stop by SES (SendingPaused, AccountSuspended), kept in Badger
	holdTill time.Time // the daily quota is spent: no attempt before
	account  *Account
	accErr   string
	smtpErr  string
	nextDue  time.Time // earliest due time seen by the last empty claim
	refresh  chan struct{}
	backoff  func(attempt int) time.Duration // the wait before a retry (tests shorten it)
}

// pauseKey keeps a stop across restarts.
const pauseKey = "meta/paused"

func newQueue(m *Mailer, sesHTTP httpDoer) *queue {
	q := &queue{m: m, wakeup: make(chan struct{}), sesHTTP: sesHTTP, backoff: backoff}
	q.pace.now = m.now
	var p string
	if err := m.st.Read(func(tx *store.Tx) error { return tx.Get(store.SpaceMail, pauseKey, &p) }); err == nil {
		q.paused = p
	}
	q.configure(m.settings.Get())
	return q
}

// configure (re)builds the providers from the settings.
func (q *queue) configure(s Settings) {
	p, smtpErr := buildProviders(s, q.sesHTTP)
	q.provMu.Lock()
	if q.prov.smtp != nil {
		q.prov.smtp.close()
	}
	q.prov, q.smtpErr, q.account, q.accErr = p, smtpErr, nil, ""
	q.provMu.Unlock()
	q.pace.setBase(q.m.cfg.MaxRate)
	q.wake()
}

func (q *queue) providers() providers {
	q.provMu.Lock()
	defer q.provMu.Unlock()
	return q.prov
}

// wake wakes every sleeping worker, once.
func (q *queue) wake() {
	q.wakeMu.Lock()
	close(q.wakeup)
	q.wakeup = make(chan struct{})
	q.wakeMu.Unlock()
}

// woken is closed at the next wake: take it before looking for work, so
// that a wake between the look and the sleep is not missed.
func (q *queue) woken() <-chan struct{} {
	q.wakeMu.Lock()
	defer q.wakeMu.Unlock()
	return q.wakeup
}

// counter adds d to the count of a state, in tx.
func counter(tx *store.Tx, state string, d int64) error {
	var n int64
	if err := tx.Get(store.SpaceMail, "count/"+state, &n); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return tx.Set(store.SpaceMail, "count/"+state, max(n+d, 0))
}

func dueKey(t time.Time, id string) string {
	return fmt.Sprintf("due/%016x%s", uint64(max(t.UnixNano(), 0)), id)
}

// setState moves r to state in tx, keeping the counters.
func setState(tx *store.Tx, r *Record, state string) error {
	if r.State != "" && r.State != state {
		if err := counter(tx, r.State, -1); err != nil {
			return err
		}
	}
	if r.State != state {
		if err := counter(tx, state, 1); err != nil {
			return err
		}
	}
	r.State = state
	return tx.Set(store.SpaceMail, "msg/"+r.ID, r)
}

// enqueue stores msgs as records (out) in one transaction.
func (q *queue) enqueue(msgs []Message, out []Record, created []bool) error {
	now := q.m.now().UTC()
	// the checks that read other state come first, outside the lock
	reasons := make([]string, len(msgs))
	for i, msg := range msgs {
		if s, err := q.m.Suppression(msg.To); err == nil {
			reasons[i] = "the address is suppressed (" + s.Reason + ")"
			continue
		} else if !errors.Is(err, ErrNotSuppressed) {
			return err
		}
		if !msg.Transactional {
			ok, err := q.m.subs.Subscribed(msg.To)
			if err != nil {
				return err
			}
			if !ok {
				reasons[i] = "not subscribed (marketing messages go only to subscribed addresses)"
			}
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.m.st.Write(func(tx *store.Tx) error {
		seen := map[string]int{}
		for i, msg := range msgs {
			if k := msg.IdempotencyKey; k != "" {
				if j, dup := seen[k]; dup {
					out[i] = out[j]
					continue
				}
				var id string
				err := tx.Get(store.SpaceMail, "idem/"+k, &id)
				if err == nil {
					if err := tx.Get(store.SpaceMail, "msg/"+id, &out[i]); err != nil {
						return err
					}
					out[i].HTML, out[i].Text = "", ""
					continue
				}
				if !errors.Is(err, store.ErrNotFound) {
					return err
				}
			}
			r := Record{ID: newID(now), To: msg.To, Subject: msg.Subject, HTML: msg.HTML, Text: msg.Text, Transactional: msg.Transactional,
				Campaign: msg.Campaign, Automation: msg.Automation, IdempotencyKey: msg.IdempotencyKey, CreatedAt: now, UpdatedAt: now}
			state := Queued
			if reasons[i] != "" {
				state, r.Reason = Suppressed, reasons[i]
			} else {
				r.NextAttempt = now
				if err := tx.Set(store.SpaceMail, dueKey(now, r.ID), r.ID); err != nil {
					return err
				}
			}
			if err := setState(tx, &r, state); err != nil {
				return err
			}
			if k := msg.IdempotencyKey; k != "" {
				if err := tx.Set(store.SpaceMail, "idem/"+k, r.ID); err != nil {
					return err
				}
				seen[k] = i
			}
			created[i] = true
			out[i] = r
			out[i].HTML, out[i].Text = "", ""
		}
		return nil
	})
}

// claim takes the first due message, if any, and marks it sending. It
// returns nil when nothing is due (and when the next one is due).
func (q *queue) claim() (*Record, time.Time, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.m.now()
	if q.paused != "" || now.Before(q.holdTill) {
		return nil, time.Time{}, nil
	}
	if !q.nextDue.IsZero() && now.Before(q.nextDue) {
		return nil, q.nextDue, nil
	}
	for {
		r, next, stale, err := q.claimFirst(now)
		if err != nil {
			return nil, time.Time{}, err
		}
		if stale {
			continue // an index entry of a message no longer queued: dropped; look again
		}
		if r == nil {
			q.nextDue = next
			if next.IsZero() {
				q.nextDue = now.Add(time.Minute) // nothing queued: enqueue wakes us
			}
		}
		return r, next, nil
	}
}

// claimFirst claims the first entry of the due index, if it is due.
func (q *queue) claimFirst(now time.Time) (r *Record, next time.Time, stale bool, err error) {
	err = q.m.st.Write(func(tx *store.Tx) error {
		var key, id string
		err := tx.ScanFrom(store.SpaceMail, "due/", "", false, true, func(k string, v json.RawMessage) (bool, error) {
			key = k
			return false, json.Unmarshal(v, &id)
		})
		if err != nil || key == "" {
			return err
		}
		nanos, err := strconv.ParseUint(key[len("due/"):len("due/")+16], 16, 64)
		if err != nil {
			return fmt.Errorf("mail: due key %q: %w", key, err)
		}
		if due := time.Unix(0, int64(nanos)); due.After(now) {
			next = due
			return nil
		}
		var rec Record
		if err := tx.Get(store.SpaceMail, "msg/"+id, &rec); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := tx.Delete(store.SpaceMail, key); err != nil {
			return err
		}
		if rec.State != Queued {
			stale = true
			return nil
		}
		rec.Attempts++
		rec.UpdatedAt = now.UTC()
		if err := tx.Set(store.SpaceMail, "inflight/"+rec.ID, rec.ID); err != nil {
			return err
		}
		if err := setState(tx, &rec, Sending); err != nil {
			return err
		}
		r = &rec
		return nil
	})
	return r, next, stale, err
}

// outcome is what an attempt came to.
type outcome struct {
	state      string // Sent, Failed, Queued (retry), Uncertain
	provider   string
	providerID string
	err        string
	retryAt    time.Time
	undo       bool // not an attempt at all (the queue stopped): give it back
}

// finish records the outcome of an attempt, and a sent message's
// email_send event.
func (q *queue) finish(r *Record, o outcome) {
	now := q.m.now().UTC()
	var evs []*model.Event
	if o.state == Sent {
		evs = []*model.Event{q.m.event(r, EventSend, "send-"+r.ID, now, map[string]any{"provider": o.provider})}
	}
	write := func(tx *store.Tx) error {
		var cur Record
		if err := tx.Get(store.SpaceMail, "msg/"+r.ID, &cur); err != nil {
			return err
		}
		if err := tx.Delete(store.SpaceMail, "inflight/"+r.ID); err != nil {
			return err
		}
		cur.UpdatedAt = now
		if o.provider != "" {
			cur.Provider = o.provider
		}
		if o.undo {
			cur.Attempts--
		} else {
			switch o.provider {
			case ProviderSES:
				cur.SESAttempts++
			case ProviderSMTP:
				cur.SMTPAttempts++
			}
		}
		cur.LastError = o.err
		switch o.state {
		case Sent:
			cur.ProviderID, cur.SentAt, cur.NextAttempt, cur.Reason = o.providerID, now, time.Time{}, ""
			if o.providerID != "" {
				if err := tx.Set(store.SpaceMail, "provider/"+o.providerID, cur.ID); err != nil {
					return err
				}
			}
		case Queued:
			cur.NextAttempt = o.retryAt
			if err := tx.Set(store.SpaceMail, dueKey(o.retryAt, cur.ID), cur.ID); err != nil {
				return err
			}
		case Failed, Uncertain, Suppressed:
			cur.Reason, cur.NextAttempt = o.err, time.Time{}
		}
		return setState(tx, &cur, o.state)
	}
	// The email_send event first, without the queue's lock (a commit of
	// the log may wait for ingestion): an event in the log means the
	// message went; a crash before the state below is written leaves the
	// message uncertain, which it is. The event's id makes a retry (and
	// SES's own Send event) a duplicate.
	if len(evs) > 0 {
		var err error
		for try := range 3 {
			if err = q.m.rec.Record(context.Background(), evs, nil); err == nil {
				break
			}
			time.Sleep(time.Duration(try+1) * 50 * time.Millisecond)
		}
		if err != nil {
			// the log refuses (shutting down, overloaded): the state
			// matters more than the event
			q.m.log.Warn("the email_send event could not be recorded", "message", r.ID, "err", err)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if o.state == Queued && (q.nextDue.IsZero() || o.retryAt.Before(q.nextDue)) {
		q.nextDue = o.retryAt
	}
	var err error
	for try := range 3 {
		if err = q.m.st.Write(write); err == nil {
			return
		}
		time.Sleep(time.Duration(try+1) * 50 * time.Millisecond)
	}
	q.m.log.Error("recording a message's outcome failed; it will be reported uncertain after a restart", "message", r.ID, "state", o.state, "err", err)
}

// recoverInflight turns the messages a crash left in sending into uncertain.
func (q *queue) recoverInflight() (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ids []string
	err := q.m.st.Read(func(tx *store.Tx) error {
		return tx.ScanFrom(store.SpaceMail, "inflight/", "", false, false, func(k string, _ json.RawMessage) (bool, error) {
			ids = append(ids, k[len("inflight/"):])
			return true, nil
		})
	})
	if err != nil {
		return 0, err
	}
	now := q.m.now().UTC()
	for _, id := range ids {
		err := q.m.st.Write(func(tx *store.Tx) error {
			var r Record
			if err := tx.Get(store.SpaceMail, "msg/"+id, &r); err != nil {
				return err
			}
			if err := tx.Delete(store.SpaceMail, "inflight/"+id); err != nil {
				return err
			}
			if r.State != Sending {
				return nil
			}
			r.Reason = "Shoptrail stopped (crash or power loss) while handing this message over: it may or may not have been sent, so it is not sent again by itself"
			r.UpdatedAt = now
			return setState(tx, &r, Uncertain)
		})
		if err != nil {
			return 0, err
		}
	}
	if len(ids) > 0 {
		q.m.log.Warn("messages left uncertain by an interrupted run", "count", len(ids))
	}
	return len(ids), nil
}

// retry queues again a failed or uncertain message.
func (q *queue) retry(id string) (Record, error) {
	var r Record
	if !validID(id) {
		return r, ErrNotFound
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.m.now().UTC()
	err := q.m.st.Write(func(tx *store.Tx) error {
		if err := tx.Get(store.SpaceMail, "msg/"+id, &r); err != nil {
			return err
		}
		if r.State != Failed && r.State != Uncertain {
			return &FieldError{Field: "state", Message: "only failed or uncertain messages can be sent again, this one is " + r.State}
		}
		r.NextAttempt, r.UpdatedAt, r.SESAttempts, r.SMTPAttempts, r.Reason = now, now, 0, 0, ""
		if err := tx.Set(store.SpaceMail, dueKey(now, id), id); err != nil {
			return err
		}
		return setState(tx, &r, Queued)
	})
	if errors.Is(err, store.ErrNotFound) {
		err = ErrNotFound
	}
	q.nextDue = time.Time{}
	q.wake()
	r.HTML, r.Text = "", ""
	return r, err
}

func (q *queue) stop(reason string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.paused != "" {
		return
	}
	q.paused = reason
	if err := q.m.st.Write(func(tx *store.Tx) error { return tx.Set(store.SpaceMail, pauseKey, reason) }); err != nil {
		q.m.log.Error("storing the queue's stop", "err", err)
	}
	q.m.log.Error("email sending stopped", "reason", reason)
}

func (q *queue) resume() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.paused, q.holdTill, q.nextDue = "", time.Time{}, time.Time{}
	err := q.m.st.Write(func(tx *store.Tx) error { return tx.Delete(store.SpaceMail, pauseKey) })
	q.wake()
	return err
}

func (q *queue) status() Status {
	p := q.providers()
	s := Status{Rate: q.pace.current()}
	switch {
	case p.ses != nil && p.smtp != nil:
		s.Provider = "ses+smtp"
	case p.ses != nil:
		s.Provider = ProviderSES
	case p.smtp != nil:
		s.Provider = ProviderSMTP
	}
	q.mu.Lock()
	s.Paused = q.paused
	if s.Paused == "" && q.m.now().Before(q.holdTill) {
		s.Paused = "the 24-hour sending quota is spent; sending resumes at " + q.holdTill.Local().Format("15:04")
	}
	q.mu.Unlock()
	q.provMu.Lock()
	s.Account, s.AccountErr, s.SMTPProblem = q.account, q.accErr, q.smtpErr
	q.provMu.Unlock()
	s.Counts, _ = q.m.Counts()
	return s
}

// backoff is the wait before attempt n+1: 2 s, 6 s, 18 s... at most 10
// minutes, with ±20 % jitter so that retries do not come in waves.
func backoff(n int) time.Duration {
	d := 2 * time.Second
	for range n - 1 {
		d *= 3
		if d > 10*time.Minute {
			d = 10 * time.Minute
			break
		}
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// run recovers, then runs the workers and the account refresher until ctx
// ends.
func (q *queue) run(ctx context.Context) {
	if _, err := q.recoverInflight(); err != nil {
		q.m.log.Error("recovering the queue", "err", err)
	}
	if q.m.settings.Get().From != "" && !strings.HasPrefix(q.m.PublicURL(), "https://") {
		// Gmail and Yahoo honour one-click unsubscribe only over HTTPS
		q.m.log.Warn("the links of messages (unsubscribe, clicks) are not https: set [email] public_url or [http] public_url to the public listener behind TLS",
			"public_url", q.m.PublicURL())
	}
	var wg sync.WaitGroup
	wg.Go(func() { q.refreshAccount(ctx) })
	for range q.m.cfg.Workers {
		wg.Go(func() { q.work(ctx) })
	}
	wg.Wait()
	if p := q.providers(); p.smtp != nil {
		p.smtp.close()
	}
}

func (q *queue) work(ctx context.Context) {
	for ctx.Err() == nil {
		woken := q.woken()
		p := q.providers()
		if p.ses == nil && p.smtp == nil {
			q.sleep(ctx, woken, time.Minute)
			continue
		}
		// a full disk: claim nothing, or a sent message could not be recorded
		if q.m.canWrite != nil && q.m.canWrite() != nil {
			q.sleep(ctx, woken, 2*time.Second)
			continue
		}
		// the pace first: a message is claimed only when it can go at once
		if err := q.pace.wait(ctx); err != nil {
			return
		}
		r, next, err := q.claim()
		if err != nil {
			q.m.log.Error("claiming a message", "err", err)
			q.sleep(ctx, woken, time.Second)
			continue
		}
		if r == nil {
			q.pace.giveBack()
			wait := time.Minute
			if !next.IsZero() {
				wait = max(time.Until(next), 10*time.Millisecond)
			}
			q.sleep(ctx, woken, wait)
			continue
		}
		q.finish(r, q.attempt(ctx, p, r))
	}
}

func (q *queue) sleep(ctx context.Context, woken <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-woken:
		q.mu.Lock()
		q.nextDue = time.Time{} // something changed: look at the index again
		q.mu.Unlock()
	}
}

// attempt sends r once and says what came of it. The send itself is not
// cancelled by a shutdown (ctx): it gets its own timeout, so that what
// it came to is recorded.
func (q *queue) attempt(ctx context.Context, p providers, r *Record) outcome {
	now := q.m.now()
	// a late unsubscribe or suppression wins over the queue
	if reason, err := q.m.blocked(r); err != nil {
		return outcome{state: Queued, err: err.Error(), retryAt: now.Add(q.backoff(r.Attempts)), undo: true}
	} else if reason != "" {
		return outcome{state: Suppressed, err: reason}
	}
	s := q.m.settings.Get()
	if r.Attempts > 10*q.m.cfg.MaxAttempts {
		return outcome{state: Failed, err: "gave up after " + strconv.Itoa(r.Attempts-1) + " attempts; last error: " + r.LastError}
	}
	useSES := p.ses != nil && (r.SESAttempts < q.m.cfg.MaxAttempts || p.smtp == nil)
	if useSES && r.SESAttempts >= q.m.cfg.MaxAttempts {
		return outcome{state: Failed, provider: ProviderSES, err: "SES failed " + strconv.Itoa(r.SESAttempts) + " times and no SMTP fallback is configured; last error: " + r.LastError}
	}
	if !useSES && r.SMTPAttempts >= q.m.cfg.MaxAttempts {
		return outcome{state: Failed, provider: ProviderSMTP, err: "out of retries; last error: " + r.LastError}
	}
	provider := ProviderSMTP
	if useSES {
		provider = ProviderSES
	}
	raw, err := q.m.compose(r, s, provider)
	if err != nil {
		return outcome{state: Failed, provider: provider, err: "composing the message: " + err.Error()}
	}
	sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	if useSES {
		id, err := p.ses.send(sendCtx, r, s, raw)
		return q.sesOutcome(r, id, err)
	}
	err = p.smtp.send(sendCtx, s.envelopeFrom(), r.To, raw)
	return smtpOutcome(r, err, q.m.now().Add(q.backoff(r.SMTPAttempts+1)))
}

func (q *queue) sesOutcome(r *Record, id string, err error) outcome {
	now := q.m.now()
	if err == nil {
		q.pace.ok()
		return outcome{state: Sent, provider: ProviderSES, providerID: id}
	}
	e := classifySES(err)
	o := outcome{provider: ProviderSES, err: e.Error()}
	switch e.Kind {
	case KindThrottled:
		q.pace.throttled()
		o.state, o.retryAt, o.undo = Queued, now.Add(q.backoff(1)), true
	case KindQuota:
		q.mu.Lock()
		q.holdTill = now.Add(time.Hour)
		q.mu.Unlock()
		o.state, o.retryAt, o.undo = Queued, now.Add(time.Hour), true
	case KindPaused, KindSuspended:
		q.stop(e.Error())
		o.state, o.retryAt, o.undo = Queued, now, true
	case KindPermanent:
		o.state = Failed
	default: // transient: retry on SES, then on SMTP
		o.state, o.retryAt = Queued, now.Add(q.backoff(r.SESAttempts+1))
	}
	return o
}
