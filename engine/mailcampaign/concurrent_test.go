package mailcampaign_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/mailcampaign"
)

// The daily cap is a read-modify-write: many takers at once get exactly
// max_per_day.
func TestTakeCapConcurrently(t *testing.T) {
	a, _ := mailApp(t, func(c *config.Config) { c.Email.MaxPerDay = 3 })
	var got atomic.Int64
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			ok, err := a.MailCampaigns.TakeCap("cap@example.com")
			if err != nil {
				t.Error(err)
			}
			if ok {
				got.Add(1)
			}
		})
	}
	wg.Wait()
	if got.Load() != 3 {
		t.Errorf("%d taken, want 3", got.Load())
	}
}

// Editing, cancelling and the sender's steps on one campaign at once: the
// campaign ends in one consistent state and nobody is queued twice.
func TestCampaignChangesConcurrently(t *testing.T) {
	a, srv := mailApp(t)
	for i := range 30 {
		user(t, a, fmt.Sprintf("c%02d@example.com", i), "C", "Rome", true)
	}
	a.Fold(t)
	seg := segment(t, a, `{"name":"Rome","conditions":[{"attribute":"city","op":"eq","value":"Rome"}]}`)
	svc := a.MailCampaigns
	c, err := svc.Create(mailcampaign.Input{Name: "R", Subject: "S", HTML: "<p>x</p>", Segment: seg})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			svc.Update(c.ID, mailcampaign.Input{Name: fmt.Sprintf("R%d", i), Subject: "S", HTML: "<p>x</p>", Segment: seg})
		})
		wg.Go(func() { svc.Schedule(c.ID, time.Time{}) })
		wg.Go(func() { svc.Step(context.Background()) })
	}
	wg.Wait()
	// an Update after the last Schedule made it a draft again: send it
	if _, err := svc.Schedule(c.ID, time.Time{}); err != nil && !errors.Is(err, mailcampaign.ErrState) {
		t.Fatal(err)
	}
	done := waitStatus(t, a, c.ID, "sent")
	if done.Progress.Queued != 30 {
		t.Errorf("queued %d, want 30", done.Progress.Queued)
	}
	msgs, err := srv.Wait(30, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		if seen[m.To[0]] {
			t.Errorf("%s got it twice", m.To[0])
		}
		seen[m.To[0]] = true
	}
}
