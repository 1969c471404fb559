// Package wasm runs filters written as WebAssembly plugins, under wazero.
// It is the only importer of wazero in Lintel.
//
// A plugin speaks http-wasm's handler ABI (host module http_handler, guest
// exports handle_request and handle_response), plus, optionally, Lintel's
// own host module "lintel". sdk/ABI.md is the normative description; abi.go
// holds every name of it.
//
// Each configured filter gets its own wazero runtime (memory limits are
// per runtime), compiled through one on-disk compilation cache shared by
// all, and a bounded pool of instances. Every module is metered first
// (package meter): each call's work and call depth are bounded by
// counters in the guest's own code. An instance is
// pinned to one request from handle_request to handle_response, unless the
// guest declared through lintel.declare that it needs no such pinning.
package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tetratelabs/wazero"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/filter"
	"github.com/lintelhq/lintel/core/state"
)

var (
	_ filter.Factory = (*Engine)(nil)
	_ filter.Filter  = (*Filter)(nil)
	_ filter.Pending = (*pending)(nil)
)

// Engine loads plugins from one directory through one compilation cache.
// It implements filter.Factory.
type Engine struct {
	cfg   *config.Config
	dir   string
	cache wazero.CompilationCache
	opt   Options
	log   *slog.Logger
	m     *engineMetrics

	mu    sync.Mutex
	built []*Filter
}

// Options are what plugins share with the rest of the gateway.
type Options struct {
	Log *slog.Logger
	// State backs the lintel module's state functions; each filter sees
	// its own namespace of it. Default: a new in-memory store.
	State state.Store
	// StateTimeout is the longest a State operation may take (its own
	// timeout); 0 for a store that never waits (in memory).
	StateTimeout time.Duration
	// Metrics receives the metrics plugins define. Default: none kept
	// (metric_define then returns -1).
	Metrics *prometheus.Registry
}

// NewEngine prepares to load plugins from cfg's plugins directory.
func NewEngine(cfg *config.Config, opt Options) (*Engine, error) {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.State == nil {
		opt.State = state.NewMemory(0)
	}
	log := opt.Log
	cache := wazero.NewCompilationCache() // in memory, unless:
	switch dir := cacheDir(cfg.Plugins.CacheDir); {
	case dir == "":
		log.Info("no user cache directory; plugins compile in memory")
	default:
		if err := privateDir(dir); err != nil {
			log.Warn("plugin compilation cache refused; plugins compile in memory", "dir", dir, "error", err)
			break
		}
		disk, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			log.Warn("plugin compilation cache unavailable; plugins compile in memory", "dir", dir, "error", err)
			break
		}
		cache.Close(context.Background())
		cache = disk
	}
	return &Engine{cfg: cfg, dir: cfg.Plugins.Dir, cache: cache, opt: opt, log: log, m: newEngineMetrics(opt.Metrics)}, nil
}

// Filters returns the filters New built, in the order it built them.
func (e *Engine) Filters() []*Filter {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.built)
}

// Close releases the compilation cache (the on-disk copy stays).
func (e *Engine) Close() error { return e.cache.Close(context.Background()) }

