package automation

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// The server's clock ran 60 days ahead for a while (a bad NTP source, a
// VM restored with a wrong clock) and was put right: the views received
// meanwhile carry times 60 days ahead. The product's latest view is then
// in the future, and measured against it every real view of today was
// "more than the window older than the latest" — not indexed, pruned —
// so back_in_stock and price_drop mailed nobody for two months. The real
// viewers of the last 30 days stay in the index.
func TestAViewInTheFutureHidesNoRealViewer(t *testing.T) {
	st, s := openViews(t)
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	ahead := now.Add(60 * 24 * time.Hour)
	fold := func(who string, n int, at, foldNow time.Time) {
		t.Helper()
		err := st.Project(func(tx *store.Tx) error {
			set := false
			for i := range n {
				p := model.UserProfileID(fmt.Sprintf("%s%d@example.com", who, i))
				if err := s.viewed(tx, p, viewEvent("p9", at.Add(time.Duration(i)*time.Minute)), foldNow, &set); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	fold("ahead", 5, ahead, ahead) // while it was wrong
	fold("real", 20, now, now)     // put right
	got := map[string]bool{}
	st.Read(func(tx *store.Tx) error {
		return viewers(tx, "p9", now.Add(-viewWindow), func(profile string, at time.Time) { got[profile] = true })
	})
	for i := range 20 {
		if p := model.UserProfileID(fmt.Sprintf("real%d@example.com", i)); !got[p] {
			t.Errorf("%s, who viewed p9 within the window, is not among its viewers", p)
		}
	}
}
