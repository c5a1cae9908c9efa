package web

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// limiter is a token bucket per client: rate requests per second, up to
// burst at once. Its memory is bounded: a client idle long enough to have
// a full bucket again is forgotten (it is the same as a new one), and when
// maxClients are tracked all the same, a random eighth is forgotten.
type limiter struct {
	rate, burst float64
	maxClients  int
	now         func() time.Time

	mu        sync.Mutex
	clients   map[netip.Addr]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// defaultMaxClients bounds the clients a limiter tracks: about 100 bytes
// each, so 10 MiB.
const defaultMaxClients = 100_000

func newLimiter(rate, burst int, now func() time.Time) *limiter {
	return &limiter{rate: float64(rate), burst: float64(max(burst, 1)), maxClients: defaultMaxClients, now: now, clients: map[netip.Addr]*bucket{}}
}

// allow takes a token for client, or says how long until there is one.
func (l *limiter) allow(client netip.Addr) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.clients[client]
	if !ok {
		if len(l.clients) >= l.maxClients || now.Sub(l.lastSweep) > time.Minute {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.clients[client] = b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(l.burst, b.tokens+d.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// sweep forgets the clients whose bucket is full again, and a random
// eighth of the others when that is not enough.
func (l *limiter) sweep(now time.Time) {
	l.lastSweep = now
	refill := time.Duration(l.burst / l.rate * float64(time.Second))
	for c, b := range l.clients {
		if now.Sub(b.last) >= refill {
			delete(l.clients, c)
		}
	}
	if excess := len(l.clients) - l.maxClients*7/8; excess > 0 {
		for c := range l.clients { // map order is random
			delete(l.clients, c)
			if excess--; excess == 0 {
				break
			}
		}
	}
}

// proxies decides who the client of a request is.
type proxies []netip.Prefix

func parseProxies(cidrs []string) (proxies, error) {
	var p proxies
	for _, c := range cidrs {
		if !strings.Contains(c, "/") {
			a, err := netip.ParseAddr(c)
			if err != nil {
				return nil, err
			}
			p = append(p, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		pfx, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, err
		}
		p = append(p, pfx.Masked())
	}
	return p, nil
}

func (p proxies) trusted(a netip.Addr) bool {
	for _, pfx := range p {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// clientOf returns the client's address: the peer's, unless the peer is a
// trusted proxy, in which case X-Forwarded-For is read from the right and
// the first address that is not a trusted proxy is the client (the ones
// left of it could have been written by anyone). IPv6 clients are counted
// per /64, the block one subscriber usually gets.
func (p proxies) clientOf(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	client := peer.Unmap()
	if p.trusted(client) {
	walk:
		for _, h := range slices.Backward(r.Header.Values("X-Forwarded-For")) {
			parts := strings.Split(h, ",")
			for i := len(parts) - 1; i >= 0; i-- {
				a, err := netip.ParseAddr(strings.TrimSpace(parts[i]))
				if err != nil {
					break walk
				}
				client = a.Unmap()
				if !p.trusted(client) {
					break walk
				}
			}
		}
	}
	if client.Is6() {
		block, _ := client.Prefix(64)
		return block.Addr()
	}
	return client
}

// rateLimited is a 429 that says when to come back.
func rateLimited(w http.ResponseWriter, wait time.Duration) error {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return errorf(http.StatusTooManyRequests, "rate_limited", "",
		"too many requests from this address; retry after "+strconv.Itoa(secs)+" second(s)")
}

// limit applies the per-client rate limit to a public route.
func (s *Server) limit(next handlerFunc) handlerFunc {
	if s.limiter == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		if ok, wait := s.limiter.allow(s.proxies.clientOf(r)); !ok {
			return rateLimited(w, wait)
		}
		return next(w, r)
	}
}
