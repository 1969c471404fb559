// Package supervisor runs one gatewayd: it builds a generation of the
// gateway from the config file (shared state, plugin engine, routes and
// services), serves it, and replaces it on reload, asked for by SIGHUP,
// by the admin API or by the file watcher. A generation is built whole,
// plugins compiled and pools warmed, before it is swapped in; one that
// fails to build leaves the running one serving. The generation swapped
// out finishes its requests, then its plugins and pools close.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintelhq/lintel/core/admin"
	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/gateway"
	"github.com/lintelhq/lintel/core/metrics"
	"github.com/lintelhq/lintel/core/state"
	"github.com/lintelhq/lintel/core/wasm"
)

var _ admin.Source = (*Supervisor)(nil)

// Options are what a Supervisor needs besides its config file.
type Options struct {
	// Path is the config file, read again on every reload.
	Path string
	// Log is the process's log.
	Log *slog.Logger
	// Level, when not nil, follows the config's log.level on every
	// reload (unless the operator fixed it with a flag: then nil).
	Level *slog.LevelVar
	// Metrics is the process's registry; the admin API exports it.
	Metrics *prometheus.Registry
	// Version is gatewayd's version (traces carry it).
	Version string
}

// Supervisor serves the current generation and reloads it.
type Supervisor struct {
	opt    Options
	log    *slog.Logger
	server *gateway.Server

	reloading sync.Mutex // one reload at a time
	cur       atomic.Pointer[generation]
	status    atomic.Pointer[admin.ReloadStatus]
	stopping  atomic.Bool
	retiring  sync.WaitGroup

	admin   *admin.Server
	m       reloadMetrics
	stop    chan struct{}
	watcher sync.WaitGroup
	digests digests
	// failed is the fingerprint of the files the last reload failed on.
	failedMu sync.Mutex
	failed   string
}

// generation is everything built from one reading of the config.
type generation struct {
	n      int
	cfg    *config.Config
	store  state.Store
	engine *wasm.Engine
	gw     *gateway.Gateway
	// files is the fingerprint of the files it was built from (watch.go).
	files string
	// keepStore is set when the next generation took over the store.
	keepStore bool
}

