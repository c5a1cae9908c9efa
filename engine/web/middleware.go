package web

import (
	_ "embed"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/apikey"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// allowOrigin lets browsers on the shop's origins send events, and pages
// served by this listener itself (the demo shop). A request with an Origin
// that is not allowed is refused and nothing is stored; requests without an
// Origin do not come from a browser page.
func (s *Server) allowOrigin(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		origin := r.Header.Get("Origin")
		if origin != "" {
			sameOrigin := strings.TrimPrefix(strings.TrimPrefix(origin, "http://"), "https://") == r.Host
			if !sameOrigin && !s.live.OriginAllowed(origin) {
				return errorf(http.StatusForbidden, "origin_not_allowed", "Origin",
					"origin "+origin+" is not an allowed origin (Settings → Account settings, or [sites] allowed_origins)")
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
		}
		return next(w, r)
	}
}

func (s *Server) preflight(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST")
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// requireKey lets a request through with a valid, unrevoked API key that
// has scope: 401 without one, 403 with a key that lacks the scope. A
// request without a valid key counts against its client's rate limit, as
// any request of a browser does: guessing keys is throttled.
func (s *Server) requireKey(scope string, next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		secret, ok := apikey.FromHeader(r.Header.Get("Authorization"))
		var k model.APIKey
		err := store.ErrNotFound
		if ok {
			k, err = s.st.APIKeyByHash(apikey.Hash(secret))
		}
		if s.limiter != nil && (err != nil || k.Revoked) {
			if allowed, wait := s.limiter.allow(s.proxies.clientOf(r)); !allowed {
				return rateLimited(w, wait)
			}
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shoptrail"`)
			return errorf(http.StatusUnauthorized, "unauthorized", "Authorization", "send an API key: Authorization: Bearer st_... (or the key as the Basic auth user name, as Segment's SDKs send their write key)")
		}
		if errors.Is(err, store.ErrNotFound) || (err == nil && k.Revoked) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shoptrail", error="invalid_token"`)
			return errorf(http.StatusUnauthorized, "unauthorized", "Authorization", "the API key is unknown or revoked")
		}
		if err != nil {
			return err
		}
		if !k.HasScope(scope) {
			return errorf(http.StatusForbidden, "forbidden", "Authorization", "the API key lacks the scope "+scope)
		}
		if now := s.now(); now.Sub(k.LastUsed) > time.Minute {
			if err := s.st.TouchAPIKey(k.Hash, now); err != nil {
				s.log.Warn("record api key use", "key", k.Prefix, "err", err)
			}
		}
		return next(w, r)
	}
}
