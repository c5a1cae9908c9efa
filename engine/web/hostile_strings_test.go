package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// hostileStrings are JSON string literals with every escape, NUL, lone
// and paired surrogates, \/ and line separators.
var hostileStrings = []string{
	`"\"\\\/\b\f\n\r\t"`, `"\u0000x\u001f"`, `"\ud83d\ude00"`, `"\ud800"`, `"\udc00"`, `"\ud800\u0041"`,
	`"\udc00\ud800"`, `"\uDBFF\uDFFF"`, `"\uFFFD\uFFFE\uFFFF"`, `"\u2028\u2029<>&"`, `"é\u00e9e\u0301"`,
	`"\/\/x"`, `"a\ud800\ud800\udc00b"`, `"\ud83d"`, `"x\ud83d\u"`, `"\U0041"`,
}

// getRaw GETs path with the API key and returns the body, which must be
// valid JSON.
func getRaw(t *testing.T, a *enginetest.App, path string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", a.PublicURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+a.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !json.Valid(raw) {
		t.Fatalf("GET %s: %d, valid JSON %v: %.300q", path, resp.StatusCode, json.Valid(raw), raw)
	}
	return raw
}

// What a hostile string becomes when stored and listed through every
// ingestion endpoint is what encoding/json makes of it, read back from the
// listing, the user's timeline and export as valid JSON.
func TestHostileStringsAreStoredAsEncodingJSONReadsThem(t *testing.T) {
	a := enginetest.NewApp(t)
	type sent struct {
		id, lit string
		keyed   bool // the literal is also a property name
	}
	var all []sent
	post := func(path, body string, hdr ...string) {
		t.Helper()
		var ans map[string]any
		st := a.Do(t, "POST", path, body, &ans, hdr...)
		if testing.Verbose() {
			t.Logf("%s %.120s: %d %v", path, body, st, ans)
		}
		if st >= 500 {
			t.Fatalf("POST %s %s: %d %v", path, body, st, ans)
		}
	}
	for i, lit := range hostileStrings {
		if !json.Valid([]byte(lit)) {
			// invalid escapes: a 400, never a 5xx
			post("/t", `{"events":[{"id":"bad`+fmt.Sprint(i)+`","type":"x","anonymous_id":"h","props":{"v":`+lit+`}}]}`)
			continue
		}
		for _, ep := range []struct {
			pfx, path, body string
			hdr             []string
		}{
			{"t", "/t", `{"events":[{"id":"t%d","type":"page_view","url":"https://shop.example/p/1","anonymous_id":"h","email":"h@example.com","props":{"v":%s,%s:1,"n":null}}]}`, nil},
			{"a", "/api/v1/events", `{"events":[{"ID":"a%d","Type":"page_view","anonymous_id":"h","email":"h@example.com","props":{"v":%s,%s:1},"props":{"n":null}}]}`, a.Auth()},
			{"s", "/v1/track", `{"messageId":"s%d","userId":"h","event":"Thing","properties":{"v":%s,%s:1},"context":{"traits":{"email":"h@example.com"}}}`, segAuth(a.Key)},
		} {
			id := ep.pfx + fmt.Sprint(i)
			post(ep.path, fmt.Sprintf(ep.body, i, lit, lit), ep.hdr...)
			all = append(all, sent{id: id, lit: lit, keyed: true})
		}
	}
	a.Fold(t)
	for _, path := range []string{"/api/v1/events?limit=1000", "/api/v1/user/h@example.com/events?limit=1000", "/api/v1/user/h@example.com/export"} {
		raw := getRaw(t, a, path)
		byID := map[string]map[string]json.RawMessage{}
		// the listing's events wherever they are in the answer
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				if id, ok := v["id"].(string); ok {
					if p, ok := v["props"]; ok {
						b, _ := json.Marshal(p)
						var m map[string]json.RawMessage
						json.Unmarshal(b, &m)
						byID[id] = m
					}
				}
				for _, x := range v {
					walk(x)
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			}
		}
		var top any
		json.Unmarshal(raw, &top)
		walk(top)
		for _, s := range all {
			props, ok := byID[s.id]
			if !ok {
				t.Errorf("GET %s: %s (%s) not listed", path, s.id, s.lit)
				continue
			}
			var want, got any
			json.Unmarshal([]byte(s.lit), &want)
			json.Unmarshal(props["v"], &got)
			if !reflect.DeepEqual(want, got) {
				t.Errorf("GET %s: %s props.v = %s (%q), want %q", path, s.id, props["v"], got, want)
			}
			var key string
			json.Unmarshal([]byte(s.lit), &key)
			if _, ok := props[key]; !ok {
				var keys []string
				for k := range props {
					keys = append(keys, fmt.Sprintf("%q", k))
				}
				t.Errorf("GET %s: %s has no property %q: %s", path, s.id, key, strings.Join(keys, " "))
			}
		}
	}
}

