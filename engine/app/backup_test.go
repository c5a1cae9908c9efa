package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/app"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// shopper sends the events of one shopper's visit: page views from a
// campaign, a login that merges the anonymous profile, sometimes an order.
func shopperBatch(i int) map[string]any {
	anon, sess := fmt.Sprintf("anon-%d", i), fmt.Sprintf("s-%d", i)
	email := fmt.Sprintf("shopper%d@example.com", i%40)
	now := time.Now().UTC()
	evs := []map[string]any{
		{"id": fmt.Sprintf("pv-%d", i), "type": "page_view", "anonymous_id": anon, "session_id": sess, "time": now,
			"url": fmt.Sprintf("https://shop.example/?utm_source=news&utm_medium=email&utm_campaign=c%d", i%3), "referrer": "https://mail.example/"},
		{"id": fmt.Sprintf("vw-%d", i), "type": "product_view", "anonymous_id": anon, "session_id": sess, "time": now,
			"url": "https://shop.example/p/1", "props": map[string]any{"product_id": fmt.Sprint(1001 + i%7)}},
		{"id": fmt.Sprintf("li-%d", i), "type": "login", "anonymous_id": anon, "session_id": sess, "email": email, "time": now,
			"url": "https://shop.example/account"},
	}
	if i%3 == 0 {
		evs = append(evs, map[string]any{"id": fmt.Sprintf("or-%d", i), "type": "order", "anonymous_id": anon, "session_id": sess, "email": email, "time": now,
			"url": "https://shop.example/thanks", "props": map[string]any{"order_id": fmt.Sprintf("O-%d", i), "value": 10 + i%50, "currency": "EUR"}})
	}
	return map[string]any{"events": evs}
}

