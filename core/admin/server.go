package admin

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintelhq/lintel/core/config"
)

// Server is the admin listener. Applying a config that changes its
// settings swaps its handler; one that changes its address moves it.
type Server struct {
	log     *slog.Logger
	mu      sync.Mutex
	listen  string
	srv     *http.Server
	ln      net.Listener
	handler atomic.Pointer[http.Handler]
}

// NewServer returns an admin listener that serves nothing until Apply.
func NewServer(log *slog.Logger) *Server { return &Server{log: log} }

// Apply serves the admin API of cfg: on a new address if it changed (""
// closes it), else with the new handler on the same socket.
func (a *Server) Apply(cfg config.Admin, src Source, reg *prometheus.Registry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := Handler(cfg, src, reg)
	if a.srv != nil && a.listen == cfg.Listen {
		a.handler.Store(&h)
		return nil
	}
	var ln net.Listener
	if cfg.Listen != "" {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return err
		}
	}
	a.handler.Store(&h)
	if a.srv != nil {
		go a.srv.Close()
	}
	a.listen, a.srv, a.ln = cfg.Listen, nil, ln
	if ln != nil {
		a.srv = &http.Server{
			Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*a.handler.Load()).ServeHTTP(w, r) }),
			ReadHeaderTimeout: 5 * time.Second,
		}
		go a.srv.Serve(ln)
		a.log.Info("admin listening", "addr", ln.Addr().String(), "reload_api", cfg.Token != "")
	}
	return nil
}

// Addr is the address it listens on, "" when off.
func (a *Server) Addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// Close closes the listener.
func (a *Server) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		a.srv.Close()
	}
}
