package wasm

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/lintelhq/lintel/core/wasm/meter"
)

// load meters the module (package meter: the bound on every call's work
// and call depth), compiles it in the filter's own runtime, checks its
// imports and exports, and warms the pool.
func (f *Filter) load(cache wazero.CompilationCache, code []byte) error {
	ctx := context.Background()
	metered, err := meter.Instrument(code, meter.Budget{Fuel: f.initFuel(), Depth: int32(f.spec.Limits.CallDepth)})
	if err != nil {
		return fmt.Errorf("not a valid WebAssembly module: %v", err)
	}
	pages := uint32(f.spec.MemoryLimit / (64 << 10))
	rc := wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(cache).
		WithMemoryLimitPages(pages)
	f.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	compiled, err := f.rt.CompileModule(ctx, metered)
	if err != nil {
		return fmt.Errorf("not a valid WebAssembly module: %v", err)
	}
	f.compiled = compiled
	usesWASI, err := validate(compiled)
	if err != nil {
		return err
	}
	f.ABI = abiHTTPWasm
	for _, imp := range compiled.ImportedFunctions() {
		if mod, _, _ := imp.Import(); mod == moduleLintel {
			f.ABI = abiHTTPWasmLintel
		}
	}
	if usesWASI {
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, f.rt); err != nil {
			return err
		}
	}
	if err := hostModules(ctx, f.rt); err != nil {
		return err
	}
	_, f.onComplete = compiled.ExportedFunctions()[exportOnComplete]
	f.pool = newPool(f)
	return f.pool.warm(f.spec.MinInstances)
}

// validate checks that a module exports what the ABI needs and imports
// only what the host provides, with the right signatures.
func validate(m wazero.CompiledModule) (usesWASI bool, err error) {
	host := map[string]hostFunc{}
	for _, fn := range httpHandlerFuncs {
		host[fn.name] = fn
	}
	lintel := map[string]hostFunc{}
	for _, fn := range lintelFuncs {
		lintel[fn.name] = fn
	}
	for _, imp := range m.ImportedFunctions() {
		module, name, _ := imp.Import()
		var want hostFunc
		var ok bool
		switch module {
		case moduleHTTPHandler:
			want, ok = host[name]
		case moduleLintel:
			want, ok = lintel[name]
		case moduleWASI:
			usesWASI = true
			continue
		default:
			return false, fmt.Errorf("imports %s.%s: module %q is not provided (only %s, %s and %s are)", module, name, module, moduleHTTPHandler, moduleLintel, moduleWASI)
		}
		if !ok {
			return false, fmt.Errorf("imports %s.%s: no such function in %s", module, name, module)
		}
		if !slices.Equal(imp.ParamTypes(), want.params) || !slices.Equal(imp.ResultTypes(), want.results) {
			return false, fmt.Errorf("imports %s.%s with signature %s, the host's is %s", module, name,
				signature(imp.ParamTypes(), imp.ResultTypes()), signature(want.params, want.results))
		}
	}
	if len(m.ImportedMemories()) > 0 {
		return false, errors.New("imports a memory; a plugin must export its own as \"memory\"")
	}
	if _, ok := m.ExportedMemories()[exportMemory]; !ok {
		return false, fmt.Errorf("does not export %q", exportMemory)
	}
	exports := m.ExportedFunctions()
	for _, want := range []struct {
		name            string
		params, results []api.ValueType
	}{
		{exportHandleRequest, nil, []api.ValueType{i64}},
		{exportHandleResponse, []api.ValueType{i32, i32}, nil},
	} {
		fn, ok := exports[want.name]
		if !ok {
			return false, fmt.Errorf("does not export function %q", want.name)
		}
		if !slices.Equal(fn.ParamTypes(), want.params) || !slices.Equal(fn.ResultTypes(), want.results) {
			return false, fmt.Errorf("exports %q with signature %s, the ABI's is %s", want.name,
				signature(fn.ParamTypes(), fn.ResultTypes()), signature(want.params, want.results))
		}
	}
	for _, name := range []string{exportInitialize, exportStart, exportOnComplete, exportHousekeep} {
		if fn, ok := exports[name]; ok && (len(fn.ParamTypes()) > 0 || len(fn.ResultTypes()) > 0) {
			return false, fmt.Errorf("exports %q with signature %s, want () -> ()", name, signature(fn.ParamTypes(), fn.ResultTypes()))
		}
	}
	return usesWASI, nil
}

func signature(params, results []api.ValueType) string {
	name := func(ts []api.ValueType) string {
		s := "("
		for i, t := range ts {
			if i > 0 {
				s += ", "
			}
			s += api.ValueTypeName(t)
		}
		return s + ")"
	}
	return name(params) + " -> " + name(results)
}
