package proxy

import (
	"errors"
	"sync"
	"time"
)

// Circuit states of a target.
const (
	circuitClosed   = "closed"
	circuitOpen     = "open"
	circuitHalfOpen = "half_open"
)

// errCircuitOpen and errBusy are the gateway's own refusals: every
// target's circuit is open, or the service has max_concurrent requests in
// flight. Both are answered 503 with Retry-After, and never retried.
var (
	errCircuitOpen = errors.New("every target's circuit is open")
	errBusy        = errors.New("the service has max_concurrent requests in flight")
)

// circuit is one target's breaker (services.breaker): closed, it counts
// failures in a row; open, it refuses until its time is up; then one
// request probes it (half-open), and that request's outcome closes it or
// opens it again.
type circuit struct {
	mu        sync.Mutex
	state     string
	failures  int
	openUntil time.Time
}

// allow reports whether a request may go to the target now; the first
// request after an open circuit's time becomes its probe.
func (c *circuit) allow(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case circuitOpen:
		if now.Before(c.openUntil) {
			return false
		}
		c.state = circuitHalfOpen
		return true
	case circuitHalfOpen:
		return false // its probe is under way
	}
	return true
}

// blocked reports, without taking a probe's place, whether allow would
// refuse.
func (c *circuit) blocked(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == circuitHalfOpen || c.state == circuitOpen && now.Before(c.openUntil)
}

// record takes a request's outcome and returns the state it leaves,
// and whether it changed.
func (c *circuit) record(failed bool, threshold int, openFor time.Duration, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	before := c.state
	switch {
	case !failed:
		c.state, c.failures = circuitClosed, 0
	case c.state == circuitHalfOpen:
		c.state, c.openUntil = circuitOpen, now.Add(openFor)
	default:
		c.failures++
		if c.failures >= threshold {
			c.state, c.openUntil, c.failures = circuitOpen, now.Add(openFor), 0
		}
	}
	return c.state, c.state != before
}

// State returns the circuit's state: "closed", "open" or "half_open".
func (c *circuit) State() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}
