package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// frame wraps body in a backup file's header and a correct trailer.
func frame(body []byte) []byte {
	var b bytes.Buffer
	b.WriteString(backupMagic + `{"created":"2026-01-01T00:00:00Z","since":0,"schema":1,"shoptrail":"test"}` + "\n")
	b.Write(body)
	b.WriteString(trailerMagic)
	b.Write(binary.BigEndian.AppendUint64(nil, 7))
	b.Write(binary.BigEndian.AppendUint64(nil, uint64(len(body))))
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}

// TestRestoreLeavesNothingHalfWritten: a file whose frame is sound but
// whose stream Badger cannot load leaves the directory empty.
func TestRestoreLeavesNothingHalfWritten(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "b")
	garbage := binary.LittleEndian.AppendUint64(nil, 40) // a list of 40 bytes...
	garbage = append(garbage, bytes.Repeat([]byte{0xff}, 40)...)
	os.WriteFile(p, frame(garbage), 0o600)
	if _, err := VerifyBackup(p); err != nil {
		t.Fatalf("the frame is sound: %v", err)
	}
	into := filepath.Join(dir, "into")
	if _, err := Restore(into, []string{p}); err == nil {
		t.Fatal("restored a damaged stream")
	}
	if entries, _ := os.ReadDir(into); len(entries) > 0 {
		t.Errorf("%d files left after a failed restore", len(entries))
	}
}

// TestIncrementalBackupCarriesDeletions: a key deleted after the full
// backup is deleted by restoring the incremental one too, and a key written
// at exactly the version after the full backup is not missed.
func TestIncrementalBackupCarriesDeletions(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: filepath.Join(dir, "live")})
	if err != nil {
		t.Fatal(err)
	}
	set := func(k, v string) {
		if err := s.update(func(txn *badger.Txn) error { return txn.Set([]byte(k), []byte(v)) }); err != nil {
			t.Fatal(err)
		}
	}
	set("user/a", "1")
	set("user/b", "2")
	var full bytes.Buffer
	v1, err := s.Backup(&full, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	set("user/c", "3") // the very next version
	s.update(func(txn *badger.Txn) error { return txn.Delete([]byte("user/a")) })
	var inc bytes.Buffer
	if _, err := s.Backup(&inc, v1+1, "test"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	fp, ip := filepath.Join(dir, "full"), filepath.Join(dir, "inc")
	os.WriteFile(fp, full.Bytes(), 0o600)
	os.WriteFile(ip, inc.Bytes(), 0o600)
	into := filepath.Join(dir, "restored")
	if _, err := Restore(into, []string{fp, ip}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(Options{Dir: into})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := map[string]string{}
	r.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("user/"), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, _ := it.Item().ValueCopy(nil)
			got[string(it.Item().Key())] = string(v)
		}
		return nil
	})
	if len(got) != 2 || got["user/b"] != "2" || got["user/c"] != "3" {
		t.Errorf("restored %v, want user/b and user/c", got)
	}
	// an incremental backup after a dropped projection is refused
	if err := r.DropProjection("x", ProjectionSpace("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Backup(&bytes.Buffer{}, 1, "test"); err == nil || !strings.Contains(err.Error(), "full backup") {
		t.Errorf("incremental after a drop: %v", err)
	}
}
