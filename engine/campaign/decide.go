package campaign

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/channel"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Request is what the head script tells about a page view.
type Request struct {
	AnonymousID string // the browser's (shoptrail_aid)
	SessionID   string // the browser's session (shoptrail_sid)
	URL         string
	Referrer    string
	UserAgent   string
	PageType    string // <html data-shoptrail-page>; inferred from the URL when empty
	ProductID   string // <html data-shoptrail-product>: the product the page shows
	// SessionCounts are the impressions per group in this browser session
	// as the browser counted them (groupKey → count).
	SessionCounts map[string]int
	// Goals are the groups whose goal this browser saw reached (groupKey).
	Goals []string
	Now   time.Time
}

// Decision is what to show on the page.
type Decision struct {
	// Hide are the selectors of every active campaign's placement: the
	// head script hides them on the next page until its decision is in.
	Hide []string `json:"hide"`
	// CSS is the rule that hides them (HideCSS), from the same campaigns
	// as Show.
	CSS  string  `json:"css"`
	Show []Shown `json:"show"`
}

// Shown is one group's content to show.
type Shown struct {
	Campaign   string   `json:"c"`
	Group      int      `json:"g"`
	Variation  string   `json:"v"`
	Control    bool     `json:"ctl,omitempty"`
	HTML       string   `json:"html,omitempty"`
	Selector   string   `json:"sel,omitempty"`
	Mode       string   `json:"mode"`
	Trigger    *Trigger `json:"trig,omitempty"`
	Goal       string   `json:"goal"`
	PerSession int      `json:"cap,omitempty"`

	enc *compiledShown // its JSON but the content, when Decide made it
}

// AppendJSON appends sh's JSON, the same as json.Marshal writes. A Shown
// that Decide made had the rest encoded when its campaign was saved: only
// the content is encoded here.
func (sh *Shown) AppendJSON(b []byte) ([]byte, error) {
	rest := *sh
	rest.HTML, rest.enc = "", nil
	if sh.enc == nil || rest != sh.enc.shown {
		j, err := json.Marshal(sh)
		return append(b, j...), err
	}
	b = append(b, sh.enc.pre...)
	if sh.HTML != "" {
		b = append(b, `,"html":`...)
		b = model.AppendJSONString(b, sh.HTML)
	}
	return append(b, sh.enc.post...), nil
}

// mobileUA are what the user agents of phones contain.
var mobileUA = []string{"Mobi", "Android", "iPhone", "iPod", "IEMobile", "Opera Mini"}

// isMobile reports whether a user agent is a phone's.
func isMobile(ua string) bool {
	for _, m := range mobileUA {
		if strings.Contains(ua, m) {
			return true
		}
	}
	return false
}

// page is what conditions read about the page view, worked out once.
type page struct {
	req        Request
	profile    string
	shopper    *Shopper
	pageType   string
	device     string
	channel    string
	source     string
	refHost    string
	visitor    string
	cats       []string // the viewed product's category ids and titles
	catsRead   bool
	tx         *store.Tx
	sites      func() channel.Sites
	knowsVisit bool // channel, source, refHost and visitor are worked out
	segments   []segmentAnswer
	sess       model.Session // the identity projection's session of this page view, once asked (session)
	sessKnown  bool
}

// session returns the session this page view is in as the identity
// projection (and so the campaigns projection's counts) names it, if it
// has folded it (ok):
//   - the one the browser session id links to, when it is this shopper's
//     (it is not the browser's id after the timeout, or once the browser
//     changed hands);
//   - else the shopper's own server-side session: where the fold puts the
//     events of a shopper whose browser session id another profile named
//     first (the shop's server sent a user's order with the cookie's
//     session id before the browser's own events arrived).
func (p *page) session() (s model.Session, ok bool) {
	if p.sessKnown || p.req.SessionID == "" {
		return p.sess, p.sess.ID != ""
	}
	p.sessKnown = true
	for _, link := range []func() (string, error){
		func() (string, error) { return p.tx.ClientSession(p.req.SessionID) },
		func() (string, error) { return p.tx.OpenSession(p.profile) },
	} {
		if id, err := link(); err == nil && id != "" {
			if s, err := p.tx.Session(id); err == nil && s.ProfileID == p.profile {
				p.sess = s
				return s, true
			}
		}
	}
	return p.sess, false
}

// sessionID is the id of session(), or the browser session id when the
// identity projection has not folded it yet.
func (p *page) sessionID() string {
	if s, ok := p.session(); ok {
		return s.ID
	}
	return p.req.SessionID
}

