package web_test

import (
	"bytes"
	"context"
	"hash/fnv"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/feed"
)

const wooUploads = "https://woo.example/wp-content/uploads/2026/11/"

func wooSample(t *testing.T) string {
	b, err := os.ReadFile("../feed/testdata/woocommerce-export.csv")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wooApp(t *testing.T) *enginetest.App {
	return enginetest.NewApp(t, func(c *config.Config) {
		c.Demo.Enabled = false
		c.Feed.ProductURLTemplate = "https://woo.example/product/{handle}/"
	})
}

// TestWooCommerceExportThroughTheAPI: the WooCommerce sample imported
// through the API reports 0 skipped rows; the product API says a product's
// status and lists a variable product's variations with their own prices
// and colours; search and recommendations never show a hidden or
// unpublished product.
func TestWooCommerceExportThroughTheAPI(t *testing.T) {
	a := wooApp(t)
	st, job := importJob(t, a, wooSample(t), "")
	rep := job.Report
	if st != 202 || job.State != "done" || rep.Format != feed.FormatWooCommerce || rep.Skipped != 0 || rep.Imported != 17 || rep.Variations != 6 || rep.NoURL != 0 {
		t.Fatalf("import: %d %+v", st, job)
	}
	var report feed.Report
	if st := a.Do(t, "GET", "/api/v1/feed/report", nil, &report, a.Auth()...); st != 200 || report.Format != "WooCommerce" || report.Skipped != 0 || report.Unlisted != 4 {
		t.Errorf("report: %d %+v", st, report)
	}
	var hoodie catalog.Item
	if st := a.Do(t, "GET", "/api/v1/products/44", nil, &hoodie, a.Auth()...); st != 200 || len(hoodie.Variations) != 3 || hoodie.Price != 4200 || hoodie.PriceMax != 4500 {
		t.Fatalf("hoodie: %d %+v", st, hoodie)
	}
	var raw map[string]any
	a.Do(t, "GET", "/api/v1/products/90", nil, &raw, a.Auth()...)
	if raw["status"] != "published" || raw["visibility"] != "hidden" || raw["inSearch"] != false || raw["inRecommendations"] != false {
		t.Errorf("the product API says a hidden product's status: %v", raw)
	}
	raw = nil
	a.Do(t, "GET", "/api/v1/products/91", nil, &raw, a.Auth()...)
	if raw["status"] != "draft" || raw["inSearch"] != false {
		t.Errorf("draft: %v", raw)
	}
	var res searchResult
	a.Do(t, "GET", "/api/v1/products/search?size=100", nil, &res, a.Auth()...)
	for _, hidden := range []string{"90", "91", "92"} {
		if strings.Contains(","+ids(res.Products)+",", ","+hidden+",") {
			t.Errorf("search shows %s: %s", hidden, ids(res.Products))
		}
	}
	var rec struct{ Products []catalog.Item }
	a.Do(t, "GET", "/api/v1/products/10/recommendations?kind=top_in_category", nil, &rec, a.Auth()...)
	if ids(rec.Products) != "11" {
		t.Errorf("top in category: %s", ids(rec.Products))
	}
	// viewed and bought together, with a hidden product among them
	view := func(id, sess, product string) map[string]any {
		return map[string]any{"id": id, "type": "product_view", "anonymous_id": "a-" + sess, "session_id": sess,
			"url": "https://woo.example/product/x/", "props": map[string]any{"product_id": product}}
	}
	var ans answer
	a.Do(t, "POST", "/t", batch(view("1", "s1", "10"), view("2", "s1", "90"), view("3", "s1", "11"), view("4", "s2", "10"), view("5", "s2", "90")), &ans)
	a.Fold(t)
	rec.Products = nil
	a.Do(t, "GET", "/api/v1/products/10/recommendations?kind=viewed_together", nil, &rec, a.Auth()...)
	if ids(rec.Products) != "11" {
		t.Errorf("viewed together with the beanie: %s (the hidden sample was viewed more, and is left out)", ids(rec.Products))
	}
}

// TestProductsPages: the Products list shows every product with its
// status, pages and filters; a product's page shows its variations,
// attributes and recommendations; feed values are escaped.
func TestProductsPages(t *testing.T) {
	a := wooApp(t)
	evil := "\n\"99\",simple,evil,,\"<img src=x onerror=alert(1)>\",1,0,visible,,\"<script>alert(2)</script><p>Nice</p>\",,,taxable,,1,3,,0,0,,,,,1,,,5,Decor,,,,,,,,,,,,0,,,,,,,,,,,\n"
	if st, job := importJob(t, a, strings.TrimRight(wooSample(t), "\n")+evil, ""); st != 202 || job.Report.Skipped != 0 || job.Report.Imported != 18 {
		t.Fatalf("import: %d %+v", st, job.Report)
	}
	c := signedIn(t, a)
	for path, want := range map[string][]string{
		"/products":                    {"Hoodie", "42.00 – 45.00 EUR", "Secret Sample", "hidden", "draft", "not published", "WooCommerce", "12 main products", `<option value="">Any brand</option><option value="Northpeak">Northpeak (3)</option><option value="Velora">`},
		"/products?status=unpublished": {"Draft Hat", "Private Mug", "2 main products"},
		"/products?visibility=hidden":  {"Secret Sample", "1 main product"},
		"/products?q=hodie":            {"Hoodie"},
		"/products?brand=Velora":       {"V-Neck T-Shirt", "1 main product", `<option value="Velora" selected>`},
		"/products?category=Hoodies":   {"Hoodie", "1 main product"},
		"/products/44":                 {"Hoodie", "Blue", "Green", "Red", "42.00", "45.00", "Logo", "Soft fleece", "Similar products", "Viewed together", "Bought together"},
		"/products/50":                 {"V-Neck T-Shirt", "XL", "private", "24.00"},
		"/products/60":                 {"Products in this group", "Beanie", "Belt", "Single"},
		"/products/90":                 {"not in search", "not in recommendations"},
	} {
		resp, page := c.do("GET", path, nil)
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
			continue
		}
		for _, w := range want {
			if !strings.Contains(page, w) {
				t.Errorf("GET %s: %q not in the page", path, w)
			}
		}
	}
	_, list := c.do("GET", "/products", nil)
	if b, d, h, v := strings.Index(list, ">Beanie<"), strings.Index(list, ">Draft Hat<"), strings.Index(list, ">Hoodie<"), strings.Index(list, ">V-Neck T-Shirt<"); !(b < d && d < h && h < v) {
		t.Errorf("the list is not by title: %d %d %d %d", b, d, h, v)
	}
	// an ID with characters that mean something in a URL links to its page
	if st, job := importJob(t, a, strings.TrimRight(wooSample(t), "\n")+evil+"\n\"a?b#c/d\",simple,odd,,Odd,1,0,visible,,,,,taxable,,1,3,,0,0,,,,,1,,,5,Decor,,,,,,,,,,,,0,,,,,,,,,,,\n", ""); st != 202 || job.Report.Imported != 19 {
		t.Fatalf("import: %+v", job.Report)
	}
	_, list = c.do("GET", "/products?q=odd", nil)
	if !strings.Contains(list, `href="/products/a%3Fb%23c%2Fd"`) {
		t.Errorf("the link to a?b#c/d")
	}
	if resp, page := c.do("GET", "/products/a%3Fb%23c%2Fd", nil); resp.StatusCode != 200 || !strings.Contains(page, "Odd") {
		t.Errorf("the page of a?b#c/d: %d", resp.StatusCode)
	}
	resp, page := c.do("GET", "/products/99", nil)
	if resp.StatusCode != 200 || strings.Contains(page, "<img src=x") || strings.Contains(page, "<script>alert") || !strings.Contains(page, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("feed values must be escaped, the description shown as text: %d", resp.StatusCode)
	}
	if resp, _ := c.do("GET", "/products/45", nil); resp.StatusCode != 303 || resp.Header.Get("Location") != "/products/44#v-45" {
		t.Errorf("a variation's page is its main product's: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, id := range []string{"nope", strings.Repeat("a", 5000), "%00", "a%2Fb", "%E2%80%AE"} {
		if resp, _ := c.do("GET", "/products/"+id, nil); resp.StatusCode != 404 {
			t.Errorf("unknown product %.20s: %d", id, resp.StatusCode)
		}
	}
	for _, q := range []string{"status=gone", "visibility=x", "stock=out", "sort=name", "page=0", "page=1001", "page=x", "brand=" + strings.Repeat("b", 1001)} {
		if resp, page := c.do("GET", "/products?"+q, nil); resp.StatusCode != 400 || !strings.Contains(page, "notice") {
			t.Errorf("GET /products?%s: %d, want 400 with a message", q, resp.StatusCode)
		}
	}
	// paging: 26 simple products make two pages
	var b strings.Builder
	b.WriteString("ID;Title;Price\n")
	for i := range 26 {
		b.WriteString("p" + string(rune('a'+i)) + ";Product " + string(rune('A'+i)) + ";1\n")
	}
	if st, job := importJob(t, a, b.String(), "?force=true"); st != 202 || job.State != "done" {
		t.Fatalf("import: %+v", job)
	}
	_, page = c.do("GET", "/products", nil)
	if !strings.Contains(page, "page 1 of 2") || !strings.Contains(page, `href="/products?page=2"`) || strings.Contains(page, "Product Z") {
		t.Errorf("page 1 of 2")
	}
	if _, page = c.do("GET", "/products?page=2", nil); !strings.Contains(page, "Product Z") || !strings.Contains(page, `href="/products?page=1"`) {
		t.Errorf("page 2")
	}
	if resp, _ := (&adminClient{t: t, base: a.AdminURL}).do("GET", "/products/44", nil); resp.StatusCode != 303 {
		t.Errorf("a product's page without signing in: %d", resp.StatusCode)
	}
}

// photoServer serves a square PNG for any /img/NAME, coloured after the
// colour its name says (or a hash of it): product photos for screenshots,
// on loopback.
func photoServer(t *testing.T) *httptest.Server {
	colours := map[string]color.RGBA{"red": {0xd9, 0x3b, 0x3b, 255}, "blue": {0x2f, 0x6f, 0xed, 255}, "green": {0x12, 0x9b, 0x5a, 255},
		"hoodie-2": {0xd9, 0x3b, 0x3b, 255}, "vneck-tee-2": {0xd9, 0x3b, 0x3b, 255}, "logo": {0x2f, 0x6f, 0xed, 255}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/img/")
		h := fnv.New32a()
		h.Write([]byte(name))
		s := h.Sum32()
		c := color.RGBA{uint8(120 + s%100), uint8(110 + s>>8%90), uint8(100 + s>>16%80), 255}
		for k, v := range colours {
			if strings.Contains(name, k) {
				c = v
			}
		}
		img := image.NewRGBA(image.Rect(0, 0, 96, 96))
		for y := range 96 {
			for x := range 96 {
				shade := c
				if (x-48)*(x-48)+(y-44)*(y-44) < 24*24 { // a round "product"
					shade = color.RGBA{uint8(min(255, int(c.R)+50)), uint8(min(255, int(c.G)+50)), uint8(min(255, int(c.B)+50)), 255}
				}
				img.Set(x, y, shade)
			}
		}
		var buf bytes.Buffer
		png.Encode(&buf, img)
		w.Header().Set("Content-Type", "image/png")
		w.Write(buf.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestProductsPagesInChromium takes the screenshots of the Products list
// and of a variable product's page (embedui/screenshot-products.png and
// screenshot-product.png are copies), and checks what a shop owner sees:
// the variations with their own prices and colours, the hidden products
// marked.
func TestProductsPagesInChromium(t *testing.T) {
	a := wooApp(t)
	photos := photoServer(t)
	data := strings.ReplaceAll(wooSample(t), wooUploads, photos.URL+"/img/")
	if st, job := importJob(t, a, data, ""); st != 202 || job.Report.Skipped != 0 {
		t.Fatalf("import: %d %+v", st, job.Report)
	}
	view := func(id, sess, product string) map[string]any {
		return map[string]any{"id": id, "type": "product_view", "anonymous_id": "a-" + sess, "session_id": sess,
			"url": "https://woo.example/product/x/", "props": map[string]any{"product_id": product}}
	}
	order := func(id, sess string, products ...string) map[string]any {
		var items []any
		for _, p := range products {
			items = append(items, map[string]any{"product_id": p, "price": 20})
		}
		return map[string]any{"id": id, "type": "order", "anonymous_id": "a-" + sess, "session_id": sess, "url": "https://woo.example/thanks",
			"props": map[string]any{"order_id": "o-" + id, "value": 40, "currency": "EUR", "items": items}}
	}
	var ans answer
	a.Do(t, "POST", "/t", batch(view("1", "s1", "45"), view("2", "s1", "50"), view("3", "s1", "10"), view("4", "s2", "44"), view("5", "s2", "50"),
		view("6", "s3", "44"), view("7", "s3", "80"), order("8", "s3", "47", "10")), &ans)
	a.Fold(t)
	if err := a.Guard.Setup(a.Guard.SetupToken(), "owner", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	ctx := enginetest.Browser(t)
	step, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var listText string
	err := chromedp.Run(step, signInTasks(a), chromedp.WaitVisible(`#events`),
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(a.AdminURL+"/products#catalogue"),
		chromedp.WaitVisible(`#products`),
		chromedp.Text(`#products`, &listText),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitImages(t, step)
	for _, want := range []string{"Hoodie", "42.00 – 45.00 EUR", "Secret Sample", "hidden", "draft"} {
		if !strings.Contains(listText, want) {
			t.Errorf("the list lacks %q: %s", want, listText)
		}
	}
	screenshot(t, ctx, "products-list")

	var variations string
	var rows int
	err = chromedp.Run(step,
		chromedp.Click(`//a[text()="Hoodie"]`, chromedp.BySearch),
		chromedp.WaitVisible(`#variations`),
		chromedp.Text(`#variations`, &variations),
		chromedp.Evaluate(`document.querySelectorAll('#variations tbody tr').length`, &rows),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitImages(t, step)
	if rows != 3 {
		t.Errorf("%d variation rows", rows)
	}
	for _, row := range []struct{ colour, price string }{{"Blue", "42.00"}, {"Green", "45.00"}, {"Red", "42.00"}} {
		var cell string
		if err := chromedp.Run(step, chromedp.Text(`//tr[td[@class="color"][text()="`+row.colour+`"]]/td[contains(@class,"price")]`, &cell, chromedp.BySearch)); err != nil {
			t.Fatalf("%s: %v", row.colour, err)
		}
		if !strings.Contains(cell, row.price) {
			t.Errorf("the %s variation's price: %q, want %s", row.colour, cell, row.price)
		}
	}
	var viewed, bought string
	if err := chromedp.Run(step, chromedp.Text(`#viewed`, &viewed), chromedp.Text(`#bought`, &bought)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(viewed, "V-Neck T-Shirt") || !strings.Contains(bought, "Beanie") {
		t.Errorf("viewed together %q, bought together %q", viewed, bought)
	}
	screenshot(t, ctx, "product-page")
	abs, _ := filepath.Abs(filepath.Join("testdata", "screenshots"))
	t.Logf("screenshots in %s", abs)
}

// waitImages waits until every image of the page has loaded.
func waitImages(t *testing.T, ctx context.Context) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var done bool
		if err := chromedp.Run(ctx, chromedp.Evaluate(`[...document.images].every(i => i.complete)`, &done)); err != nil {
			t.Fatal(err)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the product photos did not load")
		}
	}
}
