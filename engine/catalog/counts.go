package catalog

import (
	"slices"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
)

// maxSessionProducts bounds the products remembered per session for
// "viewed together" counts.
const maxSessionProducts = 20

// Counts is the projection of what events say about products: how often
// two were viewed in one session or bought in one order (the "viewed
// together" and "bought together" recommendations), and product IDs that
// events named but the catalogue lacks. The counts hold no personal data
// and stay when a user is erased. known tells which product IDs the
// catalogue has (nil: all).
func Counts(known func(productID string) bool) *project.Projection {
	return &project.Projection{
		Name:    "products",
		Version: 2,
		Owns:    []store.Space{store.SpaceProducts},
		Fold:    func(r *project.Run) error { return foldCounts(r, known) },
	}
}

type pair struct {
	kind store.PairKind
	a, b string
}

func foldCounts(run *project.Run, known func(string) bool) error {
	pairs := map[pair]int64{}
	unknown := map[string]int64{}
	viewed := map[string][]string{} // session id → products, as changed by this run
	both := func(kind store.PairKind, a, b string) {
		pairs[pair{kind, a, b}]++
		pairs[pair{kind, b, a}]++
	}
	for _, ev := range run.Events {
		if ev.Bot {
			continue // a crawler's path through the shop recommends nothing
		}
		ids := ev.ProductIDs()
		for _, id := range ids {
			if known != nil && !known(id) {
				unknown[id]++
			}
		}
		switch {
		case len(ids) == 0:
		case ev.Type == model.ProductView && ev.SessionID != "":
			seen, ok := viewed[ev.SessionID]
			if !ok {
				var err error
				if seen, err = run.Tx.SessionProducts(ev.SessionID); err != nil {
					return err
				}
			}
			if slices.Contains(seen, ids[0]) {
				continue
			}
			for _, other := range seen {
				both(store.ViewedTogether, ids[0], other)
			}
			seen = append(seen, ids[0])
			if len(seen) > maxSessionProducts {
				seen = seen[1:]
			}
			viewed[ev.SessionID] = seen
		case ev.Type == model.Order:
			for i, a := range ids {
				for _, b := range ids[i+1:] {
					both(store.BoughtTogether, a, b)
				}
			}
		}
	}
	for sid, ids := range viewed {
		if err := run.Tx.PutSessionProducts(sid, ids); err != nil {
			return err
		}
	}
	for p, n := range pairs {
		if err := run.Tx.AddPairCount(p.kind, p.a, p.b, n); err != nil {
			return err
		}
	}
	for id, n := range unknown {
		if err := run.Tx.AddUnknownProduct(id, n); err != nil {
			return err
		}
	}
	return nil
}
