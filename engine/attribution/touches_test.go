package attribution_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/attribution"
	"github.com/shoptrail/shoptrail/engine/enginetest"
)

func TestShareOfRoundsAndSaturates(t *testing.T) {
	cases := []struct {
		share float64
		minor int64
		want  int64
	}{
		{0.5, 3001, 1501}, // half a cent rounds away from zero
		{1.0 / 3, 10000, 3333},
		{0, math.MaxInt64, 0},
		{1, math.MaxInt64, math.MaxInt64},
		{2, math.MaxInt64, math.MaxInt64}, // never wraps to negative
		{2, math.MinInt64, math.MinInt64},
		{math.NaN(), 100, 0},
	}
	for _, c := range cases {
		if got := attribution.ShareOf(c.share, c.minor); got != c.want {
			t.Errorf("ShareOf(%v, %d) = %d, want %d", c.share, c.minor, got, c.want)
		}
	}
}

func TestCreditTouchesRefusesBadQueries(t *testing.T) {
	st := enginetest.NewStore(t)
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	match := func(attribution.Touch) bool { return true }
	for _, q := range []attribution.TouchQuery{
		{From: from, To: from, Match: match},
		{From: from, To: from.Add(-time.Hour), Match: match},
		{From: from, To: from.Add(32 * 24 * time.Hour), Match: match},
	} {
		if _, err := attribution.CreditTouches(st, q); !errors.Is(err, attribution.ErrTouchWindow) {
			t.Errorf("%v – %v: %v, want ErrTouchWindow", q.From, q.To, err)
		}
	}
	if _, err := attribution.CreditTouches(st, attribution.TouchQuery{From: from, To: from.Add(time.Hour), Match: match, Models: []attribution.Model{attribution.DataDriven}}); err == nil {
		t.Error("data_driven accepted")
	}
	got, err := attribution.CreditTouches(st, attribution.TouchQuery{From: from, To: from.Add(24 * time.Hour), Match: match, Models: []attribution.Model{attribution.Linear}})
	if err != nil || got.Orders != 0 || got.Models[attribution.Linear].Orders != 0 {
		t.Errorf("an empty store: %+v, %v", got, err)
	}
}
