//go:build linux

package resident

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// mapFile maps a new file of n bytes under dir, written through the mapping
// (so its pages are resident and dirty), and returns the mapping.
func mapFile(t *testing.T, dir string, n int, fill byte) []byte {
	t.Helper()
	return mapNamed(t, filepath.Join(dir, "data.vlog"), n, fill, true)
}

func mapNamed(t *testing.T, path string, n int, fill byte, touch bool) []byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(int64(n)); err != nil {
		t.Fatal(err)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	for i := range b {
		if !touch {
			break
		}
		b[i] = fill + byte(i%7)
	}
	return b
}

func resident(t *testing.T, dir string) int64 {
	t.Helper()
	ms, err := mappings(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, m := range ms {
		n += m.rss
	}
	return n
}

// TestTrimReclaimsTheDirectorysMappedPagesAndKeepsTheirData maps 64 MiB of
// a file under the directory and 8 MiB of one outside it, writes both
// through their mappings, and trims to a 16 MiB limit: the directory's file
// leaves the resident set, the other stays, and every byte of both reads
// back as written, through the mapping and from the file.
func TestTrimReclaimsTheDirectorysMappedPagesAndKeepsTheirData(t *testing.T) {
	// a data directory's path may hold spaces: smaps shows it as it is
	dir, other := filepath.Join(t.TempDir(), "my shop data"), t.TempDir()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	const n = 64 << 20
	// a write-ahead log with nothing resident comes first in the order of
	// reclaim: it must not end the pass
	mapNamed(t, filepath.Join(dir, "00001.mem"), 1<<20, 0, false)
	b := mapFile(t, dir, n, 1)
	o := mapFile(t, other, 8<<20, 2)
	if r := resident(t, dir); r < n*9/10 {
		t.Fatalf("resident before: %d bytes, want about %d", r, n)
	}
	tr := New(dir, 16<<20, nil)
	p, err := tr.Trim()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", p)
	if p.Advised != 1 || p.Resident < n*9/10 {
		t.Fatalf("pass %+v: want one mapping of about %d bytes advised", p, n)
	}
	if r := resident(t, dir); r > 16<<20 {
		t.Fatalf("resident after: %d bytes, want at most the limit", r)
	}
	if r := resident(t, other); r < 8<<20*9/10 {
		t.Fatalf("a file outside the directory lost its resident pages: %d bytes", r)
	}
	if s := tr.Stats(); s.Trims != 1 || s.Freed < n/2 {
		t.Fatalf("stats %+v", s)
	}
	for i := range b {
		if b[i] != 1+byte(i%7) {
			t.Fatalf("byte %d reads %d through the mapping after the trim", i, b[i])
		}
	}
	for i := range o {
		if o[i] != 2+byte(i%7) {
			t.Fatalf("byte %d outside reads %d", i, o[i])
		}
	}
	if err := unix.Msync(b, unix.MS_SYNC); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, "data.vlog"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, b) {
		t.Fatal("the file differs from what was written through its mapping")
	}
}

// TestTrimUnderTheLimitDoesNothing: nothing is advised while the files fit.
func TestTrimUnderTheLimitDoesNothing(t *testing.T) {
	dir := t.TempDir()
	mapFile(t, dir, 4<<20, 3)
	p, err := New(dir, 64<<20, nil).Trim()
	if err != nil {
		t.Fatal(err)
	}
	if p.Advised != 0 {
		t.Fatalf("pass %+v: advised under the limit", p)
	}
	if r := resident(t, dir); r < 4<<20*9/10 {
		t.Fatalf("resident %d bytes after a pass under the limit", r)
	}
}
