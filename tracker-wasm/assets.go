// Package tracker holds the browser tracker's assets: the inline stub that
// shops paste into their pages, the loader at a stable URL, and the
// WebAssembly tracker with Go's wasm_exec.js, which `make` builds into dist/.
// Everything is hashed and compressed once, when Build runs.
package tracker

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/andybalholm/brotli"
)

//go:embed all:dist
var dist embed.FS

//go:embed stub.js
var stubJS string

// Asset is one file served to browsers.
type Asset struct {
	Path        string // URL path
	ContentType string
	ETag        string
	Immutable   bool // content-hashed: cache for a year
	Raw         []byte
	Gzip        []byte
	Brotli      []byte
}

// Assets are the tracker's files, ready to serve.
type Assets struct {
	byPath map[string]*Asset
	// Built reports whether the WASM tracker was built into dist/ (make
	// does it; a plain go build does not).
	Built bool
}

// LoaderPath is the stable URL of the loader that the stub inserts.
const LoaderPath = "/tracker.js"

// Build hashes and compresses the tracker's files (about half a second of
// brotli); the result is the same every time, so it is computed once per
// process.
var Build = sync.OnceValues(build)

func build() (*Assets, error) {
	a := &Assets{byPath: map[string]*Asset{}}
	wasm, errW := fs.ReadFile(dist, "dist/tracker.wasm")
	exec, errE := fs.ReadFile(dist, "dist/wasm_exec.js")
	if errW != nil || errE != nil {
		// Served all the same, so that the shop's pages keep working: the
		// stub still counts page views, the loader finds nothing to load.
		a.add(LoaderPath, "text/javascript; charset=utf-8", false,
			[]byte("/* shoptrail: this binary was built without the WASM tracker; build it with make */\n"))
		return a, nil
	}
	a.Built = true
	execPath := a.add(hashed("/tracker/wasm_exec", ".js", exec), "text/javascript; charset=utf-8", true, exec).Path
	wasmAsset := a.add(hashed("/tracker/tracker", ".wasm", wasm), "application/wasm", true, wasm)
	if br, err := fs.ReadFile(dist, "dist/tracker.wasm.br"); err == nil && sameAs(br, wasm) {
		wasmAsset.Brotli = br // quality 11 from make wasm: about 11 % smaller than 9
	}
	wasmPath := wasmAsset.Path
	a.add(LoaderPath, "text/javascript; charset=utf-8", false, []byte(loader(execPath, wasmPath)))
	return a, nil
}

// sameAs reports whether br decompresses to raw (a stale .br from an
// earlier build is not served).
func sameAs(br, raw []byte) bool {
	got, err := io.ReadAll(io.LimitReader(brotli.NewReader(bytes.NewReader(br)), int64(len(raw))+1))
	return err == nil && bytes.Equal(got, raw)
}

// Lookup returns the asset at a URL path.
func (a *Assets) Lookup(path string) (*Asset, bool) {
	as, ok := a.byPath[path]
	return as, ok
}

// All returns every asset.
func (a *Assets) All() []*Asset {
	out := make([]*Asset, 0, len(a.byPath))
	for _, as := range a.byPath {
		out = append(out, as)
	}
	return out
}

// NewAsset makes an immutable asset at a content-hashed URL, base.<hash>ext
// (other packages' scripts, such as the campaigns' renderer).
func NewAsset(base, ext, ctype string, raw []byte) *Asset {
	return newAsset(hashed(base, ext, raw), ctype, true, raw)
}

func (a *Assets) add(path, ctype string, immutable bool, raw []byte) *Asset {
	as := newAsset(path, ctype, immutable, raw)
	a.byPath[path] = as
	return as
}

func newAsset(path, ctype string, immutable bool, raw []byte) *Asset {
	sum := sha256.Sum256(raw)
	as := &Asset{Path: path, ContentType: ctype, Immutable: immutable, Raw: raw, ETag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(raw)
	zw.Close()
	as.Gzip = gz.Bytes()
	var br bytes.Buffer
	bw := brotli.NewWriterLevel(&br, 9)
	bw.Write(raw)
	bw.Close()
	as.Brotli = br.Bytes()
	return as
}

func hashed(base, ext string, b []byte) string {
	sum := sha256.Sum256(b)
	return base + "." + hex.EncodeToString(sum[:6]) + ext
}

// loader fetches wasm_exec.js and the tracker and runs it. Any failure is
// swallowed: the shop's page must keep working.
func loader(execPath, wasmPath string) string {
	return `(function(w,d){try{var s=w.shoptrail,b=s&&s.e||"";if(!s||s.off)return;
var x=d.createElement("script");x.async=true;x.src=b+"` + execPath + `";
x.onload=function(){try{var g=new Go(),f=fetch(b+"` + wasmPath + `"),W=WebAssembly,
p=W.instantiateStreaming?W.instantiateStreaming(f,g.importObject):f.then(function(r){return r.arrayBuffer()}).then(function(y){return W.instantiate(y,g.importObject)});
p.then(function(r){g.run(r.instance)})["catch"](function(){})}catch(e){}};(d.head||d.documentElement).appendChild(x)}catch(e){}})(window,document);
`
}

// Snippet is the main snippet for every page of the shop: the stub,
// filled in with where this installation's public listener is reached.
// respectGPC makes the stub send nothing when the browser sends Global
// Privacy Control. campaigns makes it ask /c.js for the page's onsite
// campaigns from the head, hiding their targets until the answer (at most
// 1 s).
func Snippet(endpoint string, sessionTimeout time.Duration, respectGPC, campaigns bool) string {
	c := "0"
	if campaigns {
		c = "1"
	}
	r := strings.NewReplacer(
		"{{ENDPOINT}}", strings.TrimSuffix(endpoint, "/"),
		"{{TIMEOUT_HOURS}}", strconv.FormatFloat(sessionTimeout.Hours(), 'f', -1, 64),
		"{{GPC}}", strconv.FormatBool(respectGPC),
		"{{CAMPAIGNS}}", c,
	)
	return "<script>" + strings.TrimSpace(r.Replace(stubJS)) + "</script>"
}

// StubSize is the size of the stub in bytes, unminified, as served.
func StubSize() int { return len(stubJS) }
