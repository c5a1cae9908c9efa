package model

import (
	"html"
	"strings"
)

// PlainText is the text of a feed's HTML description (Shopify's Body
// (HTML), WooCommerce's Description): tags dropped, entities decoded,
// runs of white space made one space, a paragraph or line break one
// newline. It is for indexing and for showing as text, never as markup.
func PlainText(s string) string {
	if !strings.ContainsAny(s, "<&") {
		return strings.TrimSpace(s)
	}
	var b strings.Builder
	for len(s) > 0 {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		j := strings.IndexByte(s, '>')
		if j < 0 {
			break // an unclosed tag: the rest is not text
		}
		tag := strings.ToLower(strings.TrimLeft(s[1:j], "/"))
		name, _, _ := strings.Cut(tag, " ")
		switch name = strings.TrimSuffix(name, "/"); {
		case blockTags[name]:
			b.WriteByte('\n')
		case name == "td" || name == "th":
			b.WriteByte(' ')
		}
		s = s[j+1:]
	}
	text := html.UnescapeString(b.String())
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

var blockTags = map[string]bool{"p": true, "br": true, "div": true, "li": true, "ul": true, "ol": true, "h1": true, "h2": true,
	"h3": true, "h4": true, "h5": true, "h6": true, "tr": true, "table": true, "blockquote": true, "section": true}
