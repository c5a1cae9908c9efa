package model

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
)

// OrderTotal returns an order's currency and value in the currency's minor
// units (cents for EUR, yen for JPY, fils for KWD; see CurrencyDigits), as
// ingestion validated them (engine/track): 0 when there is no value.
func (ev *Event) OrderTotal() (currency string, minor int64) {
	var cur string
	if raw := ev.Props["currency"]; len(raw) > 0 && json.Unmarshal(raw, &cur) == nil {
		currency = strings.TrimSpace(cur)
	}
	v, err := strconv.ParseFloat(string(ev.Props["value"]), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return currency, 0
	}
	return currency, ToMinor(v, currency)
}

// ProductIDs returns the product IDs an event names: the product of a
// product view or a cart change, the distinct items of an order.
func (ev *Event) ProductIDs() []string {
	switch ev.Type {
	case ProductView, AddToCart, RemoveFromCart:
		if id := idString(ev.Props["product_id"]); id != "" {
			return []string{id}
		}
	case Order:
		var items []struct {
			ProductID json.RawMessage `json:"product_id"`
		}
		json.Unmarshal(ev.Props["items"], &items)
		var ids []string
		for _, it := range items {
			if id := idString(it.ProductID); id != "" && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		return ids
	}
	return nil
}

// idString reads an id sent as a JSON string or number (ids are often
// numbers in shop systems).
func idString(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return strings.TrimSpace(s)
	}
	if _, err := strconv.ParseFloat(string(raw), 64); err == nil {
		return string(raw)
	}
	return ""
}
