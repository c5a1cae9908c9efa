package attribution

import (
	"math"
	"slices"
	"time"
)

// Order is an order and the touchpoints before it (the projection keeps
// those of the longest lookback; PathWithin cuts the report's).
type Order struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Currency string    `json:"currency"`
	Minor    int64     `json:"minor"`
	Path     []Touch   `json:"path,omitempty"`
}

// PathWithin returns the touches of the lookback window before the order,
// oldest first; a path without any is [Direct] at the order's time.
func (o Order) PathWithin(lookback time.Duration) []Touch {
	from := o.Time.Add(-lookback)
	var out []Touch
	for _, t := range o.Path {
		if !t.Time.Before(from) && !t.Time.After(o.Time) {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		out = []Touch{{Time: o.Time, Channel: Direct}}
	}
	return out
}

// Credit is what a channel got under one model: orders (fractions of
// orders) and value in minor units.
type Credit struct {
	Orders float64
	Minor  int64
}

// Channel is one row of a report: a channel's credit under every model and
// its assists.
type Channel struct {
	Channel string
	Models  map[Model]Credit
	// AssistedOrders are the orders where the channel is on the path other
	// than as the last interaction (once per order); AssistedMinor their
	// value. They do not add up across channels.
	AssistedOrders int64
	AssistedMinor  int64
	LastOrders     int64 // orders the channel closed (last interaction)
}

// AssistRatio is assisted ÷ last-interaction orders; false when the
// channel closed no order.
func (c Channel) AssistRatio() (float64, bool) {
	if c.LastOrders == 0 {
		return 0, false
	}
	return float64(c.AssistedOrders) / float64(c.LastOrders), true
}

// Credit credits orders (one currency) to channels under every model, with
// the touches within lookback; effects are the data-driven model's removal
// effects (RemovalEffects). Each model's values add up to the orders' total
// to the minor unit: the rounding remainder goes to the largest share.
// Channels come out by last-interaction value, largest first.
func CreditOrders(orders []Order, lookback time.Duration, effects map[string]float64) []Channel {
	type acc struct {
		orders, minor map[Model]float64
		ch            Channel
	}
	rows := map[string]*acc{}
	row := func(c string) *acc {
		a := rows[c]
		if a == nil {
			a = &acc{orders: map[Model]float64{}, minor: map[Model]float64{}, ch: Channel{Channel: c}}
			rows[c] = a
		}
		return a
	}
	var total int64
	for _, o := range orders {
		total += o.Minor
		path := o.PathWithin(lookback)
		for _, m := range Models {
			var shares []float64
			if m == DataDriven {
				shares = DataDrivenShares(path, effects)
			} else {
				shares = Shares(m, path, o.Time)
			}
			for i, t := range path {
				a := row(t.Channel)
				a.orders[m] += shares[i]
				a.minor[m] += shares[i] * float64(o.Minor)
			}
		}
		last := path[len(path)-1].Channel
		row(last).ch.LastOrders++
		assisted := map[string]bool{}
		for _, t := range path[:len(path)-1] {
			if !assisted[t.Channel] {
				assisted[t.Channel] = true
				a := row(t.Channel)
				a.ch.AssistedOrders++
				a.ch.AssistedMinor += o.Minor
			}
		}
	}
	out := make([]Channel, 0, len(rows))
	for _, a := range rows {
		a.ch.Models = map[Model]Credit{}
		out = append(out, a.ch)
	}
	slices.SortFunc(out, func(a, b Channel) int {
		if x, y := rows[a.Channel].minor[LastInteraction], rows[b.Channel].minor[LastInteraction]; x != y {
			if x > y {
				return -1
			}
			return 1
		}
		if a.Channel < b.Channel {
			return -1
		}
		return 1
	})
	for _, m := range Models {
		// round each channel's value, then give the remainder to the
		// largest share so the model adds up to the total
		var sum int64
		largest := -1
		for i := range out {
			v := rows[out[i].Channel].minor[m]
			r := int64(math.Round(v))
			out[i].Models[m] = Credit{Orders: math.Round(rows[out[i].Channel].orders[m]*1e4) / 1e4, Minor: r}
			sum += r
			if largest < 0 || v > rows[out[largest].Channel].minor[m] {
				largest = i
			}
		}
		if largest >= 0 && sum != total {
			c := out[largest].Models[m]
			c.Minor += total - sum
			out[largest].Models[m] = c
		}
	}
	return out
}
