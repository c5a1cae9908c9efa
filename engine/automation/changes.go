package automation

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/mailcampaign"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// back_in_stock and price_drop: a feed import records a fact for each
// product (or variation) that comes back in stock or gets cheaper
// (engine/catalog); the projection finds the people with an email who
// viewed the product (or its main product) in the 30 days before, through
// the product's index of viewers (views.go), and keeps the change for each
// (a key per person and product family) with a timer. The timer tells
// about every change waiting for the person when it is due: one message
// per import, not one per product. When it is due, each product is
// checked again: still in stock (and still cheaper than before), not in
// its cooldown for that person, not ordered by them since they viewed it.

// change is one product a back_in_stock or price_drop timer tells about.
type change struct {
	Product  string    `json:"product"`
	Main     string    `json:"main,omitempty"` // a variation's main product
	Old      int64     `json:"old"`            // effective price before, minor units
	New      int64     `json:"new"`
	Currency string    `json:"currency,omitempty"`
	Viewed   time.Time `json:"viewed"` // the person's last view of it
}

// family is what the cooldown and the one-per-message rule count: the main
// product of a variation.
func (c change) family() string {
	if c.Main != "" {
		return c.Main
	}
	return c.Product
}

// maxChanges bounds the products one message tells about: what a products
// block shows. More waiting at once go in the next message.
const maxChanges = 12

func propInt(ev *model.Event, k string) int64 {
	var v int64
	if raw, ok := ev.Props[k]; ok {
		json.Unmarshal(raw, &v)
	}
	return v
}

