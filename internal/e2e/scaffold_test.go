package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lintelhq/lintel/internal/gatewaytest"
	"github.com/lintelhq/lintel/internal/scaffold"
)

// toolchains says, per language, whether this machine can build a
// project, and how to install what is missing.
var toolchains = map[string]struct {
	present func() bool
	install string
}{
	"go": {func() bool { return true }, ""},
	"rust": {func() bool {
		_, err := os.Stat("/usr/lib/rustlib/wasm32-unknown-unknown")
		return err == nil && executable("/usr/bin/rustc")
	}, "apt-get install rustc libstd-rust-dev-wasm32 lld-14"},
	"c": {func() bool {
		m, _ := filepath.Glob("/usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a")
		_, err := os.Stat("/usr/lib/wasm32-wasi/libc.a")
		return len(m) > 0 && err == nil && onPath("clang")
	}, "apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32"},
	"assemblyscript": {func() bool { return onPath("npm") }, "apt-get install nodejs npm"},
	"wat":            {func() bool { return onPath("wat2wasm") }, "apt-get install wabt"},
}

func onPath(cmd string) bool { _, err := exec.LookPath(cmd); return err == nil }

func executable(file string) bool {
	st, err := os.Stat(file)
	return err == nil && st.Mode()&0o111 != 0
}

// TestScaffoldsBuildAndRun: a project of each language, written into an
// empty directory outside the repository, builds with its own Makefile
// (the Go one passes its own tests too), and the plugin it makes loads
// in gatewayd and does what its README says: X-Deny is refused with
// 403, every other response is stamped X-Plugin.
func TestScaffoldsBuildAndRun(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	for _, lang := range scaffold.Languages {
		t.Run(lang, func(t *testing.T) {
			tc := toolchains[lang]
			if !tc.present() {
				if os.Getenv("CI") == "true" {
					t.Fatalf("CI must have the %s toolchain: %s", lang, tc.install)
				}
				t.Skipf("the %s toolchain is not installed: %s", lang, tc.install)
			}
			name := "hello-" + lang
			dir := filepath.Join(t.TempDir(), name)
			if err := scaffold.Write(dir, name, lang); err != nil {
				t.Fatal(err)
			}
			targets := []string{name + ".wasm"}
			if lang == "go" {
				targets = append(targets, "test")
			}
			cmd := exec.Command("make", targets...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make in a new %s project: %v\n%s", lang, err, out)
			}
			h := gatewaytest.StartPlugins(t, dir, exampleRoute(name, "[filters."+name+"]\nplugin = \""+name+"\""), map[string]string{"echo": up.URL})
			resp, body := h.Do("GET", "/a", nil)
			if resp.StatusCode != 200 || resp.Header.Get("X-Plugin") != name {
				t.Errorf("%d, X-Plugin %q: %s", resp.StatusCode, resp.Header.Get("X-Plugin"), body)
			}
			resp, body = h.Do("GET", "/a", nil, "X-Deny", "1")
			if resp.StatusCode != 403 || body != "denied by "+name+"\n" {
				t.Errorf("X-Deny: %d %q", resp.StatusCode, body)
			}
		})
	}
}
