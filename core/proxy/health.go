package proxy

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/lintelhq/lintel/core/config"
)

// checker probes a service's targets (services.health_check): each
// target on its own schedule, taken out after Unhealthy failures in a
// row and back after Healthy passes.
type checker struct {
	s    *backend
	cfg  config.HealthCheck
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// StartHealthChecks starts probing the targets, when the service has a
// health check; Close stops it. A gateway calls it when it starts
// serving, so `gatewayd validate` probes nothing.
func (s *backend) StartHealthChecks() {
	if s.checker == nil {
		return
	}
	s.checker.once.Do(func() {
		for _, t := range s.targets {
			s.checker.wg.Add(1)
			go s.checker.run(t)
		}
	})
}

func (c *checker) run(t *target) {
	defer c.wg.Done()
	tick := time.NewTicker(c.cfg.Interval.D())
	defer tick.Stop()
	passes, fails := 0, 0
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		if c.probe(t) {
			passes, fails = passes+1, 0
			if t.checkedDown.Load() && passes >= c.cfg.Healthy {
				t.checkedDown.Store(false)
				c.s.metrics.healthy(c.s.Name, t.url.Host, true)
				c.s.log.Info("upstream target passes its health check again", "target", t.url.Host)
			}
			continue
		}
		passes, fails = 0, fails+1
		if !t.checkedDown.Load() && fails >= c.cfg.Unhealthy {
			t.checkedDown.Store(true)
			c.s.metrics.healthy(c.s.Name, t.url.Host, false)
			c.s.log.Warn("upstream target fails its health check, taken out", "target", t.url.Host, "failures", fails, "path", c.cfg.Path)
		}
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
	req.Header.Set("User-Agent", "lintel-health-check")
	resp, err := c.s.transport.RoundTrip(req)
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

func (c *checker) close() {
	close(c.stop)
	c.wg.Wait()
}
