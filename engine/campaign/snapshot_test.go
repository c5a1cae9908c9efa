package campaign_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shoptrail/shoptrail/engine/campaign"
	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// version builds the campaign as its n-th save has it: every field a
// decision shows carries n.
func version(n int) campaign.Campaign {
	return campaign.Campaign{Name: fmt.Sprintf("v%d", n), Status: campaign.StatusActive, Groups: []campaign.Group{
		{Conditions: []campaign.Condition{{Kind: "url", Op: "contains", Value: "/p/"}},
			Placement: campaign.Placement{Selector: fmt.Sprintf("#g0-v%d", n), Mode: "replace"},
			Limits:    campaign.Limits{PerSession: n%5 + 1},
			Variations: []campaign.Variation{
				{Name: fmt.Sprintf("A%d", n), Weight: 50, HTML: fmt.Sprintf(`<p class="v%d">A %d</p>`, n, n)},
				{Name: fmt.Sprintf("B%d", n), Weight: 50, HTML: fmt.Sprintf(`<p class="v%d">B %d</p>`, n, n)}}},
		{Placement: campaign.Placement{Selector: fmt.Sprintf("#g1-v%d", n), Mode: "after"},
			Variations: []campaign.Variation{{Name: fmt.Sprintf("C%d", n), Weight: 100, HTML: fmt.Sprintf(`<p class="v%d">C %d</p>`, n, n)}}},
	}}
}

// TestDecisionsSeeWholeSaves saves a campaign again and again (a new
// version in every field) while decisions run: every decision shows one
// whole version — both steps, selectors, variations, content, caps, the
// hide CSS and the encoded answer agree — and never an older version than
// the same reader saw before.
func TestDecisionsSeeWholeSaves(t *testing.T) {
	svc, err := campaign.New(enginetest.NewStore(t), campaign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := svc.Create(version(0))
	if err != nil {
		t.Fatal(err)
	}
	const saves = 100
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		defer done.Store(true)
		for n := 1; n <= saves; n++ {
			if _, err := svc.Update(c.ID, version(n)); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var decisions atomic.Int64
	for r := range 4 {
		wg.Go(func() {
			last := 0
			for i := 0; !done.Load() || i < 10; i++ {
				d, err := svc.Decide(campaign.Request{AnonymousID: fmt.Sprintf("shopper%d-%d", r, i), SessionID: "s",
					URL: "https://shop.example/p/1", Goals: []string{c.ID + "/0"}})
				if err != nil {
					t.Error(err)
					return
				}
				decisions.Add(1)
				if len(d.Show) != 2 {
					t.Errorf("showed %d steps: %+v", len(d.Show), d.Show)
					return
				}
				var n int
				if _, err := fmt.Sscanf(d.Show[0].Selector, "#g0-v%d", &n); err != nil {
					t.Errorf("selector %q", d.Show[0].Selector)
					return
				}
				if n < last {
					t.Errorf("saw version %d after %d", n, last)
				}
				last = n
				want := version(n)
				for gi, sh := range d.Show {
					g := want.Groups[gi]
					vi := strings.TrimPrefix(sh.Variation, string(sh.Variation[0]))
					if sh.Group != gi || sh.Selector != g.Placement.Selector || sh.Mode != g.Placement.Mode || sh.PerSession != g.Limits.PerSession ||
						vi != fmt.Sprint(n) || !strings.Contains(sh.HTML, fmt.Sprintf(`class="v%d">%s %d<`, n, sh.Variation[:1], n)) {
						t.Errorf("version %d, step %d shows %+v", n, gi, sh)
					}
					enc, _ := json.Marshal(sh)
					if got, err := sh.AppendJSON(nil); err != nil || string(got) != string(enc) {
						t.Errorf("encoded %s, the fields say %s", got, enc)
					}
				}
				if wantCSS := fmt.Sprintf("#g0-v%d{opacity:0!important}#g1-v%d{opacity:0!important}", n, n); d.CSS != wantCSS {
					t.Errorf("version %d hides %q", n, d.CSS)
				}
				if t.Failed() {
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d decisions during %d saves", decisions.Load(), saves)
}
