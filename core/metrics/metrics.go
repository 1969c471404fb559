// Package metrics holds what Lintel's packages share about Prometheus
// metrics: registration that survives a reload.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c in reg and returns it; when reg already holds an
// identical collector (the same metric, registered by the gateway a
// reload replaced) it returns that one, so counters carry on across
// reloads. A nil reg keeps c unregistered. Any other conflict panics, as
// MustRegister does: metric definitions are the program's.
func Register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}
