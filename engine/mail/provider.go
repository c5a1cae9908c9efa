package mail

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/shoptrail/shoptrail/smtpfallback"
)

// httpDoer is the HTTP client of the SES SDK.
type httpDoer = *http.Client

type providers struct {
	ses  *sesProvider
	smtp *smtpProvider
}

// buildProviders makes the configured providers. A bad SMTP setting is
// reported, not fatal: SES may still send.
func buildProviders(s Settings, sesHTTP httpDoer) (providers, string) {
	var p providers
	var problem string
	if s.SES.Region != "" {
		p.ses = newSES(s.SES, sesHTTP)
	}
	if s.SMTP.Host != "" {
		c, err := smtpfallback.New(smtpfallback.Config{Host: s.SMTP.Host, Port: s.SMTP.Port, Username: s.SMTP.Username,
			Password: s.SMTP.Password, TLS: s.SMTP.TLS, TLSConfig: s.SMTP.tlsConfig, Timeout: 30 * time.Second})
		if err != nil {
			problem = err.Error()
		} else {
			p.smtp = &smtpProvider{c: c}
		}
	}
	return p, problem
}

// ---- SES ----

type sesProvider struct {
	client    *sesv2.Client
	configSet string
}

func newSES(s SESSettings, httpClient httpDoer) *sesProvider {
	o := sesv2.Options{
		Region: s.Region,
		// the queue retries, paces and falls back itself: an SDK retry
		// would hide throttling and send faster than the pace
		Retryer: aws.NopRetryer{},
	}
	if s.AccessKeyID != "" {
		o.Credentials = credentials.NewStaticCredentialsProvider(s.AccessKeyID, s.SecretAccessKey, "")
	} else {
		// the AWS default chain: environment, shared files, instance role;
		// resolved when a request needs it
		o.Credentials = aws.NewCredentialsCache(lazyDefaultCredentials{region: s.Region})
	}
	if s.Endpoint != "" {
		o.BaseEndpoint = aws.String(s.Endpoint)
	}
	if httpClient != nil {
		o.HTTPClient = httpClient
	}
	return &sesProvider{client: sesv2.New(o), configSet: s.ConfigurationSet}
}

type lazyDefaultCredentials struct{ region string }

func (l lazyDefaultCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(l.region))
	if err != nil {
		return aws.Credentials{}, err
	}
	if cfg.Credentials == nil {
		return aws.Credentials{}, errors.New("no AWS credentials: set [email.ses] access_key_id and secret_access_key")
	}
	return cfg.Credentials.Retrieve(ctx)
}

// tagValue keeps what SES allows in a tag: ASCII letters, digits, _ and -.
var tagUnsafe = regexp.MustCompile(`[^A-Za-z0-9_-]`)

func tagValue(s string) string {
	s = tagUnsafe.ReplaceAllString(s, "_")
	if len(s) > 256 {
		s = s[:256]
	}
	return s
}

// Tags on every message sent through SES; its events carry them back.
const (
	tagMessage    = "shoptrail_message"
	tagCampaign   = "shoptrail_campaign"
	tagAutomation = "shoptrail_automation"
	tagProfile    = "shoptrail_profile"
)

func (p *sesProvider) send(ctx context.Context, r *Record, s Settings, raw []byte) (string, error) {
	in := &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(s.From),
		Destination:      &types.Destination{ToAddresses: []string{r.To}},
		Content:          &types.EmailContent{Raw: &types.RawMessage{Data: raw}},
		EmailTags: []types.MessageTag{{Name: aws.String(tagMessage), Value: aws.String(r.ID)},
			{Name: aws.String(tagProfile), Value: aws.String(tagValue(r.ProfileID()))}},
	}
	if s.ReplyTo != "" {
		in.ReplyToAddresses = []string{s.ReplyTo}
	}
	if p.configSet != "" {
		in.ConfigurationSetName = aws.String(p.configSet)
	}
	if r.Campaign != "" {
		in.EmailTags = append(in.EmailTags, types.MessageTag{Name: aws.String(tagCampaign), Value: aws.String(tagValue(r.Campaign))})
	}
	if r.Automation != "" {
		in.EmailTags = append(in.EmailTags, types.MessageTag{Name: aws.String(tagAutomation), Value: aws.String(tagValue(r.Automation))})
	}
	out, err := p.client.SendEmail(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.MessageId), nil
}

// Account is SES's sending account (GetAccount).
type Account struct {
	MaxSendRate       float64
	Max24HourSend     float64
	SentLast24Hours   float64
	SendingEnabled    bool
	ProductionAccess  bool
	EnforcementStatus string
	CheckedAt         time.Time
}

