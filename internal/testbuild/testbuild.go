// Package testbuild builds the project's plugins from source for tests
// and benchmarks, once per test binary: the bundled plugins
// (scripts/build-plugins.sh) and the SDK examples, one per language
// (scripts/build-examples.sh).
package testbuild

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// script is a build script of scripts/ run once into a directory of its
// own.
type script struct {
	name string
	once sync.Once
	dir  string
	err  error
}

var (
	bundled  = &script{name: "build-plugins.sh"}
	examples = &script{name: "build-examples.sh"}
)

func (s *script) run(tb testing.TB) string {
	tb.Helper()
	s.once.Do(func() {
		if s.dir, s.err = os.MkdirTemp("", "lintel-"+strings.TrimSuffix(s.name, ".sh")); s.err != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		path := filepath.Join(filepath.Dir(file), "../../scripts", s.name)
		if out, err := exec.Command(path, s.dir).CombinedOutput(); err != nil {
			s.err = fmt.Errorf("scripts/%s: %v\n%s", s.name, err, out)
		}
	})
	if s.err != nil {
		tb.Fatal(s.err)
	}
	return s.dir
}

// Bundled returns the directory holding the bundled plugins, NAME.wasm.
func Bundled(tb testing.TB) string { return bundled.run(tb) }

// Example returns the directory holding the built SDK example plugin
// name (name.wasm). When the example's toolchain is missing, it skips
// the test with the command that installs it; scripts/build-examples.sh
// has already failed under CI (CI=true), which fails the test.
func Example(tb testing.TB, name string) string {
	tb.Helper()
	dir := examples.run(tb)
	if install, err := os.ReadFile(filepath.Join(dir, name+".skipped")); err == nil {
		tb.Skipf("the %s example's toolchain is not installed: %s", name, strings.TrimSpace(string(install)))
	}
	return dir
}
