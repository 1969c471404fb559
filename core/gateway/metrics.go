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
		parts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lintel_aggregate_part_failures_total",
			Help: "Aggregation parts that failed (error, timeout, bad body), by route and part.",
		}, []string{"route", "part"}),
	}
	m.requests = metrics.Register(reg, m.requests)
	m.duration = metrics.Register(reg, m.duration)
	m.parts = metrics.Register(reg, m.parts)
	return m
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
	for _, p := range x.FailedParts {
		m.parts.WithLabelValues(x.Route, p).Inc()
	}
}
