package wasm

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintelhq/lintel/core/metrics"
)

// engineMetrics are the host's own metrics of plugin calls. A nil
// *engineMetrics counts nothing.
type engineMetrics struct {
	calls    *prometheus.HistogramVec
	failures *prometheus.CounterVec
	waits    *prometheus.CounterVec
}

func newEngineMetrics(reg *prometheus.Registry) *engineMetrics {
	if reg == nil {
		return nil
	}
	return &engineMetrics{
		calls: metrics.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lintel_plugin_call_duration_seconds",
			Help:    "Time spent in one call into a plugin (handle_request, handle_response, lintel_on_complete), by filter.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12),
		}, []string{"filter"})),
		failures: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lintel_plugin_failures_total",
			Help: "Plugin calls that failed, by filter and kind: trap, timeout, cancelled, busy (no free instance in pool_timeout), init.",
		}, []string{"filter", "kind"})),
		waits: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lintel_plugin_pool_waits_total",
			Help: "Requests that found no idle instance and waited for one or for a new one, by filter.",
		}, []string{"filter"})),
	}
}

// callTimer returns the observer of one filter's call durations, looked
// up once so a call pays no label hashing; nil when metrics are off.
func (m *engineMetrics) callTimer(filter string) prometheus.Observer {
	if m == nil {
		return nil
	}
	return m.calls.WithLabelValues(filter)
}

func (m *engineMetrics) failed(filter, kind string) {
	if m != nil {
		m.failures.WithLabelValues(filter, kind).Inc()
	}
}

func (m *engineMetrics) waited(filter string) {
	if m != nil {
		m.waits.WithLabelValues(filter).Inc()
	}
}
