// Package sestest is an in-process fake of the Amazon SES v2 REST routes
// Shoptrail calls (SendEmail, GetAccount), for tests that drive the real AWS
// SDK over HTTP: it checks each request the SDK sends (path, JSON body,
// SigV4 headers), keeps the messages, and injects faults on demand.
package sestest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Sent is one SendEmail request the fake accepted.
type Sent struct {
	MessageID        string
	From             string
	To               []string
	ReplyTo          []string
	Raw              []byte
	ConfigurationSet string
	Tags             map[string]string
	At               time.Time
	Body             []byte      // the JSON the SDK sent
	Header           http.Header // its headers
}

// Fault is the answer to one SendEmail request instead of success.
type Fault struct {
	Status  int    // e.g. 429
	Type    string // the __type: TooManyRequestsException, MessageRejected...
	Message string
	Delay   time.Duration // wait before answering (a slow SES)
}

// Common faults.
var (
	Throttle      = Fault{Status: 429, Type: "TooManyRequestsException", Message: "Maximum sending rate exceeded."}
	DailyQuota    = Fault{Status: 429, Type: "TooManyRequestsException", Message: "Daily message quota exceeded."}
	Rejected      = Fault{Status: 400, Type: "MessageRejected", Message: "Email address is not verified."}
	Paused        = Fault{Status: 400, Type: "SendingPausedException", Message: "Sending is paused for this account."}
	Suspended     = Fault{Status: 400, Type: "AccountSuspendedException", Message: "The account is suspended."}
	Unavailable   = Fault{Status: 503, Type: "InternalServiceErrorException", Message: "Service unavailable."}
	NotVerified   = Fault{Status: 400, Type: "MailFromDomainNotVerifiedException", Message: "MAIL FROM domain not verified."}
	InternalError = Fault{Status: 500, Type: "InternalFailure", Message: "internal error"}
)

// Server is the fake.
type Server struct {
	*httptest.Server
	AccessKeyID string // the key requests must be signed with
	Secret      string
	Region      string

	mu       sync.Mutex
	sent     []Sent
	faults   []Fault
	always   *Fault
	account  map[string]any
	problems []string // requests that were not what the SDK should send
	n        int
	delay    time.Duration
}

// New starts a fake that expects requests signed with the key
// (accessKeyID, secret) for region.
func New(accessKeyID, secret, region string) *Server {
	s := &Server{AccessKeyID: accessKeyID, Secret: secret, Region: region}
	s.SetAccount(14, 50000, 0, true)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// SetAccount sets what GetAccount answers.
func (s *Server) SetAccount(maxSendRate, max24h, sent24h float64, enabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.account = map[string]any{
		"SendQuota":               map[string]any{"Max24HourSend": max24h, "MaxSendRate": maxSendRate, "SentLast24Hours": sent24h},
		"SendingEnabled":          enabled,
		"ProductionAccessEnabled": true,
		"EnforcementStatus":       "HEALTHY",
	}
}

// Fail makes the next SendEmail requests answer these faults, one each.
func (s *Server) Fail(f ...Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, f...)
	s.mu.Unlock()
}

// FailAlways makes every SendEmail answer f (nil: stop).
func (s *Server) FailAlways(f *Fault) {
	s.mu.Lock()
	s.always = f
	s.mu.Unlock()
}

// Delay makes every answer wait d.
func (s *Server) Delay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// Sent returns the accepted messages.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// Problems lists requests that did not look like the SDK's.
func (s *Server) Problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.problems...)
}

