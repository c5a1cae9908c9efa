package feed

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/shoptrail/shoptrail/engine/model"
)

// The formats recognised from a feed's header.
const (
	FormatWooCommerce = "WooCommerce"     // the built-in product CSV exporter (WooCommerce 3.1+)
	FormatShopify     = "Shopify"         // the admin's product CSV export
	FormatGoogle      = "Google Merchant" // a Google Merchant Center text feed
	FormatShoptrail   = "Shoptrail"       // "ID";"Product title";"Product URL";... as in the help center
	FormatGeneric     = "other"           // header names recognised one by one
)

// detect names the format of a header.
func detect(header []string) string {
	has := map[string]bool{}
	for _, h := range header {
		has[fold(h)] = true
	}
	any := func(names ...string) bool {
		for _, n := range names {
			if has[n] {
				return true
			}
		}
		return false
	}
	count := func(names ...string) (n int) {
		for _, name := range names {
			if has[name] {
				n++
			}
		}
		return n
	}
	switch {
	case any("handle", "urlhandle") && any("bodyhtml", "variantsku", "variantprice", "option1name", "option1value", "variantcompareatprice", "variantinventoryqty"):
		return FormatShopify
	case has["type"] && any("name", "sku") && any("visibilityincatalog", "regularprice", "instock", "isfeatured", "attribute1name", "attribute1values", "shortdescription"):
		return FormatWooCommerce
	case has["id"] && any("link", "imagelink") && any("availability", "itemgroupid", "googleproductcategory", "additionalimagelink", "saleprice", "gtin", "mpn", "condition"):
		return FormatGoogle
	case has["id"] && has["producttitle"] && count("producturl", "categoriesids", "categoriestitles", "description", "price", "discountprice", "photos", "color", "brand", "stock", "main") >= 2:
		return FormatShoptrail
	}
	return FormatGeneric
}

// reader reads the rows of one feed.
type reader struct {
	o      Options
	rep    *Report
	fn     func(model.Product) error
	header []string
	format string
	cols   map[string]int // canonical field → column
	extra  map[int]string // column → attribute name
	byFold map[string]int // folded header name → first column with it
	seen   map[string]int // product ID → line
	links  *Links

	currentMain string // the generic format's Main flag: the last main product

	// Shopify: the handle whose rows are being read
	group *shopifyGroup
}

func newReader(header []string, o Options, rep *Report, fn func(model.Product) error) *reader {
	rd := &reader{o: o, rep: rep, fn: fn, header: header, format: detect(header), byFold: map[string]int{},
		seen: map[string]int{}, links: &Links{bySKU: map[string]string{}, byRef: map[string]string{}}}
	for i, h := range header {
		if _, ok := rd.byFold[fold(h)]; !ok {
			rd.byFold[fold(h)] = i
		}
	}
	rep.Format = rd.format
	explicit := o.Columns
	if rd.format == FormatShopify {
		// Shopify's IDs are the handle and the variant SKU unless
		// [feed.columns] names other columns
		explicit = map[string]string{}
		for f, h := range o.Columns {
			explicit[f] = h
		}
	}
	rd.cols, rd.extra = mapHeader(header, explicit)
	switch rd.format {
	case FormatWooCommerce:
		rd.consume(wooColumns...)
		for i, h := range header {
			if n, kind := wooAttributeColumn(h); n > 0 && kind != "" {
				delete(rd.extra, i)
			}
		}
	case FormatShopify:
		rd.shopifyColumns(explicit)
	case FormatGoogle:
		rd.consume("availability", "additionalimagelink")
	}
	return rd
}

// consume keeps columns (by folded name) out of the attributes: the format
// reads them itself, or they mean nothing to recommendations.
func (rd *reader) consume(names ...string) {
	for i, h := range rd.header {
		if slices.Contains(names, fold(h)) {
			delete(rd.extra, i)
		}
	}
}

