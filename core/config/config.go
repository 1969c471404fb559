// Package config reads gateway.toml into typed structs and checks them.
//
// Decoding is strict: an unknown key, a value of the wrong type, a bad
// duration or size, or an unset ${ENV} reference is an error naming the
// file, the line and the key. Every key has a default, applied before the
// file is read; README.md (Configuration) lists them. Checks that need other
// packages of the core (route conflicts, plugin loading) happen where the
// gateway is built, with positions from Config.Pos.
//
// This package imports nothing else of Lintel's core.
package config

import (
	"net/netip"
	"net/url"
	"slices"
)

// Config is one gateway.toml, decoded and defaulted.
type Config struct {
	Server    Server               `toml:"server"`
	Plugins   Plugins              `toml:"plugins"`
	State     State                `toml:"state"`
	Admin     Admin                `toml:"admin"`
	Log       Log                  `toml:"log"`
	Tracing   Tracing              `toml:"tracing"`
	Listeners map[string]*Listener `toml:"listeners"`
	Services  map[string]*Service  `toml:"services"`
	Filters   map[string]*Filter   `toml:"filters"`
	Routes    []*Route             `toml:"routes"`

	// File is the path the configuration was read from.
	File string `toml:"-"`
	// Digest is the Digest of the bytes this configuration was parsed
	// from.
	Digest  string `toml:"-"`
	pos     positions
	fromEnv map[string]bool
	written map[string]bool // the keys the file sets
}

// Server holds process-wide settings.
type Server struct {
	// ShutdownDelay is how long gatewayd keeps serving after SIGTERM while
	// reporting itself not ready, so load balancers stop sending traffic
	// before listeners close. Default "0s".
	ShutdownDelay Duration `toml:"shutdown_delay"`
	// DrainTimeout bounds how long in-flight requests may run after the
	// listeners close. Default "30s".
	DrainTimeout Duration `toml:"drain_timeout"`
	// Watch reloads the configuration when this file, a .wasm in the
	// plugins directory or a file the config names (certificates, CA
	// bundles, config_files) changes. Default true.
	Watch bool `toml:"watch"`
	// WatchInterval is how often watched files are checked; a change is
	// applied once the files have been stable for one interval.
	// Default "1s".
	WatchInterval Duration `toml:"watch_interval"`
	// AllowEmptyListeners lets a reload take every route away from a
	// listener that had some, or remove every listener. Without it such a
	// reload is refused: it is far more often a half-written file than
	// an intent. Default false.
	AllowEmptyListeners bool `toml:"allow_empty_listeners"`
}

// Log is the gateway's own log (log/slog). The -log-level and
// -log-format flags, when given, win over these.
type Log struct {
	// Level is "debug", "info", "warn" or "error"; a reload applies a
	// new one. Default "info".
	Level string `toml:"level"`
	// Format is "text" or "json"; read at start only. Default "text".
	Format string `toml:"format"`
}

// Tracing exports OpenTelemetry spans over OTLP: one server span per
// request, with child spans for each filter phase, each aggregation part
// and each upstream call (gRPC calls included). W3C Trace Context and
// baggage go to upstreams. A reload applies new settings: each
// configuration exports with its own provider, flushed when it retires.
type Tracing struct {
	// Endpoint is the OTLP receiver: "http://collector:4318" for
	// protocol "http/protobuf" (spans go to /v1/traces unless the URL has
	// a path), "http://collector:4317" for "grpc"; "https://" uses TLS
	// with the system's roots. "" (the default) turns tracing off, and
	// with it every cost.
	Endpoint string `toml:"endpoint"`
	// Protocol is "http/protobuf" or "grpc" (the names of
	// OTEL_EXPORTER_OTLP_PROTOCOL). Default "http/protobuf".
	Protocol string `toml:"protocol"`
	// Headers are sent with every export, such as a vendor's API key
	// (write it as "${ENV_NAME}"; /config shows it redacted).
	Headers map[string]string `toml:"headers"`
	// SampleRatio is the share of traces recorded, from 0 to 1; a child
	// span follows its parent. Default 1.
	SampleRatio float64 `toml:"sample_ratio"`
	// Incoming is what a client's traceparent decides. "join" (the
	// default): the request's spans join the client's trace, but whether
	// they are recorded is decided here at sample_ratio, at random, so a
	// client cannot force recording (nor pick a trace id that a
	// ratio-by-trace-id sampler would always keep). "follow": the
	// client's sampled flag decides too; for clients you trust (your own
	// services). "restart": every request starts a new trace, linked to
	// the client's span.
	Incoming string `toml:"incoming"`
	// ServiceName is the resource's service.name. Default "lintel".
	ServiceName string `toml:"service_name"`
	// Resource holds more resource attributes, such as
	// "deployment.environment.name" = "production".
	Resource map[string]string `toml:"resource"`
	// Timeout bounds one export. Default "10s".
	Timeout Duration `toml:"timeout"`
}

