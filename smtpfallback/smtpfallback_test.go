package smtpfallback_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/shoptrail/shoptrail/smtpfallback"
	"github.com/shoptrail/shoptrail/smtpfallback/smtptest"
)

func msg(to string) []byte {
	return []byte("From: shop@shop.example\r\nTo: " + to + "\r\nSubject: hi\r\n\r\nHello\r\n")
}

func start(t testing.TB, o smtptest.Options) *smtptest.Server {
	srv, err := smtptest.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func client(t testing.TB, srv *smtptest.Server, edit func(*smtpfallback.Config)) *smtpfallback.Client {
	cfg := smtpfallback.Config{Host: srv.Host, Port: srv.Port, TLS: smtpfallback.None, Timeout: 5 * time.Second}
	if srv.RootCAs != nil {
		cfg.TLS, cfg.TLSConfig = smtpfallback.StartTLS, srv.RootCAs
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := smtpfallback.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSendsOverStartTLSWithAuth(t *testing.T) {
	srv := start(t, smtptest.Options{TLS: true, Username: "shop", Password: "s3cret"})
	c := client(t, srv, func(c *smtpfallback.Config) { c.Username, c.Password = "shop", "s3cret" })
	for i := range 3 { // the second and third reuse the connection
		if err := c.Send(context.Background(), "shop@shop.example", []string{fmt.Sprintf("u%d@example.com", i)}, msg("u@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	got := srv.Messages()
	if len(got) != 3 || got[0].Auth != "shop" || got[2].To[0] != "u2@example.com" || !strings.Contains(string(got[0].Data), "Hello") {
		t.Fatalf("%+v", got)
	}
}

func TestFailures(t *testing.T) {
	tlsSrv := start(t, smtptest.Options{TLS: true, Username: "shop", Password: "s3cret"})
	for _, tt := range []struct {
		name      string
		edit      func(*smtpfallback.Config)
		fault     error
		temporary bool
		code      int
	}{
		{"wrong password", func(c *smtpfallback.Config) { c.Username, c.Password = "shop", "nope" }, nil, false, 535},
		{"no auth where required", nil, nil, false, 502},
		{"untrusted certificate", func(c *smtpfallback.Config) { c.TLSConfig = nil; c.Username, c.Password = "shop", "s3cret" }, nil, true, 0},
		{"4xx at data", func(c *smtpfallback.Config) { c.Username, c.Password = "shop", "s3cret" }, &smtp.SMTPError{Code: 451, Message: "try later"}, true, 451},
		{"5xx at data", func(c *smtpfallback.Config) { c.Username, c.Password = "shop", "s3cret" }, &smtp.SMTPError{Code: 554, Message: "rejected"}, false, 554},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := client(t, tlsSrv, tt.edit)
			if tt.fault != nil {
				tlsSrv.Fail(tt.fault)
			}
			err := c.Send(context.Background(), "shop@shop.example", []string{"a@example.com"}, msg("a@example.com"))
			var se *smtpfallback.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want *smtpfallback.Error", err, err)
			}
			if se.Temporary != tt.temporary || se.Code != tt.code {
				t.Errorf("error %+v: temporary %v code %d, want %v %d", se, se.Temporary, se.Code, tt.temporary, tt.code)
			}
		})
	}
	t.Run("nobody listening", func(t *testing.T) {
		c := client(t, &smtptest.Server{Host: "127.0.0.1", Port: 1}, nil)
		err := c.Send(context.Background(), "a@shop.example", []string{"b@example.com"}, msg("b"))
		var se *smtpfallback.Error
		if !errors.As(err, &se) || !se.Temporary || !se.Unsent {
			t.Fatalf("%+v", err)
		}
	})
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg  smtpfallback.Config
		want string
	}{
		{smtpfallback.Config{Port: 25, TLS: "none"}, "host"},
		{smtpfallback.Config{Host: "mail.example", Port: 0, TLS: "tls"}, "port"},
		{smtpfallback.Config{Host: "mail.example", Port: 25, TLS: "none"}, "loopback"},
		{smtpfallback.Config{Host: "mail.example", Port: 25, TLS: "ssl"}, "starttls"},
	} {
		if _, err := smtpfallback.New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

func TestCancelledSendReturns(t *testing.T) {
	srv := start(t, smtptest.Options{})
	srv.Delay(2 * time.Second)
	c := client(t, srv, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err := c.Send(ctx, "a@shop.example", []string{"b@example.com"}, msg("b"))
	if err == nil || time.Since(begin) > time.Second {
		t.Fatalf("%v after %s", err, time.Since(begin))
	}
}

func TestConcurrentSends(t *testing.T) {
	srv := start(t, smtptest.Options{})
	c := client(t, srv, nil)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				if err := c.Send(context.Background(), "a@shop.example", []string{fmt.Sprintf("w%d-%d@example.com", w, i)}, msg("x")); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := len(srv.Messages()); n != 160 {
		t.Fatalf("%d messages", n)
	}
}

// BenchmarkSend measures the fallback against a local server (the issue
// asks for at least 200 messages/s).
func BenchmarkSend(b *testing.B) {
	srv := start(b, smtptest.Options{TLS: true})
	c := client(b, srv, nil)
	body := msg("x")
	b.ResetTimer()
	for b.Loop() {
		if err := c.Send(context.Background(), "a@shop.example", []string{"b@example.com"}, body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
