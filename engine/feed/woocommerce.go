package feed

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
)

// wooColumns are the WooCommerce exporter's columns (folded) that are not
// product attributes: read below, or of no use to recommendations.
var wooColumns = []string{"type", "sku", "published", "isfeatured", "visibilityincatalog", "shortdescription",
	"datesalepricestarts", "datesalepriceends", "taxstatus", "taxclass", "instock", "lowstockamount",
	"backordersallowed", "soldindividually", "allowcustomerreviews", "purchasenote", "shippingclass",
	"downloadlimit", "downloadexpirydays", "groupedproducts", "externalurl", "buttontext", "position"}

var wooAttr = regexp.MustCompile(`^(?i)\s*(attribute|download)\s+(\d{1,3})\s+(name|value\(s\)|visible|global|default|id|url)\s*$`)

// wooAttributeColumn reads "Attribute 2 value(s)" as (2, "value"); (0, "")
// for other columns. Download columns are (n, "download").
func wooAttributeColumn(h string) (int, string) {
	m := wooAttr.FindStringSubmatch(h)
	if m == nil {
		return 0, ""
	}
	n, _ := strconv.Atoi(m[2])
	if strings.EqualFold(m[1], "download") {
		return n, "download"
	}
	kind := strings.ToLower(m[3])
	if kind == "value(s)" {
		kind = "value"
	}
	if kind == "id" || kind == "url" {
		return 0, ""
	}
	return n, kind
}

// wooType is the product type of an exported Type cell ("variable",
// "simple, virtual", "variation, downloadable").
func wooType(s string) string {
	for _, t := range strings.Split(strings.ToLower(s), ",") {
		switch t = strings.TrimSpace(t); t {
		case model.TypeSimple, model.TypeVariable, model.TypeVariation, model.TypeGrouped, model.TypeExternal:
			return t
		}
	}
	return ""
}

// wooText undoes the exporter's escaping of descriptions (WooCommerce
// 3.5.4+ writes a newline as the two characters \n, and a literal \n as
// \\n).
func wooText(s string) string {
	if !strings.Contains(s, `\n`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], `\\n`):
			b.WriteString(`\n`)
			i += 2
		case strings.HasPrefix(s[i:], `\n`):
			b.WriteByte('\n')
			i++
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// wooList splits a WooCommerce list cell: values joined by ", ", a comma
// inside a value escaped as \,.
func wooList(s string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if v := strings.TrimSpace(cur.String()); v != "" {
			out = append(out, v)
		}
		cur.Reset()
	}
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == ',':
			cur.WriteByte(',')
			i++
		case s[i] == ',':
			flush()
		default:
			cur.WriteByte(s[i])
		}
	}
	flush()
	return out
}

