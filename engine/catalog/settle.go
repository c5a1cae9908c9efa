package catalog

import (
	"errors"
	"fmt"
	"strings"

	"github.com/shoptrail/shoptrail/engine/feed"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// settle finishes a staged feed once the whole file is in: a variation's
// Parent and a grouped product's children become product IDs (a
// WooCommerce export names them by ID, id:N or SKU, and a variation may
// come before its parent); a variation without a URL gets its main
// product's; a main product without a price of its own (WooCommerce's
// variable and grouped products) gets the lowest and highest of its
// variations' or children's; a Google Merchant item_group_id that has no
// row of its own gets a main product made from its first variant.
//
// It reads the staged products back from Badger rather than holding the
// feed in memory; what it keeps is one small record per main product that
// has variations.
// stop is checked as it goes: an import stops when the catalogue closes.
func settle(st *store.Staging, links *feed.Links, rep *feed.Report, stop func() error) error {
	if err := st.Flush(); err != nil {
		return err
	}
	var getErr error
	get := func(id string) (model.Product, bool) {
		p, err := st.Get(id)
		if err != nil && !errors.Is(err, store.ErrNotFound) && getErr == nil {
			getErr = err
		}
		return p, err == nil
	}
	exists := func(id string) bool { _, ok := get(id); return ok }

	type family struct {
		lo, hi     int64 // effective prices of the published variations; lo -1: none
		stock      int64
		stockKnown bool
		variations int
		first      string // the first variation's ID
	}
	families := map[string]*family{}
	var order []string
	n := 0
	err := st.Scan(func(p model.Product) error {
		if n++; n%1000 == 0 {
			if err := stop(); err != nil {
				return err
			}
		}
		changed := false
		if p.MainID != "" {
			main, ok := links.Resolve(p.MainID, exists)
			switch {
			case ok && main != p.ID:
				if main != p.MainID {
					p.MainID, changed = main, true
				}
			case links.MakesGroups():
				// the group's main product is made below
			case !links.ParentsMustExist():
				// an orphan variation, as the feed says: found by its ID
			default:
				rep.Note(p.Line, feed.FieldMain, fmt.Sprintf("the parent %q is not in the feed: imported as a product of its own", p.MainID))
				p.MainID, changed = "", true
				rep.Variations--
			}
		}
		if p.MainID != "" && (exists(p.MainID) || links.MakesGroups()) {
			if p.URL == "" {
				if m, ok := get(p.MainID); ok && m.URL != "" {
					p.URL, changed = m.URL, true
					rep.NoURL--
				}
			}
			f := families[p.MainID]
			if f == nil {
				f = &family{lo: -1, stockKnown: true, first: p.ID}
				families[p.MainID] = f
				order = append(order, p.MainID)
			}
			f.variations++
			if p.Published() {
				eff := p.EffectivePrice()
				if f.lo < 0 || eff < f.lo {
					f.lo = eff
				}
				f.hi = max(f.hi, eff)
				if p.Stock == nil {
					f.stockKnown = false
				} else {
					f.stock += *p.Stock
				}
			}
		}
		if len(p.Children) > 0 {
			var kids []string
			lo, hi := int64(-1), int64(0)
			for _, ref := range p.Children {
				id, ok := links.Resolve(ref, exists)
				if !ok {
					rep.Note(p.Line, "grouped_products", fmt.Sprintf("the grouped product %q is not in the feed", ref))
					continue
				}
				kids = append(kids, id)
				if k, ok := get(id); ok && k.Published() {
					eff := k.EffectivePrice()
					if lo < 0 || eff < lo {
						lo = eff
					}
					hi = max(hi, eff)
				}
			}
			p.Children, changed = kids, true
			if p.Price == 0 && lo >= 0 {
				p.Price, p.DiscountPrice = lo, 0
				if hi > lo {
					p.PriceMax = hi
				}
			}
		}
		if !changed {
			return nil
		}
		return st.Put(p)
	})
	if err == nil {
		err = getErr
	}
	if err != nil {
		return err
	}
	for _, id := range order {
		f := families[id]
		m, ok := get(id)
		if !ok {
			if !links.MakesGroups() {
				continue
			}
			first, ok := get(f.first)
			if !ok {
				continue
			}
			m = groupMain(id, first)
			rep.Imported++
			if m.URL == "" {
				rep.NoURL++
			}
		}
		if m.MainID != "" {
			continue // a variation's variations: left as they are
		}
		if f.lo >= 0 && (m.Price == 0 || m.Type == model.TypeVariable) {
			m.Price, m.DiscountPrice, m.PriceMax = f.lo, 0, 0
			if f.hi > f.lo {
				m.PriceMax = f.hi
			}
		}
		if m.Stock == nil && f.stockKnown && f.lo >= 0 {
			s := f.stock
			m.Stock = &s
		}
		if err := st.Put(m); err != nil {
			return err
		}
	}
	return getErr
}

// groupMain makes the main product of a Google Merchant item group from
// its first variant: its title without the variant's colour or size.
func groupMain(id string, v model.Product) model.Product {
	title := v.Title
	for _, suffix := range []string{v.Size, v.Color} {
		if suffix != "" {
			title = strings.TrimSuffix(title, " - "+suffix)
		}
	}
	return model.Product{ID: id, Title: title, URL: v.URL, Description: v.Description, CategoryIDs: v.CategoryIDs,
		Categories: v.Categories, Currency: v.Currency, Photos: v.Photos, Brand: v.Brand, Type: model.TypeVariable,
		Status: model.StatusPublished, Visibility: model.VisibilityVisible, Line: v.Line}
}
