package tracing

import (
	"context"
	"net/http"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestUntracedRequestsAllocateNothing: with tracing off (no span in the
// context), what the request path calls costs no allocation.
func TestUntracedRequestsAllocateNothing(t *testing.T) {
	ctx := context.WithValue(context.Background(), struct{}{}, 1)
	h := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	name := "auth"
	allocs := testing.AllocsPerRun(1000, func() {
		if Recording(ctx) {
			t.Fatal("recording")
		}
		if _, span := Child(ctx, trace.SpanKindClient, "part", name); span != nil {
			t.Fatal("span")
		}
		if Phase(ctx, name, "request") != nil {
			t.Fatal("phase span")
		}
		Inject(ctx, h)
		if TraceID(ctx) != "" {
			t.Fatal("trace id")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per untraced request", allocs)
	}
	if h.Get("Traceparent") != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Errorf("an untraced request's traceparent was changed: %v", h)
	}
}

// TestSamplerIgnoresCraftedTraceIDs: in "join" mode the decision is a
// draw, not a function of the trace id: a client that picks ids a
// ratio-by-id sampler would always keep gets them kept at the ratio.
func TestSamplerIgnoresCraftedTraceIDs(t *testing.T) {
	s := sampler{ratio: 0.1}
	var tid trace.TraceID // all zeros: TraceIDRatioBased keeps it at any ratio > 0
	tid[15] = 1
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, Remote: true})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), parent)
	kept := 0
	for range 2000 {
		if s.ShouldSample(sdktrace.SamplingParameters{ParentContext: ctx, TraceID: tid}).Decision == sdktrace.RecordAndSample {
			kept++
		}
	}
	if kept < 100 || kept > 320 { // 200 expected; the bounds are > 5 sigma away
		t.Errorf("kept %d of 2000 crafted, sampled requests at ratio 0.1", kept)
	}
	// A local parent's decision is followed.
	local := trace.ContextWithSpanContext(context.Background(), parent.WithRemote(false))
	if s.ShouldSample(sdktrace.SamplingParameters{ParentContext: local}).Decision != sdktrace.RecordAndSample {
		t.Error("a child of a recorded span in this process was dropped")
	}
}
