package mailcampaign

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/search"
)

// Products is what templates read of the catalogue (catalog.Catalog).
type Products interface {
	Product(id string) (catalog.Item, error)
	Similar(id string, limit int) ([]catalog.Item, error)
	Search(q search.Query) ([]catalog.Item, search.Result, error)
}

// Data is what a template sees of its recipient.
type Data struct {
	Email      string
	FirstName  string
	LastName   string
	City       string
	Country    string
	Custom     map[string]any // the user's custom attributes
	CartItems  []string       // product ids added to the cart since the last order, newest first
	Viewed     []string       // product ids viewed, newest first, without repeats
	LastViewed string         // the product viewed last
	Products   []string       // the automation's products: back in stock or cheaper (back_in_stock, price_drop)
}

// maxBlock is the most products one block shows.
const maxBlock = 12

// Template is a parsed email: subject, HTML and text. Render may be called
// from several goroutines.
type Template struct {
	html *template.Template
	text *template.Template // nil: made from the HTML

	// bound are clones of html and text whose functions call r, made by
	// the first Render: html/template escapes a template when it first
	// runs, and cloning afresh for each recipient redid that each time
	// (BenchmarkRender: 45 µs of CPU a message, 21 µs bound once). mu
	// serialises their use.
	mu    sync.Mutex
	r     *renderer
	bound [2]*template.Template
}

// escaping reports whether err is html/template's: a value where it cannot
// be escaped safely.
func escaping(err error) bool {
	var e *template.Error
	return errors.As(err, &e)
}

// funcs is the whole function set templates may call: no environment, no
// files, no network. products and recommend are bound per render.
func funcs(r *renderer) template.FuncMap {
	return template.FuncMap{
		"default": func(def string, v any) any {
			if v == nil {
				return def
			}
			if s, ok := v.(string); ok && strings.TrimSpace(s) == "" {
				return def
			}
			return v
		},
		"products":  r.products,
		"recommend": r.recommend,
		"upper":     strings.ToUpper,
		"lower":     strings.ToLower,
		"title":     func(s string) string { return strings.Title(s) }, //nolint:staticcheck // ASCII names
	}
}

// ParseTemplate checks an email's HTML and text (text may be empty: made
// from the HTML). The error is a FieldError naming html or text.
func ParseTemplate(htmlSrc, textSrc string) (*Template, error) {
	t := &Template{}
	var err error
	if t.html, err = template.New("html").Funcs(funcs(&renderer{})).Parse(htmlSrc); err != nil {
		return nil, &model.FieldError{Field: "html", Message: cleanErr(err)}
	}
	if textSrc != "" {
		// text goes out as text/plain: html/template's escaping would
		// show entities, so the text part uses the same functions with
		// HTML escaping undone afterwards (see Render)
		if t.text, err = template.New("text").Funcs(funcs(&renderer{})).Parse(textSrc); err != nil {
			return nil, &model.FieldError{Field: "text", Message: cleanErr(err)}
		}
	}
	return t, nil
}

// reTemplateErr finds where a text/template or html/template error is:
// "template: html:3: ...", "html/template:html:3:12: ...".
var reTemplateErr = regexp.MustCompile(`^(?:html/)?template: ?(?:html|text|block)(?::(\d+))?(?::(\d+))?: ?`)

// cleanErr writes a template error for a person: where it is as "line N"
// (and column) of the HTML or text, then what is wrong.
func cleanErr(err error) string {
	s := err.Error()
	for {
		// an escaping error wraps the parse error's prefix in its own
		m := reTemplateErr.FindStringSubmatch(s)
		if m == nil {
			break
		}
		s = s[len(m[0]):]
		if m[1] != "" {
			where := "line " + m[1]
			if m[2] != "" {
				where += ", column " + m[2]
			}
			return where + ": " + s
		}
	}
	if strings.HasPrefix(s, "ends in a non-text context") {
		return "the template ends inside a tag, an attribute or a comment: close it"
	}
	return strings.TrimPrefix(s, "template: ")
}

// CheckTemplate parses an email's HTML and text like ParseTemplate, and
// renders them once for an empty profile without the catalogue, which finds
// what html/template only sees when it runs: a value in a place it cannot
// escape safely (inside a <script>, an unquoted attribute...). Errors other
// than those of escaping are left for the real recipients (an empty profile
// lacks the data a template may rightly require).
func CheckTemplate(htmlSrc, textSrc string) (*Template, error) {
	t, err := ParseTemplate(htmlSrc, textSrc)
	if err != nil {
		return nil, err
	}
	for _, part := range []struct {
		field string
		t     *template.Template
	}{{"html", t.html}, {"text", t.text}} {
		if part.t == nil {
			continue
		}
		c, err := part.t.Clone()
		if err != nil {
			return nil, err
		}
		err = c.Funcs(funcs(&renderer{text: part.field == "text"})).Execute(io.Discard, Data{Custom: map[string]any{}})
		if err != nil && (escaping(err) || strings.Contains(err.Error(), "can't evaluate field")) {
			return nil, &model.FieldError{Field: part.field, Message: cleanErr(err)}
		}
	}
	return t, nil
}

