package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tetratelabs/wazero/api"

	"github.com/lintelhq/lintel/core/metrics"
)

// metric is one metric a plugin defined.
type metric struct {
	name   string
	kind   int32
	labels int
	series *series // of the registered collector (shared across reloads)
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
	f.defined = append(f.defined, metric{name, kind, len(labels), seriesOf(vec)})
	f.metricIDs[name] = len(f.defined) - 1
	return len(f.defined) - 1, nil
}

func hostMetricUpdate(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	f := s.f
	id := int(int32(stack[0]))
	v := api.DecodeF64(stack[1])
	// The label values come NUL-terminated ("a\0b\0"); joined by NUL they
	// are the series' key.
	key := read(mod, uint32(stack[2]), uint32(stack[3]), fnMetricUpdate)
	values := 0
	if len(key) > 0 {
		key = bytes.TrimSuffix(key, []byte{0})
		values = bytes.Count(key, []byte{0}) + 1
	}
	f.metricsMu.Lock()
	if id < 0 || id >= len(f.defined) {
		f.metricsMu.Unlock()
		fail("%s: no metric with id %d", fnMetricUpdate, id)
	}
	m := f.defined[id]
	f.metricsMu.Unlock()
	if values != m.labels {
		fail("%s: metric %d has %d labels, got %d values", fnMetricUpdate, id, m.labels, values)
	}
	if _, ok := m.series.vec.(*prometheus.CounterVec); ok && v < 0 {
		fail("%s: a counter cannot decrease", fnMetricUpdate)
	}
	if err := updateMetric(f, m, v, key); err != nil && m.series.warnOnce() {
		s.warn("plugin metric series refused", "metric", m.name, "error", err)
	}
	if s.rec != nil {
		s.rec.add(memoOp{kind: opMetric, metric: m, v: v, name: string(key)})
	}
}

// updateMetric applies an update the guest made (already checked) to m.
// A series beyond the metric's bound is refused, not failed: the request
// goes on, the series is not made, and it is counted.
func updateMetric[K string | []byte](f *Filter, m metric, v float64, key K) error {
	e, err := admit(m.series, key, m.labels)
	if err != nil {
		f.metrics.seriesRefused(f.name)
		return err
	}
	switch c := e.child.(type) {
	case prometheus.Gauge: // first: a Gauge is a Counter too (Add)
		c.Set(v)
	case prometheus.Counter:
		c.Add(v)
	case prometheus.Observer:
		c.Observe(v)
	}
	return nil
}

// maxSeries bounds the label series of one plugin metric: a plugin that
// takes label values from requests cannot grow /metrics without end.
const maxSeries = 1000

// series is the set of label series a plugin metric has, with the
// minute each was last updated. It is kept with the registered collector,
// which a reload reuses, so a reload does not reset the count.
type series struct {
	vec    prometheus.Collector
	mu     sync.Mutex
	keys   map[string]*seriesEntry // by label values joined with NUL
	warned bool
}

var seriesByCollector sync.Map // prometheus.Collector -> *series

type seriesEntry struct {
	values []string
	last   int64 // seriesMinute of the latest update
	// child is the series' Counter, Gauge or Observer, looked up once.
	child any
}

// seriesMinute counts the minutes since the first plugin metric was
// defined; series not updated for seriesTTL of them are deleted.
var (
	seriesMinute atomic.Int64
	seriesSweep  sync.Once
)

// seriesTTL is how long a plugin metric's series lives without an update:
// a label value that stops coming (a user, a route removed) leaves
// /metrics after it.
const seriesTTL = 10 // minutes

func seriesOf(c prometheus.Collector) *series {
	if s, ok := seriesByCollector.Load(c); ok {
		return s.(*series)
	}
	seriesSweep.Do(func() {
		go func() {
			for range time.Tick(time.Minute) {
				expireSeries(seriesMinute.Add(1) - seriesTTL)
			}
		}()
	})
	s, _ := seriesByCollector.LoadOrStore(c, &series{vec: c, keys: map[string]*seriesEntry{}})
	return s.(*series)
}

// expireSeries deletes the series of every plugin metric last updated
// before minute.
func expireSeries(minute int64) {
	seriesByCollector.Range(func(_, v any) bool {
		s := v.(*series)
		s.mu.Lock()
		defer s.mu.Unlock()
		for key, e := range s.keys {
			if e.last < minute {
				if d, ok := s.vec.(interface{ DeleteLabelValues(...string) bool }); ok {
					d.DeleteLabelValues(e.values...)
				}
				delete(s.keys, key)
			}
		}
		return true
	})
}

// admit returns the series whose key is key, its label values joined by
// NUL (a metric's values are as many as its labels: no ambiguity), made
// when it may be: valid UTF-8, and room for a new one. A series that
// exists costs no allocation.
func admit[K string | []byte](s *series, key K, labels int) (*seriesEntry, error) {
	now := seriesMinute.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.keys[string(key)]; ok {
		e.last = now
		return e, nil
	}
	if !utf8.ValidString(string(key)) {
		return nil, errors.New("a label value is not valid UTF-8")
	}
	if len(s.keys) >= maxSeries {
		return nil, fmt.Errorf("the metric has %d series, the most a plugin metric may have", maxSeries)
	}
	var values []string
	if labels > 0 {
		values = strings.Split(string(key), "\x00")
	}
	e := &seriesEntry{values: values, last: now}
	switch vec := s.vec.(type) {
	case *prometheus.CounterVec:
		e.child = vec.WithLabelValues(values...)
	case *prometheus.GaugeVec:
		e.child = vec.WithLabelValues(values...)
	case *prometheus.HistogramVec:
		e.child = vec.WithLabelValues(values...)
	}
	s.keys[string(key)] = e
	return e, nil
}

func (s *series) warnOnce() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := !s.warned
	s.warned = true
	return first
}

// engineMetrics are the host's own metrics of plugin calls. A nil
// *engineMetrics counts nothing.
type engineMetrics struct {
	calls    *prometheus.HistogramVec
	failures *prometheus.CounterVec
	waits    *prometheus.CounterVec
	refused  *prometheus.CounterVec
	memoHits *prometheus.CounterVec
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
			Help: "Plugin calls that failed, by filter and kind: trap, timeout, cancelled, busy (no free instance in pool_timeout), init, limit (past one of the filter's limits).",
		}, []string{"filter", "kind"})),
		waits: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lintel_plugin_pool_waits_total",
			Help: "Requests that found no idle instance and waited for one or for a new one, by filter.",
		}, []string{"filter"})),
		memoHits: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lintel_plugin_memo_hits_total",
			Help: "Requests a filter's memoized decision served without calling the plugin (memoize), by filter.",
		}, []string{"filter"})),
		refused: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lintel_plugin_metric_series_refused_total",
			Help: "Updates of a plugin metric refused because they would make a series past the cap (1000 a metric) or had a label value that is not UTF-8, by filter.",
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

// memoHits returns the counter of one filter's memo hits, looked up
// once; nil when metrics are off.
func (m *engineMetrics) memoCounter(filter string) prometheus.Counter {
	if m == nil {
		return nil
	}
	return m.memoHits.WithLabelValues(filter)
}

func (m *engineMetrics) failed(filter, kind string) {
	if m != nil {
		m.failures.WithLabelValues(filter, kind).Inc()
	}
}

func (m *engineMetrics) seriesRefused(filter string) {
	if m != nil {
		m.refused.WithLabelValues(filter).Inc()
	}
}

func (m *engineMetrics) waited(filter string) {
	if m != nil {
		m.waits.WithLabelValues(filter).Inc()
	}
}
