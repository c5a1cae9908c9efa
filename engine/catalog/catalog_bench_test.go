package catalog

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/search"
)

// generated writes a feed of n products in the article's format: a main
// product every fourth row, its variations after it.
func generated(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`"ID";"Product title";"Product URL";"Categories IDs";"Categories Titles";"Description";"Price";"DiscountPrice";"Photos";"Color";"Brand";"Stock";"Main"` + "\n")
	nouns := []string{"Runner", "Sneaker", "Jacket", "Tee", "Beanie", "Tent", "Belt", "Vest", "Boot", "Backpack", "Sock", "Glove"}
	adjs := []string{"Trail", "City", "Storm", "Organic", "Merino", "Dome", "Leather", "Down", "Alpine", "Urban", "Canvas", "Road"}
	colors := []string{"Black", "White", "Red", "Blue", "Green", "Grey"}
	brands := []string{"Northpeak", "Velora", "Alba", "Stridex", "Kestrel"}
	main := 0
	for i := range n {
		id := 100000 + i
		mainCol := ""
		if i%4 == 0 {
			main = id
		} else {
			mainCol = strconv.Itoa(main)
		}
		adj, noun := adjs[(main/4)%len(adjs)], nouns[(main/7)%len(nouns)]
		fmt.Fprintf(&b, "\"%d\";\"%s %s %d\";\"https://shop.example/p/%d\";\"%d,%d\";\"Category %d,Sub %d\";\"A %s %s for every day, model %d.\";\"%d.%02d\";\"\";\"https://shop.example/img/%d.jpg\";\"%s\";\"%s\";\"%d\";\"%s\"\n",
			id, adj, noun, main, id, (main/4)%40, (main/4)%400, (main/4)%40, (main/4)%400, strings.ToLower(adj), strings.ToLower(noun), main,
			10+main%490, main%100, id, colors[i%len(colors)], brands[(main/4)%len(brands)], i%50, mainCol)
	}
	return b.Bytes()
}

func peakRSS() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkCatalog imports and indexes 100 000 generated products, then
// runs 1 000 searches (text with a typo, filters, facets) and reports the
// import time, the process's peak RSS, and search p50/p99.
func BenchmarkCatalog(b *testing.B) {
	const n = 100_000
	data := generated(n)
	for b.Loop() {
		dir := b.TempDir()
		st, err := store.Open(store.Options{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		c, err := Open(st, filepath.Join(dir, "search-index"), nil, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		rep, err := c.Import(bytes.NewReader(data), "bench")
		if err != nil || rep.Imported != n {
			b.Fatalf("import: %v %+v", err, rep)
		}
		imported := time.Since(start)
		b.ReportMetric(imported.Seconds(), "import+index-s")
		b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(float64(len(data))/(1<<20), "feed-MiB")

		queries := []search.Query{
			{Text: "trail runer"}, {Text: "merino beanie", InStock: true}, {Text: "storm jaket", Sort: "price"},
			{Category: "7"}, {Brand: "Velora", Color: "Red"}, {Text: "leather", MinPrice: ptr(50), MaxPrice: ptr(200)},
			{Text: "tent", Page: 3}, {Text: "urban sneaker", Brand: "Alba"},
		}
		var lat []time.Duration
		for i := range 1000 {
			t0 := time.Now()
			if _, _, err := c.Search(queries[i%len(queries)]); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "search-p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "search-p99-ms")
		c.Close()
		st.Close()
	}
}

func ptr(f float64) *float64 { return &f }

// generatedWoo writes a WooCommerce export of n rows: a variable product
// every fourth row, its three variations before it in the file, naming it
// by SKU (the worst case for settling: every parent resolved afterwards).
func generatedWoo(n int) []byte {
	var b bytes.Buffer
	b.WriteString("\ufeffID,Type,SKU,Name,Published,\"Visibility in catalog\",\"Short description\",Description,\"In stock?\",Stock,\"Sale price\",\"Regular price\",Categories,Images,Parent,\"Attribute 1 name\",\"Attribute 1 value(s)\",\"Attribute 2 name\",\"Attribute 2 value(s)\"\n")
	colors := []string{"Red", "Blue", "Green"}
	for i := 0; i+3 < n+3 && i < n; i += 4 {
		parent := 100000 + i + 3
		for v := range min(3, n-i-1) {
			fmt.Fprintf(&b, "%d,variation,sku-%d-%d,\"Tee %d - %s\",1,visible,,,1,%d,,%d.%02d,,https://shop.example/img/%d-%d.jpg,sku-%d,Color,%s,Size,M\n",
				100000+i+v, parent, v, parent, colors[v], v*3, 10+parent%90, v*10, parent, v, parent, colors[v])
		}
		fmt.Fprintf(&b, "%d,variable,sku-%d,\"Tee %d\",1,visible,\"<p>Short.</p>\",\"<p>A tee, model %d.</p>\\n<p>Cotton.</p>\",1,,,,\"Clothing > Tees\",https://shop.example/img/%d.jpg,,Color,\"Red, Blue, Green\",Size,M\n",
			parent, parent, parent, parent, parent)
	}
	return b.Bytes()
}

// BenchmarkWooCommerceImport imports 100 000 rows of a WooCommerce export
// (25 000 variable products, 75 000 variations before their parents),
// settles them and indexes them; it reports the time and peak RSS.
func BenchmarkWooCommerceImport(b *testing.B) {
	const n = 100_000
	data := generatedWoo(n)
	for b.Loop() {
		dir := b.TempDir()
		st, err := store.Open(store.Options{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		c, err := Open(st, filepath.Join(dir, "search-index"), nil, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		c.SetProductURLTemplate("https://shop.example/product/{handle}/")
		start := time.Now()
		rep, err := c.Import(bytes.NewReader(data), "bench")
		if err != nil || rep.Imported != n || rep.Skipped != 0 || rep.Variations != n*3/4 || rep.NoURL != 0 {
			b.Fatalf("import: %v %+v", err, rep)
		}
		b.ReportMetric(time.Since(start).Seconds(), "import+settle+index-s")
		b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(float64(len(data))/(1<<20), "feed-MiB")
		if it, err := c.Product("100003"); err != nil || len(it.Variations) != 3 || it.PriceMax == 0 {
			b.Fatalf("a parent: %v %+v", err, it)
		}
		c.Close()
		st.Close()
	}
}
