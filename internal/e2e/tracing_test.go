package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/lintelhq/lintel/internal/gatewaytest"
	"github.com/lintelhq/lintel/internal/otlptest"
)

// TestTracingBundledChain: with tracing on, the bundled plugins' phases
// are spans named by their filters (the access log's completion among
// them, inside the request's trace), and the access log line carries the
// trace id the spans have.
func TestTracingBundledChain(t *testing.T) {
	otlp := otlptest.NewHTTP(t)
	up := gatewaytest.NewUpstream(t, gatewaytest.Echo)
	logFile := filepath.Join(t.TempDir(), "access.log")
	h := gatewaytest.StartBundled(t, bundledChain+`
[tracing]
endpoint = "{{otlp}}"
`, map[string]string{"echo": up.URL, "log": logFile, "otlp": otlp.URL})
	resp, body := h.Do("GET", "/orders/1", nil, "Authorization", "Bearer "+gatewaytest.DemoToken(t))
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var lines []map[string]any
	for deadline := time.Now().Add(5 * time.Second); len(lines) < 1 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		lines = readJSONLines(t, logFile)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Server.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	spans := otlp.Wait(7, 5*time.Second)
	t.Logf("span tree:\n%s", otlptest.Tree(spans, "lintel.filter.phase", "http.response.status_code"))
	names := map[string]otlptest.Span{}
	for _, s := range spans {
		names[s.Name] = s
	}
	srv := names["GET /orders/*rest"]
	for _, n := range []string{"filter auth request", "filter headers request", "filter headers response", "filter log complete", "GET echo"} {
		if s, ok := names[n]; !ok || s.ParentID != srv.SpanID {
			t.Errorf("span %q missing or not under the server span", n)
		}
	}
	if len(lines) != 1 || lines[0]["trace_id"] != srv.TraceID {
		t.Errorf("access log %v, want trace_id %s", lines, srv.TraceID)
	}
}
