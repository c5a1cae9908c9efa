package segment

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
)

// maxEntries bounds the event times a profile keeps per atom: a count
// within a window saturates there (the all-time count does not).
const maxEntries = 1000

// orderKeep is how long order entries are kept at least, so that an order
// sent again (a reloaded thank-you page, the shop confirming a browser's
// claim) replaces the first one instead of counting twice.
const orderKeep = 30 * 24 * time.Hour

// entry is one event an atom counted: its time and, for orders, the order.
type entry struct {
	T int64  `json:"t"`           // event time, Unix milliseconds
	O string `json:"o,omitempty"` // order_id
	C string `json:"c,omitempty"` // currency
	M int64  `json:"m,omitempty"` // value in minor units
	V bool   `json:"v,omitempty"` // confirmed by the shop (sent through the API)
}

// fact is what a profile keeps about one atom: all-time counts and sums,
// and the events within the longest window that rules count over, oldest
// first.
type fact struct {
	N  int64            `json:"n"`
	NC map[string]int64 `json:"nc,omitempty"` // orders per currency
	S  model.Amounts    `json:"s,omitempty"`  // order value per currency
	E  []entry          `json:"e,omitempty"`
}

// add counts an event that matched the atom.
func (f *fact) add(ev *model.Event) {
	e := entry{T: ev.Time.UnixMilli()}
	if ev.Type == model.Order {
		id, rec := ev.Order()
		e.O, e.C, e.M, e.V = id, rec.Currency, rec.Minor, rec.Verified
	}
	f.addEntry(e, ev.Type == model.Order)
}

// addEntry counts an event that matched the atom: an order when order.
func (f *fact) addEntry(e entry, order bool) {
	if order {
		id := e.O
		if id != "" {
			if i := slices.IndexFunc(f.E, func(x entry) bool { return x.O == id }); i >= 0 {
				prev := f.E[i]
				if prev.V && !e.V {
					return // a browser's claim after the shop's confirmation
				}
				f.S.Add(prev.C, -prev.M)
				f.NC[prev.C]--
				f.E = slices.Delete(f.E, i, i+1)
				f.N--
			}
		}
		if f.NC == nil {
			f.NC = map[string]int64{}
		}
		f.NC[e.C]++
		f.S.Add(e.C, e.M)
	}
	if f.N < 1<<62 {
		f.N++
	}
	i := len(f.E)
	for i > 0 && f.E[i-1].T > e.T {
		i--
	}
	f.E = slices.Insert(f.E, i, e)
}

// trim drops the entries older than cut (Unix ms; all of them for
// math.MaxInt64) and the oldest past maxEntries.
func (f *fact) trim(cut int64) {
	i := 0
	for i < len(f.E) && f.E[i].T < cut {
		i++
	}
	if n := len(f.E) - i; n > maxEntries {
		i = len(f.E) - maxEntries
	}
	if i > 0 {
		f.E = slices.Clone(f.E[i:])
	}
	if len(f.E) == 0 {
		f.E = nil
	}
}

// in reports whether an entry is within w at now: for a duration, an event
// exactly that long ago is still within.
func (w window) in(t, now int64) bool {
	switch {
	case w.within > 0:
		return now-t <= w.within.Milliseconds() && t <= now
	case !w.from.IsZero():
		return t >= w.from.UnixMilli() && t < w.to.UnixMilli()
	}
	return true
}

func (w window) all() bool { return w.within == 0 && w.from.IsZero() }

// count returns how many events of f are within w, and their value in cur
// (orders).
func (f *fact) count(w window, now int64, cur string) (n, minor int64) {
	if f == nil {
		return 0, 0
	}
	if w.all() {
		if cur != "" {
			return f.NC[cur], f.S[cur]
		}
		return f.N, 0
	}
	for _, e := range f.E {
		if w.in(e.T, now) && (cur == "" || e.C == cur) {
			n++
			minor = model.AddMinor(minor, e.M)
		}
	}
	return n, minor
}

// evalCtx is what a rule is evaluated against: one profile's facts and
// attributes, at an instant.
type evalCtx struct {
	facts map[string]*fact
	attr  func(name string) (any, bool)
	now   int64 // Unix milliseconds
}

