// Package segment keeps shoppers in segments: rules over what they did
// (events, with conditions on their properties, counted over a window of
// time), who they are (attributes from the Users API) and what they spent,
// and a projection that keeps every segment's members current as the event
// log is folded.
//
// A rule mentions event types and attributes; an event re-evaluates only
// the segments that mention its type (or the attributes it changed), for
// its profile. What a rule needs of the past is kept per profile as facts:
// for each distinct event condition (an atom: a type and its where), the
// times (and, for orders, the amounts) of the matching events within the
// longest window any rule asks of it, and the all-time counts. Windows close
// with time: each profile is indexed by the next moment one of its counts
// leaves a window, and a sweep re-evaluates it then. A new or edited segment
// is built in the background from every profile's events, a few hundred
// profiles per transaction, resuming where it was after a crash.
package segment

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/track"
)

// Event types recorded when a profile enters or leaves a segment.
const (
	Entered = "segment_entered"
	Exited  = "segment_exited"
)

// Limits of a rule.
const (
	MaxConditions = 100 // condition nodes in a rule, nested ones included
	MaxDepth      = 8   // nesting of all / any / not
	MaxWhere      = 20  // conditions on an event's properties
	MaxInValues   = 1000
	MaxValueLen   = 1024
	MaxNameLen    = 200
	MaxWindow     = 10 * 365 * 24 * time.Hour
	MaxCount      = 1_000_000
)

// FieldError names the JSON path of the bad node: conditions[2].where[0].op.
type FieldError = model.FieldError

func bad(path, format string, args ...any) *FieldError {
	return &FieldError{Field: path, Message: fmt.Sprintf(format, args...)}
}

// kind of a node of a rule.
type kind uint8

const (
	kAll kind = iota
	kAny
	kNot
	kEvent
	kAttr
	kSpent
	kOrders
)

// Node is a node of a parsed rule.
type Node struct {
	kind     kind
	children []*Node

	// event, spent, orders
	typ    string
	where  []pred
	atom   string // the atom the node counts (type and where)
	cmp    string // eq gte lte gt lt
	num    float64
	within time.Duration // 0: no window
	from   time.Time     // between: [from, to)
	to     time.Time
	cur    string // spent, orders: the currency
	minor  int64  // spent: the amount in the currency's minor units

	// attribute
	attr string
	p    pred
}

// pred is a test of one value: an attribute or an event's property.
type pred struct {
	field  string
	op     string
	value  any   // string, float64 or bool
	values []any // in
}

// Rule is a parsed segment definition.
type Rule struct {
	Name    string
	Match   string
	root    *Node
	atoms   map[string]*atomDef // the event conditions it counts, by atom id
	types   []string            // event types it mentions
	attrs   []string            // attributes it mentions
	windows map[string][]window // per atom, the windows its conditions count over
}

// window is how far back a condition counts an atom's events: within a
// duration of now, or between two instants.
type window struct {
	within   time.Duration
	from, to time.Time
}

// atomDef is an event condition counted per profile: a type and the
// conditions on the event's properties.
type atomDef struct {
	id    string
	typ   string
	where []pred
}

// Definition is a segment's rule as JSON: what the API takes and returns.
type Definition struct {
	Name       string            `json:"name"`
	Match      string            `json:"match,omitempty"`
	Conditions []json.RawMessage `json:"conditions"`
}

