// Package gateway assembles a running gateway from a Config: services,
// filters, routers and listeners. It is the only package that knows all
// the others.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintelhq/lintel/core/aggregate"
	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/filter"
	"github.com/lintelhq/lintel/core/problem"
	"github.com/lintelhq/lintel/core/proxy"
	"github.com/lintelhq/lintel/core/router"
)

// Options are what a Gateway needs besides its Config.
type Options struct {
	// Log receives the gateway's own log. Default: slog.Default().
	Log *slog.Logger
	// Filters builds the filters of [filters.*]. A config that names
	// filters needs one.
	Filters filter.Factory
	// Metrics receives the gateway's request metrics; nil keeps none.
	Metrics *prometheus.Registry
}

// Gateway is a gateway built from one Config. Build it with New, then
// Start it; Shutdown stops it.
type Gateway struct {
	cfg       *config.Config
	log       *slog.Logger
	services  map[string]*proxy.Service
	filters   map[string]filter.Filter
	listeners []*listener
	ids       *requestIDs
	metrics   *metrics

	ready   atomic.Bool
	serving sync.WaitGroup
}

// New builds everything a config describes without opening a socket, so
// it doubles as the deep check of `gatewayd validate`. Errors name the
// file, line and key (config.Errors).
func New(cfg *config.Config, opt Options) (*Gateway, error) {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	g := &Gateway{
		cfg:      cfg,
		log:      opt.Log,
		services: map[string]*proxy.Service{},
		filters:  map[string]filter.Filter{},
		ids:      newRequestIDs(),
		metrics:  newMetrics(opt.Metrics),
	}
	var errs config.Errors
	fail := func(key, format string, args ...any) { errs = append(errs, cfg.Errorf(key, format, args...)) }

	for _, name := range sortedKeys(cfg.Services) {
		s, err := proxy.NewService(cfg.Services[name], g.log)
		if err != nil {
			fail("services."+name, "%v", err)
			continue
		}
		g.services[name] = s
	}
	for _, name := range sortedKeys(cfg.Filters) {
		if opt.Filters == nil {
			fail("filters."+name, "filters need the plugin engine, which this build does not have")
			continue
		}
		f, err := opt.Filters.New(cfg.Filters[name])
		if err != nil {
			fail("filters."+name, "%v", err)
			continue
		}
		g.filters[name] = f
	}

	byName := map[string]*listener{}
	for _, name := range sortedKeys(cfg.Listeners) {
		l := newListener(g, cfg.Listeners[name])
		byName[name] = l
		g.listeners = append(g.listeners, l)
	}
	if len(errs) == 0 {
		for _, l := range g.listeners {
			l.chain = g.chain(l.cfg.Filters)
		}
		for _, rc := range cfg.Routes {
			if err := g.addRoute(byName[rc.Listener], rc); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		g.close()
		errs.Sort()
		return nil, errs
	}
	return g, nil
}

func (g *Gateway) chain(names []string) filter.Chain {
	c := make(filter.Chain, len(names))
	for i, n := range names {
		c[i] = g.filters[n]
	}
	return c
}

// addRoute compiles one [[routes]] entry into its listener's router.
func (g *Gateway) addRoute(l *listener, rc *config.Route) *config.Error {
	key := config.RouteKey(rc.Index)
	rt := &route{name: rc.Name, chain: g.chain(rc.Filters)}
	if rc.Aggregate != nil {
		agg, err := g.aggregate(rc, key)
		if err != nil {
			return err
		}
		rt.target = agg.Serve
	} else {
		svc := g.services[rc.Service]
		if rc.Rewrite != "" {
			tpl, err := router.ParseTemplate(rc.Rewrite, rc.Path)
			if err != nil {
				return g.cfg.Errorf(key+".rewrite", "%v", err)
			}
			rt.target = func(x *filter.Exchange, w http.ResponseWriter, ps router.Params) {
				svc.Forward(x, w, tpl.Expand(ps))
			}
		} else {
			rt.target = func(x *filter.Exchange, w http.ResponseWriter, _ router.Params) {
				// Route filters may have changed the path since routing:
				// what is forwarded is normalised like what was routed.
				p, err := router.Normalize(x.Request.URL)
				if err != nil {
					problem.Error(w, http.StatusInternalServerError, "a filter set an invalid path: "+err.Error())
					return
				}
				svc.Forward(x, w, p)
			}
		}
	}
	l.routes++
	err := l.router.Add(router.Spec{ID: rc.Index, Host: rc.Host, Path: rc.Path, Methods: rc.Methods}, rt)
	var ce *router.ConflictError
	if errors.As(err, &ce) {
		if ce.Other < 0 {
			return g.cfg.Errorf(key+".path", "invalid path %q: %s", rc.Path, ce.Reason)
		}
		other := g.cfg.Routes[ce.Other]
		return g.cfg.Errorf(key+".path", "path %q conflicts with routes[%d] path %q (%s:%d): %s",
			rc.Path, ce.Other, other.Path, g.cfg.File, g.cfg.Line(config.RouteKey(ce.Other)+".path"), ce.Reason)
	}
	return nil
}

func (g *Gateway) aggregate(rc *config.Route, key string) (*aggregate.Aggregate, *config.Error) {
	ac := rc.Aggregate
	agg := &aggregate.Aggregate{
		Timeout:        ac.Timeout.D(),
		ForwardHeaders: ac.ForwardHeaders,
		MaxPartBody:    int64(ac.MaxPartBody),
	}
	for i, pc := range ac.Parts {
		tpl, err := router.ParseTemplate(pc.Path, rc.Path)
		if err != nil {
			return nil, g.cfg.Errorf(fmt.Sprintf("%s.aggregate.parts[%d].path", key, i), "%v", err)
		}
		agg.Parts = append(agg.Parts, &aggregate.Part{
			Key:      pc.Key,
			Backend:  g.services[pc.Service],
			Path:     tpl,
			Timeout:  pc.Timeout.D(),
			Optional: pc.Optional,
			Shape:    aggregate.NewShape(pc.Take, pc.Allow, pc.Deny, pc.Rename),
		})
	}
	return agg, nil
}

// Start opens every listener and serves in the background. On error no
// listener is left open.
func (g *Gateway) Start() error {
	for _, l := range g.listeners {
		ln, err := net.Listen("tcp", l.cfg.Listen)
		if err != nil {
			g.closeListeners()
			return fmt.Errorf("listener %q: %w", l.cfg.Name, err)
		}
		l.ln = ln
	}
	for _, l := range g.listeners {
		g.serving.Add(1)
		go func() {
			defer g.serving.Done()
			if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.log.Error("listener stopped", "listener", l.cfg.Name, "error", err)
			}
		}()
		g.log.Info("listening", "listener", l.cfg.Name, "addr", l.ln.Addr().String(), "routes", l.routes)
	}
	g.ready.Store(true)
	return nil
}

