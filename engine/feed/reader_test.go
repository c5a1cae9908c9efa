package feed

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/model"
)

func read(t testing.TB, data []byte, cols map[string]string) ([]model.Product, Report, error) {
	t.Helper()
	var out []model.Product
	var rep Report
	err := Read(bytes.NewReader(data), cols, &rep, func(p model.Product) error {
		out = append(out, p)
		return nil
	})
	return out, rep, err
}

func byID(ps []model.Product) map[string]model.Product {
	m := map[string]model.Product{}
	for _, p := range ps {
		m[p.ID] = p
	}
	return m
}

func TestSampleFeed(t *testing.T) {
	data, err := os.ReadFile("testdata/feed-sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	ps, rep, err := read(t, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 24 || rep.Rows != 24 || rep.Skipped != 0 || rep.Delimiter != ";" || rep.Encoding != "UTF-8" || len(rep.Columns) != 13 {
		t.Fatalf("%d products; report %+v", len(ps), rep)
	}
	m := byID(ps)
	p := m["1001"]
	if p.Title != "Trail Runner 3" || p.Price != 13968 || p.DiscountPrice != 11174 || p.Currency != "EUR" || *p.Stock != 105 ||
		strings.Join(p.CategoryIDs, "|") != "10|11" || strings.Join(p.Categories, "|") != "Shoes|Running shoes" || len(p.Photos) != 2 || p.MainID != "" || p.Brand != "Northpeak" {
		t.Errorf("1001: %+v", p)
	}
	if m["1006"].MainID != "1005" || m["1008"].MainID != "1005" || m["1016"].Title != `Graphic Tee "Summit"` {
		t.Errorf("variations or quotes: %+v %+v", m["1006"], m["1016"])
	}
}

