//go:build !wasip1

package main

import (
	"encoding/json"
	"strings"
	"testing"

	lintel "github.com/lintelhq/lintel/sdk/go"
)

func host() *lintel.FakeHost {
	h := lintel.NewFakeHost()
	h.Method, h.URI = "GET", "/api/v1/orders/7?x=1"
	for k, v := range map[string]string{"method": "GET", "path": "/api/v1/orders/7", "route": "orders", "listener": "web",
		"start_time": "2026-11-25T10:00:00.5Z", "bytes_in": "0", "bytes_out": "42", "duration_ms": "3.250", "upstream": "http://10.0.0.1:9104", "user": "alice"} {
		h.Properties[k] = v
	}
	h.RequestHeader.Set("User-Agent", "curl/8")
	h.RequestHeader.Set("Authorization", "Bearer secret-token")
	h.RequestHeader.Set("Referer", "https://shop.example/")
	return h
}

func TestJSONLine(t *testing.T) {
	setup(Config{Headers: []string{"User-Agent", "Authorization"}, Redact: []string{"authorization"}})
	h := host()
	h.Run()
	if len(h.Emitted) != 1 {
		t.Fatalf("emitted %d lines", len(h.Emitted))
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(h.Emitted[0]), &rec); err != nil {
		t.Fatalf("not JSON: %v: %s", err, h.Emitted[0])
	}
	if _, ok := rec["trace_id"]; ok {
		t.Errorf("trace_id written for an untraced request: %s", h.Emitted[0])
	}
	for k, want := range map[string]any{"method": "GET", "path": "/api/v1/orders/7", "uri": "/api/v1/orders/7?x=1", "status": 200.0,
		"bytes_out": 42.0, "duration_ms": 3.25, "user": "alice", "route": "orders", "client_ip": "192.0.2.1", "request_id": "test"} {
		if rec[k] != want {
			t.Errorf("%s = %v, want %v", k, rec[k], want)
		}
	}
	hs := rec["headers"].(map[string]any)
	if hs["authorization"] != "[REDACTED]" || hs["user-agent"] != "curl/8" || strings.Contains(h.Emitted[0], "secret-token") {
		t.Errorf("headers: %v", hs)
	}
}

// TestJSONLineTraceID: a traced request's line carries its trace id.
func TestJSONLineTraceID(t *testing.T) {
	setup(Config{})
	h := host()
	h.Properties["trace_id"] = "4bf92f3577b34da6a3ce929d0e0e4736"
	h.Run()
	var rec map[string]any
	if err := json.Unmarshal([]byte(h.Emitted[0]), &rec); err != nil || rec["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("line %s (%v)", h.Emitted[0], err)
	}
}

func TestCombinedLine(t *testing.T) {
	setup(Config{Format: "combined"})
	h := host()
	h.Run()
	want := `192.0.2.1 - alice [25/Nov/2026:10:00:00 +0000] "GET /api/v1/orders/7?x=1 HTTP/1.1" 200 42 "https://shop.example/" "curl/8"`
	if len(h.Emitted) != 1 || h.Emitted[0] != want {
		t.Errorf("got  %q\nwant %q", h.Emitted, want)
	}
	setup(Config{Format: "common"})
	h = host()
	h.Run()
	if !strings.HasSuffix(h.Emitted[0], `HTTP/1.1" 200 42`) {
		t.Errorf("common: %q", h.Emitted[0])
	}
}

func TestSampling(t *testing.T) {
	zero, half := 0.0, 0.5
	setup(Config{Sample: &zero})
	h := host()
	h.Run()
	if len(h.Emitted) != 0 {
		t.Error("sample = 0 wrote a line")
	}
	setup(Config{Sample: &half})
	kept := 0
	for i := range 1000 {
		h := host()
		h.Properties["request_id"] = strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('0'+i%10)) + strings.Repeat("y", i/26)
		h.Run()
		kept += len(h.Emitted)
	}
	if kept < 400 || kept > 600 {
		t.Errorf("sample = 0.5 kept %d of 1000", kept)
	}
}

func TestNoOutputIsCounted(t *testing.T) {
	setup(Config{})
	h := host()
	h.NoOutput = true
	h.Run()
	if h.Metrics[`access_log_lines_total{result=no_output}`] != 1 {
		t.Errorf("metrics %v", h.Metrics)
	}
}

func TestJSONEscaping(t *testing.T) {
	setup(Config{Headers: []string{"User-Agent"}})
	h := host()
	h.RequestHeader.Set("User-Agent", "quote\" back\\slash \x01 \xff é")
	h.Properties["failed_parts"] = "reviews,stock"
	h.Run()
	var rec map[string]any
	if err := json.Unmarshal([]byte(h.Emitted[0]), &rec); err != nil {
		t.Fatalf("invalid JSON %s: %v", h.Emitted[0], err)
	}
	if ua := rec["headers"].(map[string]any)["user-agent"]; ua != "quote\" back\\slash \x01 \ufffd é" {
		t.Errorf("user-agent %q", ua)
	}
	if fp := rec["failed_parts"].([]any); len(fp) != 2 || fp[1] != "stock" {
		t.Errorf("failed_parts %v", rec["failed_parts"])
	}
	if !strings.HasPrefix(h.Emitted[0], `{"time":"2026-11-25T10:00:00.5Z","request_id":"test",`) {
		t.Errorf("field order: %s", h.Emitted[0])
	}
}
