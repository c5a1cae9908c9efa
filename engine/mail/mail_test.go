package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/mail/sestest"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
	"github.com/shoptrail/shoptrail/engine/user"
	"github.com/shoptrail/shoptrail/smtpfallback/smtptest"
)

// env is a Mailer on a real Badger store and a real tracker, with the SES
// fake and a real SMTP server when asked for.
type env struct {
	t     testing.TB
	st    *store.Store
	tr    *track.Tracker
	users *user.Service
	m     *Mailer
	ses   *sestest.Server
	smtp  *smtptest.Server
	stop  func()
}

type envOpts struct {
	ses, smtp bool
	edit      func(*config.Email)
	dir       string
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	e := &env{t: t}
	dir := o.dir
	if dir == "" {
		dir = t.TempDir()
	}
	var err error
	if e.st, err = store.Open(store.Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	e.tr = track.New(e.st, track.Options{MaxPendingEvents: 100000, MaxBatchEvents: 2000})
	e.users = user.New(e.st, e.tr, nil, time.Now)
	c := config.Default().Email
	c.From = "Northpeak <hello@shop.example>"
	c.PublicURL = "https://track.shop.example"
	c.SNS.TopicARNs = []string{"arn:aws:sns:eu-west-1:123456789012:ses-events"}
	if o.ses {
		e.ses = sestest.New("AKIDTEST", "secret", "eu-west-1")
		t.Cleanup(e.ses.Close)
		c.SES = config.EmailSES{Region: "eu-west-1", AccessKeyID: "AKIDTEST", SecretAccessKey: "secret", ConfigurationSet: "shoptrail", Endpoint: e.ses.URL}
	}
	var tlsPool *smtptest.Server
	if o.smtp {
		if e.smtp, err = smtptest.Start(smtptest.Options{TLS: true, Username: "shop", Password: "pw"}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.smtp.Close() })
		c.SMTP = config.EmailSMTP{Host: e.smtp.Host, Port: e.smtp.Port, Username: "shop", Password: "pw", TLS: "starttls"}
		tlsPool = e.smtp
	}
	if o.edit != nil {
		o.edit(&c)
	}
	e.m, err = New(Options{Store: e.st, Recorder: e.tr, Subscriptions: Users{Store: e.st, Users: e.users}, Config: c,
		KeyFile: filepath.Join(dir, "email.key"), ShopHosts: func() []string { return []string{"shop.example"} }})
	if err != nil {
		t.Fatal(err)
	}
	if tlsPool != nil {
		// trust the test server's certificate
		e.m.settings.mu.Lock()
		e.m.settings.cur.SMTP.tlsConfig = tlsPool.RootCAs
		e.m.settings.mu.Unlock()
		e.m.q.configure(e.m.settings.Get())
	}
	t.Cleanup(e.close)
	return e
}

func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.m.Run(ctx); close(done) }()
	e.stop = func() { cancel(); <-done }
}

func (e *env) close() {
	if e.stop != nil {
		e.stop()
		e.stop = nil
	}
	if e.tr != nil {
		e.tr.Close()
		e.st.Close()
		e.tr = nil
	}
}

func (e *env) subscribe(emails ...string) {
	e.t.Helper()
	for _, a := range emails {
		if _, _, _, err := e.users.Save(context.Background(), a, model.UserPatch{"isSubscribed": json.RawMessage("true")}, user.Upsert); err != nil {
			e.t.Fatal(err)
		}
	}
}

// wait waits until the message is in one of the states.
func (e *env) wait(id string, states ...string) Record {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := e.m.Get(id)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, s := range states {
			if r.State == s {
				return r
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("message %s is %s (%s), not %v", id, r.State, r.LastError, states)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// events returns the log's events of a type.
func (e *env) events(typ string) []*model.Event {
	e.t.Helper()
	var out []*model.Event
	last, _ := e.st.LastSeq()
	if last == 0 {
		return nil
	}
	e.st.ScanLog(last, 1, func(ev *model.Event) (bool, error) {
		if ev.Type == typ {
			out = append(out, ev)
		}
		return true, nil
	})
	return out
}

func prop(ev *model.Event, k string) string {
	var s string
	json.Unmarshal(ev.Props[k], &s)
	return s
}

// parts decodes a MIME message's headers and its text and HTML parts.
func parts(t testing.TB, raw []byte) (*mail.Message, string, string) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	var text, html string
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p) // quoted-printable is decoded by NextPart
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
			html = string(b)
		} else {
			text = string(b)
		}
	}
	return msg, text, html
}

