package live

import (
	"sync"
	"testing"
	"time"
)

func TestHubNewestDraftAndExpiry(t *testing.T) {
	now := time.Unix(0, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := New(time.Minute, clock)
	tok, err := h.NewToken("c1")
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := h.Campaign(tok); !ok || id != "c1" {
		t.Fatalf("Campaign = %q %v", id, ok)
	}
	if _, err := h.Subscribe("nope"); err != ErrUnknownToken {
		t.Fatalf("unknown token: %v", err)
	}
	slow, _ := h.Subscribe(tok)
	fast, _ := h.Subscribe(tok)
	for i := range 1000 { // never blocks, however slow a tab is
		if err := h.Publish(tok, i); err != nil {
			t.Fatal(err)
		}
	}
	if v := <-fast.C; v != 999 {
		t.Fatalf("fast tab got %v; want the newest draft", v)
	}
	if v := <-slow.C; v != 999 {
		t.Fatalf("slow tab got %v; want the newest draft", v)
	}
	late, _ := h.Subscribe(tok)
	if v := <-late.C; v != 999 {
		t.Fatalf("a tab that joins late got %v", v)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if err := h.Publish(tok, 1); err != ErrUnknownToken {
		t.Fatalf("publish after expiry: %v", err)
	}
	if _, err := h.NewToken("c2"); err != nil { // sweeps
		t.Fatal(err)
	}
	if _, ok := <-fast.C; ok {
		t.Fatal("an expired token's tab stays open")
	}
}

func TestHubLimits(t *testing.T) {
	h := New(0, nil)
	tok, _ := h.NewToken("c")
	for range MaxSubsPerToken {
		if _, err := h.Subscribe(tok); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Subscribe(tok); err != ErrTooMany {
		t.Fatalf("tab %d: %v", MaxSubsPerToken+1, err)
	}
}

// TestHubConcurrent publishes, subscribes and leaves at once (run with -race).
func TestHubConcurrent(t *testing.T) {
	h := New(0, nil)
	tok, _ := h.NewToken("c")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				h.Publish(tok, i*1000+j)
			}
		})
		wg.Go(func() {
			for range 50 {
				s, err := h.Subscribe(tok)
				if err != nil {
					continue
				}
				select {
				case <-s.C:
				default:
				}
				h.Unsubscribe(tok, s)
			}
		})
	}
	wg.Wait()
}
