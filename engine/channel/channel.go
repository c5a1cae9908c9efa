// Package channel works out where a visit came from (source, medium,
// campaign) and groups it into a channel with GA4's default channel grouping.
// Both the known sites and the grouping rules are data: sources.txt and the
// rules table below, evaluated top-down, first match wins.
package channel

import (
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/shoptrail/shoptrail/engine/model"
)

// Channel names (GA4 default channel group).
const (
	Direct          = "Direct"
	CrossNetwork    = "Cross-network"
	PaidShopping    = "Paid Shopping"
	PaidSearch      = "Paid Search"
	PaidSocial      = "Paid Social"
	PaidVideo       = "Paid Video"
	Display         = "Display"
	PaidOther       = "Paid Other"
	OrganicShopping = "Organic Shopping"
	OrganicSocial   = "Organic Social"
	OrganicVideo    = "Organic Video"
	OrganicSearch   = "Organic Search"
	Referral        = "Referral"
	Email           = "Email"
	Affiliates      = "Affiliates"
	Audio           = "Audio"
	SMS             = "SMS"
	MobilePush      = "Mobile Push"
	Unassigned      = "Unassigned"
)

// The source and medium of a visit with no other origin.
const (
	DirectSource = "(direct)"
	DirectMedium = "(none)"
)

// cond is one test on a visit's source, medium or campaign.
type cond func(v visit) bool

type visit struct{ source, medium, campaign, category string }

// rule assigns channel when any of its clauses holds; a clause holds when
// all of its conditions do.
type rule struct {
	channel string
	anyOf   [][]cond
}

var (
	paid      = mediumMatches(`^(.*cp.*|ppc|retargeting|paid.*)$`)
	shopCampa = campaignMatches(`^(.*(([^a-df-z]|^)shop|shopping).*)$`)
)

// rules is GA4's default channel grouping, top-down, first match wins.
var rules = []rule{
	{Direct, clauses(and(sourceIs(DirectSource), mediumIn("(not set)", "(none)")))},
	{CrossNetwork, clauses(and(campaignMatches(`cross-network`)))},
	{PaidShopping, clauses(and(category("shopping"), paid), and(shopCampa, paid))},
	{PaidSearch, clauses(and(category("search"), paid))},
	{PaidSocial, clauses(and(category("social"), paid))},
	{PaidVideo, clauses(and(category("video"), paid))},
	{Display, clauses(and(mediumIn("display", "banner", "expandable", "interstitial", "cpm")))},
	{PaidOther, clauses(and(paid))},
	{OrganicShopping, clauses(and(category("shopping")), and(shopCampa))},
	{OrganicSocial, clauses(and(category("social")), and(mediumIn("social", "social-network", "social-media", "sm", "social network", "social media")))},
	{OrganicVideo, clauses(and(category("video")), and(mediumMatches(`video`)))},
	{OrganicSearch, clauses(and(category("search")), and(mediumIn("organic")))},
	{Referral, clauses(and(mediumIn("referral", "app", "link")))},
	{Email, clauses(and(sourceIn("email", "e-mail", "e_mail", "e mail")), and(mediumIn("email", "e-mail", "e_mail", "e mail")), and(category("email")))},
	{Affiliates, clauses(and(mediumIn("affiliate")))},
	{Audio, clauses(and(mediumIn("audio")))},
	{SMS, clauses(and(sourceIn("sms")), and(mediumIn("sms")))},
	{MobilePush, clauses(and(mediumMatches(`(push$|mobile|notification)`)))},
}

// Group returns the channel of a source/medium/campaign (case-insensitive).
func Group(source, medium, campaign string) string {
	v := visit{strings.ToLower(source), strings.ToLower(medium), strings.ToLower(campaign), ""}
	v.category = categoryOfSource(v.source)
	for _, r := range rules {
		for _, all := range r.anyOf {
			if holds(all, v) {
				return r.channel
			}
		}
	}
	return Unassigned
}

func holds(all []cond, v visit) bool {
	for _, c := range all {
		if !c(v) {
			return false
		}
	}
	return true
}

func clauses(c ...[]cond) [][]cond { return c }
func and(c ...cond) []cond         { return c }

func sourceIs(s string) cond { return func(v visit) bool { return v.source == s } }
func sourceIn(s ...string) cond {
	return func(v visit) bool { return slices.Contains(s, v.source) }
}
func mediumIn(m ...string) cond { return func(v visit) bool { return slices.Contains(m, v.medium) } }
func category(c string) cond    { return func(v visit) bool { return v.category == c } }
func mediumMatches(re string) cond {
	r := regexp.MustCompile(re)
	return func(v visit) bool { return r.MatchString(v.medium) }
}
func campaignMatches(re string) cond {
	r := regexp.MustCompile(re)
	return func(v visit) bool { return r.MatchString(v.campaign) }
}

// clickIDs are the ad platforms' auto-tagging parameters. Explicit UTM tags
// win over them. fbclid is added to organic shares too, so alone it does not
// mean a paid visit.
var clickIDs = []struct{ param, source, medium string }{
	{"gclid", "google", "cpc"},
	{"gbraid", "google", "cpc"},
	{"wbraid", "google", "cpc"},
	{"dclid", "google", "cpm"},
	{"msclkid", "bing", "cpc"},
	{"ttclid", "tiktok", "cpc"},
	{"twclid", "twitter", "cpc"},
	{"li_fat_id", "linkedin", "cpc"},
	{"epik", "pinterest", "cpc"},
	{"sccid", "snapchat", "cpc"},
	{"fbclid", "facebook", "referral"},
}

