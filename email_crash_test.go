package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/mail"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
	"github.com/shoptrail/shoptrail/engine/user"
	"github.com/shoptrail/shoptrail/smtpfallback/smtptest"
)

// openMailer opens the data directory's store and mail queue in this
// process (the binary must be stopped).
func openMailer(t *testing.T, data string) (*mail.Mailer, func()) {
	t.Helper()
	st, err := store.Open(store.Options{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	tr := track.New(st, track.Options{MaxPendingEvents: 100000, MaxBatchEvents: 2000})
	c := config.Default().Email
	c.From = "Shop <hello@shop.example>"
	m, err := mail.New(mail.Options{Store: st, Recorder: tr, Subscriptions: mail.Users{Store: st, Users: user.New(st, tr, nil, time.Now)},
		Config: c, KeyFile: filepath.Join(data, "email.key"), PublicURL: "https://track.shop.example"})
	if err != nil {
		t.Fatal(err)
	}
	return m, func() { tr.Close(); st.Close() }
}

// TestKill9HalfWayThroughSendingAQueue queues 2 000 messages, runs the
// binary with 4 workers against a real SMTP server, kills it with SIGKILL
// mid-send, restarts it, and checks that nobody received a message twice,
// nothing queued was lost, and at most one message per worker is
// "uncertain" (handed over when the crash came, not sent again).
func TestKill9HalfWayThroughSendingAQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, cfgPath, data := build(t)
	srv, err := smtptest.Start(smtptest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Delay(2 * time.Millisecond) // a server that takes its time: the kill lands mid-send
	const n, workers = 2000, 4
	f, _ := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "[email]\nfrom = \"Shop <hello@shop.example>\"\nworkers = %d\n[email.smtp]\nhost = \"127.0.0.1\"\nport = %d\ntls = \"none\"\n", workers, srv.Port)
	f.Close()

	m, closeM := openMailer(t, data)
	var msgs []mail.Message
	for i := range n {
		msgs = append(msgs, mail.Message{To: fmt.Sprintf("r%04d@example.com", i), Subject: "Order news", Text: "Hello", Transactional: true, Campaign: "crash"})
	}
	if _, _, err := m.SendBatch(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	closeM()

	cmd, _ := start(t, bin, cfgPath)
	for deadline := time.Now().Add(30 * time.Second); len(srv.Messages()) < n/4; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages sent", len(srv.Messages()))
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	atKill := len(srv.Messages())
	t.Logf("%d of %d messages received when the binary was killed", atKill, n)
	if atKill >= n {
		t.Fatal("everything was sent before the kill")
	}

	// restart; it sends the rest
	cmd, _ = start(t, bin, cfgPath)
	last, stable := -1, time.Now()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got := len(srv.Messages())
		if got != last {
			last, stable = got, time.Now()
		}
		if got >= n-workers && time.Since(stable) > time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages after the restart", got)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}

	received := map[string]int{}
	for _, msg := range srv.Messages() {
		received[msg.To[0]]++
	}
	m, closeM = openMailer(t, data)
	defer closeM()
	recs, err := m.List("", "", n+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n {
		t.Fatalf("%d messages in the queue, want %d", len(recs), n)
	}
	uncertain := 0
	for _, r := range recs {
		got := received[r.To]
		switch r.State {
		case mail.Sent:
			if got != 1 {
				t.Errorf("%s is sent but was received %d times", r.To, got)
			}
		case mail.Uncertain:
			uncertain++
			if got > 1 {
				t.Errorf("uncertain %s received %d times", r.To, got)
			}
		default:
			t.Errorf("%s is %s (%s)", r.To, r.State, r.LastError)
		}
	}
	for to, k := range received {
		if k > 1 {
			t.Errorf("%s received %d messages", to, k)
		}
	}
	if uncertain > workers {
		t.Errorf("%d uncertain messages, more than the %d workers", uncertain, workers)
	}
	counts, _ := m.Counts()
	if counts[mail.Sent]+counts[mail.Uncertain] != n || counts[mail.Queued] != 0 || counts[mail.Sending] != 0 {
		t.Errorf("counts %v", counts)
	}
	t.Logf("after the restart: %d received, %d sent, %d uncertain, no duplicates", len(received), counts[mail.Sent], uncertain)
}
