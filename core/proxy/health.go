package proxy

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"

	"github.com/lintelhq/lintel/core/config"
)

// checker probes a service's targets (services.health_check): every
// target each interval, taken out after Unhealthy failures in a row and
// back after Healthy passes. Targets that join (by DNS) are probed from
// the next round.
type checker struct {
	s   *backend
	cfg config.HealthCheck
}

// round probes every target once, in parallel.
func (c *checker) round() {
	var wg sync.WaitGroup
	for _, t := range c.s.set.Load().targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.observe(t, c.probe(t))
		}()
	}
	wg.Wait()
}

// observe takes one probe's result for t.
func (c *checker) observe(t *target, passed bool) {
	s := c.s
	if passed {
		t.passes, t.fails = t.passes+1, 0
		if t.checkedDown.Load() && t.passes >= c.cfg.Healthy {
			t.checkedDown.Store(false)
			s.metrics.healthy(s.Name, t.url.Host, true)
			s.log.Info("upstream target passes its health check again", "target", t.label())
		}
		return
	}
	t.passes, t.fails = 0, t.fails+1
	if !t.checkedDown.Load() && t.fails >= c.cfg.Unhealthy {
		t.checkedDown.Store(true)
		s.metrics.healthy(s.Name, t.url.Host, false)
		s.log.Warn("upstream target fails its health check, taken out", "target", t.label(), "failures", t.fails, "path", c.cfg.Path)
	}
}

// probe sends one GET of the check's path to t.
func (c *checker) probe(t *target) bool {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout.D())
	defer cancel()
	u := *t.url
	u.Path, u.RawQuery = c.cfg.Path, ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false
	}
	req.Host = t.host
	req.Header.Set("User-Agent", "lintel-health-check")
	resp, err := t.transport.RoundTrip(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if len(c.cfg.Statuses) == 0 {
		return resp.StatusCode >= 200 && resp.StatusCode <= 299
	}
	return slices.Contains(c.cfg.Statuses, resp.StatusCode)
}