// productChanged folds a product_back_in_stock or product_price_drop fact:
// a timer for each recent viewer. It returns how many it set.
func (s *Service) productChanged(tx *store.Tx, ev *model.Event, now time.Time) (int, error) {
	name := BackInStock
	if ev.Type == model.ProductPriceDrop {
		name = PriceDrop
	}
	a, _ := s.get(name)
	if !a.Enabled {
		return 0, nil
	}
	due := ev.Time.Add(a.Delay.Duration)
	if due.Add(stale).Before(now) {
		return 0, nil // history folded again
	}
	c := change{Product: propString(ev, "product_id"), Main: propString(ev, "main_id"),
		Old: propInt(ev, "old_price"), New: propInt(ev, "new_price"), Currency: propString(ev, "currency")}
	if c.Product == "" {
		return 0, nil
	}
	seen := map[string]time.Time{}
	var order []string
	for _, id := range []string{c.Product, c.Main} {
		if id == "" {
			continue
		}
		err := viewers(tx, id, ev.Time.Add(-viewWindow), func(profile string, at time.Time) {
			if at.After(ev.Time) {
				return // viewed after the change (history folded again)
			}
			if prev, ok := seen[profile]; !ok {
				order = append(order, profile)
				seen[profile] = at
			} else if at.After(prev) {
				seen[profile] = at
			}
		})
		if err != nil {
			return 0, err
		}
	}
	n := 0
	for _, profile := range order {
		if model.ProfileEmail(profile) == "" {
			continue
		}
		pc := c
		pc.Viewed = seen[profile]
		if err := addChange(tx, name, profile, due, ev.Time, pc); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// chgKey is where a change waits for the person's timer: one per product
// family.
func chgKey(name, profile, family string) string {
	return chgPrefix(name, profile) + url.PathEscape(family)
}

func chgPrefix(name, profile string) string { return "chg/" + name + "/" + profile + "/" }

// addChange keeps a change for the profile and sets its timer of name due
// at due. The change is a key of its own, not part of the timer, and the
// timer is always a new key (later than the one it replaces): the sender
// may be reading the waiting one while this transaction commits, and it
// deletes only the keys it read, so a change that arrives meanwhile waits
// for the new timer instead of being lost.
func addChange(tx *store.Tx, name, profile string, due, trigger time.Time, c change) error {
	if err := tx.Set(sp, chgKey(name, profile, c.family()), c); err != nil {
		return err
	}
	var k string
	switch err := tx.Get(sp, pendingKey(name, profile), &k); {
	case err == nil:
		if dk, err := parseDueKey(k); err == nil && !due.After(dk.at) {
			due = dk.at.Add(time.Nanosecond)
		}
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	return schedule(tx, name, profile, due, timer{Name: name, Email: model.ProfileEmail(profile), Trigger: trigger})
}

// waitingChanges returns the changes waiting for a profile's timer of name,
// with their keys.
func waitingChanges(tx *store.Tx, name, profile string) (keys []string, changes []change, err error) {
	err = tx.Scan(sp, chgPrefix(name, profile), func(k string, v json.RawMessage) (bool, error) {
		var c change
		if err := json.Unmarshal(v, &c); err != nil {
			return false, err
		}
		keys, changes = append(keys, k), append(changes, c)
		return true, nil
	})
	return keys, changes, err
}

// moveChanges gives profile to the waiting changes of profile from (to
// with no email: they are dropped).
func moveChanges(tx *store.Tx, from, to string) error {
	for _, name := range []string{BackInStock, PriceDrop} {
		keys, changes, err := waitingChanges(tx, name, from)
		if err != nil {
			return err
		}
		for i, k := range keys {
			if model.ProfileEmail(to) != "" {
				if err := tx.Set(sp, chgKey(name, to, changes[i].family()), changes[i]); err != nil {
					return err
				}
			}
			if err := tx.Delete(sp, k); err != nil {
				return err
			}
		}
	}
	return nil
}

func productCooldownKey(name, email, family string) string {
	return "last/" + name + "/" + email + "/" + family
}

// forgetCooldowns deletes when the automations last mailed email (an
// erasure).
func forgetCooldowns(tx *store.Tx, email string) error {
	var keys []string
	for _, name := range Names {
		keys = append(keys, "last/"+name+"/"+email)
		if err := tx.ScanFrom(sp, "last/"+name+"/"+email+"/", "", false, false, func(k string, _ json.RawMessage) (bool, error) {
			keys = append(keys, k)
			return true, nil
		}); err != nil {
			return err
		}
	}
	for _, k := range keys {
		if err := tx.Delete(sp, k); err != nil {
			return err
		}
	}
	return nil
}

// stillTrue keeps the changes of a due back_in_stock or price_drop timer
// that still hold: not in their cooldown for the person, still in stock
// (and still cheaper than before) in the catalogue, not ordered by the
// person since they viewed it; at most maxChanges. later lists the
// indexes in waiting of those that hold but did not fit: they wait for the
// next message. It returns why none is left.
func (s *Service) stillTrue(a Automation, t timer, waiting []change) (keep []change, later []int, why string, err error) {
	now := s.now()
	why = "nothing changed any more"
	var orders []*model.Event
	ordersRead := false
	for i, c := range waiting {
		var last time.Time
		err := s.st.Read(func(tx *store.Tx) error { return tx.Get(sp, productCooldownKey(t.Name, t.Email, c.family()), &last) })
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, nil, "", err
		}
		if !last.IsZero() && now.Sub(last) < a.Cooldown.Duration {
			why = "cooldown"
			continue
		}
		family := []string{c.Product, c.Main}
		if s.o.Products != nil {
			it, err := s.o.Products.Product(c.Product)
			if errors.Is(err, store.ErrNotFound) {
				why = "product gone"
				continue
			}
			if err != nil {
				return nil, nil, "", err
			}
			cur := it.EffectivePrice()
			if !it.InStock() || !it.Published() {
				why = "out of stock again"
				continue
			}
			if t.Name == PriceDrop && (cur >= c.Old || !strings.EqualFold(it.Currency, c.Currency)) {
				why = "not cheaper any more"
				continue
			}
			c.New = cur
			if m, err := s.o.Products.Product(c.family()); err == nil {
				for _, v := range m.Variations {
					family = append(family, v.ID)
				}
			}
		}
		if !ordersRead {
			if orders, err = s.orders(t.Email); err != nil {
				return nil, nil, "", err
			}
			ordersRead = true
		}
		if boughtSince(orders, family, c.Viewed) {
			why = "ordered"
			continue
		}
		if len(keep) == maxChanges {
			later = append(later, i)
			continue
		}
		keep = append(keep, c)
	}
	return keep, later, why, nil
}

// orders returns a person's order events.
func (s *Service) orders(email string) ([]*model.Event, error) {
	var out []*model.Event
	err := s.st.Read(func(tx *store.Tx) error {
		return tx.ProfileEvents(model.UserProfileID(email), func(typ string) bool { return typ == model.Order }, func(ev *model.Event) error {
			out = append(out, ev)
			return nil
		})
	})
	return out, err
}

// boughtSince reports whether one of the orders after `since` holds one of
// the products.
func boughtSince(orders []*model.Event, products []string, since time.Time) bool {
	for _, o := range orders {
		if o.Time.Before(since) {
			continue
		}
		for _, id := range o.ProductIDs() {
			if id != "" && slices.Contains(products, id) {
				return true
			}
		}
	}
	return false
}

// oldPrices shows the changed products with their price before the change
// struck through: the products block shows a price above a lower one as a
// discount.
type oldPrices struct {
	mailcampaign.Products
	old map[string]int64
}

func (o oldPrices) Product(id string) (catalog.Item, error) {
	it, err := o.Products.Product(id)
	if err != nil {
		return it, err
	}
	if old, ok := o.old[id]; ok {
		if cur := it.EffectivePrice(); old > cur {
			it.Price, it.DiscountPrice, it.PriceMax = old, cur, 0
		}
	}
	return it, nil
}
