package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/app"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
)

// postShoppers sends shopperBatch(from..to-1) and returns the ids of the
// events stored.
func postShoppers(t *testing.T, a *enginetest.App, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if st := a.Do(t, "POST", "/api/v1/events", shopperBatch(i), nil, a.Auth()...); st != 200 {
			t.Fatalf("ingest: %d", st)
		}
	}
}

// timelines returns the event ids of every shopper's timeline through the
// API (which fails if an index points to a dropped event).
func timelines(t *testing.T, a *enginetest.App) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for i := range 40 {
		email := fmt.Sprintf("shopper%d@example.com", i)
		var page struct{ Events []model.Event }
		if st := a.Do(t, "GET", "/api/v1/user/"+email+"/events?limit=1000", nil, &page, a.Auth()...); st != 200 && st != 404 {
			t.Fatalf("timeline of %s: %d", email, st)
		}
		for _, ev := range page.Events {
			out[email] = append(out[email], ev.ID)
		}
	}
	return out
}

func TestRetentionDropsOnlyOldEvents(t *testing.T) {
	a := enginetest.NewApp(t)
	postShoppers(t, a, 0, 40)
	time.Sleep(10 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(10 * time.Millisecond)
	postShoppers(t, a, 40, 80)
	a.Fold(t)
	var before, after map[string]any
	a.Do(t, "GET", "/api/v1/user/shopper3@example.com", nil, &before, a.Auth()...)
	day := time.Now().UTC().Format(time.DateOnly)
	var repBefore, repAfter any
	a.Do(t, "GET", "/api/v1/reports/attribution?from="+day+"&to="+day, nil, &repBefore, a.Auth()...)

	n, err := a.Sweep(context.Background(), cutoff)
	if err != nil {
		t.Fatal(err)
	}
	evs := allEvents(t, a.Store)
	for _, ev := range evs {
		if ev.ReceivedAt.Before(cutoff) {
			t.Fatalf("an old event is left: %+v", ev)
		}
	}
	if n == 0 || len(evs) == 0 {
		t.Fatalf("dropped %d, kept %d", n, len(evs))
	}
	// timelines list the kept events only, and do not fail on dropped ones
	for email, ids := range timelines(t, a) {
		for _, id := range ids {
			if batchOf(id) < 40 {
				t.Errorf("%s's timeline still lists %s", email, id)
			}
		}
	}
	// profiles, rollups and attribution stay
	a.Do(t, "GET", "/api/v1/user/shopper3@example.com", nil, &after, a.Auth()...)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("profile changed:\n%v\n%v", before, after)
	}
	a.Do(t, "GET", "/api/v1/reports/attribution?from="+day+"&to="+day, nil, &repAfter, a.Auth()...)
	if b1, _ := json.Marshal(repBefore); string(b1) != func() string { b2, _ := json.Marshal(repAfter); return string(b2) }() {
		t.Errorf("attribution report changed")
	}
	// a retried old event is still recognised: its dedup key stays
	var res struct{ Accepted, Duplicates int }
	a.Do(t, "POST", "/api/v1/events", shopperBatch(1), &res, a.Auth()...)
	if res.Accepted != 0 || res.Duplicates != 3 {
		t.Errorf("a retried dropped event: %+v", res)
	}
	// the horizon is told
	_, body := getBody(t, a.AdminURL+"/healthz")
	if !json.Valid([]byte(body)) || !strings.Contains(body, `"retention_horizon":`) {
		t.Errorf("/healthz: %s", body)
	}
	// a second sweep finds nothing
	if n, err := a.Sweep(context.Background(), cutoff); n != 0 || err != nil {
		t.Errorf("second sweep: %d %v", n, err)
	}
}

// batchOf is the i of the shopperBatch an event id comes from.
func batchOf(id string) int {
	n, _ := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
	return n
}

