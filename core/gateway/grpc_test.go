package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/lintelhq/lintel/core/transcode"
	"github.com/lintelhq/lintel/internal/gatewaytest"
	"github.com/lintelhq/lintel/internal/grpcinventory"
)

// inventoryRoutes serve the gRPC inventory (internal/grpcinventory) as
// REST: GET /stock/:id and POST /stock/:id/adjust (body: the change).
const inventoryRoutes = inventoryService + `timeout = "2s"
[[routes]]
path = "/stock/:id"
methods = ["GET"]
service = "inventory"
[routes.grpc]
method = "lintel.demo.inventory.v1.Inventory/GetProduct"
forward_headers = ["Authorization"]
[[routes]]
path = "/stock/:id/adjust"
methods = ["POST"]
service = "inventory"
[routes.grpc]
method = "lintel.demo.inventory.v1.Inventory/AdjustStock"
body = "change"
`

// inventoryService is the grpc service of internal/grpcinventory, its
// target and proto filled in by inventoryVars.
const inventoryService = `
[services.inventory]
protocol = "grpc"
targets = ["{{inventory}}"]
protos = ["{{proto}}"]
`

func inventoryVars(inv *grpcinventory.Server) map[string]string {
	return map[string]string{"inventory": "http://" + inv.Addr, "proto": grpcinventory.Proto()}
}

func startInventory(t *testing.T) (*grpcinventory.Server, *gatewaytest.Harness) {
	t.Helper()
	inv := grpcinventory.Serve(t, grpcinventory.Options{})
	h := gatewaytest.Start(t, inventoryRoutes, inventoryVars(inv))
	return inv, h
}

// TestGRPCUnaryAsJSON: a GET with a path parameter and a query parameter
// becomes the request message; the response message comes back as JSON
// with every field (zero values too), enums by name, 64-bit integers as
// strings and timestamps in RFC 3339, as protojson writes them.
func TestGRPCUnaryAsJSON(t *testing.T) {
	inv, h := startInventory(t)
	resp, body := h.Do("GET", "/stock/123?include_reserved=true", nil, "Authorization", "Bearer t")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": "123", "name": "Laptop", "stock": float64(7), "reserved": "2", "availability": "IN_STOCK",
		"updated": "2026-11-30T12:00:00Z", "tags": []any{"computers", "14-inch"}}
	for k, v := range want {
		if b, _ := json.Marshal(got[k]); string(b) != mustJSON(v) {
			t.Errorf("%s = %s, want %s (body %s)", k, b, mustJSON(v), body)
		}
	}
	if resp.Header.Get("X-Served-By") != "inventory-grpc" || resp.Header.Get("X-Saw-Authorization") != "yes" {
		t.Errorf("response metadata not passed as headers, or Authorization not forwarded: %v", resp.Header)
	}
	if md := inv.LastMetadata(); len(md.Get("x-request-id")) != 1 || md.Get("x-request-id")[0] != resp.Header.Get("X-Request-Id") {
		t.Errorf("the request id did not reach the service as metadata: %v", md)
	}
	if md := inv.LastMetadata(); len(md.Get("grpc-timeout")) != 0 {
		// grpc-go reads grpc-timeout into the context's deadline.
		t.Errorf("grpc-timeout leaked into metadata: %v", md)
	}
	resp, body = h.Do("GET", "/stock/123", nil)
	if !strings.Contains(body, `"reserved":"0"`) {
		t.Errorf("an unset field is missing from the JSON: %s", body)
	}
}

