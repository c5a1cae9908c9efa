// Package resident bounds how much of the data directory's memory-mapped
// files stays in the process's resident set.
//
// Badger maps its tables and value log into memory, and Bleve its index
// segments. Every page they read or write stays mapped, and so counts in the
// process's RSS, until the kernel needs the memory back: on a machine with
// room to spare the RSS of a long-running instance grows with its data (1.47
// GB after 2.4 M events and a 200 000-product catalogue). That memory is page
// cache the kernel may reclaim, but RSS is what an operator sees and what a
// container's limit is set from.
//
// A Trimmer looks at an interval (serve: twice a second) at how much of
// those files is resident and, over its limit, asks the kernel to reclaim
// their pages (madvise(MADV_PAGEOUT), Linux 5.4 and later): clean pages
// leave memory, dirty ones stay in the page cache until written back, and
// none stays counted in the process. A page read again afterwards is a
// page fault, mostly served from the disk. MADV_PAGEOUT never discards
// data (a page is written back, swapped out or left alone), so a mapping
// that changed between reading the list and advising (a table unmapped
// after a compaction, its addresses reused) is still safe: MADV_DONTNEED,
// which would keep the pages in the page cache, would zero an anonymous
// mapping that took those addresses.
package resident

import (
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Trimmer keeps the resident pages of the files under a directory under a
// limit.
type Trimmer struct {
	dir   string
	limit int64
	log   *slog.Logger

	stop chan struct{}
	done chan struct{} // closed when Start's loop has ended; nil before Start
	once sync.Once

	trims    atomic.Int64
	resident atomic.Int64 // at the last look
	freed    atomic.Int64 // bytes, in total

	// window is how often Start compares what it reclaimed with the limit
	// (thrashing), warnEvery the least time between two warnings (tests)
	window, warnEvery time.Duration
}

// A Trimmer thrashes when, over a minute, it reclaims more than its limit
// every second: the files read are much bigger than the bound, so their
// pages go and come back from the disk over and over. Start then warns, at
// most once an hour.
const (
	thrashWindow = time.Minute
	thrashWarn   = time.Hour
)

// Pass is what one look found and did.
type Pass struct {
	Resident int64 // bytes of the directory's files resident before
	Mappings int   // mappings of its files
	Advised  int   // mappings asked to be reclaimed
	After    int64 // bytes resident after (Resident when nothing was done)
}

// New returns a Trimmer for the files under dir, limit bytes resident
// (limit ≤ 0: none; Start does nothing).
func New(dir string, limit int64, log *slog.Logger) *Trimmer {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Trimmer{dir: dir, limit: limit, log: log, stop: make(chan struct{}), window: thrashWindow, warnEvery: thrashWarn}
}

// Start looks every interval until Stop; a quarter of it after a look that
// had to reclaim (while data is written fast, pages come back fast).
func (t *Trimmer) Start(every time.Duration) {
	t.done = make(chan struct{})
	if t.limit <= 0 || !Supported {
		close(t.done)
		return
	}
	go func() {
		defer close(t.done)
		tm := time.NewTimer(every)
		defer tm.Stop()
		since, freed := time.Now(), t.freed.Load()
		var warned time.Time
		for {
			select {
			case <-t.stop:
				return
			case <-tm.C:
				p, err := t.Trim()
				if err != nil {
					t.log.Warn("cannot bound the resident size of the data files; stopped trying", "err", err)
					return
				}
				if d := time.Since(since); d >= t.window {
					perSec := float64(t.freed.Load()-freed) / d.Seconds()
					if perSec > float64(t.limit) && (warned.IsZero() || time.Since(warned) >= t.warnEvery) {
						warned = time.Now()
						t.log.Warn("the data files read are much bigger than [storage] mapped_limit: their pages are reclaimed and read from the disk again and again, which slows folds and reads; raise mapped_limit, or set 0, if the machine has the memory",
							"mapped_limit", t.limit, "reclaimed_bytes_per_s", int64(perSec))
					}
					since, freed = time.Now(), t.freed.Load()
				}
				next := every
				if p.Advised > 0 {
					next = every / 4
				}
				tm.Reset(next)
			}
		}
	}()
}

// Stop ends Start's loop and waits for it.
func (t *Trimmer) Stop() {
	t.once.Do(func() { close(t.stop) })
	if t.done != nil {
		<-t.done
	}
}

// Trim looks once and, if the directory's files hold more than the limit
// resident, asks the kernel to reclaim them: the mappings with the most
// resident first (Badger's logs before its tables: see rank), until what is
// left is at most half the limit (so that it does not run again at once).
func (t *Trimmer) Trim() (Pass, error) {
	p, err := trim(t.dir, t.limit)
	if err != nil {
		return p, err
	}
	t.resident.Store(p.After)
	if p.Advised > 0 {
		t.trims.Add(1)
		t.freed.Add(p.Resident - p.After)
		t.log.Debug("reclaimed mapped data files", "resident_before", p.Resident, "resident_after", p.After, "mappings", p.Advised)
	}
	return p, nil
}

// Stats are the Trimmer's figures since New.
type Stats struct {
	Limit    int64 // bytes
	Resident int64 // bytes of the data files resident at the last look
	Trims    int64 // looks that reclaimed
	Freed    int64 // bytes taken out of the resident set, in total
}

// Stats returns the Trimmer's figures.
func (t *Trimmer) Stats() Stats {
	return Stats{Limit: t.limit, Resident: t.resident.Load(), Trims: t.trims.Load(), Freed: t.freed.Load()}
}
