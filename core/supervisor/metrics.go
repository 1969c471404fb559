package supervisor

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintelhq/lintel/core/metrics"
)

// reloadMetrics count reloads, as Prometheus counts its own.
type reloadMetrics struct {
	reloads  *prometheus.CounterVec
	ok       prometheus.Gauge
	lastGood prometheus.Gauge
}

func newReloadMetrics(reg *prometheus.Registry) reloadMetrics {
	m := reloadMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lintel_config_reloads_total",
			Help: "Reloads of the configuration, by result (success, failure).",
		}, []string{"result"}),
		ok: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lintel_config_last_reload_successful",
			Help: "1 when the latest reload succeeded (or none was tried), 0 when the running configuration is older than the file.",
		}),
		lastGood: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lintel_config_last_reload_success_timestamp_seconds",
			Help: "When the running configuration was loaded (Unix time).",
		}),
	}
	m.reloads = metrics.Register(reg, m.reloads)
	m.ok = metrics.Register(reg, m.ok)
	m.lastGood = metrics.Register(reg, m.lastGood)
	m.ok.Set(1)
	m.lastGood.Set(float64(time.Now().Unix()))
	return m
}

func (m reloadMetrics) result(ok bool) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.ok.Set(1)
		m.lastGood.Set(float64(time.Now().Unix()))
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
	m.ok.Set(0)
}

// poolCollector reports the instance pools of the current generation's
// plugins. It reads them when scraped, so a reload needs no
// re-registration.
type poolCollector struct{ s *Supervisor }

var poolDesc = prometheus.NewDesc("lintel_plugin_instances", "Plugin instances alive, by filter and state (busy, idle).", []string{"filter", "state"}, nil)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- poolDesc }

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c.s.cur.Load().engine.Filters() {
		live, idle := f.Stats()
		ch <- prometheus.MustNewConstMetric(poolDesc, prometheus.GaugeValue, float64(live-idle), f.Name(), "busy")
		ch <- prometheus.MustNewConstMetric(poolDesc, prometheus.GaugeValue, float64(idle), f.Name(), "idle")
	}
}
