package segment_test

import (
	"slices"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
)

const facebook30 = `{"name":"Facebook visitors, last 30 days","conditions":[
 {"event":"visit_from_referrer","where":[{"prop":"source","op":"eq","value":"facebook"}],"count":{"op":"gte","value":1},"within":"720h"}]}`

func vfr(anon, source string) *model.Event {
	return &model.Event{Type: model.VisitFromReferrer, AnonymousID: anon, SessionID: "s-" + anon,
		Props: props("source", source, "medium", "social"), Traffic: &model.Traffic{Source: source, Medium: "social", Channel: "Organic Social"}}
}

func TestMembershipFollowsEventsAndWindowCloses(t *testing.T) {
	e := newEnv(t)
	id := e.create(facebook30)
	e.add(vfr("a1", "facebook"), vfr("a2", "google"))
	if got := e.members(id); !slices.Equal(got, []string{"a:a1"}) {
		t.Fatalf("members %v, want a:a1", got)
	}
	if e.count(id) != 1 {
		t.Fatalf("count %d", e.count(id))
	}
	// exactly 30 days after the visit: still a member
	e.advance(720 * time.Hour)
	if got := e.members(id); !slices.Equal(got, []string{"a:a1"}) {
		t.Fatalf("30 days after: members %v, want a:a1", got)
	}
	// a millisecond later the window has closed, with no new event
	e.advance(time.Millisecond)
	e.membersAre(id)
	if e.count(id) != 0 {
		t.Fatalf("count %d", e.count(id))
	}
}