// sigV4 is the shape of the SDK's Authorization header.
var sigV4 = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([a-z0-9-]+)/ses/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=[0-9a-f]{64}$`)

// check verifies a request's SigV4 signature: its shape, then the
// signature itself, recomputed with the SDK's signer over the headers the
// request says it signed and the body it carries.
func (s *Server) check(r *http.Request, body []byte) string {
	m := sigV4.FindStringSubmatch(r.Header.Get("Authorization"))
	switch {
	case m == nil:
		return "Authorization is not a SigV4 signature for ses: " + r.Header.Get("Authorization")
	case m[1] != s.AccessKeyID:
		return "signed with key " + m[1]
	case m[3] != s.Region:
		return "signed for region " + m[3]
	case !strings.Contains(m[4], "host") || !strings.Contains(m[4], "x-amz-date"):
		return "SignedHeaders lacks host or x-amz-date: " + m[4]
	case r.Header.Get("X-Amz-Date") == "" || !strings.HasPrefix(r.Header.Get("X-Amz-Date"), m[2]):
		return "X-Amz-Date does not match the credential scope"
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "X-Amz-Date: " + err.Error()
	}
	if d := time.Since(at); d > 5*time.Minute || d < -5*time.Minute {
		return "X-Amz-Date is more than 5 minutes off"
	}
	again, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	again.Header = http.Header{}
	for _, h := range strings.Split(m[4], ";") {
		switch h {
		case "host":
		case "content-length":
			again.ContentLength = r.ContentLength
		default:
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: s.AccessKeyID, SecretAccessKey: s.Secret}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, again, hex.EncodeToString(sum[:]), "ses", s.Region, at); err != nil {
		return "re-signing: " + err.Error()
	}
	if again.Header.Get("Authorization") != r.Header.Get("Authorization") {
		return "the signature does not match the request"
	}
	return ""
}

func (s *Server) problem(p string) {
	s.mu.Lock()
	s.problems = append(s.problems, p)
	s.mu.Unlock()
}

func writeErr(w http.ResponseWriter, f Fault) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", f.Type)
	w.WriteHeader(f.Status)
	json.NewEncoder(w).Encode(map[string]string{"__type": f.Type, "message": f.Message})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	delay := s.delay
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 50<<20))
	if err != nil {
		return
	}
	if p := s.check(r, body); p != "" {
		s.problem(r.Method + " " + r.URL.Path + ": " + p)
		writeErr(w, Fault{Status: 403, Type: "SignatureDoesNotMatch", Message: p})
		return
	}
	switch {
	case r.Method == "GET" && r.URL.Path == "/v2/email/account":
		s.mu.Lock()
		b, _ := json.Marshal(s.account)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	case r.Method == "POST" && r.URL.Path == "/v2/email/outbound-emails":
		s.sendEmail(w, r, body)
	default:
		s.problem("unexpected route " + r.Method + " " + r.URL.Path)
		writeErr(w, Fault{Status: 404, Type: "NotFoundException", Message: "no such route"})
	}
}

func (s *Server) sendEmail(w http.ResponseWriter, r *http.Request, body []byte) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		s.problem("SendEmail Content-Type " + ct)
	}
	var in struct {
		FromEmailAddress     string
		ReplyToAddresses     []string
		ConfigurationSetName string
		Destination          struct{ ToAddresses []string }
		Content              struct {
			Raw *struct{ Data []byte }
		}
		EmailTags []struct{ Name, Value string }
	}
	if err := json.Unmarshal(body, &in); err != nil {
		s.problem("SendEmail body: " + err.Error())
		writeErr(w, Fault{Status: 400, Type: "BadRequestException", Message: err.Error()})
		return
	}
	s.mu.Lock()
	var fault *Fault
	if len(s.faults) > 0 {
		fault = &s.faults[0]
		s.faults = s.faults[1:]
	} else if s.always != nil {
		fault = s.always
	}
	s.mu.Unlock()
	if fault != nil {
		if fault.Delay > 0 {
			select {
			case <-time.After(fault.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if fault.Status != 0 {
			writeErr(w, *fault)
			return
		}
	}
	if in.Content.Raw == nil || len(in.Content.Raw.Data) == 0 || len(in.Destination.ToAddresses) == 0 || in.FromEmailAddress == "" {
		writeErr(w, Fault{Status: 400, Type: "BadRequestException", Message: "Content.Raw, Destination and FromEmailAddress are required here"})
		return
	}
	tags := map[string]string{}
	for _, t := range in.EmailTags {
		tags[t.Name] = t.Value
	}
	s.mu.Lock()
	s.n++
	id := fmt.Sprintf("0102018f-fake-%08d-000000", s.n)
	s.sent = append(s.sent, Sent{MessageID: id, From: in.FromEmailAddress, To: in.Destination.ToAddresses, ReplyTo: in.ReplyToAddresses,
		Raw: in.Content.Raw.Data, ConfigurationSet: in.ConfigurationSetName, Tags: tags, At: time.Now(), Body: body, Header: r.Header.Clone()})
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"MessageId": id})
}
