package track

import "strings"

// aliases maps Segment e-commerce (v1 and v2) and GA4 event names, in lower
// case, to Shoptrail's canonical names. The client's name is kept in
// Event.OriginalType.
var aliases = map[string]string{
	// Segment v2 and v1
	"page viewed":             "page_view",
	"page":                    "page_view",
	"pageview":                "page_view",
	"product viewed":          "product_view",
	"viewed product":          "product_view",
	"product list viewed":     "category_view",
	"viewed product category": "category_view",
	"product category viewed": "category_view",
	"products searched":       "search",
	"searched products":       "search",
	"product added":           "add_to_cart",
	"added product":           "add_to_cart",
	"product removed":         "remove_from_cart",
	"removed product":         "remove_from_cart",
	"checkout started":        "checkout",
	"started checkout":        "checkout",
	"order completed":         "order",
	"completed order":         "order",
	"signed in":               "login",
	"signed up":               "subscribe",
	"unsubscribed":            "unsubscribe",
	// GA4
	"view_item":      "product_view",
	"view_item_list": "category_view",
	"begin_checkout": "checkout",
	"purchase":       "order",
}

// canonicalType returns the canonical name of an event type and, when it
// was an alias, the name the client used.
func canonicalType(t string) (canonical, original string) {
	if c, ok := aliases[strings.ToLower(t)]; ok {
		return c, t
	}
	return t, ""
}

// propAliases are the property names other conventions use for ours,
// first match wins. They are copied (not moved) to the canonical name.
var propAliases = map[string][]string{
	"order_id":   {"transaction_id", "orderId"},
	"value":      {"revenue", "total"},
	"product_id": {"item_id", "sku", "productId"},
	"query":      {"search_term", "q"},
	"items":      {"products"},
}

// itemAliases are the same for the entries of items[].
var itemAliases = map[string][]string{
	"product_id": {"item_id", "sku", "id", "productId"},
	"name":       {"item_name"},
	"brand":      {"item_brand"},
	"category":   {"item_category"},
	"variant":    {"item_variant"},
}

// CanonicalType returns the canonical name of an event type given by its
// canonical name or an alias ("Order Completed", "purchase": "order");
// any other name is a custom event's and is returned as it is.
func CanonicalType(t string) string {
	c, _ := canonicalType(strings.TrimSpace(t))
	return c
}
