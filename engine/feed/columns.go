package feed

import (
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
)

// Fields lists the canonical fields in the article's order.
var Fields = []string{FieldID, FieldTitle, FieldURL, FieldCategoryIDs, FieldCategories, FieldDescription,
	FieldPrice, FieldDiscountPrice, FieldPhotos, FieldColor, FieldBrand, FieldStock, FieldMain}

// headerNames are the header names recognised for each field, compared
// after fold: case, accents, spaces and punctuation do not matter.
var headerNames = map[string][]string{
	FieldID:            {"id", "sku", "productid", "itemid", "reference", "variantsku", "articlenumber"},
	FieldTitle:         {"producttitle", "title", "name", "productname", "nom", "titel"},
	FieldURL:           {"producturl", "url", "link", "productlink", "permalink"},
	FieldCategoryIDs:   {"categoriesids", "categoryids", "categoryid", "categoriesid"},
	FieldCategories:    {"categoriestitles", "categories", "category", "categorytitles", "producttype", "productcategory", "kategorie"},
	FieldDescription:   {"description", "bodyhtml", "shortdescription", "productdescription", "beschreibung"},
	FieldPrice:         {"price", "regularprice", "pricetaxexcl", "pricetaxincl", "prix", "preis"},
	FieldDiscountPrice: {"discountprice", "saleprice", "specialprice", "promoprice", "reducedprice"},
	FieldPhotos:        {"photos", "images", "image", "imagelink", "imagesrc", "imageurls", "imageurl", "pictures"},
	FieldColor:         {"color", "colour", "couleur", "farbe"},
	FieldBrand:         {"brand", "vendor", "manufacturer", "marque", "marke"},
	FieldStock:         {"stock", "quantity", "qty", "inventory", "stockquantity", "inventoryquantity"},
	FieldMain:          {"main", "parent", "itemgroupid", "parentid", "mainproduct", "parentsku"},
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
	byFold := map[string]string{}
	for field, names := range headerNames {
		for _, n := range names {
			byFold[n] = field
		}
	}
	taken := map[int]bool{}
	for field, name := range explicit {
		for i, h := range header {
			if fold(h) == fold(name) {
				cols[field] = i
				taken[i] = true
			}
		}
	}
	for i, h := range header {
		if taken[i] {
			continue
		}
		if field, ok := byFold[fold(h)]; ok {
			if _, done := cols[field]; !done {
				cols[field] = i
				continue
			}
		}
		extra[i] = strings.TrimSpace(h)
	}
	return cols, extra
}