func (rd *reader) checkHeader() error {
	rep := rd.rep
	if _, ok := rd.cols[FieldID]; !ok && rd.format != FormatShopify {
		return fmt.Errorf("%w: none of the header names %q is an ID (id, sku, product_id, item_id...); map one with [feed.columns] id = \"...\"", ErrNoID, rd.header)
	}
	if rd.format == FormatShopify {
		if _, ok := rd.byFold["handle"]; !ok {
			if _, ok := rd.byFold["urlhandle"]; !ok {
				return fmt.Errorf("%w: a Shopify export needs its Handle column", ErrNoID)
			}
		}
	}
	for _, f := range Fields {
		if i, ok := rd.cols[f]; ok {
			rep.Columns = append(rep.Columns, f+" ← "+strings.TrimSpace(rd.header[i]))
		}
	}
	if rd.format == FormatShopify {
		rep.Columns = append(rep.Columns, shopifyMapping...)
	}
	for i := range rd.header {
		if name, ok := rd.extra[i]; ok && name != "" {
			rep.Attributes = append(rep.Attributes, name)
		}
	}
	return nil
}

// get returns a cell by the folded name of its header.
func (rd *reader) get(rec []string, folded ...string) string {
	for _, f := range folded {
		if i, ok := rd.byFold[f]; ok && i < len(rec) {
			if v := clean(rec[i]); v != "" {
				return v
			}
		}
	}
	return ""
}

// cell returns the cell of a canonical field.
func (rd *reader) cell(rec []string, f string) string {
	i, ok := rd.cols[f]
	if !ok || i >= len(rec) {
		return ""
	}
	return clean(rec[i])
}

// base fills what every format reads the same way.
func (rd *reader) base(rec []string, line int) model.Product {
	cell := func(f string) string { return rd.cell(rec, f) }
	p := model.Product{Line: line, ID: cell(FieldID), Title: cell(FieldTitle), URL: cell(FieldURL),
		Description: cell(FieldDescription), Color: cell(FieldColor), Brand: cell(FieldBrand), Size: cell(FieldSize),
		CategoryIDs: list(cell(FieldCategoryIDs)), Categories: categories(cell(FieldCategories)), Photos: photos(cell(FieldPhotos))}
	for i, name := range rd.extra {
		if i < len(rec) && name != "" {
			if v := clean(rec[i]); v != "" {
				if p.Attributes == nil {
					p.Attributes = map[string]string{}
				}
				p.Attributes[name] = v
			}
		}
	}
	return p
}

func (rd *reader) row(rec []string, line int) error {
	switch rd.format {
	case FormatWooCommerce:
		return rd.wooRow(rec, line)
	case FormatShopify:
		return rd.shopifyRow(rec, line)
	}
	return rd.genericRow(rec, line)
}

func (rd *reader) end() error {
	if rd.format == FormatShopify {
		return rd.flushGroup()
	}
	return nil
}

// genericRow reads a row of the Shoptrail, Google Merchant or any other
// format.
func (rd *reader) genericRow(rec []string, line int) error {
	p := rd.base(rec, line)
	if !rd.prices(&p, rd.cell(rec, FieldPrice), rd.cell(rec, FieldDiscountPrice), rd.has(FieldPrice)) {
		return nil
	}
	rd.stock(&p, rd.cell(rec, FieldStock))
	if rd.format == FormatGoogle {
		p.Photos = append(p.Photos, photos(rd.get(rec, "additionalimagelink"))...)
		switch a := strings.NewReplacer("_", "", " ", "").Replace(strings.ToLower(rd.get(rec, "availability"))); a {
		case "outofstock", "discontinued":
			zero := int64(0)
			p.Stock = &zero
		case "instock", "preorder", "backorder":
			if p.Stock != nil && *p.Stock <= 0 {
				p.Stock = nil
			}
		}
	}
	// Main: the main product's ID, or a flag. With a flag, a row marked
	// 1/yes/true is a main product and the rows after it marked 0/no/
	// false are its variations.
	switch m := rd.cell(rec, FieldMain); {
	case rd.format != FormatGoogle && isYes(m):
		rd.currentMain = p.ID
	case rd.format != FormatGoogle && isNo(m):
		if rd.currentMain != "" {
			p.MainID = rd.currentMain
		}
	case m != "" && m != p.ID:
		p.MainID = m
		if rd.format == FormatGoogle {
			// item_group_id: a group of variants with no row of its own;
			// its main product is made from its first variant
			rd.links.groups = true
			rd.links.Pending = true
		}
	default:
		rd.currentMain = p.ID
	}
	return rd.emit(p, "", p.ID)
}

