package model

import "math"

// Amounts are sums of money per currency (ISO 4217 code), in integer minor
// units. Amounts in different currencies are never added together: every
// figure of money in Shoptrail is one of these, or one entry of one.
//
// A sum that would overflow stays at the int64 bound instead of wrapping
// around (Saturated reports it), so no number of orders ever turns revenue
// negative.
type Amounts map[string]int64

// Add adds minor units of a currency.
func (a *Amounts) Add(currency string, minor int64) {
	if *a == nil {
		*a = Amounts{}
	}
	(*a)[currency] = AddMinor((*a)[currency], minor)
}

// AddAll adds every amount of b.
func (a *Amounts) AddAll(b Amounts) {
	for cur, v := range b {
		a.Add(cur, v)
	}
}

// Clone returns a copy that can be changed alone.
func (a Amounts) Clone() Amounts {
	if a == nil {
		return nil
	}
	out := make(Amounts, len(a))
	for k, v := range a {
		out[k] = v
	}
	return out
}

// Saturated reports whether the sum of a currency hit the int64 bound.
func (a Amounts) Saturated(currency string) bool {
	v := a[currency]
	return v == math.MaxInt64 || v == math.MinInt64
}

// AddMinor adds two sums of minor units without wrapping around: a sum
// that would overflow stays at the int64 bound.
func AddMinor(x, y int64) int64 {
	s := x + y
	switch {
	case x > 0 && y > 0 && s < 0:
		return math.MaxInt64
	case x < 0 && y < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}
