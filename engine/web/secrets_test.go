package web_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// lockedBuffer is a log destination that goroutines may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestFeedSecretsStayHidden: a feed URL's token and password appear
// nowhere (log, stored report, API, Products page) when a sync fails, also
// when the failure comes from the HTTP client, whose errors repeat the URL,
// and when the URL that failed is a redirect's.
func TestFeedSecretsStayHidden(t *testing.T) {
	// the feed server sends every request on to a port where nothing listens,
	// with a secret of its own in the URL
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:1/moved.csv?sig=REDIRSECRET", http.StatusFound)
	}))
	defer redirector.Close()
	for _, tt := range []struct {
		name, url string
	}{
		{"refused", "http://feeduser:PASSWORDSECRET@127.0.0.1:1/feed.csv?token=TOKENSECRET&shop=1"},
		{"redirected", strings.Replace(redirector.URL, "http://", "http://feeduser:PASSWORDSECRET@", 1) + "/feed.csv?token=TOKENSECRET"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs lockedBuffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			cfg := enginetest.Config(t)
			cfg.Feed.URL, cfg.Feed.AllowPrivate, cfg.Feed.Timeout = tt.url, true, config.Duration{Duration: 2 * time.Second}
			a := enginetest.StartWithLogger(t, cfg, log)
			c := signedIn(t, a)
			// the scheduled sync at start, then one from the admin UI
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(logs.String(), "feed sync") && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if resp, _ := c.do("POST", "/products/sync", nil, "Content-Type", "application/x-www-form-urlencoded"); resp.StatusCode != 303 {
				t.Fatalf("sync now: %d", resp.StatusCode)
			}
			var rep map[string]any
			if st := a.Do(t, "GET", "/api/v1/feed/report", nil, &rep, a.Auth()...); st != 200 {
				t.Fatalf("report: %d", st)
			}
			repJSON, _ := json.Marshal(rep)
			_, page := c.do("GET", "/products", nil)
			if !strings.Contains(page, "The last import failed") || rep["failure"] == "" {
				t.Fatalf("the failure is not shown:\nreport %s\npage %s", repJSON, page)
			}
			if !strings.Contains(logs.String(), "feed sync") {
				t.Fatalf("the failed sync was not logged:\n%s", logs.String())
			}
			for where, text := range map[string]string{"log": logs.String(), "report": string(repJSON), "page": page} {
				for _, secret := range []string{"TOKENSECRET", "PASSWORDSECRET", "REDIRSECRET", "feeduser"} {
					if strings.Contains(text, secret) {
						t.Errorf("the %s shows %s:\n%s", where, secret, text)
					}
				}
			}
		})
	}
}
