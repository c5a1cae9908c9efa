package campaign

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Report is a campaign's figures per group and variation.
type Report struct {
	Campaign string        `json:"campaign_id"`
	Name     string        `json:"name"`
	Groups   []GroupReport `json:"groups"`
	Note     string        `json:"note"`
}

// GroupReport is one group's variations.
type GroupReport struct {
	Group      int               `json:"group"`
	Name       string            `json:"name"`
	Baseline   string            `json:"baseline"` // the control, else the first variation
	Variations []VariationReport `json:"variations"`
}

// VariationReport is one variation's figures and its comparison with the
// baseline.
type VariationReport struct {
	Name    string `json:"name"`
	Control bool   `json:"control,omitempty"`
	Counter
	CTR            float64 `json:"ctr"`             // clicks / impressions
	ConversionRate float64 `json:"conversion_rate"` // shoppers who ordered within 7 days / shoppers
	// Uplift of the conversion rate against the baseline (0.12 = +12 %),
	// and its significance (two-proportion z-test, two-sided).
	Uplift       *float64 `json:"uplift,omitempty"`
	PValue       *float64 `json:"p_value,omitempty"`
	Significant  bool     `json:"significant"`
	Significance string   `json:"significance"`
	// NeededPerVariation is the sample (shoppers per variation) that would
	// detect the observed difference at 95 % confidence and 80 % power.
	NeededPerVariation int64 `json:"needed_per_variation,omitempty"`
}

// Report computes a campaign's report from the projection's counters.
func (s *Service) Report(id string) (Report, error) {
	c, err := s.Get(id)
	if err != nil {
		return Report{}, err
	}
	counters := map[string]Counter{}
	err = s.st.Read(func(tx *store.Tx) error {
		return tx.Scan(space, "r/"+id+"/", func(k string, v json.RawMessage) (bool, error) {
			var ct Counter
			if err := json.Unmarshal(v, &ct); err != nil {
				return false, err
			}
			counters[strings.TrimPrefix(k, "r/"+id+"/")] = ct
			return true, nil
		})
	})
	if err != nil {
		return Report{}, err
	}
	rep := Report{Campaign: c.ID, Name: c.Name, Groups: []GroupReport{},
		Note: "Orders and revenue count orders within 7 days after an impression of the variation; the conversion rate is shoppers who ordered over shoppers who saw it."}
	for gi, g := range c.Groups {
		gr := GroupReport{Group: gi, Name: g.Name, Variations: []VariationReport{}}
		base := slices.IndexFunc(g.Variations, func(v Variation) bool { return v.Control })
		if base < 0 {
			base = 0
		}
		gr.Baseline = g.Variations[base].Name
		bc := counters[strconv.Itoa(gi)+"/"+g.Variations[base].Name]
		for vi, v := range g.Variations {
			ct := counters[strconv.Itoa(gi)+"/"+v.Name]
			vr := VariationReport{Name: v.Name, Control: v.Control, Counter: ct}
			if vr.Revenue == nil {
				vr.Revenue = model.Amounts{}
			}
			vr.CTR = ratio(ct.Clicks, ct.Impressions)
			vr.ConversionRate = ratio(ct.Converted, ct.Shoppers)
			if vi == base {
				vr.Significance = "baseline"
			} else {
				compare(&vr, bc, ct)
			}
			gr.Variations = append(gr.Variations, vr)
		}
		rep.Groups = append(rep.Groups, gr)
	}
	return rep, nil
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// compare fills the uplift and significance of b against the baseline a.
func compare(vr *VariationReport, a, b Counter) {
	p1, p2 := ratio(a.Converted, a.Shoppers), ratio(b.Converted, b.Shoppers)
	if p1 > 0 {
		u := (p2 - p1) / p1
		vr.Uplift = &u
	}
	p, ok := TwoProportionP(a.Converted, a.Shoppers, b.Converted, b.Shoppers)
	if !ok {
		vr.Significance = "not yet significant: no conversions to compare yet"
		return
	}
	vr.PValue = &p
	if p < 0.05 {
		vr.Significant = true
		vr.Significance = fmt.Sprintf("significant (p = %.3f)", p)
		return
	}
	n := NeededSample(p1, p2)
	vr.NeededPerVariation = n
	if n == 0 {
		vr.Significance = fmt.Sprintf("not yet significant (p = %.2f): no difference so far", p)
		return
	}
	vr.Significance = fmt.Sprintf("not yet significant (p = %.2f): needs about %d shoppers per variation", p, n)
}

// TwoProportionP is the two-sided p-value of the z-test that the
// proportions x1/n1 and x2/n2 are equal; false when it cannot be computed
// (an empty sample, or no success and no failure to tell them apart).
func TwoProportionP(x1, n1, x2, n2 int64) (float64, bool) {
	if n1 <= 0 || n2 <= 0 || x1 < 0 || x2 < 0 || x1 > n1 || x2 > n2 {
		return 0, false
	}
	pool := float64(x1+x2) / float64(n1+n2)
	se := math.Sqrt(pool * (1 - pool) * (1/float64(n1) + 1/float64(n2)))
	if se == 0 {
		return 0, false
	}
	z := (float64(x2)/float64(n2) - float64(x1)/float64(n1)) / se
	return math.Erfc(math.Abs(z) / math.Sqrt2), true
}

// NeededSample is the sample per variation that detects a change of the
// rate from p1 to p2 at α = 0.05 (two-sided) with 80 % power; 0 when the
// rates are equal.
func NeededSample(p1, p2 float64) int64 {
	if p1 == p2 {
		return 0
	}
	const za, zb = 1.959964, 0.841621
	pbar := (p1 + p2) / 2
	num := za*math.Sqrt(2*pbar*(1-pbar)) + zb*math.Sqrt(p1*(1-p1)+p2*(1-p2))
	return int64(math.Ceil(num * num / ((p1 - p2) * (p1 - p2))))
}
