// Package config holds every setting of Shoptrail, its defaults, and how they
// are loaded: Default() → config.toml → environment (SHOPTRAIL_SECTION_KEY) →
// flags, then Validate(), which reports every problem at once.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration. config.example.toml documents every
// field; a test keeps the two equal.
type Config struct {
	HTTP      HTTP      `toml:"http"`
	Storage   Storage   `toml:"storage"`
	Sites     Sites     `toml:"sites"`
	Tracking  Tracking  `toml:"tracking"`
	Ingest    Ingest    `toml:"ingest"`
	Demo      Demo      `toml:"demo"`
	Feed      Feed      `toml:"feed"`
	Reports   Reports   `toml:"reports"`
	Email     Email     `toml:"email"`
	Campaigns Campaigns `toml:"campaigns"`
	Backup    Backup    `toml:"backup"`
	Metrics   Metrics   `toml:"metrics"`
}

// Email configures sending mail: Amazon SES v2 first, SMTP as the
// fallback (and alone when SES is not configured). Settings → Email in the
// admin UI overrides these; config.example.toml explains each.
type Email struct {
	From      string `toml:"from"`       // "Northpeak <hello@shop.example>"; "" : email is off
	ReplyTo   string `toml:"reply_to"`   // "" : none
	PublicURL string `toml:"public_url"` // where links, pixels and unsubscribe point; "" : [http] public_url
	// Workers send in parallel; each may leave one message "uncertain" at a crash.
	Workers int `toml:"workers"`
	// MaxAttempts is the retry budget of a message on one provider.
	MaxAttempts int `toml:"max_attempts"`
	// MaxRate caps messages per second (0: SES's MaxSendRate; SMTP unpaced).
	MaxRate float64 `toml:"max_rate"`
	// MaxPerDay caps the marketing messages (campaigns, automations) one
	// person gets per UTC day (0: no cap).
	MaxPerDay int       `toml:"max_per_day"`
	SES       EmailSES  `toml:"ses"`
	SMTP      EmailSMTP `toml:"smtp"`
	SNS       EmailSNS  `toml:"sns"`
}

// EmailSES configures Amazon SES v2. SES is used when Region is set.
type EmailSES struct {
	Region           string `toml:"region"`
	AccessKeyID      string `toml:"access_key_id"` // "" : the AWS default credential chain
	SecretAccessKey  string `toml:"secret_access_key"`
	ConfigurationSet string `toml:"configuration_set"`
	Endpoint         string `toml:"endpoint"` // override, for tests
}

// EmailSMTP configures the SMTP fallback. It is used when Host is set.
type EmailSMTP struct {
	Host     string `toml:"host"`
	Port     int    `toml:"port"`
	Username string `toml:"username"`
	Password string `toml:"password"`
	TLS      string `toml:"tls"` // starttls | tls | none (loopback only)
}

// EmailSNS configures the SES event webhook (POST /webhooks/ses).
type EmailSNS struct {
	// TopicARNs are the SNS topics whose messages are accepted; others get 403.
	TopicARNs []string `toml:"topic_arns"`
	// SignatureV1 accepts SHA1 signatures too (SignatureVersion 1).
	SignatureV1 bool `toml:"signature_v1"`
}

// Backup configures scheduled backups (shoptrail backup takes one by hand).
type Backup struct {
	// Dir receives a full backup every Every; "" turns scheduled backups
	// off. The newest Keep files are kept.
	Dir   string   `toml:"dir"`
	Every Duration `toml:"every"`
	Keep  int      `toml:"keep"`
}

// Metrics configures /metrics on the admin listener.
type Metrics struct {
	// Token, when set, lets clients that are not on loopback read
	// /metrics with Authorization: Bearer <token>; without it only
	// loopback clients may.
	Token string `toml:"token"`
}

// Reports configures the reports.
type Reports struct {
	// Timezone is the IANA name of the zone whose days reports count in
	// (a period's from and to, the days of charts).
	Timezone string `toml:"timezone"`
}

