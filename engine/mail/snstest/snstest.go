// Package snstest plays Amazon SNS for tests: it signs messages with a
// real RSA key (SignatureVersion 1 or 2), serves the signing certificate
// and the subscription-confirmation URL over HTTPS under the real host
// name sns.<region>.amazonaws.com, and gives the http.Client that reaches
// that server (a dialer to 127.0.0.1 and a root that trusts its TLS
// certificate). The code under test keeps its host pinning unchanged.
package snstest

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"
)

// SNS is a fake SNS.
type SNS struct {
	Region, Topic string
	Host          string // sns.<region>.amazonaws.com
	CertURL       string
	Key           *rsa.PrivateKey
	CertPEM       []byte
	Client        *http.Client // reaches the fake under Host
	srv           *httptest.Server
	n             atomic.Int64

	mu        sync.Mutex
	confirmed []string // tokens confirmed
	fetches   int
}

// New starts a fake SNS for topic (an ARN in region).
func New(region, topic string) (*SNS, error) {
	s := &SNS{Region: region, Topic: topic, Host: "sns." + region + ".amazonaws.com"}
	var err error
	if s.Key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	signing := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: s.Host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, signing, signing, &s.Key.PublicKey, s.Key)
	if err != nil {
		return nil, err
	}
	s.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	s.CertURL = "https://" + s.Host + "/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"

	// the HTTPS server's own certificate, for the SNS host name
	tlsKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tlsTmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: s.Host}, DNSNames: []string{s.Host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	tlsDER, err := x509.CreateCertificate(rand.Reader, tlsTmpl, tlsTmpl, &tlsKey.PublicKey, tlsKey)
	if err != nil {
		return nil, err
	}
	tlsCert, _ := x509.ParseCertificate(tlsDER)
	pool := x509.NewCertPool()
	pool.AddCert(tlsCert)

	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{tlsDER}, PrivateKey: tlsKey}}}
	s.srv.StartTLS()
	addr := s.srv.Listener.Addr().String()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	s.Client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr) // every host resolves to the fake
		},
	}}
	return s, nil
}

// Close stops the fake.
func (s *SNS) Close() { s.srv.Close() }

// Confirmed returns the tokens of confirmed subscriptions.
func (s *SNS) Confirmed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.confirmed...)
}

// CertFetches is how often the certificate was fetched.
func (s *SNS) CertFetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

func (s *SNS) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/" && r.URL.Query().Get("Action") == "ConfirmSubscription":
		s.mu.Lock()
		s.confirmed = append(s.confirmed, r.URL.Query().Get("Token"))
		s.mu.Unlock()
		fmt.Fprint(w, "<ConfirmSubscriptionResponse/>")
	case r.URL.Path == "/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem":
		s.mu.Lock()
		s.fetches++
		s.mu.Unlock()
		w.Write(s.CertPEM)
	default:
		http.NotFound(w, r)
	}
}

// Message is an SNS message before it is encoded.
type Message map[string]string

// Notification returns a signed Notification carrying message (JSON-encoded
// when it is not a string), version "2" unless changed with Sign.
func (s *SNS) Notification(message any) Message {
	body, ok := message.(string)
	if !ok {
		b, _ := json.Marshal(message)
		body = string(b)
	}
	m := Message{"Type": "Notification", "MessageId": fmt.Sprintf("22b80b92-fdea-4c2c-8f9d-%012d", s.n.Add(1)), "TopicArn": s.Topic,
		"Message": body, "Timestamp": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), "UnsubscribeURL": "https://" + s.Host + "/?Action=Unsubscribe"}
	s.Sign(m, "2")
	return m
}

// Confirmation returns a signed SubscriptionConfirmation.
func (s *SNS) Confirmation(token string) Message {
	m := Message{"Type": "SubscriptionConfirmation", "MessageId": fmt.Sprintf("165545c9-2a5c-472c-8df2-%012d", s.n.Add(1)), "TopicArn": s.Topic,
		"Token": token, "Message": "You have chosen to subscribe to the topic " + s.Topic,
		"SubscribeURL": "https://" + s.Host + "/?Action=ConfirmSubscription&TopicArn=" + s.Topic + "&Token=" + token,
		"Timestamp":    time.Now().UTC().Format("2006-01-02T15:04:05.000Z")}
	s.Sign(m, "2")
	return m
}

// Sign (re)signs m with SignatureVersion version ("1": SHA1, "2": SHA256),
// pointing SigningCertURL at the fake's certificate unless m has one.
func (s *SNS) Sign(m Message, version string) {
	m["SignatureVersion"] = version
	if m["SigningCertURL"] == "" {
		m["SigningCertURL"] = s.CertURL
	}
	var keys []string
	if m["Type"] == "Notification" {
		keys = []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}
	} else {
		keys = []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}
	}
	var str string
	for _, k := range keys {
		if v, ok := m[k]; ok && !(k == "Subject" && v == "") {
			str += k + "\n" + v + "\n"
		}
	}
	var sig []byte
	if version == "1" {
		d := sha1.Sum([]byte(str))
		sig, _ = rsa.SignPKCS1v15(rand.Reader, s.Key, crypto.SHA1, d[:])
	} else {
		d := sha256.Sum256([]byte(str))
		sig, _ = rsa.SignPKCS1v15(rand.Reader, s.Key, crypto.SHA256, d[:])
	}
	m["Signature"] = base64.StdEncoding.EncodeToString(sig)
}

// JSON encodes m as SNS posts it.
func (m Message) JSON() []byte {
	b, _ := json.Marshal(map[string]string(m))
	return b
}
