// Package smtptest runs a real SMTP server (go-smtp's server side) on
// 127.0.0.1 for tests: STARTTLS with a self-signed certificate, AUTH PLAIN,
// every accepted message kept, and faults on demand.
package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one accepted message.
type Message struct {
	From string
	To   []string
	Data []byte
	Auth string // the username it was sent under
}

// Server is a running SMTP server.
type Server struct {
	Host string
	Port int
	// RootCAs trusts the server's certificate (for STARTTLS).
	RootCAs *tls.Config
	srv     *smtp.Server
	user    string
	pass    string

	mu       sync.Mutex
	messages []Message
	faults   []error // answers to the next DATA commands, in order
	notify   chan struct{}
	delay    time.Duration
}

// Options configure Start.
type Options struct {
	TLS      bool   // offer STARTTLS with a self-signed certificate for 127.0.0.1
	Username string // require AUTH PLAIN with these credentials
	Password string
}

// Start runs a server until Close.
func Start(o Options) (*Server, error) {
	s := &Server{user: o.Username, pass: o.Password, notify: make(chan struct{}, 1)}
	be := smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil })
	s.srv = smtp.NewServer(be)
	s.srv.Domain = "localhost"
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.ReadTimeout, s.srv.WriteTimeout = 30*time.Second, 30*time.Second
	s.srv.MaxMessageBytes = 10 << 20
	s.srv.MaxRecipients = 50
	s.srv.AllowInsecureAuth = !o.TLS
	if o.TLS {
		cert, pool, err := selfSigned()
		if err != nil {
			return nil, err
		}
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		s.RootCAs = &tls.Config{RootCAs: pool}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().(*net.TCPAddr)
	s.Host, s.Port = "127.0.0.1", addr.Port
	go s.srv.Serve(ln)
	return s, nil
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

// Fail makes the next DATA commands fail with these errors (e.g.
// &smtp.SMTPError{Code: 451, Message: "try later"}), one each.
func (s *Server) Fail(errs ...error) {
	s.mu.Lock()
	s.faults = append(s.faults, errs...)
	s.mu.Unlock()
}

// Delay makes the server wait this long before accepting each message.
func (s *Server) Delay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// Messages returns the accepted messages.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Wait waits until n messages were accepted, at most d; it returns them.
func (s *Server) Wait(n int, d time.Duration) ([]Message, error) {
	deadline := time.After(d)
	for {
		if m := s.Messages(); len(m) >= n {
			return m, nil
		}
		select {
		case <-s.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			return s.Messages(), errors.New("smtptest: timeout waiting for messages")
		}
	}
}

type session struct {
	s    *Server
	msg  Message
	auth string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != ss.s.user || password != ss.s.pass {
			return smtp.ErrAuthFailed
		}
		ss.auth = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && ss.auth == "" {
		return smtp.ErrAuthRequired
	}
	ss.msg = Message{From: from, Auth: ss.auth}
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.msg.To = append(ss.msg.To, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := ss.s
	s.mu.Lock()
	delay := s.delay
	var fault error
	if len(s.faults) > 0 {
		fault, s.faults = s.faults[0], s.faults[1:]
	}
	s.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if fault != nil {
		return fault
	}
	ss.msg.Data = b
	s.mu.Lock()
	s.messages = append(s.messages, ss.msg)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return nil
}

func (ss *session) Reset()        { ss.msg = Message{} }
func (ss *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and localhost, and a pool
// that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool, nil
}
