package web_test

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	tracker "github.com/shoptrail/shoptrail/tracker-wasm"
)

func get(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	// no transparent gzip: see what the server sends
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestTrackerAssets(t *testing.T) {
	assets, _ := tracker.Build()
	if !assets.Built {
		t.Skip("the WASM tracker is not built (make builds it)")
	}
	a := enginetest.NewApp(t)
	resp, loader := get(t, a.PublicURL+tracker.LoaderPath)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "public, max-age=300" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("loader: %d %v", resp.StatusCode, resp.Header)
	}
	var wasmPath string
	for _, f := range strings.Split(string(loader), `"`) {
		if strings.HasPrefix(f, "/tracker/tracker.") && strings.HasSuffix(f, ".wasm") {
			wasmPath = f
		}
	}
	if wasmPath == "" {
		t.Fatalf("the loader names no hashed wasm: %s", loader)
	}
	for _, tt := range []struct{ accept, encoding string }{{"gzip, deflate, br, zstd", "br"}, {"gzip", "gzip"}, {"", ""}} {
		resp, body := get(t, a.PublicURL+wasmPath, "Accept-Encoding", tt.accept)
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("Content-Type") != "application/wasm" || h.Get("Content-Encoding") != tt.encoding ||
			h.Get("Cache-Control") != "public, max-age=31536000, immutable" || h.Get("Access-Control-Allow-Origin") != "*" || h.Get("ETag") == "" {
			t.Errorf("Accept-Encoding %q: %d %v", tt.accept, resp.StatusCode, h)
		}
		if tt.encoding == "" && string(body[:4]) != "\x00asm" {
			t.Errorf("identity body is not WebAssembly")
		}
		resp, _ = get(t, a.PublicURL+wasmPath, "If-None-Match", h.Get("ETag"))
		if resp.StatusCode != 304 {
			t.Errorf("If-None-Match: %d", resp.StatusCode)
		}
	}
	if resp, _ := get(t, a.PublicURL+"/tracker/tracker.0000.wasm"); resp.StatusCode != 404 {
		t.Errorf("unknown asset: %d", resp.StatusCode)
	}
}

func TestSnippetIsSmallAndCarriesTheSettings(t *testing.T) {
	s := tracker.Snippet("https://track.shop.example/", 12*time.Hour, true, true)
	if tracker.StubSize() > 2048 {
		t.Errorf("the stub is %d bytes, over 2 KB", tracker.StubSize())
	}
	for _, want := range []string{`"https://track.shop.example",12,true,1`, "sendBeacon", "/tracker.js"} {
		if !strings.Contains(s, want) {
			t.Errorf("snippet lacks %q: %s", want, s)
		}
	}
}

func TestGlobalPrivacyControl(t *testing.T) {
	a := enginetest.NewApp(t, func(c *config.Config) { c.Tracking.RespectGPC = true })
	var ans answer
	a.Do(t, "POST", "/t", batch(pv("g1", "a", "s", "https://shop.example/", "")), &ans, "Sec-GPC", "1")
	a.Do(t, "POST", "/t", batch(pv("g2", "a", "s", "https://shop.example/", "")), &ans)
	var l listing
	a.Do(t, "GET", "/api/v1/events", nil, &l, a.Auth()...)
	if len(l.Events) != 1 || l.Events[0].ID != "g2" {
		t.Fatalf("stored %+v; the Sec-GPC request must store nothing", l.Events)
	}
}

func TestREADMEShowsTheRealSnippet(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if s := tracker.Snippet("https://track.shop.example", 12*time.Hour, false, true); !strings.Contains(string(readme), s) {
		t.Errorf("README.md's main snippet differs from the stub; it should read:\n%s", s)
	}
}