func (rd *reader) has(f string) bool {
	_, ok := rd.cols[f]
	return ok
}

// prices reads the price and the discount price into p; it skips the row
// and returns false when one is not an amount, or the price is missing
// while required.
func (rd *reader) prices(p *model.Product, price, discount string, required bool) bool {
	if price == "" && required {
		rd.rep.skip(p.Line, FieldPrice, "no price")
		return false
	}
	if price != "" {
		v, cur, err := parsePrice(price)
		if err != nil {
			rd.rep.skip(p.Line, FieldPrice, err.Error())
			return false
		}
		p.Price, p.Currency = v, cur
	}
	if discount != "" {
		v, cur, err := parsePrice(discount)
		if err != nil {
			rd.rep.skip(p.Line, FieldDiscountPrice, err.Error())
			return false
		}
		p.DiscountPrice = v
		if p.Currency == "" {
			p.Currency = cur
		}
	}
	if p.Currency == "" {
		p.Currency = defCurrency
	}
	return true
}

// stock reads a stock quantity; a cell that is not a number is noted and
// the stock left unknown.
func (rd *reader) stock(p *model.Product, v string) {
	if v == "" {
		return
	}
	n, err := strconv.ParseFloat(strings.ReplaceAll(v, ",", "."), 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		rd.rep.note(p.Line, FieldStock, fmt.Sprintf("stock %q is not a number: stock unknown", v))
		return
	}
	s := int64(max(0, min(n, 1e12)))
	p.Stock = &s
}

// emit checks a product and hands it on. handle and sku fill the URL
// template when the product has no URL.
func (rd *reader) emit(p model.Product, handle, sku string) error {
	rep := rd.rep
	switch {
	case p.ID == "":
		rep.skip(p.Line, FieldID, "no ID")
		return nil
	case len(p.ID) > maxIDLen || strings.ContainsAny(p.ID, "\r\n\t"):
		rep.skip(p.Line, FieldID, fmt.Sprintf("the ID must be one line of at most %d bytes", maxIDLen))
		return nil
	case rd.seen[p.ID] > 0:
		rep.skip(p.Line, FieldID, fmt.Sprintf("duplicate ID %q: the first, on line %d, is kept", p.ID, rd.seen[p.ID]))
		return nil
	}
	if p.URL == "" && rd.o.URLTemplate != "" && (p.MainID == "" || handle != "") {
		p.URL = fillURL(rd.o.URLTemplate, handle, p.ID, sku)
	}
	if field, msg := checkURLs(p); msg != "" {
		rep.skip(p.Line, field, msg)
		return nil
	}
	if len(p.MainID) > maxIDLen {
		rep.note(p.Line, FieldMain, "the main product's ID is too long: imported as a product of its own")
		p.MainID = ""
	}
	if p.MainID == p.ID {
		p.MainID = ""
	}
	rd.seen[p.ID] = p.Line
	if p.URL == "" {
		rep.NoURL++
		if p.MainID != "" {
			rd.links.Pending = true // it may take its main product's
		}
	}
	if !p.Searchable() || !p.Recommendable() {
		rep.Unlisted++
	}
	return rd.fn(p)
}

// fillURL fills a product URL template; "" when it needs a value the
// product lacks.
func fillURL(tmpl, handle, id, sku string) string {
	for _, v := range []struct{ key, value string }{{"{handle}", handle}, {"{id}", id}, {"{sku}", sku}} {
		if strings.Contains(tmpl, v.key) {
			if v.value == "" {
				return ""
			}
			tmpl = strings.ReplaceAll(tmpl, v.key, url.PathEscape(v.value))
		}
	}
	return tmpl
}