// segmentAnswer is whether the shopper is in a segment, asked once per
// decision however many campaigns ask it.
type segmentAnswer struct {
	id  string
	in  bool
	err error
}

// inSegment answers whether the page's shopper is in segment id.
func (s *Service) inSegment(p *page, id string) (bool, error) {
	for _, a := range p.segments {
		if a.id == id {
			return a.in, a.err
		}
	}
	in, err := s.o.Segments.IsMember(p.profile, id)
	p.segments = append(p.segments, segmentAnswer{id, in, err})
	return in, err
}

// visit works out this session's traffic and whether the shopper is new,
// once, when a condition asks: the identity projection's session when it
// has folded it, else the page view itself.
func (p *page) visit() {
	if p.knowsVisit {
		return
	}
	p.knowsVisit = true
	p.channel, p.source = "Direct", "(direct)"
	p.visitor = "new"
	sess, folded := p.session()
	if folded {
		p.channel, p.source = sess.Channel, sess.Source
		if u, err := url.Parse(sess.Referrer); err == nil {
			p.refHost = strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
		}
	} else if t, ok := p.sites().Visit(p.req.URL, p.req.Referrer); ok {
		p.channel, p.source, p.refHost = t.Channel, t.Source, strings.TrimPrefix(t.ReferrerHost, "www.")
	}
	if prof, err := p.tx.Profile(p.profile); err == nil && (prof.Sessions > 1 || (prof.Sessions == 1 && !folded)) {
		p.visitor = "returning"
	}
}

// ProfileOf returns the profile an anonymous id belongs to after merges.
func ProfileOf(tx *store.Tx, anonymousID string) string {
	if id, err := tx.AnonymousProfile(anonymousID); err == nil && id != "" {
		return id
	}
	return model.AnonymousProfileID(anonymousID)
}

// Decide works out the content of a page view for one shopper: for each
// active campaign, each group that is eligible (the first one, or the one
// after a group whose goal the shopper reached), whose conditions hold and
// whose caps are not reached, with its variation.
func (s *Service) Decide(req Request) (Decision, error) {
	return s.DecideAppend(req, nil)
}

// DecideAppend is Decide with what to show appended to show[:0]: a caller
// that decides often reuses one buffer (a Shown is some 150 bytes, and up
// to every group of every active campaign may show).
func (s *Service) DecideAppend(req Request, show []Shown) (Decision, error) {
	if show == nil {
		show = []Shown{}
	}
	sn := s.snap.Load()
	d := Decision{Hide: sn.hide, CSS: sn.css, Show: show[:0]}
	if d.Hide == nil {
		d.Hide = []string{}
	}
	if len(sn.active) == 0 || req.AnonymousID == "" {
		return d, nil
	}
	if req.Now.IsZero() {
		req.Now = s.o.Now()
	}
	err := s.st.Read(func(tx *store.Tx) error {
		p, err := s.newPage(tx, req)
		if err != nil {
			return err
		}
		for _, c := range sn.active {
			for gi := range c.Groups {
				if sh, ok := s.decideGroup(p, c, gi); ok {
					d.Show = append(d.Show, sh)
				}
			}
		}
		return nil
	})
	return d, err
}

func (s *Service) newPage(tx *store.Tx, req Request) (*page, error) {
	p := &page{req: req, tx: tx, profile: ProfileOf(tx, req.AnonymousID), sites: s.o.Sites}
	sh, err := shopperState(tx, p.profile)
	if err != nil {
		return nil, err
	}
	p.shopper = sh
	p.pageType = req.PageType
	if p.pageType == "" {
		p.pageType = PageTypeOf(req.URL)
	}
	p.device = "desktop"
	if isMobile(req.UserAgent) {
		p.device = "mobile"
	}
	return p, nil
}

// PageTypeOf guesses the page type from common URL shapes; a page that
// says <html data-shoptrail-page="..."> is not guessed.
func PageTypeOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "other"
	}
	path := strings.ToLower(u.Path)
	switch {
	case path == "" || path == "/" || path == "/index.html":
		return "home"
	case strings.Contains(path, "/checkout"):
		return "checkout"
	case strings.Contains(path, "/cart") || strings.Contains(path, "/basket"):
		return "cart"
	case strings.Contains(path, "/p/") || strings.Contains(path, "/product"):
		return "product"
	case strings.Contains(path, "/c/") || strings.Contains(path, "/category") || strings.Contains(path, "/collections/"):
		return "category"
	}
	return "other"
}

