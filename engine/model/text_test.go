package model

import "testing"

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