func TestSESSendsWhatTheSDKBuilds(t *testing.T) {
	e := newEnv(t, envOpts{ses: true})
	e.subscribe("jane@example.com")
	e.run()
	rec, created, err := e.m.Send(context.Background(), Message{To: "Jane@Example.com", Subject: "Winter sale — 20 %",
		HTML: `<p>Hi <a href="https://shop.example/sale?x=1&amp;y=2">sale</a> <a href="mailto:help@shop.example">help</a></p>`,
		Text: "Hi, see https://shop.example/sale", Campaign: "winter-2026"})
	if err != nil || !created || rec.State != Queued || rec.To != "jane@example.com" {
		t.Fatalf("%+v %v %v", rec, created, err)
	}
	r := e.wait(rec.ID, Sent)
	if r.Provider != ProviderSES || r.ProviderID == "" || r.Attempts != 1 {
		t.Errorf("%+v", r)
	}
	if p := e.ses.Problems(); len(p) > 0 {
		t.Fatalf("the SDK's requests: %v", p)
	}
	sent := e.ses.Sent()
	if len(sent) != 1 {
		t.Fatalf("%d sent", len(sent))
	}
	s := sent[0]
	if s.From != "Northpeak <hello@shop.example>" || s.To[0] != "jane@example.com" || s.ConfigurationSet != "shoptrail" ||
		s.Tags[tagMessage] != rec.ID || s.Tags[tagCampaign] != "winter-2026" || s.Tags[tagProfile] != "u_jane_example_com" || s.MessageID != r.ProviderID {
		t.Errorf("%+v", s)
	}
	// the exact request: the JSON fields of SendEmail, raw MIME in base64
	var body map[string]any
	if err := json.Unmarshal(s.Body, &body); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if got := strings.Join(keys, ","); got != "ConfigurationSetName,Content,Destination,EmailTags,FromEmailAddress" {
		t.Errorf("SendEmail fields %s", got)
	}
	if d := body["Destination"].(map[string]any); len(d) != 1 || d["ToAddresses"].([]any)[0] != "jane@example.com" {
		t.Errorf("Destination %v", d)
	}
	if c := body["Content"].(map[string]any); len(c) != 1 || c["Raw"] == nil {
		t.Errorf("Content %v", c)
	}
	if s.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(s.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDTEST/") {
		t.Errorf("headers %v", s.Header)
	}
	msg, text, html := parts(t, s.Raw)
	if lu := msg.Header.Get("List-Unsubscribe"); !strings.HasPrefix(lu, "<https://track.shop.example/u/"+rec.ID+".") {
		t.Errorf("List-Unsubscribe %q", lu)
	}
	if msg.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
		t.Error("no List-Unsubscribe-Post")
	}
	if subj, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); subj != "Winter sale — 20 %" {
		t.Errorf("subject %q", subj)
	}
	// SES tracks opens and clicks itself: links keep their target, tagged
	if strings.Contains(html, "/r/") || strings.Contains(html, "/o/") {
		t.Errorf("SES message has Shoptrail's redirects: %s", html)
	}
	for _, want := range []string{"https://shop.example/sale?", "utm_medium=email", "utm_campaign=winter-2026", "x=1", "y=2", "st_id=", `href="mailto:help@shop.example"`} {
		if !strings.Contains(html, want) {
			t.Errorf("html lacks %q: %s", want, html)
		}
	}
	if !strings.Contains(text, "utm_source=shoptrail") {
		t.Errorf("text %q", text)
	}
	if evs := e.events(EventSend); len(evs) != 1 || evs[0].Email != "jane@example.com" || prop(evs[0], "campaign") != "winter-2026" {
		t.Errorf("email_send events %+v", evs)
	}
	// the identifying token leads back to the recipient
	i := strings.Index(html, "st_id=")
	tok := html[i+6:]
	tok = tok[:strings.IndexAny(tok, `&"`)]
	if got, err := e.m.Identify(tok); err != nil || got != "jane@example.com" {
		t.Errorf("Identify: %q %v", got, err)
	}
	if _, err := e.m.Identify(tok + "x"); !errors.Is(err, ErrBadToken) {
		t.Errorf("altered token: %v", err)
	}
}