// Start builds the first generation from the config file and serves it,
// with the admin listener and the file watcher. Its error is the
// config's or a plugin's (file, line and key), or a socket's.
func Start(opt Options) (*Supervisor, error) {
	s := &Supervisor{opt: opt, log: opt.Log, server: gateway.NewServer(opt.Log), stop: make(chan struct{})}
	s.m = newReloadMetrics(opt.Metrics)
	g, _, err := s.build(nil)
	if err != nil {
		return nil, err
	}
	if _, err := s.server.Serve(g.gw); err != nil {
		s.release(g)
		return nil, err
	}
	g.n = 1
	s.cur.Store(g)
	s.status.Store(&admin.ReloadStatus{Generation: 1, LoadedAt: time.Now()})
	s.applyLevel(g.cfg)
	if opt.Metrics != nil {
		metrics.Register(opt.Metrics, prometheus.Collector(poolCollector{s}))
	}
	s.admin = admin.NewServer(s.log)
	if err := s.admin.Apply(g.cfg.Admin, s, opt.Metrics); err != nil {
		s.Shutdown(context.Background())
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	s.watcher.Add(1)
	go s.watch()
	return s, nil
}

// Validate builds everything the config file describes, as a reload
// does, with the same builder (plugins loaded, their configs checked,
// certificates read, routes compiled), opens no socket, and releases it
// all. Its error lists every problem as FILE:LINE: key: what.
func Validate(path string, log *slog.Logger) error {
	s := &Supervisor{opt: Options{Path: path, Log: log}, log: log}
	g, _, err := s.build(nil)
	if err != nil {
		return err
	}
	s.release(g)
	return nil
}

// Addr returns the address a listener is bound to.
func (s *Supervisor) Addr(listener string) string { return s.server.Addr(listener) }

// AdminAddr returns the admin listener's address, "" when off.
func (s *Supervisor) AdminAddr() string { return s.admin.Addr() }

// Reload reads the config file again and, if it and its plugins build,
// swaps the new generation in. On error the running generation stays,
// and the error (file, line and key) is logged, kept for the admin API
// and counted. reason is for the log.
func (s *Supervisor) Reload(reason string) error { return s.reload(reason, nil) }

// reload is Reload; with from set, only while from is still the running
// generation (the watcher's reload is moot once another went live).
func (s *Supervisor) reload(reason string, from *generation) error {
	s.reloading.Lock()
	defer s.reloading.Unlock()
	if s.stopping.Load() {
		return errors.New("not reloaded: gatewayd is shutting down")
	}
	start := time.Now()
	prev := s.cur.Load()
	if from != nil && from != prev {
		return nil
	}
	g, files, err := s.build(prev)
	if err == nil {
		if err = emptied(prev.cfg, g.cfg); err == nil {
			_, err = s.server.Serve(g.gw)
		}
		if err != nil {
			g.keepStore = g.store == prev.store // still the running one's
			s.release(g)
		}
	}
	st := *s.status.Load()
	st.LastAttempt = start
	if err != nil {
		s.setFailedFiles(files)
		st.LastError = err.Error()
		s.status.Store(&st)
		s.m.result(false)
		s.log.Error("reload failed; the running configuration stays", "reason", reason, "generation", prev.n, "error", err)
		return err
	}
	g.n = prev.n + 1
	s.setFailedFiles("")
	prev.keepStore = g.store == prev.store
	s.cur.Store(g)
	st.Generation, st.LoadedAt, st.LastError = g.n, time.Now(), ""
	s.status.Store(&st)
	s.m.result(true)
	s.applyLevel(g.cfg)
	if err := s.admin.Apply(g.cfg.Admin, s, s.opt.Metrics); err != nil {
		s.log.Error("admin listener not moved", "listen", g.cfg.Admin.Listen, "error", err)
	}
	s.log.Info("reloaded", "reason", reason, "generation", g.n, "took", time.Since(start).Round(time.Millisecond),
		"listeners", len(g.cfg.Listeners), "routes", len(g.cfg.Routes), "filters", len(g.cfg.Filters))
	s.retiring.Add(1)
	go func() {
		defer s.retiring.Done()
		ctx, cancel := context.WithTimeout(context.Background(), prev.cfg.Server.DrainTimeout.D())
		defer cancel()
		if err := prev.gw.Retire(ctx); err != nil {
			s.log.Warn("previous configuration retired with requests cut", "generation", prev.n, "error", err)
		}
		s.release(prev)
	}()
	return nil
}

// build makes a generation from the config file. The state store of
// prev is reused when [state] did not change, so counters survive. It
// also returns the fingerprint of the files it read (watch.go), failed
// or not: with prev's list of files when the config did not parse.
func (s *Supervisor) build(prev *generation) (*generation, string, error) {
	data, err := os.ReadFile(s.opt.Path)
	if err != nil {
		return nil, "", config.Errors{{File: s.opt.Path, Msg: errors.Unwrap(err).Error()}}
	}
	cfg, err := config.Parse(s.opt.Path, data, os.LookupEnv)
	if err != nil {
		files := ""
		if prev != nil {
			files = s.digests.fingerprintWith(prev.cfg, config.Digest(data))
		}
		return nil, files, err
	}
	// The other files are digested before anything reads them: one that
	// changes while the generation is built differs afterwards.
	g := &generation{cfg: cfg, files: s.digests.fingerprintWith(cfg, cfg.Digest)}
	if prev != nil && prev.cfg.State == cfg.State {
		g.store = prev.store
	} else if g.store, err = newStore(cfg.State, s.log); err != nil {
		return nil, g.files, err
	}
	fail := func(err error) (*generation, string, error) {
		if prev == nil || g.store != prev.store {
			g.store.Close()
		}
		if g.engine != nil {
			g.engine.Close()
		}
		return nil, g.files, err
	}
	var stateTimeout time.Duration
	if cfg.State.Backend == "redis" {
		stateTimeout = cfg.State.Timeout.D()
	}
	if g.engine, err = wasm.NewEngine(cfg, wasm.Options{Log: s.log, State: g.store, StateTimeout: stateTimeout, Metrics: s.opt.Metrics}); err != nil {
		return fail(err)
	}
	if g.gw, err = gateway.New(cfg, gateway.Options{Log: s.log, Filters: g.engine, Metrics: s.opt.Metrics, Version: s.opt.Version}); err != nil {
		return fail(err)
	}
	return g, g.files, nil
}

// emptied refuses a reload that would take every route away from a
// listener that had some, or remove every listener, unless the new file
// sets server.allow_empty_listeners: that is far more often a file
// written half-way than an intent.
func emptied(prev, next *config.Config) error {
	if next.Server.AllowEmptyListeners {
		return nil
	}
	had, has := routesPerListener(prev), routesPerListener(next)
	kept := false
	var errs config.Errors
	for _, name := range slices.Sorted(maps.Keys(prev.Listeners)) {
		if next.Listeners[name] == nil {
			continue
		}
		kept = true
		if had[name] > 0 && has[name] == 0 {
			errs = append(errs, next.Errorf("listeners."+name, "the reload would leave this listener without routes (it has %d); set server.allow_empty_listeners = true if that is meant", had[name]))
		}
	}
	if !kept {
		errs = append(errs, &config.Error{File: next.File, Msg: fmt.Sprintf("the reload would remove every listener (%s); set server.allow_empty_listeners = true if that is meant",
			strings.Join(slices.Sorted(maps.Keys(prev.Listeners)), ", "))})
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func routesPerListener(c *config.Config) map[string]int {
	n := map[string]int{}
	for _, r := range c.Routes {
		n[r.Listener]++
	}
	return n
}

// release closes what a retired (or never served) generation holds.
func (s *Supervisor) release(g *generation) {
	g.gw.Close()
	g.engine.Close()
	if !g.keepStore {
		g.store.Close()
	}
}

// newStore opens the shared state backend the config names.
func newStore(c config.State, log *slog.Logger) (state.Store, error) {
	if c.Backend == "redis" {
		return state.NewRedis(state.RedisOptions{URL: c.RedisURL, PoolSize: c.PoolSize, Timeout: c.Timeout.D(), Prefix: c.KeyPrefix, Log: log})
	}
	m := state.NewMemory(0)
	m.SetNamespaceLimit(int64(c.NamespaceLimit))
	return m, nil
}

func (s *Supervisor) applyLevel(cfg *config.Config) {
	if s.opt.Level != nil {
		var lv slog.Level
		if lv.UnmarshalText([]byte(cfg.Log.Level)) == nil {
			s.opt.Level.Set(lv)
		}
	}
}

// Shutdown reports not ready, keeps serving for shutdown_delay, then
// closes the listeners, lets requests in flight finish up to
// drain_timeout (or ctx), and releases everything. Calls after the
// first return nil at once.
func (s *Supervisor) Shutdown(ctx context.Context) error {
	if !s.stopping.CompareAndSwap(false, true) {
		return nil // shut down already, or shutting down
	}
	close(s.stop)
	s.watcher.Wait()
	s.reloading.Lock()
	defer s.reloading.Unlock()
	g := s.cur.Load()
	err := s.server.Shutdown(ctx)
	s.retiring.Wait()
	s.release(g)
	if s.admin != nil {
		s.admin.Close()
	}
	return err
}

// NotReady implements admin.Source.
func (s *Supervisor) NotReady() []string {
	if s.stopping.Load() {
		return []string{"shutting down"}
	}
	return s.cur.Load().gw.NotReady()
}

// Plugins implements admin.Source.
func (s *Supervisor) Plugins() []admin.Plugin {
	var out []admin.Plugin
	for _, f := range s.cur.Load().engine.Filters() {
		live, idle := f.Stats()
		out = append(out, admin.Plugin{Filter: f.Name(), Plugin: f.Plugin, Size: f.Size, SHA256: f.SHA256, ABI: f.ABI, Instances: live, Idle: idle})
	}
	slices.SortFunc(out, func(a, b admin.Plugin) int { return strings.Compare(a.Filter, b.Filter) })
	return out
}

// Routes implements admin.Source.
func (s *Supervisor) Routes() []admin.Route {
	var out []admin.Route
	for _, r := range s.cur.Load().gw.Routes() {
		out = append(out, admin.Route{Listener: r.Listener, Name: r.Name, Host: r.Host, Methods: r.Methods, Path: r.Path, Target: r.Target})
	}
	return out
}

// Upstreams implements admin.Source.
func (s *Supervisor) Upstreams() []admin.Upstream {
	ups := s.cur.Load().gw.Upstreams()
	var out []admin.Upstream
	for _, name := range slices.Sorted(maps.Keys(ups)) {
		u := admin.Upstream{Service: name, InFlight: ups[name].InFlight, Pending: ups[name].Pending}
		for _, t := range ups[name].Targets {
			u.Targets = append(u.Targets, admin.UpstreamTarget{URL: t.URL, Weight: t.Weight, CoolingDown: t.CoolingDown, HealthCheck: t.HealthCheck, Circuit: t.Circuit, InFlight: t.InFlight})
		}
		out = append(out, u)
	}
	return out
}

// Config implements admin.Source.
func (s *Supervisor) Config() ([]byte, error) {
	g := s.cur.Load()
	schemas := map[string]*config.PluginSchema{}
	for _, f := range g.engine.Filters() {
		schemas[f.Name()] = f.Schema
	}
	return g.cfg.Redacted(schemas)
}

// ReloadStatus implements admin.Source.
func (s *Supervisor) ReloadStatus() admin.ReloadStatus { return *s.status.Load() }
