package campaign

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
)

// ProjectionName is the name of the campaigns' projection.
const ProjectionName = "campaigns"

// space is what the projection keeps:
//
//	p/<profile id>                        Shopper (JSON)
//	r/<campaign id>/<group>/<variation>   Counter (JSON)
var space = store.ProjectionSpace(ProjectionName)

// OrderWindow is how long after an impression an order counts for the
// variation shown (reports and the "order" goal).
const OrderWindow = 7 * 24 * time.Hour

// Shopper is what the server knows of one shopper's campaigns.
type Shopper struct {
	Cart   Cart                   `json:"cart,omitzero"`
	Groups map[string]*GroupState `json:"g,omitempty"` // by groupKey
}

// Cart is the shopper's cart as add_to_cart, remove_from_cart and order
// events tell it.
type Cart struct {
	Currency string `json:"cur,omitempty"`
	Value    int64  `json:"v,omitempty"` // minor units
	Items    int64  `json:"n,omitempty"`
}

// GroupState is one shopper's history with one group of a campaign.
type GroupState struct {
	Variation   string    `json:"v,omitempty"`
	Impressions int       `json:"i,omitempty"`
	Session     string    `json:"s,omitempty"`  // the browser session of the last impression
	SessionImpr int       `json:"si,omitempty"` // impressions in that session
	Last        time.Time `json:"t,omitzero"`   // the last impression
	Clicked     bool      `json:"c,omitempty"`
	Closed      bool      `json:"x,omitempty"`
	Ordered     bool      `json:"o,omitempty"`
}

// reached reports whether the group reached goal for this shopper.
func (g *GroupState) reached(goal string) bool {
	if g == nil {
		return false
	}
	switch goal {
	case GoalClick:
		return g.Clicked
	case GoalClose:
		return g.Closed
	case GoalOrder:
		return g.Ordered
	}
	return g.Impressions > 0
}

// Counter is a variation's figures in the report.
type Counter struct {
	Impressions int64         `json:"impressions"`
	Shoppers    int64         `json:"shoppers"` // distinct shoppers with an impression
	Clicks      int64         `json:"clicks"`
	Clickers    int64         `json:"clickers"` // distinct shoppers who clicked
	Closes      int64         `json:"closes"`
	Orders      int64         `json:"orders"`    // within 7 days of an impression
	Converted   int64         `json:"converted"` // distinct shoppers who ordered within 7 days
	Revenue     model.Amounts `json:"revenue"`
}

func groupKey(campaignID string, group int) string {
	return campaignID + "/" + strconv.Itoa(group)
}

func counterKey(campaignID string, group int, variation string) string {
	return "r/" + groupKey(campaignID, group) + "/" + variation
}

// campaignProps reads campaign_id, group and variation from an event.
func campaignProps(ev *model.Event) (id string, group int, variation string, ok bool) {
	if json.Unmarshal(ev.Props["campaign_id"], &id) != nil || id == "" || len(id) > 64 {
		return "", 0, "", false
	}
	var g float64
	if json.Unmarshal(ev.Props["group"], &g) != nil || g < 0 || g >= MaxGroups || g != math.Trunc(g) {
		return "", 0, "", false
	}
	if json.Unmarshal(ev.Props["variation"], &variation) != nil || variation == "" || len(variation) > 100 || strings.Contains(variation, "/") {
		return "", 0, "", false
	}
	return id, int(g), variation, true
}

// Projection folds the campaigns' events: per shopper the impressions,
// clicks, closes and orders per group (caps and chaining) and the cart; per variation the report's counters. known tells which
// campaign ids exist, so that made-up ids store nothing.
func Projection(known func(string) bool) *project.Projection {
	return &project.Projection{
		Name:    ProjectionName,
		Version: 1,
		Owns:    []store.Space{space},
		Fold:    func(r *project.Run) error { return fold(r, known) },
		Move:    move,
		Erase:   func(tx *store.Tx, profileID string) error { return tx.Delete(space, "p/"+profileID) },
	}
}

func loadShopper(tx *store.Tx, profileID string) (*Shopper, error) {
	var sh Shopper
	err := tx.Get(space, "p/"+profileID, &sh)
	if errors.Is(err, store.ErrNotFound) {
		err = nil
	}
	if sh.Groups == nil {
		sh.Groups = map[string]*GroupState{}
	}
	return &sh, err
}