// Location is the reports' time zone (UTC when Timezone is invalid, which
// Validate refuses).
func (r Reports) Location() *time.Location {
	loc, err := time.LoadLocation(r.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Feed configures the product feed import.
type Feed struct {
	// Columns maps a field (id, title, url, category_ids, categories,
	// description, price, discount_price, photos, color, brand, stock,
	// main, size) to the header name a feed uses for it.
	Columns map[string]string `toml:"columns"`
	// URL is fetched every Interval and imported when it changed.
	URL          string   `toml:"url"`
	Interval     Duration `toml:"interval"`
	Timeout      Duration `toml:"timeout"`
	MaxBytes     int64    `toml:"max_bytes"`
	AllowPrivate bool     `toml:"allow_private"`
	// ProductURLTemplate makes the product URL of feeds that have none
	// (WooCommerce and Shopify exports): {handle}, {id} and {sku} are
	// replaced by the product's, e.g. https://shop.example/products/{handle}.
	ProductURLTemplate string `toml:"product_url_template"`
}

// Demo configures the demo shop.
type Demo struct {
	Enabled bool `toml:"enabled"`
}

// HTTP configures the two listeners.
type HTTP struct {
	Public          string   `toml:"public"`
	Admin           string   `toml:"admin"`
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// PublicURL is where browsers reach the public listener (behind the
	// shop's TLS proxy), for the snippet; "" means http://<public>.
	PublicURL string `toml:"public_url"`
	// AdminHosts are host names, besides localhost and loopback
	// addresses, under which the admin UI answers (DNS rebinding guard).
	AdminHosts []string `toml:"admin_hosts"`
	// RateLimit is how many requests per second one client (IP address,
	// IPv6 /64) may send to the public listener, with bursts of RateBurst;
	// 0 turns it off. Routes called with an API key are not counted.
	RateLimit int `toml:"rate_limit"`
	RateBurst int `toml:"rate_burst"`
	// TrustedProxies are the CIDRs (or addresses) of the proxies in front
	// of the public listener, whose X-Forwarded-For names the client.
	TrustedProxies []string `toml:"trusted_proxies"`
}

// Campaigns configures onsite content campaigns.
type Campaigns struct {
	// Enabled puts the campaigns' head script into the snippet and serves
	// decisions at /c/decide.
	Enabled bool `toml:"enabled"`
}

// Storage configures the Badger database.
type Storage struct {
	Dir        string `toml:"dir"`
	SyncWrites bool   `toml:"sync_writes"`
	MinFree    int64  `toml:"min_free"` // bytes kept free: the smaller of this and 5 % of the disk, 64 MiB at least; 0: no check
	// MemoryLimit is the Go runtime's soft memory limit in bytes (0: none;
	// the GOMEMLIMIT environment variable wins).
	MemoryLimit int64 `toml:"memory_limit"`
	// MappedLimit bounds the bytes of the data directory's memory-mapped
	// files (Badger's tables and value log, the search index) counted in
	// the process's resident set, on Linux (0: no bound).
	MappedLimit int64 `toml:"mapped_limit"`
	// Retention is how long raw events are kept; older ones are dropped
	// in the background (profiles, sessions, touchpoints, rollups and
	// attribution stay). 0 keeps them forever.
	Retention Duration `toml:"retention"`
}

// Sites describes the shop's own web sites.
type Sites struct {
	AllowedOrigins     []string `toml:"allowed_origins"`
	ReferralExclusions []string `toml:"referral_exclusions"`
}

// Tracking configures sessions, touchpoints and attribution.
type Tracking struct {
	SessionTimeout    Duration `toml:"session_timeout"`
	VisitFromReferrer bool     `toml:"visit_from_referrer"`
	Lookback          Duration `toml:"lookback"`
	RespectGPC        bool     `toml:"respect_gpc"`
	// MaxOrderValue refuses orders worth more, in major units of the
	// order's currency (1000000 = one million euros or yen); 0: no limit.
	MaxOrderValue int64 `toml:"max_order_value"`
}

// Ingest bounds the ingestion pipeline.
type Ingest struct {
	MaxPendingEvents int `toml:"max_pending_events"`
	MaxBatchEvents   int `toml:"max_batch_events"`
	// MaxInflightBytes bounds the request bodies being ingested at once
	// (Content-Length, or 1 MiB without one); past it, requests are
	// refused with 503 before their body is read (the bound shrinks while
	// admitted requests are slow: engine/web/admit.go). 0: no bound.
	MaxInflightBytes int64 `toml:"max_inflight_bytes"`
}

// Default returns the configuration used when no file is given.
func Default() Config {
	return Config{
		HTTP: HTTP{
			Public:          "127.0.0.1:8080",
			Admin:           "127.0.0.1:8081",
			ShutdownTimeout: Duration{10 * time.Second},
			AdminHosts:      []string{},
			RateLimit:       50,
			RateBurst:       100,
			TrustedProxies:  []string{"127.0.0.1/32", "::1/128"},
		},
		Storage: Storage{Dir: "./data", MinFree: 1 << 30, MemoryLimit: 320 << 20, MappedLimit: 32 << 20},
		Sites: Sites{
			AllowedOrigins:     []string{"http://127.0.0.1:8080", "http://localhost:8080"},
			ReferralExclusions: []string{"paypal.com", "checkout.stripe.com", "klarna.com"},
		},
		Tracking: Tracking{
			SessionTimeout:    Duration{12 * time.Hour},
			VisitFromReferrer: true,
			Lookback:          Duration{720 * time.Hour},
			MaxOrderValue:     1_000_000,
		},
		Ingest: Ingest{
			MaxPendingEvents: 50000,
			MaxBatchEvents:   2000,
			MaxInflightBytes: 2 << 20,
		},
		Demo:      Demo{Enabled: true},
		Reports:   Reports{Timezone: "UTC"},
		Backup:    Backup{Every: Duration{24 * time.Hour}, Keep: 7},
		Campaigns: Campaigns{Enabled: true},
		Email: Email{
			Workers:     4,
			MaxAttempts: 5,
			MaxPerDay:   2,
			SMTP:        EmailSMTP{Port: 587, TLS: "starttls"},
			SNS:         EmailSNS{TopicARNs: []string{}},
		},
		Feed: Feed{
			Columns:  map[string]string{},
			Interval: Duration{time.Hour},
			Timeout:  Duration{2 * time.Minute},
			MaxBytes: 1 << 30,
		},
	}
}

// Load returns Default() overlaid with the TOML file at path (if path is not
// empty) and then with the environment. It does not validate.
func Load(path string, environ []string) (Config, error) {
	cfg := Default()
	if path != "" {
		md, err := toml.DecodeFile(path, &cfg)
		if err != nil {
			return cfg, fmt.Errorf("config: %s: %w", path, err)
		}
		if undecoded := md.Undecoded(); len(undecoded) > 0 {
			keys := make([]string, len(undecoded))
			for i, k := range undecoded {
				keys[i] = k.String()
			}
			return cfg, fmt.Errorf("config: %s: unknown key(s): %s", path, strings.Join(keys, ", "))
		}
	}
	if err := applyEnv(&cfg, environ); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// EnvPrefix starts the name of every environment variable Shoptrail reads.
const EnvPrefix = "SHOPTRAIL_"

// applyEnv sets fields from SHOPTRAIL_SECTION_KEY variables, e.g.
// SHOPTRAIL_HTTP_PUBLIC or SHOPTRAIL_TRACKING_SESSION_TIMEOUT. Lists are
// comma-separated. An unknown SHOPTRAIL_ variable is an error, like an
// unknown key in the file.
func applyEnv(cfg *Config, environ []string) error {
	fields := envFields(cfg)
	var errs []error
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		f, known := fields[name]
		if !known {
			errs = append(errs, fmt.Errorf("config: unknown environment variable %s", name))
			continue
		}
		if err := setField(f, value); err != nil {
			errs = append(errs, fmt.Errorf("config: %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// envFields maps each environment variable name to the field it sets.
func envFields(cfg *Config) map[string]reflect.Value {
	out := map[string]reflect.Value{}
	eachField(cfg, func(section, key string, v reflect.Value) {
		out[EnvPrefix+strings.ToUpper(strings.ReplaceAll(section, ".", "_")+"_"+key)] = v
	})
	return out
}

// eachField calls fn for every setting, named by its TOML section and key;
// a nested table is a section of its own ("email.ses").
func eachField(cfg *Config, fn func(section, key string, v reflect.Value)) {
	root := reflect.ValueOf(cfg).Elem()
	for i := range root.NumField() {
		eachIn(root.Type().Field(i).Tag.Get("toml"), root.Field(i), fn)
	}
}

func eachIn(section string, sv reflect.Value, fn func(section, key string, v reflect.Value)) {
	for j := range sv.NumField() {
		key, f := sv.Type().Field(j).Tag.Get("toml"), sv.Field(j)
		if _, isDuration := f.Interface().(Duration); f.Kind() == reflect.Struct && !isDuration {
			eachIn(section+"."+key, f, fn)
			continue
		}
		fn(section, key, f)
	}
}

func setField(f reflect.Value, value string) error {
	if d, ok := f.Addr().Interface().(*Duration); ok {
		return d.UnmarshalText([]byte(value))
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(value)
	case reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%q is not true or false", value)
		}
		f.SetBool(b)
	case reflect.Float64:
		n, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", value)
		}
		f.SetFloat(n)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", value)
		}
		f.SetInt(n)
	case reflect.Slice:
		var list []string
		for _, s := range strings.Split(value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		f.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("unsupported type %s", f.Type())
	}
	return nil
}

// Validate reports every invalid setting at once, each named by its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	for key, addr := range map[string]string{"http.public": c.HTTP.Public, "http.admin": c.HTTP.Admin} {
		if _, port, err := net.SplitHostPort(addr); err != nil {
			bad(key, "%q is not host:port", addr)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			bad(key, "%q has an invalid port", addr)
		}
	}
	if c.HTTP.Public == c.HTTP.Admin && !strings.HasSuffix(c.HTTP.Public, ":0") {
		bad("http.admin", "must differ from http.public (%q)", c.HTTP.Public)
	}
	if u := c.HTTP.PublicURL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad("http.public_url", "%q is not a URL like https://track.shop.example", u)
		}
	}
	if c.HTTP.RateLimit < 0 {
		bad("http.rate_limit", "must be 0 (off) or more")
	}
	if c.HTTP.RateLimit > 0 && c.HTTP.RateBurst < 1 {
		bad("http.rate_burst", "must be at least 1")
	}
	for _, p := range c.HTTP.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				bad("http.trusted_proxies", "%q is not a CIDR like 10.0.0.0/8 or an address", p)
			}
		}
	}
	if c.HTTP.ShutdownTimeout.Duration <= 0 {
		bad("http.shutdown_timeout", "must be positive")
	}
	if strings.TrimSpace(c.Storage.Dir) == "" {
		bad("storage.dir", "must not be empty")
	}
	if c.Storage.MemoryLimit != 0 && c.Storage.MemoryLimit < 64<<20 {
		bad("storage.memory_limit", "must be 0 (none) or at least 67108864 bytes (64 MiB)")
	}
	if c.Storage.MappedLimit != 0 && c.Storage.MappedLimit < 8<<20 {
		bad("storage.mapped_limit", "must be 0 (no bound) or at least 8388608 bytes (8 MiB)")
	}
	if c.Storage.MinFree < 0 {
		bad("storage.min_free", "must be 0 (no check) or a number of bytes")
	}
	for _, o := range c.Sites.AllowedOrigins {
		if err := CheckOrigin(o); err != nil {
			bad("sites.allowed_origins", "%v", err)
		}
	}
	for _, h := range c.Sites.ReferralExclusions {
		if h == "" || strings.ContainsAny(h, "/: ") {
			bad("sites.referral_exclusions", "%q is not a host name", h)
		}
	}
	if d := c.Tracking.SessionTimeout.Duration; d < time.Minute || d > 30*24*time.Hour {
		bad("tracking.session_timeout", "%s is outside 1m..720h", d)
	}
	if d := c.Tracking.Lookback.Duration; d < time.Hour || d > 90*24*time.Hour {
		bad("tracking.lookback", "%s is outside 1h..2160h (90 days)", d)
	}
	if _, err := time.LoadLocation(c.Reports.Timezone); err != nil || c.Reports.Timezone == "" || c.Reports.Timezone == "Local" {
		bad("reports.timezone", "%q is not a time zone name such as UTC or Europe/Paris", c.Reports.Timezone)
	}
	if v := c.Tracking.MaxOrderValue; v < 0 || v > 1e12 {
		bad("tracking.max_order_value", "%d is outside 0..1000000000000", v)
	}
	if c.Ingest.MaxPendingEvents < 1 {
		bad("ingest.max_pending_events", "must be at least 1")
	}
	for field := range c.Feed.Columns {
		if !slices.Contains(FeedFields, field) {
			bad("feed.columns", "%q is not a field (%s)", field, strings.Join(FeedFields, ", "))
		}
	}
	if u := c.Feed.URL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad("feed.url", "must be an http or https URL")
		}
	}
	if c.Feed.Interval.Duration < time.Minute {
		bad("feed.interval", "must be at least 1m")
	}
	if c.Feed.Timeout.Duration <= 0 {
		bad("feed.timeout", "must be positive")
	}
	if c.Feed.MaxBytes < 1 {
		bad("feed.max_bytes", "must be at least 1")
	}
	if t := c.Feed.ProductURLTemplate; t != "" {
		filled := strings.NewReplacer("{handle}", "h", "{id}", "i", "{sku}", "s").Replace(t)
		if pu, err := url.Parse(filled); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad("feed.product_url_template", "must be an http or https URL, such as https://shop.example/products/{handle}")
		} else if filled == t {
			bad("feed.product_url_template", "must contain {handle}, {id} or {sku}")
		}
	}
	if n := c.Ingest.MaxInflightBytes; n != 0 && n < 1<<20 {
		bad("ingest.max_inflight_bytes", "%d is less than one request body may be (1048576); 0 turns the bound off", n)
	}
	if d := c.Storage.Retention.Duration; d != 0 && d < 24*time.Hour {
		bad("storage.retention", "%s is less than 24h; 0 keeps events forever", d)
	}
	if c.Backup.Dir != "" && c.Backup.Every.Duration < time.Minute {
		bad("backup.every", "must be at least 1m")
	}
	if c.Backup.Keep < 1 {
		bad("backup.keep", "must be at least 1")
	}
	if t := c.Metrics.Token; t != "" && len(t) < 16 {
		bad("metrics.token", "is shorter than 16 characters; use a long random value (openssl rand -hex 32)")
	}
	if c.Ingest.MaxBatchEvents < 1 {
		bad("ingest.max_batch_events", "must be at least 1")
	}
	errs = append(errs, c.Email.validate()...)
	return errors.Join(errs...)
}

