package gateway

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/metrics"
)

// requestMetrics are the gateway's own request metrics.
type requestMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	sizeIn   *prometheus.HistogramVec
	sizeOut  *prometheus.HistogramVec
	parts    *prometheus.CounterVec
}

func newRequestMetrics(reg *prometheus.Registry) *requestMetrics {
	if reg == nil {
		return nil
	}
	m := &requestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lintel_requests_total",
			Help: "Requests served, by listener, route, method and status.",
		}, []string{"listener", "route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lintel_request_duration_seconds",
			Help:    "Time from a request's arrival to the last byte of its response.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"listener", "route"}),
		sizeIn: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lintel_request_size_bytes",
			Help:    "Request body bytes read, by listener and route.",
			Buckets: prometheus.ExponentialBuckets(64, 4, 10),
		}, []string{"listener", "route"}),
		sizeOut: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lintel_response_size_bytes",
			Help:    "Response body bytes written, by listener and route.",
			Buckets: prometheus.ExponentialBuckets(64, 4, 10),
		}, []string{"listener", "route"}),
		parts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lintel_aggregate_part_failures_total",
			Help: "Aggregation parts that failed (error, timeout, bad body), by route and part.",
		}, []string{"route", "part"}),
	}
	m.requests = metrics.Register(reg, m.requests)
	m.duration = metrics.Register(reg, m.duration)
	m.sizeIn = metrics.Register(reg, m.sizeIn)
	m.sizeOut = metrics.Register(reg, m.sizeOut)
	m.parts = metrics.Register(reg, m.parts)
	return m
}

// startParts makes an aggregate route's part failure counters exist, at
// zero, before their first failure.
func (m *requestMetrics) startParts(route string, parts []string) {
	if m == nil {
		return
	}
	for _, p := range parts {
		m.parts.WithLabelValues(route, p)
	}
}

// knownMethods keep the method label's values bounded.
var knownMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true, "CONNECT": true, "TRACE": true}

func (m *requestMetrics) observe(x *exchange.Exchange) {
	if m == nil {
		return
	}
	method := x.Request.Method
	if !knownMethods[method] {
		method = "other"
	}
	m.requests.WithLabelValues(x.Listener, x.Route, method, strconv.Itoa(x.Status)).Inc()
	m.duration.WithLabelValues(x.Listener, x.Route).Observe(x.Duration.Seconds())
	m.sizeIn.WithLabelValues(x.Listener, x.Route).Observe(float64(x.BytesIn))
	m.sizeOut.WithLabelValues(x.Listener, x.Route).Observe(float64(x.BytesOut))
	for _, p := range x.FailedParts {
		m.parts.WithLabelValues(x.Route, p).Inc()
	}
}
