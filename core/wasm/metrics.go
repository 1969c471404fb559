package wasm

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tetratelabs/wazero/api"

	"github.com/lintelhq/lintel/core/metrics"
)

// metric is one metric a plugin defined.
type metric struct {
	kind   int32
	labels int
	vec    prometheus.Collector
}

func hostMetricDefine(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	f := s.f
	kind := int32(stack[0])
	name := readString(mod, uint32(stack[1]), uint32(stack[2]), fnMetricDefine)
	help := readString(mod, uint32(stack[3]), uint32(stack[4]), fnMetricDefine)
	labels := nulList(read(mod, uint32(stack[5]), uint32(stack[6]), fnMetricDefine))
	id, err := f.defineMetric(kind, name, help, labels)
	if err != nil {
		s.warn("plugin metric refused", "metric", name, "error", err)
		stack[0] = i32Result(resultError)
		return
	}
	stack[0] = uint64(id)
}

// defineMetric registers a plugin metric as lintel_plugin_<name> with a
// "filter" label, or returns the id it already has (each new instance
// defines its metrics again).
func (f *Filter) defineMetric(kind int32, name, help string, labels []string) (int, error) {
	f.metricsMu.Lock()
	defer f.metricsMu.Unlock()
	if id, ok := f.metricIDs[name]; ok {
		if m := f.defined[id]; m.kind != kind || m.labels != len(labels) {
			return 0, fmt.Errorf("already defined with another kind or labels")
		}
		return id, nil
	}
	if f.registry == nil {
		return 0, errors.New("no metrics registry")
	}
	opts := prometheus.Opts{Name: "lintel_plugin_" + name, Help: help, ConstLabels: prometheus.Labels{"filter": f.name}}
	if help == "" {
		opts.Help = "Defined by plugin " + f.Plugin + "."
	}
	var vec prometheus.Collector
	switch kind {
	case metricCounter:
		vec = prometheus.NewCounterVec(prometheus.CounterOpts(opts), labels)
	case metricGauge:
		vec = prometheus.NewGaugeVec(prometheus.GaugeOpts(opts), labels)
	case metricHistogram:
		vec = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: opts.Name, Help: opts.Help, ConstLabels: opts.ConstLabels}, labels)
	default:
		return 0, fmt.Errorf("unknown metric kind %d", kind)
	}
	vec, err := metrics.TryRegister(f.registry, vec)
	if err != nil {
		return 0, err
	}
	f.defined = append(f.defined, metric{kind, len(labels), vec})
	f.metricIDs[name] = len(f.defined) - 1
	return len(f.defined) - 1, nil
}

func hostMetricUpdate(ctx context.Context, mod api.Module, stack []uint64) {
	f := stateOf(ctx).f
	id := int(int32(stack[0]))
	v := api.DecodeF64(stack[1])
	values := nulList(read(mod, uint32(stack[2]), uint32(stack[3]), fnMetricUpdate))
	f.metricsMu.Lock()
	if id < 0 || id >= len(f.defined) {
		f.metricsMu.Unlock()
		fail("%s: no metric with id %d", fnMetricUpdate, id)
	}
	m := f.defined[id]
	f.metricsMu.Unlock()
	if len(values) != m.labels {
		fail("%s: metric %d has %d labels, got %d values", fnMetricUpdate, id, m.labels, len(values))
	}
	switch vec := m.vec.(type) {
	case *prometheus.CounterVec:
		if v < 0 {
			fail("%s: a counter cannot decrease", fnMetricUpdate)
		}
		vec.WithLabelValues(values...).Add(v)
	case *prometheus.GaugeVec:
		vec.WithLabelValues(values...).Set(v)
	case *prometheus.HistogramVec:
		vec.WithLabelValues(values...).Observe(v)
	}
}

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