// TestGRPCBodyField: the JSON body fills the field the route names.
func TestGRPCBodyField(t *testing.T) {
	_, h := startInventory(t)
	resp, body := h.Do("POST", "/stock/123/adjust", strings.NewReader(`{"delta": -3, "reason": "sold"}`))
	if resp.StatusCode != 200 || !strings.Contains(body, `"stock":4`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

// TestGRPCStatusAsProblem: a gRPC status becomes its standard HTTP status
// and a problem body with the status, its message and its details.
func TestGRPCStatusAsProblem(t *testing.T) {
	_, h := startInventory(t)
	for _, c := range []struct {
		method, path, body string
		status             int
		grpc, detail       string
	}{
		{"GET", "/stock/999", "", 404, "NOT_FOUND", "no product 999"},
		{"POST", "/stock/123/adjust", `{"delta": -100}`, 400, "FAILED_PRECONDITION", "only 7 in stock"},
	} {
		var r io.Reader
		if c.body != "" {
			r = strings.NewReader(c.body)
		}
		resp, body := h.Do(c.method, c.path, r)
		p := gatewaytest.ProblemBody(t, resp, body)
		if resp.StatusCode != c.status || p["grpc_status"] != c.grpc || p["detail"] != c.detail {
			t.Errorf("%s %s: %d %s", c.method, c.path, resp.StatusCode, body)
		}
	}
	_, body := h.Do("GET", "/stock/999", nil)
	if !strings.Contains(body, `"grpc_details":[{"@type":"type.googleapis.com/google.rpc.ResourceInfo","resourceType":"product","resourceName":"999"}]`) {
		t.Errorf("status details missing: %s", body)
	}
}

// TestGRPCBadInputIsA400: an unknown JSON field, a value of the wrong
// type and an unknown query parameter are the client's fault, named in
// the problem, and never reach the service.
func TestGRPCBadInputIsA400(t *testing.T) {
	inv, h := startInventory(t)
	for _, c := range []struct{ method, path, body, names string }{
		{"POST", "/stock/123/adjust", `{"delta": 1, "colour": "red"}`, `colour`},
		{"POST", "/stock/123/adjust", `{"delta": "many"}`, `delta`},
		{"GET", "/stock/123?colour=red", "", `colour`},
		{"GET", "/stock/123?include_reserved=perhaps", "", `include_reserved`},
	} {
		var r io.Reader
		if c.body != "" {
			r = strings.NewReader(c.body)
		}
		resp, body := h.Do(c.method, c.path, r)
		p := gatewaytest.ProblemBody(t, resp, body)
		if detail, _ := p["detail"].(string); resp.StatusCode != 400 || !strings.Contains(detail, c.names) {
			t.Errorf("%s %s %s: %d %s, want 400 naming %s", c.method, c.path, c.body, resp.StatusCode, body, c.names)
		}
	}
	if n := len(inv.Calls()); n != 0 {
		t.Errorf("%d calls reached the service", n)
	}
}

// TestGRPCServiceDown: a service that cannot be reached is a 502.
func TestGRPCServiceDown(t *testing.T) {
	h := gatewaytest.Start(t, inventoryRoutes, map[string]string{"inventory": gatewaytest.DeadAddr(t), "proto": grpcinventory.Proto()})
	resp, body := h.Do("GET", "/stock/123", nil)
	gatewaytest.ProblemBody(t, resp, body)
	if resp.StatusCode != 502 {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestGRPCPartInAggregation: an aggregation part can call a gRPC method;
// the merged JSON looks as it would with a REST part, and a failing gRPC
// part is an optional part's null.
func TestGRPCPartInAggregation(t *testing.T) {
	inv := grpcinventory.Serve(t, grpcinventory.Options{})
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"name":"Laptop"}`) })
	h := gatewaytest.Start(t, inventoryService+`
[services.catalog]
targets = ["{{catalog}}"]
[[routes]]
path = "/products/:id"
[routes.aggregate]
parts = [
  { key = "product", service = "catalog", path = "/catalog/{id}" },
  { key = "stock", service = "inventory", method = "lintel.demo.inventory.v1.Inventory/GetProduct", take = "stock", optional = true },
]
`, map[string]string{"inventory": "http://" + inv.Addr, "proto": grpcinventory.Proto(), "catalog": up.URL})
	resp, body := h.Do("GET", "/products/123", nil)
	if resp.StatusCode != 200 || strings.TrimSpace(body) != `{"product":{"name":"Laptop"},"stock":7}` {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
	resp, body = h.Do("GET", "/products/999", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"stock":null`) || resp.Header.Get("X-Lintel-Missing") != "stock" {
		t.Errorf("a NOT_FOUND gRPC part: %d %s %v", resp.StatusCode, body, resp.Header)
	}
}

// TestGRPCPassthrough: a gRPC client reaches a grpc service through
// gatewayd, HTTP/2 end to end (h2c), trailers and status included, and
// the route's filters see the call.
func TestGRPCPassthrough(t *testing.T) {
	inv := grpcinventory.Serve(t, grpcinventory.Options{})
	h := gatewaytest.Start(t, `
[listeners.default]
listen = "127.0.0.1:0"
h2c = true
`+inventoryService+`[[routes]]
path = "/lintel.demo.inventory.v1.Inventory/:method"
methods = ["POST"]
service = "inventory"
`, inventoryVars(inv))
	c := grpcinventory.Dial(t, h.Addr("default"))
	p, md, err := c.GetProduct("123")
	if err != nil || p["stock"] != float64(7) || md.Get("x-served-by")[0] != "inventory-grpc" {
		t.Fatalf("through the gateway: %v %v %v", p, md, err)
	}
	if _, _, err := c.GetProduct("999"); status.Code(err) != codes.NotFound {
		t.Errorf("a NOT_FOUND status through the gateway: %v", err)
	}
}

// TestGRPCGatewayAnswersAreGRPC: on a gRPC call the gateway's own answers
// (no route: 404; a filter's refusal: 403) reach the client as gRPC
// statuses, not as HTTP errors a gRPC client reads as transport failures,
// and the call's status is recorded from its trailers.
func TestGRPCGatewayAnswersAreGRPC(t *testing.T) {
	inv := grpcinventory.Serve(t, grpcinventory.Options{})
	h := gatewaytest.Start(t, `
[listeners.default]
listen = "127.0.0.1:0"
h2c = true
[filters.deny]
config = { answer = 403 }
`+inventoryService+`[[routes]]
path = "/lintel.demo.inventory.v1.Inventory/GetProduct"
methods = ["POST"]
service = "inventory"
[[routes]]
path = "/lintel.demo.inventory.v1.Inventory/AdjustStock"
methods = ["POST"]
service = "inventory"
filters = ["deny"]
`, inventoryVars(inv))
	c := grpcinventory.Dial(t, h.Addr("default"))
	if _, _, err := c.Call("WatchStock", "123"); status.Code(err) != codes.Unimplemented {
		t.Errorf("no route: %v, want Unimplemented", err)
	}
	if _, _, err := c.Call("AdjustStock", "123"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a filter's 403: %v, want PermissionDenied", err)
	}
	if _, _, err := c.Call("GetProduct", "999"); status.Code(err) != codes.NotFound {
		t.Errorf("the service's NOT_FOUND: %v", err)
	}
}

// TestGRPCServerStreaming: a server-streaming method answers each
// message as it comes, as JSON lines or as Server-Sent Events, and ends
// with the status when it is not OK.
func TestGRPCServerStreaming(t *testing.T) {
	inv := grpcinventory.Serve(t, grpcinventory.Options{})
	h := gatewaytest.Start(t, inventoryService+`
[[routes]]
path = "/watch/:id"
methods = ["GET"]
service = "inventory"
grpc = { method = "lintel.demo.inventory.v1.Inventory/WatchStock" }
`, inventoryVars(inv))
	resp, body := h.Do("GET", "/watch/123", nil)
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" || len(lines) != 3 ||
		!strings.Contains(lines[0], `"stock":7`) || !strings.Contains(lines[2], `"stock":5`) {
		t.Errorf("NDJSON: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = h.Do("GET", "/watch/123", nil, "Accept", "text/event-stream")
	if resp.Header.Get("Content-Type") != "text/event-stream" || strings.Count(body, "data: {") != 3 {
		t.Errorf("SSE: %s\n%s", resp.Header.Get("Content-Type"), body)
	}
	resp, body = h.Do("GET", "/watch/124", nil)
	lines = strings.Split(strings.TrimSpace(body), "\n")
	if resp.StatusCode != 200 || len(lines) != 2 || lines[1] != `{"error":{"grpc_status":"ABORTED","message":"the stock feed was interrupted"}}` {
		t.Errorf("a stream ended by an error: %d\n%s", resp.StatusCode, body)
	}
	resp, body = h.Do("GET", "/watch/999", nil)
	if p := gatewaytest.ProblemBody(t, resp, body); resp.StatusCode != 404 || p["grpc_status"] != "NOT_FOUND" {
		t.Errorf("an error before any message: %d %s", resp.StatusCode, body)
	}
}

// TestGRPCRoutesFromAnnotations: annotations = true makes a route of
// every google.api.http binding (additional ones too), with the
// annotation's path, HTTP method and body.
func TestGRPCRoutesFromAnnotations(t *testing.T) {
	inv := grpcinventory.Serve(t, grpcinventory.Options{})
	h := gatewaytest.Start(t, inventoryService+`
[[routes]]
service = "inventory"
grpc = { annotations = true }
`, inventoryVars(inv))
	for _, path := range []string{"/v1/products/123", "/v1/stock/123"} {
		if resp, body := h.Do("GET", path, nil); resp.StatusCode != 200 || !strings.Contains(body, `"stock":7`) {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
	if resp, body := h.Do("POST", "/v1/products/123/adjust", strings.NewReader(`{"delta": 1}`)); resp.StatusCode != 200 || !strings.Contains(body, `"stock":8`) {
		t.Errorf("POST adjust: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.Do("POST", "/v1/products/123", nil); resp.StatusCode != 405 {
		t.Errorf("a method the annotation does not bind: %d, want 405", resp.StatusCode)
	}
	var reported []string
	for _, r := range h.G.Routes() {
		reported = append(reported, strings.Join(r.Methods, ",")+" "+r.Path+" -> "+r.Target)
	}
	want := []string{
		"GET /v1/products/:id -> grpc inventory lintel.demo.inventory.v1.Inventory/GetProduct",
		"GET /v1/stock/:id -> grpc inventory lintel.demo.inventory.v1.Inventory/GetProduct",
		"POST /v1/products/:id/adjust -> grpc inventory lintel.demo.inventory.v1.Inventory/AdjustStock",
	}
	if strings.Join(reported, "\n") != strings.Join(want, "\n") {
		t.Errorf("routes reported (admin /routes):\n%s\nwant\n%s", strings.Join(reported, "\n"), strings.Join(want, "\n"))
	}
}

// TestGRPCDeadline: the service's timeout reaches the gRPC service as its
// deadline (grpc-timeout), and a call that outlives it is a 504.
func TestGRPCDeadline(t *testing.T) {
	inv := grpcinventory.Serve(t, grpcinventory.Options{})
	h := gatewaytest.Start(t, strings.Replace(inventoryRoutes, `timeout = "2s"`, `timeout = "300ms"`, 1),
		inventoryVars(inv))
	start := time.Now()
	resp, body := h.Do("GET", "/stock/slow", nil)
	took := time.Since(start)
	gatewaytest.ProblemBody(t, resp, body)
	if resp.StatusCode != 504 || took > 3*time.Second {
		t.Errorf("%d after %v: %s; want 504 near 300ms", resp.StatusCode, took, body)
	}
	if d := inv.SlowDeadline(); d <= 0 || d > 300*time.Millisecond {
		t.Errorf("the service saw a deadline %v away, want within the service's 300ms", d)
	}
	// A route's own timeout wins over the service's.
	h = gatewaytest.Start(t, strings.Replace(inventoryRoutes, `forward_headers = ["Authorization"]`, `forward_headers = ["Authorization"]`+"\ntimeout = \"200ms\"", 1),
		inventoryVars(inv))
	if resp, _ := h.Do("GET", "/stock/slow", nil); resp.StatusCode != 504 {
		t.Errorf("with the route's timeout: %d, want 504", resp.StatusCode)
	}
	if d := inv.SlowDeadline(); d <= 0 || d > 200*time.Millisecond {
		t.Errorf("the service saw a deadline %v away, want within the route's 200ms", d)
	}
}

// BenchmarkGRPC is a GET served by REST-to-gRPC translation, over
// loopback, with the gRPC inventory as the service.
func BenchmarkGRPC(b *testing.B) {
	inv := grpcinventory.Serve(b, grpcinventory.Options{})
	h := gatewaytest.Start(b, inventoryRoutes, inventoryVars(inv))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(h.URL() + "/stock/123")
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}

// TestGRPCReflection: a service's descriptors can come from its server
// reflection API (v1, or v1alpha from an older server), and a gateway
// built again while the service is down keeps the descriptors it last
// got.
func TestGRPCReflection(t *testing.T) {
	for _, version := range []string{"v1", "v1alpha"} {
		t.Run(version, func(t *testing.T) {
			inv, err := grpcinventory.Start(grpcinventory.Options{Reflection: version})
			if err != nil {
				t.Fatal(err)
			}
			src := `
[services.inventory]
protocol = "grpc"
targets = ["{{inventory}}"]
reflection = true
[[routes]]
path = "/stock/:id"
methods = ["GET"]
service = "inventory"
grpc = { method = "lintel.demo.inventory.v1.Inventory/GetProduct" }
`
			vars := map[string]string{"inventory": "http://" + inv.Addr}
			h := gatewaytest.Start(t, src, vars)
			if resp, body := h.Do("GET", "/stock/123", nil); resp.StatusCode != 200 || !strings.Contains(body, `"updated":"2026-11-30T12:00:00Z"`) {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			inv.Stop()
			h2 := gatewaytest.Start(t, src, vars) // the service is down
			if !strings.Contains(h2.Logs.String(), "descriptors it last gave are kept") {
				t.Errorf("no warning that reflection failed:\n%s", h2.Logs.String())
			}
			if resp, _ := h2.Do("GET", "/stock/123", nil); resp.StatusCode != 502 {
				t.Errorf("the service down: %d, want 502", resp.StatusCode)
			}
		})
	}
}

// TestGRPCWeb: a browser's gRPC-Web call (HTTP/1.1, binary or base64
// text) reaches a grpc service as gRPC, and its answer comes back as
// gRPC-Web: the message frames, then the trailer frame with the status.
func TestGRPCWeb(t *testing.T) {
	inv := grpcinventory.Serve(t, grpcinventory.Options{})
	h := gatewaytest.Start(t, inventoryService+`
[[routes]]
path = "/lintel.demo.inventory.v1.Inventory/:method"
methods = ["POST"]
service = "inventory"
`, inventoryVars(inv))
	request := func(id string) []byte {
		// GetProductRequest{id}: field 1, wire type 2.
		msg := append([]byte{0x0a, byte(len(id))}, id...)
		frame := []byte{0, 0, 0, 0, byte(len(msg))}
		return append(frame, msg...)
	}
	for _, text := range []bool{false, true} {
		for _, c := range []struct {
			id, status string
			messages   int
		}{{"123", "0", 1}, {"999", "5", 0}} {
			body, ctype := request(c.id), "application/grpc-web+proto"
			if text {
				body, ctype = []byte(base64.StdEncoding.EncodeToString(body)), "application/grpc-web-text"
			}
			resp, out := h.Do("POST", "/lintel.demo.inventory.v1.Inventory/GetProduct", bytes.NewReader(body), "Content-Type", ctype, "X-Grpc-Web", "1")
			raw := []byte(out)
			if text {
				var err error
				if raw, err = base64.StdEncoding.DecodeString(out); err != nil {
					t.Fatalf("text answer not base64: %q", out)
				}
			}
			messages, trailer := 0, ""
			for len(raw) >= 5 {
				n := int(binary.BigEndian.Uint32(raw[1:5]))
				if raw[0]&0x80 != 0 {
					trailer = string(raw[5 : 5+n])
				} else {
					messages++
				}
				raw = raw[5+n:]
			}
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/grpc-web") ||
				messages != c.messages || !strings.Contains(trailer, "grpc-status: "+c.status+"\r\n") {
				t.Errorf("text %v, id %s: %d %s, %d messages, trailer %q", text, c.id, resp.StatusCode, resp.Header.Get("Content-Type"), messages, trailer)
			}
		}
	}
}

// TestGRPCDescriptorSetAndJSONChoices: descriptors can come from a
// FileDescriptorSet file, and the JSON choices users differ on are the
// service's: .proto field names, enum numbers, zero values left out.
func TestGRPCDescriptorSetAndJSONChoices(t *testing.T) {
	inv := grpcinventory.Serve(t, grpcinventory.Options{})
	d, err := transcode.Compile(context.Background(), []string{grpcinventory.Proto()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	set := &descriptorpb.FileDescriptorSet{}
	d.Files().RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(fd.Path(), "google/") { // as protoc without --include_imports would
			set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
		}
		return true
	})
	b, _ := proto.Marshal(set)
	file := filepath.Join(t.TempDir(), "inventory.pb")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	h := gatewaytest.Start(t, `
[services.inventory]
protocol = "grpc"
targets = ["{{inventory}}"]
descriptor_set = "{{set}}"
json = { proto_names = true, enum_numbers = true, omit_unpopulated = true }
[[routes]]
path = "/stock/:id"
methods = ["GET"]
service = "inventory"
grpc = { method = "lintel.demo.inventory.v1.Inventory/GetProduct" }
`, map[string]string{"inventory": "http://" + inv.Addr, "set": file})
	resp, body := h.Do("GET", "/stock/123", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"warehouse_id":"eu-west"`) || !strings.Contains(body, `"availability":1`) || strings.Contains(body, `"reserved"`) {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
}
