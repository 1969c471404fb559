package wasm

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/filter"
	"github.com/lintelhq/lintel/internal/testbuild"
)

// bundledFilters are the bundled plugins as scripts/bench-filters.sh runs
// them, each with the request that makes it do its real work.
var bundledFilters = []struct {
	name, plugin, settings string
	token                  bool // send the demo RS256 token
}{
	{"jwt", "jwt-auth", `config = { algorithms = ["RS256"], issuer = "https://idp.lintel.demo", audience = ["lintel-demo"], claims_to_headers = { sub = "X-User" } }`, true},
	{"jwt-verify", "jwt-auth", `config = { algorithms = ["RS256"], issuer = "https://idp.lintel.demo", audience = ["lintel-demo"], cache_size = 0 }`, true},
	{"limit", "rate-limit", `config = { key = ["client_ip"], rate = 1000000, period = "1s", burst = 1000000 }`, false},
	{"rewrite", "header-rewrite", `config.request = { set = { X-Gateway = "lintel" }, remove = ["X-Debug"] }
config.response = { set = { X-Served-By = "lintel" } }`, false},
	{"log", "access-log", `output = "` + filepath.Join(os.TempDir(), "lintel-bench-access.log") + `"`, false},
}

// BenchmarkBundled is each bundled plugin's cost per request, metered as
// the gateway runs it, by phase: request-ns, response-ns and complete-ns
// (lintel_on_complete: the access log) per request, host side included.
func BenchmarkBundled(b *testing.B) {
	dir := testbuild.Bundled(b)
	root, _ := filepath.Abs("../..")
	cmd := exec.Command("go", "run", "./cmd/demo-token")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("demo-token: %v", err)
	}
	token := strings.TrimSpace(string(out))
	jwks := filepath.Join(root, "testdata/keys/demo-jwks.json")
	for _, bf := range bundledFilters {
		b.Run(bf.name, func(b *testing.B) {
			settings := bf.settings
			if bf.token {
				settings += "\nconfig_files = { jwks = \"" + jwks + "\" }"
			}
			f := loadExample(b, dir, bf.plugin, settings)
			r := httptest.NewRequest("GET", "/orders/1", nil)
			w := httptest.NewRecorder()
			log, ip := slog.New(slog.DiscardHandler), netip.MustParseAddr("10.1.2.3")
			var request, response, complete time.Duration
			b.ReportAllocs()
			for b.Loop() {
				clear(r.Header)
				r.Header.Set("User-Agent", "bench")
				if bf.token {
					r.Header.Set("Authorization", "Bearer "+token)
				}
				x := &exchange.Exchange{Request: r, ClientIP: ip, Start: time.Now(), BaseLog: log, Route: "orders", RequestID: "r1"}
				t0 := time.Now()
				next, p, err := f.Request(x, w)
				t1 := time.Now()
				if err != nil || !next {
					b.Fatalf("Request: next %v, %v (%d %s)", next, err, w.Code, w.Body)
				}
				if p != nil {
					if err := p.Response(x, &filter.Response{Status: 200, Header: http.Header{}}); err != nil {
						b.Fatal(err)
					}
					p.Release()
				}
				t2 := time.Now()
				x.Status, x.BytesOut = 200, 42
				x.Complete()
				t3 := time.Now()
				request += t1.Sub(t0)
				response += t2.Sub(t1)
				complete += t3.Sub(t2)
			}
			n := float64(b.N)
			b.ReportMetric(float64(request.Nanoseconds())/n, "request-ns/op")
			b.ReportMetric(float64(response.Nanoseconds())/n, "response-ns/op")
			b.ReportMetric(float64(complete.Nanoseconds())/n, "complete-ns/op")
		})
	}
}
