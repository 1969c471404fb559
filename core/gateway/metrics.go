package gateway

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintelhq/lintel/core/filter"
)

// metrics are the gateway's own request metrics.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lintel_requests_total",
			Help: "Requests served, by listener, route, method and status.",
		}, []string{"listener", "route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lintel_request_duration_seconds",
			Help:    "Time from a request's arrival to the last byte of its response.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"listener", "route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// knownMethods keep the method label's values bounded.
var knownMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true, "CONNECT": true, "TRACE": true}

func (m *metrics) observe(x *filter.Exchange) {
	if m == nil {
		return
	}
	method := x.Request.Method
	if !knownMethods[method] {
		method = "other"
	}
	m.requests.WithLabelValues(x.Listener, x.Route, method, strconv.Itoa(x.Status)).Inc()
	m.duration.WithLabelValues(x.Listener, x.Route).Observe(x.Duration.Seconds())
}
