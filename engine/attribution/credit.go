package attribution

import (
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
	// Onsite are the impressions of onsite campaigns the shopper saw in
	// the longest lookback before the order (Campaign holds the campaign's
	// id): shown beside the paths, credited by no model.
	Onsite []Touch `json:"onsite,omitempty"`
}

// OnsiteWithin returns the campaigns (ids) the shopper saw within the
// lookback before the order, each once, oldest first.
func (o Order) OnsiteWithin(lookback time.Duration) []string {
	from := o.Time.Add(-lookback)
	var out []string
	for _, t := range o.Onsite {
		if !t.Time.Before(from) && !t.Time.After(o.Time) && !slices.Contains(out, t.Campaign) {
			out = append(out, t.Campaign)
		}
	}
	return out
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
