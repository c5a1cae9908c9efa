package admin

import (
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/shoptrail/shoptrail/engine/store"
)

func newGuard(t *testing.T) *Guard {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// a cost above the minimum, so that a hash takes long enough for
	// parallel attempts to overlap as they do with the real cost
	g, err := New(st, slog.New(slog.DiscardHandler), time.Now, bcrypt.MinCost+2)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Setup(g.SetupToken(), "owner", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	return g
}

// parallelLogins signs in n times at once with a wrong password, from the
// client client(i), and counts the outcomes.
func parallelLogins(g *Guard, n int, client func(int) string) (bad, throttled int) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := g.Login("owner", "wrong password", client(i))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrBadLogin):
				bad++
			case errors.Is(err, ErrThrottled):
				throttled++
			}
		}()
	}
	close(start)
	wg.Wait()
	return bad, throttled
}

// TestLoginThrottleIsAtomic: 40 parallel wrong passwords from one address
// get at most maxFailures evaluations; the rest are throttled without a hash.
func TestLoginThrottleIsAtomic(t *testing.T) {
	g := newGuard(t)
	bad, throttled := parallelLogins(g, 40, func(int) string { return "192.0.2.1" })
	if bad > maxFailures || bad+throttled != 40 {
		t.Fatalf("40 parallel wrong passwords: %d evaluated, %d throttled; want at most %d evaluated", bad, throttled, maxFailures)
	}
	// the right password is throttled too now: the address used its tries
	if _, err := g.Login("owner", "correct horse battery", "192.0.2.1"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("after the limit: %v", err)
	}
	// another address is not
	if _, err := g.Login("owner", "correct horse battery", "192.0.2.2"); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

// TestLoginThrottleTotal: guesses spread over many addresses stop at the
// total limit, also when they arrive at once.
func TestLoginThrottleTotal(t *testing.T) {
	g := newGuard(t)
	n := maxFailuresTotal + 30
	bad, throttled := parallelLogins(g, n, func(i int) string { return "198.51.100." + string(rune('a'+i%26)) + string(rune('a'+i/26)) })
	if bad > maxFailuresTotal || bad+throttled != n {
		t.Fatalf("%d parallel wrong passwords from many addresses: %d evaluated, %d throttled; want at most %d evaluated", n, bad, throttled, maxFailuresTotal)
	}
}

// TestLoginSuccessDoesNotCount: a successful sign-in gives its reserved
// attempt back, so an admin who signs in often is never locked out.
func TestLoginSuccessDoesNotCount(t *testing.T) {
	g := newGuard(t)
	for i := range maxFailures + 3 {
		if _, err := g.Login("owner", "correct horse battery", "192.0.2.9"); err != nil {
			t.Fatalf("sign-in %d: %v", i, err)
		}
	}
	for i := range maxFailures {
		if _, err := g.Login("owner", "wrong", "192.0.2.9"); !errors.Is(err, ErrBadLogin) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	if _, err := g.Login("owner", "wrong", "192.0.2.9"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("past the limit: %v", err)
	}
}

func TestCommonPasswordsAreRefused(t *testing.T) {
	for _, tt := range []struct {
		password string
		refused  bool
	}{
		{"1234567890", true},
		{"qwertyuiop", true},
		{"Password123!", true},  // a listed word with digits and signs
		{"  dragon2024 ", true}, // spaces around it
		{"SUNSHINE!!!!", true},  // any case
		{"aaaaaaaaaaaa", true},  // fewer than 4 different characters
		{"abababababab", true},  //
		{"correct horse battery", false},
		{"Tr0ub4dor&3x", false},
		{"a long enough password", false},
	} {
		st, err := store.Open(store.Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		g, err := New(st, slog.New(slog.DiscardHandler), time.Now, bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		err = g.Setup(g.SetupToken(), "owner", tt.password)
		if got := errors.Is(err, ErrCommonPassword); got != tt.refused || (!tt.refused && err != nil) {
			t.Errorf("password %q: %v; want refused=%v", tt.password, err, tt.refused)
		}
		st.Close()
	}
	if n := len(commonPasswords()); n < 3000 {
		t.Errorf("the list has %d passwords", n)
	}
}
