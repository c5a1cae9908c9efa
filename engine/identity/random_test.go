package identity_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/identity"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Every session listed under a profile exists and names that profile,
// every event listed under a profile is that profile's for Resolve too, and
// every browser session id's link names a session that exists, whatever
// browsers do: visit, log in (merges), change hands, come back after the
// timeout, send another browser's session id or one the fold will choose,
// users' server-side events come, and whoever is erased,
// users and anonymous shoppers, in any order, the events before them
// folded or not yet. A session listed under a
// profile it is not (or no longer) the session of is what an erasure left
// behind, and what stalled the identity stage's merges.
func TestSessionEntriesStayTheirProfilesRandomly(t *testing.T) {
	var stats struct{ steps, logins, serverSide, erasures, foreign, timeouts, unfolded int }
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x1d))
			p := enginetest.NewPipeline(t)
			anons := []string{"b0", "b1", "b2"}
			emails := []string{"u0@x.com", "u1@x.com", "u2@x.com"}
			var profiles []string
			for _, a := range anons {
				profiles = append(profiles, model.AnonymousProfileID(a))
			}
			for _, e := range emails {
				profiles = append(profiles, model.UserProfileID(e))
			}
			clientIDs := map[string]bool{}
			var log []string
			at, n := day0, 0
			for step := range 50 {
				switch d := []time.Duration{time.Minute, time.Hour, 13 * time.Hour}[rng.IntN(3)]; d {
				case 13 * time.Hour:
					stats.timeouts++
					at = at.Add(d)
				default:
					at = at.Add(d)
				}
				anon := anons[rng.IntN(len(anons))]
				ev := &model.Event{Type: model.PageView, AnonymousID: anon, SessionID: "s-" + anon, URL: "https://shop.example/", Time: at}
				switch k := rng.IntN(10); {
				case k < 4: // a visit
				case k < 6: // a login
					ev.Type, ev.Email = model.Login, emails[rng.IntN(len(emails))]
					stats.logins++
				case k == 6: // a user's server-side event: no browser, no session id
					ev.AnonymousID, ev.SessionID, ev.Email = "", "", emails[rng.IntN(len(emails))]
					stats.serverSide++
				case k == 7 && rng.IntN(3) == 0: // an id the fold will choose
					next := strconv.FormatUint(uint64(n+2+rng.IntN(3)), 36) // a later event's seq
					ev.SessionID = []string{"srv-" + next, "s-" + anon + "~" + next}[rng.IntN(2)]
					stats.foreign++
				case k == 7: // another browser's session id, or one the fold chose
					if err := p.Store.Read(func(tx *store.Tx) error {
						var ids []string
						for _, pid := range profiles {
							ss, err := tx.Sessions(pid)
							if err != nil {
								return err
							}
							for _, s := range ss {
								ids = append(ids, s.ID)
							}
						}
						if len(ids) > 0 {
							ev.SessionID = ids[rng.IntN(len(ids))]
						}
						return nil
					}); err != nil {
						t.Fatal(err)
					}
					stats.foreign++
				default: // an erasure, of a user or an anonymous shopper
					who := profiles[rng.IntN(len(profiles))]
					if _, err := p.Runner.Erase(context.Background(), who, nil); err != nil {
						t.Fatalf("step %d: erase %s: %v\n%s", step, who, err, strings.Join(log, "\n"))
					}
					log = append(log, fmt.Sprintf("%d: erased %s", step, who))
					stats.erasures++
					check(t, p, profiles, clientIDs, step, log)
					continue
				}
				n++
				ev.ID = fmt.Sprint(n)
				if ev.SessionID != "" {
					clientIDs[ev.SessionID] = true
				}
				log = append(log, fmt.Sprintf("%d: %s %s anon=%s session=%s email=%s", step, at.Format("01-02 15:04"), ev.Type, ev.AnonymousID, ev.SessionID, ev.Email))
				if rng.IntN(3) > 0 {
					p.Append(t, ev)
				} else {
					// not waiting for the fold: an erasure may come first
					// (it folds what the log holds before it erases)
					ev.Via, ev.ReceivedAt = model.ViaAPI, ev.Time
					if _, err := p.Store.Append([]*model.Event{ev}, nil); err != nil {
						t.Fatal(err)
					}
					p.Runner.Committed([]*model.Event{ev})
					stats.unfolded++
				}
				check(t, p, profiles, clientIDs, step, log)
				stats.steps++
			}
		})
		if t.Failed() {
			return
		}
	}
	t.Logf("%+v", stats)
	if stats.erasures < 25 || stats.logins < 30 || stats.serverSide < 10 || stats.foreign < 12 || stats.timeouts < 50 || stats.unfolded < 50 {
		t.Errorf("a weak test: %+v", stats)
	}
}

// check fails the test when a profile lists a session that is gone or not
// its own, or a browser session id links to a session that is gone.
func check(t *testing.T, p *enginetest.Pipeline, profiles []string, clientIDs map[string]bool, step int, log []string) {
	t.Helper()
	if err := p.Store.Read(func(tx *store.Tx) error {
		for _, pid := range profiles {
			ids, err := tx.SessionEntries(pid)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if s, err := tx.Session(id); err != nil {
					t.Errorf("step %d: session %s listed under %s: %v", step, id, pid, err)
				} else if s.ProfileID != pid {
					t.Errorf("step %d: session %s listed under %s belongs to %s", step, id, pid, s.ProfileID)
				}
			}
		}
		for c := range clientIDs {
			id, err := tx.ClientSession(c)
			if err == store.ErrNotFound {
				continue
			}
			if err != nil {
				return err
			}
			if _, err := tx.Session(id); err != nil {
				t.Errorf("step %d: browser session id %s links to %s: %v", step, c, id, err)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Every event a profile lists is that profile's for the projections
	// that fold later (Resolve finds it through its session), and in a
	// session of that profile's.
	if err := p.Store.Read(func(tx *store.Tx) error {
		for _, pid := range profiles {
			var evs []project.Event
			if err := tx.ProfileEvents(pid, nil, func(ev *model.Event) error {
				evs = append(evs, project.Event{Event: ev})
				return nil
			}); err != nil {
				return err
			}
			if err := identity.New(12*time.Hour).Projection().Resolve(tx, evs); err != nil {
				return err
			}
			for _, ev := range evs {
				if ev.ProfileID != pid {
					t.Errorf("step %d: event %s (%s) listed under %s resolves to %q, session %q", step, ev.ID, ev.Type, pid, ev.ProfileID, ev.SessionID)
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		t.Fatalf("what happened:\n%s", strings.Join(log, "\n"))
	}
}
