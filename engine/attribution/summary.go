package attribution

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
)

// positional are the models whose credit follows from each order alone;
// the data-driven one needs every path of the period first.
var positional = [...]Model{LastInteraction, LastNonDirect, FirstInteraction, Linear, PositionBased, TimeDecay}

// Summary is what a set of orders in one currency adds up to, with the
// touches of one lookback: each channel's credit under the positional
// models and its assists, and the orders' paths, from which come the
// data-driven model's chain and credit, the top paths and the path
// lengths. Summaries add up: the projection keeps one per day and
// currency, and a report adds those of its period, so it reads a few
// records a day instead of every order.
type Summary struct {
	Orders   int64                  `json:"n,omitempty"`
	Minor    int64                  `json:"v,omitempty"`
	Channels map[string]*channelSum `json:"ch,omitempty"`
	Paths    map[string]*Count      `json:"p,omitempty"`  // by the path's channels joined by sep
	Lags     [len(LagBuckets)]int64 `json:"lag"`          // orders by time from first touch (LagBuckets)
	Onsite   map[string]*Count      `json:"on,omitempty"` // orders by onsite campaign seen before them
}

// channelSum is a channel's part of a summary.
type channelSum struct {
	Orders         [len(positional)]float64 `json:"o"` // credit by positional model
	Minor          [len(positional)]float64 `json:"v"`
	Last           int64                    `json:"l,omitempty"`  // orders it closed
	AssistedOrders int64                    `json:"a,omitempty"`  // orders it assisted
	AssistedMinor  int64                    `json:"av,omitempty"` // their value
}

// Count is a number of orders and their value.
type Count struct {
	Orders int64 `json:"n"`
	Minor  int64 `json:"v"`
}

// LagBuckets group orders by the time from the first touch of their path
// to the order.
var LagBuckets = [...]struct {
	Name string
	Max  time.Duration
}{{"0 days", 24 * time.Hour}, {"1-3 days", 4 * 24 * time.Hour}, {"4-7 days", 8 * 24 * time.Hour},
	{"8-14 days", 15 * 24 * time.Hour}, {"15-30 days", 31 * 24 * time.Hour}, {"31-90 days", math.MaxInt64}}

// Add adds an order (sign 1) to the summary, or takes it out (-1), with
// the touches within lookback of it.
func (s *Summary) Add(o Order, lookback time.Duration, sign int64) {
	path := o.PathWithin(lookback)
	minor := sign * o.Minor
	s.Orders += sign
	s.Minor = model.AddMinor(s.Minor, minor)
	if s.Channels == nil {
		s.Channels = map[string]*channelSum{}
	}
	row := func(c string) *channelSum {
		r := s.Channels[c]
		if r == nil {
			r = &channelSum{}
			s.Channels[c] = r
		}
		return r
	}
	for i, m := range positional {
		for j, share := range Shares(m, path, o.Time) {
			r := row(path[j].Channel)
			r.Orders[i] += float64(sign) * share
			r.Minor[i] += share * float64(minor)
		}
	}
	row(path[len(path)-1].Channel).Last += sign
	for j, t := range path[:len(path)-1] {
		if !slices.ContainsFunc(path[:j], func(u Touch) bool { return u.Channel == t.Channel }) {
			r := row(t.Channel)
			r.AssistedOrders += sign
			r.AssistedMinor = model.AddMinor(r.AssistedMinor, minor)
		}
	}
	names := make([]string, len(path))
	for i, t := range path {
		names[i] = t.Channel
	}
	addCount(&s.Paths, strings.Join(names, sep), Count{sign, minor})
	lag := o.Time.Sub(path[0].Time)
	for i, b := range LagBuckets {
		if lag < b.Max {
			s.Lags[i] += sign
			break
		}
	}
	for _, c := range o.OnsiteWithin(lookback) {
		addCount(&s.Onsite, c, Count{sign, minor})
	}
	if sign < 0 {
		// forget the channels no order is on any more (taking an order
		// out leaves float dust on the credits, never on the counts)
		for _, c := range names {
			if r := s.Channels[c]; r != nil && r.Last == 0 && r.AssistedOrders == 0 {
				delete(s.Channels, c)
			}
		}
	}
}

// addCount adds c to the count of key in *m, and forgets a key no order
// counts any more.
func addCount(m *map[string]*Count, key string, c Count) {
	if *m == nil {
		*m = map[string]*Count{}
	}
	n := (*m)[key]
	if n == nil {
		n = &Count{}
		(*m)[key] = n
	}
	n.Orders += c.Orders
	n.Minor = model.AddMinor(n.Minor, c.Minor)
	if n.Orders == 0 {
		delete(*m, key)
	}
}

