package proxy

import (
	"errors"
	"sync"
	"time"

	"github.com/lintelhq/lintel/core/config"
)

// Circuit states of a target.
const (
	circuitClosed   = "closed"
	circuitOpen     = "open"
	circuitHalfOpen = "half_open"
)

// errCircuitOpen, errBusy and errNoAddress are the gateway's own
// refusals: every target's circuit is open, the service has
// max_concurrent requests in flight, or DNS gave it no address. They are
// answered 503 with Retry-After, and never retried.
var (
	errCircuitOpen = errors.New("every target's circuit is open")
	errBusy        = errors.New("the service has max_concurrent requests in flight")
	errNoAddress   = errors.New("no target address: its names have not resolved")
)

// circuit is one target's breaker (services.breaker): closed, it counts
// failures in a row, and outcomes over a sliding window when a failure
// ratio is set; open, it refuses until its time is up; then one request
// probes it (half-open), and that request's outcome closes it or opens
// it again.
type circuit struct {
	mu        sync.Mutex
	state     string
	failures  int
	openUntil time.Time
	// window holds outcomes in windowSlots slots of a tenth of the
	// breaker's window each.
	window [windowSlots]outcomes
}

const windowSlots = 10

type outcomes struct {
	slot            int64 // which tenth of time it counts (unix nanos / slot length)
	total, failures int
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
func (c *circuit) record(failed bool, b *config.Breaker, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	before := c.state
	switch {
	case !failed && c.state != circuitClosed:
		c.close()
	case c.state == circuitHalfOpen:
		c.state, c.openUntil = circuitOpen, now.Add(b.OpenFor.D())
	case c.state == circuitClosed:
		if failed {
			c.failures++
		} else {
			c.failures = 0
		}
		tripped := c.failures >= b.Failures
		if b.FailureRatio > 0 {
			total, failures := c.count(failed, b.Window.D(), now)
			tripped = tripped || total >= b.MinRequests && float64(failures) >= b.FailureRatio*float64(total)
		}
		if tripped {
			c.close()
			c.state, c.openUntil = circuitOpen, now.Add(b.OpenFor.D())
		}
	}
	return c.state, c.state != before
}

// close closes the circuit with its counts at zero.
func (c *circuit) close() {
	c.state, c.failures, c.window = circuitClosed, 0, [windowSlots]outcomes{}
}

// count adds an outcome to the window and returns the window's totals.
func (c *circuit) count(failed bool, window time.Duration, now time.Time) (total, failures int) {
	slotLen := int64(window / windowSlots)
	slot := now.UnixNano() / slotLen
	o := &c.window[slot%windowSlots]
	if o.slot != slot {
		*o = outcomes{slot: slot}
	}
	o.total++
	if failed {
		o.failures++
	}
	for _, o := range c.window {
		if slot-o.slot < windowSlots {
			total += o.total
			failures += o.failures
		}
	}
	return total, failures
}

// State returns the circuit's state: "closed", "open" or "half_open".
func (c *circuit) State() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}
