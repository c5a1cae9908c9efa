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
	bin, cfgPath, data := build(t)

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
	type sent struct {
		path string
		body []byte
	}
	var ackedBatches []sent
	// post sends a browser batch to /t, or a Segment SDK's batch to
	// /v1/batch with the key as the Basic auth user name
	post := func(client *http.Client, url, path string, body []byte) (*http.Response, error) {
		req, _ := http.NewRequest("POST", url+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "text/plain")
		if path == "/v1/batch" {
			req.SetBasicAuth(key, "")
		}
		return client.Do(req)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second}
			for i := 0; ctx.Err() == nil; i++ {
				n := 1 + i%5
				var evs []map[string]any
				var ids []string
				path := "/t"
				for j := range n {
					id := fmt.Sprintf("w%d-%d-%d", w, i, j)
					ids = append(ids, id)
					if w >= 6 {
						// a backend with Segment's SDK: an identify that links
						// two ids (a derived alias event), and a track
						path = "/v1/batch"
						evs = append(evs, map[string]any{"type": "identify", "messageId": id, "userId": fmt.Sprintf("u%d-%d", w, i), "anonymousId": fmt.Sprint("a", w),
							"traits": map[string]any{"email": fmt.Sprintf("u%d-%d@example.com", w, i%7)}})
						continue
					}
					evs = append(evs, map[string]any{"id": id, "type": "page_view", "anonymous_id": fmt.Sprint("a", w), "session_id": fmt.Sprint("s", w), "url": "https://shop.example/p/" + id})
				}
				body, _ := json.Marshal(map[string]any{"events": evs})
				if path == "/v1/batch" {
					body, _ = json.Marshal(map[string]any{"batch": evs, "sentAt": time.Now()})
				}
				resp, err := post(client, url, path, body)
				if err != nil {
					continue // killed mid-request: not acknowledged
				}
				ans, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 && resp.StatusCode != 503 {
					t.Errorf("%s: %d %s", path, resp.StatusCode, ans)
				}
				if resp.StatusCode == 200 {
					mu.Lock()
					for _, id := range ids {
						acked[id] = true
					}
					ackedBatches = append(ackedBatches, sent{path, body})
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
	segment := 0
	for _, b := range ackedBatches {
		if b.path == "/v1/batch" {
			segment++
		}
	}
	if len(acked) == 0 || segment == 0 {
		t.Fatalf("%d events acknowledged, %d Segment batches", len(acked), segment)
	}

	// restart; the clients retry everything they sent
	cmd, url = start(t, bin, cfgPath)
	dups := 0
	for _, b := range ackedBatches {
		resp, err := post(http.DefaultClient, url, b.path, b.body)
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

// build builds the binary into a temp dir with a config for it: ephemeral
// ports, a data dir beside it.
func build(t testing.TB) (bin, cfgPath, data string) {
	t.Helper()
	dir := t.TempDir()
	bin = filepath.Join(dir, "shoptrail")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfgPath = filepath.Join(dir, "config.toml")
	data = filepath.Join(dir, "data")
	// rate_limit 0: the tests' clients all post from 127.0.0.1
	cfg := fmt.Sprintf("[http]\npublic = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\nrate_limit = 0\n[storage]\ndir = %q\n", data)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return bin, cfgPath, data
}

// start runs the binary and returns it with its public URL.
func start(t *testing.T, bin, cfgPath string) (*exec.Cmd, string) {
	t.Helper()
	cmd, public, _ := startBoth(t, bin, cfgPath)
	return cmd, public
}

// startBoth runs the binary and returns it with its public and admin URLs.
func startBoth(t testing.TB, bin, cfgPath string) (cmd *exec.Cmd, public, admin string) {
	t.Helper()
	cmd = exec.Command(bin, "-config", cfgPath)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	re := regexp.MustCompile(`(public|admin) listener: +(http://\S+)`)
	for lines.Scan() {
		m := re.FindStringSubmatch(lines.Text())
		switch {
		case m == nil:
		case m[1] == "public":
			public = m[2]
		default:
			admin = m[2]
			go io.Copy(io.Discard, stdout)
			return cmd, public, admin
		}
	}
	t.Fatal("the binary did not print its listeners")
	return nil, "", ""
}

// projections reads where each projection is from the admin /healthz.
func projections(t testing.TB, admin string) map[string]struct {
	State              string
	Checkpoint, Behind uint64
} {
	t.Helper()
	resp, err := http.Get(admin + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Projections map[string]struct {
			State              string
			Checkpoint, Behind uint64
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h.Projections
}

// TestKill9HalfWayThroughAFold kills the binary while the projections fold
// a long log from the start, lets it finish after a restart, and compares
// what they hold with a clean rebuild: a fold resumed from its checkpoint
// counts nothing twice and misses nothing.
func TestKill9HalfWayThroughAFold(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, cfgPath, data := build(t)
	const n = 60_000
	st, err := store.Open(store.Options{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	for i := 0; i < n; i += 1000 {
		var evs []*model.Event
		for j := i; j < i+1000; j++ {
			shopper := j % 700
			ev := &model.Event{ID: fmt.Sprint("e", j), Type: model.PageView, Via: model.ViaAPI, AnonymousID: fmt.Sprint("anon-", shopper),
				SessionID: fmt.Sprint("s-", shopper, "-", j/5000), Time: day.Add(time.Duration(j) * time.Minute), URL: "https://shop.example/"}
			switch {
			case j%50 == 0:
				ev.Type, ev.Email = model.Login, fmt.Sprintf("u%d@example.com", shopper)
			case j%97 == 0:
				ev.Type = model.Order
				ev.Props = map[string]json.RawMessage{"order_id": json.RawMessage(fmt.Sprintf(`"o%d"`, j%3000)), "value": json.RawMessage("12.5"), "currency": json.RawMessage(`"EUR"`)}
			case j%7 == 0:
				ev.Type = model.ProductView
				ev.Props = map[string]json.RawMessage{"product_id": json.RawMessage(fmt.Sprintf(`"%d"`, 1001+j%9))}
			}
			ev.ReceivedAt = ev.Time
			evs = append(evs, ev)
		}
		if _, err := st.Append(evs, nil); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	// waitFolded waits until projection name has folded stopAt events, or
	// with stopAt 0 until every projection has caught up
	waitFolded := func(admin, name string, stopAt uint64) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
			ps := projections(t, admin)
			if stopAt > 0 && ps[name].Checkpoint >= stopAt {
				return
			}
			done := len(ps) > 0
			for _, p := range ps {
				done = done && p.State == "live" && p.Behind == 0
			}
			if done && stopAt == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("projections: %+v", ps)
			}
		}
	}
	snapshot := func() string {
		t.Helper()
		st, err := store.Open(store.Options{Dir: data})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		var b strings.Builder
		rollups, err := st.Rollups("2000-01-01", "2100-01-01")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rollups {
			fmt.Fprintf(&b, "%s events=%d sessions=%d views=%d orders=%d revenue=%v\n", r.Day, r.Events, r.Sessions, r.PageViews, r.Orders, r.Revenue)
		}
		st.Read(func(tx *store.Tx) error {
			for shopper := range 700 {
				for _, id := range []string{model.UserProfileID(fmt.Sprintf("u%d@example.com", shopper)), model.AnonymousProfileID(fmt.Sprint("anon-", shopper))} {
					if p, err := tx.Profile(id); err == nil {
						fmt.Fprintf(&b, "%s events=%d sessions=%d orders=%d revenue=%v\n", id, p.Events, p.Sessions, p.Orders, p.Revenue)
					}
				}
			}
			return nil
		})
		for _, id := range []string{"1001", "1004", "1008"} {
			c, _ := st.PairCounts(store.ViewedTogether, id, 20)
			fmt.Fprintf(&b, "viewed with %s: %v\n", id, c)
		}
		return b.String()
	}

	// kill -9 half-way through the first fold
	cmd, _, admin := startBoth(t, bin, cfgPath)
	waitFolded(admin, "identity", n/3)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	cmd, _, admin = startBoth(t, bin, cfgPath)
	waitFolded(admin, "", 0)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	resumed := snapshot()

	// rollups and products fold the log again behind a live identity (a
	// backfill); kill -9 half-way through it
	if out, err := exec.Command(bin, "-config", cfgPath, "rebuild", "rollups", "products").CombinedOutput(); err != nil {
		t.Fatalf("rebuild rollups: %v %s", err, out)
	}
	cmd, _, admin = startBoth(t, bin, cfgPath)
	if ps := projections(t, admin); ps["rollups"].State != "backfilling" && ps["rollups"].Checkpoint < n {
		t.Errorf("rollups after a rebuild: %+v", ps["rollups"])
	}
	waitFolded(admin, "rollups", n/2)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	cmd, _, admin = startBoth(t, bin, cfgPath)
	waitFolded(admin, "", 0)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if backfilled := snapshot(); backfilled != resumed {
		t.Errorf("a backfill resumed after kill -9 differs:\nbackfilled:\n%.2000s\nbefore:\n%.2000s", backfilled, resumed)
	}

	// a clean rebuild from the log
	if out, err := exec.Command(bin, "-config", cfgPath, "rebuild").CombinedOutput(); err != nil {
		t.Fatalf("rebuild: %v %s", err, out)
	}
	cmd, _, admin = startBoth(t, bin, cfgPath)
	waitFolded(admin, "", 0)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if clean := snapshot(); clean != resumed {
		t.Errorf("a fold resumed after kill -9 differs from a clean one:\nresumed:\n%.2000s\nclean:\n%.2000s", resumed, clean)
	}
	if !strings.Contains(resumed, "orders=") || strings.Count(resumed, "\n") < 700 {
		t.Errorf("the snapshot holds too little:\n%.1000s", resumed)
	}
}
