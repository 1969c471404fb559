package wasm

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/internal/testlog"
)

// TestCompilationCacheOnlyInAPrivateDirectory: the cache fell back to a
// shared temporary directory and used a pre-existing world-writable one as
// it was; its entries are native code the sha256 pin does not cover.
func TestCompilationCacheOnlyInAPrivateDirectory(t *testing.T) {
	base := t.TempDir()
	fresh := filepath.Join(base, "fresh", "wasm")
	if err := privateDir(fresh); err != nil {
		t.Fatalf("a new directory: %v", err)
	}
	if st, _ := os.Stat(fresh); st.Mode().Perm() != 0o700 {
		t.Errorf("created with mode %v, want 0700", st.Mode().Perm())
	}
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	link := filepath.Join(base, "link")
	os.Symlink(fresh, link)
	other := filepath.Join(base, "other")
	os.Mkdir(other, 0o700)
	for dir, want := range map[string]string{open: "mode", link: "symbolic link", "relative/dir": "absolute"} {
		if err := privateDir(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error about its %s", dir, err, want)
		}
	}
	if os.Getuid() == 0 {
		os.Chown(other, 65534, 65534)
		if err := privateDir(other); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Errorf("a directory of another user: %v", err)
		}
	}
	// The engine compiles in memory rather than use a refused directory,
	// and says so.
	var logs testlog.Buffer
	cfg, err := config.Parse(filepath.Join(base, "gateway.toml"), []byte("[plugins]\ncache_dir = \"open\"\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(cfg, Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if !strings.Contains(logs.String(), "plugin compilation cache refused") || !strings.Contains(logs.String(), "must be 0700") {
		t.Errorf("the engine's log does not say the cache was refused:\n%s", logs.String())
	}
	cfgDir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", "")
	if got := cacheDir(cfgDir); got != cfgDir {
		t.Errorf("cacheDir(%q) = %q", cfgDir, got)
	}
	t.Setenv("HOME", "")
	if got := cacheDir(""); got != "" {
		t.Errorf("without HOME or XDG_CACHE_HOME the cache is %q, want none (in memory)", got)
	}
}
