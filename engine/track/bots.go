package track

import (
	_ "embed"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/shoptrail/shoptrail/engine/model"
)

//go:embed bots.txt
var botsTxt string

// botPatterns are the lower-case patterns of bots.txt.
var botPatterns = sync.OnceValue(func() []string {
	var out []string
	for _, line := range strings.Split(botsTxt, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, strings.ToLower(line))
		}
	}
	return out
})

// IsBot reports whether a browser's User-Agent is a crawler's, a headless
// browser's or an HTTP library's (bots.txt). A browser request without a
// User-Agent is a bot too: every browser sends one.
func IsBot(userAgent string) bool {
	if strings.TrimSpace(userAgent) == "" {
		return true
	}
	ua := strings.ToLower(userAgent)
	for _, p := range botPatterns() {
		if strings.Contains(ua, p) {
			return true
		}
	}
	return false
}

// userAgent returns what is stored of a browser's User-Agent header and
// whether it is a bot's: cleanUserAgent and IsBot, remembered per header
// value. A shop's shoppers send a few hundred distinct values at most, and
// IsBot alone (a substring search for each pattern of bots.txt) took 6-7 %
// of the server's CPU on single-event requests.
func userAgent(raw string) (clean string, bot bool) {
	if len(raw) > maxCachedUA {
		return cleanUserAgent(raw), IsBot(raw)
	}
	slot := &uaCache[maphash.String(uaSeed, raw)%uint64(len(uaCache))]
	if e := slot.Load(); e != nil && e.raw == raw {
		return e.clean, e.bot
	}
	e := &uaEntry{raw: strings.Clone(raw), bot: IsBot(raw)}
	e.clean = cleanUserAgent(e.raw)
	slot.Store(e) // a colliding value takes the slot: the cache stays this size
	return e.clean, e.bot
}

// uaCache is direct-mapped: a value's slot is its hash, so a lookup is one
// hash and one compare, without a lock, and the memory is bounded (at most
// len(uaCache) values of at most maxCachedUA bytes, 1 MiB).
var (
	uaCache [1024]atomic.Pointer[uaEntry]
	uaSeed  = maphash.MakeSeed()
)

// maxCachedUA is the longest header value cached; longer ones (no browser
// sends them) are judged each time.
const maxCachedUA = 1024

type uaEntry struct {
	raw, clean string
	bot        bool
}

// cleanUserAgent makes a header value fit to store: valid UTF-8, at most
// model.MaxUserAgentLen bytes.
func cleanUserAgent(ua string) string {
	ua = strings.ToValidUTF8(ua, "\uFFFD")
	if len(ua) <= model.MaxUserAgentLen {
		return ua
	}
	cut := model.MaxUserAgentLen
	for cut > 0 && !utf8.RuneStart(ua[cut]) {
		cut--
	}
	return ua[:cut]
}
