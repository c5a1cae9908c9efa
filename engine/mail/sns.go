package mail

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrForbidden wraps every reason an SNS message is refused: it is not
// (provably) from Amazon SNS for an expected topic.
var ErrForbidden = errors.New("sns: refused")

// Envelope is an SNS HTTP(S) message.
type Envelope struct {
	Type             string
	MessageId        string
	Token            string
	TopicArn         string
	Subject          string
	Message          string
	SubscribeURL     string
	Timestamp        string
	SignatureVersion string
	Signature        string
	SigningCertURL   string
	UnsubscribeURL   string
}

// Verifier checks SNS messages as reliability-checklist.md §3 asks: the
// certificate URL pinned to https://sns.<the topic's region>.amazonaws.com
// (.com.cn in China) with a SimpleNotificationService-*.pem path, no
// userinfo, port or query; SignatureVersion 2 (SHA256withRSA), 1 (SHA1) only
// when AllowV1; the expected topics only; a timestamp no older than an hour
// nor more than 5 minutes ahead. Certificates are fetched with a timeout,
// no redirects and a size cap, and cached per URL. There is no switch that
// turns the pinning off: tests serve their certificate under the real host
// name through the Client's transport.
type Verifier struct {
	Topics  []string
	AllowV1 bool
	Client  *http.Client
	Now     func() time.Time

	mu    sync.Mutex
	certs map[string]*x509.Certificate
}

const (
	maxCertBytes = 16 << 10
	maxCerts     = 32
)

