package report

import (
	"errors"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Rollups is the projection of the dashboard's daily totals (UTC days):
// events, sessions, page views, orders and revenue per currency (all, and
// those the shop confirmed; see model.OrderSums) and distinct visitors (a
// HyperLogLog sketch). Events flagged as bots are left out.
func Rollups() *project.Projection {
	return &project.Projection{
		Name:    "rollups",
		Version: 4,
		Owns:    []store.Space{store.SpaceRollups},
		Fold:    foldRollups,
	}
}

func foldRollups(run *project.Run) error {
	days := map[string]*model.Rollup{}
	rollup := func(day string) (*model.Rollup, error) {
		if r, ok := days[day]; ok {
			return r, nil
		}
		got, err := run.Tx.Rollup(day)
		if errors.Is(err, store.ErrNotFound) {
			got = model.Rollup{Day: day}
		} else if err != nil {
			return nil, err
		}
		if len(got.Visitors) == 0 {
			got.Visitors = model.NewSketch()
		}
		days[day] = &got
		return &got, nil
	}
	orders := map[string]model.OrderRecord{}
	var confirmed int64
	for _, ev := range run.Events {
		if ev.Bot {
			continue // crawlers and headless browsers are no shoppers
		}
		day := ev.Time.UTC().Format(time.DateOnly)
		r, err := rollup(day)
		if err != nil {
			return err
		}
		r.Events++
		if ev.Via != model.ViaServer { // what Shoptrail recorded is no visit
			visitor := ev.AnonymousID
			if visitor == "" {
				visitor = ev.Email
			}
			r.Visitors.Add(visitor)
		}
		if ev.NewSession {
			r.Sessions++
		}
		switch ev.Type {
		case model.PageView:
			r.PageViews++
		case model.Order:
			// once per order_id, the shop's confirmation superseding a
			// browser's claim, on the day it was counted
			id, rec := ev.Order()
			rec.Day = day
			var prev *model.OrderRecord
			if id != "" {
				if p, ok := orders[id]; ok {
					prev = &p
				} else if prev, err = run.Tx.Order(store.RollupOrders, id); err != nil {
					return err
				}
			}
			remove, add, keep := model.Supersede(prev, rec)
			if remove != nil {
				old, err := rollup(remove.Day)
				if err != nil {
					return err
				}
				old.Apply(remove, nil)
			}
			r.Apply(nil, add)
			if add != nil && add.Verified && (remove == nil || !remove.Verified) {
				confirmed++
			}
			if id != "" {
				orders[id] = keep
			}
		}
	}
	for id, rec := range orders {
		if err := run.Tx.PutOrder(store.RollupOrders, id, rec); err != nil {
			return err
		}
	}
	if confirmed > 0 {
		if err := run.Tx.AddConfirmedOrders(store.RollupOrders, confirmed); err != nil {
			return err
		}
	}
	for _, r := range days {
		if err := run.Tx.PutRollup(*r); err != nil {
			return err
		}
	}
	return nil
}