// answers are the API's answers that a restored instance must repeat.
func answers(t *testing.T, a *enginetest.App, key string) map[string]string {
	t.Helper()
	auth := []string{"Authorization", "Bearer " + key}
	get := func(path string) string {
		var v any
		if st := a.Do(t, "GET", path, nil, &v, auth...); st != 200 {
			t.Fatalf("GET %s: %d %v", path, st, v)
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	out := map[string]string{}
	for i := range 40 {
		email := fmt.Sprintf("shopper%d@example.com", i)
		out["user "+email] = get("/api/v1/user/" + email)
		out["events "+email] = get("/api/v1/user/" + email + "/events?limit=1000")
		export := get("/api/v1/user/" + email + "/export")
		// the export says when it was made
		var doc map[string]any
		json.Unmarshal([]byte(export), &doc)
		delete(doc, "exportedAt")
		b, _ := json.Marshal(doc)
		out["export "+email] = string(b)
	}
	// every event through the API, page by page
	path := "/api/v1/events?limit=1000"
	for n := 0; ; n++ {
		var page struct {
			Events     []json.RawMessage
			NextBefore uint64 `json:"next_before"`
		}
		if st := a.Do(t, "GET", path, nil, &page, auth...); st != 200 {
			t.Fatalf("GET %s: %d", path, st)
		}
		b, _ := json.Marshal(page)
		out[fmt.Sprint("events page ", n)] = string(b)
		if page.NextBefore == 0 {
			break
		}
		path = fmt.Sprintf("/api/v1/events?limit=1000&before=%d", page.NextBefore)
	}
	day := time.Now().UTC()
	q := url.Values{"from": {day.AddDate(0, 0, -1).Format(time.DateOnly)}, "to": {day.AddDate(0, 0, 1).Format(time.DateOnly)}}.Encode()
	out["attribution"] = get("/api/v1/reports/attribution?" + q)
	out["attribution orders"] = get("/api/v1/reports/attribution/orders?channel=Email&" + q)
	out["search"] = get("/api/v1/products/search?q=shoe")
	out["product"] = get("/api/v1/products/1001")
	out["recommendations"] = get("/api/v1/products/1001/recommendations")
	return out
}

func getBody(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func allEvents(t *testing.T, st *store.Store) []*model.Event {
	t.Helper()
	evs, err := st.EventsAfter(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestBackupWhileEventsFlowRestoresTheSameInstance takes a full backup of a
// running instance through shoptrail backup's path (the admin listener)
// while events flow, then incremental ones, restores them into an empty
// directory, and compares every event and every API answer.
func TestBackupWhileEventsFlowRestoresTheSameInstance(t *testing.T) {
	a := enginetest.NewApp(t)
	dir := t.TempDir()
	var sent atomic.Int64
	stop := make(chan struct{})
	var flow sync.WaitGroup
	for w := range 3 {
		flow.Go(func() {
			for i := w; ; i += 3 {
				select {
				case <-stop:
					return
				default:
				}
				if st := a.Do(t, "POST", "/api/v1/events", shopperBatch(i), nil, a.Auth()...); st != 200 {
					t.Errorf("ingest: %d", st)
					return
				}
				sent.Add(1)
			}
		})
	}
	waitSent := func(n int64) {
		for sent.Load() < n {
			time.Sleep(5 * time.Millisecond)
		}
	}
	ctx := context.Background()
	waitSent(30)
	full, err := app.Backup(ctx, a.Config, filepath.Join(dir, "full.backup"), 0)
	if err != nil {
		t.Fatal(err)
	}
	waitSent(sent.Load() + 30)
	inc1, err := app.Backup(ctx, a.Config, filepath.Join(dir, "inc1.backup"), full.Version+1)
	if err != nil {
		t.Fatal(err)
	}
	waitSent(sent.Load() + 30)
	close(stop)
	flow.Wait()
	a.Fold(t)
	inc2, err := app.Backup(ctx, a.Config, filepath.Join(dir, "inc2.backup"), inc1.Version+1)
	if err != nil {
		t.Fatal(err)
	}
	if full.Since != 0 || inc1.Since != full.Version+1 || inc2.Version <= inc1.Version {
		t.Fatalf("versions: full %+v inc1 %+v inc2 %+v", full, inc1, inc2)
	}
	want := answers(t, a, a.Key)
	wantEvents := allEvents(t, a.Store)
	t.Logf("%d batches, %d events; backups %d, %d, %d bytes", sent.Load(), len(wantEvents), full.Size, inc1.Size, inc2.Size)
	a.Stop()

	// the full backup alone is one consistent snapshot: a dense log, no
	// projection past its end
	snap := filepath.Join(t.TempDir(), "snap")
	if _, err := app.Restore(a.Config, snap, []string{full.Path}, enginetest.Logger(t)); err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, snap)

	restored := filepath.Join(t.TempDir(), "restored")
	if _, err := app.Restore(a.Config, restored, []string{full.Path, inc1.Path, inc2.Path}, enginetest.Logger(t)); err != nil {
		t.Fatal(err)
	}
	cfg := enginetest.Config(t)
	cfg.Storage.Dir = restored
	b := enginetest.Start(t, cfg)
	b.Fold(t)
	if got := allEvents(t, b.Store); !reflect.DeepEqual(got, wantEvents) {
		t.Fatalf("restored log differs: %d events, want %d", len(got), len(wantEvents))
	}
	// the old instance's API key works on the restored one
	got := answers(t, b, a.Key)
	for k, w := range want {
		if got[k] != w {
			i := 0
			for i < len(w) && i < len(got[k]) && w[i] == got[k][i] {
				i++
			}
			from := max(0, i-150)
			t.Errorf("%s differs after restore at byte %d:\n got …%.400s\nwant …%.400s", k, i, got[k][from:], w[from:])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d answers, want %d", len(got), len(want))
	}
}

// checkSnapshot opens a restored directory: its log must be dense and no
// projection may have folded past its end.
func checkSnapshot(t *testing.T, dir string) {
	t.Helper()
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs := allEvents(t, st)
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("snapshot log has a hole at seq %d (found %d)", i+1, ev.Seq)
		}
	}
	for _, name := range []string{"identity", "products", "rollups", "attribution"} {
		ps, err := st.ProjectionState(name)
		if err != nil {
			t.Fatal(err)
		}
		if ps.Checkpoint > uint64(len(evs)) {
			t.Errorf("projection %s at %d, past the snapshot's log (%d events)", name, ps.Checkpoint, len(evs))
		}
	}
}

func TestRestoreRefuses(t *testing.T) {
	a := enginetest.NewApp(t)
	a.Do(t, "POST", "/api/v1/events", shopperBatch(1), nil, a.Auth()...)
	dir := t.TempDir()
	ctx := context.Background()
	full, err := app.Backup(ctx, a.Config, filepath.Join(dir, "full.backup"), 0)
	if err != nil {
		t.Fatal(err)
	}
	a.Do(t, "POST", "/api/v1/events", shopperBatch(2), nil, a.Auth()...)
	inc, err := app.Backup(ctx, a.Config, filepath.Join(dir, "inc.backup"), full.Version+1)
	if err != nil {
		t.Fatal(err)
	}
	a.Do(t, "POST", "/api/v1/events", shopperBatch(3), nil, a.Auth()...)
	inc2, err := app.Backup(ctx, a.Config, filepath.Join(dir, "inc2.backup"), inc.Version+1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("full ..%d, inc %d..%d, inc2 %d..%d", full.Version, inc.Since, inc.Version, inc2.Since, inc2.Version)
	raw, _ := os.ReadFile(full.Path)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)/2] ^= 0xff
	nonEmpty := t.TempDir()
	os.WriteFile(filepath.Join(nonEmpty, "x"), nil, 0o600)
	for _, tt := range []struct {
		name  string
		files []string
		into  string
		want  string
	}{
		{"empty file", []string{write("empty", nil)}, "", "truncated"},
		{"cut in the header", []string{write("head", raw[:10])}, "", "truncated"},
		{"cut in the middle", []string{write("half", raw[:len(raw)/2])}, "", "truncated"},
		{"last byte missing", []string{write("short", raw[:len(raw)-1])}, "", "truncated"},
		{"a flipped byte", []string{write("flipped", flipped)}, "", "checksum"},
		{"not a backup", []string{write("other", []byte("hello, world\n"))}, "", "not a Shoptrail backup"},
		{"incremental alone", []string{inc.Path}, "", "cannot be restored alone"},
		{"a gap", []string{full.Path, inc2.Path}, "", "missing in between"}, // full &{full.Version} inc {inc.Since}..{inc.Version}
		{"two full", []string{full.Path, full.Path}, "", "only be the first"},
		{"into a non-empty dir", []string{full.Path}, nonEmpty, "not empty"},
		{"no such file", []string{filepath.Join(dir, "nope")}, "", "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			into := tt.into
			if into == "" {
				into = filepath.Join(t.TempDir(), "d")
			}
			_, err := app.Restore(a.Config, into, tt.files, enginetest.Logger(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
			if tt.into == "" {
				if entries, _ := os.ReadDir(into); len(entries) > 0 {
					t.Errorf("a refused restore wrote %d files", len(entries))
				}
			}
		})
	}
}

// TestBackupEndpoint: the admin listener's /backup needs the control
// file's token; an incremental backup after a projection was dropped is
// refused (its deletions would be missing).
func TestBackupEndpoint(t *testing.T) {
	a := enginetest.NewApp(t)
	raw, err := os.ReadFile(filepath.Join(a.Config.Storage.Dir, app.ControlFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(a.Config.Storage.Dir, app.ControlFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("control file mode %v, want 0600", fi.Mode().Perm())
	}
	var c struct{ Token string }
	json.Unmarshal(raw, &c)
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest("GET", a.AdminURL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		name, path, token string
		status            int
		want              string
	}{
		{"no token", "/backup", "", 401, "unauthorized"},
		{"wrong token", "/backup", strings.Repeat("0", 64), 401, "unauthorized"},
		{"API key is not enough", "/backup", a.Key, 401, "unauthorized"},
		{"bad since", "/backup?since=x", c.Token, 400, `"field":"since"`},
		{"since zero", "/backup?since=0", c.Token, 400, `"field":"since"`},
		{"full", "/backup", c.Token, 200, "SHOPTRAIL-BACKUP 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, body := get(tt.path, tt.token)
			if st != tt.status || !strings.Contains(body, tt.want) {
				t.Fatalf("%d %.200q, want %d with %q", st, body, tt.status, tt.want)
			}
		})
	}
	// a projection dropped (a new version of it, shoptrail rebuild)
	if err := a.Store.DropProjection("test", store.ProjectionSpace("test")); err != nil {
		t.Fatal(err)
	}
	if st, body := get("/backup?since=1", c.Token); st != 409 || !strings.Contains(body, "need_full_backup") {
		t.Fatalf("incremental after a drop: %d %.200q", st, body)
	}
	// after stop, the control file is gone
	a.Stop()
	if _, err := os.Stat(filepath.Join(a.Config.Storage.Dir, app.ControlFile)); !os.IsNotExist(err) {
		t.Errorf("control file left after shutdown: %v", err)
	}
	// and backup reads the stopped store directly
	info, err := app.Backup(context.Background(), a.Config, filepath.Join(t.TempDir(), "b"), 0)
	if err != nil || info.Version == 0 {
		t.Fatalf("backup of a stopped instance: %+v %v", info, err)
	}
}

// TestScheduledBackups: [backup] dir gets backups and keeps the newest.
func TestScheduledBackups(t *testing.T) {
	dir := t.TempDir()
	// two old ones, as if from earlier runs; the next is due at once
	for _, n := range []string{"shoptrail-20200101T000000Z.backup", "shoptrail-20200102T000000Z.backup"} {
		p := filepath.Join(dir, n)
		os.WriteFile(p, []byte("old"), 0o600)
		old := time.Now().Add(-48 * time.Hour)
		os.Chtimes(p, old, old)
	}
	a := enginetest.NewApp(t, func(c *config.Config) {
		c.Backup.Dir, c.Backup.Every, c.Backup.Keep = dir, config.Duration{Duration: time.Hour}, 2
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if len(names) == 2 && names[0] == "shoptrail-20200102T000000Z.backup" && strings.HasSuffix(names[1], ".backup") {
			if _, err := store.VerifyBackup(filepath.Join(dir, names[1])); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backup dir holds %v", names)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = a
}
