package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lintelhq/lintel/internal/gatewaytest"
	"github.com/lintelhq/lintel/internal/grpcinventory"
	"github.com/lintelhq/lintel/internal/otlptest"
)

// tracingTable exports to {{otlp}} over protocol, with incoming and a
// sample ratio (a TOML number) as given.
func tracingTable(protocol, incoming, ratio string) string {
	return `
[tracing]
endpoint = "{{otlp}}"
protocol = "` + protocol + `"
incoming = "` + incoming + `"
sample_ratio = ` + ratio + `
service_name = "edge"
resource = { "deployment.environment.name" = "test" }
`
}

// flush retires the harness's gateway, which exports every queued span.
func flush(t *testing.T, h *gatewaytest.Harness) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Server.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func byName(spans []otlptest.Span) map[string]otlptest.Span {
	m := map[string]otlptest.Span{}
	for _, s := range spans {
		m[s.Name] = s
	}
	return m
}

// TestTracingAggregationSpanTree: one aggregated request is one trace: a
// server span named by its route, a span for each filter phase (named by
// the filter), one per part, and under each part the upstream call; the
// upstreams receive the trace context of their own call, with the
// client's baggage; a failed optional part fails its span only.
func TestTracingAggregationSpanTree(t *testing.T) {
	otlp := otlptest.NewHTTP(t)
	s := seedServices(t)
	s.reviews = gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	vars := s.vars()
	vars["otlp"] = otlp.URL
	cfg := tracingTable("http/protobuf", "join", "1.0") + `
[listeners.default]
listen = "127.0.0.1:0"
filters = ["auth"]
[filters.auth]
plugin = "test"
config = { request_header = "X-Auth" }
` + productConfig("1s", "", "", ", optional = true")
	h := gatewaytest.Start(t, cfg, vars)
	resp, body := h.Do("GET", "/products/7", nil, "Baggage", "tenant=acme", "User-Agent", "trace-test")
	if resp.StatusCode != 200 || resp.Header.Get("X-Lintel-Missing") != "reviews" {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
	}
	flush(t, h)
	spans := otlp.Wait(9, 5*time.Second)
	t.Logf("span tree:\n%s", otlptest.Tree(spans, "http.route", "http.response.status_code", "lintel.service"))
	if len(spans) != 9 {
		t.Fatalf("%d spans, want 9 (server, 2 filter phases, 3 parts, 3 upstream calls)", len(spans))
	}
	n := byName(spans)
	srv := n["GET /products/:id"]
	if srv.Kind != "server" || srv.ParentID != "" || srv.Error {
		t.Fatalf("server span: %+v", srv)
	}
	for k, v := range map[string]string{"http.route": "/products/:id", "http.request.method": "GET", "http.response.status_code": "200",
		"lintel.request_id": resp.Header.Get("X-Request-Id"), "user_agent.original": "trace-test", "lintel.failed_parts": "reviews", "client.address": "127.0.0.1"} {
		if srv.Attrs[k] != v {
			t.Errorf("server span %s = %q, want %q", k, srv.Attrs[k], v)
		}
	}
	if srv.Resource["service.name"] != "edge" || srv.Resource["deployment.environment.name"] != "test" {
		t.Errorf("resource: %v", srv.Resource)
	}
	for _, s := range spans {
		if s.TraceID != srv.TraceID {
			t.Errorf("span %q is in trace %s, not the request's %s", s.Name, s.TraceID, srv.TraceID)
		}
	}
	for _, name := range []string{"filter auth request", "filter auth response", "part product", "part stock", "part reviews"} {
		if sp, ok := n[name]; !ok || sp.ParentID != srv.SpanID {
			t.Errorf("span %q missing or not a child of the server span: %+v", name, sp)
		}
	}
	if f := n["filter auth request"]; f.Attrs["lintel.filter"] != "auth" || f.Attrs["lintel.filter.phase"] != "request" {
		t.Errorf("filter span attributes: %v", f.Attrs)
	}
	if p := n["part reviews"]; !p.Error || !strings.Contains(p.Message, "503") {
		t.Errorf("the failed part's span is not failed: %+v", p)
	}
	for part, up := range map[string]*gatewaytest.Upstream{"product": s.catalog, "stock": s.inventory, "reviews": s.reviews} {
		service := map[string]string{"product": "catalog", "stock": "inventory", "reviews": "reviews"}[part]
		call, ok := n["GET "+service]
		if !ok || call.Kind != "client" || call.ParentID != n["part "+part].SpanID {
			t.Errorf("upstream span of %s missing or misplaced: %+v", part, call)
			continue
		}
		if call.Attrs["server.address"] != "127.0.0.1" || call.Attrs["lintel.service"] != service {
			t.Errorf("upstream span attributes: %v", call.Attrs)
		}
		r := up.Last()
		if want := "00-" + srv.TraceID + "-" + call.SpanID + "-01"; r.Header.Get("Traceparent") != want {
			t.Errorf("%s received traceparent %q, want %q", service, r.Header.Get("Traceparent"), want)
		}
		if r.Header.Get("Baggage") != "tenant=acme" {
			t.Errorf("%s received baggage %q", service, r.Header.Get("Baggage"))
		}
	}
	if c := n["GET reviews"]; !c.Error || c.Attrs["http.response.status_code"] != "503" {
		t.Errorf("the 503 call's span: %+v", c)
	}
	if !strings.Contains(h.Logs.String(), "trace_id="+srv.TraceID) {
		t.Errorf("the part's failure is logged without the trace id:\n%s", h.Logs.String())
	}
}

