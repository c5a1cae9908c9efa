package segment

import (
	"errors"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
)

// FuzzParse: no rule panics the parser or the evaluator; an error names a
// field; a rule that parses evaluates on any facts.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"name":"x","conditions":[{"event":"order"}]}`,
		`{"name":"x","match":"any","conditions":[{"event":"visit_from_referrer","where":[{"prop":"source","op":"in","value":["a",1,true]}],"count":{"op":"lt","value":3},"within":"30d"},{"not":{"attribute":"city","op":"exists"}}]}`,
		`{"name":"x","conditions":[{"spent":{"op":"gte","value":1.005,"currency":"kwd"},"between":["2026-01-01","2026-01-02T00:00:00Z"]},{"all":[{"orders":{"value":2}}]}]}`,
		`{"name":"x","conditions":[{"attribute":"age","op":"gt","value":"12"}]}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	ev := &model.Event{Type: model.Order, Time: now.Add(-time.Hour), URL: "https://shop.example/"}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("error without a field: %v", err)
			}
			return
		}
		facts := map[string]*fact{}
		for id, a := range r.atoms {
			if a.matches(ev) {
				facts[id] = &fact{}
				facts[id].add(ev)
			}
		}
		r.root.eval(&evalCtx{facts: facts, attr: attributes("a@x.com", &model.User{Email: "a@x.com"}), now: now.UnixMilli()})
	})
}
