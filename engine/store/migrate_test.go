package store

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoptrail/shoptrail/engine/apikey"
	"github.com/shoptrail/shoptrail/engine/model"
)

// V1Key is the API key stored in testdata/v1-datadir.tar.gz.
const v1Key = "st_a2vfdt5m5oqucp25bzks4vlk6tz36thr"

// unpackV1 unpacks a data dir written by the release with schema 1 (the
// one-byte key prefixes): three browser events with a visit from Google, an
// API order of ann@example.com merging that browser, the user
// bob@example.com created through the Users API, the demo catalogue and one
// API key (v1Key).
func unpackV1(t *testing.T) string {
	t.Helper()
	f, err := os.Open("testdata/v1-datadir.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Clean(h.Name)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestMigratesADataDirOfTheFirstRelease(t *testing.T) {
	dir := unpackV1(t)
	s := open(t, dir)
	check := func(when string) {
		t.Helper()
		evs, err := s.EventsAfter(0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, ev := range evs {
			ids = append(ids, ev.ID)
		}
		// pv-1 and the visit_from_referrer it made, two product views, the
		// order, and bob's subscribe event
		if len(evs) != 6 || ids[0] != "pv-1" {
			t.Fatalf("%s: events %v", when, ids)
		}
		if last, _ := s.LastSeq(); last != 6 {
			t.Errorf("%s: last seq %d", when, last)
		}
		u, err := s.User("bob@example.com")
		if err != nil || u.City != "Paris" || u.Custom["tier"] != "gold" {
			t.Errorf("%s: bob = %+v, %v", when, u, err)
		}
		k, err := s.APIKeyByHash(apikey.Hash(v1Key))
		if err != nil || k.Name != "fixture" {
			t.Errorf("%s: api key %+v, %v", when, k, err)
		}
		if p, err := s.Product("1001"); err != nil || p.Title == "" {
			t.Errorf("%s: product 1001 = %+v, %v", when, p, err)
		}
		// the dedup keys moved to the namespace of where each event came from
		if ev, err := s.Event(model.ViaBrowser, "pv-2"); err != nil || ev.Type != model.ProductView {
			t.Errorf("%s: browser event pv-2: %+v, %v", when, ev, err)
		}
		if ev, err := s.Event(model.ViaAPI, "ord-1"); err != nil || ev.Type != model.Order {
			t.Errorf("%s: api event ord-1: %+v, %v", when, ev, err)
		}
		dup, err := s.Append([]*model.Event{{ID: "ord-1", Type: model.Order, Via: model.ViaAPI}}, nil)
		if err != nil || !dup[0] {
			t.Errorf("%s: a retried API order is not a duplicate: %v %v", when, dup, err)
		}
		// what the projections derived is gone: they fold the log again
		if st, err := s.ProjectionState("identity"); err != nil || st.Checkpoint != 0 {
			t.Errorf("%s: identity state %+v, %v", when, st, err)
		}
	}
	check("after migrating")
	if v, _ := s.schemaVersion(); v != SchemaVersion() {
		t.Fatalf("schema %d, want %d", v, SchemaVersion())
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	check("after reopening")
}

func TestBrowserEventsNeverDeduplicateTheShopsEvents(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	// a hostile page posts the id of the shop's next order to /t first
	forged := &model.Event{ID: "ord-A-18", Type: model.PageView, Via: model.ViaBrowser}
	if dup, err := s.Append([]*model.Event{forged}, nil); err != nil || dup[0] {
		t.Fatal(dup, err)
	}
	order := &model.Event{ID: "ord-A-18", Type: model.Order, Via: model.ViaAPI}
	dup, err := s.Append([]*model.Event{order}, nil)
	if err != nil || dup[0] {
		t.Fatalf("the API order was taken for a duplicate of the browser's event: %v %v", dup, err)
	}
	if ev, err := s.Event(model.ViaAPI, "ord-A-18"); err != nil || ev.Type != model.Order {
		t.Fatalf("api event: %+v %v", ev, err)
	}
	// each namespace still deduplicates its own retries
	dup, err = s.Append([]*model.Event{{ID: "ord-A-18", Type: model.Order, Via: model.ViaAPI}, {ID: "ord-A-18", Type: model.PageView, Via: model.ViaBrowser}}, nil)
	if err != nil || !dup[0] || !dup[1] {
		t.Fatalf("retries: %v %v", dup, err)
	}
}
