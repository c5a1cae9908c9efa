package report_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/report"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares v, as indented JSON, with testdata/name; -update writes it.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from what the code gives now:\n%s\n(go test -run %s -update rewrites it)", path, got, t.Name())
	}
}

// The rollups projection folded from an event sequence without HTTP: two
// shoppers over three days, one merging into a user, orders in two
// currencies, a server-recorded event that opens no session, a crawler.
func TestRollupsGolden(t *testing.T) {
	p := enginetest.NewPipeline(t, report.Rollups())
	day := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	at := func(d int, h int) time.Time { return day.AddDate(0, 0, d).Add(time.Duration(h) * time.Hour) }
	order := func(id, cur string, value float64) map[string]json.RawMessage {
		return map[string]json.RawMessage{"order_id": json.RawMessage(fmt.Sprintf("%q", id)),
			"value": json.RawMessage(fmt.Sprint(value)), "currency": json.RawMessage(fmt.Sprintf("%q", cur))}
	}
	p.Append(t,
		&model.Event{ID: "1", Type: model.PageView, AnonymousID: "a", SessionID: "sa", Time: at(0, 0)},
		&model.Event{ID: "2", Type: model.ProductView, AnonymousID: "a", SessionID: "sa", Time: at(0, 1)},
		&model.Event{ID: "3", Type: model.PageView, AnonymousID: "b", SessionID: "sb", Time: at(0, 2)},
		&model.Event{ID: "4", Type: model.Order, AnonymousID: "a", SessionID: "sa", Email: "ann@example.com", Time: at(0, 3), Props: order("A-1", "EUR", 120.5)},
		&model.Event{ID: "5", Type: model.PageView, AnonymousID: "a", SessionID: "sa2", Time: at(1, 0)},
		&model.Event{ID: "6", Type: model.Order, AnonymousID: "b", SessionID: "sb2", Time: at(2, 0), Props: order("B-1", "USD", 19.99)},
		&model.Event{ID: "7", Type: "user_update", Email: "ann@example.com", Via: model.ViaServer, Time: at(2, 1)},
		// a crawler counts for nothing
		&model.Event{ID: "8", Type: model.PageView, AnonymousID: "bot", SessionID: "sbot", Time: at(2, 2), Bot: true, UserAgent: "Googlebot/2.1"},
		&model.Event{ID: "9", Type: model.Order, AnonymousID: "bot", SessionID: "sbot", Time: at(2, 3), Bot: true, Props: order("X-1", "EUR", 5)},
	)
	d, err := report.Summarise(p.Store, at(2, 5))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "dashboard.golden.json", struct {
		Periods []report.Totals
		Days    []report.Day
	}{d.Periods, d.Days[27:]})
}
