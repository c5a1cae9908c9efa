package web

import (
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestLimiterTokenBucket(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	l := newLimiter(2, 3, func() time.Time { return now })
	a := netip.MustParseAddr("192.0.2.1")
	for i := range 3 {
		if ok, _ := l.allow(a); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := l.allow(a)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("after the burst: %v, wait %s; want refused, 500ms", ok, wait)
	}
	if ok, _ := l.allow(netip.MustParseAddr("192.0.2.2")); !ok {
		t.Fatal("another client was refused")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.allow(a); !ok {
		t.Fatal("refused after a token came back")
	}
	if ok, _ := l.allow(a); ok {
		t.Fatal("allowed with no token")
	}
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	l := newLimiter(10, 20, func() time.Time { return now })
	l.maxClients = 100
	for i := range 10_000 {
		l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		if len(l.clients) > l.maxClients {
			t.Fatalf("%d clients tracked, bound %d", len(l.clients), l.maxClients)
		}
	}
	// idle clients are forgotten at the next sweep
	now = now.Add(2 * time.Minute)
	l.allow(netip.MustParseAddr("192.0.2.1"))
	if len(l.clients) != 1 {
		t.Fatalf("%d clients tracked after all went idle", len(l.clients))
	}
}

func TestLimiterConcurrentClients(t *testing.T) {
	l := newLimiter(1000, 50, time.Now)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := map[int]int{}
	for g := range 8 {
		wg.Go(func() {
			a := netip.AddrFrom4([4]byte{192, 0, 2, byte(g % 2)})
			n := 0
			for range 200 {
				if ok, _ := l.allow(a); ok {
					n++
				}
			}
			mu.Lock()
			allowed[g%2] += n
			mu.Unlock()
		})
	}
	wg.Wait()
	for c, n := range allowed {
		if n < 50 || n > 800 {
			t.Errorf("client %d: %d allowed", c, n)
		}
	}
}

func TestClientOf(t *testing.T) {
	p, err := parseProxies([]string{"10.0.0.0/8", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		peer string
		xff  []string
		want string
	}{
		{"192.0.2.7:1234", nil, "192.0.2.7"},
		{"192.0.2.7:1234", []string{"198.51.100.1"}, "192.0.2.7"}, // untrusted peer: XFF ignored
		{"10.1.2.3:1234", []string{"198.51.100.1"}, "198.51.100.1"},
		{"127.0.0.1:1234", []string{"6.6.6.6, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"}, // spoofed left part ignored
		{"127.0.0.1:1234", []string{"6.6.6.6", "198.51.100.2"}, "198.51.100.2"},
		{"10.1.2.3:1234", []string{"garbage"}, "10.1.2.3"},
		{"10.1.2.3:1234", nil, "10.1.2.3"},
		{"[2001:db8:1:2:3:4:5:6]:1234", nil, "2001:db8:1:2::"}, // per /64
		{"[::ffff:192.0.2.9]:1234", nil, "192.0.2.9"},
	} {
		r := &http.Request{RemoteAddr: tt.peer, Header: http.Header{}}
		for _, v := range tt.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := p.clientOf(r); got.String() != tt.want {
			t.Errorf("clientOf(%s, %v) = %s, want %s", tt.peer, tt.xff, got, tt.want)
		}
	}
}