// TestRetentionWaitsForProjections: a projection that has not folded an
// event (failed, or backfilling) keeps it in the log.
func TestRetentionWaitsForProjections(t *testing.T) {
	broken := &project.Projection{Name: "broken", Version: 1, Fold: func(r *project.Run) error { return errors.New("down") }}
	a := enginetest.Start(t, enginetest.Config(t), app.WithProjection(broken))
	postShoppers(t, a, 0, 5)
	a.Fold(t)
	if n, err := a.Sweep(context.Background(), time.Now()); n != 0 || err != nil {
		t.Fatalf("swept %d (%v) while a projection had not folded the events", n, err)
	}
}

var sweepChild = flag.String("sweep-child", "", "internal: sweep the data dir given, printing a line per chunk (TestRetentionSurvivesKill9)")
var sweepCutoff = flag.String("sweep-cutoff", "", "internal: the cutoff of -sweep-child (RFC 3339)")

// TestSweepChild is the process TestRetentionSurvivesKill9 kills.
func TestSweepChild(t *testing.T) {
	if *sweepChild == "" {
		t.Skip("run by TestRetentionSurvivesKill9")
	}
	cutoff, _ := time.Parse(time.RFC3339Nano, *sweepCutoff)
	cfg := enginetest.Config(t)
	cfg.Storage.Dir = *sweepChild
	a := enginetest.Start(t, cfg)
	a.Fold(t)
	for {
		n, err := a.Pipeline.Sweep(context.Background(), cutoff, 40)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("chunk", n)
		if n == 0 {
			return
		}
	}
}

// TestRetentionSurvivesKill9 kills a sweeping process with SIGKILL half-way:
// every event that should stay is there, every old one is whole or gone,
// the indexes work, and the next sweep finishes the job.
func TestRetentionSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	cfg := enginetest.Config(t)
	a := enginetest.Start(t, cfg)
	postShoppers(t, a, 0, 300)
	time.Sleep(10 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(10 * time.Millisecond)
	postShoppers(t, a, 300, 340)
	a.Fold(t)
	var keep []*model.Event
	for _, ev := range allEvents(t, a.Store) {
		if !ev.ReceivedAt.Before(cutoff) {
			keep = append(keep, ev)
		}
	}
	a.Stop()

	cmd := exec.Command(os.Args[0], "-test.run=^TestSweepChild$", "-sweep-child="+cfg.Storage.Dir, "-sweep-cutoff="+cutoff.Format(time.RFC3339Nano))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	chunks := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if len(sc.Text()) > 6 && sc.Text()[:6] == "chunk " {
			if chunks++; chunks == 5 {
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
	}
	cmd.Wait()
	if chunks < 5 {
		t.Fatalf("the child swept %d chunks before it ended", chunks)
	}

	b := enginetest.Start(t, cfg)
	b.Fold(t)
	after := allEvents(t, b.Store)
	old := 0
	for _, ev := range after {
		if ev.ReceivedAt.Before(cutoff) {
			old++
		}
	}
	if old == 0 {
		t.Fatal("the child finished the sweep before the kill; the test proves nothing")
	}
	kept := after[old:]
	if len(kept) != len(keep) {
		t.Fatalf("%d of %d new events left after kill -9", len(kept), len(keep))
	}
	for i := range keep {
		if kept[i].ID != keep[i].ID || kept[i].Seq != keep[i].Seq {
			t.Fatalf("event %d: %s/%d, want %s/%d", i, kept[i].ID, kept[i].Seq, keep[i].ID, keep[i].Seq)
		}
	}
	timelines(t, b) // no index points to a dropped event
	if _, err := b.Sweep(context.Background(), cutoff); err != nil {
		t.Fatal(err)
	}
	if left := allEvents(t, b.Store); len(left) != len(keep) {
		t.Fatalf("%d events after the second sweep, want %d", len(left), len(keep))
	}
	for email, ids := range timelines(t, b) {
		for _, id := range ids {
			if batchOf(id) < 300 {
				t.Errorf("%s's timeline lists %s", email, id)
			}
		}
	}
	t.Logf("killed after %d chunks with %d old events left; %d kept", chunks, old, len(keep))
}
