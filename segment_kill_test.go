package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/apikey"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/segment"
	"github.com/shoptrail/shoptrail/engine/store"
)

// TestKill9HalfWayThroughASegmentBuild kills the binary while a segment is
// built over existing shoppers, restarts it, and checks that the build
// went on from where it was and ends with exactly the right members.
func TestKill9HalfWayThroughASegmentBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, cfgPath, data := build(t)
	const shoppers = 30_000
	st, err := store.Open(store.Options{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	var evs []*model.Event
	want := 0
	for i := range shoppers {
		anon := fmt.Sprintf("s%05d", i)
		add := func(typ string, props map[string]json.RawMessage, tr *model.Traffic) {
			evs = append(evs, &model.Event{ID: fmt.Sprint(anon, typ), Type: typ, Via: model.ViaAPI, AnonymousID: anon, SessionID: anon,
				Time: day, ReceivedAt: day, URL: "https://shop.example/", Props: props, Traffic: tr})
		}
		add(model.PageView, nil, nil)
		if i%3 == 0 {
			add(model.VisitFromReferrer, map[string]json.RawMessage{"source": json.RawMessage(`"facebook"`)}, &model.Traffic{Source: "facebook", Medium: "social"})
		}
		if i%5 == 0 {
			add(model.Order, map[string]json.RawMessage{"order_id": json.RawMessage(fmt.Sprintf(`"o%d"`, i)), "value": json.RawMessage("10"), "currency": json.RawMessage(`"EUR"`)}, nil)
		}
		if i%3 == 0 && i%5 != 0 {
			want++
		}
		if len(evs) >= 2000 || i == shoppers-1 {
			if _, err := st.Append(evs, nil); err != nil {
				t.Fatal(err)
			}
			evs = nil
		}
	}
	secret, key, _ := apikey.New("test", model.AllScopes(), time.Now())
	if err := st.PutAPIKey(key); err != nil {
		t.Fatal(err)
	}
	st.Close()

	cmd, public, admin := startBoth(t, bin, cfgPath)
	get := func(path string, out any) {
		t.Helper()
		req, _ := http.NewRequest("GET", public+path, nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	// fold everything first, then define the segment: it is built over
	// 30 000 existing shoppers
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if ps := projections(t, admin); ps["segments"].State == "live" && ps["segments"].Behind == 0 && ps["identity"].Behind == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the projections did not catch up")
		}
	}
	body := `{"name":"Facebook, never ordered","conditions":[{"event":"visit_from_referrer","where":[{"prop":"source","value":"facebook"}]},{"not":{"orders":{"op":"gte","value":1}}}]}`
	req, _ := http.NewRequest("POST", public+"/api/v1/segments", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var v segment.View
	json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if v.ID == "" {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	var seen int64
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Millisecond) {
		get("/api/v1/segments/"+v.ID, &v)
		if v.Progress != nil && v.Progress.Profiles >= shoppers/10 {
			seen = v.Progress.Profiles
			break
		}
		if !v.Building || time.Now().After(deadline) {
			t.Fatalf("the build ended before it could be killed: %+v", v.Progress)
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	t.Logf("killed after %d of %d shoppers", seen, shoppers)

	_, public, _ = startBoth(t, bin, cfgPath)
	get("/api/v1/segments/"+v.ID, &v)
	if v.Progress == nil || v.Progress.Profiles < seen || !v.Building {
		t.Fatalf("after the restart the build should go on from %d: %+v", seen, v.Progress)
	}
	for deadline := time.Now().Add(2 * time.Minute); v.Building; time.Sleep(20 * time.Millisecond) {
		get("/api/v1/segments/"+v.ID, &v)
		if time.Now().After(deadline) {
			t.Fatalf("still building: %+v", v.Progress)
		}
	}
	members := map[string]bool{}
	after := ""
	for {
		var page struct {
			Members []segment.Member
			Next    string
		}
		get("/api/v1/segments/"+v.ID+"/members?limit=1000&after="+after, &page)
		for _, m := range page.Members {
			if members[m.AnonymousID] {
				t.Fatalf("%s listed twice", m.AnonymousID)
			}
			members[m.AnonymousID] = true
			var i int
			fmt.Sscanf(m.AnonymousID, "s%d", &i)
			if i%3 != 0 || i%5 == 0 {
				t.Fatalf("%s is no member", m.AnonymousID)
			}
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if len(members) != want || v.Count != int64(want) {
		t.Fatalf("%d members listed, count %d, want %d", len(members), v.Count, want)
	}
	t.Logf("built: %d members, %d shoppers visited, %d events read", want, v.Progress.Profiles, v.Progress.Events)
}
