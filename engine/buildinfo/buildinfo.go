// Package buildinfo says which build of Shoptrail is running. make build
// and make dist stamp Version with -ldflags; a plain go build reports the
// commit Go recorded, or "dev".
package buildinfo

import "runtime/debug"

// Version is set at link time:
//
//	go build -ldflags "-X github.com/shoptrail/shoptrail/engine/buildinfo.Version=v1.2.3"
var Version = ""

// String returns the version: the stamped one, else the VCS revision Go
// embedded (with "-dirty" for a modified tree), else "dev".
func String() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return "dev-" + rev + dirty
}