// Addr returns the address a listener is bound to ("" before Start).
func (g *Gateway) Addr(listener string) string {
	for _, l := range g.listeners {
		if l.cfg.Name == listener && l.ln != nil {
			return l.ln.Addr().String()
		}
	}
	return ""
}

// Filters returns the filters the gateway built, by name.
func (g *Gateway) Filters() map[string]filter.Filter { return g.filters }

// Ready reports whether the gateway is serving and not shutting down.
func (g *Gateway) Ready() bool { return g.ready.Load() }

// Shutdown marks the gateway not ready, keeps serving for the configured
// shutdown_delay, then closes the listeners and waits for in-flight
// requests up to drain_timeout (or ctx); what is still running then is cut.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.ready.Store(false)
	if d := g.cfg.Server.ShutdownDelay.D(); d > 0 {
		g.log.Info("not ready; waiting before closing listeners", "delay", d)
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Server.DrainTimeout.D())
	defer cancel()
	var wg sync.WaitGroup
	var cut atomic.Bool
	for _, l := range g.listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.srv.Shutdown(ctx); err != nil {
				cut.Store(true)
				_ = l.srv.Close()
			}
		}()
	}
	wg.Wait()
	g.serving.Wait()
	g.close()
	if cut.Load() {
		return errors.New("drain timeout: in-flight requests were cut")
	}
	return nil
}

// Close releases what New built without serving (for a gateway that was
// never started, such as `gatewayd validate`'s).
func (g *Gateway) Close() { g.close() }

func (g *Gateway) closeListeners() {
	for _, l := range g.listeners {
		if l.ln != nil {
			_ = l.ln.Close()
			l.ln = nil
		}
	}
}

// close releases what New built: upstream pools and filters.
func (g *Gateway) close() {
	for _, s := range g.services {
		s.Close()
	}
	for _, f := range g.filters {
		if c, ok := f.(io.Closer); ok {
			_ = c.Close()
		}
	}
}

// errorLog sends net/http's own log lines (TLS handshake errors, panics)
// to slog.
func errorLog(l *slog.Logger) *log.Logger {
	return log.New(logWriter{l}, "", 0)
}

type logWriter struct{ l *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Warn(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
