package campaign

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
)

// policy is the allow-list of the content HTML: the tags and attributes of
// ordinary content (bluemonday's UGC policy), classes and ids so the shop's
// own CSS applies, and links to http(s), mailto and tel only. No script, no
// style attribute or element, no inline event handler, no javascript: or
// data: URL, no form, no iframe.
func policy() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AllowAttrs("class", "id").Globally()
	p.AllowAttrs("role", "aria-label", "aria-hidden").Globally()
	p.AllowElements("button", "section", "figure", "figcaption", "picture", "source", "small", "mark")
	p.AllowAttrs("type").OnElements("button")
	p.AllowAttrs("srcset", "sizes", "media").OnElements("source", "img")
	p.AllowAttrs("target").Matching(regexp.MustCompile(`^_(blank|self)$`)).OnElements("a")
	p.RequireNoReferrerOnFullyQualifiedLinks(false)
	p.RequireNoFollowOnLinks(false)
	p.AllowURLSchemes("http", "https", "mailto", "tel")
	p.AllowRelativeURLs(true)
	return p
}

var sanitizer = policy()

// directive is a product block in content: {{recommend "similar" 4}},
// {{recommend "viewed_together" 4}}, {{recommend "bought_together" 4}},
// {{recommend "top_in_category" 4}} or {{product "1001"}}.
var directive = regexp.MustCompile(`\{\{\s*(.*?)\s*\}\}`)

// Block is a parsed product block.
type Block struct {
	Kind  string // "recommend" or "product"
	Arg   string // the recommendation kind, or the product ID
	Count int    // how many products a recommend block shows
}

// recommendKinds are the recommendations a block may ask for.
var recommendKinds = []string{"similar", "viewed_together", "bought_together", "top_in_category"}

// parseBlock parses the inside of {{ }}. Only the two block functions
// exist: there is no way to reach the environment, files or other data.
func parseBlock(in string) (Block, error) {
	fields, err := splitArgs(in)
	if err != nil {
		return Block{}, err
	}
	switch {
	case len(fields) == 3 && fields[0] == "recommend":
		n, err := strconv.Atoi(fields[2])
		if err != nil || n < 1 || n > 12 {
			return Block{}, fmt.Errorf("{{recommend %q %s}}: the count is 1 to 12", fields[1], fields[2])
		}
		for _, k := range recommendKinds {
			if fields[1] == k {
				return Block{Kind: "recommend", Arg: k, Count: n}, nil
			}
		}
		return Block{}, fmt.Errorf("{{recommend %q}}: the kind is one of %s", fields[1], strings.Join(recommendKinds, ", "))
	case len(fields) == 2 && fields[0] == "product":
		if fields[1] == "" || len(fields[1]) > 200 {
			return Block{}, fmt.Errorf("{{product}} needs a product ID")
		}
		return Block{Kind: "product", Arg: fields[1]}, nil
	}
	return Block{}, fmt.Errorf("{{%s}} is not a product block; use {{recommend \"similar\" 4}} or {{product \"1001\"}}", in)
}

// splitArgs splits `recommend "similar" 4` into words, quotes removed.
func splitArgs(in string) ([]string, error) {
	var out []string
	for in = strings.TrimSpace(in); in != ""; in = strings.TrimSpace(in) {
		if in[0] == '"' {
			end := strings.IndexByte(in[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("{{%s}}: a quote is not closed", in)
			}
			out = append(out, in[1:end+1])
			in = in[end+2:]
			continue
		}
		end := strings.IndexAny(in, " \t\"")
		if end < 0 {
			end = len(in)
		}
		out = append(out, in[:end])
		in = in[end:]
	}
	return out, nil
}

// MaxBlocks is how many product blocks one variation may hold.
const MaxBlocks = 20

// placeholder stands for the i-th product block while the HTML is
// sanitised: plain text that the sanitiser keeps, with a random part so
// that content cannot contain it.
func placeholder(nonce string, i int) string { return "STPBLOCK" + nonce + "N" + strconv.Itoa(i) + "X" }

// Sanitise returns content HTML reduced to the allow-list, with its product
// blocks checked and kept. A product block may stand only where text may
// (not inside an attribute), since it becomes HTML.
func Sanitise(in string) (string, error) {
	var blocks []string
	var bad error
	nb := make([]byte, 6)
	rand.Read(nb)
	nonce := hex.EncodeToString(nb)
	masked := directive.ReplaceAllStringFunc(in, func(m string) string {
		inner := directive.FindStringSubmatch(m)[1]
		b, err := parseBlock(inner)
		if err != nil && bad == nil {
			bad = err
		}
		blocks = append(blocks, canonicalBlock(b))
		return placeholder(nonce, len(blocks)-1)
	})
	if bad != nil {
		return "", bad
	}
	if len(blocks) > MaxBlocks {
		return "", fmt.Errorf("%d product blocks; a variation holds at most %d", len(blocks), MaxBlocks)
	}
	out := sanitizer.Sanitize(masked)
	if len(blocks) > 0 {
		if err := placeholdersInText(out, nonce, len(blocks)); err != nil {
			return "", err
		}
		for i := range blocks { // "N1X" is no prefix of "N10X": the X ends it
			out = strings.Replace(out, placeholder(nonce, i), blocks[i], 1)
		}
	}
	return out, nil
}

func canonicalBlock(b Block) string {
	if b.Kind == "recommend" {
		return fmt.Sprintf("{{recommend %q %d}}", b.Arg, b.Count)
	}
	return fmt.Sprintf("{{product %q}}", b.Arg)
}

// placeholdersInText checks that every block's placeholder survived in a
// text node, not in an attribute.
func placeholdersInText(s, nonce string, n int) error {
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		tok := z.Token()
		if tt == html.StartTagToken || tt == html.SelfClosingTagToken {
			for _, a := range tok.Attr {
				if strings.Contains(a.Val, "STPBLOCK"+nonce) {
					return fmt.Errorf("a product block stands inside the attribute %s of <%s>; it may only stand in text", a.Key, tok.Data)
				}
			}
		}
	}
	for i := range n {
		if strings.Count(s, placeholder(nonce, i)) != 1 {
			return fmt.Errorf("a product block stands where the sanitiser removed it (inside a removed element)")
		}
	}
	return nil
}

// Blocks returns the product blocks of sanitised content, in order, with the
// text between them: parts[0] block[0] parts[1] ... parts[n].
func Blocks(content string) (parts []string, blocks []Block) {
	idx := directive.FindAllStringSubmatchIndex(content, -1)
	last := 0
	for _, m := range idx {
		b, err := parseBlock(content[m[2]:m[3]])
		if err != nil {
			continue // stored content was checked; leave anything else as text
		}
		parts = append(parts, content[last:m[0]])
		blocks = append(blocks, b)
		last = m[1]
	}
	return append(parts, content[last:]), blocks
}

// SanitiseCampaign sanitises every variation's HTML in place; the error
// names the variation.
func (c *Campaign) SanitiseCampaign() error {
	for i := range c.Groups {
		for j := range c.Groups[i].Variations {
			v := &c.Groups[i].Variations[j]
			if v.HTML == "" {
				continue
			}
			out, err := Sanitise(v.HTML)
			if err != nil {
				return &FieldError{Path: fmt.Sprintf("groups[%d].variations[%d].html", i, j), Message: err.Error()}
			}
			if !v.Control && strings.TrimSpace(out) == "" {
				return &FieldError{Path: fmt.Sprintf("groups[%d].variations[%d].html", i, j), Message: "nothing is left of this content once scripts and other disallowed HTML are removed"}
			}
			v.HTML = out
		}
	}
	return nil
}