func (p *sesProvider) account(ctx context.Context) (*Account, error) {
	out, err := p.client.GetAccount(ctx, &sesv2.GetAccountInput{})
	if err != nil {
		return nil, err
	}
	a := &Account{SendingEnabled: out.SendingEnabled, ProductionAccess: out.ProductionAccessEnabled,
		EnforcementStatus: aws.ToString(out.EnforcementStatus), CheckedAt: time.Now()}
	if q := out.SendQuota; q != nil {
		a.MaxSendRate, a.Max24HourSend, a.SentLast24Hours = q.MaxSendRate, q.Max24HourSend, q.SentLast24Hours
	}
	return a, nil
}

// Kinds of SES failure, and what the queue does about each.
const (
	KindTransient = "transient" // 5xx, network: retry with backoff, then SMTP
	KindThrottled = "throttled" // 429, rate exceeded: slow down and retry
	KindQuota     = "quota"     // 429, the 24-hour quota is spent: wait for the window
	KindPaused    = "paused"    // SendingPausedException: stop the queue
	KindSuspended = "suspended" // AccountSuspendedException: stop the queue
	KindPermanent = "permanent" // MessageRejected, unverified sender...: fail the message
)

// SESError is a classified SES failure.
type SESError struct {
	Kind string
	Code string // the exception's name
	Msg  string
	Err  error
}

func (e *SESError) Error() string { return "SES " + e.Code + ": " + e.Msg }
func (e *SESError) Unwrap() error { return e.Err }

func classifySES(err error) *SESError {
	e := &SESError{Kind: KindTransient, Code: "error", Msg: err.Error(), Err: err}
	var api smithy.APIError
	if errors.As(err, &api) {
		e.Code, e.Msg = api.ErrorCode(), api.ErrorMessage()
	}
	var (
		tooMany   *types.TooManyRequestsException
		paused    *types.SendingPausedException
		suspended *types.AccountSuspendedException
		rejected  *types.MessageRejected
		bad       *types.BadRequestException
		unverif   *types.MailFromDomainNotVerifiedException
		notFound  *types.NotFoundException
		limit     *types.LimitExceededException
		resp      *smithyhttp.ResponseError
	)
	switch {
	case errors.As(err, &tooMany):
		if strings.Contains(strings.ToLower(e.Msg), "daily") || strings.Contains(strings.ToLower(e.Msg), "quota") {
			e.Kind = KindQuota
		} else {
			e.Kind = KindThrottled
		}
	case errors.As(err, &paused):
		e.Kind = KindPaused
	case errors.As(err, &suspended):
		e.Kind = KindSuspended
	case errors.As(err, &rejected), errors.As(err, &bad), errors.As(err, &unverif), errors.As(err, &notFound), errors.As(err, &limit):
		e.Kind = KindPermanent
	case errors.As(err, &resp) && resp.HTTPStatusCode() == http.StatusTooManyRequests:
		e.Kind = KindThrottled
	case errors.As(err, &resp) && resp.HTTPStatusCode() >= 400 && resp.HTTPStatusCode() < 500 && resp.HTTPStatusCode() != http.StatusRequestTimeout:
		// a 4xx the SDK has no type for: the request itself is wrong
		// (credentials, signature); retrying cannot help this message
		e.Kind = KindPermanent
		if resp.HTTPStatusCode() == http.StatusForbidden || resp.HTTPStatusCode() == http.StatusUnauthorized {
			e.Kind = KindTransient // credentials can be fixed; SMTP may still send meanwhile
		}
	}
	return e
}

// refreshAccount reads SES's account now and every 10 minutes: its
// MaxSendRate paces the queue and its quota holds it.
func (q *queue) refreshAccount(ctx context.Context) {
	for {
		p := q.providers()
		if p.ses != nil {
			actx, cancel := context.WithTimeout(ctx, 15*time.Second)
			a, err := p.ses.account(actx)
			cancel()
			q.provMu.Lock()
			if q.prov.ses == p.ses {
				if err != nil {
					q.accErr = classifySES(err).Error()
				} else {
					q.account, q.accErr = a, ""
				}
			}
			q.provMu.Unlock()
			if err == nil {
				q.pace.setAccount(a.MaxSendRate)
				if a.Max24HourSend > 0 && a.SentLast24Hours >= a.Max24HourSend {
					q.mu.Lock()
					q.holdTill = q.m.now().Add(10 * time.Minute)
					q.mu.Unlock()
				}
			} else if ctx.Err() == nil {
				q.m.log.Warn("SES GetAccount failed", "err", classifySES(err).Error())
			}
		} else {
			q.pace.setAccount(0)
		}
		t := time.NewTimer(10 * time.Minute)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-q.refreshNow():
			t.Stop()
		}
	}
}