func TestWrongSESKeyIsRefusedByItsSignature(t *testing.T) {
	e := newEnv(t, envOpts{ses: true, edit: func(c *config.Email) { c.SES.SecretAccessKey = "wrong"; c.MaxAttempts = 1 }})
	e.run()
	r, _, _ := e.m.Send(context.Background(), Message{To: "w@example.com", Subject: "s", Text: "t", Transactional: true})
	got := e.wait(r.ID, Failed)
	if !strings.Contains(got.Reason, "SignatureDoesNotMatch") || len(e.ses.Sent()) != 0 {
		t.Errorf("%+v", got)
	}
	if p := e.ses.Problems(); len(p) == 0 || !strings.Contains(p[0], "signature does not match") {
		t.Errorf("the fake accepted a wrong signature: %v", p)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(e.m.Status().AccountErr, "SignatureDoesNotMatch"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("GetAccount with a wrong key: %+v", e.m.Status())
		}
	}
}

func TestSMTPWhenSESIsNotConfigured(t *testing.T) {
	e := newEnv(t, envOpts{smtp: true})
	e.subscribe("bob@example.com")
	e.run()
	rec, _, err := e.m.Send(context.Background(), Message{To: "bob@example.com", Subject: "Hello", HTML: `<html><body><a href='https://shop.example/p/1'>shoes</a></body></html>`, Text: "Hi https://shop.example/p/1"})
	if err != nil {
		t.Fatal(err)
	}
	r := e.wait(rec.ID, Sent)
	if r.Provider != ProviderSMTP {
		t.Errorf("%+v", r)
	}
	msgs, _ := e.smtp.Wait(1, 5*time.Second)
	if len(msgs) != 1 || msgs[0].From != "hello@shop.example" || msgs[0].To[0] != "bob@example.com" || msgs[0].Auth != "shop" {
		t.Fatalf("%+v", msgs)
	}
	_, text, html := parts(t, msgs[0].Data)
	if !strings.Contains(html, `/o/`+rec.ID+".") || !strings.Contains(html, `href="https://track.shop.example/r/`) {
		t.Fatalf("no open pixel or click redirect: %s", html)
	}
	if !strings.Contains(text, "https://track.shop.example/r/") {
		t.Errorf("text links not tracked: %s", text)
	}
	i := strings.Index(html, "/r/")
	link := html[i+3 : i+3+22]
	target, err := e.m.Clicked(context.Background(), link, "203.0.113.9", "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Safari/605.1.15")
	if err != nil || !strings.HasPrefix(target, "https://shop.example/p/1?") || !strings.Contains(target, "utm_medium=email") {
		t.Fatalf("click: %q %v", target, err)
	}
	altered := link[:21] + "A"
	if link[21] == 'A' {
		altered = link[:21] + "B"
	}
	if _, err := e.m.Clicked(context.Background(), altered, "", ""); !errors.Is(err, ErrBadToken) {
		t.Errorf("altered link id: %v", err)
	}
	j := strings.Index(html, "/o/")
	tok := html[j+3:]
	tok = tok[:strings.IndexByte(tok, '"')]
	if err := e.m.Opened(context.Background(), tok, "17.58.1.1", "Mozilla/5.0"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Opened(context.Background(), tok, "198.51.100.7", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"); err != nil {
		t.Fatal(err)
	}
	opens := e.events(EventOpen)
	if len(opens) != 2 || prop(opens[1], "machine") != "apple_mpp" || prop(opens[0], "machine") != "" {
		t.Errorf("opens: %+v", opens)
	}
	if clicks := e.events(EventClick); len(clicks) != 1 || prop(clicks[0], "link") != target {
		t.Errorf("clicks: %+v", clicks)
	}
	if r, _ := e.m.Get(rec.ID); r.Events[EventOpen].IsZero() || r.Events[EventClick].IsZero() {
		t.Errorf("events on the record: %+v", r.Events)
	}
}

func TestTransactionalSkipsSubscriptionAndUnsubscribe(t *testing.T) {
	e := newEnv(t, envOpts{smtp: true})
	e.run()
	// not subscribed: marketing is suppressed, transactional goes
	mk, _, _ := e.m.Send(context.Background(), Message{To: "carl@example.com", Subject: "Sale", Text: "buy"})
	tr, _, _ := e.m.Send(context.Background(), Message{To: "carl@example.com", Subject: "Your order", Text: "thanks https://shop.example/o/1", Transactional: true})
	if mk.State != Suppressed || !strings.Contains(mk.Reason, "not subscribed") {
		t.Errorf("marketing %+v", mk)
	}
	e.wait(tr.ID, Sent)
	msgs := e.smtp.Messages()
	if len(msgs) != 1 || strings.Contains(string(msgs[0].Data), "List-Unsubscribe") || strings.Contains(string(msgs[0].Data), "/r/") {
		t.Fatalf("%s", msgs[0].Data)
	}
}

func TestBadMessages(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, tt := range []struct {
		msg   Message
		field string
	}{
		{Message{To: "", Subject: "s", Text: "t"}, "to"},
		{Message{To: "a@x.example\r\nBcc: b@y.example", Subject: "s", Text: "t"}, "to"},
		{Message{To: "ü@x.de", Subject: "s", Text: "t"}, "to"},
		{Message{To: "a@x.example", Subject: " ", Text: "t"}, "subject"},
		{Message{To: "a@x.example", Subject: "a\r\nBcc: x@y.example", Text: "t"}, "subject"},
		{Message{To: "a@x.example", Subject: strings.Repeat("s", 1000), Text: "t"}, "subject"},
		{Message{To: "a@x.example", Subject: "s"}, "html"},
		{Message{To: "a@x.example", Subject: "s", HTML: strings.Repeat("x", MaxBody+1)}, "html"},
		{Message{To: "a@x.example", Subject: "s", Text: "\xff"}, "text"},
		{Message{To: "a@x.example", Subject: "s", Text: "t", Campaign: "a\nb"}, "campaign"},
	} {
		_, _, err := e.m.Send(context.Background(), tt.msg)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%q: %v, want a problem with %s", tt.msg.To+"|"+tt.msg.Subject, err, tt.field)
		}
	}
	if c, _ := e.m.Counts(); c[Queued] != 0 {
		t.Errorf("bad messages were queued: %v", c)
	}
	// IDN domains are sent as punycode
	e.subscribe("bob@xn--bcher-kva.de")
	r, _, err := e.m.Send(context.Background(), Message{To: "Bob@Bücher.de", Subject: "s", Text: "t"})
	if err != nil || r.To != "bob@xn--bcher-kva.de" || r.State != Queued {
		t.Errorf("%+v %v", r, err)
	}
}

