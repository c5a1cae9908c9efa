package segment

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
)

// The segments benchmarks' generated shop, shared by those of this package
// (BenchmarkPreviewIndex) and of segment_test (generateShop, through
// export_test.go).

// previewRule is the benchmarks' new 3-condition rule: a Facebook visit
// within 30 days, two carts within 90 days, no order within 90 days.
const previewRule = `{"name":"Facebook, carts, no order","conditions":[
 {"event":"visit_from_referrer","where":[{"prop":"source","value":"facebook"}],"within":"720h"},
 {"event":"add_to_cart","count":{"op":"gte","value":2},"within":"2160h"},
 {"not":{"event":"order","within":"2160h"}}]}`

// benchSources are where visits come from, and the share of visits.
var benchSources = []struct {
	Weight          int
	Source, Channel string
}{
	{30, "google", "Organic Search"}, {20, "", "Direct"}, {12, "newsletter", "Email"}, {10, "google", "Paid Search"},
	{8, "facebook", "Organic Social"}, {6, "facebook", "Paid Social"}, {5, "blog.example.org", "Referral"},
	{4, "partner", "Affiliates"}, {3, "display", "Display"}, {2, "bing", "Organic Search"},
}

// benchVisit gives add one visit's events, at a time between start and
// end: a page view from one of benchSources (with its visit_from_referrer
// when it comes from outside), 2 to 9 product views (one in 8 a cart), a
// login for one in 4 visits of a shopper known by email, an order (orderID)
// for one in 6.
func benchVisit(rng *rand.Rand, start, end time.Time, email, orderID string, add func(*model.Event)) {
	str := func(s string) json.RawMessage { j, _ := json.Marshal(s); return j }
	total := 0
	for _, s := range benchSources {
		total += s.Weight
	}
	t := start.Add(time.Duration(rng.Int64N(int64(end.Sub(start)))))
	pick := rng.IntN(total)
	src := benchSources[0]
	for _, c := range benchSources {
		if pick < c.Weight {
			src = c
			break
		}
		pick -= c.Weight
	}
	pv := &model.Event{Type: model.PageView, Time: t, URL: "https://shop.example/"}
	if src.Source != "" {
		pv.Traffic = &model.Traffic{Source: src.Source, Medium: "x", Channel: src.Channel}
	}
	add(pv)
	if pv.Traffic != nil {
		add(&model.Event{Type: model.VisitFromReferrer, Time: t, Traffic: pv.Traffic,
			Props: map[string]json.RawMessage{"source": str(src.Source), "channel": str(src.Channel)}})
	}
	for range 2 + rng.IntN(8) {
		t = t.Add(time.Duration(20+rng.IntN(120)) * time.Second)
		typ := model.ProductView
		if rng.IntN(8) == 0 {
			typ = model.AddToCart
		}
		add(&model.Event{Type: typ, Time: t,
			Props: map[string]json.RawMessage{"product_id": str(fmt.Sprint(1000 + rng.IntN(5000))), "category": str(fmt.Sprint("c", rng.IntN(40)))}})
	}
	if email != "" && rng.IntN(4) == 0 {
		t = t.Add(time.Minute)
		add(&model.Event{Type: model.Login, Email: email, Time: t})
	}
	if rng.IntN(6) == 0 {
		t = t.Add(2 * time.Minute)
		add(&model.Event{Type: model.Order, Email: email, Time: t,
			Props: map[string]json.RawMessage{"order_id": str(orderID), "value": json.RawMessage(fmt.Sprintf("%d.%02d", 10+rng.IntN(200), rng.IntN(100))), "currency": str("EUR")}})
	}
}
