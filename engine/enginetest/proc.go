package enginetest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcStatus reads the fields of /proc/<pid>/status counted in kB (VmRSS,
// VmHWM, RssAnon, RssFile...), in bytes; pid 0 is this process. It is empty
// where the file cannot be read (not Linux).
func ProcStatus(pid int) map[string]int64 {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, _ := os.ReadFile(path)
	out := map[string]int64{}
	for l := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(l, ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			out[k] = n << 10
		}
	}
	return out
}

// Memory is this process's peak resident set (VmHWM: with the pages of
// Badger's memory-mapped files, which the kernel can drop at will) and its
// anonymous resident memory now (RssAnon: heap and stacks), in MiB.
func Memory() (peak, anon float64) {
	s := ProcStatus(0)
	return float64(s["VmHWM"]) / (1 << 20), float64(s["RssAnon"]) / (1 << 20)
}