// emailTLS are the values of [email.smtp] tls.
var emailTLS = []string{"starttls", "tls", "none"}

func (e Email) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	for key, a := range map[string]string{"email.from": e.From, "email.reply_to": e.ReplyTo} {
		if a == "" {
			continue
		}
		if _, err := mail.ParseAddress(a); err != nil || strings.ContainsAny(a, "\r\n") {
			bad(key, "%q is not an address like \"Shop <hello@shop.example>\"", a)
		}
	}
	if u := e.PublicURL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad("email.public_url", "%q is not a URL like https://track.shop.example", u)
		}
	}
	if e.Workers < 1 || e.Workers > 64 {
		bad("email.workers", "%d is outside 1..64", e.Workers)
	}
	if e.MaxAttempts < 1 || e.MaxAttempts > 50 {
		bad("email.max_attempts", "%d is outside 1..50", e.MaxAttempts)
	}
	if e.MaxRate < 0 || e.MaxRate > 100000 {
		bad("email.max_rate", "%g is outside 0..100000", e.MaxRate)
	}
	if e.MaxPerDay < 0 || e.MaxPerDay > 1000 {
		bad("email.max_per_day", "%d is outside 0..1000", e.MaxPerDay)
	}
	if r := e.SES.Region; r != "" && !regionRe.MatchString(r) {
		bad("email.ses.region", "%q is not an AWS region like eu-west-1", r)
	}
	if (e.SES.AccessKeyID == "") != (e.SES.SecretAccessKey == "") {
		bad("email.ses.secret_access_key", "access_key_id and secret_access_key go together (or leave both empty for the AWS default chain)")
	}
	if u := e.SES.Endpoint; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad("email.ses.endpoint", "%q is not a URL", u)
		}
	}
	if p := e.SMTP.Port; p < 1 || p > 65535 {
		bad("email.smtp.port", "%d is outside 1..65535", p)
	}
	if !slices.Contains(emailTLS, e.SMTP.TLS) {
		bad("email.smtp.tls", "%q is not starttls, tls or none", e.SMTP.TLS)
	} else if h := e.SMTP.Host; e.SMTP.TLS == "none" && h != "" && h != "localhost" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			bad("email.smtp.tls", "none is allowed only for a loopback host, not %q", h)
		}
	}
	if h := e.SMTP.Host; h != "" && strings.ContainsAny(h, "/: ") {
		bad("email.smtp.host", "%q is not a host name", h)
	}
	for _, arn := range e.SNS.TopicARNs {
		if !topicRe.MatchString(arn) {
			bad("email.sns.topic_arns", "%q is not an SNS topic ARN like arn:aws:sns:eu-west-1:123456789012:ses-events", arn)
		}
	}
	return errs
}

var (
	regionRe = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]$`)
	topicRe  = regexp.MustCompile(`^arn:aws(-[a-z]+)*:sns:[a-z]{2}(-[a-z]+)+-[0-9]:[0-9]{12}:[A-Za-z0-9_-]{1,256}$`)
)

// CheckOrigin accepts "*" or an origin like https://shop.example (scheme
// and host, no path or query).
func CheckOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return fmt.Errorf("%q is not an origin like https://shop.example", o)
	}
	return nil
}

// FeedFields are the fields [feed.columns] may map (package feed keeps the
// same list in Fields; a test compares them).
var FeedFields = []string{"id", "title", "url", "category_ids", "categories", "description",
	"price", "discount_price", "photos", "color", "brand", "stock", "main", "size"}

// Duration is a time.Duration written as "12h" or "30m" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like \"12h\" or \"30m\"", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }
