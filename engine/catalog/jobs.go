package catalog

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoptrail/shoptrail/engine/feed"
)

// ErrClosed means the catalogue is closing: a running import stopped and
// changed nothing.
var ErrClosed = errors.New("catalog: closing; the import stopped and changed nothing")

// Job is an import running in the background, as GET /api/v1/feed/jobs/{id}
// shows it.
type Job struct {
	ID       string       `json:"id"`
	State    string       `json:"state"` // running, done, failed
	Source   string       `json:"source"`
	Force    bool         `json:"force"`
	Started  time.Time    `json:"started"`
	Finished *time.Time   `json:"finished,omitempty"`
	Progress Progress     `json:"progress"`
	Report   *feed.Report `json:"report,omitempty"`  // when it has ended
	Error    string       `json:"error,omitempty"`   // why it failed
	Refused  bool         `json:"refused,omitempty"` // failed as suspicious (no rows, removes more than half): force=true imports it
}

// Progress is how far a job is.
type Progress struct {
	Phase      string `json:"phase"` // reading, linking (shop exports), checking, comparing, committing, indexing, recording, done
	Bytes      int64  `json:"bytes"` // of the feed read so far
	TotalBytes int64  `json:"total_bytes,omitempty"`
	Rows       int64  `json:"rows"` // products read so far
	Indexed    int64  `json:"indexed"`
	ToIndex    int64  `json:"to_index"`
}

// jobState is a job's live state. Its methods are no-ops on nil, so the
// import code calls them whether or not it runs as a job.
type jobState struct {
	mu  sync.Mutex
	job Job

	bytes, rows, nIndexed, toIdx atomic.Int64
}

func (j *jobState) phase(p string) {
	if j == nil {
		return
	}
	j.mu.Lock()
	j.job.Progress.Phase = p
	j.mu.Unlock()
}

func (j *jobState) row() {
	if j != nil {
		j.rows.Add(1)
	}
}

func (j *jobState) toIndex(n int) {
	if j != nil {
		j.toIdx.Store(int64(n))
	}
}

func (j *jobState) indexed() {
	if j != nil {
		j.nIndexed.Add(1)
	}
}

func (j *jobState) snapshot() Job {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := j.job
	out.Progress.Bytes, out.Progress.Rows = j.bytes.Load(), j.rows.Load()
	out.Progress.Indexed, out.Progress.ToIndex = j.nIndexed.Load(), j.toIdx.Load()
	return out
}

func (j *jobState) finish(rep feed.Report, err error, now time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.job.Finished = &now
	j.job.Report = &rep
	j.job.Progress.Phase = "done"
	if err != nil {
		j.job.State, j.job.Error = "failed", rep.Failure
		if j.job.Error == "" {
			j.job.Error = err.Error()
		}
		j.job.Refused = errors.Is(err, ErrRefused)
		return
	}
	j.job.State = "done"
}

// jobs keeps the last keepJobs jobs in memory: a job's outcome outlives it
// in the stored feed report (GET /api/v1/feed/report), also across restarts.
type jobs struct {
	mu    sync.Mutex
	byID  map[string]*jobState
	order []string
}

const keepJobs = 20

func (js *jobs) add(j *jobState) {
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.byID == nil {
		js.byID = map[string]*jobState{}
	}
	js.byID[j.job.ID] = j
	js.order = append(js.order, j.job.ID)
	if len(js.order) > keepJobs {
		delete(js.byID, js.order[0])
		js.order = js.order[1:]
	}
}

// Job returns a job by id.
func (c *Catalog) Job(id string) (Job, bool) {
	c.jobs.mu.Lock()
	j, ok := c.jobs.byID[id]
	c.jobs.mu.Unlock()
	if !ok {
		return Job{}, false
	}
	return j.snapshot(), true
}

// Jobs returns the recent jobs, newest first.
func (c *Catalog) Jobs() []Job {
	c.jobs.mu.Lock()
	var states []*jobState
	for i := len(c.jobs.order) - 1; i >= 0; i-- {
		states = append(states, c.jobs.byID[c.jobs.order[i]])
	}
	c.jobs.mu.Unlock()
	out := make([]Job, 0, len(states))
	for _, j := range states {
		out = append(out, j.snapshot())
	}
	return out
}

// Busy reports whether an import is running.
func (c *Catalog) Busy() bool {
	if c.importing.TryLock() {
		c.importing.Unlock()
		return false
	}
	return true
}

// StartImport runs an import of r (size bytes, 0 if unknown) in the
// background and returns its job at once. done is called when the import
// has ended (to remove a spooled file). Like Import it fails at once with
// ErrBusy or the disk guard's error.
func (c *Catalog) StartImport(r io.Reader, size int64, source string, o ImportOptions, done func()) (Job, error) {
	if err := c.canWrite(); err != nil {
		return Job{}, err
	}
	if !c.importing.TryLock() {
		return Job{}, ErrBusy
	}
	id := make([]byte, 8)
	rand.Read(id)
	now := c.now().UTC()
	j := &jobState{job: Job{ID: hex.EncodeToString(id), State: "running", Source: source, Force: o.Force, Started: now,
		Progress: Progress{Phase: "reading", TotalBytes: size}}}
	c.jobs.add(j)
	o.job = j
	started := j.snapshot() // before the job can end: the answer says "running"
	c.jobsDone.Add(1)
	go func() {
		defer c.jobsDone.Done()
		rep, err := func() (feed.Report, error) {
			// unlocked before the job says it ended: whoever saw it end
			// may start the next import at once
			defer c.importing.Unlock()
			if done != nil {
				defer done()
			}
			return c.importLocked(&counting{r: r, n: &j.bytes}, feedReport(source, now), o)
		}()
		if err != nil && !errors.Is(err, ErrRefused) && !errors.Is(err, ErrClosed) {
			c.log.Error("feed import", "job", j.job.ID, "source", rep.Source, "err", rep.Failure)
		}
		j.finish(rep, err, c.now().UTC())
	}()
	return started, nil
}

// counting counts the bytes read through it.
type counting struct {
	r io.Reader
	n *atomic.Int64
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// cancellable makes reads fail with ErrClosed once the catalogue closes.
func (c *Catalog) cancellable(r io.Reader) io.Reader {
	return readFunc(func(p []byte) (int, error) {
		if err := c.stopped(); err != nil {
			return 0, err
		}
		return r.Read(p)
	})
}

// stopped returns ErrClosed once Close was called.
func (c *Catalog) stopped() error {
	select {
	case <-c.closing:
		return ErrClosed
	default:
		return nil
	}
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }
