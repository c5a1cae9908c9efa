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