func TestNotConfigured(t *testing.T) {
	e := newEnv(t, envOpts{edit: func(c *config.Email) { c.From = "" }})
	if _, _, err := e.m.Send(context.Background(), Message{To: "a@example.com", Subject: "s", Text: "t"}); !errors.Is(err, ErrNotConfigured) {
		t.Fatal(err)
	}
}

func TestIdempotentPerCampaignAndRecipient(t *testing.T) {
	e := newEnv(t, envOpts{smtp: true})
	e.subscribe("d@example.com")
	var wg sync.WaitGroup
	ids := make([]string, 16)
	created := make([]bool, 16)
	for i := range 16 {
		wg.Go(func() {
			r, c, err := e.m.Send(context.Background(), Message{To: "d@example.com", Subject: "News", Text: "t", Campaign: "c1"})
			if err != nil {
				t.Error(err)
			}
			ids[i], created[i] = r.ID, c
		})
	}
	wg.Wait()
	n := 0
	for i := range ids {
		if ids[i] != ids[0] {
			t.Fatalf("two messages for one campaign and recipient: %v", ids)
		}
		if created[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d sends said created", n)
	}
	// another campaign is another message; a batch dedups within itself
	recs, cr, err := e.m.SendBatch(context.Background(), []Message{
		{To: "d@example.com", Subject: "News", Text: "t", Campaign: "c2"},
		{To: "d@example.com", Subject: "News", Text: "t", Campaign: "c2"},
	})
	if err != nil || recs[0].ID == ids[0] || recs[1].ID != recs[0].ID || !cr[0] || cr[1] {
		t.Fatalf("%+v %v %v", recs, cr, err)
	}
	e.run()
	e.wait(ids[0], Sent)
	e.wait(recs[0].ID, Sent)
	if n := len(e.smtp.Messages()); n != 2 {
		t.Errorf("%d messages delivered", n)
	}
	if c, _ := e.m.Counts(); c[Sent] != 2 || c[Queued] != 0 || c[Sending] != 0 {
		t.Errorf("counts %v", c)
	}
}

func TestSESFaults(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults []sestest.Fault
		smtp   bool
		state  string
		check  func(t *testing.T, e *env, r Record)
	}{
		{"throttled, then sent", []sestest.Fault{sestest.Throttle}, false, Sent, func(t *testing.T, e *env, r Record) {
			if r.SESAttempts != 1 || r.Provider != ProviderSES {
				t.Errorf("%+v", r)
			}
			if rate := e.m.q.pace.current(); rate >= 14 {
				t.Errorf("the pace did not slow: %g", rate)
			}
		}},
		{"rejected", []sestest.Fault{sestest.Rejected}, true, Failed, func(t *testing.T, e *env, r Record) {
			if !strings.Contains(r.Reason, "MessageRejected") || r.SMTPAttempts != 0 {
				t.Errorf("%+v", r)
			}
		}},
		{"unverified MAIL FROM", []sestest.Fault{sestest.NotVerified}, false, Failed, nil},
		{"5xx then sent", []sestest.Fault{sestest.Unavailable}, false, Sent, func(t *testing.T, e *env, r Record) {
			if r.SESAttempts != 2 {
				t.Errorf("%+v", r)
			}
		}},
		{"5xx beyond the budget goes through SMTP", []sestest.Fault{sestest.InternalError, sestest.Unavailable}, true, Sent, func(t *testing.T, e *env, r Record) {
			if r.Provider != ProviderSMTP || r.SESAttempts != 2 || len(e.smtp.Messages()) != 1 {
				t.Errorf("%+v", r)
			}
		}},
		{"5xx beyond the budget without SMTP fails", []sestest.Fault{sestest.InternalError, sestest.Unavailable}, false, Failed, nil},
		{"slow SES", []sestest.Fault{{Delay: 300 * time.Millisecond}}, false, Sent, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOpts{ses: true, smtp: tt.smtp, edit: func(c *config.Email) { c.MaxAttempts = 2 }})
			e.subscribe("f@example.com")
			e.ses.Fail(tt.faults...)
			rec, _, err := e.m.Send(context.Background(), Message{To: "f@example.com", Subject: "s", Text: "t"})
			if err != nil {
				t.Fatal(err)
			}
			fastRetries(e)
			e.run()
			r := e.wait(rec.ID, tt.state)
			if tt.check != nil {
				tt.check(t, e, r)
			}
		})
	}
}

