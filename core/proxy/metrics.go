package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintelhq/lintel/core/metrics"
)

// Metrics count upstream failures and retries. A nil *Metrics counts
// nothing.
type Metrics struct {
	errors   *prometheus.CounterVec
	retries  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	up       *prometheus.GaugeVec
	circuits *prometheus.GaugeVec
	refused  *prometheus.CounterVec
	denied   *prometheus.CounterVec
	held     *prometheus.GaugeVec
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
			Help: "Requests sent again after a failed attempt, by service and the condition retried (connect, reset, timeout, or the status).",
		}, []string{"service", "on"})),
		denied: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lintel_upstream_retries_denied_total",
			Help: "Retries the policy allowed but the service's retry budget did not, by service.",
		}, []string{"service"})),
		duration: metrics.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lintel_upstream_duration_seconds",
			Help:    "Time from sending a request to a target to its response head (or failure), by service and target.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"service", "target"})),
		circuits: metrics.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lintel_upstream_circuit_open",
			Help: "1 while a target's circuit is open or half-open (services with a breaker only).",
		}, []string{"service", "target"})),
		refused: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lintel_upstream_refused_total",
			Help: "Requests the gateway answered 503 itself instead of sending them, by service and reason (circuit_open, max_concurrent, no_address: DNS gave none).",
		}, []string{"service", "reason"})),
		held: metrics.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lintel_upstream_requests",
			Help: "Requests holding (state=in_flight) or awaiting (state=pending) a slot of a service's max_concurrent (services with max_concurrent only).",
		}, []string{"service", "state"})),
		up: metrics.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lintel_upstream_target_healthy",
			Help: "1 while a target passes its service's active health check, 0 while it is taken out (services with health_check only).",
		}, []string{"service", "target"})),
	}
}

// healthy records a target's health check state.
func (m *Metrics) healthy(service, target string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.up.WithLabelValues(service, target).Set(v)
}

// start makes a service's counters exist, at zero, before their first
// event, so a dashboard's rate() sees the first one.
func (m *Metrics) start(service string) {
	if m == nil {
		return
	}
	for _, kind := range []string{"connect", "timeout", "other"} {
		m.errors.WithLabelValues(service, kind)
	}
	for _, on := range []string{"connect", "reset"} {
		m.retries.WithLabelValues(service, on)
	}
	m.denied.WithLabelValues(service)
	for _, reason := range []string{"circuit_open", "max_concurrent", "no_address"} {
		m.refused.WithLabelValues(service, reason)
	}
}

// latency returns what records one target's request latencies, its
// series looked up once rather than on every request.
func (m *Metrics) latency(service, target string) func(time.Duration) {
	if m == nil {
		return func(time.Duration) {}
	}
	o := m.duration.WithLabelValues(service, target)
	return func(d time.Duration) { o.Observe(d.Seconds()) }
}

func (m *Metrics) failed(service, kind string) {
	if m != nil {
		m.errors.WithLabelValues(service, kind).Inc()
	}
}

func (m *Metrics) retried(service, on string) {
	if m != nil {
		m.retries.WithLabelValues(service, on).Inc()
	}
}

func (m *Metrics) retryDenied(service string) {
	if m != nil {
		m.denied.WithLabelValues(service).Inc()
	}
}

// circuit records a target's circuit state.
func (m *Metrics) circuit(service, target, state string) {
	if m == nil {
		return
	}
	v := 1.0
	if state == circuitClosed {
		v = 0
	}
	m.circuits.WithLabelValues(service, target).Set(v)
}

// slots returns the gauges of a service's requests in flight and
// pending, looked up once; nil without metrics.
func (m *Metrics) slots(service string) (inFlight, pending prometheus.Gauge) {
	if m == nil {
		return nil, nil
	}
	return m.held.WithLabelValues(service, "in_flight"), m.held.WithLabelValues(service, "pending")
}

// forget drops the series of a target that left.
func (m *Metrics) forget(service, target string) {
	if m == nil {
		return
	}
	m.duration.DeleteLabelValues(service, target)
	m.circuits.DeleteLabelValues(service, target)
	m.up.DeleteLabelValues(service, target)
}

// rejected counts a request the gateway refused for a service.
func (m *Metrics) rejected(service, reason string) {
	if m == nil {
		return
	}
	m.refused.WithLabelValues(service, reason).Inc()
}
