package model

// An order event is a claim. Anyone can post one to /t (browsers are not
// authenticated); the shop's server confirms an order through the API. So
// orders are counted once per order_id, an order confirmed through the API
// supersedes what browsers said about it, and every sum of orders keeps the
// confirmed ones apart (Verified…), so that a report can leave out what no
// server confirmed. The default (OrderSums.Counted): once the shop sends any
// order through the API, only confirmed orders count; a shop that never does
// counts the browsers' orders.

// OrderRecord is what a projection remembers of the order event it counted
// for an order_id.
type OrderRecord struct {
	Profile  string `json:"p,omitempty"` // the profile credited (identity)
	Day      string `json:"d,omitempty"` // the day credited (rollups)
	Currency string `json:"c,omitempty"`
	Minor    int64  `json:"v"`
	Verified bool   `json:"ok,omitempty"` // sent through the API or by Shoptrail
}

// Order returns an order event's order_id ("" when it has none: the event
// is an order of its own) and its record.
func (ev *Event) Order() (orderID string, rec OrderRecord) {
	rec.Currency, rec.Minor = ev.OrderTotal()
	rec.Verified = ev.Via != ViaBrowser
	return idString(ev.Props["order_id"]), rec
}

// Supersede decides what an order event with record next does to the sums,
// given the record kept for an earlier event of the same order_id (nil if
// none): remove what the earlier one added (nil: nothing), add next (nil:
// nothing), and the record to keep. A browser's claim after the shop's
// confirmation changes nothing (a reload of the thank-you page); anything
// else replaces the earlier event (the shop confirming a browser's claim
// with its own value, or correcting its own order).
func Supersede(prev *OrderRecord, next OrderRecord) (remove, add *OrderRecord, keep OrderRecord) {
	switch {
	case prev == nil:
		return nil, &next, next
	case prev.Verified && !next.Verified:
		return nil, nil, *prev
	default:
		return prev, &next, next
	}
}

// OrderSums are the orders and revenue of a profile or a day: all distinct
// orders, and those the shop confirmed.
type OrderSums struct {
	Orders          int64   `json:"orders"`
	Revenue         Amounts `json:"revenue,omitempty"`
	VerifiedOrders  int64   `json:"verified_orders,omitempty"`
	VerifiedRevenue Amounts `json:"verified_revenue,omitempty"`
}

// Apply removes one order's record and adds another's (either may be nil).
func (s *OrderSums) Apply(remove, add *OrderRecord) {
	for _, x := range []struct {
		rec  *OrderRecord
		sign int64
	}{{remove, -1}, {add, 1}} {
		if x.rec == nil {
			continue
		}
		s.Orders += x.sign
		s.Revenue.Add(x.rec.Currency, x.sign*x.rec.Minor)
		if x.rec.Verified {
			s.VerifiedOrders += x.sign
			s.VerifiedRevenue.Add(x.rec.Currency, x.sign*x.rec.Minor)
		}
	}
}

// AddSums adds the sums of b.
func (s *OrderSums) AddSums(b OrderSums) {
	s.Orders += b.Orders
	s.Revenue.AddAll(b.Revenue)
	s.VerifiedOrders += b.VerifiedOrders
	s.VerifiedRevenue.AddAll(b.VerifiedRevenue)
}

// Clone returns a copy that can be changed alone.
func (s OrderSums) Clone() OrderSums {
	s.Revenue, s.VerifiedRevenue = s.Revenue.Clone(), s.VerifiedRevenue.Clone()
	return s
}

// Counted returns the orders and revenue a report shows by default: the
// confirmed ones when the shop confirms orders through the API at all
// (confirmed), every distinct order otherwise.
func (s OrderSums) Counted(confirmed bool) (int64, Amounts) {
	if confirmed {
		return s.VerifiedOrders, s.VerifiedRevenue
	}
	return s.Orders, s.Revenue
}
