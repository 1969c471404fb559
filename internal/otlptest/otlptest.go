// Package otlptest is an OTLP trace receiver for tests and local runs:
// over HTTP (protobuf, POST /v1/traces) or gRPC, on loopback, decoding
// what it receives into Spans. Over HTTP, GET /traces shows the latest
// traces as span trees (the demo's trace viewer).
package otlptest

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Span is one received span, with its resource's attributes.
type Span struct {
	TraceID, SpanID, ParentID string // hex; ParentID "" for a root
	Name                      string
	Kind                      string // "server", "client", "internal", ...
	Attrs                     map[string]string
	Resource                  map[string]string
	Error                     bool   // status code Error
	Message                   string // status message
	Links                     []string
	Start, End                time.Time
}

// Receiver collects the spans exported to it.
type Receiver struct {
	// URL is the endpoint to configure: tracing.endpoint.
	URL string
	// Keep, when positive, bounds the spans kept to about the latest
	// Keep (a receiver that runs for long); when negative, exports are
	// read and discarded undecoded (a collector that costs nothing).
	Keep int

	mu      sync.Mutex
	spans   []Span
	exports int
	arrived chan struct{}
}

func newReceiver() *Receiver { return &Receiver{arrived: make(chan struct{}, 1)} }

// NewReceiver returns a receiver to serve with ServeHTTP, keeping about
// the latest keep spans.
func NewReceiver(keep int) *Receiver {
	r := newReceiver()
	r.Keep = keep
	return r
}

// NewHTTP starts a receiver for protocol "http/protobuf"; the test stops
// it.
func NewHTTP(tb testing.TB) *Receiver {
	r := newReceiver()
	srv := httptest.NewServer(http.HandlerFunc(r.ServeHTTP))
	tb.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// NewGRPC starts a receiver for protocol "grpc"; the test stops it.
func NewGRPC(tb testing.TB) *Receiver {
	r := newReceiver()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := grpc.NewServer()
	collectorpb.RegisterTraceServiceServer(srv, grpcService{r: r})
	go srv.Serve(ln)
	tb.Cleanup(srv.Stop)
	r.URL = "http://" + ln.Addr().String()
	return r
}

// ServeHTTP takes an OTLP/HTTP export (binary protobuf, gzip or not) at
// POST /v1/traces, and shows the latest traces at GET /traces.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodGet && req.URL.Path == "/traces" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, Latest(r.Spans(), 5))
		return
	}
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.Error(w, "POST /v1/traces or GET /traces", http.StatusNotFound)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	if r.Keep < 0 {
		_, _ = io.Copy(io.Discard, body)
		w.Header().Set("Content-Type", "application/x-protobuf")
		return
	}
	b, err := io.ReadAll(body)
	var msg collectorpb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(b, &msg)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.add(&msg)
	out, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

type grpcService struct {
	collectorpb.UnimplementedTraceServiceServer
	r *Receiver
}

func (s grpcService) Export(_ context.Context, req *collectorpb.ExportTraceServiceRequest) (*collectorpb.ExportTraceServiceResponse, error) {
	s.r.add(req)
	return &collectorpb.ExportTraceServiceResponse{}, nil
}

func (r *Receiver) add(req *collectorpb.ExportTraceServiceRequest) {
	var got []Span
	for _, rs := range req.ResourceSpans {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				sp := Span{
					TraceID: hex.EncodeToString(s.TraceId), SpanID: hex.EncodeToString(s.SpanId),
					ParentID: hex.EncodeToString(s.ParentSpanId), Name: s.Name,
					Kind:  strings.ToLower(strings.TrimPrefix(s.Kind.String(), "SPAN_KIND_")),
					Attrs: attrs(s.Attributes), Resource: res,
					Error:   s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR,
					Message: s.GetStatus().GetMessage(),
					Start:   time.Unix(0, int64(s.StartTimeUnixNano)), End: time.Unix(0, int64(s.EndTimeUnixNano)),
				}
				for _, l := range s.Links {
					sp.Links = append(sp.Links, hex.EncodeToString(l.TraceId)+"-"+hex.EncodeToString(l.SpanId))
				}
				got = append(got, sp)
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	if r.Keep > 0 && len(r.spans) > 2*r.Keep {
		r.spans = slices.Clone(r.spans[len(r.spans)-r.Keep:])
	}
	r.exports++
	r.mu.Unlock()
	select {
	case r.arrived <- struct{}{}:
	default:
	}
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = value(kv.Value)
	}
	return m
}

func value(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *commonpb.AnyValue_ArrayValue:
		var parts []string
		for _, el := range x.ArrayValue.Values {
			parts = append(parts, value(el))
		}
		return strings.Join(parts, ",")
	}
	return ""
}

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

// Wait waits until at least n spans have arrived, for up to d, and
// returns them.
func (r *Receiver) Wait(n int, d time.Duration) []Span {
	deadline := time.After(d)
	for {
		if s := r.Spans(); len(s) >= n {
			return s
		}
		select {
		case <-r.arrived:
		case <-deadline:
			return r.Spans()
		}
	}
}

// Tree renders the spans of one trace as an indented tree, children in
// start order: "name [kind] key=value ...", with only the attributes
// named in show.
func Tree(spans []Span, show ...string) string {
	children := map[string][]Span{}
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.SpanID] = true
	}
	var roots []Span
	for _, s := range spans {
		if s.ParentID == "" || !ids[s.ParentID] {
			roots = append(roots, s)
			continue
		}
		children[s.ParentID] = append(children[s.ParentID], s)
	}
	var b strings.Builder
	var walk func(s Span, depth int)
	walk = func(s Span, depth int) {
		fmt.Fprintf(&b, "%s%s [%s] %s", strings.Repeat("  ", depth), s.Name, s.Kind, s.End.Sub(s.Start).Round(10*time.Microsecond))
		for _, k := range show {
			if v, ok := s.Attrs[k]; ok {
				fmt.Fprintf(&b, " %s=%s", k, v)
			}
		}
		if s.Error {
			fmt.Fprintf(&b, " ERROR %q", s.Message)
		}
		b.WriteByte('\n')
		kids := children[s.SpanID]
		slices.SortFunc(kids, func(a, b Span) int { return a.Start.Compare(b.Start) })
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	for _, s := range roots {
		walk(s, 0)
	}
	return b.String()
}

// Latest renders the n traces of spans that started last, newest first,
// each as a Tree under a line naming its trace id.
func Latest(spans []Span, n int) string {
	byTrace := map[string][]Span{}
	first := map[string]time.Time{}
	for _, s := range spans {
		byTrace[s.TraceID] = append(byTrace[s.TraceID], s)
		if t, ok := first[s.TraceID]; !ok || s.Start.Before(t) {
			first[s.TraceID] = s.Start
		}
	}
	ids := slices.Collect(maps.Keys(byTrace))
	slices.SortFunc(ids, func(a, b string) int { return first[b].Compare(first[a]) })
	var b strings.Builder
	for _, id := range ids[:min(n, len(ids))] {
		fmt.Fprintf(&b, "trace %s\n%s\n", id, Tree(byTrace[id], "http.response.status_code", "lintel.service", "rpc.grpc.status_code"))
	}
	return b.String()
}
