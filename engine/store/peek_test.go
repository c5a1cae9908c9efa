package store

import (
	"testing"

	"github.com/shoptrail/shoptrail/engine/model"
)

// peekType finds the type that AppendJSON wrote, whatever the id holds.
func TestPeekType(t *testing.T) {
	for _, ev := range []model.Event{
		{Seq: 1, ID: "a", Type: "page_view"},
		{Seq: 2, ID: `x","type":"order`, Type: "product_view"},
		{Seq: 3, ID: `\",\"type\":\"y`, Type: "wishlist_add"},
		{Seq: 4, ID: "é", Type: "Ünïcode event"},
	} {
		b := ev.AppendJSON(nil)
		if typ, ok := peekType(b); !ok || typ != ev.Type {
			t.Errorf("%s: peeked %q %v, want %q", b, typ, ok, ev.Type)
		}
	}
	if _, ok := peekType([]byte(`{"seq":1,"id":"a","type":"a\"b"}`)); ok {
		t.Error("an escaped type should be decoded, not peeked")
	}
}
