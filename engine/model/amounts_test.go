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

func TestPlainText(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"plain, text", "plain, text"},
		{"<p>A warm <strong>merino</strong> beanie.</p>\n<ul>\n<li>One size</li><li>Hand wash, 30&nbsp;°C</li></ul>", "A warm merino beanie.\nOne size\nHand wash, 30 °C"},
		{"<h2>Hoodie</h2><p>Fleece &amp; \"kangaroo\" pocket</p>", "Hoodie\nFleece & \"kangaroo\" pocket"},
		{"a <script>alert(1)</script> b", "a alert(1) b"},
		{"<em>heavy</em>weight<table><tr><td>a</td><td>b</td></tr></table>", "heavyweight\na b"},
		{"unclosed <img src=x onerror=alert(1)", "unclosed"},
	} {
		if got := PlainText(tt.in); got != tt.want {
			t.Errorf("PlainText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
