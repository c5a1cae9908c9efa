package model

import (
	"encoding/json"
	"testing"
	"time"
)

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 123456789, time.UTC)
	for _, e := range []Event{
		{ID: "a", Type: "page_view", Time: at, ReceivedAt: at, Via: ViaBrowser},
		{Seq: 42, ID: "id\"\\<>&", Type: "Order Completed", OriginalType: "x\u2028y\u2029", Time: at, ReceivedAt: at.Add(time.Second),
			TimeClamped: true, Via: ViaAPI, AnonymousID: "a\x00\x1f\t\n\r", SessionID: "s", Email: "j@x.de", URL: "https://s.example/?a=1&b=<2>",
			Referrer: "https://r.example/é", DerivedFrom: "p", UserAgent: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", Bot: true,
			Props:   map[string]json.RawMessage{"b": json.RawMessage(`[1,{"x":"y"}]`), "a": json.RawMessage(`"\u00e9"`), "ü": json.RawMessage(`null`)},
			Traffic: &Traffic{Source: "google", Medium: "organic", Campaign: "c", Term: "t", Content: "ct", ClickID: "gclid", ReferrerHost: "www.google.de", Channel: "Organic Search"}},
		{ID: "bad utf8 \xff\xfe", Type: "x", Time: at, ReceivedAt: at, Traffic: &Traffic{Source: "(direct)", Medium: "(none)", Channel: "Direct"}},
	} {
		want, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.AppendJSON(nil); string(got) != string(want) {
			t.Errorf("AppendJSON\n got %s\nwant %s", got, want)
		}
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("id", "type", "https://s.example/", "<a>&\u2028")
	f.Fuzz(func(t *testing.T, id, typ, url, s string) {
		e := Event{ID: id, Type: typ, URL: url, Referrer: s, Email: s, UserAgent: s, Bot: len(s)%2 == 1, Time: time.Unix(0, 0).UTC(), ReceivedAt: time.Unix(1, 0).UTC()}
		want, _ := json.Marshal(&e)
		if got := e.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("AppendJSON\n got %s\nwant %s", got, want)
		}
	})
}
