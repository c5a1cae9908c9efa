package store

import (
	"errors"

	"github.com/shoptrail/shoptrail/engine/model"
)

// OrderBook is where a projection keeps the order events it counted, one
// per order_id, and how many orders the shop confirmed.
type OrderBook struct {
	records ns
	stats   []byte
}

// Order returns the record kept for an order_id, nil if none.
func (tx *Tx) Order(b OrderBook, orderID string) (*model.OrderRecord, error) {
	var rec model.OrderRecord
	err := tx.getJSON(b.records.key(orderID), &rec)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// PutOrder keeps the record of an order_id.
func (tx *Tx) PutOrder(b OrderBook, orderID string, rec model.OrderRecord) error {
	return tx.setJSON(b.records.key(orderID), rec)
}

// DeleteOrder forgets an order_id.
func (tx *Tx) DeleteOrder(b OrderBook, orderID string) error {
	return tx.delete(b.records.key(orderID))
}

// AddConfirmedOrders adds to how many orders the shop confirmed.
func (tx *Tx) AddConfirmedOrders(b OrderBook, n int64) error { return tx.addCount(b.stats, n) }

// ConfirmedOrders returns how many orders the shop confirmed through the
// API: when there are any, reports count only confirmed orders.
func (s *Store) ConfirmedOrders(b OrderBook) (uint64, error) { return s.uint64OrZero(b.stats) }
