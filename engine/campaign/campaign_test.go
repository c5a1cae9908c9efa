package campaign

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

func TestSanitise(t *testing.T) {
	cases := []struct {
		in, want string
		err      bool
	}{
		{`<div class="promo" id="x">Hi</div>`, `<div class="promo" id="x">Hi</div>`, false},
		{`<p onclick="x()" style="color:red">a</p>`, `<p>a</p>`, false},
		{`<script>alert(1)</script><b>b</b>`, `<b>b</b>`, false},
		{`<a href="javascript:alert(1)">x</a>`, `x`, false},
		{`<a href="/cart" target="_blank">x</a>`, `<a href="/cart" target="_blank">x</a>`, false},
		{`<img src="data:image/png;base64,AA" alt="">`, `<img alt="">`, false},
		{`<iframe src="https://evil.example"></iframe>ok`, `ok`, false},
		{`<p>{{product "1001"}}</p>`, `<p>{{product "1001"}}</p>`, false},
		{`{{ recommend "similar"   4 }}`, `{{recommend "similar" 4}}`, false},
		{`{{recommend "similar" 99}}`, ``, true},
		{`{{recommend "everything" 4}}`, ``, true},
		{`{{env "AWS_SECRET_ACCESS_KEY"}}`, ``, true},
		{`{{template "x"}}`, ``, true},
		{`<a href="{{product "1"}}">x</a>`, ``, true},
		{`<script>{{product "1"}}</script>`, ``, true},
	}
	for _, c := range cases {
		got, err := Sanitise(c.in)
		if (err != nil) != c.err || (!c.err && got != c.want) {
			t.Errorf("Sanitise(%q) = %q, %v; want %q (error %v)", c.in, got, err, c.want, c.err)
		}
	}
}

