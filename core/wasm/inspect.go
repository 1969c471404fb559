package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero"

	"github.com/lintelhq/lintel/core/config"
)

// Report describes a plugin file: what it imports and exports, which ABI
// it speaks, and whether gatewayd would load it.
type Report struct {
	File     string
	Size     int
	SHA256   string
	Imports  []string // "module.name (params) -> (results)"
	Exports  []string
	ABI      string // "http-wasm", "http-wasm + lintel", or "" when neither
	Loads    bool
	Problem  string // why it would not load
	Instance string // memory of one fresh instance, when it loads
}

// Inspect reads and checks a plugin file without a gateway: it compiles
// the module, validates its imports and exports as loading does, and
// makes one instance with an empty config.
func Inspect(path string) (*Report, error) {
	code, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(code)
	r := &Report{File: path, Size: len(code), SHA256: hex.EncodeToString(sum[:])}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	compiled, err := rt.CompileModule(ctx, code)
	if err != nil {
		r.Problem = fmt.Sprintf("not a valid WebAssembly module: %v", err)
		return r, nil
	}
	http, lintel := false, false
	for _, f := range compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		r.Imports = append(r.Imports, mod+"."+name+" "+signature(f.ParamTypes(), f.ResultTypes()))
		http = http || mod == moduleHTTPHandler
		lintel = lintel || mod == moduleLintel
	}
	for name, f := range compiled.ExportedFunctions() {
		r.Exports = append(r.Exports, name+" "+signature(f.ParamTypes(), f.ResultTypes()))
	}
	for name := range compiled.ExportedMemories() {
		r.Exports = append(r.Exports, name+" (memory)")
	}
	sort.Strings(r.Imports)
	sort.Strings(r.Exports)
	_, hasHandler := compiled.ExportedFunctions()[exportHandleRequest]
	switch {
	case hasHandler && lintel:
		r.ABI = abiHTTPWasmLintel
	case hasHandler || http:
		r.ABI = abiHTTPWasm
	}

	// Load it as a filter would, with defaults and an empty config.
	name := strings.TrimSuffix(filepath.Base(path), ".wasm")
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	src := fmt.Sprintf("[plugins]\ndir = %q\n[filters.inspect]\nplugin = %q\n", dir, name)
	cfg, err := config.Parse(filepath.Join(dir, "inspect.toml"), []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		r.Problem = err.Error()
		return r, nil
	}
	e, err := NewEngine(cfg, Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	defer e.Close()
	f, err := e.New(cfg.Filters["inspect"])
	if err != nil {
		r.Problem = strings.TrimPrefix(err.Error(), fmt.Sprintf("plugin %q: ", name))
		return r, nil
	}
	defer f.(*Filter).Close()
	r.Loads = true
	if inst, err := f.(*Filter).pool.get(ctx); err == nil {
		r.Instance = fmt.Sprintf("%.1f MiB linear memory", float64(inst.mod.Memory().Size())/(1<<20))
		f.(*Filter).pool.put(inst)
	}
	return r, nil
}
