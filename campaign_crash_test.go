package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/smtpfallback/smtptest"
)

// api calls the binary's API with key and decodes the answer into out.
func api(t *testing.T, url, key, method, path string, body, out any) int {
	t.Helper()
	var r *bytes.Reader
	switch b := body.(type) {
	case nil:
		r = bytes.NewReader(nil)
	case string:
		r = bytes.NewReader([]byte(b))
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, url+path, r)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

type crashCampaign struct {
	Status   string
	Progress struct{ Recipients, Queued int64 }
}

// TestKill9HalfWayThroughACampaign sends a campaign to a segment of 2 000
// subscribers through a real SMTP server, kills the binary with SIGKILL
// while the campaign is being queued, restarts it, kills it again while
// the queue is being sent, restarts it, and checks that nobody received the
// campaign twice and everybody but the few "uncertain" ones (handed over
// at a kill) received it.
func TestKill9HalfWayThroughACampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, cfgPath, _ := build(t)
	srv, err := smtptest.Start(smtptest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Delay(2 * time.Millisecond)
	const n, workers = 2000, 4
	f, _ := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "[demo]\nenabled = false\n[email]\nfrom = \"Shop <hello@shop.example>\"\nworkers = %d\nmax_per_day = 0\n[email.smtp]\nhost = \"127.0.0.1\"\nport = %d\ntls = \"none\"\n", workers, srv.Port)
	f.Close()
	out, err := exec.Command(bin, "-config", cfgPath, "apikey", "create", "--name", "crash").CombinedOutput()
	if err != nil {
		t.Fatalf("apikey create: %v\n%s", err, out)
	}
	key := regexp.MustCompile(`st_[a-z0-9]+`).FindString(string(out))

	cmd, url := start(t, bin, cfgPath)
	var users strings.Builder
	for i := range n {
		fmt.Fprintf(&users, `{"email":"r%04d@example.com","firstName":"R%d","city":"Oslo","isSubscribed":true}`+"\n", i, i)
	}
	if st := api(t, url, key, "POST", "/api/v1/users/import", users.String(), nil); st != 200 {
		t.Fatalf("import users: %d", st)
	}
	var seg struct{ ID string }
	if st := api(t, url, key, "POST", "/api/v1/segments", `{"name":"Oslo","conditions":[{"attribute":"city","op":"eq","value":"Oslo"}]}`, &seg); st != 201 {
		t.Fatalf("segment: %d", st)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var v struct {
			Building bool
			Count    int
		}
		api(t, url, key, "GET", "/api/v1/segments/"+seg.ID, nil, &v)
		if !v.Building && v.Count == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment: %+v", v)
		}
	}
	var c struct{ ID string }
	if st := api(t, url, key, "POST", "/api/v1/email-campaigns", map[string]any{"name": "Crash", "subject": "News", "segment": seg.ID, "send": true,
		"html": `<p>Hello {{.FirstName}}</p>`}, &c); st != 201 {
		t.Fatalf("campaign: %d", st)
	}
	// first kill: as soon as the campaign has queued something
	for deadline := time.Now().Add(30 * time.Second); ; {
		var cc crashCampaign
		api(t, url, key, "GET", "/api/v1/email-campaigns/"+c.ID, nil, &cc)
		if cc.Progress.Queued > 0 || cc.Status == "sent" {
			t.Logf("first kill: campaign %s, %d of %d recipients queued, %d received", cc.Status, cc.Progress.Queued, cc.Progress.Recipients, len(srv.Messages()))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the campaign did not start: %+v", cc)
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	// second kill: half-way through sending
	cmd, url = start(t, bin, cfgPath)
	for deadline := time.Now().Add(60 * time.Second); len(srv.Messages()) < n/2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages sent", len(srv.Messages()))
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	t.Logf("second kill: %d received", len(srv.Messages()))

	cmd, url = start(t, bin, cfgPath)
	last, stable := -1, time.Now()
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got := len(srv.Messages())
		if got != last {
			last, stable = got, time.Now()
		}
		if got >= n-2*workers && time.Since(stable) > time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages after the restarts", got)
		}
	}
	var cc crashCampaign
	api(t, url, key, "GET", "/api/v1/email-campaigns/"+c.ID, nil, &cc)
	if cc.Status != "sent" || cc.Progress.Recipients != n || cc.Progress.Queued != n {
		t.Errorf("campaign %+v, want sent with %d recipients, all queued", cc, n)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	received := map[string]int{}
	for _, m := range srv.Messages() {
		received[m.To[0]]++
	}
	for to, k := range received {
		if k > 1 {
			t.Errorf("%s received the campaign %d times", to, k)
		}
	}
	if len(received) < n-2*workers {
		t.Errorf("%d of %d recipients received it", len(received), n)
	}
	t.Logf("%d of %d recipients received the campaign once, none twice", len(received), n)
}