// Sites tells which hosts are the shop's own.
type Sites struct {
	// Own hosts besides the page's own (e.g. from allowed origins).
	Own []string
	// Excluded referrers: payment gateways and the like, whose return to
	// the shop is not a new visit.
	Excluded []string
}

// Visit works out where a page view came from. It returns false when the
// page view did not arrive from outside: no UTM tags, no click id, and no
// referrer from another site.
func (s Sites) Visit(pageURL, referrer string) (model.Traffic, bool) {
	if !mayBeTagged(pageURL) && (referrer == "" || sameSite(pageURL, referrer)) {
		// the common cases, decided without parsing: no referrer, or the
		// shop's own page (as visit decides them)
		return model.Traffic{}, false
	}
	return s.visit(pageURL, referrer)
}

// sameSite reports whether two plainly written http(s) URLs have the same
// host, but for a leading "www.". false means only that it takes parsing.
func sameSite(a, b string) bool {
	ha, ok := plainHost(a)
	if !ok {
		return false
	}
	hb, ok := plainHost(b)
	return ok && strings.TrimPrefix(ha, "www.") == strings.TrimPrefix(hb, "www.")
}

// plainHost returns the host of an http(s) URL that url.Parse reads
// without fail and whose host it returns as written: printable ASCII
// without escapes, and a host of lower-case letters, digits, dots and
// dashes (no user, port or IPv6 address). ok is false for any other URL.
func plainHost(u string) (host string, ok bool) {
	rest, ok := strings.CutPrefix(u, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(u, "http://"); !ok {
			return "", false
		}
	}
	end := -1
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if c <= ' ' || c >= 0x7f || c == '%' {
			return "", false
		}
		if end < 0 {
			switch {
			case c == '/' || c == '?' || c == '#':
				end = i
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.' && i > 0 && rest[i-1] != '.':
			default:
				return "", false
			}
		}
	}
	if end < 0 {
		end = len(rest)
	}
	if end == 0 || rest[end-1] == '.' {
		return "", false
	}
	return rest[:end], true
}

// visit is Visit, parsing both URLs.
func (s Sites) visit(pageURL, referrer string) (model.Traffic, bool) {
	if referrer == "" && !mayBeTagged(pageURL) {
		return model.Traffic{}, false
	}
	page, _ := url.Parse(pageURL)
	var q url.Values
	var pageHost string
	if page != nil {
		// the query is parsed only when it may hold tags: most page views
		// with a referrer are from the shop's own pages, untagged (a
		// percent-escaped name may still spell utm_ once decoded)
		if mayBeTagged(pageURL) || strings.Contains(page.RawQuery, "%") {
			q = page.Query()
		}
		pageHost = hostOf(page)
	}
	var refHost string
	if r, err := url.Parse(referrer); err == nil && referrer != "" {
		refHost = hostOf(r)
	}
	external := refHost != "" && !s.internal(refHost, pageHost)

	t := model.Traffic{
		Campaign: q.Get("utm_campaign"),
		Term:     q.Get("utm_term"),
		Content:  q.Get("utm_content"),
	}
	if external {
		t.ReferrerHost = refHost
	}
	for _, c := range clickIDs {
		if q.Get(c.param) != "" {
			t.ClickID, t.Source, t.Medium = c.param, c.source, c.medium
			break
		}
	}
	if us, um := q.Get("utm_source"), q.Get("utm_medium"); us != "" || um != "" {
		t.Source, t.Medium = us, um
		if t.Source == "" {
			t.Source = "(not set)"
		}
		if t.Medium == "" {
			t.Medium = "(not set)"
		}
	}
	if t.Source == "" {
		if !external {
			return model.Traffic{}, false
		}
		name, cat := lookup(refHost)
		switch {
		case name == "":
			t.Source, t.Medium = strings.TrimPrefix(refHost, "www."), "referral"
		case cat == "search":
			t.Source, t.Medium = name, "organic"
		case cat == "email":
			t.Source, t.Medium = name, "email"
		default:
			t.Source, t.Medium = name, "referral"
		}
	}
	t.Channel = Group(t.Source, t.Medium, t.Campaign)
	return t, true
}

// mayBeTagged reports whether a URL may carry UTM tags or a click id.
func mayBeTagged(u string) bool {
	_, q, ok := strings.Cut(u, "?")
	if !ok {
		return false
	}
	if strings.Contains(q, "utm_") {
		return true
	}
	for _, p := range clickIDParams {
		if strings.Contains(q, p) {
			return true
		}
	}
	return false
}

// clickIDParams are the click ids as they start a query parameter, "gclid=":
// made once, not for every page view.
var clickIDParams = func() []string {
	var out []string
	for _, c := range clickIDs {
		out = append(out, c.param+"=")
	}
	return out
}()

// DirectTraffic is the traffic of a visit with no known origin.
func DirectTraffic() model.Traffic {
	return model.Traffic{Source: DirectSource, Medium: DirectMedium, Channel: Direct}
}

func (s Sites) internal(refHost, pageHost string) bool {
	bare := strings.TrimPrefix(refHost, "www.")
	if bare == strings.TrimPrefix(pageHost, "www.") {
		return true
	}
	for _, h := range s.Own {
		if bare == strings.TrimPrefix(h, "www.") {
			return true
		}
	}
	for _, h := range s.Excluded {
		if refHost == h || strings.HasSuffix(refHost, "."+h) {
			return true
		}
	}
	return false
}

func hostOf(u *url.URL) string { return strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")) }
