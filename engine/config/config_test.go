package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestExampleIsTheDefault(t *testing.T) {
	cfg, err := Load("../../config.example.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(cfg, want) {
		t.Errorf("config.example.toml differs from Default():\n file %+v\n code %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the defaults do not validate: %v", err)
	}
	// every setting is documented in the example file, in its section
	raw, _ := os.ReadFile("../../config.example.toml")
	eachField(&cfg, func(section, key string, _ reflect.Value) {
		_, rest, _ := strings.Cut(string(raw), "\n["+section+"]\n")
		rest, _, _ = strings.Cut(rest, "\n[")
		if !strings.Contains(rest, "\n"+key+" = ") && !strings.HasPrefix(rest, key+" = ") {
			t.Errorf("config.example.toml does not document [%s] %s", section, key)
		}
	})
}

func write(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadErrors(t *testing.T) {
	for _, tt := range []struct{ name, file, want string }{
		{"unknown key", "[http]\npublik = \"x\"\n", "http.publik"},
		{"unknown section", "[nope]\na = 1\n", "nope"},
		{"bad duration", "[tracking]\nsession_timeout = \"12 hours\"\n", "session_timeout"},
		{"wrong type", "[tracking]\nvisit_from_referrer = \"yes\"\n", "visit_from_referrer"},
		{"syntax", "[http\n", "config.toml"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(write(t, tt.file), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestValidateNamesEveryBadKey(t *testing.T) {
	cfg := Default()
	cfg.HTTP.Public = "8080"
	cfg.Storage.Dir = " "
	cfg.Sites.AllowedOrigins = []string{"shop.example"}
	cfg.Tracking.SessionTimeout = Duration{time.Second}
	cfg.Tracking.Lookback = Duration{0}
	cfg.Ingest.MaxPendingEvents = 0
	err := cfg.Validate()
	for _, k := range []string{"http.public", "storage.dir", "sites.allowed_origins", "tracking.session_timeout", "tracking.lookback", "ingest.max_pending_events"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("error %v does not name %s", err, k)
		}
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	p := write(t, "[http]\npublic = \"127.0.0.1:9000\"\n[tracking]\nvisit_from_referrer = true\n")
	cfg, err := Load(p, []string{
		"SHOPTRAIL_HTTP_PUBLIC=0.0.0.0:9090",
		"SHOPTRAIL_TRACKING_VISIT_FROM_REFERRER=false",
		"SHOPTRAIL_TRACKING_SESSION_TIMEOUT=30m",
		"SHOPTRAIL_SITES_ALLOWED_ORIGINS=https://a.example, https://b.example",
		"SHOPTRAIL_INGEST_MAX_PENDING_EVENTS=10",
		"PATH=/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Public != "0.0.0.0:9090" || cfg.Tracking.VisitFromReferrer || cfg.Tracking.SessionTimeout.Duration != 30*time.Minute ||
		!reflect.DeepEqual(cfg.Sites.AllowedOrigins, []string{"https://a.example", "https://b.example"}) || cfg.Ingest.MaxPendingEvents != 10 {
		t.Errorf("%+v", cfg)
	}
	for env, want := range map[string]string{
		"SHOPTRAIL_HTTP_PUBLIK=x":                    "SHOPTRAIL_HTTP_PUBLIK",
		"SHOPTRAIL_TRACKING_VISIT_FROM_REFERRER=yes": "SHOPTRAIL_TRACKING_VISIT_FROM_REFERRER",
		"SHOPTRAIL_INGEST_MAX_BATCH_EVENTS=many":     "SHOPTRAIL_INGEST_MAX_BATCH_EVENTS",
	} {
		if _, err := Load("", []string{env}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v", env, err)
		}
	}
}

func TestEmailSettings(t *testing.T) {
	p := write(t, "[email]\nfrom = \"Shop <hello@shop.example>\"\n[email.ses]\nregion = \"eu-west-1\"\n[email.smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n")
	cfg, err := Load(p, []string{"SHOPTRAIL_EMAIL_SES_ACCESS_KEY_ID=AKIAEXAMPLE", "SHOPTRAIL_EMAIL_SES_SECRET_ACCESS_KEY=abc",
		"SHOPTRAIL_EMAIL_SMTP_PORT=2525", "SHOPTRAIL_EMAIL_MAX_RATE=14.5", "SHOPTRAIL_EMAIL_SNS_TOPIC_ARNS=arn:aws:sns:eu-west-1:123456789012:ses-events"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e := cfg.Email
	if e.SES.AccessKeyID != "AKIAEXAMPLE" || e.SES.SecretAccessKey != "abc" || e.SMTP.Port != 2525 || e.MaxRate != 14.5 || e.SES.Region != "eu-west-1" ||
		len(e.SNS.TopicARNs) != 1 || e.Workers != 4 {
		t.Errorf("%+v", e)
	}
	if _, err := Load(write(t, "[email.ses]\nregoin = \"x\"\n"), nil); err == nil || !strings.Contains(err.Error(), "email.ses.regoin") {
		t.Errorf("unknown nested key: %v", err)
	}
	if _, err := Load("", []string{"SHOPTRAIL_EMAIL_SES_REGOIN=x"}); err == nil {
		t.Error("unknown nested environment variable accepted")
	}

	bad := Default()
	bad.Email = Email{From: "not an address", ReplyTo: "a@b.example\r\nBcc: x@y.example", PublicURL: "ftp://x", Workers: 0, MaxAttempts: 0, MaxRate: -1,
		SES:  EmailSES{Region: "Europe", AccessKeyID: "AKIA", Endpoint: "::"},
		SMTP: EmailSMTP{Host: "mail.example", Port: 0, TLS: "none"},
		SNS:  EmailSNS{TopicARNs: []string{"arn:aws:s3:::bucket"}}}
	err = bad.Validate()
	for _, k := range []string{"email.from", "email.reply_to", "email.public_url", "email.workers", "email.max_attempts", "email.max_rate",
		"email.ses.region", "email.ses.secret_access_key", "email.ses.endpoint", "email.smtp.port", "email.smtp.tls", "email.sns.topic_arns"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("error %v does not name %s", err, k)
		}
	}
}

func TestProductURLTemplate(t *testing.T) {
	for tmpl, ok := range map[string]bool{
		"":                                       true,
		"https://shop.example/products/{handle}": true,
		"http://shop.example/?p={id}":            true,
		"https://shop.example/p/{sku}.html":      true,
		"https://shop.example/products":          false, // no placeholder
		"javascript:alert('{id}')":               false,
		"/products/{handle}":                     false, // not absolute
		"ftp://shop.example/{id}":                false,
	} {
		cfg := Default()
		cfg.Feed.ProductURLTemplate = tmpl
		err := cfg.Validate()
		if (err == nil) != ok || (err != nil && !strings.Contains(err.Error(), "feed.product_url_template")) {
			t.Errorf("%q: %v", tmpl, err)
		}
	}
	cfg, err := Load("", []string{"SHOPTRAIL_FEED_PRODUCT_URL_TEMPLATE=https://s.example/products/{handle}"})
	if err != nil || cfg.Feed.ProductURLTemplate != "https://s.example/products/{handle}" {
		t.Errorf("from the environment: %q %v", cfg.Feed.ProductURLTemplate, err)
	}
}