// matchesBare reports whether a profile that no counted event and no
// attribute describe can match r at now (a rule like "no order in 90 days";
// a rule on attributes counts as one: its profile's attributes may match).
func (r *Rule) matchesBare(now int64) bool {
	return len(r.attrs) > 0 || r.root.eval(&evalCtx{facts: map[string]*fact{}, attr: attributes("", nil), now: now})
}

func (n *Node) eval(c *evalCtx) bool {
	switch n.kind {
	case kAll:
		for _, ch := range n.children {
			if !ch.eval(c) {
				return false
			}
		}
		return true
	case kAny:
		for _, ch := range n.children {
			if ch.eval(c) {
				return true
			}
		}
		return false
	case kNot:
		return !n.children[0].eval(c)
	case kEvent:
		cnt, _ := c.facts[n.atom].count(n.win(), c.now, "")
		return n.countPasses(cnt)
	case kOrders:
		cnt, _ := c.facts[n.atom].count(n.win(), c.now, n.cur)
		return n.countPasses(cnt)
	case kSpent:
		_, minor := c.facts[n.atom].count(n.win(), c.now, n.cur)
		return n.spentPasses(minor)
	case kAttr:
		return n.attrPasses(c.attr)
	}
	return false
}

// countPasses reports whether an event or orders node passes with cnt
// events (orders) counted.
func (n *Node) countPasses(cnt int64) bool { return compare(float64(cnt), n.cmp, n.num) }

// spentPasses reports whether a spent node passes with minor spent.
func (n *Node) spentPasses(minor int64) bool {
	switch n.cmp {
	case "eq":
		return minor == n.minor
	case "gte":
		return minor >= n.minor
	case "lte":
		return minor <= n.minor
	case "gt":
		return minor > n.minor
	default:
		return minor < n.minor
	}
}

// attrPasses reports whether an attribute node passes on a profile's
// attributes.
func (n *Node) attrPasses(attr func(name string) (any, bool)) bool {
	v, ok := attr(n.attr)
	if !ok {
		return n.p.test(nil, false)
	}
	return n.p.test([]any{v}, true)
}

func (n *Node) win() window { return window{within: n.within, from: n.from, to: n.to} }

func compare(x float64, op string, y float64) bool {
	switch op {
	case "eq":
		return x == y
	case "gte":
		return x >= y
	case "lte":
		return x <= y
	case "gt":
		return x > y
	default:
		return x < y
	}
}

// test applies the predicate to the values found (several for a property
// of an order's items): true when one of them passes; ne and exists false
// ask that none does.
func (p pred) test(vals []any, present bool) bool {
	switch p.op {
	case "exists":
		return present == p.value.(bool)
	case "ne":
		for _, v := range vals {
			if equalish(v, p.value) {
				return false
			}
		}
		return true
	}
	for _, v := range vals {
		switch p.op {
		case "eq":
			if equalish(v, p.value) {
				return true
			}
		case "in":
			for _, w := range p.values {
				if equalish(v, w) {
					return true
				}
			}
		case "contains":
			if s, ok := v.(string); ok && strings.Contains(strings.ToLower(s), strings.ToLower(p.value.(string))) {
				return true
			}
		case "starts_with":
			if s, ok := v.(string); ok && strings.HasPrefix(strings.ToLower(s), strings.ToLower(p.value.(string))) {
				return true
			}
		case "gt", "lt":
			c, ok := order(v, p.value)
			if ok && ((p.op == "gt" && c > 0) || (p.op == "lt" && c < 0)) {
				return true
			}
		}
	}
	return false
}

// equalish compares a stored value with a rule's: numbers as numbers (a
// property sent as "12" equals 12), true/false as such, text without
// regard to case.
func equalish(a, b any) bool {
	if c, ok := order(a, b); ok {
		return c == 0
	}
	ab, aok := a.(bool)
	bb, bok := b.(bool)
	if aok || bok {
		return aok && bok && ab == bb
	}
	return strings.EqualFold(text(a), text(b))
}

