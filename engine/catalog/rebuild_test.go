package catalog

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/search"
)

// TestIndexRebuildsInTheBackground: with the index gone (a crash during
// indexing, a damaged index), Open returns at once; searches answer
// ErrRebuilding with progress until the rebuild is done, then find every
// product; lookups by ID work throughout.
func TestIndexRebuildsInTheBackground(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	indexDir := filepath.Join(dir, "search-index")
	c, err := Open(st, indexDir, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Import(bytes.NewReader(generated(6000)), "big"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	entries, _ := os.ReadDir(indexDir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(indexDir, e.Name()))
	}

	start := time.Now()
	c, err = Open(st, indexDir, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opened := time.Since(start)
	_, _, err = c.Search(search.Query{Text: "trail"})
	var rb *RebuildingError
	if !errors.As(err, &rb) || !errors.Is(err, ErrRebuilding) || rb.Total != 1500 {
		t.Fatalf("search right after Open (%v): %v; want ErrRebuilding of 1500 products", opened, err)
	}
	if _, err := c.Product("100001"); err != nil || c.Count() != 6000 || !c.Known("100001") {
		t.Fatalf("lookups during the rebuild: %v, %d products", err, c.Count())
	}
	if _, err := c.Import(bytes.NewReader(generated(10)), "during"); !errors.Is(err, ErrBusy) {
		t.Fatalf("an import during the rebuild: %v", err)
	}
	for {
		_, res, err := c.Search(search.Query{})
		if err == nil {
			if res.Total != 1500 {
				t.Fatalf("after the rebuild: %d main products", res.Total)
			}
			break
		}
		if !errors.Is(err, ErrRebuilding) || time.Since(start) > time.Minute {
			t.Fatalf("while rebuilding: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("Open took %v, the rebuild %v", opened, time.Since(start))
}
