// Command gatewayd runs the Lintel API gateway.
//
//	gatewayd [-config FILE] [-log-level LEVEL] [-log-format FORMAT]   serve
//	gatewayd validate [-config FILE]                                  check a config
//	gatewayd version                                                  print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/lintelhq/lintel/core/admin"
	"github.com/lintelhq/lintel/core/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lintelhq/lintel/core/gateway"
	"github.com/lintelhq/lintel/core/state"
	"github.com/lintelhq/lintel/core/wasm"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

const usage = `gatewayd is the Lintel API gateway.

Usage:
  gatewayd [flags]            serve the gateway described by the config file
  gatewayd validate [flags]   check a config file without serving; exit 1 and
                              list every problem as FILE:LINE: key: problem
  gatewayd version            print the version
  gatewayd plugin inspect FILE.wasm
                              show a plugin's imports, exports and ABI, and
                              whether it would load (and why not)

Flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && (args[0] == "validate" || args[0] == "version" || args[0] == "serve" || args[0] == "help") {
		cmd, args = args[0], args[1:]
	}
	if len(args) > 0 && args[0] == "plugin" {
		return pluginCmd(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("gatewayd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "gateway.toml", "path of the configuration `file`")
	level := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	format := fs.String("log-format", "text", "log `format`: text or json")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\nThe configuration reference is in README.md, section Configuration.\n")
	}
	if cmd == "help" {
		fs.Usage()
		return 0
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gatewayd: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}

	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "gatewayd", versionString())
		return 0
	case "validate":
		return validate(*configPath, stdout, stderr)
	}

	log, err := newLogger(stderr, *level, *format)
	if err != nil {
		fmt.Fprintln(stderr, "gatewayd:", err)
		return 2
	}
	return serve(*configPath, log, stderr)
}

func validate(path string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err == nil {
		log := slog.New(slog.DiscardHandler)
		var engine *wasm.Engine
		if engine, err = wasm.NewEngine(cfg, wasm.Options{Log: log}); err == nil {
			var g *gateway.Gateway
			if g, err = gateway.New(cfg, gateway.Options{Log: log, Filters: engine}); err == nil {
				g.Close()
			}
			engine.Close()
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return 0
}

func serve(path string, log *slog.Logger, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	store, err := newStore(cfg.State)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer store.Close()
	engine, err := wasm.NewEngine(cfg, wasm.Options{Log: log, State: store, Metrics: registry})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer engine.Close()
	g, err := gateway.New(cfg, gateway.Options{Log: log, Filters: engine, Metrics: registry})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := g.Start(); err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	if cfg.Admin.Listen != "" {
		srv, err := startAdmin(cfg.Admin, adminSource{g}, registry)
		if err != nil {
			log.Error("cannot start the admin listener", "error", err)
			g.Shutdown(context.Background())
			return 1
		}
		defer srv.Close()
		log.Info("admin listening", "addr", cfg.Admin.Listen)
	}
	log.Info("gatewayd started", "version", versionString(), "config", path)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	<-ctx.Done()
	stop()
	log.Info("shutting down: draining in-flight requests", "drain_timeout", cfg.Server.DrainTimeout)
	if err := g.Shutdown(context.Background()); err != nil {
		log.Warn("shutdown", "error", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid -log-level %q (debug, info, warn, error)", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid -log-format %q (text, json)", format)
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// newStore opens the shared state backend the config names.
func newStore(c config.State) (state.Store, error) {
	if c.Backend == "redis" {
		return state.NewRedis(state.RedisOptions{URL: c.RedisURL, PoolSize: c.PoolSize, Timeout: c.Timeout.D(), Prefix: c.KeyPrefix})
	}
	return state.NewMemory(0), nil
}

// pluginCmd is `gatewayd plugin inspect FILE.wasm`.
func pluginCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || args[0] != "inspect" {
		fmt.Fprintln(stderr, "usage: gatewayd plugin inspect FILE.wasm")
		return 2
	}
	r, err := wasm.Inspect(args[1])
	if err != nil {
		fmt.Fprintln(stderr, "gatewayd:", err)
		return 1
	}
	fmt.Fprintf(stdout, "file:     %s\nsize:     %d bytes\nsha256:   %s\n", r.File, r.Size, r.SHA256)
	abi := r.ABI
	if abi == "" {
		abi = "none recognised"
	}
	fmt.Fprintf(stdout, "abi:      %s\n", abi)
	fmt.Fprintf(stdout, "imports:\n")
	for _, i := range r.Imports {
		fmt.Fprintf(stdout, "  %s\n", i)
	}
	fmt.Fprintf(stdout, "exports:\n")
	for _, e := range r.Exports {
		fmt.Fprintf(stdout, "  %s\n", e)
	}
	if !r.Loads {
		fmt.Fprintf(stdout, "loads:    no: %s\n", r.Problem)
		return 1
	}
	fmt.Fprintf(stdout, "loads:    yes (with an empty config; one instance: %s)\n", r.Instance)
	return 0
}

// adminSource is what the admin API reads of the running gateway.
type adminSource struct{ g *gateway.Gateway }

func (a adminSource) Ready() bool { return a.g.Ready() }

func (a adminSource) Plugins() []admin.Plugin {
	var out []admin.Plugin
	for name, f := range a.g.Filters() {
		if w, ok := f.(*wasm.Filter); ok {
			live, idle := w.Stats()
			out = append(out, admin.Plugin{Filter: name, Plugin: w.Plugin, Size: w.Size, SHA256: w.SHA256, ABI: w.ABI, Instances: live, Idle: idle})
		}
	}
	slices.SortFunc(out, func(a, b admin.Plugin) int { return strings.Compare(a.Filter, b.Filter) })
	return out
}

func startAdmin(cfg config.Admin, src admin.Source, reg *prometheus.Registry) (*http.Server, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: admin.Handler(cfg, src, reg), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return srv, nil
}
