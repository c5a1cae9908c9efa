package fastjson

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzRepairSurrogates: the repaired text is valid JSON exactly when the
// text was, decodes to the same values, and counts what it changed.
func FuzzRepairSurrogates(f *testing.F) {
	for _, s := range []string{`"\ud83d"`, `{"a":"\udc00x","b":["\ud800\u0041",{"c":"\ud800\ud800\udc00"}]}`, `"\ud83d\ude00"`,
		`"\\ud800 \\\ud83d"`, `"\ud800\`, `"\ud8`, `"\uD800\uDBFF\uDFFF"`, `["\u0041\\u",1]`, `"\ud800\u"`, `\`, `"\\\\\udfff"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := 0
		out := RepairSurrogates([]byte(s), &n)
		if n == 0 && string(out) != s || n > 0 && len(out) != len(s) {
			t.Fatalf("%q -> %q with %d repairs", s, out, n)
		}
		if json.Valid([]byte(s)) != json.Valid(out) {
			t.Fatalf("%q -> %q: valid %v -> %v", s, out, json.Valid([]byte(s)), json.Valid(out))
		}
		var a, b any
		errA, errB := json.Unmarshal([]byte(s), &a), json.Unmarshal(out, &b)
		if (errA == nil) != (errB == nil) || !reflect.DeepEqual(a, b) {
			t.Fatalf("%q -> %q: %#v %v, %#v %v", s, out, a, errA, b, errB)
		}
		m := 0
		if again := RepairSurrogates(out, &m); m != 0 || string(again) != string(out) {
			t.Fatalf("%q -> %q -> %q: %d more repairs", s, out, again, m)
		}
	})
}
