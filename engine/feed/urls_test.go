package feed

import (
	"fmt"
	"strings"
	"testing"
)

// TestScriptURLsAreRowErrors: a product or photo URL with a script or data
// scheme, however disguised, skips its row with a line-numbered error;
// web addresses and relative ones are kept.
func TestScriptURLsAreRowErrors(t *testing.T) {
	bad := []string{
		"javascript:alert(1)",
		"JavaScript:alert(1)",
		"  javascript:alert(1)",
		"\x01\x02javascript:alert(1)",
		"java\tscript:alert(1)",
		"jav\nascript:alert(1)",
		"\u00a0javascript:alert(1)",
		"vbscript:msgbox(1)",
		"VBScript:msgbox(1)",
		"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
		"DATA:image/svg+xml,<svg onload=alert(1)>",
		"file:///etc/passwd",
	}
	good := []string{"https://shop.example/p/1", "HTTPS://shop.example/p/1", "http://shop.example/p/1?a=b:c", "/p/1", "//cdn.example/p/1", "p/1?x=a:b", ""}
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	var b strings.Builder
	b.WriteString("ID;Product title;Product URL;Price;Photos\n")
	var lines []int // where each bad row starts
	at := func() int { return strings.Count(b.String(), "\n") + 1 }
	for i, u := range bad {
		// as product URL, then as the second photo
		lines = append(lines, at())
		fmt.Fprintf(&b, "u%d;t;%s;1;https://s/1.jpg\n", i, q(u))
		lines = append(lines, at())
		fmt.Fprintf(&b, "p%d;t;https://shop.example/%d;1;%s\n", i, i, q("https://s/1.jpg|"+u))
	}
	for i, u := range good {
		fmt.Fprintf(&b, "g%d;t;%s;1;%s\n", i, q(u), q(u))
	}
	ps, rep, err := read(t, []byte(b.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	kept := byID(ps)
	for i := range good {
		if _, ok := kept[fmt.Sprintf("g%d", i)]; !ok {
			t.Errorf("good URL %q was skipped: %+v", good[i], rep.Errors)
		}
	}
	if len(ps) != len(good) || rep.Skipped != 2*len(bad) {
		t.Fatalf("%d kept, %d skipped; want %d and %d: %+v", len(ps), rep.Skipped, len(good), 2*len(bad), rep.Errors)
	}
	for i, e := range rep.Errors {
		wantField := []string{FieldURL, FieldPhotos}[i%2]
		line := lines[i]
		if e.Line != line || e.Field != wantField || !strings.Contains(e.Message, "http or https") {
			t.Errorf("error %d (%q): %+v; want line %d field %s", i, bad[i/2], e, line, wantField)
		}
	}
}

func FuzzWebURL(f *testing.F) {
	for _, s := range []string{"javascript:x", " \tJaVa\nScRiPt:x", "https://a", "/a:b", "data:,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		scheme, ok := webURL(u)
		if ok && scheme != "" && scheme != "http" && scheme != "https" {
			t.Fatalf("%q: accepted scheme %q", u, scheme)
		}
		// whatever the browser reads as the scheme is never a script one
		norm := strings.ToLower(strings.TrimLeft(strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(u), "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f \u00a0\ufeff"))
		for _, s := range []string{"javascript:", "vbscript:", "data:"} {
			if ok && strings.HasPrefix(norm, s) {
				t.Fatalf("%q accepted", u)
			}
		}
	})
}
