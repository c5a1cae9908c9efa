package model

import (
	"math"
	"testing"
)

func TestAmountsSaturate(t *testing.T) {
	var a Amounts
	// 93 000 orders of 1e12 major units (1e14 minor) wrapped an int64 sum
	// around to a negative revenue before Amounts.
	for range 93_000 {
		a.Add("EUR", 1e14)
	}
	if got := a["EUR"]; got != math.MaxInt64 || !a.Saturated("EUR") {
		t.Fatalf("EUR = %d, saturated %v; want MaxInt64, true", got, a.Saturated("EUR"))
	}
	a.Add("USD", 150)
	var b Amounts
	b.AddAll(a)
	b.Add("USD", 50)
	if b["USD"] != 200 || a["USD"] != 150 || b.Saturated("USD") {
		t.Fatalf("b = %v, a = %v", b, a)
	}
	c := b.Clone()
	c.Add("USD", 1)
	if b["USD"] != 200 {
		t.Fatal("Clone shares the map")
	}
	var n Amounts
	n.Add("EUR", math.MinInt64)
	n.Add("EUR", -1)
	if n["EUR"] != math.MinInt64 {
		t.Fatalf("negative overflow: %d", n["EUR"])
	}
}
