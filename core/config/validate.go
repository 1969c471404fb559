package config

import (
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// DefaultListener is the name of the listener a file without [listeners]
// gets.
const DefaultListener = "default"

// fillNames copies map keys into the values and applies defaults that
// depend on other keys.
func (c *Config) fillNames() {
	if len(c.Listeners) == 0 {
		l := &Listener{}
		l.setDefaults()
		c.Listeners = map[string]*Listener{DefaultListener: l}
	}
	for name, l := range c.Listeners {
		l.Name = name
	}
	for name, s := range c.Services {
		s.Name = name
	}
	for name, f := range c.Filters {
		f.Name = name
		if f.Plugin == "" {
			f.Plugin = name
		}
		if f.RecycleMemory == 0 {
			f.RecycleMemory = f.MemoryLimit / 2
		}
		if f.StateNamespace == "" {
			f.StateNamespace = name
		}
	}
	for i, r := range c.Routes {
		r.Index = i
		if len(r.Methods) == 0 && (r.GRPC == nil || !r.GRPC.Annotations) {
			r.Methods = append([]string(nil), DefaultMethods...)
		}
		for j, m := range r.Methods {
			r.Methods[j] = strings.ToUpper(m)
		}
		r.Host = strings.ToLower(r.Host)
		if r.Listener == "" && len(c.Listeners) == 1 {
			for name := range c.Listeners {
				r.Listener = name
			}
		}
		if r.Name == "" && (r.GRPC == nil || !r.GRPC.Annotations) { // else each generated route is named
			r.Name = strings.Join(r.Methods, ",") + " " + r.Host + r.Path
		}
		if s := c.Services[r.Service]; r.Retry != nil && s != nil && s.Retry != nil {
			r.Retry = c.overlay(RouteKey(i)+".retry", *s.Retry, r.Retry)
		}
		if a := r.Aggregate; a != nil {
			for _, p := range a.Parts {
				if p.Timeout == 0 || p.Timeout > a.Timeout {
					p.Timeout = a.Timeout
				}
			}
		}
	}
}

// overlay returns base with the fields the file sets at key taken from
// over.
func (c *Config) overlay(key string, base Retry, over *Retry) *Retry {
	b, o := reflect.ValueOf(&base).Elem(), reflect.ValueOf(over).Elem()
	for i := range b.NumField() {
		if c.written[joinKey(key, b.Type().Field(i).Tag.Get("toml"))] {
			b.Field(i).Set(o.Field(i))
		}
	}
	return &base
}

// resolvePaths makes every file path of the config relative to the
// config file's directory (or absolute), once, so that the engine, the
// TLS setup and the file watcher take them as they are.
func (c *Config) resolvePaths() {
	base := filepath.Dir(c.File)
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	abs(&c.Plugins.Dir)
	abs(&c.Plugins.CacheDir)
	for _, l := range c.Listeners {
		if l.TLS != nil {
			for _, cert := range l.TLS.Certificates {
				abs(&cert.Cert)
				abs(&cert.Key)
			}
		}
	}
	for _, s := range c.Services {
		if s.TLS != nil {
			abs(&s.TLS.CAFile)
		}
		for i := range s.Protos {
			abs(&s.Protos[i])
		}
		abs(&s.DescriptorSet)
		for i := range s.ProtoPaths {
			abs(&s.ProtoPaths[i])
		}
	}
	for _, f := range c.Filters {
		for k, p := range f.ConfigFiles {
			abs(&p)
			f.ConfigFiles[k] = p
		}
		if f.Output != "stdout" && f.Output != "stderr" {
			abs(&f.Output)
		}
	}
}

// validate records every semantic problem of a decoded config.
func (c *Config) validate(e *errs) {
	switch c.State.Backend {
	case "memory":
	case "redis":
		if u, err := url.Parse(c.State.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			e.add("state.redis_url", "write it as \"redis://host:port/db\", found %q", c.State.RedisURL)
		}
	default:
		e.add("state.backend", "must be \"memory\" or \"redis\", found %q", c.State.Backend)
	}

	if c.State.NamespaceLimit < 1<<10 {
		e.add("state.namespace_limit", "must be at least 1KiB")
	}
	if c.Server.Watch && c.Server.WatchInterval < Duration(100e6) {
		e.add("server.watch_interval", "must be at least 100ms")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		e.add("log.level", "must be \"debug\", \"info\", \"warn\" or \"error\", found %q", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		e.add("log.format", "must be \"text\" or \"json\", found %q", c.Log.Format)
	}

	c.validateTracing(e)

	addrs := map[string]string{}
	if c.Admin.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Admin.Listen); err != nil || port == "" {
			e.add("admin.listen", "invalid address %q (write it as \"host:port\", or \"\" to turn the admin listener off)", c.Admin.Listen)
		} else if port != "0" {
			addrs[c.Admin.Listen] = "admin"
		}
	}
	for _, name := range sortedKeys(c.Listeners) {
		l := c.Listeners[name]
		key := joinKey("listeners", name)
		if _, port, err := net.SplitHostPort(l.Listen); err != nil || port == "" {
			e.add(joinKey(key, "listen"), "invalid address %q (write it as \"host:port\", e.g. \"127.0.0.1:8080\")", l.Listen)
		} else if other, dup := addrs[l.Listen]; dup && port != "0" {
			e.add(joinKey(key, "listen"), "address %s is already used by listener %q", l.Listen, other)
		} else {
			addrs[l.Listen] = name
		}
		l.TrustedPrefixes = nil
		for i, p := range l.TrustedProxies {
			prefix, err := parsePrefix(p)
			if err != nil {
				e.add(indexKey(joinKey(key, "trusted_proxies"), i), "%v", err)
			}
			l.TrustedPrefixes = append(l.TrustedPrefixes, prefix)
		}
		if l.MaxHeaderBytes < 1024 {
			e.add(joinKey(key, "max_header_bytes"), "must be at least 1KiB")
		}
		if l.MaxHeaders < 1 {
			e.add(joinKey(key, "max_headers"), "must be at least 1")
		}
		for i, h := range l.RemoveHeaders {
			if !ValidToken(h) {
				e.add(indexKey(joinKey(key, "remove_headers"), i), "invalid header name %q", h)
			}
		}
		c.checkFilters(e, joinKey(key, "filters"), l.Filters)
		if t := l.TLS; t != nil {
			if len(t.Certificates) == 0 {
				e.add(joinKey(joinKey(key, "tls"), "certificates"), "at least one {cert, key} pair is required")
			}
			for i, cert := range t.Certificates {
				ck := indexKey(joinKey(joinKey(key, "tls"), "certificates"), i)
				if cert.Cert == "" || cert.Key == "" {
					e.add(ck, "both cert and key are required")
				}
			}
			if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
				e.add(joinKey(joinKey(key, "tls"), "min_version"), "must be \"1.2\" or \"1.3\", found %q", t.MinVersion)
			}
			if l.H2C {
				e.add(joinKey(key, "h2c"), "is for listeners without TLS (with tls, HTTP/2 comes by ALPN: tls.http2)")
			}
		}
	}

	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		key := joinKey("services", name)
		if len(s.Targets) == 0 {
			e.add(joinKey(key, "targets"), "at least one target is required")
		}
		s.TargetURLs = nil
		for i, t := range s.Targets {
			u, err := parseTarget(t)
			switch {
			case err != nil:
				e.add(indexKey(joinKey(key, "targets"), i), "%v", err)
			case strings.HasPrefix(u.Scheme, "srv+") && s.DNS == nil:
				e.add(indexKey(joinKey(key, "targets"), i), "an SRV target needs the service's dns table (dns = { interval = \"30s\" })")
			}
			s.TargetURLs = append(s.TargetURLs, u)
		}
		if s.Reflection && len(s.TargetURLs) > 0 && s.TargetURLs[0] != nil && strings.HasPrefix(s.TargetURLs[0].Scheme, "srv+") {
			e.add(indexKey(joinKey(key, "targets"), 0), "reflection asks the first target for the descriptors: make it an http(s) target")
		}
		if s.DNS != nil {
			validateDNS(e, joinKey(key, "dns"), s.DNS)
		}
		if s.Protocol != "http1" && s.Protocol != "http2" && s.Protocol != "grpc" {
			e.add(joinKey(key, "protocol"), "must be \"http1\", \"http2\" or \"grpc\", found %q", s.Protocol)
		}
		sources := 0
		for _, given := range []bool{len(s.Protos) > 0, s.DescriptorSet != "", s.Reflection} {
			if given {
				sources++
			}
		}
		switch {
		case s.Protocol == "grpc" && sources == 0:
			e.add(joinKey(key, "protos"), "a grpc service needs its descriptors: protos (.proto files), descriptor_set, or reflection = true")
		case s.Protocol == "grpc" && sources > 1:
			e.add(key, "protos, descriptor_set and reflection are exclusive: the descriptors come from one of them")
		case s.Protocol != "grpc" && sources > 0:
			e.add(joinKey(key, "protos"), "only a grpc service (protocol = \"grpc\") has protos, a descriptor_set or reflection")
		}
		if s.MaxIdleConns == 0 {
			e.add(joinKey(key, "max_idle_conns"), "must be at least 1")
		}
		c.validateBalance(e, key, s)
		if s.Breaker != nil {
			validateBreaker(e, joinKey(key, "breaker"), s.Breaker)
		}
		if s.MaxPending > 0 && s.MaxConcurrent == 0 {
			e.add(joinKey(key, "max_pending"), "needs max_concurrent: requests wait for one of max_concurrent to finish")
		}
		if s.Retry != nil {
			validateRetry(e, joinKey(key, "retry"), s.Retry)
		}
		if hc := s.HealthCheck; hc != nil {
			hk := joinKey(key, "health_check")
			if !strings.HasPrefix(hc.Path, "/") {
				e.add(joinKey(hk, "path"), "must begin with '/', found %q", hc.Path)
			}
			if hc.Interval < Duration(10e6) {
				e.add(joinKey(hk, "interval"), "must be at least 10ms")
			}
			if hc.Timeout <= 0 || hc.Timeout > hc.Interval {
				e.add(joinKey(hk, "timeout"), "must be more than 0s and at most the interval")
			}
			if hc.Healthy < 1 {
				e.add(joinKey(hk, "healthy"), "must be at least 1")
			}
			if hc.Unhealthy < 1 {
				e.add(joinKey(hk, "unhealthy"), "must be at least 1")
			}
			for i, st := range hc.Statuses {
				if st < 100 || st > 599 {
					e.add(indexKey(joinKey(hk, "statuses"), i), "must be an HTTP status, found %d", st)
				}
			}
		}
	}

	for _, name := range sortedKeys(c.Filters) {
		c.validateFilter(e, joinKey("filters", name), c.Filters[name])
	}

	for i, r := range c.Routes {
		c.validateRoute(e, RouteKey(i), r)
	}
}

