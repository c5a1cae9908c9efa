package resident

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

func TestCPUSaturatedWhenLessThanHalfAProcessorIsIdle(t *testing.T) {
	stat := filepath.Join(t.TempDir(), "stat")
	c := &CPU{Stat: stat}
	write := func(user, idle, iowait uint64) {
		t.Helper()
		line := "cpu  " + u(user) + " 0 0 " + u(idle) + " " + u(iowait) + " 0 0 0 0 0\n"
		body := line + "cpu0 1 2 3 4 5 6 7 8 9 10\ncpu1 1 2 3 4 5 6 7 8 9 10\nintr 1 2 3\n"
		if err := os.WriteFile(stat, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(1000, 1000, 0)
	if c.Saturated() {
		t.Fatal("saturated with no earlier reading")
	}
	steps := []struct {
		busy, idle, iowait uint64
		want               bool
	}{
		{90, 10, 0, true},   // 10 % idle of 2 processors: a fifth of one
		{60, 40, 0, false},  // 40 %: most of one idle
		{75, 20, 5, false},  // 25 % with iowait: exactly half of one
		{76, 24, 0, true},   // 24 %
		{100, 0, 0, true},   // none idle
		{0, 100, 0, false},  // all idle
		{30, 60, 10, false}, // iowait counts as idle
	}
	var user, idle, iowait uint64 = 1000, 1000, 0
	for i, s := range steps {
		user, idle, iowait = user+s.busy, idle+s.idle, iowait+s.iowait
		write(user, idle, iowait)
		c.at = c.at.Add(-cpuSample) // read again
		if got := c.Saturated(); got != s.want {
			t.Errorf("step %d (%d busy, %d idle, %d iowait): saturated %v, want %v", i, s.busy, s.idle, s.iowait, got, s.want)
		}
	}
	// a reading stands for a while
	write(user+100, idle, iowait)
	c.at = time.Now()
	was := c.saturated
	if got := c.Saturated(); got != was {
		t.Errorf("read again within %s", cpuSample)
	}
}

func TestCPUUnreadableIsSaturated(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("cpu  1 2 x 4\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	for _, path := range []string{filepath.Join(dir, "missing"), bad, empty} {
		if !(&CPU{Stat: path}).Saturated() {
			t.Errorf("%s: not saturated", filepath.Base(path))
		}
	}
}

func TestCPUReadsTheMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/stat is Linux's")
	}
	idle, total, cpus, ok := readStat("/proc/stat")
	if !ok || total == 0 || idle > total || cpus < 1 {
		t.Fatalf("idle %d total %d cpus %d ok %v", idle, total, cpus, ok)
	}
}

func u(n uint64) string { return strconv.FormatUint(n, 10) }
