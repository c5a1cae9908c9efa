package feed

import (
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Canonical field names.
const (
	FieldID            = "id"
	FieldTitle         = "title"
	FieldURL           = "url"
	FieldCategoryIDs   = "category_ids"
	FieldCategories    = "categories"
	FieldDescription   = "description"
	FieldPrice         = "price"
	FieldDiscountPrice = "discount_price"
	FieldPhotos        = "photos"
	FieldColor         = "color"
	FieldBrand         = "brand"
	FieldStock         = "stock"
	FieldMain          = "main"
	FieldSize          = "size"
)

// Fields lists the canonical fields in the article's order.
var Fields = []string{FieldID, FieldTitle, FieldURL, FieldCategoryIDs, FieldCategories, FieldDescription,
	FieldPrice, FieldDiscountPrice, FieldPhotos, FieldColor, FieldBrand, FieldStock, FieldMain, FieldSize}

// headerNames are the header names recognised for each field, compared
// after fold: case, accents, spaces and punctuation do not matter. When
// several columns name the same field, the name earlier in its list wins
// (a WooCommerce export's "Description" over its "Short description",
// whichever comes first in the file).
var headerNames = map[string][]string{
	FieldID:            {"id", "sku", "productid", "itemid", "reference", "variantsku", "articlenumber"},
	FieldTitle:         {"producttitle", "title", "name", "productname", "nom", "titel"},
	FieldURL:           {"producturl", "url", "link", "productlink", "permalink"},
	FieldCategoryIDs:   {"categoriesids", "categoryids", "categoryid", "categoriesid"},
	FieldCategories:    {"categoriestitles", "categories", "category", "categorytitles", "producttype", "productcategory", "kategorie"},
	FieldDescription:   {"description", "bodyhtml", "shortdescription", "productdescription", "beschreibung"},
	FieldPrice:         {"price", "regularprice", "pricetaxexcl", "pricetaxincl", "prix", "preis"},
	FieldDiscountPrice: {"discountprice", "saleprice", "specialprice", "promoprice", "reducedprice"},
	FieldPhotos:        {"photos", "images", "image", "imagelink", "imagesrc", "imageurls", "imageurl", "pictures", "productimageurl"},
	FieldColor:         {"color", "colour", "couleur", "farbe"},
	FieldBrand:         {"brand", "vendor", "manufacturer", "marque", "marke", "brands"},
	FieldStock:         {"stock", "quantity", "qty", "inventory", "stockquantity", "inventoryquantity", "variantinventoryqty"},
	FieldMain:          {"main", "parent", "itemgroupid", "parentid", "mainproduct", "parentsku"},
	FieldSize:          {"size", "taille", "grosse", "talla", "rozmiar"},
}

// fold makes a header name comparable: lower case, no accents, letters and
// digits only. "Catégories IDs" and "categories_ids" both fold to
// "categoriesids".
func fold(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// mapHeader works out which column holds which field. explicit maps a
// field to a header name (from [feed.columns]) and wins over recognition.
// Columns it does not map are kept as product attributes.
func mapHeader(header []string, explicit map[string]string) (cols map[string]int, extra map[int]string) {
	cols, extra = map[string]int{}, map[int]string{}
	taken := map[int]bool{}
	for field, name := range explicit {
		for i, h := range header {
			if fold(h) == fold(name) {
				cols[field] = i
				taken[i] = true
			}
		}
	}
	for _, field := range Fields {
		if _, done := cols[field]; done {
			continue
		}
		best, rank := -1, len(headerNames[field])
		for i, h := range header {
			if taken[i] {
				continue
			}
			if r := slices.Index(headerNames[field], fold(h)); r >= 0 && r < rank {
				best, rank = i, r
			}
		}
		if best >= 0 {
			cols[field] = best
			taken[best] = true
		}
	}
	for i, h := range header {
		if !taken[i] {
			extra[i] = strings.TrimSpace(h)
		}
	}
	return cols, extra
}

// fold2 lowers s and drops its accents, keeping everything else.
func fold2(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}
