package store

import (
	"testing"

	"github.com/shoptrail/shoptrail/engine/model"
)

// A crash half-way through an import leaves the previous catalogue whole,
// and the next import clears what the crashed one left.
func TestCatalogueIsReplacedWholeOrNotAtAll(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	st, _ := s.StageCatalogue()
	st.Put(model.Product{ID: "a", Title: "old a"})
	st.Put(model.Product{ID: "b", Title: "old b"})
	if _, err := st.Commit(map[string]int{"n": 2}); err != nil {
		t.Fatal(err)
	}
	// an import that dies before Commit: its writes reach the disk, not the readers
	half, _ := s.StageCatalogue()
	half.Put(model.Product{ID: "a", Title: "new a"})
	half.wb.Flush()
	s.Close() // the process dies here

	s = open(t, dir)
	defer s.Close()
	if p, err := s.Product("a"); err != nil || p.Title != "old a" {
		t.Fatalf("after the crash: %+v %v", p, err)
	}
	if p, err := s.Product("b"); err != nil || p.Removed {
		t.Fatalf("after the crash b: %+v %v", p, err)
	}
	next, _ := s.StageCatalogue()
	next.Put(model.Product{ID: "c", Title: "c"})
	removed, err := next.Commit(map[string]int{})
	if err != nil || removed != 2 {
		t.Fatalf("removed %d, %v", removed, err)
	}
	var ids []string
	gen, _ := s.Catalogue()
	s.ScanProducts(gen, func(p model.Product) error {
		ids = append(ids, p.ID+map[bool]string{true: "(removed)"}[p.Removed])
		return nil
	})
	if len(ids) != 3 || ids[0] != "a(removed)" || ids[2] != "c" {
		t.Fatalf("catalogue %v: the crashed import's 'new a' must not be there", ids)
	}
	if p, _ := s.Product("a"); p.Title != "old a" {
		t.Errorf("a is %+v", p)
	}
}
