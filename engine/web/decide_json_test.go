package web

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/shoptrail/shoptrail/engine/campaign"
)

// TestDecisionAppendJSON: the decision's hand-written JSON is what a
// json.Encoder writes for it, byte for byte.
func TestDecisionAppendJSON(t *testing.T) {
	shown := []campaign.Shown{
		{Campaign: "c1", Group: 0, Variation: "A", HTML: "<div class=\"promo\">Free & fast\u2028</div>", Selector: "#slot-1", Mode: "after", Goal: "click", PerSession: 2},
		{Campaign: "c2", Group: 1, Variation: "ctl", Control: true, Mode: "popup", Trigger: &campaign.Trigger{Kind: "delay", Value: 3}, Goal: "shown"},
	}
	for _, d := range []decision{
		{Show: []campaign.Shown{}, Renderer: "/c/render.abc.js"},
		{CSS: "#a{opacity:0!important}h1>p{opacity:0!important}", Show: shown, Need: true, Renderer: "/c/render.abc.js"},
		{CSS: "<\"\\>", Show: nil, Preview: &previewInfo{Token: "tok<&>"}, Need: true, Renderer: "r"},
		{Show: shown[:1], Preview: &previewInfo{Token: "t", ProductID: "10\"01"}, Renderer: "\xff"},
	} {
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(d); err != nil {
			t.Fatal(err)
		}
		if got, err := d.appendJSON(nil); err != nil || string(got) != want.String() {
			t.Fatalf("appendJSON (%v)\n got %s\nwant %s", err, got, want.String())
		}
	}
	// what encoding/json cannot write is an error, not a panic or a
	// broken answer (validation keeps NaN out of stored triggers)
	bad := decision{Show: []campaign.Shown{{Mode: "popup", Trigger: &campaign.Trigger{Kind: "delay", Value: math.NaN()}}}}
	if _, err := bad.appendJSON(nil); err == nil {
		t.Fatal("a NaN trigger value was encoded")
	}
}
