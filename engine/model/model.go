// Package model holds the domain types of Shoptrail. It does no I/O.
package model

import (
	"encoding/json"
	"slices"
	"time"
)

// Canonical event types. Anything else is a custom event.
const (
	PageView          = "page_view"
	ProductView       = "product_view"
	CategoryView      = "category_view"
	Search            = "search"
	AddToCart         = "add_to_cart"
	RemoveFromCart    = "remove_from_cart"
	Checkout          = "checkout"
	Order             = "order"
	Subscribe         = "subscribe"
	Login             = "login"
	VisitFromReferrer = "visit_from_referrer"
	Unsubscribe       = "unsubscribe"
	// onsite campaigns (engine/campaign): props campaign_id, group, variation
	CampaignImpression = "campaign_impression"
	CampaignClick      = "campaign_click"
	CampaignClose      = "campaign_close"
	// what a feed import changed (engine/catalog), recorded by Shoptrail
	// only (Via server): props product_id, main_id (a variation's main
	// product), title, currency, old_price and new_price (minor units)
	ProductBackInStock = "product_back_in_stock"
	ProductPriceDrop   = "product_price_drop"
)

// Event is one stored event: what the client sent, normalised, plus the
// fields the server adds. Events are immutable once stored.
type Event struct {
	Seq          uint64                     `json:"seq"`
	ID           string                     `json:"id"`
	Type         string                     `json:"type"`
	OriginalType string                     `json:"original_type,omitempty"` // the alias the client used, e.g. "Order Completed"
	Time         time.Time                  `json:"time"`
	ReceivedAt   time.Time                  `json:"received_at"`
	TimeClamped  bool                       `json:"time_clamped,omitempty"`
	Via          string                     `json:"via"` // "browser" or "api"
	AnonymousID  string                     `json:"anonymous_id,omitempty"`
	SessionID    string                     `json:"session_id,omitempty"`
	Email        string                     `json:"email,omitempty"`
	URL          string                     `json:"url,omitempty"`
	Referrer     string                     `json:"referrer,omitempty"`
	Props        map[string]json.RawMessage `json:"props,omitempty"`
	Traffic      *Traffic                   `json:"traffic,omitempty"`
	DerivedFrom  string                     `json:"derived_from,omitempty"` // id of the event this one was generated from
	// UserAgent is the User-Agent of the browser that sent the event
	// (POST /t), at most MaxUserAgentLen bytes; "" for server calls.
	UserAgent string `json:"user_agent,omitempty"`
	// Bot marks an event sent by a crawler, a headless browser or a
	// script posing as a browser (by its user agent). Bot events are
	// stored, but reports and projections leave them out.
	Bot bool `json:"bot,omitempty"`
}

// MaxUserAgentLen bounds Event.UserAgent.
const MaxUserAgentLen = 512

// Via values.
const (
	ViaBrowser = "browser" // sent by a browser to /t: unauthenticated
	ViaAPI     = "api"     // sent with an API key
	ViaServer  = "server"  // made by Shoptrail itself (Record)
)

// Traffic describes where a visit came from. It is set on page views that
// arrive from outside the shop: another site, UTM tags or a click id.
type Traffic struct {
	Source       string `json:"source"`
	Medium       string `json:"medium"`
	Campaign     string `json:"campaign,omitempty"`
	Term         string `json:"term,omitempty"`
	Content      string `json:"content,omitempty"`
	ClickID      string `json:"click_id,omitempty"` // the parameter name: gclid, fbclid, msclkid...
	ReferrerHost string `json:"referrer_host,omitempty"`
	Channel      string `json:"channel"`
}

// Profile is one shopper. An anonymous profile has no Email; when the shop
// tells us the email, the anonymous profile is merged into the user's.
type Profile struct {
	ID           string    `json:"id"`
	Email        string    `json:"email,omitempty"`
	AnonymousIDs []string  `json:"anonymous_ids,omitempty"`
	FirstSeen    time.Time `json:"first_seen"`
	LastSeen     time.Time `json:"last_seen"`
	Events       int64     `json:"events"`
	Sessions     int64     `json:"sessions"`
	OrderSums
}

// Session is a run of events from one browser with no gap longer than the
// session timeout.
type Session struct {
	ID              string    `json:"id"`
	ClientSessionID string    `json:"client_session_id,omitempty"`
	ProfileID       string    `json:"profile_id"`
	Start           time.Time `json:"start"`
	Last            time.Time `json:"last"`
	Events          int64     `json:"events"`
	PageViews       int64     `json:"page_views"`
	LandingURL      string    `json:"landing_url,omitempty"`
	Referrer        string    `json:"referrer,omitempty"`
	Source          string    `json:"source"`
	Medium          string    `json:"medium"`
	Campaign        string    `json:"campaign,omitempty"`
	Channel         string    `json:"channel"`
	FirstSeq        uint64    `json:"first_seq"` // the event that opened it
	UserAgent       string    `json:"user_agent,omitempty"`
	Bot             bool      `json:"bot,omitempty"` // opened by a crawler or a headless browser
}

// Touchpoint is a visit that started from outside the shop: the first page
// view of a session, or a page view from another site, with UTM tags or a
// click id. Attribution credits orders to touchpoints.
type Touchpoint struct {
	Time      time.Time `json:"time"`
	EventID   string    `json:"event_id"`
	SessionID string    `json:"session_id"`
	URL       string    `json:"url,omitempty"`
	Traffic
}