// maxCallDepth is the deepest limits.call_depth: past it the host's own
// stack for the guest would be the memory bomb the bound prevents.
const maxCallDepth = 100000

func (c *Config) validateFilter(e *errs, key string, f *Filter) {
	if !validPluginName(f.Plugin) {
		e.add(joinKey(key, "plugin"), "invalid plugin name %q (letters, digits, '.', '_' and '-'; no path)", f.Plugin)
	}
	if f.SHA256 != "" {
		if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != 32 {
			e.add(joinKey(key, "sha256"), "must be 64 hexadecimal digits (sha256sum's output), found %q", f.SHA256)
		}
	}
	if f.OnError != "deny" && f.OnError != "allow" {
		e.add(joinKey(key, "on_error"), "must be \"deny\" or \"allow\", found %q", f.OnError)
	}
	if f.Timeout <= 0 {
		e.add(joinKey(key, "timeout"), "must be more than 0s")
	}
	if f.MemoryLimit < 64<<10 || f.MemoryLimit > 4<<30 || f.MemoryLimit%(64<<10) != 0 {
		e.add(joinKey(key, "memory_limit"), "must be a multiple of 64KiB (a WebAssembly page) between 64KiB and 4GiB")
	}
	if f.MaxInstances < 1 {
		e.add(joinKey(key, "max_instances"), "must be at least 1")
	}
	if f.MinInstances > f.MaxInstances {
		e.add(joinKey(key, "min_instances"), "must not exceed max_instances (%d)", f.MaxInstances)
	}
	if f.MaxRequests < 1 {
		e.add(joinKey(key, "max_requests"), "must be at least 1")
	}
	if f.RecycleMemory > f.MemoryLimit {
		e.add(joinKey(key, "recycle_memory"), "must not exceed memory_limit")
	}
	for k := range f.ConfigFiles {
		if _, dup := f.Config[k]; dup {
			e.add(joinKey(joinKey(key, "config_files"), k), "key %q is also in config", k)
		}
	}
	lk := joinKey(key, "limits")
	for name, v := range map[string]int64{"body": int64(f.Limits.Body), "headers": int64(f.Limits.Headers), "header_values": int64(f.Limits.HeaderValues),
		"properties": int64(f.Limits.Properties), "state_key": int64(f.Limits.StateKey), "state_value": int64(f.Limits.StateValue), "http_call_body": int64(f.Limits.HTTPCallBody),
		"fuel": f.Limits.Fuel, "call_depth": int64(f.Limits.CallDepth)} {
		if v < 1 {
			e.add(joinKey(lk, name), "must be at least 1")
		}
	}
	if f.Limits.CallDepth > maxCallDepth {
		e.add(joinKey(lk, "call_depth"), "must be at most %d", maxCallDepth)
	}
	if o := f.Outbound; o != nil {
		for i, h := range o.Hosts {
			if host, port, err := net.SplitHostPort(h); err != nil || host == "" || port == "" {
				e.add(indexKey(joinKey(joinKey(key, "outbound"), "hosts"), i), "write it as \"host:port\", found %q", h)
			}
		}
		for i, m := range o.Methods {
			if !ValidToken(m) {
				e.add(indexKey(joinKey(joinKey(key, "outbound"), "methods"), i), "invalid method %q", m)
			}
		}
		if o.Timeout == 0 {
			e.add(joinKey(joinKey(key, "outbound"), "timeout"), "must be more than 0s")
		}
	}
}

