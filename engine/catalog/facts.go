package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Recorder appends facts to the event log (track.Tracker.Record): with
// also committed in the same transaction.
type Recorder func(ctx context.Context, evs []*model.Event, also func(tx *store.Tx) error) error

// factChunk is how many facts one Record carries: one transaction
// (halved if Badger finds it too big).
const factChunk = 1000

// RecordChangesWith makes imports record what they change in the event log
// (model.ProductBackInStock, model.ProductPriceDrop, for the automations)
// and records the facts a crash left waiting. Call it once, before imports
// run; without it imports record nothing.
func (c *Catalog) RecordChangesWith(rec Recorder) error {
	c.rec = rec
	return c.recordFacts()
}

// stageFacts compares the staged catalogue with the current one and stages
// a fact for every product (or variation) that comes back in stock or gets
// cheaper: it becomes live with the catalogue (store.Staging.PutFact).
func (c *Catalog) stageFacts(st *store.Staging) (int, error) {
	var n uint32
	err := st.Diff(func(old, cur *model.Product) error {
		typ := changeOf(old, cur)
		if typ == "" {
			return nil
		}
		props := map[string]json.RawMessage{
			"product_id": mustJSON(cur.ID),
			"title":      mustJSON(cur.Title),
			"currency":   mustJSON(cur.Currency),
			"old_price":  mustJSON(old.EffectivePrice()),
			"new_price":  mustJSON(cur.EffectivePrice()),
		}
		if cur.MainID != "" {
			props["main_id"] = mustJSON(cur.MainID)
		}
		// the id is the generation's and the fact's rank: a crash and the
		// same import again stage the same facts under the same ids, and
		// the log keeps one of each
		ev := &model.Event{ID: fmt.Sprintf("catalog-%d-%d", st.Generation(), n), Type: typ, Props: props}
		if err := st.PutFact(n, ev); err != nil {
			return err
		}
		n++
		if n%1000 == 0 {
			return c.stopped()
		}
		return nil
	})
	return int(n), err
}

// changeOf says what the import changed of a product that both catalogues
// hold: model.ProductBackInStock when it could not be bought before (out
// of stock, or missing from the last feed) and can now; model.ProductPriceDrop
// when it could be bought before and now, in the same currency, for less
// (the effective price: the sale price while a sale runs); "" otherwise.
// A product that is back in stock and cheaper is back in stock: one fact,
// with both prices.
func changeOf(old, cur *model.Product) string {
	if !cur.Published() || !cur.InStock() {
		return ""
	}
	switch {
	case !old.InStock():
		return model.ProductBackInStock
	case !old.Published():
		return "" // published now: new to shoppers, not cheaper
	case !strings.EqualFold(old.Currency, cur.Currency):
		return "" // prices in two currencies do not compare
	case cur.EffectivePrice() > 0 && cur.EffectivePrice() < old.EffectivePrice():
		return model.ProductPriceDrop
	}
	return ""
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// recordFacts moves the facts of committed imports into the event log, a
// chunk per transaction, each chunk deleted from the outbox in the
// transaction that appends it: recorded once, whatever crashes.
func (c *Catalog) recordFacts() error {
	if c.rec == nil {
		return nil
	}
	c.factsMu.Lock()
	defer c.factsMu.Unlock()
	total, chunk := 0, factChunk
	var last *store.Fact
	for {
		facts, err := c.st.Facts(last, chunk)
		if err != nil || len(facts) == 0 {
			if total > 0 {
				c.log.Info("catalogue changes recorded", "facts", total)
			}
			return err
		}
		evs := make([]*model.Event, len(facts))
		for i, f := range facts {
			evs[i] = f.Event
		}
		err = c.rec(context.Background(), evs, func(tx *store.Tx) error { return tx.DoneFacts(facts) })
		switch {
		case errors.Is(err, store.ErrTooBig) && chunk > 1:
			chunk /= 2
			continue
		case err != nil:
			return fmt.Errorf("catalog: record the import's changes: %w", err)
		}
		total += len(facts)
		last = &facts[len(facts)-1]
	}
}
