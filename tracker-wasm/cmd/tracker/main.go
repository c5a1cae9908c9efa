//go:build js && wasm

// Command tracker is Shoptrail's browser tracker, compiled to WebAssembly.
// The inline stub (tracker-wasm/stub.js) queues calls to shoptrail(...)
// until this program has loaded; it then replaces the queue function with
// its own and replays what was queued, in order.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"syscall/js"
	"time"

	"github.com/shoptrail/shoptrail/tracker-wasm/wire"
)

const (
	keyAnon = "shoptrail_aid"
	keySess = "shoptrail_sid"
	keyLast = "shoptrail_last" // unix ms of the last event
)

type tracker struct {
	endpoint string
	timeout  time.Duration
	pageSent bool // the stub has sent this page's page_view
	email    string
	queue    []wire.Event
}

func main() {
	t := &tracker{timeout: wire.MaxSessionIdle}
	win := js.Global()
	api := win.Get("shoptrail")
	var queued []js.Value
	if api.Truthy() {
		if e := api.Get("e"); e.Truthy() {
			t.endpoint = e.String()
		}
		if h := api.Get("h"); h.Type() == js.TypeNumber {
			t.timeout = time.Duration(h.Float() * float64(time.Hour))
		}
		t.pageSent = api.Get("pv").Truthy()
	}
	if api.Truthy() && api.Get("q").Truthy() {
		q := api.Get("q")
		for i := range q.Length() {
			queued = append(queued, q.Index(i))
		}
	}
	handler := js.FuncOf(func(this js.Value, args []js.Value) any {
		defer func() { recover() }() // never throw into the shop's page
		t.call(args)
		return nil
	})
	win.Set("shoptrail", handler)
	for _, args := range queued {
		var a []js.Value
		for i := range args.Length() {
			a = append(a, args.Index(i))
		}
		t.call(a)
	}
	flush := js.FuncOf(func(js.Value, []js.Value) any {
		if win.Get("document").Get("visibilityState").String() == "hidden" {
			t.flush(true)
		}
		return nil
	})
	win.Get("document").Call("addEventListener", "visibilitychange", flush)
	select {} // keep the handlers alive
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
			t.track("page_view", nil)
		}
	case "track":
		if len(args) > 1 {
			var props map[string]json.RawMessage
			if len(args) > 2 && args[2].Type() == js.TypeObject {
				props = toProps(args[2])
			}
			t.track(args[1].String(), props)
		}
	case "identify":
		if len(args) > 1 && args[1].Type() == js.TypeObject {
			if e := args[1].Get("email"); e.Truthy() {
				t.email = e.String()
				t.track("login", nil)
			}
		}
	}
}

func (t *tracker) track(typ string, props map[string]json.RawMessage) {
	loc := js.Global().Get("location").Get("href").String()
	now := time.Now().UTC()
	t.queue = append(t.queue, wire.Event{
		ID:          newID(),
		Type:        typ,
		Time:        &now,
		AnonymousID: t.anonymousID(),
		SessionID:   t.sessionID(now),
		Email:       t.email,
		URL:         loc,
		Referrer:    js.Global().Get("document").Get("referrer").String(),
		Props:       props,
	})
	t.flush(false)
}

// flush sends the queued events with fetch(keepalive), or sendBeacon when
// the page is being hidden.
func (t *tracker) flush(leaving bool) {
	if len(t.queue) == 0 || t.endpoint == "" {
		return
	}
	now := time.Now().UTC()
	body, err := json.Marshal(wire.Batch{SentAt: &now, Events: t.queue})
	if err != nil {
		t.queue = nil
		return
	}
	t.queue = nil
	url := t.endpoint + "/t"
	nav := js.Global().Get("navigator")
	if leaving && nav.Get("sendBeacon").Truthy() {
		nav.Call("sendBeacon", url, string(body))
		return
	}
	opts := map[string]any{"method": "POST", "body": string(body), "keepalive": true,
		"headers": map[string]any{"Content-Type": "text/plain"}}
	js.Global().Call("fetch", url, opts).Call("catch", js.FuncOf(func(js.Value, []js.Value) any { return nil }))
}

func (t *tracker) anonymousID() string {
	ls := js.Global().Get("localStorage")
	if v := ls.Call("getItem", keyAnon); v.Truthy() {
		return v.String()
	}
	id := newID()
	ls.Call("setItem", keyAnon, id)
	return id
}

// sessionID keeps the session in localStorage: it ends t.timeout after its
// last event.
func (t *tracker) sessionID(now time.Time) string {
	ls := js.Global().Get("localStorage")
	sid := ls.Call("getItem", keySess)
	last := ls.Call("getItem", keyLast)
	ms, _ := strconv.ParseInt(func() string {
		if last.Truthy() {
			return last.String()
		}
		return "0"
	}(), 10, 64)
	id := ""
	if sid.Truthy() && now.Sub(time.UnixMilli(ms)) <= t.timeout {
		id = sid.String()
	} else {
		id = newID()
		ls.Call("setItem", keySess, id)
	}
	ls.Call("setItem", keyLast, strconv.FormatInt(now.UnixMilli(), 10))
	return id
}

func toProps(o js.Value) map[string]json.RawMessage {
	s := js.Global().Get("JSON").Call("stringify", o).String()
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(s), &m) != nil {
		return nil
	}
	return m
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