// refreshNow is closed when the settings change.
func (q *queue) refreshNow() <-chan struct{} {
	q.provMu.Lock()
	defer q.provMu.Unlock()
	if q.refresh == nil {
		q.refresh = make(chan struct{})
	}
	return q.refresh
}

func (q *queue) refreshAccountSoon() {
	q.provMu.Lock()
	defer q.provMu.Unlock()
	if q.refresh != nil {
		close(q.refresh)
		q.refresh = nil
	}
}

// Account reads SES's account now (Settings → Email shows it).
func (m *Mailer) Account(ctx context.Context) (*Account, error) {
	p := m.q.providers()
	if p.ses == nil {
		return nil, errors.New("SES is not configured")
	}
	a, err := p.ses.account(ctx)
	if err != nil {
		return nil, classifySES(err)
	}
	return a, nil
}

// ---- SMTP ----

type smtpProvider struct{ c *smtpfallback.Client }

func (p *smtpProvider) send(ctx context.Context, from, to string, raw []byte) error {
	return p.c.Send(ctx, from, []string{to}, raw)
}

func (p *smtpProvider) close() { p.c.Close() }

func smtpOutcome(r *Record, err error, retryAt time.Time) outcome {
	o := outcome{provider: ProviderSMTP}
	if err == nil {
		o.state = Sent
		return o
	}
	o.err = err.Error()
	var se *smtpfallback.Error
	switch {
	case errors.As(err, &se) && !se.Temporary:
		o.state = Failed
	case errors.As(err, &se) && !se.Unsent && se.Code == 0:
		// the connection broke after the message was handed over: the
		// server may have accepted it; sending again could duplicate it
		o.state, o.err = Uncertain, "the connection to the SMTP server broke after the message was handed over: "+o.err
	default:
		o.state, o.retryAt = Queued, retryAt
	}
	return o
}

// ---- pacing ----

// pacer spaces attempts at a rate: [email] max_rate, or SES's MaxSendRate;
// a throttle halves it, and it recovers by a tenth every 10 s without one.
type pacer struct {
	mu        sync.Mutex
	now       func() time.Time
	base      float64 // [email] max_rate; 0: the account's
	acct      float64 // SES's MaxSendRate; 0: none
	factor    float64 // 1, less after throttling
	next      time.Time
	lastThrot time.Time
	lastRaise time.Time
}

func (p *pacer) rateLocked() float64 {
	r := p.base
	if r == 0 {
		r = p.acct
	}
	if p.factor == 0 {
		p.factor = 1
	}
	return r * p.factor
}

func (p *pacer) current() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rateLocked()
}

func (p *pacer) setBase(r float64) {
	p.mu.Lock()
	p.base = r
	p.mu.Unlock()
}

func (p *pacer) setAccount(r float64) {
	p.mu.Lock()
	p.acct = r
	p.mu.Unlock()
}

// wait blocks until the next slot.
func (p *pacer) wait(ctx context.Context) error {
	p.mu.Lock()
	rate := p.rateLocked()
	if rate <= 0 {
		p.mu.Unlock()
		return ctx.Err()
	}
	now := p.now()
	interval := time.Duration(float64(time.Second) / rate)
	// after an idle spell the pace restarts now, with no burst of
	// saved-up slots
	slot := p.next
	if slot.Before(now) {
		slot = now
	}
	p.next = slot.Add(interval)
	p.mu.Unlock()
	if d := slot.Sub(now); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return ctx.Err()
}

// giveBack returns the last slot when nothing was there to send.
func (p *pacer) giveBack() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if rate := p.rateLocked(); rate > 0 && p.next.After(p.now()) {
		p.next = p.next.Add(-time.Duration(float64(time.Second) / rate))
	}
}

func (p *pacer) throttled() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rateLocked()
	p.factor = max(p.factor/2, 0.05)
	p.lastThrot = p.now()
}

func (p *pacer) ok() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.factor > 0 && p.factor < 1 && now.Sub(p.lastThrot) > 10*time.Second && now.Sub(p.lastRaise) > 10*time.Second {
		p.factor = min(1, p.factor*1.1)
		p.lastRaise = now
	}
}