// AddAll adds every order of t.
func (s *Summary) AddAll(t *Summary) {
	s.Orders += t.Orders
	s.Minor = model.AddMinor(s.Minor, t.Minor)
	if s.Channels == nil && len(t.Channels) > 0 {
		s.Channels = map[string]*channelSum{}
	}
	for c, x := range t.Channels {
		r := s.Channels[c]
		if r == nil {
			r = &channelSum{}
			s.Channels[c] = r
		}
		for i := range positional {
			r.Orders[i] += x.Orders[i]
			r.Minor[i] += x.Minor[i]
		}
		r.Last += x.Last
		r.AssistedOrders += x.AssistedOrders
		r.AssistedMinor = model.AddMinor(r.AssistedMinor, x.AssistedMinor)
	}
	for p, c := range t.Paths {
		addCount(&s.Paths, p, *c)
	}
	for i := range s.Lags {
		s.Lags[i] += t.Lags[i]
	}
	for c, n := range t.Onsite {
		addCount(&s.Onsite, c, *n)
	}
}

// empty reports whether no order is left in the summary.
func (s *Summary) empty() bool { return s.Orders == 0 && len(s.Paths) == 0 }

// chain counts the transitions of the summary's paths, which all converted.
func (s *Summary) chain(c Chain) {
	for p, n := range s.Paths {
		prev := StartState
		for _, ch := range append(strings.Split(p, sep), ConversionState) {
			c.Add(prev, ch, float64(n.Orders))
			prev = ch
		}
	}
}

// credit turns the summary into a report's rows: each model's values add
// up to the orders' total to the minor unit, the rounding remainder going
// to the largest share; effects are the data-driven model's removal
// effects. Channels come out by last-interaction value, largest first.
func (s *Summary) credit(effects map[string]float64) []Channel {
	orders := map[string]map[Model]float64{}
	minor := map[string]map[Model]float64{}
	for c, r := range s.Channels {
		orders[c], minor[c] = map[Model]float64{}, map[Model]float64{}
		for i, m := range positional {
			orders[c][m], minor[c][m] = r.Orders[i], r.Minor[i]
		}
	}
	for p, n := range s.Paths {
		names := strings.Split(p, sep)
		path := make([]Touch, len(names))
		for i, c := range names {
			path[i] = Touch{Channel: c}
		}
		for i, share := range DataDrivenShares(path, effects) {
			c := names[i]
			if orders[c] == nil {
				orders[c], minor[c] = map[Model]float64{}, map[Model]float64{}
			}
			orders[c][DataDriven] += share * float64(n.Orders)
			minor[c][DataDriven] += share * float64(n.Minor)
		}
	}
	out := make([]Channel, 0, len(orders))
	for c := range orders {
		ch := Channel{Channel: c, Models: map[Model]Credit{}}
		if r := s.Channels[c]; r != nil {
			ch.LastOrders, ch.AssistedOrders, ch.AssistedMinor = r.Last, r.AssistedOrders, r.AssistedMinor
		}
		out = append(out, ch)
	}
	slices.SortFunc(out, func(a, b Channel) int {
		if x, y := math.Round(minor[a.Channel][LastInteraction]), math.Round(minor[b.Channel][LastInteraction]); x != y {
			if x > y {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Channel, b.Channel)
	})
	for _, m := range Models {
		// round each channel's value, then give the remainder to the
		// largest share so the model adds up to the total
		var sum int64
		largest := -1
		for i := range out {
			v := minor[out[i].Channel][m]
			r := int64(math.Round(v))
			out[i].Models[m] = Credit{Orders: math.Round(orders[out[i].Channel][m]*1e4) / 1e4, Minor: r}
			sum += r
			if largest < 0 || v > minor[out[largest].Channel][m] {
				largest = i
			}
		}
		if largest >= 0 && sum != s.Minor {
			c := out[largest].Models[m]
			c.Minor += s.Minor - sum
			out[largest].Models[m] = c
		}
	}
	return out
}

// CreditOrders credits orders (one currency) to channels under every
// model, with the touches within lookback; effects are the data-driven
// model's removal effects (RemovalEffects). Each model's values add up to
// the orders' total to the minor unit: the rounding remainder goes to the
// largest share. Channels come out by last-interaction value, largest
// first.
func CreditOrders(orders []Order, lookback time.Duration, effects map[string]float64) []Channel {
	var s Summary
	for _, o := range orders {
		s.Add(o, lookback, 1)
	}
	return s.credit(effects)
}
