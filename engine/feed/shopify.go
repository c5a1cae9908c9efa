package feed

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/shoptrail/shoptrail/engine/model"
)

// shopifyKnown are Shopify export columns (folded) that are not product
// attributes: read below, or of no use to recommendations.
var shopifyKnown = []string{"handle", "urlhandle", "title", "bodyhtml", "description", "vendor", "productcategory", "type",
	"published", "publishedononlinestore", "status", "option1name", "option1value", "option1linkedto", "option2name", "option2value",
	"option2linkedto", "option3name", "option3value", "option3linkedto", "variantsku", "sku", "variantgrams", "grams",
	"variantinventorytracker", "inventorytracker", "variantinventoryqty", "inventoryquantity", "variantinventorypolicy",
	"continuesellingwhenoutofstock", "variantfulfillmentservice", "fulfillmentservice", "variantprice", "price",
	"variantcompareatprice", "compareatprice", "variantrequiresshipping", "requiresshipping", "varianttaxable", "chargetax",
	"imagesrc", "productimageurl", "imageposition", "imagealttext", "giftcard", "seotitle", "seodescription",
	"variantimage", "variantimageurl", "variantweightunit", "weightunit", "varianttaxcode", "costperitem",
	"variantbarcode", "barcode", "weightvalueinggramsorkilogramsorpoundsorounces"}

// shopifyGroup is the product whose rows (one per variant or image) are
// being read: a Shopify export keeps a handle's rows together.
type shopifyGroup struct {
	handle    string
	main      model.Product
	optNames  [3]string
	simple    bool // one variant, "Title" / "Default Title"
	variants  int
	lo, hi    int64 // the variants' effective prices
	stock     int64
	stockKnow bool
	again     bool // a handle seen before: its rows are apart; its main product is out already
}

// shopifyColumns keeps Shopify's columns out of the attributes and keeps
// only the ID and main mappings [feed.columns] asks for.
func (rd *reader) shopifyColumns(explicit map[string]string) {
	rd.consume(shopifyKnown...)
	for i, h := range rd.header {
		f := fold(h)
		// prices and compare-at prices of other markets ("Price / International")
		if strings.HasPrefix(f, "priceinternational") || strings.HasPrefix(f, "compareatpriceinternational") ||
			strings.HasPrefix(f, "included") || strings.HasPrefix(f, "price") || strings.HasPrefix(f, "compareatprice") ||
			strings.HasPrefix(f, "googleshopping") {
			delete(rd.extra, i)
		}
	}
	// the Shopify columns are read by name; only the ID and the main
	// product's ID follow [feed.columns]
	for f := range rd.cols {
		if _, ok := explicit[f]; !ok && f != FieldCategories {
			delete(rd.cols, f)
		}
	}
	if i, ok := rd.cols[FieldCategories]; ok {
		if _, ok := explicit[FieldCategories]; !ok {
			delete(rd.cols, FieldCategories)
			if fold(rd.header[i]) != "productcategory" {
				rd.extra[i] = strings.TrimSpace(rd.header[i])
			}
		}
	}
}

// shopifyMapping is what the report says of a Shopify export's columns.
var shopifyMapping = []string{"id ← Handle (main products), Variant SKU (variants)", "title ← Title", "description ← Body (HTML)",
	"brand ← Vendor", "categories ← Product Category, Type", "price ← Variant Compare At Price, else Variant Price",
	"discount_price ← Variant Price, when a Compare At Price is higher", "stock ← Variant Inventory Qty", "photos ← Image Src, Variant Image",
	"color, size ← Option1..3 Name / Value"}

// shopifyStatus reads Status (active, draft, archived) and Published
// (TRUE, FALSE; empty publishes).
func shopifyStatus(status, published string) string {
	switch strings.ToLower(status) {
	case "draft":
		return model.StatusDraft
	case "archived":
		return model.StatusArchived
	}
	if isNo(published) {
		return model.StatusUnpublished
	}
	return model.StatusPublished
}

