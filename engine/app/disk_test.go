package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/app"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/track"
)

// running is an app started by the test itself, so that it can be stopped
// and started again on the same directory.
type running struct {
	*app.App
	stop func()
}

func start(t *testing.T, cfg config.Config) *running {
	t.Helper()
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Listen(); err != nil {
		a.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	var once bool
	r := &running{App: a}
	r.stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(r.stop)
	return r
}

// send posts a batch of n events of about 1 KB each through POST /t.
func send(t *testing.T, base string, batch, n int) (int, http.Header, []byte) {
	t.Helper()
	var evs []map[string]any
	for i := range n {
		evs = append(evs, map[string]any{"id": fmt.Sprintf("b%d-%d", batch, i), "type": "page_view", "anonymous_id": "a-1", "session_id": "s-1",
			"url": "https://shop.example/p/" + strings.Repeat("x", 900) + fmt.Sprint(batch)})
	}
	body, _ := json.Marshal(map[string]any{"events": evs})
	req, _ := http.NewRequest("POST", base+"/t", bytes.NewReader(body))
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	req.Header.Set("Origin", "http://localhost:8080")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// storedIDs lists every stored event id.
func storedIDs(t *testing.T, a *app.App) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	q := track.Query{Limit: track.MaxLimit}
	for {
		evs, err := a.Tracker.Events(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			ids[e.ID] = true
		}
		if len(evs) < q.Limit {
			return ids
		}
		q.Before = evs[len(evs)-1].Seq
	}
}

func free(t *testing.T, dir string) uint64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// TestFullDisk fills a small tmpfs under a running Shoptrail: ingestion
// answers 503 with Retry-After before the disk is full, /healthz says why,
// the process does not crash, reads go on, every acknowledged event is
// there after a restart, and writes resume once space is freed. Needs root
// (mount); skipped where mounting is not allowed.
func TestFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	cfg := enginetest.Config(t)
	cfg.Storage.Dir = filepath.Join(mnt, "data")
	cfg.Demo.Enabled = false
	a := start(t, cfg)

	// leave 100 MiB: the guard keeps 64 MiB free on so small a disk
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for free(t, mnt) > 100<<20 {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	acked := map[string]bool{}
	var refused bool
	for b := 0; b < 2000 && !refused; b++ {
		st, hdr, body := send(t, a.PublicURL, b, 50)
		switch st {
		case 200:
			for i := range 50 {
				acked[fmt.Sprintf("b%d-%d", b, i)] = true
			}
		case 503:
			refused = true
			if hdr.Get("Retry-After") == "" || !strings.Contains(string(body), `"disk_full"`) {
				t.Errorf("refusal: %v %s", hdr, body)
			}
		default:
			t.Fatalf("batch %d: %d %s", b, st, body)
		}
	}
	if !refused {
		t.Fatalf("2000 batches of 50 KB were accepted on a 256 MiB disk")
	}
	t.Logf("%d events acknowledged, then 503 with %s free", len(acked), fmt.Sprint(free(t, mnt)>>20, " MiB"))
	for _, base := range []string{a.PublicURL, a.AdminURL} {
		if st, body := get(t, base+"/healthz"); st != 503 || !strings.Contains(body, "disk_full") {
			t.Errorf("%s/healthz: %d %s", base, st, body)
		}
	}
	if _, body := get(t, a.AdminURL+"/healthz"); !strings.Contains(body, "min_free") {
		t.Errorf("the admin /healthz does not say why: %s", body)
	}
	// reads go on
	if got := storedIDs(t, a.App); len(got) < len(acked) {
		t.Errorf("%d events listed, %d acknowledged", len(got), len(acked))
	}

	// stop and start again on the nearly full disk: no crash, reads work
	a.stop()
	a = start(t, cfg)
	got := storedIDs(t, a.App)
	for id := range acked {
		if !got[id] {
			t.Fatalf("acknowledged event %s is missing after the restart (%d of %d there)", id, len(got), len(acked))
		}
	}
	// closing Badger may have freed some (flushed memtables, truncated
	// value-log files): fill the disk below the floor again
	f, err = os.OpenFile(filler, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	for free(t, mnt) > 48<<20 {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	refusedAgain := false
	for deadline := time.Now().Add(2 * time.Second); !refusedAgain && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		st, _, _ := send(t, a.PublicURL, 9999, 1)
		refusedAgain = st == 503
	}
	if !refusedAgain {
		t.Errorf("after the restart, with %d MiB free, writes are not refused", free(t, mnt)>>20)
	}

	// free the space: writes resume by themselves
	os.Remove(filler)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _, body := send(t, a.PublicURL, 10000, 1)
		if st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes did not resume after freeing space: %d %s", st, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st, _ := get(t, a.PublicURL+"/healthz"); st != 200 {
		t.Errorf("/healthz after freeing space: %d", st)
	}
}

// TestUnwritableDataDir makes the data directory unwritable under a
// running Shoptrail (chattr +i: no file can be created in it, as on a
// read-only or permission-broken mount). Badger would crash at its next new
// file (a nil memtable, then a nil-pointer panic); the disk guard's probe
// sees it within seconds and writes are refused instead, reads go on, and
// writes resume when the directory is writable again.
func TestUnwritableDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("needs chattr")
	}
	cfg := enginetest.Config(t)
	cfg.Demo.Enabled = false
	if out, err := exec.Command("chattr", "+i", cfg.Storage.Dir).CombinedOutput(); err != nil {
		t.Skipf("chattr is not available here: %v %s", err, out)
	}
	exec.Command("chattr", "-i", cfg.Storage.Dir).Run()
	a := start(t, cfg)
	for b := range 5 {
		if st, _, body := send(t, a.PublicURL, b, 50); st != 200 {
			t.Fatalf("batch %d: %d %s", b, st, body)
		}
	}
	if out, err := exec.Command("chattr", "+i", cfg.Storage.Dir).CombinedOutput(); err != nil {
		t.Fatalf("chattr: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", cfg.Storage.Dir).Run() })
	// as fast as it goes: without the guard, 2 000 batches of 50 reached
	// Badger's next memtable and a nil-pointer panic
	deadline := time.Now().Add(3 * time.Second)
	b := 100
	for {
		st, hdr, body := send(t, a.PublicURL, b, 50)
		b++
		if st == 503 {
			if hdr.Get("Retry-After") == "" || !strings.Contains(string(body), "disk_full") {
				t.Errorf("refusal: %v %s", hdr, body)
			}
			break
		}
		if st != 200 || time.Now().After(deadline) {
			t.Fatalf("after chattr +i, batch %d: %d %s", b, st, body)
		}
	}
	t.Logf("refused after %d batches", b-100)
	for i := range 200 {
		if st, _, body := send(t, a.PublicURL, 50000+i, 50); st != 503 {
			t.Fatalf("a write went through while the directory is unwritable: %d %s", st, body)
		}
	}
	if st, body := get(t, a.AdminURL+"/healthz"); st != 503 || !strings.Contains(body, "cannot be written") {
		t.Errorf("admin /healthz: %d %s", st, body)
	}
	// the admin UI shows the banner (signing in writes a session: a small
	// write into files Badger has open, which still works)
	if err := a.Guard.Setup(a.Guard.SetupToken(), "owner", "correct horse battery"); err != nil {
		t.Fatalf("setup: %v", err)
	}
	id, err := a.Guard.Login("owner", "correct horse battery", "127.0.0.1")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	req, _ := http.NewRequest("GET", a.AdminURL+"/", nil)
	req.AddCookie(&http.Cookie{Name: "__Host-shoptrail_admin", Value: id})
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `id="disk-problem"`) || !strings.Contains(string(page), "cannot be written") {
		t.Errorf("no banner on the dashboard: %d %.300s", resp.StatusCode, page)
	}
	if got := storedIDs(t, a.App); len(got) < 250 {
		t.Errorf("reads: %d events listed", len(got))
	}
	exec.Command("chattr", "-i", cfg.Storage.Dir).Run()
	deadline = time.Now().Add(6 * time.Second)
	for {
		st, _, body := send(t, a.PublicURL, 100000, 1)
		if st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes did not resume: %d %s", st, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
