// Package metrics holds what Lintel's packages share about Prometheus
// metrics: registration that survives a reload.
package metrics

import (
	"errors"
	"fmt"
	"reflect"

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
	out, err := TryRegister(reg, c)
	if err != nil {
		panic(err)
	}
	return out
}

// TryRegister is Register for metrics defined at run time (by plugins):
// a conflict, or a definition the registry refuses, is an error, never a
// panic.
func TryRegister[C prometheus.Collector](reg *prometheus.Registry, c C) (out C, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) && reflect.TypeOf(are.ExistingCollector) == reflect.TypeOf(c) {
			return are.ExistingCollector.(C), nil
		}
		return out, err
	}
	return c, nil
}
