package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/problem"
	"github.com/lintelhq/lintel/internal/stdlog"
)

// Server owns the listening sockets and serves one Gateway at a time.
// Serve swaps in another Gateway without closing a connection: a socket
// whose address stays keeps its connections, requests already running
// finish on the Gateway they started on, and the next request on any
// connection meets the new one.
type Server struct {
	log *slog.Logger

	mu      sync.Mutex
	sockets map[string]*socket // by socketKey
	current *Gateway
	closing sync.WaitGroup // sockets being closed
}

// NewServer returns a Server with no sockets.
func NewServer(log *slog.Logger) *Server {
	return &Server{log: log, sockets: map[string]*socket{}}
}

// Serve makes g the Gateway that answers. Sockets for addresses that are
// new are opened first; if one cannot be, nothing changes and the error
// names the listener. Then every socket points at g, and the sockets g
// no longer uses close gracefully in the background. Serve returns the
// Gateway it replaced (nil the first time), for the caller to Retire.
func (s *Server) Serve(g *Gateway) (prev *Gateway, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]*listener{}
	opened := map[string]*socket{}
	for _, l := range g.listeners {
		key := socketKey(l.cfg)
		want[key] = l
		if s.sockets[key] != nil {
			continue
		}
		ln, err := net.Listen("tcp", l.cfg.Listen)
		if err != nil {
			for _, k := range opened {
				k.ln.Close()
			}
			return nil, fmt.Errorf("listener %q: %w", l.cfg.Name, err)
		}
		opened[key] = &socket{ln: ln, log: s.log}
	}
	for key, l := range want {
		k := s.sockets[key]
		if k == nil {
			k = opened[key]
			s.sockets[key] = k
			k.serve(l)
			go k.accept()
			s.log.Info("listening", "listener", l.cfg.Name, "addr", k.ln.Addr().String(), "routes", l.routes, "tls", l.tls != nil)
			continue
		}
		k.serve(l)
	}
	for key, k := range s.sockets {
		if want[key] != nil {
			continue
		}
		delete(s.sockets, key)
		s.log.Info("closing listener no longer configured", "addr", k.ln.Addr().String())
		s.closing.Add(1)
		go func() {
			defer s.closing.Done()
			ctx, cancel := context.WithTimeout(context.Background(), g.cfg.Server.DrainTimeout.D())
			defer cancel()
			k.shutdown(ctx)
		}()
	}
	prev, s.current = s.current, g
	g.serving.Store(true)
	for _, svc := range g.services {
		svc.Start() // once serving: validate probes nothing
	}
	return prev, nil
}

// Addr returns the address the socket of a listener of the current
// Gateway is bound to, or "".
func (s *Server) Addr(listener string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.sockets {
		if l := k.handler.Load(); l != nil && l.cfg.Name == listener {
			return k.ln.Addr().String()
		}
	}
	return ""
}

// Shutdown stops serving: the current Gateway reports itself not ready
// and keeps serving for its shutdown_delay (so load balancers stop
// sending traffic), then every socket closes, requests in flight finish
// for up to its drain_timeout (or ctx), and the Gateway retires. It
// reports whether requests had to be cut.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	sockets, g := s.sockets, s.current
	s.mu.Unlock()
	if g != nil {
		g.stopping.Store(true)
		if d := g.cfg.Server.ShutdownDelay.D(); d > 0 {
			s.log.Info("not ready; waiting before closing listeners", "delay", d)
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.cfg.Server.DrainTimeout.D())
		defer cancel()
	}
	s.mu.Lock()
	s.sockets, s.current = map[string]*socket{}, nil
	s.mu.Unlock()
	drained := inParallel(slices.Collect(maps.Values(sockets)), func(k *socket) bool { return k.shutdown(ctx) })
	s.closing.Wait()
	if g != nil && g.Retire(ctx) != nil {
		drained = false
	}
	if !drained {
		return errors.New("drain timeout: in-flight requests were cut")
	}
	return nil
}

// socketKey says which socket a listener needs: its address, so a
// listener renamed keeps its socket and one moved gets a new one. Port 0
// (any free port, in tests) is kept per listener name.
func socketKey(l *config.Listener) string {
	if _, port, _ := net.SplitHostPort(l.Listen); port == "0" {
		return l.Name + "@" + l.Listen
	}
	return l.Listen
}

// socket is one listening socket. Its accept loop hands connections to
// the http.Server of the moment. A Gateway whose listener needs other
// server settings (timeouts, TLS, HTTP/2) gets a new http.Server for new
// connections; the old one keeps the connections it has, which go on
// serving requests (on the new Gateway) until they close by themselves.
// Closing them early would race clients sending on them: a POST on a
// keep-alive connection closed under it fails.
type socket struct {
	ln      net.Listener
	log     *slog.Logger
	handler atomic.Pointer[listener]

	mu       sync.Mutex // guards srv, settings, older and feed changes
	srv      *server
	settings serverSettings
	older    []*server // servers replaced, until their connections close
	feed     atomic.Pointer[handoff]
}

