package web_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// TestSearchBadInput: absurd search parameters get a 400 that names the
// field, odd but possible ones an answer; never a 500.
func TestSearchBadInput(t *testing.T) {
	a := enginetest.NewApp(t) // the demo catalogue is indexed
	for _, tt := range []struct {
		query  url.Values
		status int
		field  string
	}{
		{url.Values{"q": {strings.Repeat("a", 5000)}}, 400, "q"},
		{url.Values{"q": {strings.Repeat("word ", 1000)}}, 400, "q"},
		{url.Values{"q": {strings.Repeat("a", 200)}}, 200, ""},
		{url.Values{"q": {strings.Repeat("ü", 200)}}, 200, ""},
		{url.Values{"q": {"runing shoes"}}, 200, ""},
		{url.Values{"q": {"\xff\xfe invalid utf-8"}}, 200, ""},
		{url.Values{"q": {"nul\x00byte"}}, 200, ""},
		{url.Values{"q": {`.*+?()[]{}|\^$ "quoted" -not +must title:x`}}, 200, ""},
		{url.Values{"q": {"   "}}, 200, ""},
		{url.Values{"brand": {strings.Repeat("b", 5000)}}, 400, "brand"},
		{url.Values{"category": {strings.Repeat("c", 5000)}}, 400, "category"},
		{url.Values{"color": {strings.Repeat("c", 5000)}}, 400, "color"},
		{url.Values{"min_price": {"NaN"}}, 400, "min_price"},
		{url.Values{"max_price": {"Inf"}}, 400, "max_price"},
		{url.Values{"max_price": {"1e309"}}, 400, "max_price"},
		{url.Values{"size": {"1e9"}}, 400, "size"},
	} {
		var body struct {
			Error struct{ Field string } `json:"error"`
		}
		st := a.Do(t, "GET", "/api/v1/products/search?"+tt.query.Encode(), nil, &body, a.Auth()...)
		if st != tt.status || body.Error.Field != tt.field {
			t.Errorf("%.60s: %d field %q; want %d field %q", tt.query.Encode(), st, body.Error.Field, tt.status, tt.field)
		}
	}
	// the admin page answers too
	c := signedIn(t, a)
	if resp, page := c.do("GET", "/products?q="+strings.Repeat("a", 5000), nil); resp.StatusCode != 200 || !strings.Contains(page, "at most 200 characters") {
		t.Errorf("admin search: %d", resp.StatusCode)
	}
}
