package store

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// A backup file is Badger's own backup stream (DB.Backup: every key with
// its version, deletions of an incremental backup included) framed so that
// a truncated or damaged copy is told apart from a good one:
//
//	SHOPTRAIL-BACKUP 1\n
//	{"created":"…","since":0,"schema":2,"shoptrail":"v1.0.0"}\n   the header, one JSON line
//	<Badger's backup stream>
//	STEND001 <version uint64> <stream length uint64> <SHA-256>      the trailer, 56 bytes
//
// The SHA-256 covers everything before it. The trailer's version is the
// Badger version of the newest entry in the file: the next incremental
// backup takes the entries since version+1.
const (
	backupMagic   = "SHOPTRAIL-BACKUP 1\n"
	trailerMagic  = "STEND001"
	trailerLen    = 8 + 8 + 8 + sha256.Size
	maxHeaderLine = 4 << 10
)

// Errors of backups.
var (
	// ErrNeedFull means an incremental backup cannot be taken since the
	// asked version: a projection was dropped and folded again since then,
	// which Badger's incremental stream would not carry over.
	ErrNeedFull = errors.New("store: a projection was rebuilt since that backup; take a full backup (without --since)")
	// ErrBadBackup is matched by every problem with a backup file.
	ErrBadBackup = errors.New("store: not a usable backup")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("store: closed")
)

// BackupError says what is wrong with a backup file.
type BackupError struct {
	Path   string
	Reason string
}

func (e *BackupError) Error() string { return "backup " + e.Path + ": " + e.Reason }
func (e *BackupError) Unwrap() error { return ErrBadBackup }

// BackupHeader is the header of a backup file.
type BackupHeader struct {
	Created   time.Time `json:"created"`
	Since     uint64    `json:"since"` // 0: a full backup; else the entries from this version on
	Schema    int       `json:"schema"`
	Shoptrail string    `json:"shoptrail"` // the version of the binary that wrote it
}

// BackupInfo describes a verified backup file.
type BackupInfo struct {
	BackupHeader
	Path    string
	Version uint64 // the newest entry's version: the next --since is Version+1
	Size    int64
	body    int64 // offset of Badger's stream
	bodyLen int64
}

// Backup writes a backup file of a consistent snapshot of the database to
// w while the store keeps serving: everything when since is 0, else the
// entries written from version since on (an incremental backup, restored
// on top of the backups before it). It returns the version to pass as the
// next since, minus one (BackupInfo.Version). version names the binary.
func (s *Store) Backup(w io.Writer, since uint64, version string) (uint64, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	if since > 0 {
		var dropped uint64
		err := s.db.View(func(txn *badger.Txn) error {
			item, err := txn.Get(keyDropped)
			if err == nil {
				dropped = item.Version()
			}
			if errors.Is(err, badger.ErrKeyNotFound) {
				err = nil
			}
			return err
		})
		if err != nil {
			return 0, err
		}
		if dropped >= since {
			return 0, ErrNeedFull
		}
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, h)}
	head, err := json.Marshal(BackupHeader{Created: time.Now().UTC(), Since: since, Schema: SchemaVersion(), Shoptrail: version})
	if err != nil {
		return 0, err
	}
	if _, err := io.WriteString(cw, backupMagic+string(head)+"\n"); err != nil {
		return 0, err
	}
	start := cw.n
	// One goroutine: each of the stream's goroutines reads in a
	// transaction of its own, and only one transaction is one snapshot.
	stream := s.db.NewStream()
	stream.NumGo = 1
	stream.LogPrefix = "backup"
	if since > 0 {
		// the iterator reads versions above SinceTs (iterator.go), while
		// Backup promises versions from since on: DB.Backup(w, v+1) as
		// documented would miss the entries written at version v+1
		stream.SinceTs = since - 1
	}
	upto, err := stream.Backup(cw, since)
	if err != nil {
		return 0, fmt.Errorf("store: backup: %w", err)
	}
	if upto == 0 && since > 0 {
		upto = since - 1 // nothing changed since
	}
	tr := make([]byte, 0, trailerLen)
	tr = append(tr, trailerMagic...)
	tr = binary.BigEndian.AppendUint64(tr, upto)
	tr = binary.BigEndian.AppendUint64(tr, uint64(cw.n-start))
	h.Write(tr)
	tr = h.Sum(tr)
	if _, err := w.Write(tr); err != nil {
		return 0, err
	}
	return upto, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// VerifyBackup reads a backup file whole and checks its frame and its
