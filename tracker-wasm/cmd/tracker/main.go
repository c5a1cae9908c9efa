//go:build js && wasm

// Command tracker is Shoptrail's browser tracker, compiled to WebAssembly.
// The inline stub (tracker-wasm/stub.js) has already counted the page view
// and queued calls to shoptrail(...) until this program loaded; it replaces
// the queue function with its own and replays what was queued, in order.
// The logic that needs no browser lives in package client.
package main

import (
	"syscall/js"

	"github.com/shoptrail/shoptrail/tracker-wasm/client"
)

// flushDelay gathers the events of a moment into one request (ms).
const flushDelay = 300

// Times are the browser's: unix milliseconds from Date.now(), ISO 8601
// from Date.toISOString(). Go's time package would add about 80 KB
// (brotli) to the module.
func nowMs() int64 { return int64(js.Global().Get("Date").Call("now").Float()) }

func isoNow() string { return js.Global().Get("Date").New().Call("toISOString").String() }

type tracker struct {
	st       client.Storage
	outbox   *client.Outbox
	endpoint string
	timeout  int64 // ms
	pageSent bool  // the stub has sent this page's page_view
	email    string
	sending  bool // a fetch is in flight
	timer    js.Value
}

func main() {
	win := js.Global()
	st := newStorage()
	t := &tracker{st: st, outbox: client.LoadOutbox(st), timeout: client.MaxSessionIdle}
	api := win.Get("shoptrail")
	var queued [][]js.Value
	if api.Truthy() {
		if e := api.Get("e"); e.Truthy() {
			t.endpoint = e.String()
		}
		if h := api.Get("h"); h.Type() == js.TypeNumber {
			t.timeout = int64(h.Float() * 3600e3)
		}
		t.pageSent = api.Get("pv").Truthy()
		if q := api.Get("q"); q.Truthy() {
			for i := range q.Length() {
				args := q.Index(i)
				var a []js.Value
				for j := range args.Length() {
					a = append(a, args.Index(j))
				}
				queued = append(queued, a)
			}
		}
	}
	fn := js.FuncOf(func(this js.Value, args []js.Value) any {
		t.safely(func() { t.call(args) })
		return nil
	})
	win.Set("shoptrail", fn)
	if api.Truthy() {
		// the stub's object keeps what the campaigns' head script and
		// renderer share (cq, cd, cj, uh); they find it here
		win.Get("shoptrail").Set("st", api)
	}
	for _, a := range queued {
		t.safely(func() { t.call(a) })
	}
	win.Get("document").Call("addEventListener", "visibilitychange", js.FuncOf(func(js.Value, []js.Value) any {
		if win.Get("document").Get("visibilityState").String() == "hidden" {
			t.safely(func() { t.flush(true) })
		}
		return nil
	}))
	t.safely(func() { t.flush(false) }) // what earlier pages left in the outbox
	watchHistory(win, api)
	select {} // keep the callbacks alive
}

// safely runs fn and swallows any panic: the tracker never throws into the
// shop's page.
func (t *tracker) safely(fn func()) {
	defer func() { recover() }()
	fn()
}

func (t *tracker) call(args []js.Value) {
	if len(args) == 0 {
		return
	}
	switch args[0].String() {
	case "init":
		if len(args) > 1 && args[1].Type() == js.TypeObject {
			if ep := args[1].Get("endpoint"); ep.Truthy() {
				t.endpoint = ep.String()
			}
		}
		if !t.pageSent {
			t.pageSent = true
			t.track("page_view", "")
		}
	case "track":
		if len(args) > 1 {
			var props string
			if len(args) > 2 && args[2].Type() == js.TypeObject {
				props = toProps(args[2])
			}
			t.track(args[1].String(), props)
		}
	case "identify":
		if len(args) > 1 && args[1].Type() == js.TypeObject {
			if e := args[1].Get("email"); e.Truthy() {
				t.email = e.String()
				client.Identified(t.st, t.email)
				t.track("login", "")
			}
		}
	}
}

func (t *tracker) track(typ string, props string) {
	now := nowMs()
	doc := js.Global().Get("document")
	t.outbox.Add(client.Event{
		ID:          newID(),
		Type:        typ,
		Time:        isoNow(),
		AnonymousID: client.AnonymousID(t.st, newID),
		SessionID:   client.Session(t.st, now, t.timeout, newID),
		Email:       t.email,
		URL:         js.Global().Get("location").Get("href").String(),
		Referrer:    doc.Get("referrer").String(),
		Props:       props,
	})
	if typ == "order" || typ == "checkout" {
		t.flush(false)
		return
	}
	t.schedule(flushDelay)
}

// schedule flushes in d milliseconds.
func (t *tracker) schedule(d int64) {
	if t.timer.Truthy() {
		js.Global().Call("clearTimeout", t.timer)
	}
	var cb js.Func
	cb = js.FuncOf(func(js.Value, []js.Value) any {
		cb.Release()
		t.timer = js.Undefined()
		t.safely(func() { t.flush(false) })
		return nil
	})
	t.timer = js.Global().Call("setTimeout", cb, d)
}