// fastRetries makes the queue retry at once.
func fastRetries(e *env) { e.m.q.backoff = func(int) time.Duration { return time.Millisecond } }

func TestSendingPausedStopsTheQueue(t *testing.T) {
	e := newEnv(t, envOpts{ses: true})
	e.subscribe("g@example.com", "h@example.com")
	e.ses.Fail(sestest.Paused)
	e.run()
	a, _, _ := e.m.Send(context.Background(), Message{To: "g@example.com", Subject: "s", Text: "t"})
	deadline := time.Now().Add(5 * time.Second)
	for e.m.Status().Paused == "" {
		if time.Now().After(deadline) {
			t.Fatal("the queue did not stop")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, _, _ := e.m.Send(context.Background(), Message{To: "h@example.com", Subject: "s", Text: "t"})
	time.Sleep(200 * time.Millisecond)
	if r, _ := e.m.Get(a.ID); r.State != Queued || r.Attempts != 0 {
		t.Errorf("the paused message: %+v", r)
	}
	if r, _ := e.m.Get(b.ID); r.State != Queued {
		t.Errorf("a message queued while stopped: %+v", r)
	}
	if st := e.m.Status(); !strings.Contains(st.Paused, "SendingPausedException") {
		t.Errorf("status %+v", st)
	}
	// the stop survives a restart
	e.stop()
	e.stop = nil
	q2 := newQueue(e.m, nil)
	if q2.paused == "" {
		t.Error("the stop was not kept")
	}
	e.run()
	if err := e.m.Resume(); err != nil {
		t.Fatal(err)
	}
	e.wait(a.ID, Sent)
	e.wait(b.ID, Sent)
}

func TestCrashLeavesUncertainNotResent(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, envOpts{smtp: true, dir: dir})
	e.subscribe("i@example.com", "j@example.com")
	a, _, _ := e.m.Send(context.Background(), Message{To: "i@example.com", Subject: "s", Text: "t"})
	b, _, _ := e.m.Send(context.Background(), Message{To: "j@example.com", Subject: "s", Text: "t"})
	// a worker claims a and "crashes" before recording the outcome
	r, _, err := e.m.q.claim()
	if err != nil || r == nil || r.ID != a.ID {
		t.Fatalf("%+v %v", r, err)
	}
	e.close()
	e2 := newEnv(t, envOpts{smtp: true, dir: dir})
	e2.run()
	got := e2.wait(a.ID, Uncertain)
	if !strings.Contains(got.Reason, "may or may not") {
		t.Errorf("%+v", got)
	}
	e2.wait(b.ID, Sent)
	time.Sleep(100 * time.Millisecond)
	if msgs := e2.smtp.Messages(); len(msgs) != 1 || msgs[0].To[0] != "j@example.com" {
		t.Fatalf("%+v", msgs)
	}
	if c, _ := e2.m.Counts(); c[Uncertain] != 1 || c[Sent] != 1 || c[Sending] != 0 {
		t.Errorf("counts %v", c)
	}
	// the admin decides it was not sent
	if _, err := e2.m.Retry(a.ID); err != nil {
		t.Fatal(err)
	}
	e2.wait(a.ID, Sent)
	if _, err := e2.m.Retry(b.ID); err == nil {
		t.Error("a sent message was queued again")
	}
}

func TestSMTPErrors(t *testing.T) {
	e := newEnv(t, envOpts{smtp: true, edit: func(c *config.Email) { c.MaxAttempts = 2 }})
	e.subscribe("k@example.com", "l@example.com", "m@example.com")
	e.smtp.Fail(&smtp.SMTPError{Code: 550, Message: "no such user"})
	a, _, _ := e.m.Send(context.Background(), Message{To: "k@example.com", Subject: "s", Text: "t"})
	fastRetries(e)
	e.run()
	if r := e.wait(a.ID, Failed); !strings.Contains(r.Reason, "550") {
		t.Errorf("%+v", r)
	}
	e.smtp.Fail(&smtp.SMTPError{Code: 451, Message: "later"})
	b, _, _ := e.m.Send(context.Background(), Message{To: "l@example.com", Subject: "s", Text: "t"})
	if r := e.wait(b.ID, Sent); r.SMTPAttempts != 2 {
		t.Errorf("%+v", r)
	}
	e.smtp.Fail(&smtp.SMTPError{Code: 451, Message: "later"}, &smtp.SMTPError{Code: 421, Message: "later"})
	c, _, _ := e.m.Send(context.Background(), Message{To: "m@example.com", Subject: "s", Text: "t"})
	if r := e.wait(c.ID, Failed); !strings.Contains(r.Reason, "out of retries") {
		t.Errorf("%+v", r)
	}
}

func TestUnsubscribeToken(t *testing.T) {
	e := newEnv(t, envOpts{smtp: true})
	e.subscribe("n@example.com")
	r, _, _ := e.m.Send(context.Background(), Message{To: "n@example.com", Subject: "s", Text: "t"})
	tok := e.m.unsubToken(r.ID)
	for _, bad := range []string{"", tok + "x", r.ID, "../../etc", strings.Replace(tok, r.ID[:4], "ffff", 1)} {
		if _, err := e.m.Unsubscribe(context.Background(), bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	for range 2 { // idempotent
		if email, err := e.m.Unsubscribe(context.Background(), tok); err != nil || email != "n@example.com" {
			t.Fatal(email, err)
		}
	}
	if ok, _ := (Users{Store: e.st, Users: e.users}).Subscribed("n@example.com"); ok {
		t.Error("still subscribed")
	}
	if evs := e.events(model.Unsubscribe); len(evs) != 1 {
		t.Errorf("%d unsubscribe events", len(evs))
	}
	// the queued message is not sent any more
	e2 := e
	e2.run()
	if got := e2.wait(r.ID, Suppressed); !strings.Contains(got.Reason, "unsubscribed") {
		t.Errorf("%+v", got)
	}
}

func TestSettingsSecretsAreEncrypted(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, envOpts{dir: dir})
	s := e.m.Settings()
	s.SMTP = SMTPSettings{Host: "127.0.0.1", Port: 2525, Username: "u", Password: "very-secret-password", TLS: "none"}
	s.SES = SESSettings{Region: "eu-west-1", AccessKeyID: "AKIAX", SecretAccessKey: "very-secret-key"}
	if err := e.m.SaveSettings(s); err != nil {
		t.Fatal(err)
	}
	raw := map[string]any{}
	e.st.Read(func(tx *store.Tx) error { return tx.Get(store.SpaceMail, settingsKey, &raw) })
	b, _ := json.Marshal(raw)
	if strings.Contains(string(b), "very-secret") {
		t.Fatalf("a secret is stored in clear: %s", b)
	}
	// an empty secret keeps the stored one
	s.SMTP.Password, s.SES.SecretAccessKey = "", ""
	if err := e.m.SaveSettings(s); err != nil {
		t.Fatal(err)
	}
	e.close()
	e2 := newEnv(t, envOpts{dir: dir})
	got := e2.m.Settings()
	if got.SMTP.Password != "very-secret-password" || got.SES.SecretAccessKey != "very-secret-key" || got.SMTP.Port != 2525 {
		t.Errorf("%+v", got)
	}
	if err := e2.m.SaveSettings(got, "smtp_password"); err != nil || e2.m.Settings().SMTP.Password != "" {
		t.Errorf("clearing: %v", err)
	}
	bad := got
	bad.SMTP.TLS, bad.SMTP.Host = "none", "mail.example"
	var fe *FieldError
	if err := e2.m.SaveSettings(bad); !errors.As(err, &fe) || fe.Field != "smtp.tls" {
		t.Errorf("%v", err)
	}
}

func TestConcurrentQueue(t *testing.T) {
	e := newEnv(t, envOpts{smtp: true, edit: func(c *config.Email) { c.Workers = 6 }})
	const n = 300
	var emails []string
	for i := range n {
		emails = append(emails, fmt.Sprintf("u%03d@example.com", i))
	}
	e.subscribe(emails...)
	e.run()
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := w; i < n; i += 6 {
				// twice each: the second is the same message
				for range 2 {
					if _, _, err := e.m.Send(context.Background(), Message{To: emails[i], Subject: "s", Text: "t", Campaign: "big"}); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Go(func() { // the admin page reads meanwhile
		for range 20 {
			e.m.Status()
			e.m.List("", "", 50)
			time.Sleep(5 * time.Millisecond)
		}
	})
	wg.Wait()
	msgs, err := e.smtp.Wait(n, 30*time.Second)
	if err != nil {
		t.Fatal(err, len(msgs))
	}
	time.Sleep(200 * time.Millisecond)
	seen := map[string]int{}
	for _, m := range e.smtp.Messages() {
		seen[m.To[0]]++
	}
	for _, a := range emails {
		if seen[a] != 1 {
			t.Errorf("%s received %d", a, seen[a])
		}
	}
	if c, _ := e.m.Counts(); c[Sent] != n || c[Queued] != 0 || c[Sending] != 0 {
		t.Errorf("counts %v", c)
	}
}

func TestMachineOpen(t *testing.T) {
	for _, tt := range []struct{ ip, ua, want string }{
		{"17.1.2.3", "Mozilla/5.0 (Macintosh)", "apple_mpp"},
		{"::ffff:17.1.2.3", "x", "apple_mpp"},
		{"203.0.113.1", "Mozilla/5.0", "apple_mpp"},
		{"203.0.113.1", "Mozilla/5.0 (compatible; Barracuda Sentinel)", "scanner"},
		{"203.0.113.1", "Googlebot/2.1", "scanner"},
		{"203.0.113.1", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", ""},
		{"203.0.113.1", "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", ""},
	} {
		if got := MachineOpen(tt.ip, tt.ua); got != tt.want {
			t.Errorf("%s %q: %q, want %q", tt.ip, tt.ua, got, tt.want)
		}
	}
}

// TestLargeBatch: a batch of large messages is split into transactions
// Badger can commit.
func TestLargeBatch(t *testing.T) {
	e := newEnv(t, envOpts{})
	body := strings.Repeat("<p>Lorem ipsum dolor sit amet.</p>\n", MaxBody/40)
	var msgs []Message
	for i := range 12 {
		msgs = append(msgs, Message{To: fmt.Sprintf("big%d@example.com", i), Subject: "s", HTML: body, Text: body[:MaxBody/2], Transactional: true})
	}
	recs, created, err := e.m.SendBatch(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if !created[i] || recs[i].State != Queued {
			t.Fatalf("%d: %+v", i, recs[i])
		}
	}
	if c, _ := e.m.Counts(); c[Queued] != 12 {
		t.Errorf("%v", c)
	}
}