// Render executes the template for one recipient. The HTML is escaped by
// html/template (a profile's "<script>" name stays text); the text part is
// written when the template has none.
func (t *Template) Render(p Products, d Data) (htmlOut, textOut string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.r == nil {
		r := &renderer{}
		for i, src := range []*template.Template{t.html, t.text} {
			if src == nil {
				continue
			}
			c, err := src.Clone()
			if err != nil {
				return "", "", err
			}
			t.bound[i] = c.Funcs(funcs(r))
		}
		t.r = r
	}
	// the bound functions read *t.r: this recipient's from now on
	*t.r = renderer{cat: p, d: d}
	defer func() { *t.r = renderer{} }() // keep no recipient's data
	var b bytes.Buffer
	if err := t.bound[0].Execute(&b, d); err != nil {
		return "", "", &model.FieldError{Field: "html", Message: cleanErr(err)}
	}
	htmlOut = b.String()
	if t.text == nil {
		return htmlOut, TextFromHTML(htmlOut), nil
	}
	b.Reset()
	t.r.text = true
	if err := t.bound[1].Execute(&b, d); err != nil {
		return "", "", &model.FieldError{Field: "text", Message: cleanErr(err)}
	}
	return htmlOut, html.UnescapeString(b.String()), nil
}

type renderer struct {
	cat  Products
	d    Data
	text bool
}

// products renders a block of the products with the given ids (a []string,
// or one id).
func (r *renderer) products(ids any) (template.HTML, error) {
	var list []string
	switch v := ids.(type) {
	case []string:
		list = v
	case string:
		if v != "" {
			list = []string{v}
		}
	case nil:
	default:
		return "", fmt.Errorf("products: want product ids, got %T", ids)
	}
	if r.cat == nil {
		return "", nil
	}
	var items []catalog.Item
	for _, id := range list {
		if len(items) == maxBlock {
			break
		}
		it, err := r.cat.Product(id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		if it.Removed {
			continue
		}
		items = append(items, it)
	}
	return r.block(items)
}

// recommend renders a block of recommended products: "viewed" n (what the
// recipient viewed), "similar" n id (like the product id), or
// "top_in_category" n category (in stock, cheapest first).
func (r *renderer) recommend(kind string, n int, args ...string) (template.HTML, error) {
	if n < 1 || n > maxBlock {
		return "", fmt.Errorf("recommend: the count must be 1 to %d", maxBlock)
	}
	arg := ""
	if len(args) > 0 {
		arg = args[0]
	}
	if r.cat == nil {
		switch kind {
		case "viewed", "similar", "top_in_category":
			return "", nil
		}
	}
	var items []catalog.Item
	var err error
	switch kind {
	case "viewed":
		return r.products(firstN(r.d.Viewed, n))
	case "similar":
		if arg == "" {
			arg = r.d.LastViewed
		}
		if arg == "" {
			return "", nil
		}
		items, err = r.cat.Similar(arg, n)
		if errors.Is(err, store.ErrNotFound) {
			return "", nil
		}
	case "top_in_category":
		if arg == "" {
			return "", errors.New(`recommend "top_in_category": name a category`)
		}
		items, _, err = r.cat.Search(search.Query{Category: arg, InStock: true, Sort: "price", Size: n, For: search.ForRecommendations})
	default:
		return "", fmt.Errorf("recommend: unknown kind %q (viewed, similar, top_in_category)", kind)
	}
	if err != nil {
		return "", err
	}
	return r.block(items)
}

func firstN(s []string, n int) []string { return s[:min(n, len(s))] }

var blockHTML = template.Must(template.New("block").Parse(`<table role="presentation" class="st-products" cellpadding="0" cellspacing="0" style="width:100%;border-collapse:collapse"><tr>
{{- range .}}<td style="width:{{.Width}}%;padding:8px;vertical-align:top;text-align:center;font-family:sans-serif">
{{- if .URL}}<a href="{{.URL}}" style="color:inherit;text-decoration:none">{{end -}}
{{- if .Photo}}<img src="{{.Photo}}" alt="{{.Title}}" width="160" style="width:100%;max-width:160px;height:auto;border:0">{{end -}}
<div style="font-weight:600;margin:6px 0 2px">{{.Title}}</div>
{{- if .Discount}}<div><s style="color:#888">{{.Price}}</s> <strong>{{.Discount}}</strong></div>{{else}}<div><strong>{{.Price}}</strong></div>{{end -}}
{{- if .URL}}</a>{{end -}}
</td>{{end -}}
</tr></table>`))

type blockItem struct {
	Title, URL, Photo, Price, Discount string
	Width                              int
}

func money(minor int64, currency string) string {
	if currency == "" {
		return model.FormatMinor(minor, "USD")
	}
	return model.FormatMinor(minor, currency) + " " + currency
}

func (r *renderer) block(items []catalog.Item) (template.HTML, error) {
	if len(items) == 0 {
		return "", nil
	}
	var bi []blockItem
	for _, it := range items {
		b := blockItem{Title: it.Title, URL: it.URL, Price: money(it.Price, it.Currency), Width: 100 / len(items)}
		if len(it.Photos) > 0 {
			b.Photo = it.Photos[0]
		}
		if it.DiscountPrice > 0 && it.DiscountPrice < it.Price {
			b.Discount = money(it.DiscountPrice, it.Currency)
		}
		bi = append(bi, b)
	}
	if r.text {
		var sb strings.Builder
		for _, b := range bi {
			price := b.Price
			if b.Discount != "" {
				price = b.Discount + " (was " + b.Price + ")"
			}
			fmt.Fprintf(&sb, "- %s, %s\n  %s\n", b.Title, price, b.URL)
		}
		return template.HTML(html.EscapeString(sb.String())), nil
	}
	var out bytes.Buffer
	if err := blockHTML.Execute(&out, bi); err != nil {
		return "", err
	}
	return template.HTML(out.String()), nil
}

var (
	reDrop    = regexp.MustCompile(`(?is)<(script|style|head)[^>]*>.*?</(script|style|head)>`)
	reLink    = regexp.MustCompile(`(?is)<a\s[^>]*href\s*=\s*["']([^"']*)["'][^>]*>(.*?)</a>`)
	reBreak   = regexp.MustCompile(`(?i)<(br|/p|/div|/tr|/h[1-6]|/li|/table)\b[^>]*>`)
	reTag     = regexp.MustCompile(`(?s)<[^>]*>`)
	reSpaces  = regexp.MustCompile(`[ \t]+`)
	reNewline = regexp.MustCompile(`\n\s*\n\s*\n+`)
)

// TextFromHTML writes the plain-text version of an email: tags dropped,
// links as "text (url)", paragraphs as blank lines.
func TextFromHTML(h string) string {
	s := reDrop.ReplaceAllString(h, "")
	s = reLink.ReplaceAllStringFunc(s, func(m string) string {
		sub := reLink.FindStringSubmatch(m)
		text := strings.TrimSpace(reTag.ReplaceAllString(sub[2], " "))
		text = strings.Join(strings.Fields(text), " ")
		if text == "" || text == sub[1] {
			return " " + sub[1] + " "
		}
		return text + " (" + sub[1] + ")"
	})
	s = reBreak.ReplaceAllString(s, "\n")
	s = reTag.ReplaceAllString(s, "")
	s = html.UnescapeString(s)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(reSpaces.ReplaceAllString(l, " "))
	}
	s = strings.Join(lines, "\n")
	s = reNewline.ReplaceAllString(s, "\n\n")
	return strings.TrimSpace(s) + "\n"
}

