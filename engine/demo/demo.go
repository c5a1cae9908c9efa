// Package demo is the demo shop that `make run` serves at /demo/: a few
// pages built from the sample product feed, with the tracker's snippet and
// event snippets installed exactly as a shop owner would install them. It
// is the living example of the integration and what the browser tests
// drive.
package demo

import (
	"bytes"
	"embed"
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

//go:embed feed-sample.csv
var feedCSV []byte

//go:embed templates/*.html
var templates embed.FS

// Product is one product of the demo catalogue.
type Product struct {
	ID, Title, URL, Description, Color, Brand, Main string
	CategoryIDs, Categories, Photos                 []string
	Price, DiscountPrice                            float64
	Stock                                           int
	Variations                                      []*Product
}

// Feed returns the demo catalogue as a CSV feed, in the format of the
// reference article.
func Feed() []byte { return feedCSV }

// Shop serves the demo pages.
type Shop struct {
	products []*Product // main products, in feed order
	byID     map[string]*Product
	tmpl     map[string]*template.Template
	snippet  func(endpoint string) string
}

// New parses the sample feed and the templates. snippet returns the main
// snippet for an endpoint (the public listener as the browser reaches it).
func New(snippet func(endpoint string) string) (*Shop, error) {
	s := &Shop{byID: map[string]*Product{}, tmpl: map[string]*template.Template{}, snippet: snippet}
	if err := s.load(); err != nil {
		return nil, err
	}
	funcs := template.FuncMap{"money": func(v float64) string { return fmt.Sprintf("%.2f", v) }}
	for _, page := range []string{"home", "category", "product", "cart", "checkout", "thanks"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templates, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("demo: template %s: %w", page, err)
		}
		s.tmpl[page] = t
	}
	return s, nil
}

// load reads the sample feed: ';'-separated, a header row, variations name
// their main product in Main.
func (s *Shop) load() error {
	r := csv.NewReader(bytes.NewReader(feedCSV))
	r.Comma = ';'
	header, err := r.Read()
	if err != nil {
		return fmt.Errorf("demo: feed header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("demo: feed: %w", err)
		}
		get := func(name string) string { return strings.TrimSpace(rec[col[name]]) }
		list := func(name string) []string {
			if v := get(name); v != "" {
				return strings.Split(v, ",")
			}
			return nil
		}
		p := &Product{ID: get("ID"), Title: get("Product title"), URL: get("Product URL"), Description: get("Description"),
			Color: get("Color"), Brand: get("Brand"), Main: get("Main"),
			CategoryIDs: list("Categories IDs"), Categories: list("Categories Titles"), Photos: list("Photos")}
		p.Price, _ = strconv.ParseFloat(get("Price"), 64)
		p.DiscountPrice, _ = strconv.ParseFloat(get("DiscountPrice"), 64)
		p.Stock, _ = strconv.Atoi(get("Stock"))
		s.byID[p.ID] = p
		if p.Main == "" {
			s.products = append(s.products, p)
		} else if m := s.byID[p.Main]; m != nil {
			m.Variations = append(m.Variations, p)
		}
	}
	return nil
}

// Handler serves the demo shop under /demo/.
func (s *Shop) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /demo/{$}", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, "home", map[string]any{"Products": s.products})
	})
	mux.HandleFunc("GET /demo/c/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		var in []*Product
		name := ""
		for _, p := range s.products {
			if i := slices.Index(p.CategoryIDs, id); i >= 0 {
				in = append(in, p)
				if i < len(p.Categories) {
					name = p.Categories[i]
				}
			}
		}
		if len(in) == 0 {
			http.NotFound(w, r)
			return
		}
		s.render(w, r, "category", map[string]any{"ID": id, "Name": name, "Products": in})
	})
	mux.HandleFunc("GET /demo/p/{id}", func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.byID[r.PathValue("id")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		s.render(w, r, "product", map[string]any{"Product": p})
	})
	mux.HandleFunc("GET /demo/cart", func(w http.ResponseWriter, r *http.Request) { s.render(w, r, "cart", nil) })
	mux.HandleFunc("GET /demo/checkout", func(w http.ResponseWriter, r *http.Request) { s.render(w, r, "checkout", nil) })
	// The thank-you page, as a shop renders it after the payment: the
	// order event snippet is filled in on the server.
	mux.HandleFunc("GET /demo/thanks", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var items []map[string]any
		total := 0.0
		for _, id := range strings.Split(q.Get("items"), ",") {
			if p, ok := s.byID[id]; ok {
				price := p.Price
				if p.DiscountPrice > 0 {
					price = p.DiscountPrice
				}
				items = append(items, map[string]any{"product_id": p.ID, "quantity": 1, "price": price})
				total += price
			}
		}
		order := map[string]any{"order_id": q.Get("order_id"), "value": float64(int(total*100+0.5)) / 100, "currency": "EUR", "items": items}
		s.render(w, r, "thanks", map[string]any{"Email": q.Get("email"), "Order": order})
	})
	return mux
}

func (s *Shop) render(w http.ResponseWriter, r *http.Request, page string, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	data["Snippet"] = template.HTML(s.snippet(scheme + "://" + r.Host))
	data["Page"] = page
	var buf bytes.Buffer
	if err := s.tmpl[page].Execute(&buf, data); err != nil {
		http.Error(w, "demo: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}