// server is an http.Server with the count of its open connections.
type server struct {
	*http.Server
	conns atomic.Int64
}

// serverSettings are the parts of a listener's config an http.Server
// holds; a change to any needs a new http.Server.
type serverSettings struct {
	readHeader, read, write, idle time.Duration
	maxHeader                     int
	tls, http2, h2c               bool
}

func settingsOf(l *listener) serverSettings {
	c := l.cfg
	st := serverSettings{
		readHeader: c.ReadHeaderTimeout.D(), read: c.ReadTimeout.D(), write: c.WriteTimeout.D(), idle: c.IdleTimeout.D(),
		maxHeader: int(c.MaxHeaderBytes), tls: c.TLS != nil, h2c: c.H2C,
	}
	st.http2 = st.tls && c.TLS.HTTP2
	return st
}

// serve points the socket at l, with a new http.Server if l needs other
// settings than the one serving.
func (k *socket) serve(l *listener) {
	k.handler.Store(l)
	st := settingsOf(l)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.srv != nil && k.settings == st {
		return
	}
	srv := &server{}
	srv.Server = &http.Server{
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				srv.conns.Add(1)
			case http.StateClosed, http.StateHijacked:
				srv.conns.Add(-1)
			}
		},
		Handler:           k,
		ReadHeaderTimeout: st.readHeader,
		ReadTimeout:       st.read,
		WriteTimeout:      st.write,
		IdleTimeout:       st.idle,
		MaxHeaderBytes:    st.maxHeader,
		ErrorLog:          stdlog.New(k.log.With("listener", l.cfg.Name)),
		Protocols:         new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(st.http2)
	srv.Protocols.SetUnencryptedHTTP2(st.h2c)
	if st.tls {
		// The certificates are the current Gateway's: a reload that
		// changes only them needs no new server.
		srv.TLSConfig = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			if t := k.handler.Load().tls; t != nil {
				return t, nil
			}
			return nil, errors.New("listener no longer has TLS")
		}}
	}
	feed := newHandoff(k.ln.Addr())
	go func() {
		var err error
		if st.tls {
			err = srv.ServeTLS(feed, "", "")
		} else {
			err = srv.Serve(feed)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			k.log.Error("listener stopped", "addr", k.ln.Addr().String(), "error", err)
		}
	}()
	if k.srv != nil {
		k.older = append(k.older, k.srv)
	}
	k.srv, k.settings = srv, st
	old := k.feed.Swap(feed)
	if old != nil {
		old.Close() // its server stops accepting; its connections stay
	}
	live := k.older[:0]
	for _, o := range k.older {
		if o.conns.Load() > 0 {
			live = append(live, o)
		}
	}
	k.older = live
}

// ServeHTTP runs a request on the current Gateway, or on the next one if
// that Gateway retired between loading it and entering it.
func (k *socket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for range 2 {
		l := k.handler.Load()
		if l.g.enter() {
			defer l.g.leave()
			l.ServeHTTP(w, r)
			return
		}
	}
	w.Header().Set("Connection", "close")
	problem.Error(w, http.StatusServiceUnavailable, "the gateway is shutting down")
}

// accept hands each new connection to the current http.Server until the
// socket closes.
func (k *socket) accept() {
	var delay time.Duration
	for {
		c, err := k.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as
			// net/http does rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			k.log.Warn("accept failed; retrying", "addr", k.ln.Addr().String(), "error", err, "delay", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		for !k.feed.Load().give(c) {
			// That server is shutting down; its successor is already
			// stored, unless the whole socket is closing.
			if k.closed() {
				c.Close()
				break
			}
		}
	}
}

func (k *socket) closed() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.srv == nil
}

// shutdown closes the socket and lets its connections finish their
// requests, up to ctx. It reports whether all finished in time.
func (k *socket) shutdown(ctx context.Context) bool {
	k.mu.Lock()
	servers := k.older
	if k.srv != nil {
		servers = append(servers, k.srv)
	}
	k.srv, k.older = nil, nil
	k.mu.Unlock()
	k.ln.Close()
	return inParallel(servers, func(srv *server) bool {
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
			return false
		}
		return true
	})
}

// inParallel runs f on every item at once and reports whether all
// returned true.
func inParallel[T any](items []T, f func(T) bool) bool {
	var wg sync.WaitGroup
	var failed atomic.Bool
	for _, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !f(it) {
				failed.Store(true)
			}
		}()
	}
	wg.Wait()
	return !failed.Load()
}

// handoff is the net.Listener an http.Server of a socket serves: it
// yields the connections the socket's accept loop gives it.
type handoff struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	closer sync.Once
}

func newHandoff(addr net.Addr) *handoff {
	return &handoff{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// give hands c to the server; false when the server has stopped taking
// connections.
func (h *handoff) give(c net.Conn) bool {
	select {
	case h.conns <- c:
		return true
	case <-h.done:
		return false
	}
}

func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoff) Close() error {
	h.closer.Do(func() { close(h.done) })
	return nil
}

func (h *handoff) Addr() net.Addr { return h.addr }