func (c *Config) validateRoute(e *errs, key string, r *Route) {
	switch {
	case r.Listener == "":
		e.add(joinKey(key, "listener"), "required when there are several listeners (%s)", strings.Join(sortedKeys(c.Listeners), ", "))
	case c.Listeners[r.Listener] == nil:
		e.add(joinKey(key, "listener"), "unknown listener %q (known: %s)", r.Listener, strings.Join(sortedKeys(c.Listeners), ", "))
	}
	annotated := r.GRPC != nil && r.GRPC.Annotations
	if r.Path == "" && !annotated {
		e.add(joinKey(key, "path"), "required")
	} else if r.Path != "" && !strings.HasPrefix(r.Path, "/") {
		e.add(joinKey(key, "path"), "must begin with '/'")
	}
	if strings.ContainsAny(r.Host, "/:@ ") {
		e.add(joinKey(key, "host"), "must be a host name without port or scheme, found %q", r.Host)
	}
	for i, m := range r.Methods {
		if !ValidToken(m) {
			e.add(indexKey(joinKey(key, "methods"), i), "invalid method %q", m)
		}
	}
	for i, u := range r.Upgrades {
		switch {
		case !ValidToken(u):
			e.add(indexKey(joinKey(key, "upgrades"), i), "invalid protocol %q", u)
		case strings.EqualFold(u, "h2c"):
			e.add(indexKey(joinKey(key, "upgrades"), i), "an h2c upgrade is never tunnelled: the upstream would serve requests no route or filter saw (use h2c = true on the listener for HTTP/2 without TLS)")
		}
	}
	if r.Rewrite != "" && !strings.HasPrefix(r.Rewrite, "/") {
		e.add(joinKey(key, "rewrite"), "must begin with '/'")
	}
	c.checkFilters(e, joinKey(key, "filters"), r.Filters)

	switch {
	case r.Service != "" && r.Aggregate != nil:
		e.add(key, "service and aggregate are exclusive: a route either proxies or aggregates")
	case r.Service == "" && r.Aggregate == nil:
		e.add(key, "one of service or aggregate is required")
	case r.Service != "":
		c.checkService(e, joinKey(key, "service"), r.Service)
		if r.GRPC != nil {
			c.validateRouteGRPC(e, key, r)
		}
	default:
		if r.GRPC != nil {
			e.add(joinKey(key, "grpc"), "has no meaning on an aggregate route")
		}
		if r.Rewrite != "" {
			e.add(joinKey(key, "rewrite"), "has no meaning on an aggregate route (each part has a path)")
		}
		c.validateAggregate(e, joinKey(key, "aggregate"), r.Aggregate)
	}
	if r.Mirror != nil {
		c.validateMirror(e, joinKey(key, "mirror"), r)
	}
	if r.Canary != nil {
		c.validateCanary(e, joinKey(key, "canary"), r)
	}
	if r.Retry != nil {
		if r.Service == "" {
			e.add(joinKey(key, "retry"), "is for a route with a service: an aggregate's parts follow their services' policies")
		} else {
			validateRetry(e, joinKey(key, "retry"), r.Retry)
		}
	}
}

