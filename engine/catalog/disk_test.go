package catalog

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/store"
)

// TestImportsRefusedWhenTheDiskIsFull: with the disk guard saying no, an
// import reads nothing and a sync fetches nothing; the catalogue stays.
func TestImportsRefusedWhenTheDiskIsFull(t *testing.T) {
	c := open(t)
	if _, err := c.Import(strings.NewReader("ID;Title;Price\n1;one;1\n"), "first"); err != nil {
		t.Fatal(err)
	}
	full := &store.DiskError{Reason: "full"}
	c.RefuseImportsWhen(func() error { return full })
	var read atomic.Bool
	body := readerFunc(func(p []byte) (int, error) { read.Store(true); return 0, errors.New("read") })
	if _, err := c.Import(body, "second"); !errors.Is(err, store.ErrDiskFull) || read.Load() {
		t.Fatalf("import: %v, body read %v", err, read.Load())
	}
	var fetched atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fetched.Store(true) }))
	defer srv.Close()
	s := c.NewSyncer(SyncOptions{URL: srv.URL, Interval: time.Hour, Timeout: time.Second, MaxBytes: 1 << 20, AllowPrivate: true})
	if _, err := s.Sync(context.Background()); !errors.Is(err, store.ErrDiskFull) || fetched.Load() {
		t.Fatalf("sync: %v, fetched %v", err, fetched.Load())
	}
	if rep, _ := c.Report(); rep.Source != "first" || c.Count() != 1 {
		t.Fatalf("the catalogue changed: %+v, %d products", rep, c.Count())
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
