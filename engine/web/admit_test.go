package web

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The byte semaphore never lets more than its limit in, however many
// requests race for it.
func TestInflightUnderConcurrency(t *testing.T) {
	f := newInflight(100)
	var in, peak, admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 300 {
				n := int64(10 + (g*7+i)%40)
				if !f.tryAcquire(n) {
					refused.Add(1)
					continue
				}
				admitted.Add(1)
				cur := in.Add(n)
				for p := peak.Load(); cur > p && !peak.CompareAndSwap(p, cur); p = peak.Load() {
				}
				time.Sleep(20 * time.Microsecond)
				in.Add(-n)
				f.release(n)
			}
		})
	}
	wg.Wait()
	if peak.Load() > 100 || f.used.Load() != 0 || admitted.Load() == 0 || refused.Load() == 0 {
		t.Fatalf("peak %d of 100, used %d, admitted %d, refused %d", peak.Load(), f.used.Load(), admitted.Load(), refused.Load())
	}
}

// The window shrinks while admitted requests are slow, by a quarter at most
// once per admitTarget, never below a quarter of the limit, and opens
// again with fast answers; a request is admitted when nothing else is in
// flight, however small the window.
func TestInflightWindowAdapts(t *testing.T) {
	const limit = 8 << 20
	f := newInflight(limit)
	now := time.Unix(1_700_000_000, 0)
	slow, fast := admitTarget+time.Millisecond, admitTarget/4
	f.observe(1<<20, slow, now)
	if w := f.window.Load(); w != limit*3/4 {
		t.Fatalf("after one slow answer: window %d, want %d", w, limit*3/4)
	}
	f.observe(1<<20, slow, now.Add(admitTarget/2)) // the same burst
	if w := f.window.Load(); w != limit*3/4 {
		t.Fatalf("a second slow answer within admitTarget cut again: window %d", w)
	}
	for i := range 50 {
		now = now.Add(admitTarget)
		f.observe(1<<20, slow, now.Add(time.Duration(i)))
	}
	if w := f.window.Load(); w != limit/4 {
		t.Fatalf("after many slow answers: window %d, want the floor %d", w, limit/4)
	}
	// a fresh 3 MiB request is admitted while nothing else is in flight,
	// a second one is not
	if !f.tryAcquire(3<<20) || f.tryAcquire(3<<20) {
		t.Fatalf("one request at a time past the window: used %d, window %d", f.used.Load(), f.window.Load())
	}
	f.release(3 << 20)
	for range 1000 {
		f.observe(1<<20, fast, now)
	}
	if w := f.window.Load(); w != limit {
		t.Fatalf("after fast answers: window %d, want the limit %d", w, limit)
	}
	f.observe(1<<20, admitTarget*3/4, now) // neither fast nor slow
	if w := f.window.Load(); w != limit {
		t.Fatalf("an answer between half and the target moved the window to %d", w)
	}
}

// Cuts and openings from many goroutines (run with -race) keep the window
// within [limit/4, limit], and the semaphore within the window's bound.
func TestInflightWindowUnderConcurrency(t *testing.T) {
	const limit = 1 << 20
	f := newInflight(limit)
	var wg sync.WaitGroup
	var over atomic.Int64
	for g := range 16 {
		wg.Go(func() {
			for i := range 2000 {
				n := int64(1 << 14)
				if f.tryAcquire(n) {
					if f.used.Load() > limit {
						over.Add(1)
					}
					f.release(n)
				}
				took := admitTarget / 8
				if (g+i)%3 == 0 {
					took = admitTarget * 2
				}
				f.observe(n, took, time.Now())
				if w := f.window.Load(); w < limit/4 || w > limit {
					t.Errorf("window %d out of [%d, %d]", w, limit/4, limit)
					return
				}
			}
		})
	}
	wg.Wait()
	if over.Load() > 0 || f.used.Load() != 0 {
		t.Fatalf("%d times over the limit; %d bytes still reserved", over.Load(), f.used.Load())
	}
}

// A request that finds no room waits, its body unread, and is admitted as
// room is freed, the newest first; one that waits longer than it may, or
// whose client goes away, is refused and leaves the queue.
func TestInflightWaitsForRoomInOrder(t *testing.T) {
	f := newInflight(100)
	ctx := context.Background()
	if !f.acquire(ctx, 100, 0) {
		t.Fatal("an empty semaphore refused")
	}
	if f.acquire(ctx, 10, 0) {
		t.Fatal("admitted past the limit without waiting")
	}
	// 30 then 60 wait; 30 freed would admit the first, but the newest goes
	// first: both wait until 60 are free
	admitted := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	for i, n := range []int64{30, 60} {
		go func() {
			if f.acquire(ctx, n, 5*time.Second) {
				close(admitted[i])
			}
		}()
		for f.waiting.Load() != int64(i+1) {
			time.Sleep(time.Millisecond)
		}
	}
	f.release(30)
	select {
	case <-admitted[0]:
		t.Fatal("the older admitted before the newer")
	case <-time.After(20 * time.Millisecond):
	}
	f.release(30)
	<-admitted[1]
	select {
	case <-admitted[0]:
		t.Fatal("the older admitted with no room for it")
	case <-time.After(20 * time.Millisecond):
	}
	f.release(40)
	<-admitted[0]
	if u := f.used.Load(); u != 90 {
		t.Fatalf("used %d, want 90", u)
	}
	// no room for 20 more: refused after its wait, and gone from the queue
	t0 := time.Now()
	if f.acquire(ctx, 20, 50*time.Millisecond) {
		t.Fatal("admitted past the limit")
	}
	if d := time.Since(t0); d < 50*time.Millisecond {
		t.Fatalf("refused after %s, before its wait", d)
	}
	// a client that goes away stops waiting
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if f.acquire(cctx, 20, time.Minute) {
		t.Fatal("admitted past the limit")
	}
	if w, q := f.waiting.Load(), len(f.queue); w != 0 || q != 0 {
		t.Fatalf("%d waiting, %d queued after refusals", w, q)
	}
	// and the next one in is not held back by them
	f.release(90)
	if !f.acquire(ctx, 100, 0) {
		t.Fatal("refused with the semaphore empty")
	}
}

// Many requests waiting at once (run with -race): the semaphore stays
// within its limit, every one is admitted (their waits are long enough),
// none is left waiting, and nothing stays reserved.
func TestInflightWaitingUnderConcurrency(t *testing.T) {
	f := newInflight(100)
	var in, peak, admitted atomic.Int64
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 100 {
				n := int64(10 + (g*7+i)%40)
				if !f.acquire(context.Background(), n, 10*time.Second) {
					t.Errorf("refused after 10 s")
					return
				}
				admitted.Add(1)
				cur := in.Add(n)
				for p := peak.Load(); cur > p && !peak.CompareAndSwap(p, cur); p = peak.Load() {
				}
				time.Sleep(10 * time.Microsecond)
				in.Add(-n)
				f.release(n)
			}
		})
	}
	wg.Wait()
	if peak.Load() > 100 || f.used.Load() != 0 || admitted.Load() != 3200 || f.waiting.Load() != 0 || len(f.queue) != 0 {
		t.Fatalf("peak %d of 100, used %d, admitted %d of 3200, %d waiting, %d queued",
			peak.Load(), f.used.Load(), admitted.Load(), f.waiting.Load(), len(f.queue))
	}
}