// checkFraction refuses a share that is not from 0 to 1.
func checkFraction(e *errs, key string, v float64) {
	if v < 0 || v > 1 || math.IsNaN(v) {
		e.add(key, "must be from 0 to 1, found %v", v)
	}
}

func validateDNS(e *errs, key string, d *DNS) {
	if d.Interval < Duration(1e9) {
		e.add(joinKey(key, "interval"), "must be at least 1s")
	}
	if d.Timeout <= 0 {
		e.add(joinKey(key, "timeout"), "must be positive")
	}
	for i, srv := range d.Servers {
		if _, port, err := net.SplitHostPort(srv); err != nil || port == "" {
			e.add(indexKey(joinKey(key, "servers"), i), "write it as \"host:port\", found %q", srv)
		}
	}
}

func validateBreaker(e *errs, key string, b *Breaker) {
	if b.Failures < 1 {
		e.add(joinKey(key, "failures"), "must be at least 1")
	}
	if b.OpenFor < Duration(1e6) {
		e.add(joinKey(key, "open_for"), "must be at least 1ms")
	}
	checkFraction(e, joinKey(key, "failure_ratio"), b.FailureRatio)
	if b.Window < Duration(100e6) {
		e.add(joinKey(key, "window"), "must be at least 100ms")
	}
	if b.MinRequests < 1 {
		e.add(joinKey(key, "min_requests"), "must be at least 1")
	}
}