// shopifyRow reads a row of Shopify's product export.
func (rd *reader) shopifyRow(rec []string, line int) error {
	handle := rd.get(rec, "handle", "urlhandle")
	if handle == "" {
		rd.rep.skip(line, "handle", "no Handle")
		return nil
	}
	g := rd.group
	if g == nil || g.handle != handle {
		if err := rd.flushGroup(); err != nil {
			return err
		}
		g = &shopifyGroup{handle: handle}
		if rd.handles()[handle] {
			g.again = true
			rd.rep.note(line, "handle", fmt.Sprintf("the rows of %q are not together: its main product stays as its first rows made it", handle))
		}
		rd.handles()[handle] = true
		rd.group = g
		m := rd.base(rec, line)
		m.ID = handle
		if i, ok := rd.cols[FieldMain]; ok && i < len(rec) && clean(rec[i]) != "" {
			m.ID = clean(rec[i])
		}
		m.Handle = handle
		m.Title = rd.get(rec, "title")
		m.Description = rd.get(rec, "bodyhtml", "description")
		m.Brand = rd.get(rec, "vendor")
		m.Categories = categoryPath(rd.get(rec, "productcategory"))
		if t := rd.get(rec, "type"); t != "" && !slices.Contains(m.Categories, t) {
			m.Categories = append(m.Categories, t)
		}
		m.Photos = photos(rd.get(rec, "imagesrc", "productimageurl"))
		m.Status = shopifyStatus(rd.get(rec, "status"), rd.get(rec, "published", "publishedononlinestore"))
		m.Visibility = model.VisibilityVisible
		m.Type = model.TypeVariable
		m.MainID = ""
		for n := range 3 {
			g.optNames[n] = rd.get(rec, "option"+strconv.Itoa(n+1)+"name")
		}
		g.main = m
	}
	// every row's Image Src is one more photo of the product
	for _, ph := range photos(rd.get(rec, "imagesrc", "productimageurl")) {
		if !slices.Contains(g.main.Photos, ph) {
			g.main.Photos = append(g.main.Photos, ph)
		}
	}
	var values [3]string
	for n := range 3 {
		values[n] = rd.get(rec, "option"+strconv.Itoa(n+1)+"value")
	}
	sku := rd.get(rec, "variantsku", "sku")
	price := rd.get(rec, "variantprice", "price")
	if values[0] == "" && sku == "" && price == "" {
		return nil // an image row
	}
	v := model.Product{Line: line}
	if i, ok := rd.cols[FieldID]; ok && i < len(rec) {
		v.ID = clean(rec[i])
	}
	v.SKU = sku
	if !rd.shopifyPrices(&v, price, rd.get(rec, "variantcompareatprice", "compareatprice")) {
		return nil
	}
	qty := rd.get(rec, "variantinventoryqty", "inventoryquantity")
	_, tracked := rd.byFold["variantinventorytracker"]
	switch {
	case tracked && rd.get(rec, "variantinventorytracker") == "":
		// inventory not tracked: always available
	default:
		rd.stock(&v, qty)
		policy := strings.ToLower(rd.get(rec, "variantinventorypolicy", "continuesellingwhenoutofstock"))
		if v.Stock != nil && *v.Stock <= 0 && (policy == "continue" || isYes(policy)) {
			v.Stock = nil // sold when out of stock
		}
	}
	if b := rd.get(rec, "variantbarcode", "barcode"); b != "" {
		v.Attributes = map[string]string{"Barcode": b}
	}
	if g.variants == 0 && !g.again && (strings.EqualFold(g.optNames[0], "Title") || g.optNames[0] == "") &&
		(values[0] == "" || strings.EqualFold(values[0], "Default Title")) {
		// the only variant of a product without options: a simple product
		g.simple = true
		m := &g.main
		m.Type = model.TypeSimple
		m.SKU, m.Price, m.DiscountPrice, m.Currency, m.Stock = v.SKU, v.Price, v.DiscountPrice, v.Currency, v.Stock
		if v.ID != "" {
			m.ID = v.ID
		}
		for k, val := range v.Attributes {
			if m.Attributes == nil {
				m.Attributes = map[string]string{}
			}
			m.Attributes[k] = val
		}
		g.variants++
		return nil
	}
	if g.simple {
		rd.rep.skip(line, "option1value", "a second variant of a product whose first is its Default Title")
		return nil
	}
	var named []string
	for n := range 3 {
		if values[n] != "" {
			named = append(named, values[n])
			setOption(&v, g.optNames[n], values[n])
		}
	}
	if v.ID == "" {
		v.ID = sku
	}
	if v.ID == "" {
		v.ID = handle + "-" + slug(strings.Join(named, " "))
	}
	v.MainID = g.main.ID
	v.Type = model.TypeVariation
	v.Handle = handle
	v.Title = g.main.Title
	if len(named) > 0 {
		v.Title += " - " + strings.Join(named, " / ")
	}
	v.Brand, v.Categories = g.main.Brand, g.main.Categories
	v.Status, v.Visibility = g.main.Status, g.main.Visibility
	v.Photos = photos(rd.get(rec, "variantimage", "variantimageurl"))
	g.variants++
	if eff := v.EffectivePrice(); g.variants == 1 || g.lo > eff {
		g.lo = eff
	}
	if eff := v.EffectivePrice(); eff > g.hi {
		g.hi = eff
	}
	if g.variants == 1 {
		g.stockKnow = true
	}
	if v.Stock != nil {
		g.stock += *v.Stock
	} else {
		g.stockKnow = false
	}
	if g.main.Currency == "" {
		g.main.Currency = v.Currency
	}
	return rd.emit(v, handle, sku)
}

// handles are the handles read so far.
func (rd *reader) handles() map[string]bool {
	if rd.links.handles == nil {
		rd.links.handles = map[string]bool{}
	}
	return rd.links.handles
}

// shopifyPrices: Variant Compare At Price is the original, higher price
// (the feed's Price) and Variant Price what is paid (its DiscountPrice).
func (rd *reader) shopifyPrices(v *model.Product, price, compare string) bool {
	if !rd.prices(v, price, "", true) {
		return false
	}
	if compare == "" {
		return true
	}
	c, _, err := parsePrice(compare)
	if err != nil {
		rd.rep.note(v.Line, "compare_at_price", err.Error()+": ignored")
		return true
	}
	if c > v.Price {
		v.Price, v.DiscountPrice = c, v.Price
	}
	return true
}

// flushGroup hands on the main product of the handle read so far.
func (rd *reader) flushGroup() error {
	g := rd.group
	rd.group = nil
	if g == nil || g.again {
		return nil
	}
	m := g.main
	if !g.simple {
		if g.variants == 0 {
			rd.rep.skip(m.Line, FieldPrice, "no variant with a price")
			return nil
		}
		m.Price = g.lo
		if g.hi > g.lo {
			m.PriceMax = g.hi
		}
		if g.stockKnow {
			s := g.stock
			m.Stock = &s
		}
	}
	if m.Currency == "" {
		m.Currency = defCurrency
	}
	return rd.emit(m, g.handle, m.SKU)
}
