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
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/supervisor"
	"github.com/lintelhq/lintel/core/wasm"
	"github.com/lintelhq/lintel/internal/scaffold"
)

// version and commit are set at build time with -ldflags "-X
// main.version=... -X main.commit=..." (make build, make dist); without
// them, the Go toolchain's record of the build is used.
var version, commit = "", ""

const usage = `gatewayd is the Lintel API gateway.

Usage:
  gatewayd [flags]            serve the gateway described by the config file
  gatewayd validate [flags]   check a config file without serving; exit 1 and
                              list every problem as FILE:LINE: key: problem
  gatewayd version            print the version
  gatewayd plugin new NAME -lang go|rust|c|assemblyscript|wat [-dir DIR]
                              write a plugin project that builds outside this
                              repository and loads as it is (into ./NAME)
  gatewayd plugin inspect FILE.wasm
                              show a plugin's imports, exports and ABI, and
                              whether it would load (and why not)
  gatewayd plugin schema FILE.wasm [SCHEMA.json]
                              print the config schema a plugin declares, or
                              write SCHEMA.json into it as its schema

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
	level := fs.String("log-level", "", "log `level`: debug, info, warn or error (default: the config's log.level, \"info\")")
	format := fs.String("log-format", "", "log `format`: text or json (default: the config's log.format, \"text\")")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\nSignals: SIGHUP reloads the configuration (so do POST /reload on the admin\n"+
			"listener and, unless server.watch = false, any change to the files it\n"+
			"depends on); SIGTERM and SIGINT drain in-flight requests and stop.\n"+
			"The configuration reference is in README.md, section Configuration.\n")
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

	return serve(*configPath, *level, *format, stderr)
}

func validate(path string, stdout, stderr io.Writer) int {
	if err := supervisor.Validate(path, slog.New(slog.DiscardHandler)); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return 0
}

func serve(path string, flagLevel, flagFormat string, stderr io.Writer) int {
	// The log's settings come from the config unless a flag gave them.
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	level, format := cfg.Log.Level, cfg.Log.Format
	if flagLevel != "" {
		level = flagLevel
	}
	if flagFormat != "" {
		format = flagFormat
	}
	levelVar := new(slog.LevelVar)
	log, err := newLogger(stderr, levelVar, level, format)
	if err != nil {
		fmt.Fprintln(stderr, "gatewayd:", err)
		return 2
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opt := supervisor.Options{Path: path, Log: log, Metrics: registry, Version: versionString()}
	if flagLevel == "" {
		opt.Level = levelVar
	}
	sup, err := supervisor.Start(opt)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log.Info("gatewayd started", "version", versionString(), "config", path)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	for done := false; !done; {
		select {
		case <-hup:
			sup.Reload("SIGHUP")
		case <-ctx.Done():
			done = true
		}
	}
	log.Info("shutting down: draining in-flight requests")
	if err := sup.Shutdown(context.Background()); err != nil {
		log.Warn("shutdown", "error", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func newLogger(w io.Writer, lv *slog.LevelVar, level, format string) (*slog.Logger, error) {
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid -log-level %q (debug, info, warn, error)", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		opts.ReplaceAttr = durationsInMilliseconds
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid -log-format %q (text, json)", format)
}

// durationsInMilliseconds writes a duration in a JSON log line with its
// unit in the key ("took_ms": 212.4), where slog would write a bare count
// of nanoseconds; the text format writes "took=212ms" by itself.
func durationsInMilliseconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key+"_ms", float64(a.Value.Duration().Microseconds())/1000)
	}
	return a
}

// versionString is the version (from -ldflags, else the module's
// version, else "devel") and the commit it was built from, as the Go
// toolchain records it when building in a git checkout: "v1.2.0 (commit
// 0123abcd4567, 2026-12-01)", "+dirty" when the tree had changes.
func versionString() string {
	v := version
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{}
	}
	if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "devel"
	}
	rev, at, dirty := commit, "", ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if rev == "" {
				rev = s.Value
			}
		case "vcs.time":
			at, _, _ = strings.Cut(s.Value, "T")
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return v
	}
	if at == "" {
		return fmt.Sprintf("%s (commit %.12s%s)", v, rev, dirty)
	}
	return fmt.Sprintf("%s (commit %.12s%s, %s)", v, rev, dirty, at)
}

const pluginUsage = `usage:
  gatewayd plugin new NAME -lang LANG [-dir DIR]  write a new plugin project into DIR
                                                 (default ./NAME); LANG is go, rust, c,
                                                 assemblyscript or wat
  gatewayd plugin inspect FILE.wasm              imports, exports, ABI, would it load
  gatewayd plugin schema FILE.wasm               print the config schema it declares
  gatewayd plugin schema FILE.wasm SCHEMA.json   declare SCHEMA.json as its config schema`

// pluginCmd is `gatewayd plugin inspect|schema ...`.
func pluginCmd(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) >= 1 && args[0] == "new":
		return newPluginCmd(args[1:], stdout, stderr)
	case len(args) == 2 && args[0] == "inspect":
	case (len(args) == 2 || len(args) == 3) && args[0] == "schema":
		return schemaCmd(args[1:], stdout, stderr)
	default:
		fmt.Fprintln(stderr, pluginUsage)
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

// schemaCmd prints the config schema a plugin declares, or writes one
// into it (sdk/ABI.md, "Config schema").
func schemaCmd(args []string, stdout, stderr io.Writer) int {
	code, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintln(stderr, "gatewayd:", err)
		return 1
	}
	if len(args) == 1 {
		schema, err := wasm.ConfigSchema(code)
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "gatewayd: %s: %v\n", args[0], err)
			return 1
		case schema == nil:
			fmt.Fprintf(stderr, "gatewayd: %s declares no config schema\n", args[0])
			return 1
		}
		stdout.Write(schema)
		return 0
	}
	schema, err := os.ReadFile(args[1])
	if err == nil {
		code, err = wasm.EmbedSchema(code, schema)
	}
	if err == nil {
		err = writeFileAtomic(args[0], code)
	}
	if err != nil {
		fmt.Fprintf(stderr, "gatewayd: %s: %v\n", args[1], err)
		return 1
	}
	return 0
}

// writeFileAtomic replaces path with data, so a gateway watching the file
// never reads it half-written.
func writeFileAtomic(path string, data []byte) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, st.Mode().Perm()); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// newPluginCmd is `gatewayd plugin new NAME -lang LANG [-dir DIR]`.
func newPluginCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, pluginUsage)
		return 2
	}
	name := args[0]
	fs := flag.NewFlagSet("plugin new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lang := fs.String("lang", "", "the plugin's language: "+strings.Join(scaffold.Languages, ", "))
	dir := fs.String("dir", name, "the directory to write the project into (new or empty)")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 || *lang == "" {
		fmt.Fprintln(stderr, pluginUsage)
		return 2
	}
	if err := scaffold.Write(*dir, name, *lang); err != nil {
		fmt.Fprintln(stderr, "gatewayd:", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s: plugin %q in %s. Next: cd %s && make (see its README.md)\n", *dir, name, *lang, *dir)
	return 0
}
