package e2e

import (
	"net/http"
	"testing"

	"github.com/lintelhq/lintel/internal/gatewaytest"
)

// The hostile guests of testdata/wasm, each through gatewayd: what the
// client gets, and that the gateway's own resources stayed within the
// sandbox's bounds.

// TestLogBombStaysWithinTheLogBudget: log_kv capped its message but not its
// keys and values (one call wrote a 1 MiB line), and the host's own
// warnings about refused calls were not counted (one request wrote 20,000
// lines, 82 MiB).
func TestLogBombStaysWithinTheLogBudget(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"bomb"`, "[filters.bomb]\nplugin = \"logbomb\"\ntimeout = \"10s\"\nmemory_limit = \"2MiB\"\n"), map[string]string{"echo": up.URL})
	for range 2 {
		if resp, _ := h.Do("GET", "/echo/a", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	// Two requests: 32 KiB of the guest's lines each, one line saying
	// how many were dropped, and the gateway's own few.
	if n := len(h.Logs.String()); n > 80<<10 {
		t.Errorf("the log holds %d KiB after two requests", n>>10)
	}
}
