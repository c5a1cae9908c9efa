package identity

import (
	"slices"

	"github.com/shoptrail/shoptrail/engine/model"
)

// state keeps the projections' recent working set in memory: the profiles,
// sessions and identity links that the last folds wrote. The identity
// projection is the only writer of these keys, so what it committed last is what the store
// holds; the cache only ever receives committed values (see fold.commit).
// Each map is bounded: when one is full it is emptied, and the store
// answers until the working set is warm again.
type state struct {
	max      int
	profiles map[string]model.Profile
	sessions map[string]model.Session
	links    map[string]string // link key (see linkKey) → value
}

func newState(max int) *state {
	return &state{
		max:      max,
		profiles: map[string]model.Profile{},
		sessions: map[string]model.Session{},
		links:    map[string]string{},
	}
}

// Link kinds.
const (
	linkAnon   byte = 'a' // anonymous id → profile id
	linkClient byte = 'c' // browser session id → session id
	linkOpen   byte = 'o' // profile id → open server-side session id
)

func linkKey(kind byte, k string) string { return string(kind) + k }

func put[V any](m map[string]V, max int, k string, v V) {
	if len(m) >= max {
		if _, ok := m[k]; !ok {
			clear(m)
		}
	}
	m[k] = v
}

// cloneProfile copies a profile deeply enough that changing the copy's
// slices and maps leaves the original alone.
func cloneProfile(p model.Profile) model.Profile {
	p.AnonymousIDs = slices.Clone(p.AnonymousIDs)
	p.OrderSums = p.OrderSums.Clone()
	return p
}
