package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/mail/snstest"
	"github.com/shoptrail/shoptrail/engine/store"
)

const testTopic = "arn:aws:sns:eu-west-1:123456789012:ses-events"

func newSNS(t testing.TB) *snstest.SNS {
	t.Helper()
	s, err := snstest.New("eu-west-1", testTopic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestVerifierRefusesEveryAttack(t *testing.T) {
	sns := newSNS(t)
	v := &Verifier{Topics: []string{testTopic}, Client: sns.Client}
	good := func() snstest.Message { return sns.Notification(map[string]any{"eventType": "Delivery"}) }
	resign := func(edit func(m snstest.Message)) func() snstest.Message {
		return func() snstest.Message {
			m := good()
			edit(m)
			sns.Sign(m, m["SignatureVersion"])
			return m
		}
	}
	if _, err := v.Verify(context.Background(), good().JSON()); err != nil {
		t.Fatalf("a genuine message: %v", err)
	}
	for _, tt := range []struct {
		name string
		msg  func() snstest.Message
		raw  string
	}{
		{"not JSON", nil, "{"},
		{"unknown type", resign(func(m snstest.Message) { m["Type"] = "Surprise" }), ""},
		{"signature of another message", func() snstest.Message { m := good(); m["Message"] = `{"eventType":"Bounce"}`; return m }, ""},
		{"signature garbled", func() snstest.Message { m := good(); m["Signature"] = "AAAA" + m["Signature"][4:]; return m }, ""},
		{"signature not base64", func() snstest.Message { m := good(); m["Signature"] = "%%%"; return m }, ""},
		{"wrong topic", resign(func(m snstest.Message) { m["TopicArn"] = "arn:aws:sns:eu-west-1:999999999999:evil" }), ""},
		{"SignatureVersion 1 not allowed", func() snstest.Message { m := good(); sns.Sign(m, "1"); return m }, ""},
		{"SignatureVersion 3", func() snstest.Message { m := good(); sns.Sign(m, "3"); return m }, ""},
		{"stale timestamp", resign(func(m snstest.Message) {
			m["Timestamp"] = time.Now().Add(-61 * time.Minute).UTC().Format(time.RFC3339)
		}), ""},
		{"future timestamp", resign(func(m snstest.Message) {
			m["Timestamp"] = time.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339)
		}), ""},
		{"cert over http", resign(func(m snstest.Message) { m["SigningCertURL"] = strings.Replace(sns.CertURL, "https:", "http:", 1) }), ""},
		{"lookalike host", resign(func(m snstest.Message) {
			m["SigningCertURL"] = strings.Replace(sns.CertURL, "sns.eu-west-1.amazonaws.com", "sns.eu-west-1.amazonaws.com.evil.example", 1)
		}), ""},
		{"host suffix", resign(func(m snstest.Message) {
			m["SigningCertURL"] = strings.Replace(sns.CertURL, "sns.eu-west-1.amazonaws.com", "evilsns.eu-west-1.amazonaws.com", 1)
		}), ""},
		{"s3 bucket", resign(func(m snstest.Message) {
			m["SigningCertURL"] = "https://s3.amazonaws.com/evil/SimpleNotificationService-1.pem"
		}), ""},
		{"other region", resign(func(m snstest.Message) {
			m["SigningCertURL"] = strings.Replace(sns.CertURL, "eu-west-1", "us-east-1", 1)
		}), ""},
		{"userinfo", resign(func(m snstest.Message) {
			m["SigningCertURL"] = strings.Replace(sns.CertURL, "https://", "https://evil.example@", 1)
		}), ""},
		{"port", resign(func(m snstest.Message) {
			m["SigningCertURL"] = strings.Replace(sns.CertURL, ".com/", ".com:8443/", 1)
		}), ""},
		{"other path", resign(func(m snstest.Message) { m["SigningCertURL"] = "https://" + sns.Host + "/evil.pem" }), ""},
		{"query", resign(func(m snstest.Message) { m["SigningCertURL"] = sns.CertURL + "?x=1" }), ""},
		{"no MessageId", resign(func(m snstest.Message) { m["MessageId"] = "" }), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.raw)
			if tt.msg != nil {
				body = tt.msg().JSON()
			}
			if _, err := v.Verify(context.Background(), body); !errors.Is(err, ErrForbidden) {
				t.Fatalf("accepted or wrong error: %v", err)
			}
		})
	}
	t.Run("a key that is not SNS's", func(t *testing.T) {
		other := newSNS(t)
		m := other.Notification(map[string]any{"eventType": "Delivery"})
		if _, err := v.Verify(context.Background(), m.JSON()); !errors.Is(err, ErrForbidden) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("version 1 when allowed", func(t *testing.T) {
		v1 := &Verifier{Topics: []string{testTopic}, Client: sns.Client, AllowV1: true}
		m := good()
		sns.Sign(m, "1")
		if _, err := v1.Verify(context.Background(), m.JSON()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no topic configured", func(t *testing.T) {
		v0 := &Verifier{Client: sns.Client}
		if _, err := v0.Verify(context.Background(), good().JSON()); !errors.Is(err, ErrForbidden) {
			t.Fatal(err)
		}
	})
	// once for v, once for v1: each verifier caches it
	if n := sns.CertFetches(); n != 2 {
		t.Errorf("the certificate was fetched %d times, want 2 (cached)", n)
	}
}

func TestSubscriptionConfirmation(t *testing.T) {
	sns := newSNS(t)
	e := newEnv(t, envOpts{})
	e.m.sns.Client = sns.Client
	if _, err := e.m.HandleSNS(context.Background(), sns.Confirmation("tok-1").JSON()); err != nil {
		t.Fatal(err)
	}
	if got := sns.Confirmed(); len(got) != 1 || got[0] != "tok-1" {
		t.Fatalf("confirmed %v", got)
	}
	// a SubscribeURL elsewhere is not fetched, however well signed
	for _, u := range []string{"https://169.254.169.254/?Action=ConfirmSubscription", "http://" + sns.Host + "/?Action=ConfirmSubscription",
		"https://" + sns.Host + "/?Action=Publish"} {
		m := sns.Confirmation("tok-2")
		m["SubscribeURL"] = u
		sns.Sign(m, "2")
		if _, err := e.m.HandleSNS(context.Background(), m.JSON()); !errors.Is(err, ErrForbidden) {
			t.Errorf("%s: %v", u, err)
		}
	}
	if got := sns.Confirmed(); len(got) != 1 {
		t.Fatalf("confirmed %v", got)
	}
}

// sesEventJSON is an SES event as the configuration set publishes it.
func sesEventJSON(kind, sesID, ourID, to string, extra map[string]any) map[string]any {
	ev := map[string]any{"eventType": kind, "mail": map[string]any{"messageId": sesID, "timestamp": time.Now().UTC().Format(time.RFC3339),
		"source": "hello@shop.example", "destination": []string{to},
		"tags": map[string][]string{"ses:configuration-set": {"shoptrail"}, tagMessage: {ourID}}}}
	for k, v := range extra {
		ev[k] = v
	}
	return ev
}

func TestSESEventsBecomeProfileEvents(t *testing.T) {
	sns := newSNS(t)
	e := newEnv(t, envOpts{ses: true})
	e.m.sns.Client = sns.Client
	e.subscribe("o@example.com", "p@example.com", "q@example.com")
	e.run()
	send := func(to string) Record {
		r, _, err := e.m.Send(context.Background(), Message{To: to, Subject: "s", Text: "t", Campaign: "c9"})
		if err != nil {
			t.Fatal(err)
		}
		return e.wait(r.ID, Sent)
	}
	post := func(m snstest.Message) string {
		t.Helper()
		res, err := e.m.HandleSNS(context.Background(), m.JSON())
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	now := time.Now().UTC().Format(time.RFC3339)
	o := send("o@example.com")
	delivery := sns.Notification(sesEventJSON("Delivery", o.ProviderID, o.ID, o.To, map[string]any{"delivery": map[string]any{"timestamp": now, "smtpResponse": "250 ok"}}))
	post(delivery)
	if res := post(delivery); res != "duplicate" {
		t.Errorf("a replayed message: %q", res)
	}
	post(sns.Notification(sesEventJSON("Open", o.ProviderID, o.ID, o.To, map[string]any{"open": map[string]any{"timestamp": now, "ipAddress": "17.5.5.5", "userAgent": "Mozilla/5.0"}})))
	post(sns.Notification(sesEventJSON("Click", o.ProviderID, o.ID, o.To, map[string]any{"click": map[string]any{"timestamp": now, "link": "https://shop.example/x", "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"}})))
	// the Send event is the one the queue recorded already
	post(sns.Notification(sesEventJSON("Send", o.ProviderID, o.ID, o.To, nil)))
	post(sns.Notification(sesEventJSON("Rendering Failure", o.ProviderID, o.ID, o.To, map[string]any{"failure": map[string]any{"errorMessage": "bad template"}})))
	post(sns.Notification(sesEventJSON("DeliveryDelay", o.ProviderID, o.ID, o.To, map[string]any{"deliveryDelay": map[string]any{"timestamp": now, "delayType": "MailboxFull"}})))
	for typ, n := range map[string]int{EventDelivery: 1, EventOpen: 1, EventClick: 1, EventSend: 1, EventRenderFailure: 1, EventDeliveryDelay: 1} {
		evs := e.events(typ)
		if len(evs) != n {
			t.Errorf("%s: %d events, want %d", typ, len(evs), n)
			continue
		}
		if evs[0].Email != "o@example.com" || prop(evs[0], "campaign") != "c9" || prop(evs[0], "message_id") != o.ID {
			t.Errorf("%s: %+v", typ, evs[0])
		}
	}
	if ev := e.events(EventOpen)[0]; prop(ev, "machine") != "apple_mpp" {
		t.Errorf("MPP open not flagged: %v", ev.Props)
	}
	if r, _ := e.m.Get(o.ID); r.Events[EventDelivery].IsZero() || r.Events[EventOpen].IsZero() {
		t.Errorf("%+v", r.Events)
	}

	// a hard bounce suppresses the address
	p := send("p@example.com")
	post(sns.Notification(sesEventJSON("Bounce", p.ProviderID, p.ID, p.To, map[string]any{"bounce": map[string]any{
		"bounceType": "Permanent", "bounceSubType": "General", "timestamp": now,
		"bouncedRecipients": []map[string]any{{"emailAddress": "p@example.com", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}}}})))
	if s, err := e.m.Suppression("p@example.com"); err != nil || s.Reason != "bounce" {
		t.Fatalf("%+v %v", s, err)
	}
	again, _, _ := e.m.Send(context.Background(), Message{To: "p@example.com", Subject: "s2", Text: "t", Transactional: true})
	if again.State != Suppressed {
		t.Errorf("a message to a bounced address: %+v", again)
	}
	// a complaint too
	post(sns.Notification(sesEventJSON("Complaint", o.ProviderID, o.ID, o.To, map[string]any{"complaint": map[string]any{
		"timestamp": now, "complaintFeedbackType": "abuse", "complainedRecipients": []map[string]any{{"emailAddress": "o@example.com"}}}})))
	if s, err := e.m.Suppression("o@example.com"); err != nil || s.Reason != "complaint" {
		t.Fatalf("%+v %v", s, err)
	}
	if ok, reason, _ := e.m.Sendable("o@example.com"); ok || !strings.Contains(reason, "complaint") {
		t.Errorf("Sendable: %v %s", ok, reason)
	}

	// three soft bounces in a row suppress; each sends again later
	q := send("q@example.com")
	for i := range 3 {
		post(sns.Notification(sesEventJSON("Bounce", q.ProviderID, q.ID, q.To, map[string]any{"bounce": map[string]any{
			"bounceType": "Transient", "bounceSubType": "MailboxFull", "timestamp": now}})))
		r, _ := e.m.Get(q.ID)
		if i < 2 && (r.State != Queued || r.NextAttempt.Before(time.Now().Add(30*time.Minute))) {
			t.Errorf("soft bounce %d: %+v", i+1, r)
		}
		if i < 2 {
			// pretend the retry went out
			e.m.q.mu.Lock()
			e.st.Write(func(tx *store.Tx) error {
				var cur Record
				tx.Get(store.SpaceMail, "msg/"+q.ID, &cur)
				tx.Delete(store.SpaceMail, dueKey(cur.NextAttempt, cur.ID))
				return setState(tx, &cur, Sent)
			})
			e.m.q.mu.Unlock()
		}
	}
	if s, err := e.m.Suppression("q@example.com"); err != nil || s.Reason != "soft_bounce" {
		t.Fatalf("%+v %v", s, err)
	}

	// removal by hand is logged
	if err := e.m.Unsuppress(context.Background(), "p@example.com", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Suppression("p@example.com"); !errors.Is(err, ErrNotSuppressed) {
		t.Error(err)
	}
	if log, _ := e.m.AuditLog(10); len(log) != 1 || log[0].By != "admin" || log[0].Was != "bounce" {
		t.Errorf("%+v", log)
	}
	if err := e.m.Unsuppress(context.Background(), "p@example.com", "admin"); !errors.Is(err, ErrNotSuppressed) {
		t.Error(err)
	}
	list, _ := e.m.Suppressions("", 10)
	if len(list) != 2 {
		t.Errorf("%+v", list)
	}

	// not a Shoptrail message, unknown type, not an SES event
	if res := post(sns.Notification(sesEventJSON("Delivery", "other", "", "x@example.com", nil))); !strings.HasPrefix(res, "ignored") {
		t.Error(res)
	}
	if res := post(sns.Notification(sesEventJSON("Subscription", o.ProviderID, o.ID, o.To, nil))); !strings.HasPrefix(res, "ignored") {
		t.Error(res)
	}
	if _, err := e.m.HandleSNS(context.Background(), sns.Notification("not json").JSON()); !errors.Is(err, ErrBadEvent) {
		t.Error(err)
	}
}

// FuzzVerify: no input panics the verifier or is accepted without a valid
// signature.
func FuzzVerify(f *testing.F) {
	sns, err := snstest.New("eu-west-1", testTopic)
	if err != nil {
		f.Fatal(err)
	}
	defer sns.Close()
	f.Add(sns.Notification(map[string]any{"eventType": "Delivery"}).JSON())
	f.Add(sns.Confirmation("t").JSON())
	f.Add([]byte(`{"Type":"Notification","SignatureVersion":"2","TopicArn":"` + testTopic + `"}`))
	v := &Verifier{Topics: []string{testTopic}, Client: sns.Client}
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := v.Verify(context.Background(), body)
		if err == nil {
			// only genuine messages pass: the fuzzer cannot forge RSA, so
			// what passes must be a seed with its signature intact
			var m map[string]string
			if json.Unmarshal(body, &m) != nil || m["Signature"] == "" || env.TopicArn != testTopic {
				t.Fatalf("accepted %q", body)
			}
		}
	})
}

// TestConcurrentEventsOnOneMessage: SNS events, pixel opens and clicks on
// one message at once, while the queue sends others: every event is
// recorded once, the message keeps each kind, and the counters stay right.
func TestConcurrentEventsOnOneMessage(t *testing.T) {
	sns := newSNS(t)
	e := newEnv(t, envOpts{smtp: true})
	e.m.sns.Client = sns.Client
	e.subscribe("r@example.com")
	e.run()
	r, _, _ := e.m.Send(context.Background(), Message{To: "r@example.com", Subject: "s", HTML: `<a href="https://shop.example/">x</a>`})
	r = e.wait(r.ID, Sent)
	now := time.Now().UTC().Format(time.RFC3339)
	kinds := []string{"Delivery", "Open", "Click", "DeliveryDelay"}
	var msgs []snstest.Message
	for i := range 40 {
		k := kinds[i%len(kinds)]
		extra := map[string]any{}
		switch k {
		case "Delivery":
			extra["delivery"] = map[string]any{"timestamp": now}
		case "Open":
			extra["open"] = map[string]any{"timestamp": now, "userAgent": "Mozilla/5.0 (X11) Firefox/120.0"}
		case "Click":
			extra["click"] = map[string]any{"timestamp": now, "link": "https://shop.example/"}
		case "DeliveryDelay":
			extra["deliveryDelay"] = map[string]any{"timestamp": now, "delayType": "MailboxFull"}
		}
		msgs = append(msgs, sns.Notification(sesEventJSON(k, "x", r.ID, r.To, extra)))
	}
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Go(func() {
			for range 2 { // each twice: the second is a duplicate
				if _, err := e.m.HandleSNS(context.Background(), m.JSON()); err != nil {
					t.Error(err)
				}
			}
			if i%4 == 0 {
				e.m.Opened(context.Background(), e.m.openToken(r.ID), "198.51.100.1", "Mozilla/5.0 (X11) Firefox/120.0")
			}
		})
	}
	for i := range 20 {
		wg.Go(func() {
			e.subscribe(fmt.Sprintf("c%d@example.com", i))
			e.m.Send(context.Background(), Message{To: fmt.Sprintf("c%d@example.com", i), Subject: "s", Text: "t"})
		})
	}
	wg.Wait()
	for typ, want := range map[string]int{EventDelivery: 10, EventClick: 10, EventDeliveryDelay: 10, EventOpen: 20} {
		if got := len(e.events(typ)); got != want {
			t.Errorf("%s: %d events, want %d", typ, got, want)
		}
	}
	got, _ := e.m.Get(r.ID)
	for _, typ := range []string{EventDelivery, EventOpen, EventClick, EventDeliveryDelay} {
		if got.Events[typ].IsZero() {
			t.Errorf("the message lost %s: %+v", typ, got.Events)
		}
	}
	if got.State != Sent {
		t.Errorf("state %s", got.State)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _ := e.m.Counts()
		if c[Sent] == 21 && c[Queued] == 0 && c[Sending] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts %v", c)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConcurrentDuplicateSoftBounce: SNS delivers one soft bounce twice at
// the same moment; it counts once.
func TestConcurrentDuplicateSoftBounce(t *testing.T) {
	sns := newSNS(t)
	e := newEnv(t, envOpts{smtp: true})
	e.m.sns.Client = sns.Client
	e.subscribe("s@example.com")
	e.run()
	r, _, _ := e.m.Send(context.Background(), Message{To: "s@example.com", Subject: "s", Text: "t"})
	r = e.wait(r.ID, Sent)
	m := sns.Notification(sesEventJSON("Bounce", "x", r.ID, r.To, map[string]any{"bounce": map[string]any{
		"bounceType": "Transient", "bounceSubType": "MailboxFull", "timestamp": time.Now().UTC().Format(time.RFC3339)}}))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := e.m.HandleSNS(context.Background(), m.JSON()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, _ := e.m.Get(r.ID)
	if got.SoftBounces != 1 || len(e.events(EventBounce)) != 1 {
		t.Errorf("soft bounces %d, events %d", got.SoftBounces, len(e.events(EventBounce)))
	}
}