// Plugins says where WASM plugins are found.
type Plugins struct {
	// Dir holds <plugin>.wasm files, relative to the config file's
	// directory unless absolute. Default "plugins". Like every path of
	// the config, it is resolved against the config file's directory
	// when the file is read, so its users take it as it is.
	Dir string `toml:"dir"`
	// CacheDir keeps compiled plugins across restarts, relative to the
	// config file's directory unless absolute. Default: "lintel/wasm"
	// under the user's cache directory ($XDG_CACHE_HOME or ~/.cache).
	CacheDir string `toml:"cache_dir"`
}

// Admin is the operator's listener: health, readiness, metrics, plugins.
// It is never the public listener unless configured so.
type Admin struct {
	// Listen is its address; "" turns it off. Default "127.0.0.1:9901".
	Listen string `toml:"listen"`
	// AllowedHosts are the Host headers it answers (DNS-rebinding
	// defence: a page in a local browser cannot reach it by another
	// name). Default: localhost, 127.0.0.1 and [::1], any port.
	AllowedHosts []string `toml:"allowed_hosts"`
	// Token is the bearer token that POST /reload requires; "" (the
	// default) turns /reload off. Write it as "${ENV_NAME}" to keep it
	// out of the file; /config shows it redacted.
	Token string `toml:"token"`
	// ReadyRequiresUpstreams makes /readyz answer 503 while a service a
	// route needs has no target up. Turn it off when every replica
	// shares the same upstreams, so one dead service does not take every
	// replica out of the load balancer. Default true.
	ReadyRequiresUpstreams bool `toml:"ready_requires_upstreams"`
	// Pprof serves Go's profiles under /debug/pprof/ (CPU, heap,
	// goroutines), for finding where gatewayd spends its time. They
	// show internals: keep the admin listener private. Default false.
	Pprof bool `toml:"pprof"`
}

// State is where plugins' shared state lives.
type State struct {
	// Backend is "memory" (this process only) or "redis" (shared by a
	// fleet). Default "memory".
	Backend string `toml:"backend"`
	// RedisURL is redis://[:password@]host:port/db. Required for redis.
	RedisURL string `toml:"redis_url"`
	// PoolSize is the number of Redis connections. Default 64.
	PoolSize int `toml:"pool_size"`
	// Timeout bounds each Redis operation. Default "200ms".
	Timeout Duration `toml:"timeout"`
	// KeyPrefix namespaces this deployment's keys in a shared Redis.
	// Default "lintel:".
	KeyPrefix string `toml:"key_prefix"`
	// NamespaceLimit bounds the bytes one namespace (one filter's state,
	// unless filters share one) holds in the memory backend; expired keys
	// are dropped when it is reached, then writes fail. Default "64MiB".
	NamespaceLimit ByteSize `toml:"namespace_limit"`
}

