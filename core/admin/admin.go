// Package admin serves the operator's API on its own listener: /healthz,
// /readyz, /metrics (Prometheus) and /plugins. It answers only requests
// whose Host is allowed, so a browser on the same machine cannot be turned
// against it by DNS rebinding.
package admin

import (
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"

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

// Source is what the admin API reads from the running gateway.
type Source interface {
	Ready() bool
	Plugins() []Plugin
}

// Handler returns the admin API.
func Handler(cfg config.Admin, src Source, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !src.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /plugins", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(src.Plugins())
	})
	return hostCheck(cfg.AllowedHosts, mux)
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
