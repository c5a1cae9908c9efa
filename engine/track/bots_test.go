package track

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func TestIsBot(t *testing.T) {
	bots := []string{
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/131.0.6778.204 Safari/537.36",
		"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
		"Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
		"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
		"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
		"Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
		"curl/8.5.0",
		"Wget/1.21.4",
		"python-requests/2.32.3",
		"Go-http-client/1.1",
		"PostmanRuntime/7.42.0",
		"Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
		"",
		"   ",
	}
	browsers := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/485.0.0.39.109;FBBV/657178395;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.6;FBSS/3;FBCR/;FBID/phone;FBLC/de_DE;FBOP/80]",
		"Mozilla/5.0 (Linux; Android 13; CUBOT_X70 Build/TP1A.220624.014) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240805.005; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.39 Mobile Safari/537.36 Instagram 357.0.0.25.101 Android",
	}
	for _, ua := range bots {
		if !IsBot(ua) {
			t.Errorf("IsBot(%q) = false", ua)
		}
	}
	for _, ua := range browsers {
		if IsBot(ua) {
			t.Errorf("IsBot(%q) = true", ua)
		}
	}
}

func TestCleanUserAgent(t *testing.T) {
	long := strings.Repeat("é", 400) // 800 bytes
	if got := cleanUserAgent(long); len(got) > 512 || !utf8.ValidString(got) {
		t.Errorf("cleanUserAgent(800 bytes) = %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if got := cleanUserAgent("a\xffb"); got != "a\uFFFDb" {
		t.Errorf("cleanUserAgent(invalid) = %q", got)
	}
}

// TestUserAgentCache: the cached answer is IsBot's and cleanUserAgent's
// for every value, also when values collide in the cache and many
// goroutines ask at once (run with -race).
func TestUserAgentCache(t *testing.T) {
	var uas []string
	for i := range 3000 { // more values than slots: collisions replace entries
		uas = append(uas, "Mozilla/5.0 (X11; Linux x86_64) Chrome/"+strconv.Itoa(i)+".0 Safari/537.36")
		if i%7 == 0 {
			uas = append(uas, "Mozilla/5.0 (compatible; Googlebot/"+strconv.Itoa(i)+"; +http://www.google.com/bot.html)")
		}
	}
	uas = append(uas, "", " ", "a\xffb", strings.Repeat("é", 400), strings.Repeat("x", maxCachedUA+1)+"bingbot")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for round := range 3 {
				for i := range uas {
					ua := uas[(i*(g+1)+round)%len(uas)]
					clean, bot := userAgent(ua)
					if want := IsBot(ua); bot != want {
						t.Errorf("userAgent(%.60q): bot %v, IsBot says %v", ua, bot, want)
						return
					}
					if want := cleanUserAgent(ua); clean != want {
						t.Errorf("userAgent(%.60q): %.60q, cleanUserAgent says %.60q", ua, clean, want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkUserAgent(b *testing.B) {
	const ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	b.Run("uncached", func(b *testing.B) {
		for b.Loop() {
			_, _ = cleanUserAgent(ua), IsBot(ua)
		}
	})
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			userAgent(ua)
		}
	})
}
