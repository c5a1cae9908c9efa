package web_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// TestKeyFormNeedsAScope: the Settings form sent with no scope ticked is
// refused with a form error; it used to make a key with every scope.
func TestKeyFormNeedsAScope(t *testing.T) {
	a := enginetest.NewApp(t)
	c := signedIn(t, a)
	before, err := a.Store.APIKeys()
	if err != nil {
		t.Fatal(err)
	}
	resp, page := c.do("POST", "/settings/keys", url.Values{"name": {"no scope"}})
	if resp.StatusCode != 400 || !strings.Contains(page, "at least one scope") || strings.Contains(page, `id="new-key"`) {
		t.Fatalf("no scope: %d\n%s", resp.StatusCode, page)
	}
	after, err := a.Store.APIKeys()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("a key was stored: %d keys before, %d after", len(before), len(after))
	}
	// one scope ticked: the key is made with that scope only
	resp, page = c.do("POST", "/settings/keys", url.Values{"name": {"reader"}, "scope": {"events:read"}})
	if resp.StatusCode != 200 || !strings.Contains(page, `id="new-key"`) {
		t.Fatalf("one scope: %d\n%s", resp.StatusCode, page)
	}
	keys, _ := a.Store.APIKeys()
	for _, k := range keys {
		if k.Name == "reader" && (len(k.Scopes) != 1 || k.Scopes[0] != "events:read") {
			t.Fatalf("key scopes %v", k.Scopes)
		}
	}
}
