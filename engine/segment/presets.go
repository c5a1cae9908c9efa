package segment

// Preset is a ready-made segment the admin UI offers to start from.
type Preset struct {
	Key, Name, About string
	Rule             string // the definition, JSON
}

// Presets show what segments are for: where shoppers came from, what they
// did and did not do.
var Presets = []Preset{
	{"facebook", "Visitors from Facebook", "came from Facebook (an ad or a post) in the last 30 days",
		`{"name":"Visitors from Facebook","match":"all","conditions":[
 {"event":"visit_from_referrer","where":[{"prop":"source","op":"contains","value":"facebook"}],"count":{"op":"gte","value":1},"within":"720h"}]}`},
	{"paid-search", "From paid search", "came from a search ad (Google Ads, Microsoft Ads) in the last 30 days",
		`{"name":"From paid search","match":"all","conditions":[
 {"event":"visit_from_referrer","where":[{"prop":"channel","op":"eq","value":"Paid Search"}],"count":{"op":"gte","value":1},"within":"720h"}]}`},
	{"abandoned-cart", "Abandoned cart (added to cart, no order in 24 h)", "added something to the cart in the last 24 hours and did not order since",
		`{"name":"Abandoned cart","match":"all","conditions":[
 {"event":"add_to_cart","count":{"op":"gte","value":1},"within":"24h"},
 {"not":{"event":"order","within":"24h"}}]}`},
	{"repeat-buyers", "Repeat buyers", "ordered at least twice in the last 90 days",
		`{"name":"Repeat buyers","match":"all","conditions":[
 {"orders":{"op":"gte","value":2},"within":"2160h"}]}`},
	{"email-openers", "Email openers", "opened an email in the last 30 days",
		`{"name":"Email openers","match":"all","conditions":[
 {"event":"email_open","count":{"op":"gte","value":1},"within":"720h"}]}`},
}
