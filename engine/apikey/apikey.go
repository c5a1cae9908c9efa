// Package apikey creates and checks the API keys of the public API. A key is
// shown once; only its SHA-256 is stored (keys are 256 random bits, so a
// slow password hash would add nothing but latency).
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
)

// Prefix starts every key, so that a leaked key is recognisable (secret
// scanners) and a key is never confused with an anonymous id.
const Prefix = "st_"

var enc = base32.StdEncoding.WithPadding(base32.NoPadding)

// ErrInvalid means a name or scope is not acceptable.
var ErrInvalid = errors.New("apikey: invalid")

// SecretBytes is how many random bytes a key carries (256 bits).
const SecretBytes = 32

// New makes a key: the secret to show once, and the record to store. A key
// needs at least one scope: no scope never means every scope (a form sent
// with no box ticked must not make the most powerful key).
func New(name string, scopes []string, now time.Time) (secret string, k model.APIKey, err error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return "", k, fmt.Errorf("%w: a key needs a name of 1 to 100 characters", ErrInvalid)
	}
	if len(scopes) == 0 {
		return "", k, fmt.Errorf("%w: a key needs at least one scope (known: %s)", ErrInvalid, strings.Join(model.AllScopes(), ", "))
	}
	for _, s := range scopes {
		if !slices.Contains(model.AllScopes(), s) {
			return "", k, fmt.Errorf("%w: unknown scope %q (known: %s)", ErrInvalid, s, strings.Join(model.AllScopes(), ", "))
		}
	}
	raw := make([]byte, SecretBytes)
	rand.Read(raw)
	secret = Prefix + strings.ToLower(enc.EncodeToString(raw))
	id := make([]byte, 6)
	rand.Read(id)
	return secret, model.APIKey{
		ID:        hex.EncodeToString(id),
		Name:      name,
		Prefix:    secret[:len(Prefix)+6],
		Hash:      Hash(secret),
		Scopes:    slices.Clone(scopes),
		CreatedAt: now.UTC(),
	}, nil
}

// Hash is what is stored of a secret.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// FromHeader extracts the key from "Authorization: Bearer <key>", or from
// "Authorization: Basic <base64 of key:>" with the key as the user name (and
// the password ignored), as Segment's SDKs send their write key.
func FromHeader(authorization string) (string, bool) {
	scheme, secret, ok := strings.Cut(authorization, " ")
	if !ok {
		return "", false
	}
	secret = strings.TrimSpace(secret)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(secret)
		if err != nil {
			return "", false
		}
		secret, _, _ = strings.Cut(string(raw), ":")
	default:
		return "", false
	}
	return secret, strings.HasPrefix(secret, Prefix)
}
