package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// TestKill9LosesNoAcknowledgedEvent starts the built binary, sends events
// from several clients, kills it with SIGKILL mid-stream, restarts it, and
// checks that every event that got a 2xx is stored exactly once, also after
// the clients retry.
func TestKill9LosesNoAcknowledgedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "shoptrail")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(dir, "config.toml")
	data := filepath.Join(dir, "data")
	// rate_limit = 0: every client here is 127.0.0.1, sending as fast as it can
	cfg := fmt.Sprintf("[http]\npublic = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\nrate_limit = 0\n[storage]\ndir = %q\n", data)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(bin, "-config", cfgPath, "apikey", "create", "--name", "crash").CombinedOutput()
	if err != nil {
		t.Fatalf("apikey create: %v\n%s", err, out)
	}
	key := regexp.MustCompile(`st_[a-z0-9]+`).FindString(string(out))

	cmd, url := start(t, bin, cfgPath)
	// while it runs, apikey create explains instead of failing obscurely
	if out, err := exec.Command(bin, "-config", cfgPath, "apikey", "create", "--name", "x").CombinedOutput(); err == nil || !strings.Contains(string(out), "is running") {
		t.Errorf("apikey create while running: %v %s", err, out)
	}

	var mu sync.Mutex
	acked := map[string]bool{}
	var ackedBatches [][]byte
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second}
			for i := 0; ctx.Err() == nil; i++ {
				n := 1 + i%5
				var evs []map[string]any
				var ids []string
				for j := range n {
					id := fmt.Sprintf("w%d-%d-%d", w, i, j)
					ids = append(ids, id)
					evs = append(evs, map[string]any{"id": id, "type": "page_view", "anonymous_id": fmt.Sprint("a", w), "session_id": fmt.Sprint("s", w), "url": "https://shop.example/p/" + id})
				}
				body, _ := json.Marshal(map[string]any{"events": evs})
				resp, err := client.Post(url+"/t", "text/plain", bytes.NewReader(body))
				if err != nil {
					continue // killed mid-request: not acknowledged
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					for _, id := range ids {
						acked[id] = true
					}
					ackedBatches = append(ackedBatches, body)
					mu.Unlock()
				}
			}
		})
	}
	// kill once a good number of events are in
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 3000 {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	cancel()
	wg.Wait()
	t.Logf("%d events acknowledged before SIGKILL", len(acked))
	if len(acked) == 0 {
		t.Fatal("no event was acknowledged")
	}

	// restart; the clients retry everything they sent
	cmd, url = start(t, bin, cfgPath)
	dups := 0
	for _, body := range ackedBatches {
		resp, err := http.Post(url+"/t", "text/plain", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var ans struct{ Accepted, Duplicates int }
		json.NewDecoder(resp.Body).Decode(&ans)
		resp.Body.Close()
		if resp.StatusCode != 200 || ans.Accepted != 0 {
			t.Fatalf("retry: %d %+v", resp.StatusCode, ans)
		}
		dups += ans.Duplicates
	}
	if dups != len(acked) {
		t.Errorf("retries found %d duplicates, want %d", dups, len(acked))
	}
	req, _ := http.NewRequest("GET", url+"/api/v1/events?limit=1", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("API after restart: %v %v", resp, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}

	st, err := store.Open(store.Options{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	count := map[string]int{}
	last, _ := st.LastSeq()
	st.ScanLog(last, 1, func(ev *model.Event) (bool, error) {
		count[ev.ID]++
		return true, nil
	})
	for id := range acked {
		if count[id] != 1 {
			t.Errorf("acknowledged event %s stored %d times", id, count[id])
		}
	}
	for id, n := range count {
		if n != 1 {
			t.Errorf("event %s stored %d times", id, n)
		}
	}
	t.Logf("%d events stored, %d acknowledged, all acknowledged ones exactly once", len(count), len(acked))
}

// start runs the binary and returns it with its public URL.
func start(t *testing.T, bin, cfgPath string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, "-config", cfgPath)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	re := regexp.MustCompile(`public listener: (http://\S+)`)
	for lines.Scan() {
		if m := re.FindStringSubmatch(lines.Text()); m != nil {
			go io.Copy(io.Discard, stdout)
			return cmd, m[1]
		}
	}
	t.Fatal("the binary did not print its public listener")
	return nil, ""
}