// order compares a and b: as numbers when one is a number and the other is
// one or reads as one, else as text when both are text (so dates as
// YYYY-MM-DD compare in time order); ok false when they cannot be compared.
func order(a, b any) (int, bool) {
	af, aNum := a.(float64)
	bf, bNum := b.(float64)
	if aNum || bNum {
		if !aNum {
			s, ok := a.(string)
			if !ok {
				return 0, false
			}
			var err error
			if af, err = strconv.ParseFloat(strings.TrimSpace(s), 64); err != nil {
				return 0, false
			}
		}
		if !bNum {
			s, ok := b.(string)
			if !ok {
				return 0, false
			}
			var err error
			if bf, err = strconv.ParseFloat(strings.TrimSpace(s), 64); err != nil {
				return 0, false
			}
		}
		switch {
		case af < bf:
			return -1, true
		case af > bf:
			return 1, true
		}
		return 0, true
	}
	as, aok := a.(string)
	bs, bok := b.(string)
	if !aok || !bok {
		return 0, false
	}
	if aok && bok && aNum == bNum {
		if strings.EqualFold(as, bs) {
			return 0, true
		}
	}
	return strings.Compare(strings.ToLower(as), strings.ToLower(bs)), true
}

func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// matches reports whether an event passes an atom's conditions on its
// properties.
func (a *atomDef) matches(ev *model.Event) bool {
	for _, p := range a.where {
		vals := lookup(ev, p.field)
		if !p.test(vals, len(vals) > 0) {
			return false
		}
	}
	return true
}

// matchesCached is matches with the event's fields decoded once for every
// atom that asks (fields is per event).
func (a *atomDef) matchesCached(ev *model.Event, fields map[string][]any) bool {
	for _, p := range a.where {
		vals, ok := fields[p.field]
		if !ok {
			vals = lookup(ev, p.field)
			fields[p.field] = vals
		}
		if !p.test(vals, len(vals) > 0) {
			return false
		}
	}
	return true
}

// lookup finds a field of an event: url and referrer, the traffic fields of
// a visit from outside (source, medium, campaign, term, content, click_id,
// referrer_host, channel), a property (a.b for a nested one), or the
// property of each of an order's items.
func lookup(ev *model.Event, field string) []any {
	switch field {
	case "url":
		return nonEmpty(ev.URL)
	case "referrer":
		return nonEmpty(ev.Referrer)
	}
	if raw, ok := ev.Props[field]; ok {
		return decoded(raw)
	}
	if t := ev.Traffic; t != nil {
		switch field {
		case "source":
			return nonEmpty(t.Source)
		case "medium":
			return nonEmpty(t.Medium)
		case "campaign":
			return nonEmpty(t.Campaign)
		case "term":
			return nonEmpty(t.Term)
		case "content":
			return nonEmpty(t.Content)
		case "click_id":
			return nonEmpty(t.ClickID)
		case "referrer_host":
			return nonEmpty(t.ReferrerHost)
		case "channel":
			return nonEmpty(t.Channel)
		}
	}
	if head, rest, ok := strings.Cut(field, "."); ok {
		if raw, ok := ev.Props[head]; ok {
			var m map[string]any
			if json.Unmarshal(raw, &m) == nil {
				return walk(m, rest)
			}
		}
	}
	if raw, ok := ev.Props["items"]; ok {
		var items []map[string]any
		if json.Unmarshal(raw, &items) == nil {
			var out []any
			for _, it := range items {
				out = append(out, walk(it, field)...)
			}
			return out
		}
	}
	return nil
}

func walk(m map[string]any, path string) []any {
	for {
		head, rest, nested := strings.Cut(path, ".")
		v, ok := m[head]
		if !ok {
			return nil
		}
		if !nested {
			return scalars(v)
		}
		if m, ok = v.(map[string]any); !ok {
			return nil
		}
		path = rest
	}
}

func nonEmpty(s string) []any {
	if s == "" {
		return nil
	}
	return []any{s}
}

func decoded(raw json.RawMessage) []any {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	return scalars(v)
}

// scalars are the text, numbers and true/false of a value (a list's
// entries).
func scalars(v any) []any {
	switch x := v.(type) {
	case string, float64, bool:
		return []any{x}
	case []any:
		var out []any
		for _, e := range x {
			switch e.(type) {
			case string, float64, bool:
				out = append(out, e)
			}
		}
		return out
	}
	return nil
}

// attributes returns the attribute lookup of a profile: the user's
// attributes from the Users API (isSubscribed false when never set), and
// the email of a known user.
func attributes(email string, u *model.User) func(string) (any, bool) {
	var flat map[string]any
	if u != nil {
		flat = u.Flat()
	} else if email != "" {
		flat = map[string]any{"email": email, "isSubscribed": false}
	} else {
		flat = map[string]any{"isSubscribed": false}
	}
	return func(name string) (any, bool) {
		v, ok := flat[name]
		return v, ok
	}
}
