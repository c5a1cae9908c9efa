package report

import (
	"errors"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Rollups is the projection of the dashboard's daily totals (UTC days):
// events, sessions, page views, orders, revenue per currency and distinct
// visitors (a HyperLogLog sketch).
func Rollups() *project.Projection {
	return &project.Projection{
		Name:    "rollups",
		Version: 2,
		Owns:    []store.Space{store.SpaceRollups},
		Fold:    foldRollups,
	}
}

func foldRollups(run *project.Run) error {
	days := map[string]*model.Rollup{}
	for _, ev := range run.Events {
		day := ev.Time.UTC().Format(time.DateOnly)
		r, ok := days[day]
		if !ok {
			got, err := run.Tx.Rollup(day)
			if errors.Is(err, store.ErrNotFound) {
				got = model.Rollup{Day: day}
			} else if err != nil {
				return err
			}
			if len(got.Visitors) == 0 {
				got.Visitors = model.NewSketch()
			}
			r = &got
			days[day] = r
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
			r.Orders++
			r.Revenue.Add(ev.OrderTotal())
		}
	}
	for _, r := range days {
		if err := run.Tx.PutRollup(*r); err != nil {
			return err
		}
	}
	return nil
}
