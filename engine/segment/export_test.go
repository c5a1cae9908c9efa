package segment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// PreviewFromLog is Preview without the preview index: what the index
// must agree with.
func (s *Service) PreviewFromLog(ctx context.Context, raw []byte) (PreviewResult, error) {
	r, err := Parse(raw)
	if err != nil {
		return PreviewResult{}, err
	}
	return s.previewLog(ctx, r, s.defs.Load(), s.now().UnixMilli())
}

// Indexed reports whether Preview would read the preview index for a rule.
func (s *Service) Indexed(raw []byte) bool {
	r, err := Parse(raw)
	if err != nil {
		return false
	}
	_, ok := s.idx.Load().snapshot(r)
	return ok
}

// HasRecord reports whether the projection keeps a record of a profile.
func (s *Service) HasRecord(profile string) bool {
	var rec record
	return s.st.Read(func(tx *store.Tx) error { return tx.Get(sp, "p/"+profile, &rec) }) == nil
}

// MembersFromLog returns the profiles each rule selects at the service's
// now, every profile's events read again from the log (bots' events and the
// segments' own entries and exits left out, as the fold leaves them out)
// with its Users API attributes: what a segment that the live fold kept
// must hold. Unlike PreviewFromLog, it reads nothing the projection keeps
// (PreviewFromLog takes the facts of atoms a built segment counts from the
// projection's records). The last list is every shopper's.
func (s *Service) MembersFromLog(raws ...[]byte) ([][]string, error) {
	var rules []*Rule
	for _, raw := range raws {
		r, err := Parse(raw)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	now := s.now().UnixMilli()
	out := make([][]string, len(rules)+1)
	for i := range out {
		out[i] = []string{}
	}
	err := s.st.Read(func(tx *store.Tx) error {
		after := ""
		for {
			ids, err := tx.ProfileIDsAfter(after, 1000)
			if err != nil {
				return err
			}
			for _, profile := range ids {
				facts := make([]map[string]*fact, len(rules))
				for i := range facts {
					facts[i] = map[string]*fact{}
				}
				shopper := false
				if err := tx.ProfileEvents(profile, nil, func(ev *model.Event) error {
					if ev.Bot || ev.Type == Entered || ev.Type == Exited {
						return nil
					}
					shopper = true
					for i, r := range rules {
						for id, a := range r.atoms {
							if a.typ == ev.Type && a.matches(ev) {
								if facts[i][id] == nil {
									facts[i][id] = &fact{}
								}
								facts[i][id].add(ev)
							}
						}
					}
					return nil
				}); err != nil {
					return err
				}
				if !shopper {
					continue
				}
				out[len(rules)] = append(out[len(rules)], profile)
				var u *model.User
				if email := model.ProfileEmail(profile); email != "" {
					switch got, err := tx.User(email); {
					case err == nil:
						u = &got
					case !errors.Is(err, store.ErrNotFound):
						return err
					}
				}
				attr := attributes(model.ProfileEmail(profile), u)
				for i, r := range rules {
					if r.root.eval(&evalCtx{facts: facts[i], attr: attr, now: now}) {
						out[i] = append(out[i], profile)
					}
				}
			}
			if len(ids) < 1000 {
				return nil
			}
			after = ids[len(ids)-1]
		}
	})
	return out, err
}

// Bare reports whether a profile with no counted event can match a rule
// (the fold then looks at every event's profile).
func Bare(raw []byte) bool {
	r, err := Parse(raw)
	return err == nil && r.matchesBare(0)
}

// The segments benchmarks' generated shop (shop_test.go).
const PreviewRule = previewRule

var (
	BenchSources = benchSources
	BenchVisit   = benchVisit
)

// SetRelayFullEvery sets how often RelayOnce reads the outbox from its
// start.
func (s *Service) SetRelayFullEvery(d time.Duration) {
	s.relayMu.Lock()
	s.relayFullEvery = d
	s.relayMu.Unlock()
}

// PutChange writes an entry or exit to the outbox under key seq, as a
// fold does.
func (s *Service) PutChange(seq uint64, segment, email string, entered bool, at time.Time) error {
	return s.st.Write(func(tx *store.Tx) error {
		return tx.Set(sp, fmt.Sprintf("o/%020d", seq), change{Segment: segment, Name: segment, Profile: "u:" + email, Email: email, Entered: entered, At: at})
	})
}
