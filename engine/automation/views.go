package automation

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// What the projection keeps of product views, in projSpace:
//
//	v/<profile>/<product>               view: how often and when last the profile viewed the product;
//	                                    expires 30 days after it was written (browse abandonment)
//	pv/<product>/<unix ns, 16 hex>/<profile>  the product's recent viewers, by time (back_in_stock,
//	                                    price_drop): people with an email only; product escaped;
//	                                    expires with the v/ key written with it
//	pvn/<product>                       viewerCount: about how many pv/ keys the product has, the oldest
//
// A fact about a product reads its pv/ keys newest first down to 30 days
// before the fact: no scan of all users. The index is bounded: at most
// maxViewers people per product (the most recent), and keys older than the
// window are pruned as new views arrive.

const (
	// viewWindow is how recent a view must be for back_in_stock and
	// price_drop (the issue: "viewed in the last 30 days").
	viewWindow = 30 * 24 * time.Hour
	// maxViewers bounds a product's index of viewers: the people who
	// viewed it last. It also bounds what one fact writes in the fold's
	// transaction (a timer per viewer).
	maxViewers = 1000
)

type view struct {
	N  int       `json:"n"`
	At time.Time `json:"at"`
}

type viewerCount struct {
	N      int       `json:"n"`
	Oldest time.Time `json:"oldest"`
	// Newest is the time of the product's latest view (zero in records
	// written before it was kept: set by the next view).
	Newest time.Time `json:"newest,omitzero"`
}

func viewKey(profile, product string) string { return "v/" + profile + "/" + product }

func indexPrefix(product string) string { return "pv/" + url.PathEscape(product) + "/" }

func indexKey(product string, at time.Time, profile string) string {
	return fmt.Sprintf("%s%016x/%s", indexPrefix(product), uint64(at.UnixNano()), profile)
}

// parseIndexKey returns the time and profile of a key under indexPrefix.
func parseIndexKey(prefix, k string) (time.Time, string, bool) {
	rest, ok := strings.CutPrefix(k, prefix)
	if !ok || len(rest) < 18 || rest[16] != '/' {
		return time.Time{}, "", false
	}
	ns, err := strconv.ParseUint(rest[:16], 16, 64)
	if err != nil {
		return time.Time{}, "", false
	}
	return time.Unix(0, int64(ns)), rest[17:], true
}

func countKey(product string) string { return "pvn/" + url.PathEscape(product) }

// viewed folds a product view: the count for browse abandonment, and the
// product's index of recent viewers for people with an email.
func (s *Service) viewed(tx *store.Tx, profile string, ev *model.Event, now time.Time, set *bool) error {
	for _, id := range ev.ProductIDs() {
		k := viewKey(profile, id)
		var v view
		if err := tx.Get(projSpace, k, &v); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		prev := v.At
		v.N++
		if ev.Time.After(v.At) {
			v.At = ev.Time
		}
		if err := tx.SetTTL(projSpace, k, v, viewWindow); err != nil {
			return err
		}
		if model.ProfileEmail(profile) == "" {
			continue
		}
		if err := indexView(tx, id, profile, v.At, prev, now); err != nil {
			return err
		}
		if v.N == 2 {
			ok, err := s.start(tx, BrowseAbandonment, profile, ev, []string{id}, now)
			if err != nil {
				return err
			}
			*set = *set || ok
		}
	}
	return nil
}

// indexView puts profile in product's index at its view at, in place of
// its entry at prev (zero: none); now is the fold's clock.
func indexView(tx *store.Tx, product, profile string, at, prev, now time.Time) error {
	var c viewerCount
	if err := tx.Get(projSpace, countKey(product), &c); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if !prev.IsZero() {
		if err := unindex(tx, product, profile, prev, &c); err != nil {
			return err
		}
	}
	// A latest view after the fold's clock was received while the clock
	// ran ahead (and was put right since): measured against it, every
	// view of today would be history, and back_in_stock would mail no one
	// until the clock caught up with it.
	if c.Newest.After(now) {
		c.Newest = now
	}
	if at.After(c.Newest) {
		c.Newest = at
	}
	// A view more than the window older than the product's latest view is
	// history that no fact will ask for: a fact acts only when it is recent
	// (stale), so it comes after every view folded before it. Such views
	// arrive when the log is folded again, or history is imported, in no
	// order of time; indexed, each one made the next view prune.
	if at.Before(c.Newest.Add(-viewWindow)) {
		return tx.SetTTL(projSpace, countKey(product), c, viewWindow)
	}
	// the entry expires with the profile's v/ key, written with it: an
	// erasure that finds no v/ key has nothing left in the index either
	if err := tx.SetTTL(projSpace, indexKey(product, at, profile), 1, viewWindow); err != nil {
		return err
	}
	c.N++
	if c.Oldest.IsZero() || at.Before(c.Oldest) {
		c.Oldest = at
	}
	// prune now and then, not at every view: over the bound by an eighth,
	// or holding a view more than a day past the window before the latest
	// (a prune scans the index, and Badger sorts the fold's pending writes
	// for every scan)
	if c.N > maxViewers+maxViewers/8 || c.Newest.Sub(c.Oldest) > viewWindow+24*time.Hour {
		if err := prune(tx, product, c.Newest.Add(-viewWindow), &c); err != nil {
			return err
		}
	}
	return tx.SetTTL(projSpace, countKey(product), c, viewWindow)
}