// LoadData reads what a template may say about a recipient: the user's
// attributes and, from the profile's events, the cart and the products
// viewed.
func LoadData(st *store.Store, email string) (Data, error) {
	d := Data{Email: email}
	err := st.Read(func(tx *store.Tx) error {
		u, err := tx.User(email)
		switch {
		case err == nil:
			d.FirstName, d.LastName, d.City, d.Country, d.Custom = u.FirstName, u.LastName, u.City, u.Country, u.Custom
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		var viewed, cart []string
		want := func(typ string) bool {
			return typ == model.ProductView || typ == model.AddToCart || typ == model.Order
		}
		return tx.ProfileEvents(model.UserProfileID(email), want, func(ev *model.Event) error {
			switch ev.Type {
			case model.ProductView:
				viewed = append(viewed, ev.ProductIDs()...)
			case model.AddToCart:
				cart = append(cart, ev.ProductIDs()...)
			case model.Order:
				cart = cart[:0]
			}
			if len(viewed) > 1000 {
				viewed = viewed[len(viewed)-200:]
			}
			d.Viewed, d.CartItems = viewed, cart
			return nil
		})
	})
	d.Viewed = newestDistinct(d.Viewed)
	d.CartItems = newestDistinct(d.CartItems)
	if len(d.Viewed) > 0 {
		d.LastViewed = d.Viewed[0]
	}
	if d.Custom == nil {
		d.Custom = map[string]any{}
	}
	return d, err
}

func newestDistinct(ids []string) []string {
	out := []string{}
	for i := len(ids) - 1; i >= 0; i-- {
		if !slices.Contains(out, ids[i]) {
			out = append(out, ids[i])
		}
	}
	return out
}