func (s *Service) decideGroup(p *page, c *compiled, gi int) (Shown, bool) {
	g := &c.Groups[gi]
	st := p.shopper.Groups[c.keys[gi]]
	if gi > 0 {
		prev := c.keys[gi-1]
		if !p.shopper.Groups[prev].reached(c.Groups[gi-1].Goal) && !slices.Contains(p.req.Goals, prev) {
			return Shown{}, false
		}
	}
	sessImpr := p.req.SessionCounts[c.keys[gi]]
	userImpr := 0
	if st != nil {
		userImpr = st.Impressions
		if st.Session == p.sessionID() && st.SessionImpr > sessImpr {
			sessImpr = st.SessionImpr
		}
	}
	if g.Limits.PerSession > 0 && sessImpr >= g.Limits.PerSession {
		return Shown{}, false
	}
	if g.Limits.PerUser > 0 && userImpr >= g.Limits.PerUser {
		return Shown{}, false
	}
	for _, cd := range c.conds[gi] {
		if !s.holds(p, cd, sessImpr, userImpr) {
			return Shown{}, false
		}
	}
	vi := pick(g.Variations, p.profile, c.ID, gi)
	if st != nil && st.Variation != "" && st.Variation != g.Variations[vi].Name {
		// sticky: what the shopper saw before a login (the anonymous
		// profile's history moved to the user's) stays, unless the
		// variation was removed or turned down to weight 0
		if i := slices.IndexFunc(g.Variations, func(x Variation) bool { return x.Name == st.Variation }); i >= 0 && g.Variations[i].Weight > 0 {
			vi = i
		}
	}
	cs := c.vars[gi][vi]
	out := cs.shown
	out.enc = cs
	if !out.Control {
		out.HTML = s.renderParts(cs.parts, cs.blocks, p.req.ProductID)
	}
	return out, true
}

// pick assigns a variation (its index): a stable hash of (shopper,
// campaign, group) into 10 000 buckets split by weight. A shopper who
// already saw a variation keeps it (decideGroup), so a login does not
// switch it.
func pick(vs []Variation, profile, campaignID string, group int) int {
	// FNV-1a (64 bit) of profile, 0, campaignID, 0, the group in decimal
	var num [20]byte
	x := fnv1a(fnvOffset, profile)
	x = (x ^ 0) * fnvPrime
	x = fnv1a(x, campaignID)
	x = (x ^ 0) * fnvPrime
	for _, c := range strconv.AppendInt(num[:0], int64(group), 10) {
		x = (x ^ uint64(c)) * fnvPrime
	}
	// fnv's low bits mix poorly for similar inputs: fold the high half in
	x ^= x >> 29
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 32
	bucket := int(x % 10000)
	acc := 0
	for i, v := range vs {
		acc += v.Weight * 100
		if bucket < acc {
			return i
		}
	}
	return len(vs) - 1
}

// FNV-1a, 64 bit (hash/fnv without its allocations).
const fnvOffset, fnvPrime = 14695981039346656037, 1099511628211

func fnv1a(x uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		x = (x ^ uint64(s[i])) * fnvPrime
	}
	return x
}