// APIKey is a credential for the public API. Only a hash of the secret is
// kept; the secret is shown once, at creation.
type APIKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Prefix    string    `json:"prefix"` // the first characters of the key, to recognise it
	Hash      []byte    `json:"hash"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	LastUsed  time.Time `json:"last_used,omitzero"`
	Revoked   bool      `json:"revoked,omitempty"`
}

// API key scopes.
const (
	ScopeEventsWrite    = "events:write"
	ScopeEventsRead     = "events:read"
	ScopeUsersRead      = "users:read"
	ScopeUsersWrite     = "users:write"
	ScopeProducts       = "products:read"
	ScopeFeedWrite      = "feed:write"
	ScopeReports        = "reports:read"
	ScopeEmailSend      = "email:send" // send email, read its state, manage suppressions
	ScopeCampaignsRead  = "campaigns:read"
	ScopeCampaignsWrite = "campaigns:write"
	ScopeSegmentsR      = "segments:read"
	ScopeSegmentsW      = "segments:write"
	ScopeEmailWrite     = "email:write" // email campaigns and automations
	ScopeEmailRead      = "email:read"  // read saved email templates (email:write includes it)
)

// AllScopes returns every scope, the default for a new key.
func AllScopes() []string {
	return []string{ScopeEventsWrite, ScopeEventsRead, ScopeUsersRead, ScopeUsersWrite, ScopeProducts, ScopeFeedWrite, ScopeReports, ScopeEmailSend, ScopeCampaignsRead, ScopeCampaignsWrite, ScopeSegmentsR, ScopeSegmentsW, ScopeEmailWrite, ScopeEmailRead}
}

// HasScope reports whether the key grants scope.
func (k APIKey) HasScope(scope string) bool {
	// email:write includes email:read (which came later: keys made before
	// it keep reading what they may write)
	return slices.Contains(k.Scopes, scope) || (scope == ScopeEmailRead && slices.Contains(k.Scopes, ScopeEmailWrite))
}

// Product is one product of the shop's feed. A variation (a colour, a size)
// names its main product in MainID; a main product has MainID "".
type Product struct {
	ID            string            `json:"id"`
	Title         string            `json:"title"`
	URL           string            `json:"url,omitempty"`
	Description   string            `json:"description,omitempty"`
	CategoryIDs   []string          `json:"categoryIds,omitempty"`
	Categories    []string          `json:"categories,omitempty"`
	Price         int64             `json:"price"`                   // minor units
	DiscountPrice int64             `json:"discountPrice,omitempty"` // minor units; 0: none
	Currency      string            `json:"currency,omitempty"`
	Photos        []string          `json:"photos,omitempty"`
	Color         string            `json:"color,omitempty"`
	Brand         string            `json:"brand,omitempty"`
	Stock         *int64            `json:"stock,omitempty"` // nil: unknown
	MainID        string            `json:"mainId,omitempty"`
	Attributes    map[string]string `json:"attributes,omitempty"` // columns the importer did not map
	Removed       bool              `json:"removed,omitempty"`    // missing from the last full feed
	Line          int               `json:"line,omitempty"`       // in the feed it came from

	// From the shops' own exports (WooCommerce, Shopify, Google Merchant).
	SKU      string   `json:"sku,omitempty"`
	Handle   string   `json:"handle,omitempty"`   // Shopify's handle, or the slug of a WooCommerce name
	Type     string   `json:"type,omitempty"`     // simple, variable, variation, grouped, external
	Size     string   `json:"size,omitempty"`     // a variation's size
	PriceMax int64    `json:"priceMax,omitempty"` // with variations of different prices: Price is "from", PriceMax "to"
	Children []string `json:"children,omitempty"` // a grouped product's products
	// Status is published (or "" in catalogues imported before it
	// existed), draft, private, archived or unpublished. Visibility is
	// visible (or ""), catalog (the shop's listings, not its search),
	// search (its search only) or hidden. Products that are not
	// published, or hidden, are kept but never shown in search results
	// or recommendations.
	Status     string `json:"status,omitempty"`
	Visibility string `json:"visibility,omitempty"`
}

// Product statuses, visibilities and types.
const (
	StatusPublished   = "published"
	StatusUnpublished = "unpublished"
	StatusDraft       = "draft"
	StatusPrivate     = "private"
	StatusArchived    = "archived"

	VisibilityVisible = "visible"
	VisibilityCatalog = "catalog"
	VisibilitySearch  = "search"
	VisibilityHidden  = "hidden"

	TypeSimple    = "simple"
	TypeVariable  = "variable"
	TypeVariation = "variation"
	TypeGrouped   = "grouped"
	TypeExternal  = "external"
)

// Published reports whether the shop shows the product at all.
func (p *Product) Published() bool {
	return p.Status == "" || p.Status == StatusPublished
}

// Searchable reports whether search results may show the product.
func (p *Product) Searchable() bool {
	return !p.Removed && p.Published() && (p.Visibility == "" || p.Visibility == VisibilityVisible || p.Visibility == VisibilitySearch)
}

// Recommendable reports whether recommendations (similar, viewed or
// bought together, top in category) may show the product.
func (p *Product) Recommendable() bool {
	return !p.Removed && p.Published() && (p.Visibility == "" || p.Visibility == VisibilityVisible || p.Visibility == VisibilityCatalog)
}

// EffectivePrice is what the shopper pays: the discount price if any.
func (p *Product) EffectivePrice() int64 {
	if p.DiscountPrice > 0 && p.DiscountPrice < p.Price {
		return p.DiscountPrice
	}
	return p.Price
}

// InStock reports whether the product can be bought (unknown stock counts).
func (p *Product) InStock() bool { return !p.Removed && (p.Stock == nil || *p.Stock > 0) }
