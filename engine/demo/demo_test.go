package demo

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEveryPageRenders(t *testing.T) {
	s, err := New(func(endpoint string) string { return "<script>/*snippet " + endpoint + "*/</script>" })
	if err != nil {
		t.Fatal(err)
	}
	if len(s.products) != 12 || len(s.byID["1005"].Variations) != 3 {
		t.Fatalf("%d main products; 1005 has %d variations", len(s.products), len(s.byID["1005"].Variations))
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for path, want := range map[string]string{
		"/demo/":         "Trail Runner 3",
		"/demo/c/11":     "category_view",
		"/demo/p/1001":   `shoptrail('track', 'product_view', {product_id: "1001"`,
		"/demo/cart":     "Your cart",
		"/demo/checkout": "shoptrail('track', 'checkout'",
		"/demo/thanks?order_id=A-1&email=jane%40example.com&items=1001,1003": `"value":159.83`,
		// what the shopper typed is escaped in the event snippet
		"/demo/thanks?order_id=%3C/script%3E&email=%22%3C/script%3E%3Cscript%3Ealert(1)%3C/script%3E": `\u003c/script\u003e`,
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) || !strings.Contains(string(body), "/*snippet http://127.0.0.1") {
			t.Errorf("%s: %d, want %q in\n%s", path, resp.StatusCode, want, body)
		}
		if strings.Contains(string(body), "<script>alert(1)") {
			t.Errorf("%s: unescaped input", path)
		}
	}
	for _, path := range []string{"/demo/p/9999", "/demo/c/99"} {
		if resp, _ := http.Get(srv.URL + path); resp.StatusCode != 404 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
}