func validateRetry(e *errs, key string, r *Retry) {
	if r.Attempts < 1 || r.Attempts > 10 {
		e.add(joinKey(key, "attempts"), "must be from 1 to 10, found %d", r.Attempts)
	}
	for i, on := range r.On {
		switch on {
		case "connect", "reset", "timeout", "5xx", "unavailable":
			continue
		}
		if n, err := strconv.Atoi(on); err != nil || n < 400 || n > 599 {
			e.add(indexKey(joinKey(key, "on"), i), "must be \"connect\", \"reset\", \"timeout\", \"unavailable\", \"5xx\" or a status from 400 to 599, found %q", on)
		}
	}
	if r.Backoff > r.MaxBackoff {
		e.add(joinKey(key, "backoff"), "is more than max_backoff (%s)", r.MaxBackoff)
	}
	checkFraction(e, joinKey(key, "budget"), r.Budget)
}

func (c *Config) validateCanary(e *errs, key string, r *Route) {
	k := r.Canary
	if !r.proxied() {
		e.add(key, "is for a proxied route only (one with service, without aggregate or grpc)")
	}
	switch s := c.Services[k.Service]; {
	case k.Service == "":
		e.add(joinKey(key, "service"), "required")
	case s == nil:
		c.checkService(e, joinKey(key, "service"), k.Service)
	case c.Services[r.Service] != nil && s.Protocol != c.Services[r.Service].Protocol:
		e.add(joinKey(key, "service"), "speaks %q, the route's service %q: a canary speaks its protocol", s.Protocol, c.Services[r.Service].Protocol)
	}
	checkFraction(e, joinKey(key, "share"), k.Share)
	for _, m := range []struct{ name, v string }{{"header", k.Header}, {"cookie", k.Cookie}} {
		if m.v == "" {
			continue
		}
		if name, _, ok := strings.Cut(m.v, "="); !ok || name == "" || (m.name == "header" && !ValidToken(name)) {
			e.add(joinKey(key, m.name), "write it as \"NAME=VALUE\", found %q", m.v)
		}
	}
	if k.Share == 0 && k.Header == "" && k.Cookie == "" {
		e.add(key, "sends nothing to %q: give a share, a header or a cookie", k.Service)
	}
}

// proxied reports whether a route proxies requests to its service (it
// neither aggregates nor calls a gRPC method).
func (r *Route) proxied() bool { return r.Service != "" && r.Aggregate == nil && r.GRPC == nil }

