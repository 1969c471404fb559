package supervisor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lintelhq/lintel/internal/grpcinventory"
)

// TestProtoChangeIsReloaded: a grpc service's .proto files are watched
// like the config: when the file the gateway compiled changes, the next
// generation serves with the new descriptors. Here the gateway's copy of
// the proto first lacks Product.tags, so the JSON answer has none; once
// the file gains the field, the tags appear.
func TestProtoChangeIsReloaded(t *testing.T) {
	inv := grpcinventory.Serve(t, grpcinventory.Options{})
	full, err := os.ReadFile(grpcinventory.Proto())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	proto := filepath.Join(dir, "inventory.proto")
	without := strings.Replace(string(full), "  repeated string tags = 7;\n", "", 1)
	if without == string(full) {
		t.Fatal("the test proto no longer declares tags = 7")
	}
	if err := os.WriteFile(proto, []byte(without), 0o644); err != nil {
		t.Fatal(err)
	}
	r := stockRig(t, inv.Addr, proto)
	if err := os.WriteFile(proto, full, 0o644); err != nil {
		t.Fatal(err)
	}
	waitForTags(t, r, "the changed proto")
}

// stockRig serves GET /stock/:id from the inventory at addr with the
// descriptors of proto, and checks that the answer has no tags yet.
func stockRig(t *testing.T, addr, proto string) *rig {
	t.Helper()
	r := newRig(t, `
[server]
watch_interval = "100ms"
[services.inventory]
protocol = "grpc"
targets = ["http://`+addr+`"]
protos = ["`+proto+`"]
[[routes]]
path = "/stock/:id"
methods = ["GET"]
service = "inventory"
grpc = { method = "lintel.demo.inventory.v1.Inventory/GetProduct" }
`)
	if resp, body := r.get("/stock/123"); resp.StatusCode != 200 || strings.Contains(body, "tags") {
		t.Fatalf("before the change: %d %s", resp.StatusCode, body)
	}
	return r
}

// waitForTags waits for a reload to make the answer carry the product's
// tags, for up to 10 s.
func waitForTags(t *testing.T, r *rig, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := r.get("/stock/123")
		if resp.StatusCode == 200 && strings.Contains(body, `"tags":["computers","14-inch"]`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not take effect: %d %s", what, resp.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestImportedProtoChangeIsReloaded: a change to a .proto that a listed
// one imports (beside it, or under proto_paths) reloads too.
func TestImportedProtoChangeIsReloaded(t *testing.T) {
	inv := grpcinventory.Serve(t, grpcinventory.Options{})
	dir := t.TempDir()
	// service.proto imports messages.proto, which first lacks tags.
	full, err := os.ReadFile(grpcinventory.Proto())
	if err != nil {
		t.Fatal(err)
	}
	src := string(full)
	i := strings.Index(src, "message GetProductRequest")
	head, messages := src[:i], src[i:]
	service := strings.Replace(head, `import "google/protobuf/timestamp.proto";`, `import "messages.proto";`, 1)
	header := "syntax = \"proto3\";\npackage lintel.demo.inventory.v1;\nimport \"google/protobuf/timestamp.proto\";\n"
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("service.proto", service)
	write("messages.proto", header+strings.Replace(messages, "  repeated string tags = 7;\n", "", 1))
	r := stockRig(t, inv.Addr, filepath.Join(dir, "service.proto"))
	write("messages.proto", header+messages)
	waitForTags(t, r, "the changed import")
}
