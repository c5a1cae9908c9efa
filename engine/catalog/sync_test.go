package catalog

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/feed"
	"github.com/shoptrail/shoptrail/engine/store"
)

func open(t *testing.T) *Catalog {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(st, filepath.Join(dir, "search-index"), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); st.Close() })
	return c
}

func TestSyncFromURL(t *testing.T) {
	sample, _ := os.ReadFile("../feed/testdata/feed-sample.csv")
	var body atomic.Value
	body.Store(sample)
	var fetches, full atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		b := body.Load().([]byte)
		etag := `"` + strings.Repeat("x", len(b)%7+1) + `"`
		switch {
		case r.URL.Path == "/slow":
			time.Sleep(2 * time.Second)
		case r.URL.Path == "/error":
			http.Error(w, "oops", http.StatusInternalServerError)
			return
		case r.URL.Path == "/redirect":
			http.Redirect(w, r, "http://127.0.0.1:1/feed.csv", http.StatusFound)
			return
		case r.Header.Get("If-None-Match") == etag:
			w.WriteHeader(http.StatusNotModified)
			return
		}
		full.Add(1)
		w.Header().Set("ETag", etag)
		w.Write(b)
	}))
	defer srv.Close()
	c := open(t)
	ctx := context.Background()
	s := c.NewSyncer(SyncOptions{URL: srv.URL + "/feed.csv?token=secret", Interval: time.Hour, Timeout: time.Second, MaxBytes: 1 << 20, AllowPrivate: true})
	if imported, err := s.Sync(ctx); err != nil || !imported {
		t.Fatalf("first sync: %v %v", imported, err)
	}
	if _, err := c.Product("1001"); err != nil {
		t.Fatal(err)
	}
	rep, _ := c.Report()
	if strings.Contains(rep.Source, "secret") {
		t.Errorf("the report shows the URL's token: %s", rep.Source)
	}
	// unchanged: 304, nothing imported
	if imported, err := s.Sync(ctx); err != nil || imported || full.Load() != 1 {
		t.Fatalf("second sync: %v %v, %d full fetches", imported, err, full.Load())
	}
	// too large: the import fails and the catalogue stays
	body.Store(append(append([]byte{}, sample...), []byte(strings.Repeat("\"9\";\"x\";\"\";\"\";\"\";\"\";\"1\";\"\";\"\";\"\";\"\";\"\";\"\"\n", 1))...))
	small := c.NewSyncer(SyncOptions{URL: srv.URL + "/feed.csv", Interval: time.Hour, Timeout: time.Second, MaxBytes: int64(len(sample)), AllowPrivate: true})
	if _, err := small.Sync(ctx); !errors.Is(err, errTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	if _, err := c.Product("1001"); err != nil {
		t.Fatalf("the catalogue changed: %v", err)
	}
	var r feed.Report
	c.st.FeedReport(&r)
	if !strings.Contains(r.Failure, "max_bytes") {
		t.Errorf("report %+v", r)
	}
	for path, want := range map[string]string{"/slow": "timeout", "/error": "500", "/redirect": "connection refused"} {
		s := c.NewSyncer(SyncOptions{URL: srv.URL + path, Interval: time.Hour, Timeout: 300 * time.Millisecond, MaxBytes: 1 << 20, AllowPrivate: true})
		_, err := s.Sync(ctx)
		if want == "timeout" && errors.Is(err, context.DeadlineExceeded) {
			continue // the client's timeout and the context's race; both end the fetch
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
	}
	if _, err := c.Product("1001"); err != nil {
		t.Fatalf("the catalogue changed: %v", err)
	}
}

func TestSyncRefusesInternalAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ID\n1\n")) }))
	defer srv.Close()
	c := open(t)
	for _, u := range []string{srv.URL + "/feed.csv", "http://[::1]:9/x", "http://169.254.169.254/latest/meta-data", "http://10.0.0.1:9/x", "file:///etc/passwd"} {
		s := c.NewSyncer(SyncOptions{URL: u, Interval: time.Hour, Timeout: time.Second, MaxBytes: 1 << 20})
		_, err := s.Sync(context.Background())
		if err == nil {
			t.Errorf("%s was fetched", u)
			continue
		}
		if !errors.Is(err, ErrBlockedAddress) && !strings.Contains(err.Error(), "http or https") {
			t.Errorf("%s: %v", u, err)
		}
	}
	if gen, _ := c.st.Catalogue(); gen != 0 {
		t.Error("something was imported")
	}
}
