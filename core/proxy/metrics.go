package proxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintelhq/lintel/core/metrics"
)

// Metrics count upstream failures and retries. A nil *Metrics counts
// nothing.
type Metrics struct {
	errors  *prometheus.CounterVec
	retries *prometheus.CounterVec
}

// NewMetrics registers the upstream metrics in reg (nil: none kept).
func NewMetrics(reg *prometheus.Registry) *Metrics {
	if reg == nil {
		return nil
	}
	return &Metrics{
		errors: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lintel_upstream_errors_total",
			Help: "Upstream attempts that failed before a response, by service and kind (connect, timeout, other).",
		}, []string{"service", "kind"})),
		retries: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lintel_upstream_retries_total",
			Help: "Requests sent again to another target after a failed connection, by service.",
		}, []string{"service"})),
	}
}

func (m *Metrics) failed(service, kind string) {
	if m != nil {
		m.errors.WithLabelValues(service, kind).Inc()
	}
}

func (m *Metrics) retried(service string) {
	if m != nil {
		m.retries.WithLabelValues(service).Inc()
	}
}