// TestTracingFailedUpstream: an upstream that cannot be reached fails
// the upstream span with the error and the server span with the 502.
func TestTracingFailedUpstream(t *testing.T) {
	otlp := otlptest.NewHTTP(t)
	cfg := tracingTable("http/protobuf", "join", "1") + `
[services.gone]
targets = ["http://127.0.0.1:1"]
[[routes]]
path = "/gone"
service = "gone"
`
	h := gatewaytest.Start(t, cfg, map[string]string{"otlp": otlp.URL})
	if resp, _ := h.Do("GET", "/gone", nil); resp.StatusCode != 502 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	flush(t, h)
	n := byName(otlp.Wait(2, 5*time.Second))
	srv, call := n["GET /gone"], n["GET gone"]
	if !srv.Error || srv.Attrs["http.response.status_code"] != "502" || srv.Attrs["lintel.answered_by"] != "gateway_for_target" {
		t.Errorf("server span: %+v", srv)
	}
	if !call.Error || !strings.Contains(call.Message, "connection refused") || call.ParentID != srv.SpanID {
		t.Errorf("upstream span: %+v", call)
	}
}

// TestTracingClientCannotForceSampling: with incoming = "join" a
// client's sampled flag records nothing at ratio 0, though its trace id
// is kept for the upstream (unsampled); "follow" honours the flag;
// "restart" starts a new trace linked to the client's span.
func TestTracingClientCannotForceSampling(t *testing.T) {
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	const parent = "00-" + clientTrace + "-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		incoming string
		ratio    string
		recorded bool
		sameID   bool
	}{
		{"join", "0", false, true},
		{"follow", "0", true, true},
		{"restart", "1", true, false},
	} {
		t.Run(tc.incoming, func(t *testing.T) {
			otlp := otlptest.NewHTTP(t)
			up := jsonUpstream(t, `{}`)
			h := gatewaytest.Start(t, tracingTable("http/protobuf", tc.incoming, tc.ratio)+`
[services.api]
targets = ["{{api}}"]
[[routes]]
path = "/api"
service = "api"
`, map[string]string{"otlp": otlp.URL, "api": up.URL})
			if resp, _ := h.Do("GET", "/api", nil, "Traceparent", parent, "Tracestate", "vendor=client"); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			got := up.Last().Header.Get("Traceparent")
			flush(t, h)
			spans := otlp.Wait(2, 2*time.Second)
			if recorded := len(spans) > 0; recorded != tc.recorded {
				t.Fatalf("recorded %t (%d spans), want %t", recorded, len(spans), tc.recorded)
			}
			if sameID := strings.Contains(got, clientTrace); sameID != tc.sameID {
				t.Errorf("upstream traceparent %q: client's trace kept %t, want %t", got, sameID, tc.sameID)
			}
			if !tc.recorded && !strings.HasSuffix(got, "-00") {
				t.Errorf("an unrecorded request went upstream as sampled: %q", got)
			}
			if ts := up.Last().Header.Get("Tracestate"); (ts == "vendor=client") != tc.sameID {
				t.Errorf("upstream tracestate %q: the client's kept only when its trace is", ts)
			}
			if tc.incoming == "restart" {
				srv := byName(spans)["GET /api"]
				if len(srv.Links) != 1 || srv.Links[0] != clientTrace+"-00f067aa0ba902b7" || srv.ParentID != "" {
					t.Errorf("restarted trace: parent %q, links %v", srv.ParentID, srv.Links)
				}
			}
		})
	}
}

// TestTracingOffLeavesTraceContext: without [tracing] the client's
// traceparent reaches the upstream untouched (a trace-context plugin may
// manage it) and nothing is exported.
func TestTracingOffLeavesTraceContext(t *testing.T) {
	up := jsonUpstream(t, `{}`)
	h := gatewaytest.Start(t, `
[services.api]
targets = ["{{api}}"]
[[routes]]
path = "/api"
service = "api"
`, map[string]string{"api": up.URL})
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	h.Do("GET", "/api", nil, "Traceparent", tp)
	if got := up.Last().Header.Get("Traceparent"); got != tp {
		t.Errorf("upstream got traceparent %q, want the client's %q", got, tp)
	}
}

// TestTracingGRPCExportAndCalls: spans export over OTLP/gRPC too, and a
// gRPC call the gateway makes is a client span named as gRPC names it,
// with the trace context in the call's metadata.
func TestTracingGRPCExportAndCalls(t *testing.T) {
	otlp := otlptest.NewGRPC(t)
	inv := grpcinventory.Serve(t, grpcinventory.Options{})
	vars := inventoryVars(inv)
	vars["otlp"] = otlp.URL
	h := gatewaytest.Start(t, tracingTable("grpc", "join", "1")+inventoryRoutes, vars)
	if resp, body := h.Do("GET", "/stock/123", nil); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	md := inv.LastMetadata()
	flush(t, h)
	n := byName(otlp.Wait(2, 5*time.Second))
	call, ok := n["lintel.demo.inventory.v1.Inventory/GetProduct"]
	if !ok || call.Kind != "client" || call.ParentID != n["GET /stock/:id"].SpanID {
		t.Fatalf("gRPC call span missing or misplaced: %+v (all: %v)", call, n)
	}
	if call.Attrs["rpc.system"] != "grpc" || call.Attrs["rpc.method"] != "GetProduct" || call.Attrs["rpc.service"] != "lintel.demo.inventory.v1.Inventory" {
		t.Errorf("rpc attributes: %v", call.Attrs)
	}
	if tp := md.Get("traceparent"); len(tp) != 1 || !strings.Contains(tp[0], call.SpanID) {
		t.Errorf("the call's metadata carries traceparent %v, want the call's span %s", tp, call.SpanID)
	}
}
