package model

import (
	"fmt"
	"math"
	"testing"
)

func TestSketchCountsDistinctIDs(t *testing.T) {
	for _, n := range []int{0, 1, 10, 1000, 100000} {
		s := NewSketch()
		for i := range n {
			s.Add(fmt.Sprint("anon-", i))
			s.Add(fmt.Sprint("anon-", i)) // twice: counted once
		}
		got := float64(s.Count())
		if math.Abs(got-float64(n)) > 0.05*float64(n)+1 {
			t.Errorf("%d distinct ids: estimate %.0f", n, got)
		}
	}
	a, b := NewSketch(), NewSketch()
	for i := range 5000 {
		a.Add(fmt.Sprint(i))
		b.Add(fmt.Sprint(i + 2500))
	}
	a.Merge(b)
	if c := a.Count(); c < 7100 || c > 7900 {
		t.Errorf("merged: %d, want about 7500", c)
	}
}
