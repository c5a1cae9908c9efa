// Package smtpfallback sends mail over SMTP with github.com/emersion/go-smtp:
// Shoptrail's fallback when Amazon SES is not configured or keeps failing.
// It keeps a few connections open between messages, and tells permanent
// failures (5xx) from temporary ones (4xx, network) so that the caller can
// retry only what may succeed. It depends on no other Shoptrail package.
package smtpfallback

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TLS modes.
const (
	StartTLS = "starttls" // plain connection upgraded with STARTTLS (port 587)
	TLS      = "tls"      // TLS from the first byte (port 465)
	None     = "none"     // no encryption: loopback servers only
)

// Config says where and how to send.
type Config struct {
	Host     string
	Port     int
	Username string // "" sends without AUTH
	Password string
	TLS      string // StartTLS, TLS or None
	// TLSConfig verifies the server (nil: the system's roots, ServerName
	// Host). Tests pass one that trusts their self-signed certificate.
	TLSConfig *tls.Config
	Timeout   time.Duration // per connection attempt and command; 0: 30 s
	LocalName string        // the EHLO name; "" : localhost
	MaxIdle   int           // connections kept open between messages; 0: 4
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Host == "" {
		return errors.New("smtpfallback: host is empty")
	}
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("smtpfallback: port %d is outside 1..65535", c.Port)
	}
	switch c.TLS {
	case StartTLS, TLS:
	case None:
		if !IsLoopback(c.Host) {
			return fmt.Errorf("smtpfallback: tls = \"none\" is allowed only for a loopback host, not %q", c.Host)
		}
	default:
		return fmt.Errorf("smtpfallback: tls %q is not starttls, tls or none", c.TLS)
	}
	return nil
}

// IsLoopback reports whether host names this machine.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Error is a failed send. Temporary errors (4xx replies, network trouble)
// may succeed later; others (5xx replies) will not.
type Error struct {
	Code      int // the SMTP reply code; 0 for a network or TLS error
	Message   string
	Temporary bool
	// Unsent is true when the failure happened before the message's data
	// was handed over: the server cannot have accepted it.
	Unsent bool
	Err    error
}

func (e *Error) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("smtp: %d %s", e.Code, e.Message)
	}
	return "smtp: " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Client sends messages. It is safe for concurrent use.
type Client struct {
	cfg  Config
	mu   sync.Mutex
	idle []*smtp.Client
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = 4
	}
	if cfg.LocalName == "" {
		cfg.LocalName = "localhost"
	}
	return &Client{cfg: cfg}, nil
}

// Send hands msg (a complete RFC 5322 message with CRLF line ends) to the
// server for the recipients. It returns nil once the server accepted the
// message, or an *Error.
func (c *Client) Send(ctx context.Context, from string, to []string, msg []byte) error {
	// a kept connection may have been closed by the server meanwhile: if it
	// fails before the data is sent, try once more on a new one
	for range 2 {
		sc, reused, err := c.conn(ctx)
		if err != nil {
			return err
		}
		stop := context.AfterFunc(ctx, func() { sc.Close() })
		err = send(sc, from, to, msg)
		interrupted := !stop()
		var se *Error
		errors.As(err, &se)
		if err == nil {
			c.release(sc)
			return nil
		}
		sc.Close()
		if interrupted {
			return &Error{Message: "cancelled: " + ctx.Err().Error(), Temporary: true, Unsent: se != nil && se.Unsent, Err: ctx.Err()}
		}
		if reused && se != nil && se.Unsent && se.Code == 0 {
			continue
		}
		return err
	}
	return &Error{Message: "the server closed the connection twice", Temporary: true, Unsent: true}
}

func send(sc *smtp.Client, from string, to []string, msg []byte) error {
	if err := sc.Mail(from, nil); err != nil {
		return classify(err, true)
	}
	for _, rcpt := range to {
		if err := sc.Rcpt(rcpt, nil); err != nil {
			return classify(err, true)
		}
	}
	w, err := sc.Data()
	if err != nil {
		return classify(err, true)
	}
	if _, err := w.Write(msg); err != nil {
		return classify(err, false)
	}
	return classify(w.Close(), false)
}

// classify turns a go-smtp error into an *Error.
func classify(err error, unsent bool) error {
	if err == nil {
		return nil
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return &Error{Code: se.Code, Message: se.Message, Temporary: se.Code < 500, Unsent: unsent || se.Code >= 400, Err: err}
	}
	return &Error{Message: err.Error(), Temporary: true, Unsent: unsent, Err: err}
}

// conn returns a kept connection or a new one.
func (c *Client) conn(ctx context.Context) (sc *smtp.Client, reused bool, err error) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		sc = c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return sc, true, nil
	}
	c.mu.Unlock()
	sc, err = c.dial(ctx)
	return sc, false, err
}

func (c *Client) release(sc *smtp.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idle) >= c.cfg.MaxIdle {
		sc.Quit()
		return
	}
	c.idle = append(c.idle, sc)
}

func (c *Client) tlsConfig() *tls.Config {
	tc := &tls.Config{}
	if c.cfg.TLSConfig != nil {
		tc = c.cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = c.cfg.Host
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	return tc
}

func (c *Client) dial(ctx context.Context) (*smtp.Client, error) {
	addr := net.JoinHostPort(c.cfg.Host, strconv.Itoa(c.cfg.Port))
	dctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	d := &net.Dialer{}
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, &Error{Message: "connect " + addr + ": " + err.Error(), Temporary: true, Unsent: true, Err: err}
	}
	// the greeting, EHLO, STARTTLS and AUTH must finish within the timeout
	conn.SetDeadline(time.Now().Add(c.cfg.Timeout))
	fail := func(err error) (*smtp.Client, error) {
		conn.Close()
		e := classify(err, true).(*Error)
		e.Message = "session with " + addr + ": " + e.Message
		return nil, e
	}
	var sc *smtp.Client
	switch c.cfg.TLS {
	case TLS:
		tc := tls.Client(conn, c.tlsConfig())
		if err := tc.HandshakeContext(dctx); err != nil {
			return fail(err)
		}
		sc = smtp.NewClient(tc)
	case StartTLS:
		if sc, err = smtp.NewClientStartTLS(conn, c.tlsConfig()); err != nil {
			return fail(err)
		}
	default:
		sc = smtp.NewClient(conn)
	}
	sc.CommandTimeout, sc.SubmissionTimeout = c.cfg.Timeout, 2*c.cfg.Timeout
	if err := sc.Hello(c.cfg.LocalName); err != nil {
		sc.Close()
		return fail(err)
	}
	if c.cfg.Username != "" {
		if ok, _ := sc.Extension("AUTH"); !ok {
			sc.Close()
			return nil, &Error{Message: addr + " does not offer AUTH, but a username is configured", Unsent: true}
		}
		if err := sc.Auth(sasl.NewPlainClient("", c.cfg.Username, c.cfg.Password)); err != nil {
			sc.Close()
			return fail(err)
		}
	}
	conn.SetDeadline(time.Time{})
	return sc, nil
}

// Close closes the kept connections.
func (c *Client) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, sc := range idle {
		sc.Quit()
	}
	return nil
}

// Probe connects, greets and authenticates, and hangs up: a check of the
// settings that sends nothing.
func (c *Client) Probe(ctx context.Context) error {
	sc, err := c.dial(ctx)
	if err != nil {
		return err
	}
	return sc.Quit()
}
