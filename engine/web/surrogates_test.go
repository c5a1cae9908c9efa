package web_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// loneSurrogateEscape returns the first \u escape of a UTF-16 surrogate
// in JSON text that is not a high one followed by a low one, or "".
func loneSurrogateEscape(raw string) string {
	isHex := func(s string) bool {
		for _, c := range s {
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
		return len(s) == 4
	}
	kind := func(s string) byte { // 'h' high, 'l' low, 0 other
		if len(s) < 6 || s[0] != '\\' || s[1] != 'u' || !isHex(s[2:6]) {
			return 0
		}
		switch strings.ToLower(s[2:4]) {
		case "d8", "d9", "da", "db":
			return 'h'
		case "dc", "dd", "de", "df":
			return 'l'
		}
		return 0
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		switch kind(raw[i:]) {
		case 'h':
			if kind(raw[i+6:]) != 'l' {
				return raw[i : i+6]
			}
			i += 11
		case 'l':
			return raw[i : i+6]
		default:
			i++ // \\, \" and the like: the next byte is not an escape
		}
	}
	return ""
}

// A string cut in the middle of an emoji ends with half of it, which
// JSON.stringify sends as the escape of a lone surrogate ("\ud83d").
// encoding/json decodes it as U+FFFD, but a property's value was stored
// and listed as sent, and strict parsers refuse it (serde_json: "lone
// leading surrogate in hex escape"; PostgreSQL's jsonb): GET
// /api/v1/events could not be read by them, as with invalid UTF-8. Lone
// surrogate escapes are replaced by \ufffd (counted in "repaired") on
// every ingestion endpoint; pairs and escaped backslashes stay as sent.
func TestLoneSurrogateEscapesInPropsAreRepaired(t *testing.T) {
	a := enginetest.NewApp(t)
	props := `{"title":"Sale \ud83d","a":"\udc00x","b":["\ud800\u0041",{"c":"\ud800\ud800\udc00"}],"ok":"\ud83d\ude00","text":"\\ud800 \\\ud83d"}`
	want := map[string]string{"title": "Sale \uFFFD", "a": "\uFFFDx", "ok": "😀", "text": `\ud800 \` + "\uFFFD"}
	for _, c := range []struct{ path, body string }{
		{"/t", `{"events":[{"id":"t1","type":"page_view","url":"https://shop.example/","anonymous_id":"h","props":` + props + `}]}`},
		{"/api/v1/events", `{"events":[{"ID":"a1","type":"x","anonymous_id":"h","props":` + props + `}]}`},
		{"/v1/batch", `{"batch":[{"type":"track","messageId":"s1","anonymousId":"h","event":"E","properties":` + props + `}]}`},
	} {
		hdr := a.Auth()
		if c.path == "/v1/batch" {
			hdr = segAuth(a.Key)
		}
		var ans struct{ Accepted, Repaired int }
		if st := a.Do(t, "POST", c.path, c.body, &ans, hdr...); st != 200 || ans.Accepted != 1 || ans.Repaired != 5 {
			t.Errorf("POST %s: %d %+v, want 1 accepted with 5 repairs", c.path, st, ans)
		}
	}
	a.Fold(t)
	raw := string(getRaw(t, a, "/api/v1/events?limit=100"))
	if e := loneSurrogateEscape(raw); e != "" {
		t.Errorf("the listing holds the lone surrogate escape %s: %s", e, raw)
	}
	var l listing
	json.Unmarshal([]byte(raw), &l)
	if len(l.Events) != 3 {
		t.Fatalf("listed %d events", len(l.Events))
	}
	for _, e := range l.Events {
		for k, v := range want {
			var got string
			if json.Unmarshal(e.Props[k], &got); got != v {
				t.Errorf("%s: props.%s = %s (%q), want %q", e.ID, k, e.Props[k], got, v)
			}
		}
	}
}
