package attribution

import (
	"encoding/json"
	"errors"
	"math"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// MaxTouchWindow is the longest period CreditTouches reads.
const MaxTouchWindow = 31 * 24 * time.Hour

// ErrTouchWindow is CreditTouches' error for a period it does not read.
var ErrTouchWindow = errors.New("attribution: the period must end after it starts and last at most 31 days")

// TouchQuery selects the orders of a period whose paths hold touches of
// interest (an email campaign's clicks: channel Email, its id as
// utm_campaign), for the credit the models give those touches.
type TouchQuery struct {
	From, To time.Time     // order times, [From, To), at most MaxTouchWindow apart
	Lookback time.Duration // an order's path: its touches within Lookback before it (0: MaxLookback)
	Match    func(Touch) bool
	Models   []Model // positional models (not DataDriven, which needs every path of a period)
	// All counts every order; without it, once the shop confirmed any
	// order through the API, only confirmed ones (as Run does).
	All bool
}

// TouchCredit is what the matching touches got.
type TouchCredit struct {
	Orders int64            // orders with a matching touch on their path
	Value  map[string]int64 // those orders' total, minor units by currency
	Models map[Model]ModelCredit
}

// ModelCredit is the credit one model gives the matching touches: a
// fraction of orders, and value in minor units by currency (rounded per
// order, saturating).
type ModelCredit struct {
	Orders float64
	Minor  map[string]int64
}

// CreditTouches reads the orders of q's period and sums, under each of
// q.Models, the shares of their paths' touches that q.Match accepts.
func CreditTouches(st *store.Store, q TouchQuery) (TouchCredit, error) {
	out := TouchCredit{Value: map[string]int64{}, Models: map[Model]ModelCredit{}}
	if !q.To.After(q.From) || q.To.Sub(q.From) > MaxTouchWindow {
		return out, ErrTouchWindow
	}
	for _, m := range q.Models {
		if m == DataDriven {
			return out, errors.New("attribution: CreditTouches takes positional models only")
		}
		out.Models[m] = ModelCredit{Minor: map[string]int64{}}
	}
	lookback := q.Lookback
	if lookback <= 0 || lookback > MaxLookback {
		lookback = MaxLookback
	}
	confirmedOnly := false
	if !q.All {
		n, err := st.ConfirmedOrders(store.IdentityOrders)
		if err != nil {
			return out, err
		}
		confirmedOnly = n > 0
	}
	err := st.Read(func(tx *store.Tx) error {
		last := q.To.Add(-time.Nanosecond).UTC().Truncate(24 * time.Hour)
		for d := q.From.UTC().Truncate(24 * time.Hour); !d.After(last); d = d.AddDate(0, 0, 1) {
			if err := tx.Scan(space, "day/"+d.Format(time.DateOnly)+"/", func(_ string, v json.RawMessage) (bool, error) {
				var o Stored
				if err := json.Unmarshal(v, &o); err != nil {
					return false, err
				}
				if o.Time.Before(q.From) || !o.Time.Before(q.To) || (confirmedOnly && !o.Verified) {
					return true, nil
				}
				path := o.PathWithin(lookback)
				var hit []int
				for i, t := range path {
					if q.Match(t) {
						hit = append(hit, i)
					}
				}
				if len(hit) == 0 {
					return true, nil
				}
				out.Orders++
				out.Value[o.Currency] = model.AddMinor(out.Value[o.Currency], o.Minor)
				for _, m := range q.Models {
					shares := Shares(m, path, o.Time)
					share := 0.0
					for _, i := range hit {
						share += shares[i]
					}
					c := out.Models[m]
					c.Orders += share
					c.Minor[o.Currency] = model.AddMinor(c.Minor[o.Currency], ShareOf(share, o.Minor))
					out.Models[m] = c
				}
				return true, nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// ShareOf is share of minor, rounded to the minor unit, saturating at
// the int64 range.
func ShareOf(share float64, minor int64) int64 {
	v := math.Round(share * float64(minor))
	switch {
	case math.IsNaN(v):
		return 0
	case v >= math.MaxInt64:
		return math.MaxInt64
	case v <= math.MinInt64:
		return math.MinInt64
	}
	return int64(v)
}
