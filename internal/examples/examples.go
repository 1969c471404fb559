// Package examples builds the SDK example plugins (one per language) from
// source, once per test binary, for the tests and benchmarks that run
// them through the gateway and the plugin engine.
package examples

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

var (
	once sync.Once
	dir  string
	err  error
)

// Dir returns the directory holding the built example plugin name
// (name.wasm). When the example's toolchain is missing, it skips the
// test with the command that installs it; scripts/build-examples.sh has
// already failed under CI (CI=true), which fails the test.
func Dir(tb testing.TB, name string) string {
	tb.Helper()
	once.Do(func() {
		if dir, err = os.MkdirTemp("", "lintel-examples"); err != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		script := filepath.Join(filepath.Dir(file), "../../scripts/build-examples.sh")
		if out, e := exec.Command(script, dir).CombinedOutput(); e != nil {
			err = fmt.Errorf("scripts/build-examples.sh: %v\n%s", e, out)
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
	if install, e := os.ReadFile(filepath.Join(dir, name+".skipped")); e == nil {
		tb.Skipf("the %s example's toolchain is not installed: %s", name, strings.TrimSpace(string(install)))
	}
	return dir
}