func (c *Config) validateMirror(e *errs, key string, r *Route) {
	m := r.Mirror
	if !r.proxied() {
		e.add(key, "mirrors a proxied route only (one with service, without aggregate or grpc)")
	}
	if m.Service == "" {
		e.add(joinKey(key, "service"), "required")
	} else {
		c.checkService(e, joinKey(key, "service"), m.Service)
	}
	checkFraction(e, joinKey(key, "share"), m.Share)
	if m.MaxConcurrent < 1 {
		e.add(joinKey(key, "max_concurrent"), "must be at least 1")
	}
}

func (c *Config) validateRouteGRPC(e *errs, key string, r *Route) {
	gk := joinKey(key, "grpc")
	if s := c.Services[r.Service]; s != nil && s.Protocol != "grpc" {
		e.add(gk, "service %q is not a grpc service (protocol = \"grpc\")", r.Service)
	}
	if r.GRPC.Annotations {
		switch {
		case r.GRPC.Method != "":
			e.add(joinKey(gk, "method"), "has no meaning with annotations = true (every annotated method gets a route)")
		case r.Path != "":
			e.add(joinKey(key, "path"), "comes from each method's google.api.http annotation with annotations = true")
		case len(r.Methods) > 0:
			e.add(joinKey(key, "methods"), "come from each method's google.api.http annotation with annotations = true")
		case r.GRPC.Body != nil:
			e.add(joinKey(gk, "body"), "comes from each method's google.api.http annotation with annotations = true")
		}
	} else if svc, method, ok := strings.Cut(r.GRPC.Method, "/"); !ok || svc == "" || method == "" || strings.ContainsAny(method, "/.") {
		e.add(joinKey(gk, "method"), "write it as \"package.Service/Method\", found %q", r.GRPC.Method)
	}
	if r.Rewrite != "" {
		e.add(joinKey(key, "rewrite"), "has no meaning on a grpc route (the method is the path)")
	}
	for i, h := range r.GRPC.ForwardHeaders {
		if !ValidToken(h) {
			e.add(indexKey(joinKey(gk, "forward_headers"), i), "invalid header name %q", h)
		}
	}
}

func (c *Config) validateAggregate(e *errs, key string, a *Aggregate) {
	if a.Timeout == 0 {
		e.add(joinKey(key, "timeout"), "must be more than 0s")
	}
	if len(a.Parts) == 0 {
		e.add(joinKey(key, "parts"), "at least one part is required")
	}
	keys := map[string]bool{}
	for i, p := range a.Parts {
		pk := indexKey(joinKey(key, "parts"), i)
		switch {
		case p.Key == "":
			e.add(joinKey(pk, "key"), "required")
		case keys[p.Key]:
			e.add(joinKey(pk, "key"), "duplicate key %q", p.Key)
		}
		keys[p.Key] = true
		if p.Service == "" {
			e.add(joinKey(pk, "service"), "required")
		} else {
			c.checkService(e, joinKey(pk, "service"), p.Service)
		}
		switch {
		case p.Method != "" && p.Path != "":
			e.add(joinKey(pk, "method"), "path and method are exclusive: a part either GETs a path or calls a gRPC method")
		case p.Method != "":
			if s := c.Services[p.Service]; s != nil && s.Protocol != "grpc" {
				e.add(joinKey(pk, "method"), "service %q is not a grpc service (protocol = \"grpc\")", p.Service)
			}
			if svc, m, ok := strings.Cut(p.Method, "/"); !ok || svc == "" || m == "" {
				e.add(joinKey(pk, "method"), "write it as \"package.Service/Method\", found %q", p.Method)
			}
		case !strings.HasPrefix(p.Path, "/"):
			e.add(joinKey(pk, "path"), "must begin with '/'")
		}
		for _, name := range sortedKeys(p.Headers) {
			if !ValidToken(name) {
				e.add(joinKey(joinKey(pk, "headers"), name), "invalid header name %q", name)
			}
		}
		if p.Method != "" && len(p.Headers) > 0 {
			e.add(joinKey(pk, "headers"), "are for parts that GET a path, not for gRPC methods")
		}
		if p.Take != "" && (len(p.Allow) > 0 || len(p.Deny) > 0 || len(p.Rename) > 0) {
			e.add(joinKey(pk, "take"), "cannot be combined with allow, deny or rename (shape the field you take in the service)")
		}
		if len(p.Allow) > 0 && len(p.Deny) > 0 {
			e.add(joinKey(pk, "deny"), "cannot be combined with allow")
		}
	}
}

