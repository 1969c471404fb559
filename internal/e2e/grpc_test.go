package e2e

import (
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lintelhq/lintel/internal/gatewaytest"
	"github.com/lintelhq/lintel/internal/grpcinventory"
)

// TestGRPCCallsAreLoggedWithTheirStatus: a gRPC call's HTTP status is
// always 200; the access log records the status from its trailers, and
// the gateway's own refusal (jwt-auth's 401) reaches the client as
// UNAUTHENTICATED.
func TestGRPCCallsAreLoggedWithTheirStatus(t *testing.T) {
	inv := grpcinventory.Serve(t, grpcinventory.Options{})
	logFile := filepath.Join(t.TempDir(), "access.log")
	h := gatewaytest.StartBundled(t, `
[listeners.default]
listen = "127.0.0.1:0"
h2c = true
filters = ["log"]
[filters.log]
plugin = "access-log"
output = "{{log}}"
[filters.auth]
plugin = "jwt-auth"
config_files = { jwks = "{{jwks}}" }
config = { algorithms = ["RS256"] }
[services.inventory]
protocol = "grpc"
targets = ["{{inventory}}"]
protos = ["{{proto}}"]
[[routes]]
path = "/lintel.demo.inventory.v1.Inventory/GetProduct"
methods = ["POST"]
service = "inventory"
[[routes]]
path = "/lintel.demo.inventory.v1.Inventory/AdjustStock"
methods = ["POST"]
service = "inventory"
filters = ["auth"]
`, map[string]string{"inventory": "http://" + inv.Addr, "proto": grpcinventory.Proto(), "log": logFile})
	c := grpcinventory.Dial(t, h.Addr("default"))
	if _, _, err := c.GetProduct("123"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.GetProduct("999"); status.Code(err) != codes.NotFound {
		t.Fatalf("NOT_FOUND through the gateway: %v", err)
	}
	if _, _, err := c.Call("AdjustStock", "123"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("jwt-auth's 401 on a gRPC call: %v, want Unauthenticated", err)
	}
	var lines []map[string]any
	for deadline := time.Now().Add(5 * time.Second); len(lines) < 3 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		lines = readJSONLines(t, logFile)
	}
	if len(lines) != 3 {
		t.Fatalf("%d access log lines, want 3", len(lines))
	}
	for i, want := range []float64{0, 5, 16} {
		if lines[i]["status"] != float64(200) || lines[i]["grpc_status"] != want {
			t.Errorf("line %d: status %v grpc_status %v, want 200 and %v", i, lines[i]["status"], lines[i]["grpc_status"], want)
		}
	}
}

// TestGRPCRetryOnUnavailable: of two targets, one answers every call
// UNAVAILABLE (as a server going away does); a route whose policy
// retries "unavailable" for its non-idempotent calls gets every call
// through, over gRPC and as REST.
func TestGRPCRetryOnUnavailable(t *testing.T) {
	inv := grpcinventory.Serve(t, grpcinventory.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int64
	draining := grpc.NewServer(grpc.UnknownServiceHandler(func(any, grpc.ServerStream) error {
		refused.Add(1)
		return status.Error(codes.Unavailable, "draining")
	}))
	go draining.Serve(ln)
	t.Cleanup(draining.Stop)
	h := gatewaytest.Start(t, `
[listeners.default]
listen = "127.0.0.1:0"
h2c = true
[services.inventory]
protocol = "grpc"
targets = ["{{draining}}", "{{inventory}}"]
protos = ["{{proto}}"]
retry = { on = ["connect", "unavailable"], non_idempotent = true, backoff = "1ms", max_backoff = "1ms" }
[[routes]]
path = "/lintel.demo.inventory.v1.Inventory/GetProduct"
methods = ["POST"]
service = "inventory"
[[routes]]
path = "/products/:id"
methods = ["GET"]
service = "inventory"
grpc = { method = "lintel.demo.inventory.v1.Inventory/GetProduct" }
`, map[string]string{"inventory": "http://" + inv.Addr, "draining": "http://" + ln.Addr().String(), "proto": grpcinventory.Proto()})
	c := grpcinventory.Dial(t, h.Addr("default"))
	for i := range 4 {
		if _, _, err := c.GetProduct("123"); err != nil {
			t.Errorf("gRPC call %d: %v", i, err)
		}
		if resp, body := h.Do("GET", "/products/123", nil); resp.StatusCode != 200 {
			t.Errorf("REST call %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if refused.Load() == 0 {
		t.Error("the draining target was never tried")
	}
}