// Hostile shapes on every ingestion endpoint: deep nesting, numbers where
// strings and times belong, null everywhere, repeated keys, keys in other
// letter case, text after the body. Never a 5xx, always a JSON answer; the
// log stays readable.
func TestHostileShapesOnEveryEndpoint(t *testing.T) {
	a := enginetest.NewApp(t)
	deep := strings.Repeat(`[`, 20000) + strings.Repeat(`]`, 20000)
	mid := strings.Repeat(`{"a":`, 50) + `1` + strings.Repeat(`}`, 50)
	events := []string{
		`{"id":"n1","type":"x","anonymous_id":"h","props":{"d":` + deep + `}}`,
		`{"id":"n2","type":"x","anonymous_id":"h","props":{"d":` + mid + `}}`,
		`{"id":12345,"type":"x","anonymous_id":"h"}`,
		`{"id":"n4","type":"x","anonymous_id":"h","time":1e400}`,
		`{"id":"n5","type":"x","anonymous_id":"h","time":-1}`,
		`{"id":"n6","type":"order","anonymous_id":"h","props":{"order_id":"o6","value":1e400,"currency":"EUR"}}`,
		`{"id":"n7","type":"order","anonymous_id":"h","props":{"order_id":"o7","value":-5,"currency":"EUR"}}`,
		`{"id":"n8","type":"order","anonymous_id":"h","props":{"order_id":"o8","value":0.0000001,"currency":"EUR","quantity":1.5}}`,
		`{"id":"n9","type":"order","anonymous_id":"h","props":{"order_id":"o9","value":99999999999999999999999,"currency":"EUR"}}`,
		`{"id":null,"type":null,"anonymous_id":null,"session_id":null,"email":null,"url":null,"referrer":null,"time":null,"props":null}`,
		`{"id":"n11","ID":"n11b","type":"x","Type":"y","anonymous_id":"h","ANONYMOUS_ID":"h2","props":{"a":1,"A":2,"a":3}}`,
		`{"id":"n12","type":"x","anonymous_id":"h","props":{"a":null,"b":[null],"c":{"d":null}}}`,
		`{"id":"n13","type":"x","anonymous_id":"h","ſession_id":"kelvin","props":{}}`,
		`null`, `[]`, `"x"`, `1`,
	}
	bodies := []string{`{"events":[` + strings.Join(events, ",") + `]}`, `{"events":[]}`, `{"events":null}`, `{}`, `null`, `[]`,
		`{"events":[{"id":"x1","type":"x","anonymous_id":"h"}]} {"events":[]}`, `{"events":[{"id":"x2","type":"x","anonymous_id":"h"}],"events":[{"id":"x3","type":"x","anonymous_id":"h"}]}`,
		`{"EVENTS":[{"id":"x4","type":"x","anonymous_id":"h"}],"Sent_At":"2026-11-20T10:00:00Z"}`, `{"sent_at":5,"events":[]}`, deep}
	for _, e := range events {
		bodies = append(bodies, `{"events":[`+e+`]}`)
	}
	var segs []string
	for _, b := range []string{`{"batch":[` + strings.Join([]string{
		`{"type":"track","messageId":"g1","userId":"u","event":"E","properties":{"d":` + deep + `}}`,
		`{"type":"track","messageId":"g2","userId":12,"event":"E"}`,
		`{"type":"track","messageId":"g3","anonymousId":"x","event":"E","timestamp":12}`,
		`{"type":"track","messageId":"g4","anonymousId":"x","event":null,"properties":null,"context":null}`,
		`{"type":"track","messageId":"g5","anonymousId":"x","event":"E","Context":{"Page":{"URL":"javascript:alert(1)"}},"context":{"page":null}}`,
		`{"type":"page","messageId":"g6","anonymousId":"x","context":{"page":{"url":1},"campaign":[]}}`,
		`null`, `7`}, ",") + `]}`, `{"batch":[]}`, `{"batch":null,"context":{"page":{"url":"https://shop.example/"}}}`,
		`{"batch":[{"type":"track","messageId":"g7","anonymousId":"x","event":"E"}],"batch":[{"type":"track","messageId":"g8","anonymousId":"x","event":"E"}]}`} {
		segs = append(segs, b)
	}
	check := func(path, body string, hdr ...string) {
		t.Helper()
		req, _ := http.NewRequest("POST", a.PublicURL+path, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		req.Header.Set("User-Agent", enginetest.BrowserUA)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if testing.Verbose() {
			t.Logf("POST %s %.100s: %d %.300s", path, body, resp.StatusCode, raw)
		}
		if resp.StatusCode >= 500 || !json.Valid(raw) {
			t.Errorf("POST %s %.200s: %d %.300s", path, body, resp.StatusCode, raw)
		}
	}
	for _, b := range bodies {
		check("/t", b)
		check("/api/v1/events", b, a.Auth()...)
	}
	for _, b := range segs {
		check("/v1/batch", b, segAuth(a.Key)...)
	}
	a.Fold(t)
	raw := getRaw(t, a, "/api/v1/events?limit=1000")
	if testing.Verbose() {
		t.Logf("%s", raw)
	}
}
