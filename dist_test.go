package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCopiedBinaryRunsAlone builds the linux/amd64 binary as make dist
// does (static, version stamped), copies it alone into an empty directory,
// and runs it there without Go, a config file or the source tree: it
// serves the demo shop, the tracker and the admin setup page, and
// shoptrail init writes the example config.
func TestCopiedBinaryRunsAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release binary")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("runs the linux/amd64 binary")
	}
	const version = "v9.9.9-copied"
	built := filepath.Join(t.TempDir(), "shoptrail")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X github.com/shoptrail/shoptrail/engine/buildinfo.Version="+version, "-o", built, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// static: no program interpreter (dynamic loader) in the ELF file
	raw, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("/lib64/ld-linux")) {
		t.Error("the binary is linked dynamically")
	}
	alone := t.TempDir()
	bin := filepath.Join(alone, "shoptrail")
	if err := os.WriteFile(bin, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/nonexistent", "HOME=" + alone} // no Go, no source tree
	run := func(args ...string) string {
		t.Helper()
		c := exec.Command(bin, args...)
		c.Dir, c.Env = alone, env
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("shoptrail %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("-version"); strings.TrimSpace(out) != "shoptrail "+version {
		t.Errorf("-version: %q", out)
	}
	if out := run("init"); !strings.Contains(out, "Wrote config.toml") {
		t.Errorf("init: %s", out)
	}
	written, _ := os.ReadFile(filepath.Join(alone, "config.toml"))
	if !bytes.Equal(written, exampleConfig) {
		t.Error("init wrote something else than config.example.toml")
	}
	os.Remove(filepath.Join(alone, "config.toml"))

	srv := exec.Command(bin, "-public", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	srv.Dir, srv.Env = alone, env
	stdout, _ := srv.StdoutPipe()
	var stderr lockedBuffer
	srv.Stderr = &stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	var public, admin, setup string
	lines := bufio.NewScanner(stdout)
	re := regexp.MustCompile(`(public|admin) listener: +(http://\S+)|(http://\S+/setup\?token=\S+)`)
	for lines.Scan() {
		m := re.FindStringSubmatch(lines.Text())
		switch {
		case m == nil:
		case m[1] == "public":
			public = m[2]
		case m[1] == "admin":
			admin = m[2]
		case m[3] != "":
			setup = m[3]
		}
		if setup != "" {
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	if public == "" || admin == "" || setup == "" {
		t.Fatalf("listeners %q %q, setup link %q; stderr:\n%s", public, admin, setup, stderr.String())
	}
	get := func(u string) (int, string) {
		t.Helper()
		var resp *http.Response
		var err error
		for range 50 {
			if resp, err = http.Get(u); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := get(public + "/demo/"); st != 200 || !strings.Contains(body, "/tracker.js") {
		t.Errorf("demo shop: %d %.300s", st, body)
	}
	if st, body := get(public + "/tracker.js"); st != 200 || len(body) == 0 {
		t.Errorf("tracker loader: %d", st)
	}
	if st, body := get(setup); st != 200 || !strings.Contains(body, `name="password"`) || !strings.Contains(body, "Shoptrail "+version) {
		t.Errorf("admin setup page: %d %.500s", st, body)
	}
	if st, body := get(admin + "/healthz"); st != 200 || !strings.Contains(body, `"version":"`+version+`"`) {
		t.Errorf("admin /healthz: %d %s", st, body)
	}
	if _, err := os.Stat(filepath.Join("tracker-wasm", "dist", "tracker.wasm")); err == nil && strings.Contains(stderr.String(), "without the WASM tracker") {
		t.Error("the WASM tracker is not embedded")
	}
	if _, err := os.Stat(filepath.Join(alone, "data")); err != nil {
		t.Errorf("no data directory beside the binary: %v", err)
	}
}

// lockedBuffer is a bytes.Buffer that a process writes while the test reads.
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