func (c *Config) checkService(e *errs, key, name string) {
	if c.Services[name] == nil {
		e.add(key, "unknown service %q (known: %s)", name, known(c.Services))
	}
}

func (c *Config) checkFilters(e *errs, key string, names []string) {
	seen := map[string]bool{}
	for i, n := range names {
		switch {
		case c.Filters[n] == nil:
			e.add(indexKey(key, i), "unknown filter %q (known: %s)", n, known(c.Filters))
		case seen[n]:
			e.add(indexKey(key, i), "filter %q is listed twice", n)
		}
		seen[n] = true
	}
}

func known[V any](m map[string]V) string {
	if len(m) == 0 {
		return "none defined"
	}
	return strings.Join(sortedKeys(m), ", ")
}

// parseTarget reads a service target: scheme and host only.
func parseTarget(t string) (*url.URL, error) {
	u, err := url.Parse(t)
	if err != nil || u.Host == "" || !slices.Contains([]string{"http", "https", "srv+http", "srv+https"}, u.Scheme) {
		return nil, fmt.Errorf("invalid target %q (write it as \"http://host:port\", or \"srv+http://_service._tcp.domain\")", t)
	}
	if strings.HasPrefix(u.Scheme, "srv+") && u.Port() != "" {
		return nil, fmt.Errorf("target %q: an SRV target takes its ports from its records; write it without one", t)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("target %q must be scheme://host:port only; put paths in the route's rewrite", t)
	}
	u.Path = ""
	return u, nil
}

// parsePrefix reads an IP address or CIDR range as a prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid IP address %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func validPluginName(s string) bool {
	if s == "" || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(isBareByte(c) || c == '.') {
			return false
		}
	}
	return true
}

// ValidToken reports whether s is an RFC 9110 token: a method or a header
// field name.
func ValidToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

func (c *Config) validateTracing(e *errs) {
	t := &c.Tracing
	if t.Endpoint != "" {
		if u, err := url.Parse(t.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			e.add("tracing.endpoint", "write it as a URL such as \"http://127.0.0.1:4318\", found %q", t.Endpoint)
		}
	}
	if t.Protocol != "http/protobuf" && t.Protocol != "grpc" {
		e.add("tracing.protocol", "must be \"http/protobuf\" or \"grpc\", found %q", t.Protocol)
	}
	checkFraction(e, "tracing.sample_ratio", t.SampleRatio)
	if !slices.Contains([]string{"join", "follow", "restart"}, t.Incoming) {
		e.add("tracing.incoming", "must be \"join\", \"follow\" or \"restart\", found %q", t.Incoming)
	}
	if t.ServiceName == "" {
		e.add("tracing.service_name", "must not be empty")
	}
	for _, name := range sortedKeys(t.Headers) {
		if !ValidToken(name) {
			e.add(joinKey(joinKey("tracing", "headers"), name), "invalid header name %q", name)
		}
	}
	if t.Timeout <= 0 {
		e.add("tracing.timeout", "must be positive")
	}
}

func (c *Config) validateBalance(e *errs, key string, s *Service) {
	if s.Weights != nil {
		total := 0
		for i, w := range s.Weights {
			if w > 1000 {
				e.add(indexKey(joinKey(key, "weights"), i), "must be from 0 to 1000, found %d", w)
			}
			total += w
		}
		switch {
		case len(s.Weights) != len(s.Targets):
			e.add(joinKey(key, "weights"), "has %d weights for %d targets: give one per target, in their order", len(s.Weights), len(s.Targets))
		case total == 0:
			e.add(joinKey(key, "weights"), "every weight is 0: no target would get a request")
		}
	}
	switch s.Balance {
	case "round_robin", "least_requests":
		if s.HashOn != "" {
			e.add(joinKey(key, "hash_on"), "is for balance = \"hash\"")
		}
	case "hash":
		name, ok := strings.CutPrefix(s.HashOn, "header:")
		if !ok {
			name, ok = strings.CutPrefix(s.HashOn, "cookie:")
		}
		if s.HashOn != "client_ip" && (!ok || name == "") {
			e.add(joinKey(key, "hash_on"), "must be \"client_ip\", \"header:NAME\" or \"cookie:NAME\", found %q", s.HashOn)
		}
	default:
		e.add(joinKey(key, "balance"), "must be \"round_robin\", \"least_requests\" or \"hash\", found %q", s.Balance)
	}
}
