package project_test

import (
	"errors"

	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
)

// A toy projection, the whole of what a new one needs: it counts events
// per type and per profile, moves a profile's count when two identities
// merge and forgets an erased profile. Register it in the composition root
// (engine/app: projections) and it backfills from the log on the next start.
func counter(name string, version uint32) *project.Projection {
	sp := store.ProjectionSpace(name)
	add := func(tx *store.Tx, key string, n int) error {
		var cur int
		if err := tx.Get(sp, key, &cur); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return tx.Set(sp, key, cur+n)
	}
	return &project.Projection{
		Name:    name,
		Version: version,
		Owns:    []store.Space{sp},
		Fold: func(r *project.Run) error {
			for _, ev := range r.Events {
				if err := add(r.Tx, "type/"+ev.Type, 1); err != nil {
					return err
				}
				if err := add(r.Tx, "profile/"+ev.ProfileID, 1); err != nil {
					return err
				}
			}
			return nil
		},
		Move: func(tx *store.Tx, from, to string) error {
			var n int
			if err := tx.Get(sp, "profile/"+from, &n); errors.Is(err, store.ErrNotFound) {
				return nil
			} else if err != nil {
				return err
			}
			if err := tx.Delete(sp, "profile/"+from); err != nil {
				return err
			}
			return add(tx, "profile/"+to, n)
		},
		Erase: func(tx *store.Tx, profileID string) error { return tx.Delete(sp, "profile/"+profileID) },
	}
}
