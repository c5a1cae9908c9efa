package catalog

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

func waitJob(t *testing.T, c *Catalog, id string) Job {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		j, ok := c.Job(id)
		if !ok {
			t.Fatalf("job %s is gone", id)
		}
		if j.State != "running" {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s did not end: %+v", id, j)
		}
	}
}

// TestSuspiciousFeedsAreRefused: a header-only feed and one removing more
// than half of the catalogue change nothing without Force.
func TestSuspiciousFeedsAreRefused(t *testing.T) {
	c := open(t)
	feed := func(ids ...string) string {
		var b strings.Builder
		b.WriteString("ID;Title;Price\n")
		for _, id := range ids {
			b.WriteString(id + ";t;1\n")
		}
		return b.String()
	}
	if _, err := c.Import(strings.NewReader(feed("1", "2", "3", "4")), "four"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, feed string
		refused    bool
	}{
		{"header only", feed(), true},
		{"3 of 4 removed", feed("1"), true},
		{"2 of 4 removed: half is allowed", feed("1", "2"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := c.Count()
			rep, err := c.Import(strings.NewReader(tt.feed), tt.name)
			if errors.Is(err, ErrRefused) != tt.refused {
				t.Fatalf("%v (report %+v)", err, rep)
			}
			if tt.refused && (c.Count() != before || rep.Failure == "" || !strings.Contains(rep.Failure, "force=true")) {
				t.Fatalf("refused but changed: %d → %d, %+v", before, c.Count(), rep)
			}
		})
	}
	// with Force the header-only feed empties the catalogue
	if _, err := c.ImportWith(strings.NewReader(feed()), "forced", ImportOptions{Force: true}); err != nil || c.Count() != 0 {
		t.Fatalf("forced: %v, %d left", err, c.Count())
	}
}

// slowReader gives its data in small pieces, waiting before each.
type slowReader struct {
	r     io.Reader
	pause time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(s.pause)
	return s.r.Read(p[:min(len(p), 4096)])
}

// TestImportJobs: a job runs in the background with progress readable
// while it runs (with -race), one at a time, and ends with its report.
func TestImportJobs(t *testing.T) {
	c := open(t)
	data := generated(2000)
	closed := make(chan struct{})
	j, err := c.StartImport(&slowReader{bytes.NewReader(data), time.Millisecond}, int64(len(data)), "api", ImportOptions{}, func() { close(closed) })
	if err != nil || j.State != "running" || j.Progress.TotalBytes != int64(len(data)) {
		t.Fatalf("start: %+v %v", j, err)
	}
	if _, err := c.StartImport(strings.NewReader("ID\n1\n"), 5, "second", ImportOptions{}, nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("a second job while one runs: %v", err)
	}
	if !c.Busy() {
		t.Fatal("not busy while a job runs")
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				c.Job(j.ID)
				c.Jobs()
				time.Sleep(time.Millisecond)
			}
		})
	}
	done := waitJob(t, c, j.ID)
	wg.Wait()
	<-closed
	if done.State != "done" || done.Report.Imported != 2000 || done.Progress.Rows != 2000 || done.Progress.Bytes != int64(len(data)) ||
		done.Progress.Indexed != done.Progress.ToIndex || done.Progress.ToIndex != 500 || c.Count() != 2000 {
		t.Fatalf("ended: %+v", done)
	}
	if jobs := c.Jobs(); len(jobs) != 1 || jobs[0].ID != j.ID {
		t.Fatalf("jobs: %+v", jobs)
	}
}

// TestCloseStopsARunningImport: Close ends a running job, which changes
// nothing, and then closes the index.
func TestCloseStopsARunningImport(t *testing.T) {
	c := open(t)
	data := generated(5000)
	j, err := c.StartImport(&slowReader{bytes.NewReader(data), 2 * time.Millisecond}, int64(len(data)), "api", ImportOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Job(j.ID); got.State != "failed" || !strings.Contains(got.Error, "closing") {
		t.Fatalf("after Close: %+v", got)
	}
}
