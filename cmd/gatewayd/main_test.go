package main

import (
	"bytes"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestValidateGolden runs `gatewayd validate` on every broken config in
// testdata/config/bad and compares what a user sees with the .golden file
// beside it. Run with -update after a deliberate change of wording.
func TestValidateGolden(t *testing.T) {
	t.Chdir("../..")
	buildPlugins(t) // plugin_config.toml names the bundled plugins
	files, _ := filepath.Glob("testdata/config/bad/*.toml")
	if len(files) == 0 {
		t.Fatal("no test configs found")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".toml"), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run([]string{"validate", "-config", file}, &stdout, &stderr); code != 1 {
				t.Fatalf("exit code %d, want 1; stderr:\n%s", code, stderr.String())
			}
			golden := strings.TrimSuffix(file, ".toml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, stderr.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./cmd/gatewayd -update to create it)", err)
			}
			if got := stderr.String(); got != string(want) {
				t.Errorf("validate %s:\ngot:\n%s\nwant:\n%s", file, got, want)
			}
		})
	}
}

// buildPlugins builds the bundled plugins into plugins/ (build outputs)
// once per test binary; the working directory must be the repository's.
func buildPlugins(t *testing.T) {
	t.Helper()
	pluginsOnce.Do(func() {
		if out, err := exec.Command("scripts/build-plugins.sh").CombinedOutput(); err != nil {
			pluginsErr = fmt.Errorf("building the bundled plugins: %v\n%s", err, out)
		}
	})
	if pluginsErr != nil {
		t.Fatal(pluginsErr)
	}
}

var (
	pluginsOnce sync.Once
	pluginsErr  error
)

func TestValidateDefaultConfig(t *testing.T) {
	t.Chdir("../..")
	buildPlugins(t) // the demo config names them
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	if got := stdout.String(); got != "gateway.toml: ok\n" {
		t.Errorf("stdout = %q", got)
	}
}

func TestValidateMissingFile(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "-config", "no/such.toml"}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	if got, want := stderr.String(), "no/such.toml: no such file or directory\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

func TestVersionAndHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"version"}, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "gatewayd ") {
		t.Errorf("version: code %d, stdout %q", code, stdout.String())
	}
	stdout.Reset()
	if code := run([]string{"-h"}, &stdout, &stderr); code != 0 {
		t.Errorf("-h: exit code %d", code)
	}
	for _, want := range []string{"gatewayd validate", "-config file", "README.md"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("-h output lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestUnknownArgument(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"serve", "extra"}, &stdout, &stderr); code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), `unexpected argument "extra"`) {
		t.Errorf("stderr = %q", stderr.String())
	}
}

func TestPluginInspect(t *testing.T) {
	t.Chdir("../..")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"plugin", "inspect", "testdata/wasm/stamp.wasm"}, &stdout, &stderr); code != 0 {
		t.Fatalf("stamp: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"abi:      http-wasm\n", "  http_handler.get_header_values (i32, i32, i32, i32, i32) -> (i64)\n",
		"  handle_request () -> (i64)\n", "  memory (memory)\n", "loads:    yes"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stamp report lacks %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	if code := run([]string{"plugin", "inspect", "testdata/wasm/declare.wasm"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "abi:      http-wasm + lintel v3") {
		t.Errorf("declare: exit %d\n%s", code, stdout.String())
	}
	stdout.Reset()
	if code := run([]string{"plugin", "inspect", "testdata/wasm/bad_import.wasm"}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stdout.String(), "loads:    no: imports http_handler.get_everything: no such function in http_handler") {
		t.Errorf("bad_import: exit %d\n%s", code, stdout.String())
	}
	if code := run([]string{"plugin", "inspect"}, &stdout, &stderr); code != 2 {
		t.Errorf("usage error: exit %d", code)
	}
}

// TestJSONLogDurationsHaveTheirUnit: JSON logs wrote "took":212000000, a
// bare count of nanoseconds, where the text format writes took=212ms.
func TestJSONLogDurationsHaveTheirUnit(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, new(slog.LevelVar), "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("reloaded", "took", 212400*time.Microsecond)
	if got := buf.String(); !strings.Contains(got, `"took_ms":212.4`) || strings.Contains(got, `"took":`) {
		t.Errorf("JSON line %s, want took_ms 212.4", got)
	}
}

// TestPluginNew: `gatewayd plugin new` writes a project into a new
// directory, refuses one in use, and asks for a language.
func TestPluginNew(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "greeter")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"plugin", "new", "greeter", "-lang", "wat", "-dir", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "greeter.wat")); err != nil || !strings.Contains(stdout.String(), "cd "+dir+" && make") {
		t.Errorf("%v; stdout %q", err, stdout.String())
	}
	stderr.Reset()
	if code := run([]string{"plugin", "new", "greeter", "-lang", "wat", "-dir", dir}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "not empty") {
		t.Errorf("into a used directory: exit %d, %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"plugin", "new", "greeter"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "plugin new NAME -lang") {
		t.Errorf("without -lang: exit %d, %q", code, stderr.String())
	}
}
