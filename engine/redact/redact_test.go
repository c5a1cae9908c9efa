package redact

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"https://shop.example/feed.csv", "https://shop.example/feed.csv"},
		{"https://shop.example/feed.csv?token=SECRET", "https://shop.example/feed.csv?token=***"},
		{"https://shop.example/feed.csv?a=1&token=SECRET&b", "https://shop.example/feed.csv?a=***&token=***&b=***"},
		{"https://user:SECRET@shop.example/feed.csv", "https://***@shop.example/feed.csv"},
		{"https://shop.example/feed.csv?token=SE%zzCRET", "https://shop.example/feed.csv?token=***"},
		{"https://shop.example/feed.csv#SECRET", "https://shop.example/feed.csv#***"},
		{"http://[::1:bad/x?token=SECRET", "(invalid URL)"},
	} {
		if got := URL(tt.in); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestErrorOfHTTPClient: the client's errors repeat the full URL; Error
// masks it wherever it is in the chain.
func TestErrorOfHTTPClient(t *testing.T) {
	req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://user:PASS@127.0.0.1:1/feed.csv?token=SECRET", nil)
	_, err := http.DefaultClient.Do(req)
	if err == nil {
		t.Skip("something listens on port 1")
	}
	err = fmt.Errorf("catalog: fetch the feed: %w", err)
	if !strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("the test needs an error that shows the URL: %v", err)
	}
	got := Error(err)
	if strings.Contains(got, "SECRET") || strings.Contains(got, "PASS") || !strings.Contains(got, "127.0.0.1:1/feed.csv?token=***") {
		t.Fatalf("Error = %q", got)
	}
	if Error(nil) != "" || Error(errors.New("plain")) != "plain" {
		t.Fatal("nil or plain errors changed")
	}
}

// FuzzText: whatever text surrounds a URL, and whatever its query holds,
// the secret in its query or userinfo never comes out of Text.
func FuzzText(f *testing.F) {
	for _, s := range []string{`Get "%s": dial tcp`, `%s`, `parse %s: invalid`, `("%s")`, "x\t%s\ny", `'%s'`} {
		f.Add(s, "token", "/feed.csv")
	}
	f.Fuzz(func(t *testing.T, around, name, path string) {
		if strings.Count(around, "%s") != 1 || strings.Contains(around, "%!") {
			return
		}
		name = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' {
				return r
			}
			return -1
		}, name)
		if name == "" {
			name = "t"
		}
		path = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r == '/' || r == '.' {
				return r
			}
			return -1
		}, path)
		for _, u := range []string{
			"https://shop.example" + path + "?" + name + "=SECRETVALUE",
			"http://user:SECRETVALUE@shop.example" + path,
			"https://shop.example" + path + "?a=1&" + name + "=SECRETVALUE#frag",
		} {
			got := Text(fmt.Sprintf(around, u))
			if strings.Contains(got, "SECRETVALUE") {
				t.Fatalf("Text(%q) = %q", fmt.Sprintf(around, u), got)
			}
		}
	})
}
