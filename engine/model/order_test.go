package model

import (
	"encoding/json"
	"strconv"
	"testing"
)

func TestOrderTotalUsesTheCurrencysMinorUnit(t *testing.T) {
	for _, tt := range []struct {
		value, currency string
		minor           int64
	}{
		{"99.9", "EUR", 9990},
		{"1.005", "EUR", 101},
		{"1500", "JPY", 1500},
		{"1.2345", "KWD", 1235},
		{"12", "BHD", 12000},
	} {
		ev := &Event{Props: map[string]json.RawMessage{"value": json.RawMessage(tt.value), "currency": json.RawMessage(strconv.Quote(tt.currency))}}
		if cur, minor := ev.OrderTotal(); cur != tt.currency || minor != tt.minor {
			t.Errorf("OrderTotal(%s %s) = %s %d, want %d", tt.value, tt.currency, cur, minor, tt.minor)
		}
	}
}

func TestProductIDs(t *testing.T) {
	ev := &Event{Type: Order, Props: map[string]json.RawMessage{"items": json.RawMessage(`[{"product_id":"a"},{"product_id":12},{"product_id":"a"},{"product_id":{}}]`)}}
	if got := ev.ProductIDs(); len(got) != 2 || got[0] != "a" || got[1] != "12" {
		t.Errorf("order: %v", got)
	}
	ev = &Event{Type: ProductView, Props: map[string]json.RawMessage{"product_id": json.RawMessage(`" 1001 "`)}}
	if got := ev.ProductIDs(); len(got) != 1 || got[0] != "1001" {
		t.Errorf("product view: %v", got)
	}
}
