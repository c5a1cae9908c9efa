package campaign

import (
	"encoding/json"
	"testing"
)

// shownVariants compiles a campaign made of s (in every field a decision
// shows) and returns what its decisions would show, with content html.
func shownVariants(t testing.TB, s, html string, trigger *Trigger, perSession int, control bool) []Shown {
	c := Campaign{ID: "c" + s, Groups: []Group{
		{Placement: Placement{Selector: "#a" + s, Mode: "after"}, Goal: s, Trigger: trigger, Limits: Limits{PerSession: perSession},
			Variations: []Variation{{Name: "A" + s, Weight: 50, HTML: html, Control: control}, {Name: s, Weight: 50, Control: true}}},
		{Placement: Placement{Mode: s}, Variations: []Variation{{Name: "only", Weight: 100, HTML: html}}},
	}}
	cc, err := compile(c)
	if err != nil {
		t.Fatal(err)
	}
	var out []Shown
	for gi := range cc.vars {
		for _, cs := range cc.vars[gi] {
			sh := cs.shown
			sh.enc = cs
			if !sh.Control {
				sh.HTML = html
			}
			out = append(out, sh)
		}
	}
	return out
}

// TestShownAppendJSON: what a decision shows is encoded byte for byte as
// encoding/json encodes it, whatever its strings hold; a Shown changed
// after Decide made it is encoded as it is now.
func TestShownAppendJSON(t *testing.T) {
	strs := []string{"", "x", `"quoted" \ back`, "<b>&amp;</b>", "\x00\x01\x1f\t\n\r\b\f", "é€😀", "\u2028\u2029", "\xff\xfe bad utf-8", `,"html":"\u0000"`, "\x00"}
	triggers := []*Trigger{nil, {Kind: "delay", Value: 2.5}, {Kind: "exit_intent"}, {Kind: "scroll", Value: 1e21}}
	for i, s := range strs {
		for j, html := range strs {
			for _, sh := range shownVariants(t, s, html, triggers[(i+j)%len(triggers)], i*j%3, j%4 == 3) {
				want, err := json.Marshal(sh)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := sh.AppendJSON([]byte("prefix")); err != nil || string(got) != "prefix"+string(want) {
					t.Fatalf("AppendJSON(%+v)\n got %s\nwant %s", sh, got, want)
				}
				sh.Selector += "!" // no longer what was encoded
				want, _ = json.Marshal(sh)
				if got, err := sh.AppendJSON(nil); err != nil || string(got) != string(want) {
					t.Fatalf("changed Shown\n got %s\nwant %s", got, want)
				}
			}
		}
	}
}

func FuzzShownAppendJSON(f *testing.F) {
	f.Add("promo", "<div>Free shipping</div>", 2.0, 1)
	f.Add("\u2028\"", "\xff<&>", -1.5, 0)
	f.Fuzz(func(t *testing.T, s, html string, value float64, cap int) {
		trig := &Trigger{Kind: s, Value: value}
		if value != value || value > 1e300 || value < -1e300 { // NaN and ±Inf do not encode
			trig = nil
		}
		for _, sh := range shownVariants(t, s, html, trig, cap, false) {
			want, err := json.Marshal(sh)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := sh.AppendJSON(nil); err != nil || string(got) != string(want) {
				t.Fatalf("got %s\nwant %s", got, want)
			}
		}
	})
}
