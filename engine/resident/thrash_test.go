//go:build linux

package resident

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log destination for a goroutine and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A file read over and over that is much bigger than the limit has its
// pages reclaimed and read back again and again: Start warns once (not at
// every window), naming the setting. A file under the limit gets no warning.
func TestStartWarnsWhenTheBoundThrashes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		limit int64
		warns int
	}{
		{"thrashing", 16 << 20, 1 << 20, 1},
		{"within the bound", 1 << 20, 8 << 20, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b := mapFile(t, dir, tc.size, 3)
			var logs syncBuffer
			tr := New(dir, tc.limit, slog.New(slog.NewTextHandler(&logs, nil)))
			tr.window = 100 * time.Millisecond
			tr.Start(10 * time.Millisecond)
			var sum byte
			for end := time.Now().Add(time.Second); time.Now().Before(end); {
				for i := 0; i < len(b); i += 4096 {
					sum += b[i] // every page, again: back from the disk
				}
			}
			tr.Stop()
			_ = sum
			if got := strings.Count(logs.String(), "raise mapped_limit"); got != tc.warns {
				t.Errorf("%d warnings, want %d: %s (reclaimed %d bytes)", got, tc.warns, logs.String(), tr.Stats().Freed)
			}
		})
	}
}
