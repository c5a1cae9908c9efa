package search

import (
	"errors"
	"strings"
	"testing"
)

func openWith(t *testing.T, docs ...Doc) *Index {
	t.Helper()
	ix, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	if err := ix.Replace(1, func(add func(Doc) error) error {
		for _, d := range docs {
			if err := add(d); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ix
}

// TestLongTextsAreBoundedNotFailed: a word too long for typo tolerance is
// matched exactly, a text over MaxTextLen is refused with ErrTextTooLong;
// neither is an internal error ("dfa contains more than 10000 states").
func TestLongTextsAreBoundedNotFailed(t *testing.T) {
	long := strings.Repeat("x", MaxFuzzyWord+1) + "waterproofness"
	ix := openWith(t,
		Doc{ID: "1", Title: "Trail running shoes", Categories: []string{"Shoes"}, Price: 10},
		Doc{ID: "2", Title: "Jacket " + long, Price: 10})
	for _, tt := range []struct {
		text  string
		total uint64
		err   error
	}{
		{"runing shoes", 1, nil},                      // one typo per word
		{strings.Repeat("a", MaxTextLen), 0, nil},     // one long word: exact, no automaton
		{long, 1, nil},                                // found exactly
		{long[:len(long)-1] + "z", 0, nil},            // a typo in a long word is not forgiven
		{strings.Repeat("ab ", MaxTextLen/3), 0, nil}, // many short words
		{strings.Repeat("a", 5000), 0, ErrTextTooLong},
		{strings.Repeat("é", MaxTextLen+1), 0, ErrTextTooLong}, // characters, not bytes
	} {
		res, err := ix.Search(Query{Text: tt.text})
		if !errors.Is(err, tt.err) || (err == nil && res.Total != tt.total) {
			t.Errorf("text of %d bytes: %d found, %v; want %d, %v", len(tt.text), res.Total, err, tt.total, tt.err)
		}
	}
	if res, err := ix.Search(Query{Text: strings.Repeat("é", MaxTextLen)}); err != nil {
		t.Errorf("MaxTextLen two-byte characters: %v %v", res, err)
	}
}

// TestAnIndexOfAnotherMappingIsRebuilt: an index written before the
// mapping's last change (no version, or another one) opens as generation
// 0, so that the catalogue rebuilds it from the store.
func TestAnIndexOfAnotherMappingIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Replace(7, func(add func(Doc) error) error { return add(Doc{ID: "1", Title: "Tent"}) }); err != nil {
		t.Fatal(err)
	}
	ix.Close()
	if ix, _ = Open(dir); ix.Generation() != 7 {
		t.Fatalf("generation %d after reopening", ix.Generation())
	}
	if err := ix.idx.SetInternal(versionKey, []byte("1")); err != nil {
		t.Fatal(err)
	}
	ix.Close()
	if ix, _ = Open(dir); ix.Generation() != 0 {
		t.Errorf("an index of mapping version 1 opens as generation %d", ix.Generation())
	}
	ix.Close()
}

// TestHiddenProductsAreFilteredWhenQueried: shoppers' searches leave out
// products not in search, recommendations those not in recommendations,
// the admin sees all.
func TestHiddenProductsAreFilteredWhenQueried(t *testing.T) {
	ix := openWith(t,
		Doc{ID: "shown", Title: "Wool hat", Categories: []string{"Hats"}, Price: 20, InStock: true, Status: "published"},
		Doc{ID: "hidden", Title: "Wool hat sample", Categories: []string{"Hats"}, Price: 20, InStock: true, NotInSearch: true, NotInRecommendations: true, Status: "published", Visibility: "hidden"},
		Doc{ID: "shop-only", Title: "Wool hat deluxe", Categories: []string{"Hats"}, Price: 25, InStock: true, NotInSearch: true, Status: "published", Visibility: "catalog"},
		Doc{ID: "draft", Title: "Wool hat draft", Categories: []string{"Hats"}, Price: 20, InStock: true, NotInSearch: true, NotInRecommendations: true, Status: "draft"})
	for _, tt := range []struct {
		q    Query
		want string
	}{
		{Query{Text: "wool hat"}, "shown"},
		{Query{Category: "Hats", For: ForRecommendations}, "shop-only,shown"},
		{Query{Text: "wool hat", For: ForAdmin, Sort: "title"}, "shown,shop-only,draft,hidden"}, // by the whole title
		{Query{For: ForAdmin, Status: "unpublished"}, "draft"},
		{Query{For: ForAdmin, Visibility: "hidden"}, "hidden"},
	} {
		res, err := ix.Search(tt.q)
		if err != nil || strings.Join(res.IDs, ",") != tt.want {
			t.Errorf("%+v: %v %v, want %s", tt.q, res.IDs, err, tt.want)
		}
	}
	ids, err := ix.Similar(Doc{ID: "shown", Title: "Wool hat", Categories: []string{"Hats"}, Price: 20}, 10)
	if err != nil || strings.Join(ids, ",") != "shop-only" {
		t.Errorf("similar: %v %v", ids, err)
	}
}