// checksum: a truncated, damaged or foreign file gives a *BackupError that
// says which.
func VerifyBackup(path string) (BackupInfo, error) {
	info := BackupInfo{Path: path}
	bad := func(format string, a ...any) (BackupInfo, error) {
		return info, &BackupError{Path: path, Reason: fmt.Sprintf(format, a...)}
	}
	f, err := os.Open(path)
	if err != nil {
		return info, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return info, err
	}
	info.Size = st.Size()
	br := bufio.NewReader(f)
	magic := make([]byte, len(backupMagic))
	if n, _ := io.ReadFull(br, magic); string(magic[:n]) != backupMagic[:n] || n < len(backupMagic) {
		if n < len(backupMagic) && string(magic[:n]) == backupMagic[:n] {
			return bad("the file is truncated: it ends after %d bytes", info.Size)
		}
		return bad("not a Shoptrail backup file (it does not start with %q)", backupMagic[:len(backupMagic)-1])
	}
	line, err := br.ReadSlice('\n')
	if err != nil || len(line) > maxHeaderLine {
		return bad("the file is truncated or damaged: its header line is incomplete")
	}
	if err := json.Unmarshal(line, &info.BackupHeader); err != nil {
		return bad("the header is damaged: %v", err)
	}
	info.body = int64(len(backupMagic) + len(line))
	if info.Size < info.body+trailerLen {
		return bad("the file is truncated: it ends after %d bytes, before its checksum (an interrupted backup or an incomplete copy)", info.Size)
	}
	tr := make([]byte, trailerLen)
	if _, err := f.ReadAt(tr, info.Size-trailerLen); err != nil {
		return info, err
	}
	if string(tr[:8]) != trailerMagic {
		return bad("the file is truncated or damaged: it does not end with a backup trailer (an interrupted backup or an incomplete copy)")
	}
	info.Version = binary.BigEndian.Uint64(tr[8:16])
	info.bodyLen = int64(binary.BigEndian.Uint64(tr[16:24]))
	if info.body+info.bodyLen+trailerLen != info.Size {
		return bad("the file is damaged: its length (%d bytes) differs from what its trailer records", info.Size)
	}
	h := sha256.New()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return info, err
	}
	if _, err := io.CopyN(h, f, info.Size-sha256.Size); err != nil {
		return info, err
	}
	if !bytes.Equal(h.Sum(nil), tr[24:]) {
		return bad("the file is damaged: its SHA-256 checksum does not match its contents")
	}
	if info.Schema > SchemaVersion() {
		return info, fmt.Errorf("%w: the backup %s has schema %d, this binary knows up to %d", ErrTooNew, path, info.Schema, SchemaVersion())
	}
	return info, nil
}

// Restore loads backup files into dir, which must be empty or absent: a
// full backup, then incremental ones in the order they were taken (each
// one's since must follow the previous one's version). Every file is
// verified before anything is written. The data is then migrated to this
// binary's schema, and catalogue generations a full backup would not hold
// are dropped. Derived files outside Badger (the product index) are the
// caller's to rebuild.
func Restore(dir string, paths []string) ([]BackupInfo, error) {
	if len(paths) == 0 {
		return nil, errors.New("store: restore: no backup file given")
	}
	infos := make([]BackupInfo, len(paths))
	for i, p := range paths {
		info, err := VerifyBackup(p)
		if err != nil {
			return nil, err
		}
		switch {
		case i == 0 && info.Since != 0:
			return nil, &BackupError{Path: p, Reason: fmt.Sprintf("an incremental backup (since version %d) cannot be restored alone: give the full backup first, then the incremental ones in order", info.Since)}
		case i > 0 && info.Since == 0:
			return nil, &BackupError{Path: p, Reason: "a full backup can only be the first file"}
		case i > 0 && info.Since != infos[i-1].Version+1:
			return nil, &BackupError{Path: p, Reason: fmt.Sprintf("it continues from version %d, but the file before it ends at version %d: a backup is missing in between or the order is wrong", info.Since, infos[i-1].Version)}
		}
		infos[i] = info
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("store: restore: %s is not empty; restore into a new, empty directory", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := restoreInto(dir, infos); err != nil {
		// no half-restored directory: empty it again (it was empty)
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
		return nil, err
	}
	return infos, nil
}

func restoreInto(dir string, infos []BackupInfo) error {
	db, err := badger.Open(badgerOptions(Options{Dir: dir}))
	if err != nil {
		return fmt.Errorf("store: restore: open %s: %w", dir, err)
	}
	for _, info := range infos {
		if err := loadBackup(db, info); err != nil {
			db.Close()
			return err
		}
	}
	if err := db.Close(); err != nil {
		return err
	}
	s, err := Open(Options{Dir: dir})
	if err != nil {
		return err
	}
	return errors.Join(s.dropStaleCatalogues(), s.Close())
}

func loadBackup(db *badger.DB, info BackupInfo) error {
	f, err := os.Open(info.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := db.Load(io.NewSectionReader(f, info.body, info.bodyLen), 16); err != nil {
		return fmt.Errorf("store: restore %s: %w", info.Path, err)
	}
	return nil
}

// dropStaleCatalogues drops product generations other than the current
// one: an incremental backup does not carry the drop of a replaced
// catalogue.
func (s *Store) dropStaleCatalogues() error {
	cur, err := s.Catalogue()
	if err != nil {
		return err
	}
	var stale [][]byte
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: nsProduct.prefix()})
		defer it.Close()
		for it.Rewind(); it.Valid(); {
			k := it.Item().Key()
			if len(k) < len(nsProduct)+8 {
				it.Next()
				continue
			}
			gen := binary.BigEndian.Uint64(k[len(nsProduct):])
			if gen != cur {
				stale = append(stale, generationPrefix(gen))
			}
			it.Seek(generationPrefix(gen + 1))
		}
		return nil
	})
	if err != nil || len(stale) == 0 {
		return err
	}
	return s.dropPrefix(stale...)
}

// Size returns the bytes of Badger's LSM tree and of its value log.
func (s *Store) Size() (lsm, vlog int64) { return s.db.Size() }

// Ping reports whether the store answers reads.
func (s *Store) Ping() error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.View(func(txn *badger.Txn) error { return nil })
}
