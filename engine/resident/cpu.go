package resident

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"time"
)

// CPU tells background work whether the machine's processors are all busy,
// from the idle time /proc/stat counts (Linux; the whole machine, not a
// container's quota). Work that can wait (a segment's build, the preview
// index) then takes a small share, so that acknowledging events keeps the
// processors; with half a processor or more idle it goes at full speed.
//
// The zero value is ready; it is safe for concurrent use.
type CPU struct {
	// Stat is the file read (tests; default /proc/stat).
	Stat string

	mu          sync.Mutex
	at          time.Time
	idle, total uint64
	saturated   bool
}

// cpuSample is how long a reading stands: /proc/stat is read at most this
// often, and the idle share is over about this long.
const cpuSample = 250 * time.Millisecond

// Saturated reports whether less than half a processor was idle over the
// last quarter of a second or so. Where the idle time cannot be read, it
// says true: background work yields whenever events arrive.
func (c *CPU) Saturated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if now.Sub(c.at) < cpuSample {
		return c.saturated
	}
	path := c.Stat
	if path == "" {
		path = "/proc/stat"
	}
	idle, total, cpus, ok := readStat(path)
	if !ok {
		c.saturated, c.at = true, now
		return true
	}
	if total > c.total && !c.at.IsZero() {
		// less than half of one processor's share idle
		c.saturated = float64(idle-c.idle)/float64(total-c.total) < 0.5/float64(cpus)
	}
	c.at, c.idle, c.total = now, idle, total
	return c.saturated
}

// readStat reads the machine's idle and total time (in ticks) from the
// "cpu" line of /proc/stat, and counts the processors by their lines.
func readStat(path string) (idle, total uint64, cpus int, ok bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, 0, false
	}
	for line := range bytes.Lines(raw) {
		f := bytes.Fields(line)
		if len(f) == 0 || !bytes.HasPrefix(f[0], []byte("cpu")) {
			continue
		}
		if len(f[0]) > 3 {
			cpus++
			continue
		}
		// cpu user nice system idle iowait irq softirq steal guest guest_nice:
		// guest time is counted in user already
		for i, v := range f[1:min(len(f), 9)] {
			n, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				return 0, 0, 0, false
			}
			total += n
			if i == 3 || i == 4 { // idle, iowait
				idle += n
			}
		}
		ok = true
	}
	return idle, total, max(cpus, 1), ok && total > 0
}