func TestFeedVariants(t *testing.T) {
	win1252, _ := charmap.Windows1252.NewEncoder().String("ID;Name;Price\n1;Crème brûlée;4,50\n")
	for _, tt := range []struct {
		name  string
		data  string
		cols  map[string]string
		check func(t *testing.T, ps map[string]model.Product, rep Report)
	}{
		{"renamed headers, comma, BOM, CRLF", "\ufeffSKU,Name,Sale Price,Regular price,Images,Vendor,Qty,item_group_id,Material\r\nA-1,Shell,\"89,00\",\"99,00\",https://s/1.jpg|https://s/2.jpg,Velora,3,,Nylon\r\n",
			nil, func(t *testing.T, ps map[string]model.Product, rep Report) {
				p := ps["A-1"]
				if rep.Delimiter != "," || p.Title != "Shell" || p.Price != 9900 || p.DiscountPrice != 8900 || len(p.Photos) != 2 || p.Brand != "Velora" || *p.Stock != 3 || p.Attributes["Material"] != "Nylon" {
					t.Errorf("%+v %+v", p, rep)
				}
			}},
		{"tab, accents and case in headers, price with currency", "Identifiant\tTitre\tPrix\nX\tT\t15.00 USD\n",
			map[string]string{"id": "identifiant", "title": "TITRE", "price": "prix"}, func(t *testing.T, ps map[string]model.Product, rep Report) {
				if p := ps["X"]; rep.Delimiter != "\t" || p.Price != 1500 || p.Currency != "USD" || p.Title != "T" {
					t.Errorf("%+v %+v", p, rep)
				}
			}},
		{"pipe delimiter and thousands", "id|title|price|categories\n7|Tent|1.234,56|Outdoor, Tents\n8|Stove|1,234.50|Outdoor\n", nil,
			func(t *testing.T, ps map[string]model.Product, rep Report) {
				if ps["7"].Price != 123456 || ps["8"].Price != 123450 || len(ps["7"].Categories) != 2 {
					t.Errorf("%+v", ps)
				}
			}},
		{"quotes and newlines inside fields", "ID;Product title;Description;Price\n\"1\";\"Tee \"\"Summit\"\"\";\"line one\nline two; with a semicolon\";\"10\"\n", nil,
			func(t *testing.T, ps map[string]model.Product, rep Report) {
				if p := ps["1"]; p.Title != `Tee "Summit"` || p.Description != "line one\nline two; with a semicolon" {
					t.Errorf("%+v", p)
				}
			}},
		{"Windows-1252", win1252, nil, func(t *testing.T, ps map[string]model.Product, rep Report) {
			if rep.Encoding != "Windows-1252" || ps["1"].Title != "Crème brûlée" || ps["1"].Price != 450 {
				t.Errorf("%+v %+v", ps["1"], rep)
			}
		}},
		{"formula escape", "id;title;price\n'=1;'+Plus;1\n", nil, func(t *testing.T, ps map[string]model.Product, rep Report) {
			if p := ps["=1"]; p.Title != "+Plus" {
				t.Errorf("%+v", ps)
			}
		}},
		{"Main as a flag", "id;title;price;main;color\n10;Vest;5;1;Grey\n11;Vest white;5;0;White\n12;Vest blue;5;0;Blue\n20;Cap;3;yes;Red\n21;Cap;3;no;Black\n", nil,
			func(t *testing.T, ps map[string]model.Product, rep Report) {
				if ps["10"].MainID != "" || ps["11"].MainID != "10" || ps["12"].MainID != "10" || ps["20"].MainID != "" || ps["21"].MainID != "20" {
					t.Errorf("%+v", ps)
				}
			}},
		{"missing columns", "ID\n1\n2\n", nil, func(t *testing.T, ps map[string]model.Product, rep Report) {
			if len(ps) != 2 || ps["1"].Stock != nil || ps["1"].Title != "" {
				t.Errorf("%+v", ps)
			}
		}},
		{"bad rows are skipped with their line", "ID;Title;Price\n1;ok;1\n;no id;2\n3;bad price;12,5,0\n1;duplicate;3\n4;\"broken\"quote;4\n5;no price;\n6;fine;6\n", nil,
			func(t *testing.T, ps map[string]model.Product, rep Report) {
				if len(ps) != 2 || rep.Skipped != 5 || rep.Rows != 7 {
					t.Fatalf("%d products: %+v", len(ps), rep)
				}
				want := []LineError{{3, "id", ""}, {4, "price", ""}, {5, "id", ""}, {6, "", ""}, {7, "price", ""}}
				for i, w := range want {
					if e := rep.Errors[i]; e.Line != w.Line || e.Field != w.Field {
						t.Errorf("error %d: %+v, want line %d field %s", i, e, w.Line, w.Field)
					}
				}
				if !strings.Contains(rep.Errors[2].Message, "line 2") {
					t.Errorf("the duplicate names the first line: %s", rep.Errors[2].Message)
				}
				if _, ok := ps["6"]; !ok {
					t.Errorf("the row after a broken quote is read: %+v", ps)
				}
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ps, rep, err := read(t, []byte(tt.data), tt.cols)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, byID(ps), rep)
		})
	}
}

func TestFeedWithoutIDColumn(t *testing.T) {
	if _, _, err := read(t, []byte("name;price\nx;1\n"), nil); !errors.Is(err, ErrNoID) {
		t.Fatalf("err %v", err)
	}
	if _, _, err := read(t, nil, nil); err == nil {
		t.Fatal("an empty file is an error")
	}
}

// FuzzRead: no panic, every product has an ID, and nothing grows without
// bound.
func FuzzRead(f *testing.F) {
	data, _ := os.ReadFile("testdata/feed-sample.csv")
	f.Add(data)
	f.Add([]byte("\ufeffid,title,price\r\n1,\"a\"\"b\",\"1,5\"\r\n"))
	f.Add([]byte("id\tprice\n1\t€12.50\n"))
	f.Add([]byte("ID;Main\n1;1\n2;0\n"))
	for _, name := range []string{"woocommerce-export.csv", "shopify-export.csv", "google-merchant.tsv"} {
		data, _ := os.ReadFile("testdata/" + name)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var rep Report
		n := 0
		Read(bytes.NewReader(data), nil, &rep, func(p model.Product) error {
			n++
			if p.ID == "" || len(p.ID) > maxIDLen || p.Price < 0 {
				t.Fatalf("bad product %+v", p)
			}
			return nil
		})
		if len(rep.Errors) > MaxErrors || n > len(data) {
			t.Fatalf("report %d errors, %d products from %d bytes", len(rep.Errors), n, len(data))
		}
	})
}

func TestConfigKnowsTheFields(t *testing.T) {
	if !slices.Equal(Fields, config.FeedFields) {
		t.Errorf("feed.Fields %v, config.FeedFields %v", Fields, config.FeedFields)
	}
}
