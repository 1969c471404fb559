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
	r := newRig(t, `
[server]
watch_interval = "100ms"
[services.inventory]
protocol = "grpc"
targets = ["http://`+inv.Addr+`"]
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
	if err := os.WriteFile(proto, full, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := r.get("/stock/123")
		if resp.StatusCode == 200 && strings.Contains(body, `"tags":["computers","14-inch"]`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the changed proto did not take effect: %d %s", resp.StatusCode, body)
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
	r := newRig(t, `
[server]
watch_interval = "100ms"
[services.inventory]
protocol = "grpc"
targets = ["http://`+inv.Addr+`"]
protos = ["`+filepath.Join(dir, "service.proto")+`"]
[[routes]]
path = "/stock/:id"
methods = ["GET"]
service = "inventory"
grpc = { method = "lintel.demo.inventory.v1.Inventory/GetProduct" }
`)
	if resp, body := r.get("/stock/123"); resp.StatusCode != 200 || strings.Contains(body, "tags") {
		t.Fatalf("before the change: %d %s", resp.StatusCode, body)
	}
	write("messages.proto", header+messages)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := r.get("/stock/123")
		if resp.StatusCode == 200 && strings.Contains(body, `"tags":["computers","14-inch"]`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the changed import did not take effect: %d %s", resp.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
