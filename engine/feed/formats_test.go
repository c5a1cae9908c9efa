package feed

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
)

func readFile(t *testing.T, name string, o Options) (map[string]model.Product, []model.Product, Report, *Links) {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ps []model.Product
	var rep Report
	links, err := ReadWith(f, o, &rep, func(p model.Product) error {
		ps = append(ps, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return byID(ps), ps, rep, links
}

// TestWooCommerceExport reads a file in the format of WooCommerce's
// product CSV exporter (WC_Product_CSV_Exporter: UTF-8 with a BOM, ", "
// lists, \n in descriptions, Parent as SKU or id:N, attribute pairs) with
// a variable product whose variations come before it.
func TestWooCommerceExport(t *testing.T) {
	m, ps, rep, links := readFile(t, "woocommerce-export.csv", Options{URLTemplate: "https://woo.example/product/{handle}/"})
	if rep.Format != FormatWooCommerce || rep.Skipped != 0 || rep.Rows != 17 || len(ps) != 17 || rep.Encoding != "UTF-8" {
		t.Fatalf("%d products; report %+v", len(ps), rep)
	}
	if !links.Pending {
		t.Error("variations name their parents by reference: the import must settle them")
	}
	beanie := m["10"]
	if beanie.Description != "<p>A warm beanie, knitted from <strong>merino</strong>.</p>\n<ul>\n<li>One size</li>\n<li>Hand wash, 30°C</li>\n</ul>" ||
		beanie.Attributes["Short description"] != "This is a simple product." {
		t.Errorf("Description, not Short description, is the description, its \\n newlines: %q / %q", beanie.Description, beanie.Attributes)
	}
	if beanie.Price != 2000 || beanie.DiscountPrice != 1800 || beanie.Color != "Red" || beanie.Brand != "Northpeak" || beanie.SKU != "woo-beanie" ||
		strings.Join(beanie.Categories, "|") != "Clothing|Accessories" || len(beanie.Photos) != 2 || beanie.Stock != nil ||
		beanie.URL != "https://woo.example/product/beanie/" || beanie.Type != model.TypeSimple {
		t.Errorf("beanie: %+v", beanie)
	}
	if _, ok := beanie.Attributes["Attribute 1 name"]; ok || beanie.Attributes["Tags"] != "winter, wool" {
		t.Errorf("attribute pairs are not raw attributes; Tags are: %v", beanie.Attributes)
	}
	hoodie := m["44"]
	if hoodie.Type != model.TypeVariable || hoodie.Price != 0 || hoodie.MainID != "" || !strings.Contains(hoodie.Description, "\"kangaroo\" pocket") ||
		!strings.Contains(hoodie.Description, "\n") || hoodie.Attributes["Color"] != "Blue, Green, Red" {
		t.Errorf("the variable parent is kept, its price left to its variations: %+v", hoodie)
	}
	for id, want := range map[string]struct {
		main, color, size, stock string
		price, sale              int64
	}{
		"45": {"id:44", "Blue", "", "10", 4500, 4200},
		"46": {"id:44", "Green", "", "0", 4500, 0},
		"51": {"woo-vneck-tee", "Red", "Large", "8", 2000, 1800},
		"52": {"woo-vneck-tee", "Green", "Medium", "unknown", 2000, 0},
	} {
		v := m[id]
		if v.MainID != want.main || v.Color != want.color || v.Size != want.size || stockText(v) != want.stock || v.Price != want.price ||
			v.DiscountPrice != want.sale || v.Type != model.TypeVariation || v.URL != "" {
			t.Errorf("variation %s: %+v, want %+v", id, v, want)
		}
	}
	if m["45"].Attributes["Logo"] != "Yes" {
		t.Errorf("a named attribute: %v", m["45"].Attributes)
	}
	if g := m["60"]; g.Type != model.TypeGrouped || strings.Join(g.Children, "|") != "woo-beanie|woo-belt|id:70" {
		t.Errorf("grouped: %+v", g)
	}
	if e := m["80"]; e.URL != "https://mercantile.wordpress.org/product/wordpress-pennant/" || e.Price != 1105 {
		t.Errorf("external: %+v", e)
	}
	if p := m["70"]; p.SKU != "" || p.Type != model.TypeSimple || p.Price != 300 {
		t.Errorf("a product without SKU, typed \"simple, downloadable, virtual\": %+v", p)
	}
	for id, want := range map[string]struct {
		status, visibility string
		search, recommend  bool
	}{
		"10": {model.StatusPublished, model.VisibilityVisible, true, true},
		"90": {model.StatusPublished, model.VisibilityHidden, false, false},
		"91": {model.StatusDraft, model.VisibilityVisible, false, false},
		"92": {model.StatusPrivate, model.VisibilityVisible, false, false},
		"53": {model.StatusPrivate, model.VisibilityVisible, false, false},
	} {
		p := m[id]
		if p.Status != want.status || p.Visibility != want.visibility || p.Searchable() != want.search || p.Recommendable() != want.recommend {
			t.Errorf("%s: status %q visibility %q search %v recommend %v, want %+v", id, p.Status, p.Visibility, p.Searchable(), p.Recommendable(), want)
		}
	}
	if rep.Unlisted != 4 {
		t.Errorf("unlisted %d, want 4 (hidden, draft, private, a disabled variation)", rep.Unlisted)
	}
	if stockText(m["92"]) != "0" || stockText(m["93"]) != "unknown" || m["93"].Price != 123450 {
		t.Errorf("out of stock %+v; on backorder %+v", m["92"], m["93"])
	}
	if p := m["93"]; p.Title != `Poster, A2 "Summit"` || strings.Join(p.Categories, "|") != "Decor|Posters" || p.Attributes["Paper"] != "Matte, 200 g" {
		t.Errorf("commas and quotes in quoted fields, \\, in a list: %+v", p)
	}
	// resolved against the whole file
	exists := func(id string) bool { _, ok := m[id]; return ok }
	for ref, want := range map[string]string{"id:44": "44", "woo-vneck-tee": "50", "50": "50", "id:70": "70", "woo-belt": "11", "nope": ""} {
		if got, _ := links.Resolve(ref, exists); got != want {
			t.Errorf("Resolve(%q) = %q, want %q", ref, got, want)
		}
	}
}

func stockText(p model.Product) string {
	if p.Stock == nil {
		return "unknown"
	}
	return strconv.FormatInt(*p.Stock, 10)
}

// TestShopifyExport reads a file in the format of Shopify's product CSV
// export: rows grouped by Handle, one per variant or extra image.
func TestShopifyExport(t *testing.T) {
	m, ps, rep, _ := readFile(t, "shopify-export.csv", Options{URLTemplate: "https://shop.example/products/{handle}"})
	if rep.Format != FormatShopify || rep.Skipped != 0 || rep.Rows != 10 {
		t.Fatalf("report %+v", rep)
	}
	if len(ps) != 11 {
		t.Errorf("%d products, want 11 (2 with 5 variants, 4 simple): %v", len(ps), ps)
	}
	tee := m["classic-tee"]
	if tee.Title != "Classic Tee" || tee.Type != model.TypeVariable || tee.Price != 2500 || tee.PriceMax != 2700 || tee.Brand != "Northpeak" ||
		!strings.HasPrefix(tee.Description, "<p>Our classic tee") || !strings.Contains(tee.Description, "\n<li>Machine wash, cold</li>") ||
		tee.Categories[len(tee.Categories)-1] != "T-Shirts" || len(tee.Photos) != 3 || stockText(tee) != "8" ||
		tee.URL != "https://shop.example/products/classic-tee" || tee.Attributes["Tags"] != "cotton, summer" {
		t.Errorf("classic-tee: %+v", tee)
	}
	red := m["CT-RED-S"]
	if red.MainID != "classic-tee" || red.Color != "Red" || red.Size != "S" || red.Price != 3000 || red.DiscountPrice != 2500 ||
		red.Title != "Classic Tee - Red / S" || red.URL != "https://shop.example/products/classic-tee" || stockText(red) != "5" {
		t.Errorf("Compare At Price is the price, Variant Price the discount price: %+v", red)
	}
	if b := m["CT-BLU-S"]; b.Price != 2700 || b.DiscountPrice != 0 || b.Color != "Blue" {
		t.Errorf("no Compare At Price: %+v", b)
	}
	if tote := m["canvas-tote"]; tote.Type != model.TypeSimple || tote.SKU != "TOTE-01" || tote.Price != 2900 || tote.DiscountPrice != 2400 ||
		tote.MainID != "" || strings.Join(tote.Categories, "|") != "Apparel & Accessories|Handbags, Wallets & Cases|Handbags|Tote Handbags|Bags" {
		t.Errorf("Default Title: a simple product: %+v", tote)
	}
	if _, ok := m["TOTE-01"]; ok {
		t.Error("a Default Title variant is no product of its own")
	}
	for _, id := range []string{"wool-socks-23-25cm", "wool-socks-25-27cm"} {
		if s := m[id]; s.MainID != "wool-socks" || s.Stock != nil || s.Size == "" {
			t.Errorf("a variant without SKU, inventory not tracked: %+v", s)
		}
	}
	for id, want := range map[string]string{"winter-parka": model.StatusDraft, "old-cap": model.StatusArchived, "hidden-scarf": model.StatusUnpublished, "canvas-tote": model.StatusPublished} {
		if p := m[id]; p.Status != want || p.Searchable() != (want == model.StatusPublished) {
			t.Errorf("%s: status %q, want %q", id, p.Status, want)
		}
	}
	if rep.NoURL != 0 {
		t.Errorf("every product has its handle's URL: %d without", rep.NoURL)
	}
}

// TestShopifyNewExport: the export's newer header names (URL handle,
// Description, Option1 name, SKU, Price, Compare-at price, Product image
// URL) are read the same way.
func TestShopifyNewExport(t *testing.T) {
	data := "URL handle,Title,Description,Vendor,Type,Tags,Published on online store,Status,Option1 name,Option1 value,Option2 name,Option2 value,SKU,Price,Compare-at price,Product image URL,Price / International\n" +
		"shirt,Shirt,\"<p>Soft, cotton</p>\",Example,Shirts,,TRUE,Active,Size,S,Color,Red,001,20.00,25.00,https://cdn.example/shirt-1.jpg,\n" +
		"shirt,,,,,,,,,M,,Red,002,22.00,26.00,,\n" +
		"shirt,,,,,,,,,,,,,,,https://cdn.example/shirt-2.jpg,\n" +
		"mug,Mug,,Example,Mugs,,TRUE,Draft,Title,Default Title,,,MUG,9.99,,,\n"
	ps, rep, err := read(t, []byte(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := byID(ps)
	if rep.Format != FormatShopify || rep.Skipped != 0 || len(ps) != 4 {
		t.Fatalf("%d products, report %+v", len(ps), rep)
	}
	if p := m["shirt"]; p.Price != 2000 || p.PriceMax != 2200 || len(p.Photos) != 2 || p.Description != "<p>Soft, cotton</p>" || len(p.Attributes) != 0 {
		t.Errorf("shirt: %+v", p)
	}
	if p := m["002"]; p.Size != "M" || p.Color != "Red" || p.Price != 2600 || p.DiscountPrice != 2200 || p.MainID != "shirt" {
		t.Errorf("002: %+v", p)
	}
	if p := m["mug"]; p.Status != "draft" || p.SKU != "MUG" || p.Price != 999 {
		t.Errorf("mug: %+v", p)
	}
}

func TestShopifyIDsFromFeedColumns(t *testing.T) {
	data := "Handle,Title,Option1 Name,Option1 Value,Variant SKU,Variant Price,Product ID,Variant ID\n" +
		"tee,Tee,Size,S,T-S,10.00,111,901\n" +
		"tee,,,M,T-M,10.00,111,902\n" +
		"mug,Mug,Title,Default Title,MUG,5.00,222,903\n"
	ps, rep, err := read(t, []byte(data), map[string]string{"main": "Product ID", "id": "Variant ID"})
	if err != nil {
		t.Fatal(err)
	}
	m := byID(ps)
	if rep.Format != FormatShopify || m["111"].Title != "Tee" || m["901"].MainID != "111" || m["902"].Size != "M" || m["903"].Title != "Mug" {
		t.Errorf("[feed.columns] main and id: %v", m)
	}
}

func TestGoogleMerchantFeed(t *testing.T) {
	m, _, rep, links := readFile(t, "google-merchant.tsv", Options{})
	if rep.Format != FormatGoogle || rep.Delimiter != "\t" || rep.Skipped != 0 {
		t.Fatalf("report %+v", rep)
	}
	if p := m["TR3-42"]; p.MainID != "TR3" || p.Size != "42" || len(p.Photos) != 3 || p.Price != 13900 || p.DiscountPrice != 11900 || p.Stock != nil {
		t.Errorf("TR3-42: %+v", p)
	}
	if p := m["TR3-43"]; stockText(p) != "0" {
		t.Errorf("out_of_stock: %+v", p)
	}
	if !links.MakesGroups() || !links.Pending {
		t.Error("item_group_id without a row of its own: a main product is made")
	}
}

func TestFormatDetection(t *testing.T) {
	seed, _ := os.ReadFile("testdata/feed-sample.csv")
	for _, tt := range []struct{ header, want string }{
		{strings.SplitN(string(seed), "\n", 2)[0], FormatShoptrail},
		{"ID,Type,SKU,Name,Published,Is featured?,Visibility in catalog,Regular price", FormatWooCommerce},
		{"Handle,Title,Body (HTML),Vendor,Variant SKU,Variant Price", FormatShopify},
		{"URL handle,Title,Description,Option1 name,Option1 value,SKU,Price", FormatShopify},
		{"id\ttitle\tlink\tprice\tavailability", FormatGoogle},
		{"SKU;Name;Price", FormatGeneric},
	} {
		if got := detect(splitHeader(tt.header)); got != tt.want {
			t.Errorf("%q: %s, want %s", tt.header, got, tt.want)
		}
	}
}

func splitHeader(h string) []string {
	sep := ","
	for _, s := range []string{";", "\t"} {
		if strings.Contains(h, s) {
			sep = s
		}
	}
	var out []string
	for _, f := range strings.Split(h, sep) {
		out = append(out, strings.Trim(f, `"`))
	}
	return out
}

func TestURLTemplate(t *testing.T) {
	for _, tt := range []struct{ tmpl, handle, id, sku, want string }{
		{"https://s.example/products/{handle}", "tee", "1", "", "https://s.example/products/tee"},
		{"https://s.example/?p={id}", "", "44", "", "https://s.example/?p=44"},
		{"https://s.example/p/{sku}", "", "1", "A B/C", "https://s.example/p/A%20B%2FC"},
		{"https://s.example/p/{sku}", "", "1", "", ""},
	} {
		if got := fillURL(tt.tmpl, tt.handle, tt.id, tt.sku); got != tt.want {
			t.Errorf("fillURL(%q) = %q, want %q", tt.tmpl, got, tt.want)
		}
	}
	var rep Report
	rep.NoURL, rep.Imported = 3, 10
	rep.Finish("")
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "3 of the 10 products have no URL") || !strings.Contains(rep.Warnings[0], "product_url_template") {
		t.Errorf("warnings %q", rep.Warnings)
	}
}

func TestWooScheduledSales(t *testing.T) {
	data := "ID,Type,Name,Published,Visibility in catalog,Date sale price starts,Date sale price ends,Sale price,Regular price\n" +
		"1,simple,Running,1,visible,2026-11-01 0:00:00,2026-11-30 23:59:59,8,10\n" +
		"2,simple,Ended,1,visible,,2026-11-27 0:00:00,8,10\n" +
		"3,simple,Not yet,1,visible,2026-12-01,,8,10\n" +
		"4,simple,Last day,1,visible,,2026-11-28,8,10\n" +
		"5,simple,Unscheduled,1,visible,,,8,10\n" +
		"6,simple,Bad date,1,visible,soon,,8,10\n"
	var ps []model.Product
	var rep Report
	now := time.Date(2026, 11, 28, 15, 0, 0, 0, time.UTC)
	if _, err := ReadWith(strings.NewReader(data), Options{Now: func() time.Time { return now }}, &rep, func(p model.Product) error {
		ps = append(ps, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	m := byID(ps)
	for id, want := range map[string]int64{"1": 800, "2": 1000, "3": 1000, "4": 800, "5": 800, "6": 800} {
		p := m[id]
		if got := p.EffectivePrice(); got != want {
			t.Errorf("%s (%s): pays %d, want %d", id, m[id].Title, got, want)
		}
	}
	if len(rep.Errors) != 1 || rep.Errors[0].Line != 7 {
		t.Errorf("the bad date is noted: %+v", rep.Errors)
	}
}

func TestWooText(t *testing.T) {
	for in, want := range map[string]string{
		`a\nb`:        "a\nb",
		`C:\\new`:     `C:\new`,
		"real\nlines": "real\nlines",
		`no escapes`:  "no escapes",
	} {
		if got := wooText(in); got != want {
			t.Errorf("wooText(%q) = %q, want %q", in, got, want)
		}
	}
	if got := strings.Join(wooList(`a, b\, c,d`), "|"); got != "a|b, c|d" {
		t.Errorf("wooList: %q", got)
	}
}
