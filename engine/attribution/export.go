package attribution

import (
	"errors"
	"time"

	"github.com/shoptrail/shoptrail/engine/store"
)

// ProfileOrders returns the orders the projection keeps for a profile, with
// their paths and credit inputs, oldest first: a person's attribution
// records for their data export.
func ProfileOrders(tx *store.Tx, profile string) ([]Stored, error) {
	var s shopper
	if err := tx.Get(space, "profile/"+profile, &s); errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	out := make([]Stored, 0, len(s.Orders))
	for _, ref := range s.Orders {
		var o Stored
		err := tx.Get(space, "day/"+ref.Time.UTC().Format(time.DateOnly)+"/"+ref.Key, &o)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}