// New loads, validates and compiles the plugin a filter names, checks
// the filter's config against the schema the plugin declares, and
// creates its first instances, so a broken plugin fails here, at start,
// with its name and what is wrong. A config that does not fit the schema
// fails with config.Errors (file, line and key).
func (e *Engine) New(spec *config.Filter) (filter.Filter, error) {
	path := filepath.Join(e.dir, spec.Plugin+".wasm")
	code, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("plugin %q: %s not found", spec.Plugin, path)
		}
		return nil, fmt.Errorf("plugin %q: %v", spec.Plugin, err)
	}
	cfg := map[string]any{}
	for k, v := range spec.Config {
		cfg[k] = v
	}
	for k, file := range spec.ConfigFiles {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("plugin %q: config_files.%s: %v", spec.Plugin, k, err)
		}
		cfg[k] = string(b)
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("plugin %q: config: %v", spec.Plugin, err)
	}
	sum := sha256.Sum256(code)
	if pin := spec.SHA256; pin != "" && !strings.EqualFold(pin, hex.EncodeToString(sum[:])) {
		return nil, fmt.Errorf("plugin %q: %s has sha256 %x, but the filter pins %s: refused", spec.Plugin, path, sum, pin)
	}
	schema, err := parseSchema(code)
	if err != nil {
		return nil, fmt.Errorf("plugin %q: %w", spec.Plugin, err)
	}
	if schema != nil {
		if err := e.cfg.CheckFilterConfig(spec, schema); err != nil {
			return nil, err // config.Errors: file, line and key
		}
	}
	out, err := e.output(spec.Output)
	if err != nil {
		return nil, fmt.Errorf("plugin %q: output: %v", spec.Plugin, err)
	}
	f := &Filter{
		name:    spec.Name,
		spec:    *spec,
		config:  cfgJSON,
		log:     e.log.With("filter", spec.Name, "plugin", spec.Plugin),
		Plugin:  spec.Plugin,
		Size:    len(code),
		SHA256:  hex.EncodeToString(sum[:]),
		Schema:  schema,
		maxBody: filter.MaxBufferedResponse,
		output:  out,

		state:        state.Namespace(e.opt.State, spec.StateNamespace),
		stateTimeout: e.opt.StateTimeout,
		registry:     e.opt.Metrics,
		metrics:      e.m,
		callTimer:    e.m.callTimer(spec.Name),
		memoHits:     e.m.memoCounter(spec.Name),
		metricIDs:    map[string]int{},
	}
	f.completeFn = f.complete
	f.completions.delay = completeDelay
	if spec.Outbound != nil {
		f.client = &http.Client{
			Timeout: spec.Outbound.Timeout.D(),
			// A plugin's call goes where its allow-list says, not where a
			// redirect points.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if err := f.load(e.cache, code); err != nil {
		f.Close()
		return nil, fmt.Errorf("plugin %q: %w", spec.Plugin, err)
	}
	if spec.Trusted {
		f.log.Warn("trusted is ignored: every plugin is metered; remove it from the filter")
	}
	f.log.Info("plugin loaded", "size", f.Size, "sha256", f.SHA256[:12], "instances", spec.MinInstances)
	e.mu.Lock()
	e.built = append(e.built, f)
	e.mu.Unlock()
	return f, nil
}

// output opens where a filter's emitted lines go.
func (e *Engine) output(o string) (*lineWriter, error) {
	switch o {
	case "":
		return nil, nil
	case "stdout":
		return &lineWriter{w: os.Stdout}, nil
	case "stderr":
		return &lineWriter{w: os.Stderr}, nil
	}
	f, err := os.OpenFile(o, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &lineWriter{w: f, c: f}, nil
}

// lineWriter writes whole lines, one writer at a time, buffered: lines
// wait at most outputFlush (or until outputBuffer bytes are pending)
// before one write takes them all, so an access log costs no system call
// per request. A write never splits a line, so two writers appending to
// one file (the old and the new filter across a reload) interleave whole
// lines only.
type lineWriter struct {
	mu      sync.Mutex
	w       io.Writer
	c       io.Closer // nil for stdout and stderr
	buf     []byte
	armed   bool // a flush is scheduled
	closed  bool
	lastErr error
}

const (
	outputBuffer = 64 << 10
	outputFlush  = 100 * time.Millisecond
)

// writeLine queues a copy of one line (b may be guest memory). It
// reports the error of the last write that failed, once, so a guest
// learns that its output is broken.
func (l *lineWriter) writeLine(b []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("output closed")
	}
	if err := l.lastErr; err != nil {
		l.lastErr = nil
		return err
	}
	if len(l.buf)+len(b)+1 > outputBuffer {
		l.flushLocked()
	}
	l.buf = append(l.buf, b...)
	if len(b) == 0 || b[len(b)-1] != '\n' {
		l.buf = append(l.buf, '\n')
	}
	if len(l.buf) >= outputBuffer {
		l.flushLocked()
	}
	if !l.armed && len(l.buf) > 0 {
		l.armed = true
		time.AfterFunc(outputFlush, l.flush)
	}
	return nil
}

func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.armed = false
	l.flushLocked()
}

func (l *lineWriter) flushLocked() {
	if len(l.buf) == 0 || l.closed {
		return
	}
	if _, err := l.w.Write(l.buf); err != nil {
		l.lastErr = err
	}
	l.buf = l.buf[:0]
}

// close writes what is pending and closes the file.
func (l *lineWriter) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	l.closed = true
	if l.c != nil {
		_ = l.c.Close()
	}
}