// Parse checks a segment definition and returns its rule. An error is a
// *FieldError naming the JSON path of the first bad node.
func Parse(raw []byte) (*Rule, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, bad("body", "the segment must be a JSON object with name, match and conditions: %v", err)
	}
	for k := range top {
		if !slices.Contains([]string{"name", "match", "conditions", "id", "count", "building", "created_at", "updated_at", "progress"}, k) {
			field := k
			if field == "" {
				field = "body"
			}
			return nil, bad(field, "unknown field %q (a segment has name, match and conditions)", k)
		}
	}
	r := &Rule{atoms: map[string]*atomDef{}, windows: map[string][]window{}}
	if err := unmarshalField(top, "name", "name", &r.Name); err != nil {
		return nil, err
	}
	r.Name = strings.TrimSpace(r.Name)
	switch {
	case r.Name == "":
		return nil, bad("name", "name is required")
	case len(r.Name) > MaxNameLen || !utf8.ValidString(r.Name):
		return nil, bad("name", "name must be text of at most %d bytes", MaxNameLen)
	}
	if err := unmarshalField(top, "match", "match", &r.Match); err != nil {
		return nil, err
	}
	if r.Match == "" {
		r.Match = "all"
	}
	if r.Match != "all" && r.Match != "any" {
		return nil, bad("match", "match must be \"all\" or \"any\"")
	}
	var conds []json.RawMessage
	if err := unmarshalField(top, "conditions", "conditions", &conds); err != nil {
		return nil, err
	}
	if len(conds) == 0 {
		return nil, bad("conditions", "a segment needs at least one condition")
	}
	p := &parser{r: r}
	root := &Node{kind: kAll}
	if r.Match == "any" {
		root.kind = kAny
	}
	for i, c := range conds {
		n, err := p.node(c, fmt.Sprintf("conditions[%d]", i), 1)
		if err != nil {
			return nil, err
		}
		root.children = append(root.children, n)
	}
	r.root = root
	for _, a := range r.atoms {
		r.types = appendUnique(r.types, a.typ)
	}
	sort.Strings(r.types)
	sort.Strings(r.attrs)
	return r, nil
}

func unmarshalField(m map[string]json.RawMessage, key, path string, v any) error {
	raw, ok := m[key]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		want := "a string"
		switch v.(type) {
		case *[]json.RawMessage:
			want = "a list"
		case *map[string]json.RawMessage:
			want = "an object"
		}
		return bad(path, "%s must be %s", path, want)
	}
	return nil
}

type parser struct {
	r     *Rule
	nodes int
}

