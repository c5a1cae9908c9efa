package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// TestBackupAndRestoreCommands runs shoptrail backup against a running
// instance (its data directory locked, so through the admin listener) and
// shoptrail restore with -data after the files, as the README shows.
func TestBackupAndRestoreCommands(t *testing.T) {
	a := enginetest.NewApp(t)
	ev := map[string]any{"id": "cli-1", "type": "page_view", "anonymous_id": "a", "session_id": "s", "url": "https://shop.example/"}
	a.Do(t, "POST", "/api/v1/events", map[string]any{"events": []any{ev}}, nil, a.Auth()...)
	dir := t.TempDir()
	ctx := context.Background()
	cli := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, args, &out, &errb)
		return out.String() + errb.String(), err
	}
	full := filepath.Join(dir, "full.backup")
	out, err := cli("-data", a.Config.Storage.Dir, "backup", "-o", full)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`--since (\d+)`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "full backup up to version") {
		t.Fatalf("backup said: %s", out)
	}
	ev["id"] = "cli-2"
	a.Do(t, "POST", "/api/v1/events", map[string]any{"events": []any{ev}}, nil, a.Auth()...)
	inc := filepath.Join(dir, "inc.backup")
	if out, err := cli("-data", a.Config.Storage.Dir, "backup", "-o", inc, "--since", m[1]); err != nil || !strings.Contains(out, "incremental backup from version "+m[1]) {
		t.Fatalf("incremental backup: %v\n%s", err, out)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-data", a.Config.Storage.Dir, "backup"}, "usage: shoptrail backup -o FILE"},
		{[]string{"-data", filepath.Join(dir, "nope"), "backup", "-o", filepath.Join(dir, "x")}, "no data directory"},
		{[]string{"restore", full}, "usage: shoptrail restore"},
		{[]string{"restore", "-data", filepath.Join(dir, "r0")}, "usage: shoptrail restore"},
		{[]string{"restore", inc, "-data", filepath.Join(dir, "r1")}, "cannot be restored alone"},
		{[]string{"restore", full, "-data", a.Config.Storage.Dir}, "not empty"},
	} {
		if out, err := cli(tt.args...); err == nil || !strings.Contains(err.Error()+out, tt.want) {
			t.Errorf("%v: %v %s, want %q", tt.args, err, out, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); !os.IsNotExist(err) {
		t.Error("a failed backup left a file")
	}
	restored := filepath.Join(dir, "restored")
	out, err = cli("restore", full, inc, "-data", restored)
	if err != nil || !strings.Contains(out, "Restored 2 backup file(s)") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	cfg := enginetest.Config(t)
	cfg.Storage.Dir = restored
	b := enginetest.Start(t, cfg)
	var l struct{ Events []struct{ ID string } }
	b.Do(t, "GET", "/api/v1/events", nil, &l, a.Auth()...)
	if len(l.Events) != 2 || l.Events[0].ID != "cli-2" || l.Events[1].ID != "cli-1" {
		t.Errorf("restored events: %+v", l.Events)
	}
	// rebuild after retention dropped events needs --force
	b.Fold(t)
	if n, err := b.Sweep(ctx, time.Now()); err != nil || n == 0 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	b.Stop()
	if out, err := cli("-data", restored, "rebuild"); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("rebuild after retention: %v %s", err, out)
	}
	if out, err := cli("-data", restored, "rebuild", "--force", "rollups"); err != nil || !strings.Contains(out, "Dropped rollups") {
		t.Errorf("rebuild --force: %v %s", err, out)
	}
}

// TestInitWritesTheExample: shoptrail init writes config.example.toml as
// it is in the repository (embedded), which loads to the defaults, and
// never overwrites a file.
func TestInitWritesTheExample(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"init", "-o", path}, &out, &out); err != nil {
		t.Fatal(err)
	}
	written, _ := os.ReadFile(path)
	repo, _ := os.ReadFile("config.example.toml")
	if !bytes.Equal(written, repo) {
		t.Error("init wrote something else than config.example.toml")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	cfg, err := config.Load(path, nil)
	if err != nil || !reflect.DeepEqual(cfg, config.Default()) {
		t.Errorf("the written config loads to %+v (%v), not the defaults", cfg, err)
	}
	os.WriteFile(path, []byte("# mine\n"), 0o600)
	if err := run(context.Background(), []string{"init", "-o", path}, &out, &out); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("init over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "# mine\n" {
		t.Error("init overwrote the file")
	}
	out.Reset()
	if err := run(context.Background(), []string{"-version"}, &out, &out); err != nil || !strings.HasPrefix(out.String(), "shoptrail ") {
		t.Errorf("-version: %v %q", err, out.String())
	}
}
