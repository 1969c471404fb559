package wasm

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/filter"
	"github.com/lintelhq/lintel/internal/testbuild"
)

// sdkExamples are the example plugins of every SDK language, with a
// config and a request that makes each do its real work.
var sdkExamples = []struct {
	lang, plugin, config string
	header               [2]string
}{
	{"C", "trace-context", "", [2]string{"Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
	{"Rust", "ip-filter", `config = { allow = ["10.0.0.0/8", "192.0.2.0/24"], deny = ["192.0.2.66"] }`, [2]string{}},
	{"AssemblyScript", "cors", `config = { origins = ["https://app.example"] }`, [2]string{"Origin", "https://app.example"}},
	{"WAT", "security-headers", "", [2]string{}},
	{"Go", "counter", "", [2]string{}},
}

func loadExample(tb testing.TB, dir, plugin, settings string) *Filter {
	tb.Helper()
	src := "[plugins]\ndir = \"" + dir + "\"\ncache_dir = \"" + filepath.Join(os.TempDir(), "lintel-test-wasm-cache") + "\"\n" +
		"[filters.f]\nplugin = \"" + plugin + "\"\n" + settings + "\n"
	cfg, err := config.Parse(filepath.Join(dir, "test.toml"), []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		tb.Fatal(err)
	}
	e, err := NewEngine(cfg, Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	ff, err := e.New(cfg.Filters["f"])
	if err != nil {
		tb.Fatal(err)
	}
	f := ff.(*Filter)
	tb.Cleanup(func() { f.Close(); e.Close() })
	return f
}

// BenchmarkExamples measures each SDK example: its size, the time to
// create one instance (instantiate and _initialize), and the cost of one
// request through both phases, metered. The table in sdk/README.md comes from
// `go test ./core/wasm -run '^$' -bench Examples -count 5`.
func BenchmarkExamples(b *testing.B) {
	for _, ex := range sdkExamples {
		dir := testbuild.Example(b, ex.plugin)
		info, err := os.Stat(filepath.Join(dir, ex.plugin+".wasm"))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(ex.plugin+"/instantiate", func(b *testing.B) {
			f := loadExample(b, dir, ex.plugin, ex.config)
			for b.Loop() {
				f.pool.slots <- struct{}{}
				inst, err := f.pool.create()
				if err != nil {
					b.Fatal(err)
				}
				f.pool.destroy(inst)
			}
			b.ReportMetric(float64(info.Size())/1024, "KiB")
		})
		b.Run(ex.plugin+"/request", func(b *testing.B) {
			f := loadExample(b, dir, ex.plugin, ex.config)
			r, w := httptest.NewRequest("GET", "/x", nil), httptest.NewRecorder()
			log, ip := slog.New(slog.DiscardHandler), netip.MustParseAddr("10.1.2.3")
			b.ReportAllocs()
			for b.Loop() {
				clear(r.Header)
				if ex.header[0] != "" {
					r.Header.Set(ex.header[0], ex.header[1])
				}
				x := &exchange.Exchange{Request: r, ClientIP: ip, Start: time.Now(), BaseLog: log}
				next, p, err := f.Request(x, w)
				if err != nil || !next {
					b.Fatalf("Request: next %v, %v", next, err)
				}
				if p != nil {
					if err := p.Response(x, &filter.Response{Status: 200, Header: http.Header{}}); err != nil {
						b.Fatal(err)
					}
					p.Release()
				}
			}
		})
	}
}
