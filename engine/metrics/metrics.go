// Package metrics exposes Shoptrail's metrics in the Prometheus text
// format, with the Prometheus client library. Components report through
// the small API here (counters, a histogram) or are read at scrape time
// (gauge functions the composition root registers); the package knows no
// other part of Shoptrail.
package metrics

import (
	"bufio"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the registry and the metrics that components update.
// A nil *Metrics records nothing (tests of single components).
type Metrics struct {
	reg      *prometheus.Registry
	ingested *prometheus.CounterVec
	rejected *prometheus.CounterVec
	duration *prometheus.HistogramVec
	swept    prometheus.Counter
	// observers caches duration's children: WithLabelValues hashes the
	// labels and takes a lock at every call (BenchmarkInstrument)
	observers sync.Map // observerKey → prometheus.Observer
}

type observerKey struct{ listener, route, code string }

// New returns the metrics with Go's runtime and process collectors and
// shoptrail_build_info{version}.
func New(version string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		ingested: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoptrail_events_ingested_total",
			Help: "Events stored in the log, by how they came: browser (POST /t), api (POST /api/v1/events) or server (made by Shoptrail)."}, []string{"via"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoptrail_events_rejected_total",
			Help: "Events not stored, by reason: the field error code of an invalid event, duplicate, or the error code of a request refused whole (counted once per request)."}, []string{"reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "shoptrail_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by listener, route pattern and status class.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"listener", "route", "code"}),
		swept: prometheus.NewCounter(prometheus.CounterOpts{Name: "shoptrail_retention_dropped_events_total",
			Help: "Events dropped from the log by [storage] retention."}),
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: "shoptrail_build_info", Help: "The running version of Shoptrail.",
		ConstLabels: prometheus.Labels{"version": version}})
	info.Set(1)
	reg.MustRegister(m.ingested, m.rejected, m.duration, m.swept, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Ingested counts stored events by via.
func (m *Metrics) Ingested(via string, n int) {
	if m != nil && n > 0 {
		m.ingested.WithLabelValues(via).Add(float64(n))
	}
}

// Rejected counts events (or whole requests) refused for reason, which
// must come from a fixed set (error codes), never from the input.
func (m *Metrics) Rejected(reason string, n int) {
	if m != nil && n > 0 {
		m.rejected.WithLabelValues(reason).Add(float64(n))
	}
}

// Swept counts events dropped by retention.
func (m *Metrics) Swept(n int) {
	if m != nil && n > 0 {
		m.swept.Add(float64(n))
	}
}

// Gauge registers a gauge read at scrape time.
func (m *Metrics) Gauge(name, help string, fn func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// GaugeVec registers gauges with one label, read at scrape time: fn
// returns the value of each label value.
func (m *Metrics) GaugeVec(name, help, label string, fn func() map[string]float64) {
	m.reg.MustRegister(&vecFunc{desc: prometheus.NewDesc(name, help, []string{label}, nil), fn: fn})
}

type vecFunc struct {
	desc *prometheus.Desc
	fn   func() map[string]float64
}

func (v *vecFunc) Describe(ch chan<- *prometheus.Desc) { ch <- v.desc }
func (v *vecFunc) Collect(ch chan<- prometheus.Metric) {
	for l, x := range v.fn() {
		ch <- prometheus.MustNewConstMetric(v.desc, prometheus.GaugeValue, x, l)
	}
}

// Instrument times the requests h answers, labelled by the route pattern
// the ServeMux inside h matched (r.Pattern, set on the request it was
// given), never by the raw path: the label values stay few.
func (m *Metrics) Instrument(listener string, h http.Handler) http.Handler {
	if m == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched" // refused before routing (Host check, disk guard)
		}
		m.observer(listener, route, codeClass(sw.status)).Observe(time.Since(start).Seconds())
	})
}

func (m *Metrics) observer(listener, route, code string) prometheus.Observer {
	k := observerKey{listener, route, code}
	if o, ok := m.observers.Load(k); ok {
		return o.(prometheus.Observer)
	}
	o := m.duration.WithLabelValues(listener, route, code)
	m.observers.Store(k, o)
	return o
}

func codeClass(status int) string {
	switch {
	case status >= 500:
		return "5xx"
	case status >= 400:
		return "4xx"
	case status >= 300:
		return "3xx"
	}
	return "2xx"
}

// statusWriter remembers the status; Unwrap keeps http.ResponseController
// (flushes, deadlines) working through it.
type statusWriter struct {
	http.ResponseWriter
	status  int
	written bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.written {
		w.status, w.written = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.written = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush and Hijack keep type assertions working (server-sent events, a
// WebSocket upgrade) for code that does not use http.ResponseController.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		w.written = true
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	w.status, w.written = http.StatusSwitchingProtocols, true
	return h.Hijack()
}

// Handler serves the metrics. A client on loopback that did not come
// through a proxy (no X-Forwarded-For, Forwarded or X-Real-IP header)
// needs nothing; any other needs Authorization: Bearer token, and is
// refused when token is empty.
func (m *Metrics) Handler(token string) http.Handler {
	serve := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Local(r) {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if token == "" || !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="shoptrail metrics"`)
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.WriteHeader(http.StatusUnauthorized)
				msg := "send the [metrics] token: Authorization: Bearer <token>"
				if token == "" {
					msg = "/metrics answers loopback clients only; set [metrics] token to read it from elsewhere"
				}
				w.Write([]byte(`{"error":{"code":"unauthorized","field":"Authorization","message":"` + msg + `"}}` + "\n"))
				return
			}
		}
		serve.ServeHTTP(w, r)
	})
}

// Local reports whether r comes from a loopback address directly, not
// forwarded by a proxy on the same machine.
func Local(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return false
	}
	h := r.Header
	return h.Get("X-Forwarded-For") == "" && h.Get("Forwarded") == "" && h.Get("X-Real-IP") == ""
}
