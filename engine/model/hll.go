package model

import (
	"hash/fnv"
	"math"
	"math/bits"
)

// Sketch is a HyperLogLog sketch (4 096 registers, about 1.6 % error) that
// counts distinct visitors without keeping who they were: the registers
// cannot be turned back into ids, so a daily rollup holds no personal data.
type Sketch []byte

const sketchP = 12

// NewSketch returns an empty sketch.
func NewSketch() Sketch { return make(Sketch, 1<<sketchP) }

// Add counts id.
func (s Sketch) Add(id string) {
	h := fnv.New64a()
	h.Write([]byte(id))
	x := h.Sum64()
	x ^= x >> 33 // fnv's high bits mix poorly for short ids
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	idx := x >> (64 - sketchP)
	rank := byte(bits.LeadingZeros64(x<<sketchP|1<<(sketchP-1)) + 1)
	if rank > s[idx] {
		s[idx] = rank
	}
}

// Merge adds o's counts into s.
func (s Sketch) Merge(o Sketch) {
	for i := range s {
		if i < len(o) && o[i] > s[i] {
			s[i] = o[i]
		}
	}
}

// Count estimates how many distinct ids were added.
func (s Sketch) Count() int64 {
	m := float64(len(s))
	if m == 0 {
		return 0
	}
	sum, zeros := 0.0, 0
	for _, r := range s {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	est := 0.7213 / (1 + 1.079/m) * m * m / sum
	if est <= 2.5*m && zeros > 0 {
		est = m * math.Log(m/float64(zeros)) // linear counting for small counts
	}
	return int64(est + 0.5)
}

// Rollup is one day's totals, for the dashboard.
type Rollup struct {
	Day       string `json:"day"` // YYYY-MM-DD, UTC
	Events    int64  `json:"events"`
	PageViews int64  `json:"page_views"`
	Sessions  int64  `json:"sessions"`
	OrderSums
	Visitors Sketch `json:"visitors"`
}