// flush sends the outbox: with sendBeacon when the page is being hidden
// (the browser delivers it after the page is gone), with fetch otherwise,
// retrying with backoff until the server acknowledges.
func (t *tracker) flush(leaving bool) {
	now := nowMs()
	if t.endpoint == "" || len(t.outbox.Events) == 0 {
		return
	}
	if leaving {
		body, n := t.outbox.Take(isoNow())
		nav := js.Global().Get("navigator")
		if nav.Get("sendBeacon").Truthy() && nav.Call("sendBeacon", t.endpoint+"/t", string(body)).Bool() {
			t.outbox.Sent(n)
		}
		return
	}
	if t.sending {
		return
	}
	if !t.outbox.Due(now) {
		t.schedule(t.outbox.RetryAt - now)
		return
	}
	body, n := t.outbox.Take(isoNow())
	t.sending = true
	var ok, fail js.Func
	done := func() { ok.Release(); fail.Release(); t.sending = false }
	ok = js.FuncOf(func(_ js.Value, args []js.Value) any {
		t.safely(func() {
			defer done()
			status := args[0].Get("status").Int()
			// 2xx: stored; 4xx: the server will never take these (it
			// stored the valid ones of the batch); 429 and 5xx: retry.
			if status < 500 && status != 429 {
				t.outbox.Sent(n)
				if len(t.outbox.Events) > 0 {
					t.schedule(0)
				}
				return
			}
			t.schedule(t.outbox.Failed(nowMs()))
		})
		return nil
	})
	fail = js.FuncOf(func(js.Value, []js.Value) any {
		t.safely(func() {
			defer done()
			t.schedule(t.outbox.Failed(nowMs()))
		})
		return nil
	})
	opts := map[string]any{
		"method": "POST", "body": string(body), "keepalive": len(body) < 60<<10,
		"headers": map[string]any{"Content-Type": "text/plain"},
	}
	js.Global().Call("fetch", t.endpoint+"/t", opts).Call("then", ok, fail)
}

// storage is localStorage, or memory where the browser refuses it.
type storage struct {
	ls  js.Value
	mem map[string]string
}

func newStorage() *storage {
	s := &storage{mem: map[string]string{}}
	func() {
		defer func() { recover() }()
		s.ls = js.Global().Get("localStorage")
	}()
	return s
}

func (s *storage) Get(k string) (v string, ok bool) {
	defer func() {
		if recover() != nil {
			v, ok = s.mem[k]
		}
	}()
	if !s.ls.Truthy() {
		v, ok = s.mem[k]
		return v, ok
	}
	r := s.ls.Call("getItem", k)
	if r.IsNull() {
		return "", false
	}
	return r.String(), true
}

func (s *storage) Set(k, v string) {
	s.mem[k] = v
	defer func() { recover() }()
	if s.ls.Truthy() {
		s.ls.Call("setItem", k, v)
	}
}

// toProps is the page's props object as JSON text (the server checks it);
// "" for anything that is not an object.
func toProps(o js.Value) string {
	s := js.Global().Get("JSON").Call("stringify", o)
	if s.Type() != js.TypeString {
		return ""
	}
	if str := s.String(); len(str) > 1 && str[0] == '{' {
		return str
	}
	return ""
}

// newID is 128 random bits in hex, from the browser's crypto (crypto/rand
// would add its implementation to the module).
func newID() string {
	const hex = "0123456789abcdef"
	a := js.Global().Get("Uint8Array").New(16)
	js.Global().Get("crypto").Call("getRandomValues", a)
	b := make([]byte, 16)
	js.CopyBytesToGo(b, a)
	out := make([]byte, 32)
	for i, c := range b {
		out[2*i], out[2*i+1] = hex[c>>4], hex[c&0xf]
	}
	return string(out)
}

// watchHistory asks again for the page's onsite campaigns when a
// single-page shop changes the URL through the History API. The campaign
// renderer does it itself once it is loaded (on pages where a campaign
// showed); this covers the pages where none did, so the renderer was never
// loaded.
func watchHistory(win, stub js.Value) {
	if !stub.Truthy() {
		return
	}
	hist := win.Get("history")
	url := win.Get("location").Get("href").String()
	changed := func() {
		defer func() { recover() }()
		now := win.Get("location").Get("href").String()
		if now == url {
			return
		}
		url = now
		s := stub
		if s.Get("cd").Type() != js.TypeFunction && s.Get("cq").Type() == js.TypeFunction {
			s.Call("cq")
		}
	}
	for _, m := range []string{"pushState", "replaceState"} {
		orig := hist.Get(m)
		if orig.Type() != js.TypeFunction {
			continue
		}
		hist.Set(m, js.FuncOf(func(this js.Value, args []js.Value) any {
			in := make([]any, len(args))
			for i, a := range args {
				in[i] = a
			}
			r := orig.Call("apply", this, js.Global().Get("Array").Call("of", in...))
			changed()
			return r
		}))
	}
	win.Call("addEventListener", "popstate", js.FuncOf(func(js.Value, []js.Value) any {
		changed()
		return nil
	}))
}
