package attribution

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
	// FromOrders reads every order instead of the daily summaries: slower,
	// and the same figures (a check of the summaries).
	FromOrders bool
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
	Summary    Summary // the orders of Currency
	effects    map[string]float64
	from, to   time.Time // the period, [from, to)
}

// Effects are the removal effects of the data-driven model for the period.
func (r *Report) Effects() map[string]float64 { return r.effects }

// Run credits the period's orders under every model. Whole days of a
// report with the default lookback come from the projection's daily
// summaries; the days a time zone cuts, and every day of another
// lookback, from the orders themselves.
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
	rep := &Report{Query: q, Confirmed: !q.All && confirmedSeen > 0, from: from, to: to}
	counts := map[string]*Summary{} // by currency
	sum := func(currency string) *Summary {
		if counts[currency] == nil {
			counts[currency] = &Summary{}
		}
		return counts[currency]
	}
	chain := Chain{}
	err = st.Read(func(tx *store.Tx) error {
		for d := from.UTC().Truncate(24 * time.Hour); d.Before(to); d = d.AddDate(0, 0, 1) {
			day := d.Format(time.DateOnly)
			var kept daySummary
			whole := !q.FromOrders && !d.Before(from) && !d.AddDate(0, 0, 1).After(to)
			if whole {
				if err := tx.Get(space, "sum/"+day, &kept); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
			}
			if whole && (kept.Lookback == q.Lookback || len(kept.Groups) == 0) {
				for g, s := range kept.Groups {
					currency, state, _ := strings.Cut(g, "/")
					if state == "confirmed" || !rep.Confirmed {
						sum(currency).AddAll(s)
					}
				}
			} else if err := rep.scan(tx, day, func(o *Stored) bool {
				sum(o.Currency).Add(o.Order, q.Lookback, 1)
				return true
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
	for c, s := range counts {
		rep.Currencies = append(rep.Currencies, c)
		s.chain(chain)
	}
	slices.SortFunc(rep.Currencies, func(a, b string) int {
		if x, y := counts[a].Orders, counts[b].Orders; x != y {
			return int(y - x)
		}
		return strings.Compare(a, b)
	})
	rep.Currency = q.Currency
	if rep.Currency == "" && len(rep.Currencies) > 0 {
		rep.Currency = rep.Currencies[0]
	}
	if s := counts[rep.Currency]; s != nil {
		rep.Summary = *s
	}
	rep.Orders, rep.Minor = rep.Summary.Orders, rep.Summary.Minor
	rep.effects = chain.RemovalEffects()
	rep.Channels = rep.Summary.credit(rep.effects)
	return rep, nil
}

// scan calls fn with each order kept under a day (UTC) that the report
// counts: in its period, and confirmed if it counts only those.
func (r *Report) scan(tx *store.Tx, day string, fn func(o *Stored) bool) error {
	return tx.Scan(space, "day/"+day+"/", func(_ string, v json.RawMessage) (bool, error) {
		var o Stored
		if err := json.Unmarshal(v, &o); err != nil {
			return false, err
		}
		if o.Time.Before(r.from) || !o.Time.Before(r.to) || (r.Confirmed && !o.Verified) {
			return true, nil
		}
		return fn(&o), nil
	})
}

// Path is a conversion path: its channels, and its orders and their value.
type Path struct {
	Channels []string
	Count
}

// Paths returns the report's most frequent conversion paths, most orders
// first, at most limit.
func (r *Report) Paths(limit int) []Path {
	out := make([]Path, 0, len(r.Summary.Paths))
	for p, c := range r.Summary.Paths {
		out = append(out, Path{strings.Split(p, sep), *c})
	}
	slices.SortFunc(out, func(a, b Path) int {
		if a.Orders != b.Orders {
			return int(b.Orders - a.Orders)
		}
		return slices.Compare(a.Channels, b.Channels)
	})
	return out[:min(limit, len(out))]
}

// Onsite is an onsite campaign and the orders whose shopper saw it within
// the lookback before ordering.
type Onsite struct {
	Campaign string // its id
	Count
}

// Onsite returns the onsite campaigns seen before the report's orders,
// most orders first. They are touchpoints no model credits: a shopper
// sees them on the shop, after a channel brought them there.
func (r *Report) Onsite() []Onsite {
	out := make([]Onsite, 0, len(r.Summary.Onsite))
	for c, n := range r.Summary.Onsite {
		out = append(out, Onsite{c, *n})
	}
	slices.SortFunc(out, func(a, b Onsite) int {
		if a.Orders != b.Orders {
			return int(b.Orders - a.Orders)
		}
		return strings.Compare(a.Campaign, b.Campaign)
	})
	return out
}

// Lengths counts the orders by the touches on their path: index 0 for
// one touch, and the last for maxLength or more.
func (r *Report) Lengths(maxLength int) []int64 {
	out := make([]int64, maxLength)
	for p, c := range r.Summary.Paths {
		out[min(strings.Count(p, sep)+1, maxLength)-1] += c.Orders
	}
	return out
}

// Credited is an order with a channel on its path, and the credit it gave
// the channel under a model.
type Credited struct {
	Stored
	Path   []Touch // within the report's lookback
	Share  float64
	Assist bool // the channel is on the path before the last touch
}

// CreditMinor is the value the order gave the channel.
func (c Credited) CreditMinor() int64 { return int64(math.Round(c.Share * float64(c.Minor))) }

// Drill returns the report's orders with channel on their path, newest
// first, from offset, at most limit of them, with the credit they gave it
// under model m; and how many there are in all. It reads the days of the
// period from the last back, only as far as the page needs.
func (r *Report) Drill(st *store.Store, channel string, m Model, offset, limit int) ([]Credited, int64, error) {
	var total int64
	for p, c := range r.Summary.Paths {
		if slices.Contains(strings.Split(p, sep), channel) {
			total += c.Orders
		}
	}
	var found []Credited
	err := st.Read(func(tx *store.Tx) error {
		for d := r.to.Add(-time.Nanosecond).UTC().Truncate(24 * time.Hour); !d.Add(24 * time.Hour).Before(r.from); d = d.AddDate(0, 0, -1) {
			var day []Credited
			if err := r.scan(tx, d.Format(time.DateOnly), func(o *Stored) bool {
				if o.Currency != r.Currency {
					return true
				}
				path := o.PathWithin(r.Query.Lookback)
				var shares []float64
				if m == DataDriven {
					shares = DataDrivenShares(path, r.effects)
				} else {
					shares = Shares(m, path, o.Time)
				}
				c := Credited{Stored: *o, Path: path}
				on := false
				for i, t := range path {
					if t.Channel == channel {
						c.Share += shares[i]
						on = true
						c.Assist = c.Assist || i < len(path)-1
					}
				}
				if on {
					day = append(day, c)
				}
				return true
			}); err != nil {
				return err
			}
			slices.SortStableFunc(day, func(a, b Credited) int { return b.Time.Compare(a.Time) })
			found = append(found, day...)
			if len(found) >= offset+limit {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return found[min(offset, len(found)):min(offset+limit, len(found))], total, nil
}