func (s *Service) holds(p *page, cd compiledCond, sessImpr, userImpr int) bool {
	v := string(cd.Value)
	switch cd.Kind {
	case "url":
		switch cd.Op {
		case "contains":
			return strings.Contains(p.req.URL, v)
		case "not_contains":
			return !strings.Contains(p.req.URL, v)
		case "equals":
			return p.req.URL == v || strings.TrimSuffix(p.req.URL, "/") == strings.TrimSuffix(v, "/")
		default:
			return cd.re.MatchString(p.req.URL)
		}
	case "page_type":
		return (p.pageType == v) == (cd.Op == "eq")
	case "device":
		return p.device == v
	case "channel":
		p.visit()
		return strings.EqualFold(p.channel, v) == (cd.Op == "eq")
	case "source":
		p.visit()
		return textOp(cd.Op, p.source, v)
	case "referrer_host":
		p.visit()
		return textOp(cd.Op, p.refHost, strings.TrimPrefix(strings.ToLower(v), "www."))
	case "visitor":
		p.visit()
		return p.visitor == v
	case "segment":
		if s.o.Segments == nil {
			return false
		}
		in, err := s.inSegment(p, v)
		if err != nil {
			return false
		}
		return in == (cd.Op == "in")
	case "cart_value":
		return numOp(cd.Op, model.ToMajor(p.shopper.Cart.Value, p.shopper.Cart.Currency), cd.num)
	case "cart_items":
		return numOp(cd.Op, float64(p.shopper.Cart.Items), cd.num)
	case "impressions_session":
		return numOp(cd.Op, float64(sessImpr), cd.num)
	case "impressions_user":
		return numOp(cd.Op, float64(userImpr), cd.num)
	case "category":
		if !p.catsRead {
			p.catsRead = true
			if s.o.Catalog != nil && p.req.ProductID != "" {
				if it, err := s.o.Catalog.Product(p.req.ProductID); err == nil {
					p.cats = append(slices.Clone(it.CategoryIDs), it.Categories...)
				}
			}
		}
		in := slices.ContainsFunc(p.cats, func(c string) bool { return strings.EqualFold(strings.TrimSpace(c), v) })
		return in == (cd.Op == "eq")
	case "time_of_day":
		t := p.req.Now.UTC()
		m := t.Hour()*60 + t.Minute()
		if cd.from <= cd.to {
			return m >= cd.from && m < cd.to
		}
		return m >= cd.from || m < cd.to // wraps around midnight
	case "date":
		t := p.req.Now.UTC()
		switch cd.Op {
		case "before":
			return t.Before(cd.d0)
		case "after":
			return !t.Before(cd.d0.Add(24 * time.Hour))
		}
		return !t.Before(cd.d0) && t.Before(cd.d1)
	}
	return false
}

func textOp(op, have, want string) bool {
	switch op {
	case "eq":
		return strings.EqualFold(have, want)
	case "ne":
		return !strings.EqualFold(have, want)
	}
	return strings.Contains(strings.ToLower(have), strings.ToLower(want))
}

func numOp(op string, have, want float64) bool {
	switch op {
	case "gt":
		return have > want
	case "gte":
		return have >= want
	case "lt":
		return have < want
	case "lte":
		return have <= want
	}
	return have == want
}

// Preview is the content of one group and variation of a draft, as the
// preview shows it whatever the conditions and caps.
func (s *Service) Preview(c Campaign, group, variation int, productID string) (Shown, error) {
	if group < 0 || group >= len(c.Groups) {
		return Shown{}, &FieldError{Path: "group", Message: "no such group"}
	}
	g := c.Groups[group]
	if variation < 0 || variation >= len(g.Variations) {
		return Shown{}, &FieldError{Path: "variation", Message: "no such variation"}
	}
	v := g.Variations[variation]
	out := Shown{Campaign: c.ID, Group: group, Variation: v.Name, Control: v.Control, Selector: g.Placement.Selector,
		Mode: g.Placement.Mode, Goal: g.Goal}
	if !v.Control {
		out.HTML = s.Render(v.HTML, productID)
	}
	return out, nil
}

// PrepareDraft checks and sanitises what the live preview shows of a draft
// that may not be valid as a whole yet (the editor sends it as it is
// typed): the chosen group's placement and the chosen variation's HTML.
func PrepareDraft(c *Campaign, group, variation int) error {
	c.Normalise()
	if group < 0 || group >= len(c.Groups) {
		return &FieldError{Path: "group", Message: "no such group"}
	}
	g := &c.Groups[group]
	p := fmt.Sprintf("groups[%d]", group)
	if variation < 0 || variation >= len(g.Variations) {
		return &FieldError{Path: "variation", Message: "no such variation"}
	}
	if !slices.Contains(modes, g.Placement.Mode) {
		return &FieldError{Path: p + ".placement.mode", Message: "mode must be one of " + strings.Join(modes, ", ")}
	}
	sel := g.Placement.Selector
	if g.Placement.Overlay() {
		g.Placement.Selector = ""
	} else if sel == "" || len(sel) > MaxSelectorLen || !selectorOK.MatchString(sel) {
		return &FieldError{Path: p + ".placement.selector", Message: "a CSS selector such as h1 or #promo"}
	}
	v := &g.Variations[variation]
	if len(v.HTML) > MaxHTML {
		return &FieldError{Path: fmt.Sprintf("%s.variations[%d].html", p, variation), Message: fmt.Sprintf("content has at most %d bytes", MaxHTML)}
	}
	out, err := Sanitise(v.HTML)
	if err != nil {
		return &FieldError{Path: fmt.Sprintf("%s.variations[%d].html", p, variation), Message: err.Error()}
	}
	v.HTML = out
	return nil
}
