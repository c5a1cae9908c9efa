package web

import (
	"net/http"
	"strconv"
	"strings"

	tracker "github.com/shoptrail/shoptrail/tracker-wasm"
)

// serveAsset serves the tracker's files: precompressed (br, gzip) as the
// browser accepts, with an ETag, cached for a year when the URL carries the
// content hash, for five minutes at the loader's stable URL.
func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request) error {
	as, ok := s.assets.Lookup(r.URL.Path)
	if !ok {
		return notFound(w, r)
	}
	return serveAssetFile(w, r, as)
}

// serveAssetFile serves one asset (see serveAsset).
func serveAssetFile(w http.ResponseWriter, r *http.Request, as *tracker.Asset) error {
	h := w.Header()
	h.Set("Content-Type", as.ContentType) // exactly application/wasm for instantiateStreaming
	h.Set("ETag", as.ETag)
	h.Set("Vary", "Accept-Encoding")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Access-Control-Allow-Origin", "*") // the shop's pages fetch the WASM cross-origin
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	if as.Immutable {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=300")
	}
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, as.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	body := as.Raw
	switch accept := r.Header.Get("Accept-Encoding"); {
	case acceptsEncoding(accept, "br"):
		body = as.Brotli
		h.Set("Content-Encoding", "br")
	case acceptsEncoding(accept, "gzip"):
		body = as.Gzip
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method != http.MethodHead {
		w.Write(body)
	}
	return nil
}

func acceptsEncoding(header, enc string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), enc) {
			return !strings.Contains(strings.ReplaceAll(params, " ", ""), "q=0") || strings.Contains(params, "q=0.")
		}
	}
	return false
}

// Snippet is the main snippet with this installation's endpoint.
func (s *Server) Snippet(endpoint string) string {
	return tracker.Snippet(endpoint, s.live.Get().SessionTimeout, s.cfg.Tracking.RespectGPC, s.cfg.Campaigns.Enabled)
}
