package apikey

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
)

func TestNoScopeIsRefused(t *testing.T) {
	for _, scopes := range [][]string{nil, {}} {
		if _, _, err := New("shop backend", scopes, time.Now()); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "at least one scope") {
			t.Errorf("scopes %#v: %v; want a key with no scope refused", scopes, err)
		}
	}
	if _, _, err := New("shop backend", []string{"events:write", "root"}, time.Now()); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown scope: %v", err)
	}
}

func TestKeysCarry256RandomBits(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		secret, k, err := New("k", []string{model.ScopeEventsWrite}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		raw, err := enc.DecodeString(strings.ToUpper(strings.TrimPrefix(secret, Prefix)))
		if err != nil || len(raw) != 32 {
			t.Fatalf("secret %q: %d bytes (%v); want 32", secret, len(raw), err)
		}
		if seen[secret] || !strings.HasPrefix(secret, k.Prefix) || string(k.Hash) != string(Hash(secret)) {
			t.Fatalf("secret %q, record %+v", secret, k)
		}
		seen[secret] = true
	}
}

func TestFromHeader(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tt := range []struct {
		header, secret string
		ok             bool
	}{
		{"Bearer st_abc", "st_abc", true},
		{"bearer  st_abc ", "st_abc", true},
		{"Basic " + b64("st_abc:"), "st_abc", true}, // Segment's SDKs: the write key, no password
		{"Basic " + b64("st_abc:ignored"), "st_abc", true},
		{"Basic " + b64("st_abc"), "st_abc", true},
		{"Basic " + b64(":st_abc"), "", false}, // the key must be the user name
		{"Basic not-base64!", "", false},
		{"Bearer abc", "abc", false},
		{"Token st_abc", "", false},
		{"st_abc", "", false},
		{"", "", false},
	} {
		secret, ok := FromHeader(tt.header)
		if ok != tt.ok || (ok && secret != tt.secret) {
			t.Errorf("FromHeader(%q) = %q, %v; want %q, %v", tt.header, secret, ok, tt.secret, tt.ok)
		}
	}
}
