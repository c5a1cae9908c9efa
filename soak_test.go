package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// TestSoak is `make soak` (SOAK=1): 20 cycles of mixed load —
// browsers and the shop's server sending events, Users API writes, a feed
// import — each ended by kill -9 at a random moment, with one disk-full
// episode half-way (on a small tmpfs, where mounting one is allowed). After
// every cycle it counts in the store what was acknowledged: no event lost,
// none stored twice, no acknowledged attribute lost, the catalogue whole.
func TestSoak(t *testing.T) {
	if os.Getenv("SOAK") == "" {
		t.Skip("make soak runs it (SOAK=1)")
	}
	bin, cfgPath, data := build(t)
	tmpfs := filepath.Join(filepath.Dir(data), "tmpfs")
	if err := os.MkdirAll(tmpfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512m", "tmpfs", tmpfs).Run(); err == nil {
		t.Cleanup(func() { exec.Command("umount", "-l", tmpfs).Run() })
		data = filepath.Join(tmpfs, "data")
		cfg := fmt.Sprintf("[http]\npublic = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\nrate_limit = 0\n[storage]\ndir = %q\n", data)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Logf("no tmpfs (%v): the disk-full episode is skipped", err)
		tmpfs = ""
	}
	out, err := exec.Command(bin, "-config", cfgPath, "apikey", "create", "--name", "soak").CombinedOutput()
	if err != nil {
		t.Fatalf("apikey create: %v\n%s", err, out)
	}
	key := regexp.MustCompile(`st_[a-z0-9]+`).FindString(string(out))
	feed, err := os.ReadFile("engine/feed/testdata/feed-sample.csv")
	if err != nil {
		t.Fatal(err)
	}

	acked := map[string]bool{}   // event ids acknowledged, over all cycles
	lastAttr := map[string]int{} // the last acknowledged value of each user's attribute n
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(7, 9))
	post := func(client *http.Client, url string, body []byte, header ...string) int {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for cycle := 1; cycle <= 20; cycle++ {
		cmd, url, admin := startBoth(t, bin, cfgPath)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		before := len(acked)
		// browsers
		for w := range 4 {
			wg.Go(func() {
				client := &http.Client{Timeout: 5 * time.Second}
				for i := 0; ctx.Err() == nil; i++ {
					var evs []map[string]any
					var ids []string
					for j := range 1 + i%4 {
						id := fmt.Sprintf("c%d-b%d-%d-%d", cycle, w, i, j)
						ids = append(ids, id)
						evs = append(evs, map[string]any{"id": id, "type": "page_view", "anonymous_id": fmt.Sprint("anon-", w), "session_id": fmt.Sprint("s-", w),
							"url": "https://shop.example/p/1?utm_source=newsletter&utm_medium=email"})
					}
					body, _ := json.Marshal(map[string]any{"events": evs})
					if post(client, url+"/t", body, "Content-Type", "text/plain", "User-Agent", "Mozilla/5.0 Chrome/131") == 200 {
						mu.Lock()
						for _, id := range ids {
							acked[id] = true
						}
						mu.Unlock()
					}
				}
			})
		}
		// the shop's server: orders and logins
		for w := range 2 {
			wg.Go(func() {
				client := &http.Client{Timeout: 5 * time.Second}
				for i := 0; ctx.Err() == nil; i++ {
					id := fmt.Sprintf("c%d-o%d-%d", cycle, w, i)
					ev := map[string]any{"id": id, "type": "order", "email": fmt.Sprintf("buyer%d@example.com", i%50),
						"props": map[string]any{"order_id": id, "value": 10 + i%90, "currency": "EUR"}}
					body, _ := json.Marshal(map[string]any{"events": []any{ev}})
					if post(client, url+"/api/v1/events", body, "Authorization", "Bearer "+key) == 200 {
						mu.Lock()
						acked[id] = true
						mu.Unlock()
					}
				}
			})
		}
		// Users API writes
		wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second}
			for i := 1; ctx.Err() == nil; i++ {
				email := fmt.Sprintf("member%d@example.com", i%5)
				body, _ := json.Marshal(map[string]any{"email": email, "n": cycle*100000 + i})
				if st := post(client, url+"/api/v1/user", body, "Authorization", "Bearer "+key); st == 200 || st == 201 {
					mu.Lock()
					lastAttr[email] = cycle*100000 + i
					mu.Unlock()
				}
			}
		})
		// a feed import (force: the sample replaces the demo catalogue)
		wg.Go(func() {
			post(&http.Client{Timeout: 5 * time.Second}, url+"/api/v1/feed/import?force=true", feed, "Authorization", "Bearer "+key)
		})
		if cycle == 10 && tmpfs != "" {
			// the disk fills up under the load, and frees again
			var st syscall.Statfs_t
			syscall.Statfs(tmpfs, &st)
			free := int64(st.Bavail) * int64(st.Bsize)
			filler := filepath.Join(tmpfs, "filler")
			if err := os.WriteFile(filler, make([]byte, max(free-40<<20, 0)), 0o600); err != nil {
				t.Logf("filler: %v", err)
			}
			time.Sleep(time.Second)
			resp, err := http.Get(admin + "/healthz")
			if err == nil {
				t.Logf("cycle %d: disk filled, admin /healthz %d", cycle, resp.StatusCode)
				resp.Body.Close()
			}
			os.Remove(filler)
		}
		time.Sleep(time.Duration(500+rng.IntN(2500)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		cancel()
		wg.Wait()

		// count what is stored
		st, err := store.Open(store.Options{Dir: data})
		if err != nil {
			t.Fatalf("cycle %d: open: %v", cycle, err)
		}
		count := map[string]int{}
		last, _ := st.LastSeq()
		st.ScanLog(last, 1, func(ev *model.Event) (bool, error) {
			count[ev.ID]++
			return true, nil
		})
		lost, dup := 0, 0
		for id := range acked {
			if count[id] == 0 {
				lost++
			}
		}
		for _, n := range count {
			if n > 1 {
				dup++
			}
		}
		attrsLost := 0
		for email, n := range lastAttr {
			u, err := st.User(email)
			if v, _ := u.Custom["n"].(float64); err != nil || int(v) < n {
				attrsLost++
			}
		}
		gen, _ := st.Catalogue()
		_, perr := st.Product("1001")
		st.Close()
		t.Logf("cycle %2d: acked %6d (+%5d)  found %6d  lost %d  duplicated %d  attributes lost %d  catalogue generation %d",
			cycle, len(acked), len(acked)-before, len(count), lost, dup, attrsLost, gen)
		if lost > 0 || dup > 0 || attrsLost > 0 || gen == 0 || perr != nil {
			t.Fatalf("cycle %d: lost %d, duplicated %d, attributes lost %d, catalogue %d (%v)", cycle, lost, dup, attrsLost, gen, perr)
		}
	}
}