var (
	regionRe   = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]$`)
	certPathRe = regexp.MustCompile(`^/SimpleNotificationService-[A-Za-z0-9]+\.pem$`)
)

func forbidden(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrForbidden, fmt.Sprintf(format, args...))
}

// Verify decodes body and checks it is a genuine SNS message for an
// expected topic.
func (v *Verifier) Verify(ctx context.Context, body []byte) (*Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, forbidden("not an SNS message: %v", err)
	}
	switch e.Type {
	case "Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation":
	default:
		return nil, forbidden("unknown Type %q", e.Type)
	}
	if e.MessageId == "" || len(e.MessageId) > 100 {
		return nil, forbidden("no MessageId")
	}
	if len(v.Topics) == 0 {
		return nil, forbidden("no SNS topic is configured ([email.sns] topic_arns)")
	}
	if !slices.Contains(v.Topics, e.TopicArn) {
		return nil, forbidden("unexpected TopicArn %q", e.TopicArn)
	}
	region := topicRegion(e.TopicArn)
	var hash crypto.Hash
	switch e.SignatureVersion {
	case "2":
		hash = crypto.SHA256
	case "1":
		if !v.AllowV1 {
			return nil, forbidden("SignatureVersion 1 (SHA1) is not accepted ([email.sns] signature_v1)")
		}
		hash = crypto.SHA1
	default:
		return nil, forbidden("unknown SignatureVersion %q", e.SignatureVersion)
	}
	ts, err := time.Parse(time.RFC3339, e.Timestamp)
	if err != nil {
		return nil, forbidden("bad Timestamp %q", e.Timestamp)
	}
	now := v.now()
	if now.Sub(ts) > time.Hour || ts.Sub(now) > 5*time.Minute {
		return nil, forbidden("Timestamp %s is more than an hour old or in the future", e.Timestamp)
	}
	if err := pinned(e.SigningCertURL, region, true); err != nil {
		return nil, forbidden("SigningCertURL: %v", err)
	}
	sig, err := base64.StdEncoding.DecodeString(e.Signature)
	if err != nil || len(sig) == 0 {
		return nil, forbidden("Signature is not base64")
	}
	cert, err := v.cert(ctx, e.SigningCertURL)
	if err != nil {
		return nil, forbidden("certificate: %v", err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, forbidden("the certificate's key is not RSA")
	}
	var digest []byte
	if hash == crypto.SHA256 {
		d := sha256.Sum256(stringToSign(&e))
		digest = d[:]
	} else {
		d := sha1.Sum(stringToSign(&e))
		digest = d[:]
	}
	if err := rsa.VerifyPKCS1v15(pub, hash, digest, sig); err != nil {
		return nil, forbidden("the signature does not match")
	}
	return &e, nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// topicRegion is the region of an SNS topic ARN (checked by config).
func topicRegion(arn string) string {
	parts := strings.Split(arn, ":")
	if len(parts) < 6 {
		return ""
	}
	return parts[3]
}

// pinned checks that raw is an https URL on sns.<region>.amazonaws.com:
// for a certificate, a SimpleNotificationService-*.pem path with no query.
func pinned(raw, region string, cert bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", raw)
	}
	host := "sns." + region + ".amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		host += ".cn"
	}
	switch {
	case !regionRe.MatchString(region):
		return fmt.Errorf("no region in the topic")
	case u.Scheme != "https":
		return fmt.Errorf("%q is not https", raw)
	case u.User != nil:
		return fmt.Errorf("%q has userinfo", raw)
	case u.Host != host: // no port, no other host, no lookalike
		return fmt.Errorf("host %q is not %s", u.Host, host)
	case u.Fragment != "" || u.Opaque != "":
		return fmt.Errorf("%q has a fragment", raw)
	case cert && (u.RawQuery != "" || !certPathRe.MatchString(u.Path)):
		return fmt.Errorf("path %q is not /SimpleNotificationService-*.pem", u.Path)
	}
	return nil
}

// stringToSign builds the canonical string of an SNS message, from the
// unescaped values.
func stringToSign(e *Envelope) []byte {
	var b strings.Builder
	add := func(k, v string) { b.WriteString(k + "\n" + v + "\n") }
	add("Message", e.Message)
	add("MessageId", e.MessageId)
	if e.Type == "Notification" {
		if e.Subject != "" {
			add("Subject", e.Subject)
		}
	} else {
		add("SubscribeURL", e.SubscribeURL)
	}
	add("Timestamp", e.Timestamp)
	if e.Type != "Notification" {
		add("Token", e.Token)
	}
	add("TopicArn", e.TopicArn)
	add("Type", e.Type)
	return []byte(b.String())
}

// client is v.Client without redirects.
func (v *Verifier) client() *http.Client {
	c := *v.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	return &c
}

func (v *Verifier) cert(ctx context.Context, certURL string) (*x509.Certificate, error) {
	v.mu.Lock()
	c := v.certs[certURL]
	v.mu.Unlock()
	if c != nil && v.now().Before(c.NotAfter) {
		return c, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", certURL, nil)
	resp, err := v.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching it answered %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCertBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxCertBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxCertBytes)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	c, err = x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	if now := v.now(); now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return nil, errors.New("the certificate is not valid now")
	}
	v.mu.Lock()
	if v.certs == nil || len(v.certs) >= maxCerts {
		v.certs = map[string]*x509.Certificate{}
	}
	v.certs[certURL] = c
	v.mu.Unlock()
	return c, nil
}

// Confirm visits the SubscribeURL of a verified SubscriptionConfirmation,
// pinned like the certificate URL (it would otherwise be an SSRF vector).
func (v *Verifier) Confirm(ctx context.Context, e *Envelope) error {
	if err := pinned(e.SubscribeURL, topicRegion(e.TopicArn), false); err != nil {
		return forbidden("SubscribeURL: %v", err)
	}
	u, _ := url.Parse(e.SubscribeURL)
	if u.Query().Get("Action") != "ConfirmSubscription" {
		return forbidden("SubscribeURL is not a ConfirmSubscription call")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.SubscribeURL, nil)
	resp, err := v.client().Do(req)
	if err != nil {
		return fmt.Errorf("sns: confirming the subscription: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sns: confirming the subscription answered %s", resp.Status)
	}
	return nil
}
