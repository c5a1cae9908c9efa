// Package live is the hub of the campaigns' live preview: short-lived
// preview tokens, each scoped to one campaign's draft, and the shop tabs
// subscribed to a token. Publishing never blocks: each subscriber has a
// one-slot mailbox that keeps only the newest draft (a preview needs the
// latest state, not every keystroke), so a slow tab drops intermediate
// drafts instead of holding up the editor or the other tabs.
package live

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"
)

// Errors.
var (
	ErrUnknownToken = errors.New("live: unknown or expired preview token")
	ErrTooMany      = errors.New("live: too many preview tabs for this token")
)

// Limits.
const (
	MaxTokens         = 1000
	MaxSubsPerToken   = 20
	DefaultTokenTTL   = 30 * time.Minute
	tokenBytes        = 24
	cleanupEveryCalls = 64
)

// Hub holds the preview tokens and their subscribers.
type Hub struct {
	mu     sync.Mutex
	topics map[string]*topic
	ttl    time.Duration
	now    func() time.Time
	calls  int
}

type topic struct {
	campaignID string
	expires    time.Time
	last       any
	subs       map[*Sub]struct{}
}

// Sub is one subscribed tab. C delivers the newest draft; it is closed
// when the token expires or is revoked.
type Sub struct {
	C      chan any
	closed bool
}

// New returns a hub whose tokens live ttl (0: DefaultTokenTTL).
func New(ttl time.Duration, now func() time.Time) *Hub {
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Hub{topics: map[string]*topic{}, ttl: ttl, now: now}
}

// NewToken makes a token for previewing a campaign's draft.
func (h *Hub) NewToken(campaignID string) (string, error) {
	b := make([]byte, tokenBytes)
	rand.Read(b)
	tok := hex.EncodeToString(b)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sweepLocked()
	if len(h.topics) >= MaxTokens {
		return "", ErrTooMany
	}
	h.topics[tok] = &topic{campaignID: campaignID, expires: h.now().Add(h.ttl), subs: map[*Sub]struct{}{}}
	return tok, nil
}

// Campaign returns the campaign a live token previews.
func (h *Hub) Campaign(token string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.liveLocked(token)
	if t == nil {
		return "", false
	}
	return t.campaignID, true
}

func (h *Hub) liveLocked(token string) *topic {
	t := h.topics[token]
	if t == nil || h.now().After(t.expires) {
		return nil
	}
	return t
}

// Publish makes v the token's newest draft and hands it to every tab.
func (h *Hub) Publish(token string, v any) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.liveLocked(token)
	if t == nil {
		return ErrUnknownToken
	}
	t.last = v
	for s := range t.subs {
		offer(s.C, v)
	}
	return nil
}

// offer puts v in a one-slot mailbox, replacing what it held.
func offer(c chan any, v any) {
	select {
	case c <- v:
		return
	default:
	}
	select {
	case <-c:
	default:
	}
	select {
	case c <- v:
	default:
	}
}

// Subscribe adds a tab to a token; it gets the newest draft at once if
// there is one. Call Unsubscribe when the tab goes.
func (h *Hub) Subscribe(token string) (*Sub, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.liveLocked(token)
	if t == nil {
		return nil, ErrUnknownToken
	}
	if len(t.subs) >= MaxSubsPerToken {
		return nil, ErrTooMany
	}
	s := &Sub{C: make(chan any, 1)}
	t.subs[s] = struct{}{}
	if t.last != nil {
		offer(s.C, t.last)
	}
	return s, nil
}

// Unsubscribe removes a tab.
func (h *Hub) Unsubscribe(token string, s *Sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := h.topics[token]; t != nil {
		delete(t.subs, s)
	}
}

// Expires returns when a token expires.
func (h *Hub) Expires(token string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.liveLocked(token)
	if t == nil {
		return time.Time{}, false
	}
	return t.expires, true
}

// sweepLocked drops expired tokens and closes their tabs' mailboxes.
func (h *Hub) sweepLocked() {
	now := h.now()
	for tok, t := range h.topics {
		if now.After(t.expires) {
			for s := range t.subs {
				if !s.closed {
					s.closed = true
					close(s.C)
				}
			}
			delete(h.topics, tok)
		}
	}
}
