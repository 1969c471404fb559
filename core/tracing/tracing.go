// Package tracing is the gateway's OpenTelemetry tracing: a tracer
// provider per configuration, exporting over OTLP, the sampling rule for
// a client's traceparent, and the helpers the request path uses to start
// spans and carry the context to upstreams.
//
// A request is traced when the listener starts its server span (Start);
// everything below finds that span in the request's context. With tracing
// off there is no span in any context, and the helpers cost a context
// lookup and nothing else: no span, no allocation.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lintelhq/lintel/core/config"
)

// Scope is the instrumentation scope of every span the gateway makes.
const Scope = "github.com/lintelhq/lintel"

// propagator reads and writes W3C traceparent, tracestate and baggage.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Tracer is one configuration's tracing: its provider and exporter, and
// how it treats a client's traceparent. Shutdown flushes it.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	incoming string
}

var errorHandler sync.Once

// New builds the tracing a configuration asks for, or nil when
// tracing.endpoint is empty. It opens no connection: exports start with
// the first batch of spans. version is gatewayd's, for service.version.
func New(c *config.Tracing, version string, log *slog.Logger) (*Tracer, error) {
	if c.Endpoint == "" {
		return nil, nil
	}
	errorHandler.Do(func() {
		// The SDK reports failed exports here; the process has one
		// handler, so it logs through the first configuration's logger.
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("trace export failed", "error", err)
		}))
	})
	exp, err := exporter(c)
	if err != nil {
		return nil, err
	}
	attrs := []attribute.KeyValue{
		attribute.String("service.name", c.ServiceName),
		attribute.String("service.version", version),
		attribute.String("telemetry.sdk.language", "go"),
		attribute.String("telemetry.sdk.name", "opentelemetry"),
		attribute.String("telemetry.sdk.version", otel.Version()),
	}
	for _, k := range slices.Sorted(maps.Keys(c.Resource)) {
		attrs = append(attrs, attribute.String(k, c.Resource[k]))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
		sdktrace.WithSampler(sampler{ratio: c.SampleRatio, follow: c.Incoming == "follow"}),
	)
	return &Tracer{provider: tp, tracer: tp.Tracer(Scope), incoming: c.Incoming}, nil
}

func exporter(c *config.Tracing) (sdktrace.SpanExporter, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if c.Protocol == "grpc" {
		return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(c.Endpoint),
			otlptracegrpc.WithHeaders(c.Headers), otlptracegrpc.WithTimeout(c.Timeout.D()))
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u.String()),
		otlptracehttp.WithHeaders(c.Headers), otlptracehttp.WithTimeout(c.Timeout.D()))
}

// Shutdown exports the spans still queued, within ctx, and stops.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("flushing traces: %w", err)
	}
	return nil
}

// Start starts the server span of a request that arrived at time start,
// from the client's traceparent as tracing.incoming says, and returns the
// request's context carrying it. Name it (SetName) once routed.
func (t *Tracer) Start(r *http.Request, start time.Time) (context.Context, trace.Span) {
	ctx := r.Context()
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start)}
	if _, ok := r.Header["Traceparent"]; ok || len(r.Header["Baggage"]) > 0 {
		remote := propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
		if t.incoming == "restart" {
			if sc := trace.SpanContextFromContext(remote); sc.IsValid() {
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
			}
			ctx = baggage.ContextWithBaggage(ctx, baggage.FromContext(remote))
		} else {
			ctx = remote
		}
	}
	return t.tracer.Start(ctx, r.Method, opts...)
}

// sampler decides a span's recording: a child follows its parent in this
// process; a client's decision is followed only when follow is set; every
// other decision is a draw at ratio. The draw is random, not derived from
// the trace id, so a client cannot pick an id that is always kept.
type sampler struct {
	ratio  float64
	follow bool
}

func (s sampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	parent := trace.SpanContextFromContext(p.ParentContext)
	var sampled bool
	if parent.IsValid() && (!parent.IsRemote() || s.follow) {
		sampled = parent.IsSampled()
	} else {
		sampled = s.ratio >= 1 || s.ratio > 0 && rand.Float64() < s.ratio
	}
	d := sdktrace.Drop
	if sampled {
		d = sdktrace.RecordAndSample
	}
	return sdktrace.SamplingResult{Decision: d, Tracestate: parent.TraceState()}
}

func (s sampler) Description() string {
	return fmt.Sprintf("lintel{ratio=%g,follow_client=%t}", s.ratio, s.follow)
}

// Child starts a span under ctx's span when that one is recorded, named
// by the words of name joined with spaces, and returns the context that
// carries it. Otherwise it returns ctx and a nil span: a request that is
// not traced pays a context lookup, and the name is never built.
func Child(ctx context.Context, kind trace.SpanKind, name ...string) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, nil
	}
	return parent.TracerProvider().Tracer(Scope).Start(ctx, strings.Join(name, " "), trace.WithSpanKind(kind))
}

// Recording reports whether ctx's span is recorded.
func Recording(ctx context.Context) bool { return trace.SpanFromContext(ctx).IsRecording() }

// Phase starts the span of one phase of a filter under ctx's span, or
// returns nil when ctx's span is not recorded.
func Phase(ctx context.Context, filter, phase string) trace.Span {
	_, span := Child(ctx, trace.SpanKindInternal, "filter", filter, phase)
	if span != nil {
		span.SetAttributes(attribute.String("lintel.filter", filter), attribute.String("lintel.filter.phase", phase))
	}
	return span
}

// Inject writes ctx's trace context and baggage into h (traceparent,
// tracestate, baggage) when ctx carries a span, recorded or not, so the
// upstream continues the gateway's trace. Without tracing, h is left as
// the client sent it.
func Inject(ctx context.Context, h http.Header) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	// The client's tracestate belongs to the client's trace; the span's
	// own (inherited when it continues that trace) replaces it.
	h.Del("Tracestate")
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// TraceID returns the trace id of ctx's span in hex, or "" when the
// request is not traced.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

// Fail marks a span failed with err.
func Fail(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

// EndHTTP sets a span's HTTP status attribute, marks it failed at
// failFrom and above (500 for server spans, 400 for client spans, as the
// HTTP semantic conventions say), and ends it.
func EndHTTP(span trace.Span, status, failFrom int) {
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= failFrom {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}
