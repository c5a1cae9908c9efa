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
