// Package gateway assembles a running gateway from a Config: services,
// filters, routers and listeners. It is the only package that knows all
// the others.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintelhq/lintel/core/aggregate"
	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/filter"
	"github.com/lintelhq/lintel/core/problem"
	"github.com/lintelhq/lintel/core/proxy"
	"github.com/lintelhq/lintel/core/router"
	"github.com/lintelhq/lintel/core/tracing"
	"github.com/lintelhq/lintel/core/transcode"
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
	// Version is gatewayd's version, for the traces' service.version.
	Version string
}

// Gateway is a gateway built from one Config. Build it with New and
// serve it with a Server (which can replace it with another on reload);
// Retire or Close releases it.
type Gateway struct {
	cfg       *config.Config
	log       *slog.Logger
	services  map[string]*proxy.Service
	protos    map[string]*transcode.Descriptors // of the grpc services
	filters   map[string]filter.Filter
	listeners []*listener
	routes    []RouteInfo
	ids       *requestIDs
	metrics   *requestMetrics
	tracer    *tracing.Tracer // nil without [tracing]
	registry  *prometheus.Registry

	// required are the services routes forward to; readiness needs
	// each to have a target up.
	required []*proxy.Service

	serving  atomic.Bool
	stopping atomic.Bool
	retired  atomic.Bool
	active   atomic.Int64 // requests running
	closer   sync.Once
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
		protos:   map[string]*transcode.Descriptors{},
		filters:  map[string]filter.Filter{},
		ids:      newRequestIDs(),
		metrics:  newRequestMetrics(opt.Metrics),
		registry: opt.Metrics,
	}
	upstreamMetrics := proxy.NewMetrics(opt.Metrics)
	var errs config.Errors
	fail := func(key, format string, args ...any) { errs = append(errs, cfg.Errorf(key, format, args...)) }
	var err error
	if g.tracer, err = tracing.New(&cfg.Tracing, opt.Version, g.log); err != nil {
		fail("tracing.endpoint", "%v", err)
	}

	for _, name := range slices.Sorted(maps.Keys(cfg.Services)) {
		sc := cfg.Services[name]
		tc, cerr := upstreamTLS(cfg, sc)
		if cerr != nil {
			errs = append(errs, cerr)
			continue
		}
		if tc != nil && tc.InsecureSkipVerify {
			g.log.Warn("upstream certificates are not verified (tls.insecure_skip_verify)", "service", name)
		}
		g.services[name] = proxy.NewService(sc, tc, upstreamMetrics, g.log)
		switch {
		case sc.Protocol == "grpc" && sc.Reflection:
			// The first target answers for all: they serve one API.
			ctx, cancel := context.WithTimeout(context.Background(), 2*sc.ConnectTimeout.D()+time.Second)
			t := sc.TargetURLs[0]
			var rtc *tls.Config
			if t.Scheme == "https" {
				rtc = tc
				if rtc == nil {
					rtc = &tls.Config{ServerName: t.Hostname()}
				}
			}
			d, err := transcode.Reflect(ctx, name+" "+strings.Join(sc.Targets, " "), t.Host, rtc)
			cancel()
			switch {
			case d == nil:
				fail("services."+name+".reflection", "%v", err)
				continue
			case err != nil:
				g.log.Warn("gRPC reflection failed; the descriptors it last gave are kept", "service", name, "error", err)
			}
			g.protos[name] = d
		case sc.Protocol == "grpc" && sc.DescriptorSet != "":
			d, err := transcode.LoadSet(sc.DescriptorSet)
			if err != nil {
				fail("services."+name+".descriptor_set", "%v", err)
				continue
			}
			g.protos[name] = d
		case sc.Protocol == "grpc":
			d, err := transcode.Compile(context.Background(), sc.Protos, sc.ProtoPaths)
			if err != nil {
				fail("services."+name+".protos", "%v", err)
				continue
			}
			g.protos[name] = d
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Filters)) {
		if opt.Filters == nil {
			fail("filters."+name, "filters need the plugin engine, which this build does not have")
			continue
		}
		f, err := opt.Filters.New(cfg.Filters[name])
		var cerr config.Errors
		if errors.As(err, &cerr) {
			errs = append(errs, cerr...) // positioned at the keys already
			continue
		}
		if err != nil {
			fail("filters."+name, "%v", err)
			continue
		}
		g.filters[name] = f
	}

	byName := map[string]*listener{}
	for _, name := range slices.Sorted(maps.Keys(cfg.Listeners)) {
		l := newListener(g, cfg.Listeners[name])
		var err *config.Error
		if l.tls, err = listenerTLS(cfg, l.cfg); err != nil {
			errs = append(errs, err)
		}
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
	required := map[*proxy.Service]bool{}
	for _, rc := range cfg.Routes {
		if s := g.services[rc.Service]; s != nil {
			required[s] = true
		}
		if rc.Aggregate != nil {
			for _, p := range rc.Aggregate.Parts {
				if s := g.services[p.Service]; s != nil && !p.Optional {
					required[s] = true
				}
			}
		}
	}
	for s := range required {
		g.required = append(g.required, s)
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
	rt := &route{name: rc.Name, chain: g.chain(rc.Filters), upgrades: rc.Upgrades}
	switch {
	case rc.Aggregate != nil:
		agg, err := g.aggregate(rc, key)
		if err != nil {
			return err
		}
		rt.target = agg.Serve
	case rc.GRPC != nil && rc.GRPC.Annotations:
		return g.addAnnotatedRoutes(l, rc)
	case rc.GRPC != nil:
		d := g.protos[rc.Service]
		if d == nil {
			return nil // the service's protos failed, and said so
		}
		m, err := transcode.NewMethod(d, g.service(rc.Service, rc.Retry), rc.GRPC, rc.Path, g.cfg.Services[rc.Service].JSON)
		if err != nil {
			return g.cfg.Errorf(key+".grpc", "%v", err)
		}
		rt.target, rt.grpcMethod = m.Serve, rc.GRPC.Method
	default:
		svc := g.service(rc.Service, rc.Retry)
		// path is the upstream path of a request.
		path := func(x *exchange.Exchange, _ router.Params) (string, error) {
			// Route filters may have changed the path since routing:
			// what is forwarded is normalised like what was routed.
			return router.Normalize(x.Request.URL)
		}
		if rc.Rewrite != "" {
			tpl, err := router.ParseTemplate(rc.Rewrite, rc.Path)
			if err != nil {
				return g.cfg.Errorf(key+".rewrite", "%v", err)
			}
			path = func(_ *exchange.Exchange, ps router.Params) (string, error) { return tpl.Expand(ps), nil }
		}
		grpcWeb := g.cfg.Services[rc.Service].Protocol == "grpc"
		var mirror *proxy.Mirror
		if rc.Mirror != nil {
			mirror = proxy.NewMirror(g.services[rc.Mirror.Service], rc.Name, rc.Mirror, g.registry)
		}
		var canary *proxy.Service
		if rc.Canary != nil {
			canary = g.service(rc.Canary.Service, rc.Retry)
		}
		chooser := canaryChooser(svc, canary, rc.Canary)
		rt.target = func(x *exchange.Exchange, w http.ResponseWriter, ps router.Params) {
			svc := chooser(x.Request)
			p, err := path(x, ps)
			if err != nil {
				x.AnsweredBy = exchange.ByGateway
				problem.Error(w, http.StatusInternalServerError, "a filter set an invalid path: "+err.Error())
				return
			}
			if mirror != nil && x.Request.Header.Get("Upgrade") == "" {
				mirror.Copy(x, p)
			}
			if grpcWeb && transcode.IsWeb(x.Request) {
				// A browser's gRPC-Web call, made as gRPC.
				transcode.ServeWeb(svc, x, w, p)
				return
			}
			svc.Forward(x, w, p)
		}
	}
	return g.add(l, rc, router.Spec{ID: rc.Index, Host: rc.Host, Path: rc.Path, Methods: rc.Methods}, rt)
}

// addAnnotatedRoutes adds a route for every google.api.http binding of
// the service's methods, each with the entry's listener, host and
// filters.
func (g *Gateway) addAnnotatedRoutes(l *listener, rc *config.Route) *config.Error {
	key := config.RouteKey(rc.Index)
	d := g.protos[rc.Service]
	if d == nil {
		return nil // the service's protos failed, and said so
	}
	rules, err := d.Rules()
	if err == nil && len(rules) == 0 {
		err = errors.New("no method of the service's protos has a google.api.http annotation")
	}
	if err != nil {
		return g.cfg.Errorf(key+".grpc.annotations", "%v", err)
	}
	for _, rule := range rules {
		body := rule.Body
		m, err := transcode.NewMethod(d, g.service(rc.Service, rc.Retry), &config.RouteGRPC{Method: rule.Method, Body: &body, ForwardHeaders: rc.GRPC.ForwardHeaders}, rule.Path, g.cfg.Services[rc.Service].JSON)
		if err != nil {
			return g.cfg.Errorf(key+".grpc.annotations", "%s: %v", rule.Method, err)
		}
		name := rc.Name
		if name == "" {
			name = rule.HTTPMethod + " " + rc.Host + rule.Path
		}
		rt := &route{name: name, chain: g.chain(rc.Filters), upgrades: rc.Upgrades, target: m.Serve, grpcMethod: rule.Method}
		spec := router.Spec{ID: rc.Index, Host: rc.Host, Path: rule.Path, Methods: []string{rule.HTTPMethod}}
		if err := g.add(l, rc, spec, rt); err != nil {
			return err
		}
	}
	return nil
}

// RouteInfo describes one route as served.
type RouteInfo struct {
	Listener, Name, Host string
	Methods              []string
	Path                 string
	// Target is "service NAME", "aggregate" or "grpc SERVICE METHOD".
	Target string
}

// Upstreams returns each service's state, by service name.
func (g *Gateway) Upstreams() map[string]proxy.ServiceState {
	out := make(map[string]proxy.ServiceState, len(g.services))
	for name, s := range g.services {
		out[name] = s.State()
	}
	return out
}

// Routes lists the routes served, in the order they were added.
func (g *Gateway) Routes() []RouteInfo { return slices.Clone(g.routes) }

// add puts a compiled route into its listener's router.
func (g *Gateway) add(l *listener, rc *config.Route, spec router.Spec, rt *route) *config.Error {
	key := config.RouteKey(rc.Index)
	target := "service " + rc.Service
	switch {
	case rc.Aggregate != nil:
		target = "aggregate"
	case rc.GRPC != nil:
		target = "grpc " + rc.Service + " " + rt.grpcMethod
	}
	rt.path = spec.Path
	g.routes = append(g.routes, RouteInfo{Listener: l.cfg.Name, Name: rt.name, Host: spec.Host, Methods: spec.Methods, Path: spec.Path, Target: target})
	l.routes++
	err := l.router.Add(spec, rt)
	var ce *router.ConflictError
	if errors.As(err, &ce) {
		if ce.Other < 0 {
			return g.cfg.Errorf(key+".path", "invalid path %q: %s", spec.Path, ce.Reason)
		}
		other := g.cfg.Routes[ce.Other]
		return g.cfg.Errorf(key+".path", "path %q conflicts with routes[%d] path %q (%s:%d): %s",
			spec.Path, ce.Other, other.Path, g.cfg.File, g.cfg.Line(config.RouteKey(ce.Other)+".path"), ce.Reason)
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
	keys := make([]string, len(ac.Parts))
	for i, pc := range ac.Parts {
		keys[i] = pc.Key
	}
	for i, pc := range ac.Parts {
		part := &aggregate.Part{
			Key:      pc.Key,
			Backend:  g.services[pc.Service],
			Timeout:  pc.Timeout.D(),
			Optional: pc.Optional,
			Shape:    aggregate.NewShape(pc.Take, pc.Allow, pc.Deny, pc.Rename),
		}
		pk := fmt.Sprintf("%s.aggregate.parts[%d]", key, i)
		if pc.Method != "" {
			d := g.protos[pc.Service]
			if d == nil {
				return nil, g.cfg.Errorf(pk+".service", "service %q has no protos", pc.Service)
			}
			none := ""
			m, err := transcode.NewMethod(d, g.services[pc.Service], &config.RouteGRPC{Method: pc.Method, Body: &none}, rc.Path, g.cfg.Services[pc.Service].JSON)
			if err == nil && m.Streaming() {
				err = errors.New("a part takes one answer; this method streams")
			}
			if err != nil {
				return nil, g.cfg.Errorf(pk+".method", "%v", err)
			}
			part.Call = m.JSON
		} else {
			req, err := aggregate.ParseRequest(pc.Path, pc.Headers, rc.Path, keys, i)
			var he *aggregate.HeaderError
			if errors.As(err, &he) {
				return nil, g.cfg.Errorf(pk+".headers."+he.Name, "%v", err)
			}
			if err != nil {
				return nil, g.cfg.Errorf(pk+".path", "%v", err)
			}
			part.Request = req
		}
		agg.Parts = append(agg.Parts, part)
	}
	if err := aggregate.Link(agg.Parts); err != nil {
		return nil, g.cfg.Errorf(key+".aggregate.parts", "%v", err)
	}
	g.metrics.startParts(rc.Name, keys)
	return agg, nil
}

// Ready reports whether NotReady has nothing to say.
func (g *Gateway) Ready() bool { return len(g.NotReady()) == 0 }

// NotReady says why the gateway should not get traffic: it is not
// serving yet, or shutting down, or (unless admin.ready_requires_upstreams
// is off) a service a route needs has every target cooling down after a
// failure. None when it is ready.
func (g *Gateway) NotReady() []string {
	switch {
	case g.stopping.Load():
		return []string{"shutting down"}
	case g.retired.Load():
		return []string{"configuration replaced"}
	case !g.serving.Load():
		return []string{"not serving yet"}
	}
	if !g.cfg.Admin.ReadyRequiresUpstreams {
		return nil
	}
	var reasons []string
	for _, s := range g.required {
		if !s.Healthy() {
			reasons = append(reasons, fmt.Sprintf("service %q has no target up (each failed and is cooling down)", s.Name))
		}
	}
	slices.Sort(reasons)
	return reasons
}

// Close releases what New built without serving (for a gateway that was
// never started, such as `gatewayd validate`'s).
func (g *Gateway) Close() { g.close() }

// enter admits a request unless the gateway has retired; a request
// admitted must leave.
func (g *Gateway) enter() bool {
	g.active.Add(1)
	if g.retired.Load() {
		g.leave()
		return false
	}
	return true
}

func (g *Gateway) leave() { g.active.Add(-1) }

// Retire stops the gateway taking requests (a Server no longer routes
// any to it), waits for those in flight to finish, up to ctx, then
// releases its upstream pools and plugins. It reports an error when
// requests were still running at the deadline.
func (g *Gateway) Retire(ctx context.Context) error {
	g.retired.Store(true)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var err error
	for g.active.Load() > 0 && err == nil {
		select {
		case <-ctx.Done():
			err = fmt.Errorf("%d requests still running at the drain deadline", g.active.Load())
		case <-tick.C:
		}
	}
	g.close()
	return err
}

// close releases what New built: upstream pools, filters, and the
// tracer (its queued spans exported first).
func (g *Gateway) close() { g.closer.Do(g.release) }

func (g *Gateway) release() {
	if g.tracer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.Tracing.Timeout.D())
		if err := g.tracer.Shutdown(ctx); err != nil {
			g.log.Warn("traces lost at retirement", "error", err)
		}
		cancel()
	}
	for _, s := range g.services {
		s.Close()
	}
	for _, f := range g.filters {
		if c, ok := f.(io.Closer); ok {
			_ = c.Close()
		}
	}
}

// service returns the named service, as a route with retry policy p (nil:
// the service's own) calls it.
func (g *Gateway) service(name string, p *config.Retry) *proxy.Service {
	if p == nil {
		return g.services[name]
	}
	return g.services[name].WithRetry(p)
}

// canaryChooser returns what picks a proxied route's service for a
// request: the canary's when the request carries its header or cookie or
// is drawn for its share, else the route's own.
func canaryChooser(svc, canary *proxy.Service, c *config.Canary) func(*http.Request) *proxy.Service {
	if c == nil {
		return func(*http.Request) *proxy.Service { return svc }
	}
	header, headerValue, _ := strings.Cut(c.Header, "=")
	cookie, cookieValue, _ := strings.Cut(c.Cookie, "=")
	return func(r *http.Request) *proxy.Service {
		if header != "" && r.Header.Get(header) == headerValue {
			return canary
		}
		if cookie != "" {
			if ck, err := r.Cookie(cookie); err == nil && ck.Value == cookieValue {
				return canary
			}
		}
		if c.Share > 0 && rand.Float64() < c.Share {
			return canary
		}
		return svc
	}
}
