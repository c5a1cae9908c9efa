package track

import (
	_ "embed"
	"strings"
	"sync"
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