func fold(r *project.Run, known func(string) bool) error {
	shoppers := map[string]*Shopper{}
	counters := map[string]*Counter{}
	shopper := func(id string) (*Shopper, error) {
		if sh, ok := shoppers[id]; ok {
			return sh, nil
		}
		sh, err := loadShopper(r.Tx, id)
		shoppers[id] = sh
		return sh, err
	}
	counter := func(k string) (*Counter, error) {
		if c, ok := counters[k]; ok {
			return c, nil
		}
		var c Counter
		err := r.Tx.Get(space, k, &c)
		if errors.Is(err, store.ErrNotFound) {
			err = nil
		}
		counters[k] = &c
		return &c, err
	}
	for _, ev := range r.Events {
		if ev.Bot || ev.ProfileID == "" {
			continue
		}
		switch ev.Type {
		case EventImpression, EventClick, EventClose, model.Order, model.AddToCart, model.RemoveFromCart:
		default:
			continue
		}
		sh, err := shopper(ev.ProfileID)
		if err != nil {
			return err
		}
		switch ev.Type {
		case model.AddToCart, model.RemoveFromCart:
			cartChange(&sh.Cart, ev.Event)
			continue
		case model.Order:
			sh.Cart = Cart{}
			cur, minor := ev.OrderTotal()
			for k, g := range sh.Groups {
				if g.Last.IsZero() || ev.Time.Before(g.Last) || ev.Time.Sub(g.Last) > OrderWindow {
					continue
				}
				c, err := counter("r/" + k + "/" + g.Variation)
				if err != nil {
					return err
				}
				c.Orders++
				if minor > 0 {
					c.Revenue.Add(cur, minor)
				}
				if !g.Ordered {
					g.Ordered = true
					c.Converted++
				}
			}
			continue
		}
		id, group, variation, ok := campaignProps(ev.Event)
		if !ok || (known != nil && !known(id)) {
			continue
		}
		k := groupKey(id, group)
		g := sh.Groups[k]
		if g == nil {
			g = &GroupState{}
			sh.Groups[k] = g
		}
		c, err := counter(counterKey(id, group, variation))
		if err != nil {
			return err
		}
		switch ev.Type {
		case EventImpression:
			c.Impressions++
			if g.Impressions == 0 || g.Variation != variation {
				c.Shoppers++
			}
			g.Impressions++
			g.Variation = variation
			if g.Session == ev.SessionID {
				g.SessionImpr++
			} else {
				g.Session, g.SessionImpr = ev.SessionID, 1
			}
			if ev.Time.After(g.Last) {
				g.Last = ev.Time
			}
		case EventClick:
			c.Clicks++
			if !g.Clicked {
				g.Clicked = true
				c.Clickers++
			}
		case EventClose:
			c.Closes++
			g.Closed = true
		}
	}
	for id, sh := range shoppers {
		if err := r.Tx.Set(space, "p/"+id, sh); err != nil {
			return err
		}
	}
	for k, c := range counters {
		if err := r.Tx.Set(space, k, c); err != nil {
			return err
		}
	}
	return nil
}

// cartChange applies an add_to_cart or remove_from_cart to the cart:
// quantity (default 1) × price, in minor units, saturating, never below 0.
func cartChange(c *Cart, ev *model.Event) {
	qty := 1.0
	if raw := ev.Props["quantity"]; len(raw) > 0 {
		if q, err := strconv.ParseFloat(string(raw), 64); err == nil && q > 0 && q < 1e6 {
			qty = math.Trunc(q)
		}
	}
	var cur string
	json.Unmarshal(ev.Props["currency"], &cur)
	price, _ := strconv.ParseFloat(string(ev.Props["price"]), 64)
	if math.IsNaN(price) || math.IsInf(price, 0) || price < 0 {
		price = 0
	}
	minor := model.ToMinor(price*qty, cur)
	if c.Currency == "" {
		c.Currency = cur
	}
	if ev.Type == model.AddToCart {
		c.Value = model.AddMinor(c.Value, minor)
		c.Items += int64(qty)
		return
	}
	c.Value = max(0, c.Value-minor)
	c.Items = max(0, c.Items-int64(qty))
}

// move gives profile to what profile from had (an identity merge).
func move(tx *store.Tx, from, to string) error {
	a, err := loadShopper(tx, from)
	if err != nil {
		return err
	}
	b, err := loadShopper(tx, to)
	if err != nil {
		return err
	}
	if b.Cart.Items == 0 {
		b.Cart = a.Cart
	}
	for k, ga := range a.Groups {
		gb := b.Groups[k]
		if gb == nil {
			b.Groups[k] = ga
			continue
		}
		gb.Impressions += ga.Impressions
		gb.Clicked = gb.Clicked || ga.Clicked
		gb.Closed = gb.Closed || ga.Closed
		gb.Ordered = gb.Ordered || ga.Ordered
		if ga.Last.After(gb.Last) {
			gb.Last, gb.Variation = ga.Last, ga.Variation
			if ga.Session == gb.Session {
				gb.SessionImpr += ga.SessionImpr
			} else {
				gb.Session, gb.SessionImpr = ga.Session, ga.SessionImpr
			}
		}
	}
	if err := tx.Delete(space, "p/"+from); err != nil {
		return err
	}
	return tx.Set(space, "p/"+to, b)
}

// shopperState reads a shopper's state outside a fold.
func shopperState(tx *store.Tx, profileID string) (*Shopper, error) {
	return loadShopper(tx, profileID)
}
