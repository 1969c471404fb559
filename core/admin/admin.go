// Package admin serves the operator's API on its own listener: /healthz,
// /readyz, /metrics (Prometheus), /plugins, /routes, /config and /reload. It
// answers only requests whose Host is allowed, so a browser on the same
// machine cannot be turned against it by DNS rebinding, and the one
// endpoint that changes anything (POST /reload) needs a bearer token.
package admin

import (
	"crypto/subtle"
	"encoding/json"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lintelhq/lintel/core/config"
)

// Plugin is what /plugins reports of one filter's plugin.
type Plugin struct {
	Filter    string `json:"filter"`
	Plugin    string `json:"plugin"`
	Size      int    `json:"size"`
	SHA256    string `json:"sha256"`
	ABI       string `json:"abi"`
	Instances int    `json:"instances"`
	Idle      int    `json:"idle"`
}

// Route is what /routes reports of one route: those of gateway.toml, and
// those made from gRPC annotations.
type Route struct {
	Listener string   `json:"listener"`
	Name     string   `json:"name"`
	Host     string   `json:"host,omitempty"`
	Methods  []string `json:"methods"`
	Path     string   `json:"path"`
	// Target is "service NAME", "aggregate", or "grpc SERVICE
	// package.Service/Method".
	Target string `json:"target"`
}

// Upstream is a service and the state of each of its targets.
type Upstream struct {
	Service string `json:"service"`
	// InFlight and Pending count the requests holding and awaiting a
	// slot of the service's max_concurrent (0 without one).
	InFlight int              `json:"in_flight"`
	Pending  int64            `json:"pending"`
	Targets  []UpstreamTarget `json:"targets"`
}

// UpstreamTarget is one target as the balancer sees it.
type UpstreamTarget struct {
	URL    string `json:"url"`
	Weight int    `json:"weight"`
	// CoolingDown: its connection failed recently (fail_cooldown).
	CoolingDown bool `json:"cooling_down"`
	// HealthCheck is "passing" or "failing", or "" without one.
	HealthCheck string `json:"health_check,omitempty"`
	// Circuit is "closed", "open" or "half_open", or "" without a
	// breaker.
	Circuit  string `json:"circuit,omitempty"`
	InFlight int64  `json:"in_flight"`
}

// ReloadStatus is what GET /reload reports.
type ReloadStatus struct {
	// Generation counts the configurations served, from 1.
	Generation int       `json:"generation"`
	LoadedAt   time.Time `json:"loaded_at"`
	// LastAttempt and LastError are of the latest reload; LastError is
	// "" when it succeeded.
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
}

// Source is what the admin API reads from, and asks of, the running
// gateway.
type Source interface {
	// NotReady says why the gateway should not get traffic; none when
	// it is ready.
	NotReady() []string
	Plugins() []Plugin
	Routes() []Route
	// Upstreams are the services and their targets' states.
	Upstreams() []Upstream
	// Config is the effective configuration, secrets redacted (TOML).
	Config() ([]byte, error)
	// Reload builds the configuration anew and swaps it in; an error
	// leaves the running one.
	Reload(reason string) error
	ReloadStatus() ReloadStatus
}

// Handler returns the admin API for cfg.
func Handler(cfg config.Admin, src Source, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if reasons := src.NotReady(); len(reasons) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready:\n- " + strings.Join(reasons, "\n- ") + "\n"))
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /plugins", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, src.Plugins())
	})
	if cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /routes", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, src.Routes())
	})
	mux.HandleFunc("GET /upstreams", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, src.Upstreams())
	})
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, r *http.Request) {
		b, err := src.Config()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/toml")
		w.Write(b)
	})
	mux.HandleFunc("GET /reload", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, src.ReloadStatus())
	})
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		if cfg.Token == "" {
			http.Error(w, "reload over the admin API is off: set admin.token", http.StatusForbidden)
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(token), []byte(cfg.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lintel-admin"`)
			http.Error(w, "a valid bearer token is required", http.StatusUnauthorized)
			return
		}
		if err := src.Reload("admin API"); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, src.ReloadStatus())
			return
		}
		writeJSON(w, http.StatusOK, src.ReloadStatus())
	})
	return hostCheck(cfg.AllowedHosts, mux)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// hostCheck answers 403 to a request whose Host is not allowed.
func hostCheck(allowed []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(strings.ToLower(host), "[]")
		if !slices.Contains(allowed, host) {
			http.Error(w, "host not allowed", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