// unindex removes profile's entry at `at` from product's index, if there.
func unindex(tx *store.Tx, product, profile string, at time.Time, c *viewerCount) error {
	k := indexKey(product, at, profile)
	if ok, err := tx.Has(projSpace, k); err != nil || !ok {
		return err
	}
	c.N = max(c.N-1, 0)
	return tx.Delete(projSpace, k)
}

// prune drops the oldest entries of product's index until it holds at most
// maxViewers, none before cutoff, and counts it again (entries also expire
// on their own: see indexView).
func prune(tx *store.Tx, product string, cutoff time.Time, c *viewerCount) error {
	pfx := indexPrefix(product)
	var keys []string
	var times []time.Time
	err := tx.ScanFrom(projSpace, pfx, "", false, false, func(k string, _ json.RawMessage) (bool, error) {
		if at, _, ok := parseIndexKey(pfx, k); ok {
			keys, times = append(keys, k), append(times, at)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	drop := 0
	for drop < len(keys) && (len(keys)-drop > maxViewers || times[drop].Before(cutoff)) {
		if err := tx.Delete(projSpace, keys[drop]); err != nil {
			return err
		}
		drop++
	}
	c.N, c.Oldest = len(keys)-drop, time.Time{}
	if drop < len(keys) {
		c.Oldest = times[drop]
	}
	return nil
}

// viewers calls fn with the people with an email who viewed product since
// `since`, newest first, with the time of their last view.
func viewers(tx *store.Tx, product string, since time.Time, fn func(profile string, at time.Time)) error {
	pfx := indexPrefix(product)
	return tx.ScanFrom(projSpace, pfx, "", true, false, func(k string, _ json.RawMessage) (bool, error) {
		at, profile, ok := parseIndexKey(pfx, k)
		if !ok {
			return true, nil
		}
		if at.Before(since) {
			return false, nil
		}
		fn(profile, at)
		return true, nil
	})
}

// profileViews returns the v/ keys of a profile and their views.
func profileViews(tx *store.Tx, profile string) (products []string, views []view, err error) {
	pfx := "v/" + profile + "/"
	err = tx.Scan(projSpace, pfx, func(k string, raw json.RawMessage) (bool, error) {
		var v view
		if err := json.Unmarshal(raw, &v); err != nil {
			return false, err
		}
		products, views = append(products, strings.TrimPrefix(k, pfx)), append(views, v)
		return true, nil
	})
	return products, views, err
}

// moveViews gives profile to the views of profile from: counts add up, the
// later time stays, and the index follows.
func moveViews(tx *store.Tx, from, to string, now time.Time) error {
	products, views, err := profileViews(tx, from)
	if err != nil {
		return err
	}
	for i, product := range products {
		vf := views[i]
		var vt view
		if err := tx.Get(projSpace, viewKey(to, product), &vt); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := dropFromIndex(tx, product, from, vf.At); err != nil {
			return err
		}
		merged := view{N: vf.N + vt.N, At: vt.At}
		if vf.At.After(merged.At) {
			merged.At = vf.At
		}
		if err := tx.SetTTL(projSpace, viewKey(to, product), merged, viewWindow); err != nil {
			return err
		}
		if err := tx.Delete(projSpace, viewKey(from, product)); err != nil {
			return err
		}
		if model.ProfileEmail(to) != "" {
			if err := indexView(tx, product, to, merged.At, vt.At, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// eraseViews forgets a profile's views and its place in the indexes.
func eraseViews(tx *store.Tx, profile string) error {
	products, views, err := profileViews(tx, profile)
	if err != nil {
		return err
	}
	for i, product := range products {
		if err := dropFromIndex(tx, product, profile, views[i].At); err != nil {
			return err
		}
		if err := tx.Delete(projSpace, viewKey(profile, product)); err != nil {
			return err
		}
	}
	return nil
}

func dropFromIndex(tx *store.Tx, product, profile string, at time.Time) error {
	var c viewerCount
	switch err := tx.Get(projSpace, countKey(product), &c); {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	if err := unindex(tx, product, profile, at, &c); err != nil {
		return err
	}
	if c.N == 0 {
		return tx.Delete(projSpace, countKey(product))
	}
	return tx.SetTTL(projSpace, countKey(product), c, viewWindow)
}
