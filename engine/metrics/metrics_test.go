package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestLocal(t *testing.T) {
	for _, tt := range []struct {
		remote string
		header []string
		want   bool
	}{
		{"127.0.0.1:5000", nil, true},
		{"[::1]:5000", nil, true},
		{"127.0.0.2:5000", nil, true},
		{"10.0.0.5:5000", nil, false},
		{"127.0.0.1:5000", []string{"X-Forwarded-For", "203.0.113.1"}, false},
		{"127.0.0.1:5000", []string{"Forwarded", "for=203.0.113.1"}, false},
		{"127.0.0.1:5000", []string{"X-Real-IP", "203.0.113.1"}, false},
		{"garbage", nil, false},
	} {
		r := httptest.NewRequest("GET", "/metrics", nil)
		r.RemoteAddr = tt.remote
		for i := 0; i+1 < len(tt.header); i += 2 {
			r.Header.Set(tt.header[i], tt.header[i+1])
		}
		if got := Local(r); got != tt.want {
			t.Errorf("%s %v: %v, want %v", tt.remote, tt.header, got, tt.want)
		}
	}
}

func TestInstrumentLabelsByPattern(t *testing.T) {
	m := New("test")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /user/{email}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) })
	h := m.Instrument("public", mux)
	for _, p := range []string{"/user/a@x", "/user/b@x", "/nowhere"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.RemoteAddr = "127.0.0.1:1"
	m.Handler("").ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Body)
	for _, w := range []string{
		`shoptrail_http_request_duration_seconds_count{code="4xx",listener="public",route="GET /user/{email}"} 2`,
		`shoptrail_http_request_duration_seconds_count{code="4xx",listener="public",route="unmatched"} 1`,
		`shoptrail_build_info{version="test"} 1`,
	} {
		if !strings.Contains(string(body), w) {
			t.Errorf("lacks %s", w)
		}
	}
	if strings.Contains(string(body), "a@x") {
		t.Error("a raw path became a label")
	}
	var nilM *Metrics
	nilM.Ingested("api", 1) // a nil Metrics records nothing, and does not panic
	nilM.Rejected("x", 1)
}

// BenchmarkInstrument is what timing a request costs: the same handler
// bare and instrumented.
func BenchmarkInstrument(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /t", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	for _, bench := range []struct {
		name string
		h    http.Handler
	}{{"bare", mux}, {"instrumented", New("b").Instrument("public", mux)}} {
		b.Run(bench.name, func(b *testing.B) {
			req := httptest.NewRequest("POST", "/t", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				bench.h.ServeHTTP(w, req)
			}
		})
	}
}
