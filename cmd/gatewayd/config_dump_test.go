package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lintelhq/lintel/core/supervisor"
)

// TestConfigDumpValidates pins /config's leaks and over-redactions: a
// header-rewrite value "Bearer ...", an X-Api-Key value and a jwks_url with
// user:password@ were shown; every aggregation part's key and the whole
// table of a filter named apikey were hidden, so the dump did not
// validate. The dump now passes `gatewayd validate`.
func TestConfigDumpValidates(t *testing.T) {
	t.Chdir("../..")
	buildPlugins(t)
	plugins, _ := filepath.Abs("plugins")
	jwks, _ := filepath.Abs("testdata/keys/demo-jwks.json")
	dir := t.TempDir()
	file := filepath.Join(dir, "gateway.toml")
	t.Setenv("LINTEL_TEST_TOKEN", "admin-s3cret")
	os.WriteFile(file, []byte(fmt.Sprintf(`
[server]
watch = false
[plugins]
dir = %q
[admin]
listen = "127.0.0.1:0"
token = "${LINTEL_TEST_TOKEN}"
[listeners.web]
listen = "127.0.0.1:0"
[filters.auth]
plugin = "jwt-auth"
config_files = { jwks = %q }
config = { algorithms = ["RS256"], issuer = "https://idp", jwks_url = "https://svc:pa55word@idp.example/jwks", claims_to_headers = { sub = "X-User" } }
[filters.apikey]
plugin = "header-rewrite"
config.request = { set = { Authorization = "Bearer leaked-bearer", X-Api-Key = "leaked-key" }, remove = ["X-Debug"] }
[services.a]
targets = ["http://127.0.0.1:1"]
[[routes]]
path = "/p"
filters = ["auth", "apikey"]
[routes.aggregate]
parts = [{ key = "product", service = "a", path = "/x" }]
`, plugins, jwks)), 0o644)
	s, err := supervisor.Start(supervisor.Options{Path: file, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	resp, err := http.Get("http://" + s.AdminAddr() + "/config")
	if err != nil {
		t.Fatal(err)
	}
	dump, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, secret := range []string{"admin-s3cret", "leaked-bearer", "leaked-key", "pa55word"} {
		if bytes.Contains(dump, []byte(secret)) {
			t.Errorf("/config shows %q:\n%s", secret, dump)
		}
	}
	for _, kept := range []string{`key = "product"`, `algorithms = ["RS256"]`, `remove = ["X-Debug"]`, "svc:redacted@idp.example"} {
		if !bytes.Contains(dump, []byte(kept)) {
			t.Errorf("/config hides %s:\n%s", kept, dump)
		}
	}
	dumped := filepath.Join(dir, "dumped.toml")
	os.WriteFile(dumped, dump, 0o644)
	var stdout, stderr strings.Builder
	if code := run([]string{"validate", "-config", dumped}, &stdout, &stderr); code != 0 {
		t.Errorf("gatewayd validate of the /config dump: exit %d\n%s\n%s", code, stderr.String(), dump)
	}
}