// Listener is one named front door: an address with its own routes and
// default filters (one per Backend-for-Frontend, for example).
type Listener struct {
	Name string `toml:"-"`
	// Listen is the TCP address. Default "127.0.0.1:8080".
	Listen string `toml:"listen"`
	// Filters run on every request of this listener, before routing.
	Filters []string `toml:"filters"`
	// ReadHeaderTimeout bounds reading a request's head. Default "5s".
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included. Default "60s".
	ReadTimeout Duration `toml:"read_timeout"`
	// WriteTimeout bounds writing a response; "0s" (the default) means no
	// limit, so streamed responses (SSE, downloads) are not cut.
	WriteTimeout Duration `toml:"write_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default "120s".
	IdleTimeout Duration `toml:"idle_timeout"`
	// MaxHeaderBytes caps a request's head. Default "64KiB".
	MaxHeaderBytes ByteSize `toml:"max_header_bytes"`
	// MaxHeaders caps the number of request header fields (each line
	// counts); beyond it the client gets 431. Default 100.
	MaxHeaders int `toml:"max_headers"`
	// RemoveHeaders are request headers removed on arrival, before any
	// filter runs: identity and routing headers a client must not be
	// able to forge. A name matches its spellings with '_' for '-'.
	// Default DefaultRemoveHeaders.
	RemoveHeaders []string `toml:"remove_headers"`
	// MaxBody caps a request body; beyond it the client gets 413. "0"
	// means no limit. Default "10MiB".
	MaxBody ByteSize `toml:"max_body"`
	// MaxConcurrent caps requests in flight on this listener; beyond it
	// the client gets 503. 0 means no limit. Default 10000.
	MaxConcurrent int `toml:"max_concurrent"`
	// TrustedProxies lists the peers (IPs or CIDRs) whose X-Forwarded-For
	// and X-Forwarded-Proto are believed. Default: none.
	TrustedProxies []string `toml:"trusted_proxies"`
	// TrustedPrefixes are TrustedProxies, parsed.
	TrustedPrefixes []netip.Prefix `toml:"-"`
	// TLS terminates TLS on this listener. Default: none (plain HTTP).
	TLS *ListenerTLS `toml:"tls"`
	// H2C serves HTTP/2 without TLS ("prior knowledge", as gRPC clients
	// speak it) next to HTTP/1.1. Only on a listener without tls.
	// Default false.
	H2C bool `toml:"h2c"`
}

// ListenerTLS is a listener's TLS: certificates chosen by the name the
// client asks for (SNI), HTTP/2 offered by ALPN.
type ListenerTLS struct {
	// Certificates are {cert, key} pairs of PEM files, relative to the
	// config file. A client's SNI name picks the first certificate
	// valid for it; a client without SNI, or with a name none covers,
	// gets the first. Read again on every reload. Required.
	Certificates []*Certificate `toml:"certificates"`
	// MinVersion is "1.2" or "1.3". Default "1.2".
	MinVersion string `toml:"min_version"`
	// HTTP2 offers HTTP/2 by ALPN. Default true.
	HTTP2 bool `toml:"http2"`
}

// Certificate is one certificate chain and its private key.
type Certificate struct {
	// Cert is a PEM file with the certificate chain, leaf first.
	Cert string `toml:"cert"`
	// Key is a PEM file with the private key.
	Key string `toml:"key"`
}

// Service is a set of interchangeable upstream targets.
type Service struct {
	Name string `toml:"-"`
	// Targets are base URLs ("http://10.0.0.5:9101"). With DNS, a
	// target whose host is a name stands for every address the name
	// resolves to, and "srv+http://_api._tcp.example.internal" (or
	// srv+https) for the hosts and ports of its SRV records.
	Targets []string `toml:"targets"`
	// TargetURLs are Targets, parsed (scheme and host only).
	TargetURLs []*url.URL `toml:"-"`
	// DNS resolves the targets' names on an interval, so addresses
	// join and leave the balancer as DNS says. Without it a name is
	// resolved by each new connection, and is one target.
	DNS *DNS `toml:"dns"`
	// Timeout bounds a whole upstream exchange, body included; "0s" means
	// none (for streams). Default "30s".
	Timeout Duration `toml:"timeout"`
	// ConnectTimeout bounds the TCP connect. Default "2s".
	ConnectTimeout Duration `toml:"connect_timeout"`
	// ResponseHeaderTimeout bounds the wait for the response head after the
	// request is written; "0s" means none. Default "15s".
	ResponseHeaderTimeout Duration `toml:"response_header_timeout"`
	// MaxIdleConns is the keep-alive pool size per target. Default 256.
	MaxIdleConns int `toml:"max_idle_conns"`
	// IdleConnTimeout closes idle upstream connections. Default "90s".
	IdleConnTimeout Duration `toml:"idle_conn_timeout"`
	// Retry is when a failed request is sent again, to another target
	// when there is one. Default: two attempts, on a failed connection
	// or a connection lost before the response head.
	Retry *Retry `toml:"retry"`
	// FailCooldown is how long a target that refused or timed out a
	// connection is skipped. Default "10s".
	FailCooldown Duration `toml:"fail_cooldown"`
	// Weights are the targets' shares of requests, in the order of
	// Targets, from 0 (drained: no new requests) to 1000. Default: equal.
	Weights []int `toml:"weights"`
	// Balance chooses a target: "round_robin" (weighted; the default),
	// "least_requests" (of two targets drawn at random, the one with
	// fewer requests in flight per unit of weight) or "hash" (the same
	// HashOn value goes to the same target, and only 1/n of values move
	// when a target joins or leaves).
	Balance string `toml:"balance"`
	// HashOn is what "hash" balances on: "client_ip", "header:NAME" or
	// "cookie:NAME". A request without it is balanced round-robin.
	HashOn string `toml:"hash_on"`
	// Breaker opens a target's circuit after consecutive failures, or a
	// share of failures over a window: the target gets nothing until,
	// after open_for, one request is let through to probe it
	// (half-open); its success closes the circuit.
	Breaker *Breaker `toml:"breaker"`
	// MaxConcurrent bounds the requests in flight to the service. 0 (the
	// default) sets no bound.
	MaxConcurrent int `toml:"max_concurrent"`
	// MaxPending is how many requests beyond MaxConcurrent wait for one
	// in flight to finish (at most their timeout); beyond them the
	// gateway answers 503 with Retry-After at once. Default 0: none
	// wait.
	MaxPending int `toml:"max_pending"`
	// HealthCheck probes every target on an interval; a target that
	// fails it gets no requests until it passes again. It works beside
	// the passive check (fail_cooldown).
	HealthCheck *HealthCheck `toml:"health_check"`
	// Protocol is "http1", "http2" or "grpc". "http2" is HTTP/2 over TLS
	// (ALPN) for https targets, and without TLS ("prior knowledge", h2c)
	// for http targets. "grpc" is "http2" for a gRPC service whose
	// methods Protos describe, so routes can call them with JSON (a
	// route's grpc table). Default "http1".
	Protocol string `toml:"protocol"`
	// Protos are the .proto files (relative to the config file) that
	// describe a grpc service, compiled at load; no protoc needed.
	// Imports resolve against ProtoPaths, then the files' own
	// directories, then the well-known types and google/api, google/rpc.
	Protos []string `toml:"protos"`
	// ProtoPaths are the directories .proto imports resolve against.
	ProtoPaths []string `toml:"proto_paths"`
	// DescriptorSet, instead of Protos, is a FileDescriptorSet file
	// (protoc --descriptor_set_out --include_imports, buf build -o).
	DescriptorSet string `toml:"descriptor_set"`
	// JSON shapes the JSON a grpc service's answers become.
	JSON GRPCJSON `toml:"json"`
	// Reflection, instead of Protos, asks the service's first target for
	// its descriptors through the gRPC server reflection API at every
	// load; when it cannot answer, the last descriptors it gave are kept.
	Reflection bool `toml:"reflection"`
	// TLS configures connections to https targets. Default: the
	// system's roots, the target's host name.
	TLS *UpstreamTLS `toml:"tls"`
}

// UpstreamTLS is how the gateway verifies an upstream's certificate.
type UpstreamTLS struct {
	// CAFile is a PEM bundle of the authorities to trust instead of
	// the system's, relative to the config file.
	CAFile string `toml:"ca_file"`
	// ServerName is the name to verify instead of the target's host.
	ServerName string `toml:"server_name"`
	// InsecureSkipVerify accepts any certificate. Only for tests; the
	// gateway logs a warning for every service that sets it.
	// Default false.
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
}

// Filter is one configured instance of a plugin.
type Filter struct {
	Name string `toml:"-"`
	// Plugin names <plugins.dir>/<plugin>.wasm. Default: the filter's name.
	Plugin string `toml:"plugin"`
	// Config is handed to the plugin as JSON.
	Config map[string]any `toml:"config"`
	// ConfigFiles adds files to Config: each key gets the content of the
	// file it names (relative to the config file), as a string. Plugins
	// have no filesystem; this is how a JWKS file reaches one.
	ConfigFiles map[string]string `toml:"config_files"`
	// Output is where the plugin's raw lines (lintel.emit) go: "stdout",
	// "stderr", or a file path (appended, relative to the config file).
	// Default: nowhere (emit is refused).
	Output string `toml:"output"`
	// OnError is what a failing plugin (trap, deadline, bad pointer)
	// does to the request: "deny" answers 500; "allow" skips the filter
	// (for filters that are not about security). Default "deny".
	OnError string `toml:"on_error"`
	// Timeout bounds the time one call into the plugin may spend waiting
	// in the host (sleeps, shared state, outbound calls); its own work
	// is bounded by limits.fuel, which a busy machine does not shrink.
	// Default "500ms".
	Timeout Duration `toml:"timeout"`
	// Trusted is accepted and ignored, with a warning: every plugin is
	// metered (RATIONALE.md), and metering costs too little to switch
	// off.
	Trusted bool `toml:"trusted"`
	// MemoryLimit caps each instance's linear memory. Default "64MiB".
	MemoryLimit ByteSize `toml:"memory_limit"`
	// MinInstances are created at load and kept warm. Default 1.
	MinInstances int `toml:"min_instances"`
	// MaxInstances bounds the instances alive at once. Default 64.
	MaxInstances int `toml:"max_instances"`
	// PoolTimeout bounds the wait for a free instance; then the client
	// gets 503. Default "1s".
	PoolTimeout Duration `toml:"pool_timeout"`
	// MaxRequests recycles an instance after this many requests.
	// Default 10000.
	MaxRequests int `toml:"max_requests"`
	// RecycleMemory recycles an instance whose memory grew above this.
	// Default: half of memory_limit.
	RecycleMemory ByteSize `toml:"recycle_memory"`
	// StateNamespace is the namespace of the filter's shared state.
	// Filters that name the same namespace share keys; by default each
	// filter has its own. Default: the filter's name.
	StateNamespace string `toml:"state_namespace"`
	// SHA256 pins the plugin file: a file whose SHA-256 (hex) differs
	// is refused, at start and on reload, so a write into the plugins
	// directory cannot change what runs. Default: not pinned.
	SHA256 string `toml:"sha256"`
	// Outbound allows the plugin HTTP calls of its own (to fetch a JWKS,
	// say). Default: none allowed.
	Outbound *Outbound `toml:"outbound"`
	// Limits bound what the host copies or keeps on the plugin's behalf.
	Limits Limits `toml:"limits"`
}

// Limits bound what the host spends on a plugin's behalf, per request
// (both phases) or per call. Going past one fails the call, as a trap
// does (counted as kind "limit"). The defaults fit any plugin that does
// not mean harm.
type Limits struct {
	// Body is the bytes a plugin may write as bodies in one request (a
	// replaced request body, its own answer, a replaced response body).
	// Default "16MiB".
	Body ByteSize `toml:"body"`
	// Headers is the bytes of header names and values a plugin may set
	// or add in one request. Default "64KiB".
	Headers ByteSize `toml:"headers"`
	// HeaderValues is how many header values it may set or add in one
	// request. Default 100.
	HeaderValues int `toml:"header_values"`
	// Properties is the bytes of property names and values it may set in
	// one request. Default "64KiB".
	Properties ByteSize `toml:"properties"`
	// StateKey and StateValue bound one key and one value of shared
	// state. Defaults "1KiB" and "1MiB".
	StateKey   ByteSize `toml:"state_key"`
	StateValue ByteSize `toml:"state_value"`
	// HTTPCallBody bounds the body of one outbound call. Default "1MiB".
	HTTPCallBody ByteSize `toml:"http_call_body"`
	// Fuel bounds the plugin's own work in one call, in WebAssembly
	// instructions counted at loop heads and function entries, a bulk
	// memory or table instruction one for every 16 bytes or elements it
	// touches (about 100 ms of a tight loop on a current core); a call that runs out
	// is stopped (kind "fuel"). Initialisation gets 50 times as much.
	// Default 1000000000.
	Fuel int64 `toml:"fuel"`
	// CallDepth bounds how deep the plugin's calls may nest, so deep
	// recursion cannot make the host grow its stack (kind "stack").
	// Default 10000.
	CallDepth int `toml:"call_depth"`
}

// DefaultLimits are a filter's limits unless it sets its own.
var DefaultLimits = Limits{Body: 16 << 20, Headers: 64 << 10, HeaderValues: 100, Properties: 64 << 10, StateKey: 1 << 10, StateValue: 1 << 20, HTTPCallBody: 1 << 20, Fuel: 1e9, CallDepth: 10000}

// Outbound is the allow-list of a filter's own HTTP calls.
type Outbound struct {
	// Hosts are the "host:port" pairs the plugin may call (the port is
	// required). Scheme http and https are both allowed.
	Hosts []string `toml:"hosts"`
	// Methods the plugin may use. Default ["GET"].
	Methods []string `toml:"methods"`
	// Timeout bounds each call. Default "2s".
	Timeout Duration `toml:"timeout"`
	// MaxResponse caps a response body; a larger one fails the call.
	// Default "1MiB".
	MaxResponse ByteSize `toml:"max_response"`
}

func (o *Outbound) setDefaults() {
	*o = Outbound{Methods: []string{"GET"}, Timeout: Duration(2e9), MaxResponse: 1 << 20}
}

// Route sends matching requests to a service, or fans them out to several
// (Aggregate). Exactly one of Service and Aggregate is set.
type Route struct {
	// Name identifies the route in logs and metrics. Default:
	// "METHODS PATH" of the route.
	Name string `toml:"name"`
	// Index is the route's position among [[routes]], from 0.
	Index int `toml:"-"`
	// Listener names the listener. It may be omitted when there is one.
	Listener string `toml:"listener"`
	// Host restricts the route to one Host header (without port,
	// case-insensitive). Default: any host.
	Host string `toml:"host"`
	// Path is an httprouter pattern: "/products/:id", "/api/*rest".
	Path string `toml:"path"`
	// Methods the route answers. Default: GET, HEAD, POST, PUT, PATCH,
	// DELETE, OPTIONS.
	Methods []string `toml:"methods"`
	// Service receives the request.
	Service string `toml:"service"`
	// Rewrite is the upstream path, with {param} from Path. Default: the
	// request's normalised path unchanged.
	Rewrite string `toml:"rewrite"`
	// Filters run after routing, in order.
	Filters []string `toml:"filters"`
	// Aggregate fans the request out instead of proxying it.
	Aggregate *Aggregate `toml:"aggregate"`
	// Upgrades are the protocols (Upgrade header tokens) a request may
	// switch the connection to; any other Upgrade is removed before the
	// upstream sees it. "h2c" is never allowed. Default ["websocket"].
	Upgrades []string `toml:"upgrades"`
	// GRPC calls a method of Service (a grpc service) with the request
	// turned into the method's request message, and answers its response
	// as JSON, instead of proxying the request.
	GRPC *RouteGRPC `toml:"grpc"`
	// Mirror copies a share of the route's requests to another service
	// (proxied routes only).
	Mirror *Mirror `toml:"mirror"`
	// Canary sends some of the route's requests to another service
	// instead of Service (proxied routes only).
	Canary *Canary `toml:"canary"`
	// Retry overrides keys of the service's retry policy for this route
	// (proxied and grpc routes): the keys it sets replace the service's,
	// the others stay the service's.
	Retry *Retry `toml:"retry"`
}

// Breaker is a circuit breaker on each of a service's targets. A failure
// is a failed connection, a timeout or a 5xx answer.
type Breaker struct {
	// Failures is how many failures in a row open a target's circuit.
	// Default 5.
	Failures int `toml:"failures"`
	// FailureRatio, from 0 to 1, opens a target's circuit when at least
	// that share of its requests failed over the last Window (once it
	// had MinRequests in that window). Default 0: the ratio is not
	// watched.
	FailureRatio float64 `toml:"failure_ratio"`
	// Window is the span FailureRatio is measured over, in tenths.
	// Default "10s".
	Window Duration `toml:"window"`
	// MinRequests is how many requests a window needs before its ratio
	// counts. Default 20.
	MinRequests int `toml:"min_requests"`
	// OpenFor is how long an open circuit sends the target nothing before
	// one probe request. Default "10s".
	OpenFor Duration `toml:"open_for"`
}

func (b *Breaker) setDefaults() {
	*b = Breaker{Failures: 5, Window: Duration(10e9), MinRequests: 20, OpenFor: Duration(10e9)}
}

// DNS is how a service's target names are resolved.
type DNS struct {
	// Interval between two resolutions of every name. Default "30s".
	Interval Duration `toml:"interval"`
	// Timeout bounds one resolution. Default "2s".
	Timeout Duration `toml:"timeout"`
	// Servers are the DNS servers asked, "host:port", in turn.
	// Default: those of /etc/resolv.conf.
	Servers []string `toml:"servers"`
}

func (d *DNS) setDefaults() { *d = DNS{Interval: Duration(30e9), Timeout: Duration(2e9)} }

// Retry is when and how a request is sent again after an attempt failed.
// A retry goes to another target when the service has one, after a
// random wait (full jitter) of up to Backoff, doubled at every retry up
// to MaxBackoff. The gateway's own refusals (an open circuit, a full
// service) are never retried.
type Retry struct {
	// Attempts is the most times one request is sent, the first
	// included; 1 turns retries off. Default 2.
	Attempts int `toml:"attempts"`
	// On are the failures retried: "connect" (no connection could be
	// made: the request never left, so it is retried whatever its
	// method), "reset" (the connection was lost before the response
	// head), "timeout" (per_try_timeout, or the service's
	// response_header_timeout, passed), "unavailable" (a gRPC answer
	// whose head says UNAVAILABLE, status 14), a status from 400 to 599
	// ("503"), or "5xx" for them all. Default ["connect", "reset"].
	On []string `toml:"on"`
	// PerTryTimeout bounds one attempt until its response head; the
	// service's timeout still bounds the whole exchange. A body that
	// has begun to arrive is never cut by it. Default "0s": none.
	PerTryTimeout Duration `toml:"per_try_timeout"`
	// Backoff is the longest wait before the first retry. Default "25ms".
	Backoff Duration `toml:"backoff"`
	// MaxBackoff caps the doubled wait. Default "250ms".
	MaxBackoff Duration `toml:"max_backoff"`
	// Budget caps retries at this share of the service's requests over
	// the last 10 seconds, so retries cannot multiply an outage's load.
	// Default 0.2.
	Budget float64 `toml:"budget"`
	// MinPerSecond are retries allowed beyond the budget, so a service
	// with little traffic still gets them. Default 10.
	MinPerSecond int `toml:"min_per_second"`
	// NonIdempotent retries requests whose method is not idempotent
	// (POST, PATCH) on any condition of On, not only "connect". Default
	// false; set it on the routes whose upstream tolerates a repeat.
	NonIdempotent bool `toml:"non_idempotent"`
	// MaxBody is the largest request body kept to be sent again; a
	// request with a larger body is not retried. Default "64KiB".
	MaxBody ByteSize `toml:"max_body"`
}

func (r *Retry) setDefaults() {
	*r = Retry{
		Attempts:     2,
		On:           []string{"connect", "reset"},
		Backoff:      Duration(25e6),
		MaxBackoff:   Duration(250e6),
		Budget:       0.2,
		MinPerSecond: 10,
		MaxBody:      64 << 10,
	}
}

// HealthCheck is an active health check of a service's targets.
type HealthCheck struct {
	// Path is requested with GET on each target ("/healthz").
	Path string `toml:"path"`
	// Interval between two probes of a target. Default "5s".
	Interval Duration `toml:"interval"`
	// Timeout of one probe. Default "1s".
	Timeout Duration `toml:"timeout"`
	// Healthy is how many probes in a row must pass to take a failing
	// target back. Default 2.
	Healthy int `toml:"healthy"`
	// Unhealthy is how many probes in a row must fail to take a target
	// out. Default 3.
	Unhealthy int `toml:"unhealthy"`
	// Statuses are the answers that pass. Default: any 2xx.
	Statuses []int `toml:"statuses"`
}

func (h *HealthCheck) setDefaults() {
	*h = HealthCheck{Interval: Duration(5e9), Timeout: Duration(1e9), Healthy: 2, Unhealthy: 3}
}

// Canary is a second version of a route's service: requests that carry
// the header or cookie go to it, and a share of the others.
type Canary struct {
	// Service receives the canary's requests; it speaks the route
	// service's protocol.
	Service string `toml:"service"`
	// Share of the other requests sent to it, from 0 to 1, drawn per
	// request. Default 0.
	Share float64 `toml:"share"`
	// Header is "NAME=VALUE": a request whose header NAME is VALUE goes
	// to the canary.
	Header string `toml:"header"`
	// Cookie is "NAME=VALUE": a request with that cookie goes to the
	// canary.
	Cookie string `toml:"cookie"`
}

// Mirror sends copies of requests to a service whose answers are
// discarded: a new version under real traffic, say. The client never
// waits for a copy: copies beyond MaxConcurrent in flight, and requests
// whose body exceeds MaxBody, are not mirrored (and counted). Copies
// carry no credentials: Authorization, Proxy-Authorization and Cookie
// are removed; X-Lintel-Mirror: 1 marks them.
type Mirror struct {
	// Service receives the copies.
	Service string `toml:"service"`
	// Share of the route's requests copied, from 0 to 1. Default 1.
	Share float64 `toml:"share"`
	// MaxBody is the largest request body copied; the gateway holds at
	// most this much of a body to copy it. Default "64KiB".
	MaxBody ByteSize `toml:"max_body"`
	// MaxConcurrent bounds the copies in flight for this route.
	// Default 32.
	MaxConcurrent int `toml:"max_concurrent"`
}

func (m *Mirror) setDefaults() { *m = Mirror{Share: 1, MaxBody: 64 << 10, MaxConcurrent: 32} }

// GRPCJSON are the choices of the proto3 JSON mapping that users differ
// on. The defaults are protojson's, except that every field is written.
type GRPCJSON struct {
	// ProtoNames writes fields by their .proto names (product_id), not
	// lowerCamelCase (productId). Requests accept both always.
	ProtoNames bool `toml:"proto_names"`
	// EnumNumbers writes enums as numbers, not names.
	EnumNumbers bool `toml:"enum_numbers"`
	// OmitUnpopulated leaves out fields at their zero value.
	OmitUnpopulated bool `toml:"omit_unpopulated"`
}

// RouteGRPC is a route's gRPC method: REST and JSON outside, gRPC inside.
type RouteGRPC struct {
	// Method is the method's full name, "package.Service/Method".
	Method string `toml:"method"`
	// Annotations, instead of Method, makes one route of every binding
	// the service's methods declare with google.api.http (path, HTTP
	// method and body from the annotation); the route's path and methods
	// are then left out.
	Annotations bool `toml:"annotations"`
	// Body says where the JSON request body goes: "*" the whole request
	// message, a field's name that field (a message), "" nowhere (path
	// and query parameters only). Default: "*" for a POST, PUT or PATCH
	// request, "" for others.
	Body *string `toml:"body"`
	// ForwardHeaders are request headers sent as gRPC metadata
	// (X-Request-Id always is). Default: none.
	ForwardHeaders []string `toml:"forward_headers"`
	// Timeout bounds a call on this route, a whole stream for a
	// streaming method; "0s" means none. Default: the service's timeout.
	Timeout *Duration `toml:"timeout"`
}

// Aggregate merges several upstream JSON responses into one object.
type Aggregate struct {
	// Timeout bounds the whole fan-out. Default "3s".
	Timeout Duration `toml:"timeout"`
	// ForwardHeaders are the client request headers copied to every part
	// (X-Request-Id always is). Default: none.
	ForwardHeaders []string `toml:"forward_headers"`
	// MaxPartBody caps each part's response body. Default "1MiB".
	MaxPartBody ByteSize `toml:"max_part_body"`
	// Parts are fetched in parallel and merged in this order.
	Parts []*Part `toml:"parts"`
}

// Part is one upstream call of an aggregate.
type Part struct {
	// Key is the part's field in the merged object.
	Key string `toml:"key"`
	// Service receives the call.
	Service string `toml:"service"`
	// Path is the upstream path, with {param} from the route's Path, and
	// an optional query after '?'. {KEY.FIELD} takes a field of the
	// answer of the part named KEY ("/sellers/{product.seller_id}"): this
	// part then waits for that one (the others still run in parallel),
	// and fails when it failed or the field is not a string, number or
	// boolean. Such values are escaped as one path segment ("", "." and
	// ".." refused) or as a query value.
	Path string `toml:"path"`
	// Headers are request headers for this part, templates like Path's
	// ({param}, {KEY.FIELD}); a value with CR, LF or another control
	// character fails the part.
	Headers map[string]string `toml:"headers"`
	// Method, instead of Path, calls a unary method of a grpc service
	// ("package.Service/Method"), its request filled from the route's
	// parameters; the part is its response as JSON.
	Method string `toml:"method"`
	// Timeout bounds this part; default: the aggregate's timeout.
	Timeout Duration `toml:"timeout"`
	// Take lifts one field (dotted for nested objects) out of the body.
	Take string `toml:"take"`
	// Allow keeps only these top-level fields of an object body.
	Allow []string `toml:"allow"`
	// Deny drops these top-level fields of an object body.
	Deny []string `toml:"deny"`
	// Rename maps top-level field names to new ones.
	Rename map[string]string `toml:"rename"`
	// Optional parts may fail: the merged object then holds null for the
	// key and the response is marked incomplete.
	Optional bool `toml:"optional"`
}

// DefaultRemoveHeaders are the request headers a listener removes on
// arrival unless it lists its own: they name a client address, an
// original URL or a path prefix that upstreams (and frameworks behind
// them) believe, and only the gateway can vouch for. X-Forwarded-For,
// -Proto and -Host are not here: the gateway sets them itself.
var DefaultRemoveHeaders = []string{
	"Forwarded", "X-Real-Ip", "X-Client-Ip", "True-Client-Ip", "Cf-Connecting-Ip",
	"X-Original-Url", "X-Rewrite-Url", "X-Original-Uri", "X-Forwarded-Prefix",
	"X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Ssl", "X-Original-Host",
	"X-Host", "X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
}

// DefaultMethods are the methods of a route that lists none.
var DefaultMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// defaults are applied to a value before the file's keys are decoded
// into it, so a key the file omits keeps its default.
type defaulter interface{ setDefaults() }

// ApplyDefaults sets on v (a *Config, or a pointer to a table the file
// may hold many of: *Listener, *Service, *Filter, *Route, ...) the values
// its keys have when the file omits them, and reports whether its type
// has any. The config schema (internal/confschema) shows them.
func ApplyDefaults(v any) bool {
	d, ok := v.(defaulter)
	if ok {
		d.setDefaults()
	}
	return ok
}

func (c *Config) setDefaults() {
	c.Server = Server{DrainTimeout: Duration(30e9), Watch: true, WatchInterval: Duration(1e9)}
	c.Log = Log{Level: "info", Format: "text"}
	c.Plugins = Plugins{Dir: "plugins"}
	c.State = State{Backend: "memory", PoolSize: 64, Timeout: Duration(200e6), KeyPrefix: "lintel:", NamespaceLimit: 64 << 20}
	c.Admin = Admin{Listen: "127.0.0.1:9901", AllowedHosts: []string{"localhost", "127.0.0.1", "::1"}, ReadyRequiresUpstreams: true}
	c.Tracing = Tracing{Protocol: "http/protobuf", SampleRatio: 1, Incoming: "join", ServiceName: "lintel", Timeout: Duration(10e9)}
}

func (l *Listener) setDefaults() {
	*l = Listener{
		Listen:            "127.0.0.1:8080",
		ReadHeaderTimeout: Duration(5e9),
		ReadTimeout:       Duration(60e9),
		IdleTimeout:       Duration(120e9),
		MaxHeaderBytes:    64 << 10,
		MaxHeaders:        100,
		RemoveHeaders:     slices.Clone(DefaultRemoveHeaders),
		MaxBody:           10 << 20,
		MaxConcurrent:     10000,
	}
}

func (s *Service) setDefaults() {
	*s = Service{
		Timeout:               Duration(30e9),
		ConnectTimeout:        Duration(2e9),
		ResponseHeaderTimeout: Duration(15e9),
		MaxIdleConns:          256,
		IdleConnTimeout:       Duration(90e9),
		Retry:                 defaultRetry(),
		FailCooldown:          Duration(10e9),
		Protocol:              "http1",
		Balance:               "round_robin",
	}
}

func defaultRetry() *Retry {
	r := &Retry{}
	r.setDefaults()
	return r
}

func (t *ListenerTLS) setDefaults() { *t = ListenerTLS{MinVersion: "1.2", HTTP2: true} }

func (f *Filter) setDefaults() {
	*f = Filter{
		OnError:      "deny",
		Timeout:      Duration(500e6),
		MemoryLimit:  64 << 20,
		MinInstances: 1,
		MaxInstances: 64,
		PoolTimeout:  Duration(1e9),
		MaxRequests:  10000,
		Limits:       DefaultLimits,
	}
}

func (r *Route) setDefaults() { *r = Route{Upgrades: []string{"websocket"}} }

func (a *Aggregate) setDefaults() {
	*a = Aggregate{Timeout: Duration(3e9), MaxPartBody: 1 << 20}
}

// Errorf makes an error positioned at a key path such as "routes[1].path",
// for problems found outside this package (route conflicts, plugins).
func (c *Config) Errorf(key, format string, args ...any) *Error {
	e := &errs{file: c.File, pos: c.pos}
	e.add(key, format, args...)
	return e.list[0]
}

// Line returns the line a key path is written on, or that of its nearest
// written ancestor; 0 when unknown.
func (c *Config) Line(key string) int { return c.pos.line(key) }

// RouteKey is the key path of the i-th route, for errors.
func RouteKey(i int) string { return indexKey("routes", i) }
