package catalog

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/shoptrail/shoptrail/engine/feed"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/search"
)

func importFile(t *testing.T, c *Catalog, name string) feed.Report {
	t.Helper()
	f, err := os.Open("../feed/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := c.Import(f, name)
	if err != nil {
		t.Fatalf("import %s: %v; report %+v", name, err, rep)
	}
	return rep
}

func itemIDs(items []Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}

// TestWooCommerceImport: the WooCommerce sample imports with 0 skipped
// rows; variable parents are main products priced from their variations,
// which name them by id:N or SKU before or after them; grouped products
// list their children; hidden and unpublished products are stored, marked
// and never searched or recommended.
func TestWooCommerceImport(t *testing.T) {
	c := open(t)
	c.SetProductURLTemplate("https://woo.example/product/{handle}/")
	rep := importFile(t, c, "woocommerce-export.csv")
	if rep.Format != feed.FormatWooCommerce || rep.Skipped != 0 || rep.Imported != 17 || rep.Variations != 6 || rep.Unlisted != 4 ||
		rep.NoURL != 0 || len(rep.Warnings) != 0 || len(rep.Errors) != 0 {
		t.Fatalf("report %+v", rep)
	}
	stored, err := c.Report()
	if err != nil || stored.Format != feed.FormatWooCommerce || stored.Skipped != 0 {
		t.Errorf("stored report %+v %v", stored, err)
	}
	hoodie, err := c.Product("44")
	if err != nil {
		t.Fatal(err)
	}
	if hoodie.Price != 4200 || hoodie.PriceMax != 4500 || hoodie.Stock == nil || *hoodie.Stock != 17 || hoodie.URL != "https://woo.example/product/hoodie/" ||
		len(hoodie.Variations) != 3 || !hoodie.InSearch || hoodie.Status != model.StatusPublished {
		t.Errorf("hoodie (variations before it, Parent id:44): %+v", hoodie)
	}
	colours := map[string]int64{}
	for _, v := range hoodie.Variations {
		colours[v.Color] = v.EffectivePrice()
		if v.MainID != "44" || v.URL != hoodie.URL {
			t.Errorf("variation %s: main %q, URL %q", v.ID, v.MainID, v.URL)
		}
	}
	if colours["Blue"] != 4200 || colours["Green"] != 4500 || colours["Red"] != 4200 {
		t.Errorf("the variations' own prices and colours: %v", colours)
	}
	tee, _ := c.Product("50")
	if tee.Price != 1800 || tee.PriceMax != 2000 || len(tee.Variations) != 3 || tee.Stock != nil {
		t.Errorf("V-neck (Parent by SKU; its disabled XL at 24.00 not in the range): %+v", tee)
	}
	group, _ := c.Product("60")
	if strings.Join(group.Children, ",") != "10,11,70" || group.Price != 200 || group.PriceMax != 5500 {
		t.Errorf("grouped: children %v price %d–%d", group.Children, group.Price, group.PriceMax)
	}
	hidden, _ := c.Product("90")
	if hidden.InSearch || hidden.InRecommendations || hidden.Visibility != model.VisibilityHidden {
		t.Errorf("the product API says a hidden product's status: %+v", hidden)
	}
	draft, _ := c.Product("91")
	if draft.InSearch || draft.Status != model.StatusDraft {
		t.Errorf("draft: %+v", draft)
	}

	// shoppers' search: no hidden, draft or private product, no disabled variation
	items, res, err := c.Search(search.Query{Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	got := itemIDs(items)
	for _, id := range []string{"90", "91", "92"} {
		if slices.Contains(got, id) {
			t.Errorf("search shows %s: %v", id, got)
		}
	}
	if res.Total != 8 {
		t.Errorf("search: %d products %v, want 8 (10 main products, less the hidden, draft and private ones... )", res.Total, got)
	}
	for _, it := range items {
		if it.ID == "50" && len(it.Variations) != 2 {
			t.Errorf("search shows the disabled variation: %d variations", len(it.Variations))
		}
	}
	if items, _, _ := c.Search(search.Query{Text: "hat"}); len(items) != 0 {
		t.Errorf("search for the draft hat: %v", itemIDs(items))
	}
	if items, _, _ := c.Search(search.Query{Color: "Blue"}); strings.Join(itemIDs(items), ",") != "44" {
		t.Errorf("blue: %v (the V-neck's only blue variation is disabled)", itemIDs(items))
	}
	// the admin sees all, and filters
	all, res, _ := c.Search(search.Query{For: search.ForAdmin, Size: 100})
	if res.Total != 11 {
		t.Errorf("admin: %d %v", res.Total, itemIDs(all))
	}
	if items, _, _ := c.Search(search.Query{For: search.ForAdmin, Status: "unpublished"}); strings.Join(itemIDs(items), ",") != "91,92" {
		t.Errorf("unpublished: %v", itemIDs(items))
	}
	if items, _, _ := c.Search(search.Query{For: search.ForAdmin, Visibility: "hidden"}); strings.Join(itemIDs(items), ",") != "90" {
		t.Errorf("hidden: %v", itemIDs(items))
	}

	// recommendations
	similar, err := c.Similar("10", 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range itemIDs(similar) {
		if id == "90" || id == "91" || id == "92" {
			t.Errorf("similar to the beanie: %v", itemIDs(similar))
		}
	}
	top, _ := c.TopInCategory("10", 10)
	if strings.Join(itemIDs(top), ",") != "11" {
		t.Errorf("top in Accessories: %v (not the hidden sample, not the draft hat)", itemIDs(top))
	}
	if err := c.st.Project(func(tx *store.Tx) error {
		for _, other := range []string{"90", "91", "11"} {
			if err := tx.AddPairCount(store.ViewedTogether, "10", other, 5); err != nil {
				return err
			}
			if err := tx.AddPairCount(store.ViewedTogether, other, "10", 5); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	together, _ := c.Together(store.ViewedTogether, "10", 10)
	if strings.Join(itemIDs(together), ",") != "11" {
		t.Errorf("viewed together: %v", itemIDs(together))
	}
}

func TestShopifyAndGoogleImports(t *testing.T) {
	c := open(t)
	c.SetProductURLTemplate("https://shop.example/products/{handle}")
	rep := importFile(t, c, "shopify-export.csv")
	if rep.Format != feed.FormatShopify || rep.Skipped != 0 || rep.Imported != 11 || rep.Variations != 5 || rep.Unlisted != 3 || rep.NoURL != 0 {
		t.Fatalf("report %+v", rep)
	}
	tee, _ := c.Product("classic-tee")
	if len(tee.Variations) != 3 || tee.Price != 2500 || tee.PriceMax != 2700 {
		t.Errorf("classic-tee: %+v", tee)
	}
	items, _, _ := c.Search(search.Query{Text: "scarf"})
	if len(items) != 0 {
		t.Errorf("an unpublished scarf is found: %v", itemIDs(items))
	}

	c2 := open(t)
	rep = importFile(t, c2, "google-merchant.tsv")
	if rep.Format != feed.FormatGoogle || rep.Skipped != 0 || rep.Imported != 4 || rep.Variations != 2 {
		t.Fatalf("report %+v", rep)
	}
	group, err := c2.Product("TR3")
	if err != nil {
		t.Fatal(err)
	}
	if group.Title != "Trail Runner 3" || len(group.Variations) != 2 || group.Price != 11900 || group.PriceMax != 13900 {
		t.Errorf("the main product made for item_group_id TR3: %+v", group)
	}
	if items, _, _ := c2.Search(search.Query{Text: "trail"}); strings.Join(itemIDs(items), ",") != "TR3" {
		t.Errorf("search: %v", itemIDs(items))
	}
}

// TestVariationsWithoutTheirParent: a variation whose parent is missing is
// imported as a product of its own, and the report says so.
func TestVariationsWithoutTheirParent(t *testing.T) {
	c := open(t)
	data := "ID,Type,SKU,Name,Published,Visibility in catalog,Regular price,Parent\n" +
		"5,variation,v-5,Lost - Red,1,visible,10,no-such-parent\n" +
		"6,simple,s-6,Fine,1,visible,12,\n"
	rep, err := c.Import(strings.NewReader(data), "t")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Imported != 2 || rep.Variations != 0 || rep.Skipped != 0 || len(rep.Errors) != 1 || rep.Errors[0].Line != 2 ||
		!strings.Contains(rep.Errors[0].Message, `"no-such-parent" is not in the feed`) {
		t.Fatalf("report %+v", rep)
	}
	if p, _ := c.Product("5"); p.MainID != "" {
		t.Errorf("%+v", p)
	}
	if items, _, _ := c.Search(search.Query{Text: "lost"}); len(items) != 1 {
		t.Errorf("search: %v", itemIDs(items))
	}
	// in a feed of the article's format, Main names a main product that may
	// come in a later feed: the variation stays one (found by its ID)
	rep, err = c.ImportWith(strings.NewReader("ID;Title;Price;Main\n7;Orphan - Red;1;999\n8;Main;2;\n9;Main - Blue;2;8\n"), "t", ImportOptions{Force: true})
	if err != nil || rep.Variations != 2 || len(rep.Errors) != 0 {
		t.Fatalf("%v %+v", err, rep)
	}
	if p, _ := c.Product("7"); p.MainID != "999" {
		t.Errorf("orphan: %+v", p)
	}
}
