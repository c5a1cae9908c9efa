package attribution

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/store"
)

// Query selects the orders of a report.
type Query struct {
	From, To time.Time      // order days, inclusive, in Location
	Location *time.Location // the report's time zone (nil: UTC)
	Lookback time.Duration  // 1 h to MaxLookback
	Currency string         // "": the only one present, else the most frequent
	// All counts every order; without it, once the shop confirmed any order
	// through the API, only confirmed ones (model.OrderSums.Counted).
	All bool
}

// Errors of Run.
var (
	ErrPeriod   = errors.New("attribution: from must not be after to, and the period at most 366 days")
	ErrLookback = fmt.Errorf("attribution: lookback must be from 1h to %s", MaxLookback)
)

// Report is the attribution of a period's orders in one currency.
type Report struct {
	Query      Query
	Currency   string
	Currencies []string // the currencies of the period's orders, most orders first
	Confirmed  bool     // only orders the shop confirmed count
	Orders     int64
	Minor      int64 // the orders' total
	Channels   []Channel
	List       []Stored // the orders credited, newest first
	effects    map[string]float64
}

// Effects are the removal effects of the data-driven model for the period.
func (r *Report) Effects() map[string]float64 { return r.effects }

// Run reads the period's orders and credits them under every model.
func Run(st *store.Store, q Query) (*Report, error) {
	if q.Location == nil {
		q.Location = time.UTC
	}
	if q.Lookback < time.Hour || q.Lookback > MaxLookback {
		return nil, ErrLookback
	}
	from := time.Date(q.From.Year(), q.From.Month(), q.From.Day(), 0, 0, 0, 0, q.Location)
	to := time.Date(q.To.Year(), q.To.Month(), q.To.Day(), 0, 0, 0, 0, q.Location).AddDate(0, 0, 1)
	if to.Before(from) || to.Sub(from) > 366*24*time.Hour {
		return nil, ErrPeriod
	}
	confirmedSeen, err := st.ConfirmedOrders(store.IdentityOrders)
	if err != nil {
		return nil, err
	}
	rep := &Report{Query: q, Confirmed: !q.All && confirmedSeen > 0}
	var all []Stored
	chain := Chain{}
	err = st.Read(func(tx *store.Tx) error {
		for d := from.UTC().Truncate(24 * time.Hour); d.Before(to); d = d.AddDate(0, 0, 1) {
			day := d.Format(time.DateOnly)
			if err := tx.Scan(space, "day/"+day+"/", func(_ string, v json.RawMessage) (bool, error) {
				var o Stored
				if err := json.Unmarshal(v, &o); err != nil {
					return false, err
				}
				if !o.Time.Before(from) && o.Time.Before(to) && (o.Verified || !rep.Confirmed) {
					all = append(all, o)
				}
				return true, nil
			}); err != nil {
				return err
			}
			// journeys that did not convert, by the day of their last touch
			var t tally
			if err := tx.Get(space, "nc/"+day, &t); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			for k, n := range t {
				from, to, _ := strings.Cut(k, sep)
				chain.Add(from, to, n)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, o := range all {
		counts[o.Currency]++
		channels := make([]string, 0, len(o.Path))
		for _, t := range o.PathWithin(q.Lookback) {
			channels = append(channels, t.Channel)
		}
		chain.AddJourney(Journey{Channels: channels, Converted: true})
	}
	for c := range counts {
		rep.Currencies = append(rep.Currencies, c)
	}
	slices.SortFunc(rep.Currencies, func(a, b string) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return strings.Compare(a, b)
	})
	rep.Currency = q.Currency
	if rep.Currency == "" && len(rep.Currencies) > 0 {
		rep.Currency = rep.Currencies[0]
	}
	var orders []Order
	for _, o := range all {
		if o.Currency == rep.Currency {
			rep.List = append(rep.List, o)
			orders = append(orders, o.Order)
			rep.Orders++
			rep.Minor += o.Minor
		}
	}
	slices.SortFunc(rep.List, func(a, b Stored) int { return b.Time.Compare(a.Time) })
	rep.effects = chain.RemovalEffects()
	rep.Channels = CreditOrders(orders, q.Lookback, rep.effects)
	return rep, nil
}
