package store

import "github.com/shoptrail/shoptrail/engine/model"

// WouldRemove counts the products of the current catalogue, not removed
// yet, that the staged one lacks: what Commit would mark removed. Imports
// use it to refuse a feed that would empty most of the catalogue.
func (st *Staging) WouldRemove() (int, error) {
	cur, err := st.s.Catalogue()
	if err != nil {
		return 0, err
	}
	n := 0
	err = st.s.ScanProducts(cur, func(p model.Product) error {
		if !p.Removed && !st.seen[p.ID] {
			n++
		}
		return nil
	})
	return n, err
}
