// Package enginetest starts the real Shoptrail for tests: Badger in a temp
// dir, both listeners on 127.0.0.1:0, real HTTP.
package enginetest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/shoptrail/shoptrail/engine/apikey"
	"github.com/shoptrail/shoptrail/engine/app"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/model"
)

// App is a running app and an API key with every scope.
type App struct {
	*app.App
	Config config.Config
	Key    string
	stop   func()
}

// Stop shuts the app down as SIGTERM would, before the test ends.
func (a *App) Stop() { a.stop() }

// Config returns the configuration NewApp uses: defaults, a temp data dir,
// ephemeral ports.
func Config(t testing.TB) config.Config {
	cfg := config.Default()
	cfg.Storage.Dir = t.TempDir()
	cfg.HTTP.Public = "127.0.0.1:0"
	cfg.HTTP.Admin = "127.0.0.1:0"
	// every test client is 127.0.0.1: tests of the rate limit turn it on
	cfg.HTTP.RateLimit = 0
	return cfg
}

// NewApp starts the app; edit changes the configuration first. The app
// stops when the test ends.
func NewApp(t testing.TB, edit ...func(*config.Config)) *App {
	t.Helper()
	cfg := Config(t)
	for _, e := range edit {
		e(&cfg)
	}
	return Start(t, cfg)
}

// Logger logs to the test's log with -v, nowhere otherwise.
func Logger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn // shown when the test fails: why a request got a 500
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	w := &testWriter{t: t}
	t.Cleanup(w.end) // registered before the app's, so it runs after them
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// Start runs the app with cfg until the test ends.
func Start(t testing.TB, cfg config.Config, opts ...app.Option) *App {
	t.Helper()
	return StartWithLogger(t, cfg, Logger(t), opts...)
}

// StartWithLogger is Start with the app logging to log (tests that check
// what is logged).
func StartWithLogger(t testing.TB, cfg config.Config, log *slog.Logger, opts ...app.Option) *App {
	t.Helper()
	a, err := app.New(cfg, log, append([]app.Option{app.WithPasswordCost(bcrypt.MinCost)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	secret, k, err := apikey.New("test", model.AllScopes(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Store.PutAPIKey(k); err != nil {
		t.Fatal(err)
	}
	if err := a.Listen(); err != nil {
		a.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &App{App: a, Config: cfg, Key: secret, stop: stop}
}

// Do sends a request to the public listener and decodes a JSON answer into
// out (if not nil). It returns the status.
func (a *App) Do(t testing.TB, method, path string, body any, out any, header ...string) int {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewBufferString(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, a.PublicURL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	// a browser's user agent unless the test sends another: Go's own
	// is a bot's (engine/track/bots.txt)
	req.Header.Set("User-Agent", BrowserUA)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// BrowserUA is the user agent of an ordinary desktop Chrome: what tests
// send, and the headless Chromium of Browser claims, when they play a
// shopper (HeadlessChrome and Go-http-client are flagged as bots).
const BrowserUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// Auth is the header pair that sends the app's API key.
func (a *App) Auth() []string { return []string{"Authorization", "Bearer " + a.Key} }

// Fold waits until the projections include every stored event.
func (a *App) Fold(t testing.TB) {
	t.Helper()
	a.FoldWithin(t, 10*time.Second)
}

// FoldWithin is Fold with another timeout (benchmarks wait minutes for
// the fold of a burst).
func (a *App) FoldWithin(t testing.TB, d time.Duration) {
	t.Helper()
	last, err := a.Store.LastSeq()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := a.Pipeline.Wait(ctx, last); err != nil {
		t.Fatalf("projections did not catch up with seq %d: %v", last, err)
	}
}

// testWriter logs through t until the test ends, then to stderr: a
// goroutine that outlives the test must not log through it (testing
// panics).
type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return os.Stderr.Write(p)
	}
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func (w *testWriter) end() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
