package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
)

func TestChangeOf(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	p := func(price, sale int64, stock *int64, mod func(*model.Product)) *model.Product {
		x := &model.Product{ID: "x", Price: price, DiscountPrice: sale, Stock: stock, Currency: "EUR"}
		if mod != nil {
			mod(x)
		}
		return x
	}
	for _, tc := range []struct {
		name     string
		old, cur *model.Product
		want     string
	}{
		{"unchanged", p(1000, 0, n(3), nil), p(1000, 0, n(3), nil), ""},
		{"cheaper", p(1000, 0, n(3), nil), p(900, 0, n(3), nil), model.ProductPriceDrop},
		{"a sale starts", p(1000, 0, n(3), nil), p(1000, 800, n(3), nil), model.ProductPriceDrop},
		{"a deeper sale", p(1000, 800, n(3), nil), p(1000, 700, n(3), nil), model.ProductPriceDrop},
		{"the sale ends: dearer", p(1000, 800, n(3), nil), p(1000, 0, n(3), nil), ""},
		{"list price down, same sale price", p(1200, 800, n(3), nil), p(1000, 800, n(3), nil), ""},
		{"a sale price above the price is no sale", p(1000, 0, n(3), nil), p(1000, 1100, n(3), nil), ""},
		{"dearer", p(1000, 0, n(3), nil), p(1100, 0, n(3), nil), ""},
		{"cheaper in another currency", p(1000, 0, n(3), nil), p(900, 0, n(3), func(x *model.Product) { x.Currency = "NOK" }), ""},
		{"currency case", p(1000, 0, n(3), nil), p(900, 0, n(3), func(x *model.Product) { x.Currency = "eur" }), model.ProductPriceDrop},
		{"free now: no price", p(1000, 0, n(3), nil), p(0, 0, n(3), nil), ""},
		{"cheaper but sold out", p(1000, 0, n(3), nil), p(900, 0, n(0), nil), ""},
		{"back in stock", p(1000, 0, n(0), nil), p(1000, 0, n(2), nil), model.ProductBackInStock},
		{"back in stock and cheaper: one fact", p(1000, 0, n(0), nil), p(900, 0, n(2), nil), model.ProductBackInStock},
		{"stock now unknown counts as in stock", p(1000, 0, n(0), nil), p(1000, 0, nil, nil), model.ProductBackInStock},
		{"back in the feed after a removal", p(1000, 0, n(3), func(x *model.Product) { x.Removed = true }), p(1000, 0, n(3), nil), model.ProductBackInStock},
		{"still sold out", p(1000, 0, n(0), nil), p(900, 0, n(0), nil), ""},
		{"back in stock but a draft", p(1000, 0, n(0), nil), p(1000, 0, n(2), func(x *model.Product) { x.Status = model.StatusDraft }), ""},
		{"published now, cheaper: new, not cheaper", p(1000, 0, n(3), func(x *model.Product) { x.Status = model.StatusDraft }), p(900, 0, n(3), nil), ""},
		{"more stock", p(1000, 0, n(1), nil), p(1000, 0, n(9), nil), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := changeOf(tc.old, tc.cur); got != tc.want {
				t.Errorf("%q, want %q", got, tc.want)
			}
		})
	}
}

// logged counts the product facts in the log by type and product.
func logged(t *testing.T, st *store.Store) map[string]int {
	t.Helper()
	evs, err := st.EventsAfter(0, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, ev := range evs {
		var id string
		json.Unmarshal(ev.Props["product_id"], &id)
		out[ev.Type+" "+id]++
	}
	return out
}

// An import's changes reach the log once: with the import, or, when
// recording them failed after the switch (a crash), at the next start.
func TestImportRecordsChangesOnce(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tr := track.New(st, track.Options{MaxPendingEvents: 10000, MaxBatchEvents: 1000})
	defer tr.Close()
	c, err := Open(st, filepath.Join(dir, "search-index"), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.RecordChangesWith(tr.Record); err != nil {
		t.Fatal(err)
	}
	feed := func(rows ...string) *strings.Reader {
		return strings.NewReader("ID;Title;Price;Stock\n" + strings.Join(rows, "\n") + "\n")
	}
	if _, err := c.Import(feed("a;A;10.00;0", "b;B;20.00;5", "c;C;30.00;5"), "first"); err != nil {
		t.Fatal(err)
	}
	if got := logged(t, st); len(got) != 0 {
		t.Fatalf("the first import recorded %v", got)
	}
	if _, err := c.Import(feed("a;A;10.00;3", "b;B;18.00;5", "c;C;35.00;5"), "second"); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"product_back_in_stock a": 1, "product_price_drop b": 1}
	if got := logged(t, st); len(got) != len(want) || got["product_back_in_stock a"] != 1 || got["product_price_drop b"] != 1 {
		t.Fatalf("logged %v, want %v", got, want)
	}
	evs, _ := st.EventsAfter(0, 10)
	var old, cur int64
	json.Unmarshal(evs[1].Props["old_price"], &old)
	json.Unmarshal(evs[1].Props["new_price"], &cur)
	if evs[1].Via != model.ViaServer || old != 2000 || cur != 1800 {
		t.Errorf("fact %+v: via %s, %d → %d", evs[1], evs[1].Via, old, cur)
	}

	// the process dies after the switch, before the facts are recorded
	c.rec = func(context.Context, []*model.Event, func(*store.Tx) error) error { return errors.New("killed") }
	if _, err := c.Import(feed("a;A;10.00;3", "b;B;15.00;5", "c;C;25.00;0"), "third"); err != nil {
		t.Fatal(err)
	}
	if got := logged(t, st); got["product_price_drop b"] != 1 {
		t.Fatalf("recorded although the recorder failed: %v", got)
	}
	waiting, err := st.Facts(nil, 100)
	if err != nil || len(waiting) != 1 {
		t.Fatalf("%d facts waiting, want 1 (%v)", len(waiting), err)
	}
	// the next start records them, once
	for range 2 {
		if err := c.RecordChangesWith(tr.Record); err != nil {
			t.Fatal(err)
		}
	}
	if got := logged(t, st); got["product_price_drop b"] != 2 || len(got) != 2 {
		t.Fatalf("after the restart: %v", got)
	}
	// the same feed again changes nothing
	if _, err := c.Import(feed("a;A;10.00;3", "b;B;15.00;5", "c;C;25.00;0"), "again"); err != nil {
		t.Fatal(err)
	}
	if got := logged(t, st); got["product_price_drop b"] != 2 || len(got) != 2 {
		t.Fatalf("the same feed again: %v", got)
	}
}

// A generation being staged keeps its facts to itself; discarding it
// drops them.
func TestStagedFactsAreNotLive(t *testing.T) {
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stage := func() *store.Staging {
		s, err := st.StageCatalogue()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Put(model.Product{ID: "a", Price: 100}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutFact(0, &model.Event{ID: "f", Type: model.ProductPriceDrop}); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := stage()
	if f, err := st.Facts(nil, 10); err != nil || len(f) != 0 {
		t.Fatalf("a staged generation's facts are live: %d %v", len(f), err)
	}
	s.Discard()
	s = stage()
	if _, err := s.Commit(map[string]string{}); err != nil {
		t.Fatal(err)
	}
	if f, err := st.Facts(nil, 10); err != nil || len(f) != 1 {
		t.Fatalf("%d facts after the switch, want 1 (%v)", len(f), err)
	}
}