var (
	fieldRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]{0,63}$`)
	attrRe  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)
)

func (p *parser) node(raw json.RawMessage, path string, depth int) (*Node, error) {
	p.nodes++
	if p.nodes > MaxConditions {
		return nil, bad(path, "a segment may have at most %d conditions", MaxConditions)
	}
	if depth > MaxDepth {
		return nil, bad(path, "conditions may be nested %d deep at most", MaxDepth)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, bad(path, "a condition must be an object such as {\"event\":\"order\"} or {\"attribute\":\"city\",\"op\":\"eq\",\"value\":\"Paris\"}")
	}
	allowed := func(keys ...string) error {
		for k := range m {
			if !slices.Contains(keys, k) {
				return bad(path+"."+k, "unknown field %q here (allowed: %s)", k, strings.Join(keys, ", "))
			}
		}
		return nil
	}
	switch {
	case has(m, "all") || has(m, "any"):
		key := "all"
		n := &Node{kind: kAll}
		if has(m, "any") {
			key, n.kind = "any", kAny
		}
		if err := allowed(key); err != nil {
			return nil, err
		}
		var list []json.RawMessage
		if err := unmarshalField(m, key, path+"."+key, &list); err != nil {
			return nil, err
		}
		if len(list) == 0 {
			return nil, bad(path+"."+key, "%s needs at least one condition", key)
		}
		for i, c := range list {
			child, err := p.node(c, fmt.Sprintf("%s.%s[%d]", path, key, i), depth+1)
			if err != nil {
				return nil, err
			}
			n.children = append(n.children, child)
		}
		return n, nil
	case has(m, "not"):
		if err := allowed("not"); err != nil {
			return nil, err
		}
		child, err := p.node(m["not"], path+".not", depth+1)
		if err != nil {
			return nil, err
		}
		return &Node{kind: kNot, children: []*Node{child}}, nil
	case has(m, "event"):
		if err := allowed("event", "where", "count", "within", "between"); err != nil {
			return nil, err
		}
		return p.event(m, path)
	case has(m, "attribute"):
		if err := allowed("attribute", "op", "value"); err != nil {
			return nil, err
		}
		var name string
		if err := unmarshalField(m, "attribute", path+".attribute", &name); err != nil {
			return nil, err
		}
		if !attrRe.MatchString(name) {
			return nil, bad(path+".attribute", "an attribute is a name such as city, isSubscribed or a custom attribute's name")
		}
		pr, err := parsePred(m, path, name)
		if err != nil {
			return nil, err
		}
		p.r.attrs = appendUnique(p.r.attrs, name)
		return &Node{kind: kAttr, attr: name, p: pr}, nil
	case has(m, "spent"), has(m, "orders"):
		key, k := "spent", kSpent
		if has(m, "orders") {
			key, k = "orders", kOrders
		}
		if err := allowed(key, "within", "between"); err != nil {
			return nil, err
		}
		return p.money(m, key, k, path)
	}
	return nil, bad(path, "a condition needs one of event, attribute, spent, orders, all, any or not")
}

func has(m map[string]json.RawMessage, k string) bool { _, ok := m[k]; return ok }

func (p *parser) event(m map[string]json.RawMessage, path string) (*Node, error) {
	var typ string
	if err := unmarshalField(m, "event", path+".event", &typ); err != nil {
		return nil, err
	}
	typ = track.CanonicalType(typ)
	switch {
	case typ == "":
		return nil, bad(path+".event", "event must name an event type, e.g. \"order\" or a custom event")
	case len(typ) > 100 || !utf8.ValidString(typ):
		return nil, bad(path+".event", "an event type has at most 100 bytes")
	case typ == Entered || typ == Exited:
		return nil, bad(path+".event", "%s cannot be used in a rule (a segment would depend on segments)", typ)
	}
	n := &Node{kind: kEvent, typ: typ, cmp: "gte", num: 1}
	var where []json.RawMessage
	if err := unmarshalField(m, "where", path+".where", &where); err != nil {
		return nil, err
	}
	if len(where) > MaxWhere {
		return nil, bad(path+".where", "at most %d conditions on an event's properties", MaxWhere)
	}
	for i, w := range where {
		wp := fmt.Sprintf("%s.where[%d]", path, i)
		var wm map[string]json.RawMessage
		if err := json.Unmarshal(w, &wm); err != nil || wm == nil {
			return nil, bad(wp, "a where condition is an object such as {\"prop\":\"source\",\"op\":\"eq\",\"value\":\"facebook\"}")
		}
		for k := range wm {
			if k != "prop" && k != "op" && k != "value" {
				return nil, bad(wp+"."+k, "unknown field %q here (allowed: prop, op, value)", k)
			}
		}
		var field string
		if err := unmarshalField(wm, "prop", wp+".prop", &field); err != nil {
			return nil, err
		}
		if !fieldRe.MatchString(field) {
			return nil, bad(wp+".prop", "prop must name a property such as source, category or product_id")
		}
		pr, err := parsePred(wm, wp, field)
		if err != nil {
			return nil, err
		}
		n.where = append(n.where, pr)
	}
	if raw, ok := m["count"]; ok {
		var c map[string]json.RawMessage
		if err := json.Unmarshal(raw, &c); err != nil || c == nil {
			return nil, bad(path+".count", "count is an object such as {\"op\":\"gte\",\"value\":2}")
		}
		for k := range c {
			if k != "op" && k != "value" {
				return nil, bad(path+".count."+k, "unknown field %q here (allowed: op, value)", k)
			}
		}
		if err := unmarshalField(c, "op", path+".count.op", &n.cmp); err != nil {
			return nil, err
		}
		if n.cmp == "" {
			n.cmp = "gte"
		}
		if !slices.Contains(countOps, n.cmp) {
			return nil, bad(path+".count.op", "count.op must be one of %s", strings.Join(countOps, ", "))
		}
		if err := wholeNumber(c["value"], path+".count.value", &n.num); err != nil {
			return nil, err
		}
	}
	if err := p.window(m, path, n); err != nil {
		return nil, err
	}
	p.addAtom(n)
	return n, nil
}

var countOps = []string{"eq", "gte", "lte", "gt", "lt"}

func wholeNumber(raw json.RawMessage, path string, out *float64) error {
	var v float64
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil || v < 0 || v > MaxCount || v != math.Trunc(v) {
		return bad(path, "%s must be a whole number from 0 to %d", path[strings.LastIndex(path, ".")+1:], MaxCount)
	}
	*out = v
	return nil
}

func (p *parser) money(m map[string]json.RawMessage, key string, k kind, path string) (*Node, error) {
	n := &Node{kind: k, typ: model.Order}
	var spec map[string]json.RawMessage
	if err := json.Unmarshal(m[key], &spec); err != nil || spec == nil {
		return nil, bad(path+"."+key, "%s is an object such as {\"op\":\"gte\",\"value\":200,\"currency\":\"EUR\"}", key)
	}
	kp := path + "." + key
	for f := range spec {
		if f != "op" && f != "value" && f != "currency" {
			return nil, bad(kp+"."+f, "unknown field %q here (allowed: op, value, currency)", f)
		}
	}
	if err := unmarshalField(spec, "op", kp+".op", &n.cmp); err != nil {
		return nil, err
	}
	if n.cmp == "" {
		n.cmp = "gte"
	}
	if !slices.Contains(countOps, n.cmp) {
		return nil, bad(kp+".op", "op must be one of %s", strings.Join(countOps, ", "))
	}
	if err := unmarshalField(spec, "currency", kp+".currency", &n.cur); err != nil {
		return nil, err
	}
	n.cur = strings.ToUpper(strings.TrimSpace(n.cur))
	if n.cur != "" {
		if _, ok := model.CurrencyDigits(n.cur); !ok {
			return nil, bad(kp+".currency", "currency must be an active ISO 4217 code such as EUR")
		}
	}
	if k == kSpent {
		if n.cur == "" {
			return nil, bad(kp+".currency", "spent needs a currency: money is never added across currencies")
		}
		var v float64
		if raw := spec["value"]; len(raw) == 0 || json.Unmarshal(raw, &v) != nil || v < 0 || v > 1e12 || math.IsNaN(v) {
			return nil, bad(kp+".value", "value must be an amount from 0 to 10^12 in major units, e.g. 200 or 49.90")
		}
		n.num, n.minor = v, model.ToMinor(v, n.cur)
	} else if err := wholeNumber(spec["value"], kp+".value", &n.num); err != nil {
		return nil, err
	}
	if err := p.window(m, path, n); err != nil {
		return nil, err
	}
	p.addAtom(n)
	return n, nil
}

// window reads within or between.
func (p *parser) window(m map[string]json.RawMessage, path string, n *Node) error {
	if has(m, "within") && has(m, "between") {
		return bad(path+".between", "give within or between, not both")
	}
	if has(m, "within") {
		var s string
		if err := unmarshalField(m, "within", path+".within", &s); err != nil {
			return err
		}
		d, err := ParseWindow(s)
		if err != nil {
			return bad(path+".within", "%v", err)
		}
		n.within = d
	}
	if has(m, "between") {
		var b []string
		if err := json.Unmarshal(m["between"], &b); err != nil || len(b) != 2 {
			return bad(path+".between", "between is two dates, e.g. [\"2026-11-01\",\"2026-11-30\"] (both days included)")
		}
		for i, s := range b {
			t, end, err := parseDate(s)
			if err != nil {
				return bad(fmt.Sprintf("%s.between[%d]", path, i), "%v", err)
			}
			if i == 0 {
				n.from = t
			} else {
				n.to = end
			}
		}
		if !n.from.Before(n.to) {
			return bad(path+".between", "the first date must come before the second")
		}
	}
	return nil
}

// ParseWindow reads a window: a Go duration ("720h", "90m") or a number of
// days ("30d"), from 1 second to 10 years.
func ParseWindow(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, fmt.Errorf("within must be a duration such as \"720h\" or \"30d\"")
		}
		d = time.Duration(days) * 24 * time.Hour
		if days > 3650 {
			d = MaxWindow + 1
		}
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("within must be a duration such as \"720h\" or \"30d\"")
		}
	}
	if d < time.Second || d > MaxWindow {
		return 0, fmt.Errorf("within must be from 1s to 87600h (10 years)")
	}
	return d, nil
}

// parseDate reads a date (the whole day, UTC) or an RFC 3339 instant; end
// is the end of the day for a date, the instant itself (plus 1 ns) otherwise.
func parseDate(s string) (start, end time.Time, err error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, t.AddDate(0, 0, 1), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, t.Add(1), nil
	}
	return start, end, fmt.Errorf("a date must be YYYY-MM-DD or RFC 3339 (2026-11-01T10:00:00Z)")
}

// ops of attributes and event properties.
var predOps = []string{"eq", "ne", "in", "contains", "starts_with", "gt", "lt", "exists"}

func parsePred(m map[string]json.RawMessage, path, field string) (pred, error) {
	pr := pred{field: field}
	if err := unmarshalField(m, "op", path+".op", &pr.op); err != nil {
		return pr, err
	}
	if pr.op == "" {
		pr.op = "eq"
	}
	if !slices.Contains(predOps, pr.op) {
		return pr, bad(path+".op", "op must be one of %s", strings.Join(predOps, ", "))
	}
	raw, hasValue := m["value"]
	vp := path + ".value"
	switch pr.op {
	case "exists":
		pr.value = true
		if hasValue {
			var b bool
			if json.Unmarshal(raw, &b) != nil {
				return pr, bad(vp, "exists takes true or false")
			}
			pr.value = b
		}
	case "in":
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil || len(list) == 0 || len(list) > MaxInValues {
			return pr, bad(vp, "in takes a list of 1 to %d values", MaxInValues)
		}
		for i, x := range list {
			v, err := scalar(x, fmt.Sprintf("%s[%d]", vp, i))
			if err != nil {
				return pr, err
			}
			pr.values = append(pr.values, v)
		}
	default:
		if !hasValue {
			return pr, bad(vp, "%s needs a value", pr.op)
		}
		v, err := scalar(raw, vp)
		if err != nil {
			return pr, err
		}
		if _, ok := v.(string); !ok && (pr.op == "contains" || pr.op == "starts_with") {
			return pr, bad(vp, "%s takes text", pr.op)
		}
		if _, ok := v.(bool); ok && (pr.op == "gt" || pr.op == "lt") {
			return pr, bad(vp, "%s takes a number, a date or text", pr.op)
		}
		pr.value = v
	}
	return pr, nil
}

func scalar(raw json.RawMessage, path string) (any, error) {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil, bad(path, "value must be text, a number or true/false")
	}
	switch x := v.(type) {
	case string:
		if len(x) > MaxValueLen || !utf8.ValidString(x) {
			return nil, bad(path, "value must be text of at most %d bytes", MaxValueLen)
		}
		return x, nil
	case float64, bool:
		return x, nil
	}
	return nil, bad(path, "value must be text, a number or true/false, not a list, an object or null")
}

// addAtom names the event condition of n and records the window it counts.
func (p *parser) addAtom(n *Node) {
	var b strings.Builder
	b.WriteString(n.typ)
	ws := slices.Clone(n.where)
	sort.Slice(ws, func(i, j int) bool { return predKey(ws[i]) < predKey(ws[j]) })
	for _, w := range ws {
		b.WriteByte(0)
		b.WriteString(predKey(w))
	}
	h := fnv.New64a()
	h.Write([]byte(b.String()))
	n.atom = fmt.Sprintf("%016x", h.Sum64())
	if _, ok := p.r.atoms[n.atom]; !ok {
		p.r.atoms[n.atom] = &atomDef{id: n.atom, typ: n.typ, where: ws}
	}
	w := window{within: n.within, from: n.from, to: n.to}
	if !slices.Contains(p.r.windows[n.atom], w) {
		p.r.windows[n.atom] = append(p.r.windows[n.atom], w)
	}
}

func predKey(p pred) string {
	v, _ := json.Marshal(p.value)
	vs, _ := json.Marshal(p.values)
	return p.field + "\x01" + p.op + "\x01" + string(v) + "\x01" + string(vs)
}

func appendUnique(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// Types returns the event types the rule mentions.
func (r *Rule) Types() []string { return r.types }

// Attributes returns the attributes the rule mentions.
func (r *Rule) Attributes() []string { return r.attrs }
