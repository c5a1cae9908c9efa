package enginetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Browser starts a headless Chromium with a fresh profile. It skips the test
// when no Chromium is installed, except in CI, where .ci/run installs it.
func Browser(t testing.TB) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no Chromium found; .ci/run should have installed it")
		}
		t.Skip("no Chromium found (apt-get install chromium): browser tests skipped")
	}
	lockBrowser(t)
	// not t.TempDir: Chromium's helper processes may still write to the
	// profile's cache for a moment after it is stopped, and testing fails a
	// test whose temp dir it cannot remove
	profile, err := os.MkdirTemp("", "shoptrail-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		// it plays a shopper: with its own HeadlessChrome user agent its
		// events would be stored as a bot's
		chromedp.UserAgent(BrowserUA),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute) // CI runs packages side by side with -race
	t.Cleanup(func() {
		cancelT()
		cancelB()
		cancelA()
		for range 40 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// lockBrowser lets one test at a time, across the test binaries that go
// test runs side by side, drive a Chromium: two of them and the race
// detector on two cores starved each other past their timeouts.
func lockBrowser(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "shoptrail-chromium.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock
}

// Step runs actions in the browser with their own timeout. When they fail
// it logs where the tab was (its address, load state and text) and what the
// test process's goroutines were doing, so that a hang says whether the
// server or the browser stood still. The tab is brought to the front
// first, and a step that timed out is tried once more: under the race
// detector on two cores, a headless Chromium is slow to paint.
func Step(t testing.TB, ctx context.Context, name string, timeout time.Duration, actions ...chromedp.Action) error {
	t.Helper()
	// a tab opens on its context's first Run and closes when the context
	// of that Run ends: open it on ctx, not on the step's
	if err := chromedp.Run(ctx); err != nil {
		return fmt.Errorf("%s: open the tab: %w", name, err)
	}
	var err error
	for try := 1; try <= 2; try++ {
		step, cancel := context.WithTimeout(ctx, timeout)
		// a background tab paints no frames, and what waits for one
		// (a screenshot, an animation) waits for ever
		err = chromedp.Run(step, append([]chromedp.Action{page.BringToFront()}, actions...)...)
		cancel()
		if err == nil {
			return nil
		}
		var where string
		probe, cancel := context.WithTimeout(ctx, 5*time.Second)
		chromedp.Run(probe, chromedp.Evaluate(`location.href + " (" + document.readyState + "): " + (document.body ? document.body.innerText : "").slice(0, 1500)`, &where))
		cancel()
		var stacks strings.Builder
		pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		t.Logf("browser step %q, try %d: %v\nthe tab: %s\ngoroutines:\n%s", name, try, err, where, stacks.String())
		if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("%s: %w", name, err)
}
