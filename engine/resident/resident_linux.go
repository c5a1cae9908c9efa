package resident

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Supported says whether this system can bound the mapped files' resident
// size.
const Supported = true

type mapping struct {
	start, end uintptr
	rss        int64 // bytes
	rank       int   // reclaimed first: lowest
}

// rank orders a file's pages for reclaim: Badger's write-ahead logs first
// (written, read only to recover after a crash), then its value logs
// (written once, read again mostly while the projections catch up), then
// the rest: Badger's tables and Bleve's segments, whose indexes and blocks
// every lookup reads.
func rank(path string) int {
	switch filepath.Ext(path) {
	case ".mem":
		return 0
	case ".vlog":
		return 1
	}
	return 2
}

func trim(dir string, limit int64) (Pass, error) {
	ms, err := mappings(dir)
	if err != nil {
		return Pass{}, err
	}
	p := Pass{Mappings: len(ms)}
	for _, m := range ms {
		p.Resident += m.rss
	}
	p.After = p.Resident
	if p.Resident <= limit {
		return p, nil
	}
	slices.SortFunc(ms, func(a, b mapping) int { return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(b.rss, a.rss)) })
	for _, m := range ms {
		if p.After <= limit/2 {
			break
		}
		if m.rss == 0 {
			continue
		}
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_PAGEOUT)
		switch {
		case errno == unix.EINVAL && p.Advised == 0:
			return p, fmt.Errorf("madvise(MADV_PAGEOUT) is not supported by this kernel (Linux 5.4 or later has it): %w", errno)
		case errno == unix.ENOMEM || errno == unix.EINVAL:
			continue // unmapped (or remapped) since it was listed
		case errno != 0:
			return p, fmt.Errorf("madvise: %w", errno)
		}
		p.Advised++
		p.After -= m.rss
	}
	return p, nil
}

// mappings lists the process's mappings of files under dir with their
// resident bytes, from /proc/self/smaps.
func mappings(dir string) ([]mapping, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mapping
	in := false // the current mapping is one of dir's files
	prefix := dir + string(os.PathSeparator)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && !bytes.ContainsAny(k, " -") {
			// a field of the current mapping ("Rss:   1234 kB")
			if in && string(k) == "Rss" {
				kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("/proc/self/smaps: %q: %w", line, err)
				}
				out[len(out)-1].rss = kb << 10
			}
			continue
		}
		// a mapping's header: "start-end perms offset dev inode   path",
		// the path running to the end of the line (it may hold spaces)
		in = false
		rest := string(line)
		var fields [5]string
		for i := range fields {
			fields[i], rest, _ = strings.Cut(strings.TrimLeft(rest, " "), " ")
		}
		path := strings.TrimLeft(rest, " ")
		if !strings.HasPrefix(path, prefix) {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil || end <= start {
			return nil, fmt.Errorf("/proc/self/smaps: %q: not an address range", fields[0])
		}
		out = append(out, mapping{start: uintptr(start), end: uintptr(end), rank: rank(strings.TrimSuffix(path, " (deleted)"))})
		in = true
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
