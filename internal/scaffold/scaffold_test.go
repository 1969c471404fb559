package scaffold

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "copy the SDKs from sdk/ into _sdk/")

var root = filepath.Join("..", "..")

// TestGoSDKCopyMatchesSource: the Go SDK projects receive is the
// repository's: every library file of sdk/go (its .go files but tests,
// examples and internal test guests) is in _sdk/go, byte for byte, and
// nothing else is (go test ./internal/scaffold -update copies them).
func TestGoSDKCopyMatchesSource(t *testing.T) {
	src, dst := filepath.Join(root, "sdk/go"), filepath.Join("_sdk", "go")
	if *update {
		if err := os.RemoveAll(dst); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		want = append(want, name)
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if c, err := os.ReadFile(filepath.Join(dst, name)); err != nil || !bytes.Equal(b, c) {
			t.Errorf("%s differs from sdk/go/%s: run go test ./internal/scaffold -update", filepath.Join(dst, name), name)
		}
	}
	var have []string
	copies, _ := os.ReadDir(dst)
	for _, e := range copies {
		have = append(have, e.Name())
	}
	slices.Sort(want)
	slices.Sort(have)
	if !slices.Equal(want, have) {
		t.Errorf("%s holds %v, sdk/go has %v", dst, have, want)
	}
}

// TestGoSDKModuleMatches: the Go SDK's go.mod in projects is sdk/go's.
func TestGoSDKModuleMatches(t *testing.T) {
	src, _ := os.ReadFile(filepath.Join(root, "sdk/go/go.mod"))
	tmpl := filepath.Join("templates/go/lintel-sdk/go.mod.tmpl")
	if *update {
		os.WriteFile(tmpl, src, 0o644)
	}
	if c, err := os.ReadFile(tmpl); err != nil || !bytes.Equal(c, src) {
		t.Errorf("%s differs from sdk/go/go.mod: run go test ./internal/scaffold -update", tmpl)
	}
}

// TestWriteRefuses: a bad name, an unknown language or a directory in
// use is refused, and nothing is written.
func TestWriteRefuses(t *testing.T) {
	used := t.TempDir()
	os.WriteFile(filepath.Join(used, "keep.txt"), []byte("mine"), 0o644)
	for _, c := range []struct{ dir, name, lang, want string }{
		{t.TempDir(), "Bad_Name", "go", "plugin name"},
		{t.TempDir(), "../escape", "go", "plugin name"},
		{t.TempDir(), "ok", "cobol", "language"},
		{used, "ok", "go", "not empty"},
	} {
		err := Write(c.dir, c.name, c.lang)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Write(%q, %q): %v, want an error about %s", c.name, c.lang, err, c.want)
		}
	}
	if entries, _ := os.ReadDir(used); len(entries) != 1 {
		t.Errorf("the used directory was written to: %v", entries)
	}
}

// TestWriteLayout: each language's project has its source, build file,
// README and SDK, named after the plugin.
func TestWriteLayout(t *testing.T) {
	want := map[string][]string{
		"go":             {"go.mod", "main.go", "main_test.go", "Makefile", "README.md", "lintel-sdk/lintel.go", "lintel-sdk/go.mod"},
		"rust":           {"my-filter.rs", "Makefile", "README.md", "lintel/lib.rs", "lintel/json.rs", "lintel/heap.rs"},
		"c":              {"my-filter.c", "lintel.h", "Makefile", "README.md"},
		"assemblyscript": {"package.json", "assembly/my-filter.ts", "assembly/lintel.ts", "Makefile", "README.md"},
		"wat":            {"my-filter.wat", "Makefile", "README.md"},
	}
	for _, lang := range Languages {
		dir := filepath.Join(t.TempDir(), "my-filter")
		if err := Write(dir, "my-filter", lang); err != nil {
			t.Fatalf("%s: %v", lang, err)
		}
		for _, f := range want[lang] {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s: %v", lang, err)
			}
		}
		readme, _ := os.ReadFile(filepath.Join(dir, "README.md"))
		if !strings.Contains(string(readme), `plugin = "my-filter"`) {
			t.Errorf("%s README:\n%s", lang, readme)
		}
	}
}