// categories splits a category cell into titles: a list on | or commas,
// each maybe a path "Clothing > T-shirts" (WooCommerce, Shopify, Google)
// whose levels become categories of their own, the deepest last.
func categories(s string) []string {
	var out []string
	for _, c := range list(s) {
		for _, level := range strings.Split(c, ">") {
			if level = strings.TrimSpace(level); level != "" && !slices.Contains(out, level) {
				out = append(out, level)
			}
		}
	}
	return out
}

// categoryPath splits one category path "Apparel > Bags, Wallets > Totes"
// into its levels (commas belong to the names).
func categoryPath(s string) []string {
	var out []string
	for _, level := range strings.Split(s, ">") {
		if level = strings.TrimSpace(level); level != "" && !slices.Contains(out, level) {
			out = append(out, level)
		}
	}
	return out
}

// slug makes a URL handle of a name as WordPress does for most names:
// lower case, accents dropped, anything else a dash.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range fold2(s) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// colourNames and sizeNames are the attribute names (folded) that are a
// variation's colour or size.
var (
	colourNames = []string{"color", "colour", "couleur", "farbe", "kolor", "colore", "kleur", "pacolor"}
	sizeNames   = []string{"size", "taille", "grosse", "talla", "rozmiar", "taglia", "maat", "pasize"}
)

// setOption puts a named option (a WooCommerce attribute, a Shopify
// option) on p: its colour, its size or a named attribute.
func setOption(p *model.Product, name, value string) {
	if name == "" || value == "" {
		return
	}
	switch f := fold(name); {
	case slices.Contains(colourNames, f) && p.Color == "":
		p.Color = value
	case slices.Contains(sizeNames, f) && p.Size == "":
		p.Size = value
	default:
		if p.Attributes == nil {
			p.Attributes = map[string]string{}
		}
		p.Attributes[name] = value
	}
}

// Links resolves what a feed's products name each other by: a
// WooCommerce variation's Parent (the parent's ID, id:N or its SKU), a
// grouped product's children.
type Links struct {
	// Pending is true when some products still name their main product or
	// children by such a reference, or wait for their main product's URL
	// or price: the importer then settles them once the whole file is in.
	Pending bool
	bySKU   map[string]string // SKU → product ID
	byRef   map[string]string // id:N → product ID, when the ID column is not WooCommerce's ID
	groups  bool              // Google Merchant item_group_id: main products to make
	parents bool              // WooCommerce: a Parent names a product that must be in the file
	handles map[string]bool   // Shopify: the handles read
}

// ParentsMustExist reports whether a variation whose main product is not
// in the feed is imported as a product of its own (a WooCommerce Parent
// names a product of the same export), rather than kept as a variation of
// a main product to come.
func (l *Links) ParentsMustExist() bool { return l != nil && l.parents }

// MakesGroups reports whether variations whose main product is not in the
// feed make one (a Google Merchant feed's item_group_id), rather than being
// imported as products of their own.
func (l *Links) MakesGroups() bool { return l != nil && l.groups }

// Resolve returns the product ID that ref names: a product ID (exists
// reports whether one is in the feed), id:N, or a SKU, whichever matches.
func (l *Links) Resolve(ref string, exists func(id string) bool) (string, bool) {
	if ref == "" || l == nil {
		return "", false
	}
	if exists(ref) {
		return ref, true
	}
	if n, ok := strings.CutPrefix(ref, "id:"); ok {
		if id, ok := l.byRef[ref]; ok {
			return id, true
		}
		if exists(n) {
			return n, true
		}
	}
	if id, ok := l.bySKU[ref]; ok {
		return id, true
	}
	return "", false
}

// Refs splits a WooCommerce list of product references ("sku-1, id:44").
func Refs(s string) []string { return wooList(s) }