// wooRow reads a row of WooCommerce's product export.
func (rd *reader) wooRow(rec []string, line int) error {
	p := rd.base(rec, line)
	p.Type = wooType(rd.get(rec, "type"))
	sku := rd.get(rec, "sku")
	p.SKU = sku
	if p.ID == "" {
		p.ID = sku
	}
	p.Description = wooText(p.Description)
	if short := wooText(rd.get(rec, "shortdescription")); short != "" {
		if p.Description == "" {
			p.Description = short
		} else if text := model.PlainText(short); text != "" {
			if p.Attributes == nil {
				p.Attributes = map[string]string{}
			}
			p.Attributes["Short description"] = text // an attribute is text
		}
	}
	if _, ok := rd.byFold["published"]; ok {
		switch v := rd.get(rec, "published"); {
		case v == "" || v == "1" || isYes(v):
			p.Status = model.StatusPublished
		case v == "-1" || strings.EqualFold(v, "draft"):
			p.Status = model.StatusDraft
		case v == "0" || isNo(v) || strings.EqualFold(v, "private"):
			p.Status = model.StatusPrivate
		default:
			rd.rep.note(line, "published", fmt.Sprintf("Published %q is not 1, 0 or -1: taken as published", v))
			p.Status = model.StatusPublished
		}
	}
	switch v := strings.ToLower(rd.get(rec, "visibilityincatalog")); v {
	case "", model.VisibilityVisible:
		p.Visibility = model.VisibilityVisible
	case model.VisibilityCatalog, model.VisibilitySearch, model.VisibilityHidden:
		p.Visibility = v
	default:
		rd.rep.note(line, "visibility", fmt.Sprintf("Visibility in catalog %q is not visible, catalog, search or hidden: taken as visible", v))
		p.Visibility = model.VisibilityVisible
	}
	// attribute pairs: Attribute N name / Attribute N value(s)
	names, values := map[int]string{}, map[int]string{}
	maxN := 0
	for i, h := range rd.header {
		n, kind := wooAttributeColumn(h)
		if n == 0 || i >= len(rec) {
			continue
		}
		switch kind {
		case "name":
			names[n] = clean(rec[i])
		case "value":
			values[n] = clean(rec[i])
		}
		maxN = max(maxN, n)
	}
	for n := 1; n <= maxN; n++ {
		name, vs := names[n], wooList(values[n])
		switch {
		case name == "" || len(vs) == 0:
			// a variation's empty value means "any"
		case len(vs) == 1:
			setOption(&p, name, vs[0])
		default:
			// a variable product lists every value its variations have
			if p.Attributes == nil {
				p.Attributes = map[string]string{}
			}
			p.Attributes[name] = strings.Join(vs, ", ")
		}
	}
	// In stock? is 1, 0 or backorder; Stock a quantity, "parent" or empty
	stockCell := rd.cell(rec, FieldStock)
	switch v := strings.ToLower(rd.get(rec, "instock")); v {
	case "0", "no", "false", "outofstock":
		zero := int64(0)
		p.Stock = &zero
	case "backorder", "onbackorder":
		// sold on backorder: can be bought, quantity unknown
	default:
		if stockCell != "" && !strings.EqualFold(stockCell, "parent") {
			rd.stock(&p, stockCell)
			if p.Stock != nil && *p.Stock <= 0 && v != "" {
				p.Stock = nil // in stock while the quantity says none: backorders
			}
		}
	}
	required := rd.has(FieldPrice) && p.Type != model.TypeVariable && p.Type != model.TypeGrouped
	sale := rd.cell(rec, FieldDiscountPrice)
	if sale != "" && !rd.onSale(rd.get(rec, "datesalepricestarts"), rd.get(rec, "datesalepriceends"), line) {
		sale = "" // a scheduled sale that has not started or has ended
	}
	if !rd.prices(&p, rd.cell(rec, FieldPrice), sale, required) {
		return nil
	}
	handle := ""
	switch p.Type {
	case model.TypeVariation:
		p.MainID = rd.cell(rec, FieldMain)
		if p.MainID == "" {
			rd.rep.note(line, FieldMain, "a variation without a Parent: imported as a product of its own")
		} else {
			rd.links.Pending, rd.links.parents = true, true
		}
	case model.TypeGrouped:
		p.Children = wooList(rd.get(rec, "groupedproducts"))
		p.MainID = ""
		rd.links.Pending = true
		handle = slug(p.Title)
	case model.TypeVariable:
		p.MainID = ""
		rd.links.Pending = true // its price comes from its variations
		handle = slug(p.Title)
	default:
		if u := rd.get(rec, "externalurl"); p.Type == model.TypeExternal && u != "" {
			p.URL = u
		}
		p.MainID = "" // WooCommerce before 3.0 named grouped products' children's parent here
		handle = slug(p.Title)
	}
	p.Handle = handle
	if sku != "" {
		if _, dup := rd.links.bySKU[sku]; !dup {
			rd.links.bySKU[sku] = p.ID
		}
	}
	if wooID := rd.get(rec, "id"); wooID != "" && wooID != p.ID {
		rd.links.byRef["id:"+wooID] = p.ID
	}
	return rd.emit(p, handle, sku)
}

// onSale reports whether a sale scheduled from start to end (the
// exporter's "2026-12-01 0:00:00", or a date alone; either may be empty)
// runs today: from the start of its first day to the end of its last.
func (rd *reader) onSale(start, end string, line int) bool {
	now := time.Now()
	if rd.o.Now != nil {
		now = rd.o.Now()
	}
	day := func(s, field string) (time.Time, bool) {
		if s == "" {
			return time.Time{}, false
		}
		t, err := time.Parse("2006-01-02", s[:min(10, len(s))])
		if err != nil {
			rd.rep.note(line, field, fmt.Sprintf("%q is not a date like 2026-12-01: the sale is taken as running", s))
			return time.Time{}, false
		}
		return t, true
	}
	if t, ok := day(start, "date_sale_price_starts"); ok && now.Before(t) {
		return false
	}
	if t, ok := day(end, "date_sale_price_ends"); ok && !now.Before(t.AddDate(0, 0, 1)) {
		return false
	}
	return true
}
