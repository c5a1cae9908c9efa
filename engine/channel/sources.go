package channel

import (
	_ "embed"
	"strings"
	"sync"
)

//go:embed sources.txt
var sourcesTxt string

type source struct {
	category, name string
	patterns       []string
}

var loadSources = sync.OnceValue(func() []source {
	var out []source
	for line := range strings.Lines(sourcesTxt) {
		f := strings.Fields(line)
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		out = append(out, source{f[0], f[1], f[2:]})
	}
	return out
})

// lookup returns the known source name and category of a referrer host.
func lookup(host string) (name, category string) {
	labels := strings.Split(host, ".")
	for _, s := range loadSources() {
		for _, p := range s.patterns {
			if strings.Contains(p, ".") {
				if host == p || strings.HasSuffix(host, "."+p) {
					return s.name, s.category
				}
				continue
			}
			for _, l := range labels[:max(len(labels)-1, 0)] {
				if l == p {
					return s.name, s.category
				}
			}
		}
	}
	return "", ""
}

// categoryOfSource returns the category of a source as written in UTM tags
// ("google", "facebook", "m.facebook.com").
func categoryOfSource(src string) string {
	if src == "" {
		return ""
	}
	for _, s := range loadSources() {
		if s.name == src {
			return s.category
		}
		for _, p := range s.patterns {
			if p == src {
				return s.category
			}
		}
	}
	if strings.Contains(src, ".") {
		_, cat := lookup(src)
		return cat
	}
	return ""
}