func FuzzSanitise(f *testing.F) {
	for _, s := range []string{`<p onclick=x>{{product "1"}}</p>`, `<a href="java&#x73;cript:x">`, `{{recommend "similar" 4}}<svg onload=x>`, `{{`, `STPBLOCK0X{{product "1"}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Sanitise(in)
		if err != nil {
			return
		}
		z := html.NewTokenizer(strings.NewReader(out))
		for tt := z.Next(); tt != html.ErrorToken; tt = z.Next() {
			tok := z.Token()
			switch tok.Data {
			case "script", "style", "iframe", "object", "embed", "form":
				if tt != html.TextToken {
					t.Fatalf("Sanitise(%q) = %q keeps <%s>", in, out, tok.Data)
				}
			}
			for _, a := range tok.Attr {
				v := strings.ToLower(strings.TrimSpace(a.Val))
				if strings.HasPrefix(a.Key, "on") || a.Key == "style" || strings.HasPrefix(v, "javascript:") || strings.HasPrefix(v, "data:") || strings.HasPrefix(v, "vbscript:") {
					t.Fatalf("Sanitise(%q) = %q keeps %s=%q", in, out, a.Key, a.Val)
				}
			}
		}
		// sanitising is stable: what was stored is stored unchanged again
		again, err := Sanitise(out)
		if err != nil || again != out {
			t.Fatalf("Sanitise not stable: %q → %q → %q (%v)", in, out, again, err)
		}
	})
}

func valid() Campaign {
	var c Campaign
	json.Unmarshal([]byte(`{"name":"n","groups":[{"placement":{"selector":"#a .b > c","mode":"replace"},
	 "conditions":[{"kind":"cart_value","op":"gte","value":50},{"kind":"time_of_day","op":"between","value":"22:00-02:00"}],
	 "variations":[{"name":"A","weight":50,"html":"<p>a</p>"},{"name":"ctl","weight":50,"control":true}]}]}`), &c)
	c.Normalise()
	return c
}

func TestValidate(t *testing.T) {
	if c := valid(); c.Validate(nil) != nil {
		err := c.Validate(nil)
		t.Fatalf("valid campaign: %v", err)
	}
	cases := []struct {
		edit func(c *Campaign)
		path string
	}{
		{func(c *Campaign) { c.Groups[0].Conditions[0].Value = "lots" }, "groups[0].conditions[0].value"},
		{func(c *Campaign) { c.Groups[0].Conditions[1].Value = "25:00-01:00" }, "groups[0].conditions[1].value"},
		{func(c *Campaign) {
			c.Groups[0].Conditions[1] = Condition{Kind: "date", Op: "between", Value: "2026-12-24..2026-12-01"}
		}, "groups[0].conditions[1].value"},
		{func(c *Campaign) { c.Groups[0].Conditions[1] = Condition{Kind: "device", Op: "eq", Value: "tablet"} }, "groups[0].conditions[1].value"},
		{func(c *Campaign) { c.Groups[0].Conditions[1] = Condition{Kind: "page_type", Op: "eq", Value: ""} }, "groups[0].conditions[1].value"},
		{func(c *Campaign) { c.Groups[0].Trigger = &Trigger{Kind: TriggerScroll, Value: 150} }, "groups[0].trigger.value"},
		{func(c *Campaign) { c.Groups[0].Variations[0].HTML = strings.Repeat("x", MaxHTML+1) }, "groups[0].variations[0].html"},
		{func(c *Campaign) { c.Groups = append(c.Groups, c.Groups[0]); c.Groups[1].Placement.Selector = "a;b" }, "groups[1].placement.selector"},
	}
	for _, tc := range cases {
		c := valid()
		tc.edit(&c)
		err := c.Validate(nil)
		fe, ok := err.(*FieldError)
		if !ok || fe.Path != tc.path {
			t.Errorf("error %v; want one at %s", err, tc.path)
		}
	}
}

// segmentsFake is an in-memory Segments (the real one is engine/segment's).
type segmentsFake map[string]bool

func (s segmentsFake) IsMember(profile, segment string) (bool, error) {
	return s[profile+"/"+segment], nil
}

func TestSegmentConditionNeedsSegments(t *testing.T) {
	c := valid()
	c.Groups[0].Conditions = []Condition{{Kind: "segment", Op: "in", Value: "vip"}}
	if err := c.Validate(nil); err == nil || !strings.Contains(err.Error(), ErrNoSegments) {
		t.Fatalf("without segments: %v", err)
	}
	if err := c.Validate(segmentsFake{}); err != nil {
		t.Fatalf("with segments: %v", err)
	}
}

// TestPickIsStableAndSplits: the same shopper gets the same variation;
// 20 000 shoppers split 30/70 within 2 points.
func TestPickIsStableAndSplits(t *testing.T) {
	vs := []Variation{{Name: "A", Weight: 30}, {Name: "B", Weight: 70}}
	n := map[string]int{}
	for i := range 20000 {
		p := fmt.Sprintf("u:shopper%d@example.com", i)
		v := vs[pick(vs, p, "c1", 0)]
		if vs[pick(vs, p, "c1", 0)].Name != v.Name {
			t.Fatal("not stable")
		}
		n[v.Name]++
	}
	if a := float64(n["A"]) / 20000; math.Abs(a-0.3) > 0.02 {
		t.Fatalf("split %v", n)
	}
	// groups are assigned independently
	same := 0
	for i := range 2000 {
		p := fmt.Sprintf("a:%d", i)
		if pick(vs, p, "c1", 0) == pick(vs, p, "c1", 1) {
			same++
		}
	}
	if same > 1300 { // independent: 0.3²+0.7² = 58 %
		t.Fatalf("groups 0 and 1 agree for %d of 2000 shoppers", same)
	}
}

// pickFNV is pick as it was written first, with hash/fnv: shoppers keep
// their variations across versions, so pick must give the same buckets.
func pickFNV(vs []Variation, profile, campaignID string, group int) int {
	h := fnv.New64a()
	h.Write([]byte(profile))
	h.Write([]byte{0})
	h.Write([]byte(campaignID))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(group)))
	x := h.Sum64()
	x ^= x >> 29
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 32
	bucket := int(x % 10000)
	acc := 0
	for i, v := range vs {
		acc += v.Weight * 100
		if bucket < acc {
			return i
		}
	}
	return len(vs) - 1
}

func TestPickIsFNV(t *testing.T) {
	vs := []Variation{{Name: "A", Weight: 10}, {Name: "B", Weight: 25}, {Name: "C", Weight: 15}, {Name: "D", Weight: 50}}
	for i := range 20000 {
		p := fmt.Sprintf("u:shopper%d@example.com\x00ü", i)
		c := strconv.Itoa(i % 97)
		g := i % 13 * (i % 5)
		if got, want := pick(vs, p, c, g), pickFNV(vs, p, c, g); got != want {
			t.Fatalf("pick(%q, %q, %d) = %d, hash/fnv gives %d", p, c, g, got, want)
		}
	}
}

func TestTwoProportion(t *testing.T) {
	// 200/2000 vs 260/2000: z ≈ 2.98, p ≈ 0.0029
	p, ok := TwoProportionP(200, 2000, 260, 2000)
	if !ok || math.Abs(p-0.0029) > 0.0003 {
		t.Fatalf("p = %v", p)
	}
	if p, _ := TwoProportionP(10, 100, 12, 100); p < 0.05 {
		t.Fatalf("10/100 vs 12/100 significant: %v", p)
	}
	if _, ok := TwoProportionP(0, 100, 0, 100); ok {
		t.Fatal("no conversions at all gave a p-value")
	}
	if _, ok := TwoProportionP(5, 0, 1, 10); ok {
		t.Fatal("an empty sample gave a p-value")
	}
	// 10 % → 12 %: about 3 840 per variation at 95 %/80 %
	if n := NeededSample(0.10, 0.12); n < 3700 || n > 4000 {
		t.Fatalf("needed %d", n)
	}
}

func TestConditionsHold(t *testing.T) {
	s := &Service{}
	now := time.Date(2026, 12, 10, 23, 30, 0, 0, time.UTC)
	p := &page{req: Request{URL: "https://shop.example/p/1001?x=1", Now: now}, shopper: &Shopper{Cart: Cart{Currency: "EUR", Value: 5500, Items: 2}},
		pageType: "product", device: "mobile", channel: "Paid Search", source: "google", refHost: "google.com", visitor: "returning", knowsVisit: true}
	cc, err := compile(Campaign{Groups: []Group{{Conditions: []Condition{
		{Kind: "url", Op: "wildcard", Value: "https://shop.example/p/*"},
		{Kind: "url", Op: "regex", Value: `/p/\d+`},
		{Kind: "url", Op: "not_contains", Value: "/cart"},
		{Kind: "page_type", Op: "eq", Value: "product"},
		{Kind: "device", Op: "eq", Value: "mobile"},
		{Kind: "channel", Op: "eq", Value: "paid search"},
		{Kind: "source", Op: "contains", Value: "goo"},
		{Kind: "referrer_host", Op: "eq", Value: "www.google.com"},
		{Kind: "visitor", Op: "eq", Value: "returning"},
		{Kind: "cart_value", Op: "gte", Value: "55"},
		{Kind: "cart_items", Op: "eq", Value: "2"},
		{Kind: "time_of_day", Op: "between", Value: "22:00-02:00"},
		{Kind: "date", Op: "between", Value: "2026-12-01..2026-12-10"},
		{Kind: "date", Op: "after", Value: "2026-12-09"},
		{Kind: "impressions_session", Op: "lt", Value: "1"},
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, cd := range cc.conds[0] {
		if !s.holds(p, cd, 0, 0) {
			t.Errorf("%+v does not hold", cd.Condition)
		}
	}
	cc, _ = compile(Campaign{Groups: []Group{{Conditions: []Condition{
		{Kind: "url", Op: "equals", Value: "https://shop.example/"},
		{Kind: "page_type", Op: "ne", Value: "product"},
		{Kind: "cart_value", Op: "gt", Value: "55"},
		{Kind: "time_of_day", Op: "between", Value: "09:00-17:00"},
		{Kind: "date", Op: "before", Value: "2026-12-10"},
		{Kind: "impressions_user", Op: "gte", Value: "1"},
		{Kind: "segment", Op: "in", Value: "vip"},
		{Kind: "category", Op: "eq", Value: "Shoes"},
	}}}})
	for _, cd := range cc.conds[0] {
		if s.holds(p, cd, 0, 0) {
			t.Errorf("%+v holds", cd.Condition)
		}
	}
}

func TestPageTypeOf(t *testing.T) {
	for u, want := range map[string]string{
		"https://s.example/": "home", "https://s.example/demo/p/1001": "product", "https://s.example/products/x": "product",
		"https://s.example/demo/c/10": "category", "https://s.example/cart": "cart", "https://s.example/checkout/pay": "checkout",
		"https://s.example/about": "other", "%%": "other",
	} {
		if got := PageTypeOf(u); got != want {
			t.Errorf("PageTypeOf(%s) = %s, want %s", u, got, want)
		}
	}
}
