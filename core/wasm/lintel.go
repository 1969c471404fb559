package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/state"
)

// lintelFuncs is the lintel host module, version LintelABIVersion.
var lintelFuncs = []hostFunc{
	{FnABIVersion, nil, []api.ValueType{i32}, func(_ context.Context, _ api.Module, stack []uint64) {
		stack[0] = LintelABIVersion
	}},
	{FnDeclare, []api.ValueType{i32}, nil, func(ctx context.Context, _ api.Module, stack []uint64) {
		stateOf(ctx).f.declared.Or(uint32(stack[0]) & (DeclareStateless | DeclareNoResponse | DeclareOnComplete))
	}},
	{FnNow, nil, []api.ValueType{i64}, func(_ context.Context, _ api.Module, stack []uint64) {
		stack[0] = uint64(time.Now().UnixNano())
	}},
	{FnLogKV, []api.ValueType{i32, i32, i32, i32, i32}, nil, hostLogKV},
	{FnGetProperty, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64}, hostGetProperty},
	{FnSetProperty, []api.ValueType{i32, i32, i32, i32}, nil, hostSetProperty},
	{FnStateGet, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64}, hostStateGet},
	{FnStateSet, []api.ValueType{i32, i32, i32, i32, i64}, []api.ValueType{i32}, hostStateSet},
	{FnStateCAS, []api.ValueType{i32, i32, i32, i32, i32, i32, i64}, []api.ValueType{i32}, hostStateCAS},
	{FnStateIncr, []api.ValueType{i32, i32, i64, i64, i32}, []api.ValueType{i32}, hostStateIncr},
	{FnRateLimit, []api.ValueType{i32, i32, i64, i32, i32}, []api.ValueType{i32}, hostRateLimit},
	{FnStateDelete, []api.ValueType{i32, i32}, []api.ValueType{i32}, hostStateDelete},
	{FnMetricDefine, []api.ValueType{i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}, hostMetricDefine},
	{FnMetricUpdate, []api.ValueType{i32, api.ValueTypeF64, i32, i32}, nil, hostMetricUpdate},
	{FnHTTPCall, []api.ValueType{i32, i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}, hostHTTPCall},
	{FnHTTPResponseHeader, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64}, hostHTTPResponseHeader},
	{FnHTTPResponseBody, []api.ValueType{i32, i32}, []api.ValueType{i32}, hostHTTPResponseBody},
	{FnEmit, []api.ValueType{i32, i32}, []api.ValueType{i32}, hostEmit},
}

// hostEmit writes one raw line to the filter's configured output (an
// access log): 0, or -1 when the filter has no output or writing failed.
func hostEmit(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	line := read(mod, uint32(stack[0]), uint32(stack[1]), FnEmit)
	if s.f.output == nil {
		stack[0] = i32Result(resultError)
		return
	}
	if err := s.f.output.writeLine(bytes.Clone(line)); err != nil {
		s.f.log.Warn("plugin output failed", "error", err)
		stack[0] = i32Result(resultError)
		return
	}
	stack[0] = 0
}

func instantiateLintel(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(ModuleLintel)
	for _, fn := range lintelFuncs {
		b.NewFunctionBuilder().WithGoModuleFunction(fn.fn, fn.params, fn.results).Export(fn.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// nulList splits a NUL-terminated sequence ("a\0b\0").
func nulList(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

func hostLogKV(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	level := int32(stack[0])
	msg := read(mod, uint32(stack[1]), uint32(stack[2]), FnLogKV)
	kv := nulList(read(mod, uint32(stack[3]), uint32(stack[4]), FnLogKV))
	if len(kv)%2 != 0 {
		fail("%s: key/value list has an odd number of strings", FnLogKV)
	}
	attrs := make([]any, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		attrs = append(attrs, slog.String(kv[i], kv[i+1]))
	}
	s.log(level, msg, attrs...)
}

// Properties the host provides. They are read-only for guests.
var hostProperties = map[string]func(s *callState) string{
	"client_ip":  func(s *callState) string { return s.x.ClientIP.String() },
	"request_id": func(s *callState) string { return s.x.RequestID },
	"route":      func(s *callState) string { return s.x.Route },
	"listener":   func(s *callState) string { return s.x.Listener },
	"start_time": func(s *callState) string { return s.x.Start.UTC().Format(time.RFC3339Nano) },
	"method":     func(s *callState) string { return s.x.Request.Method },
	"path":       func(s *callState) string { return s.x.Request.URL.Path },
	"status": func(s *callState) string {
		switch {
		case s.resp != nil:
			return strconv.Itoa(s.resp.Status)
		case s.x.Status != 0:
			return strconv.Itoa(s.x.Status)
		}
		return ""
	},
	"bytes_in":  func(s *callState) string { return strconv.FormatInt(s.x.BytesIn, 10) },
	"bytes_out": func(s *callState) string { return completed(s, strconv.FormatInt(s.x.BytesOut, 10)) },
	"duration_ms": func(s *callState) string {
		return completed(s, strconv.FormatFloat(s.x.Duration.Seconds()*1000, 'f', 3, 64))
	},
	"upstream":     func(s *callState) string { return s.x.Upstream },
	"failed_parts": func(s *callState) string { return strings.Join(s.x.FailedParts, ",") },
}

// completed returns v once the response is complete, else "".
func completed(s *callState, v string) string {
	if !s.complete {
		return ""
	}
	return v
}

func hostGetProperty(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, FnGetProperty)
	name := readString(mod, uint32(stack[0]), uint32(stack[1]), FnGetProperty)
	var v string
	var ok bool
	if get, builtin := hostProperties[name]; builtin {
		v = get(s)
		ok = v != ""
	} else {
		v, ok = s.x.Property(name)
	}
	if !ok {
		stack[0] = 0
		return
	}
	stack[0] = 1<<32 | uint64(writeLimited(mod, uint32(stack[2]), uint32(stack[3]), []byte(v), FnGetProperty))
}

func hostSetProperty(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, FnSetProperty)
	name := readString(mod, uint32(stack[0]), uint32(stack[1]), FnSetProperty)
	if _, builtin := hostProperties[name]; builtin || name == "" {
		fail("%s: %q is a property of the host and cannot be set", FnSetProperty, name)
	}
	s.x.SetProperty(name, readString(mod, uint32(stack[2]), uint32(stack[3]), FnSetProperty))
}

// Results of the state functions.
const (
	resultError      = -1
	resultNotInteger = -2
)

// i32Result encodes a negative i32 result on the stack.
func i32Result(v int32) uint64 { return uint64(uint32(v)) }

func ttl(ms uint64) time.Duration {
	if int64(ms) <= 0 {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

// storeContext is the context of every shared-state operation: the store
// bounds it with its own timeout ([state] timeout). The guest's call
// deadline is not passed on: it may be nearly spent by the guest's own
// work, which would make a healthy store look broken, and the instance's
// call context is reused by its next call, which must not race a timer
// the store derived from it.
var storeContext = context.Background()

// stateErr logs a failure of the shared state backend: once per
// operation every ten seconds, with the count of those not logged.
func (s *callState) stateErr(op string, err error) {
	if ok, suppressed := s.f.warnings.Allow(op); ok {
		s.f.log.Warn("shared state unavailable", "op", op, "error", err, "request_id", s.requestID(), "suppressed", suppressed)
	}
}

func hostStateGet(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	key := readString(mod, uint32(stack[0]), uint32(stack[1]), FnStateGet)
	v, ok, err := s.f.state.Get(storeContext, key)
	switch {
	case err != nil:
		s.stateErr(FnStateGet, err)
		stack[0] = math.MaxUint64 // -1
	case !ok:
		stack[0] = 0
	default:
		stack[0] = 1<<32 | uint64(writeLimited(mod, uint32(stack[2]), uint32(stack[3]), v, FnStateGet))
	}
}

func hostStateSet(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	key := readString(mod, uint32(stack[0]), uint32(stack[1]), FnStateSet)
	v := read(mod, uint32(stack[2]), uint32(stack[3]), FnStateSet)
	stack[0] = 0
	if err := s.f.state.Set(storeContext, key, v, ttl(stack[4])); err != nil {
		s.stateErr(FnStateSet, err)
		stack[0] = i32Result(resultError)
	}
}

func hostStateCAS(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	key := readString(mod, uint32(stack[0]), uint32(stack[1]), FnStateCAS)
	var old []byte
	if int32(stack[3]) >= 0 {
		old = bytes.Clone(read(mod, uint32(stack[2]), uint32(stack[3]), FnStateCAS))
		if old == nil {
			old = []byte{}
		}
	}
	v := read(mod, uint32(stack[4]), uint32(stack[5]), FnStateCAS)
	swapped, err := s.f.state.CompareAndSwap(storeContext, key, old, v, ttl(stack[6]))
	switch {
	case err != nil:
		s.stateErr(FnStateCAS, err)
		stack[0] = i32Result(resultError)
	case swapped:
		stack[0] = 1
	default:
		stack[0] = 0
	}
}

func hostStateIncr(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	key := readString(mod, uint32(stack[0]), uint32(stack[1]), FnStateIncr)
	out := uint32(stack[4])
	if _, ok := mod.Memory().Read(out, 8); !ok {
		fail("%s: result pointer %d is out of bounds of guest memory", FnStateIncr, out)
	}
	n, err := s.f.state.Increment(storeContext, key, int64(stack[2]), ttl(stack[3]))
	switch {
	case errors.Is(err, state.ErrNotInteger):
		stack[0] = i32Result(resultNotInteger)
	case err != nil:
		s.stateErr(FnStateIncr, err)
		stack[0] = i32Result(resultError)
	default:
		mod.Memory().WriteUint64Le(out, uint64(n))
		stack[0] = 0
	}
}

// hostRateLimit decides one request against a GCRA limit in the
// filter's state: 1 allowed, 0 refused, -1 backend failure; remaining,
// retry-after and reset (ns) are written as three little-endian i64.
func hostRateLimit(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	key := readString(mod, uint32(stack[0]), uint32(stack[1]), FnRateLimit)
	interval, burst, out := int64(stack[2]), int32(stack[3]), uint32(stack[4])
	if interval <= 0 || burst < 1 {
		fail("%s: interval %d ns and burst %d must both be positive", FnRateLimit, interval, burst)
	}
	if _, ok := mod.Memory().Read(out, 24); !ok {
		fail("%s: result pointer %d is out of bounds of guest memory", FnRateLimit, out)
	}
	d, err := s.f.state.GCRA(storeContext, key, time.Duration(interval), int(burst))
	if err != nil {
		s.stateErr(FnRateLimit, err)
		stack[0] = i32Result(resultError)
		return
	}
	mod.Memory().WriteUint64Le(out, uint64(d.Remaining))
	mod.Memory().WriteUint64Le(out+8, uint64(d.RetryAfter))
	mod.Memory().WriteUint64Le(out+16, uint64(d.Reset))
	stack[0] = 0
	if d.Allowed {
		stack[0] = 1
	}
}

func hostStateDelete(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	key := readString(mod, uint32(stack[0]), uint32(stack[1]), FnStateDelete)
	stack[0] = 0
	if err := s.f.state.Delete(storeContext, key); err != nil {
		s.stateErr(FnStateDelete, err)
		stack[0] = i32Result(resultError)
	}
}

// Metric kinds of metric_define.
const (
	MetricCounter   = 0
	MetricGauge     = 1
	MetricHistogram = 2
)

// metric is one metric a plugin defined.
type metric struct {
	kind   int32
	labels int
	vec    prometheus.Collector
}

func hostMetricDefine(ctx context.Context, mod api.Module, stack []uint64) {
	f := stateOf(ctx).f
	kind := int32(stack[0])
	name := readString(mod, uint32(stack[1]), uint32(stack[2]), FnMetricDefine)
	help := readString(mod, uint32(stack[3]), uint32(stack[4]), FnMetricDefine)
	labels := nulList(read(mod, uint32(stack[5]), uint32(stack[6]), FnMetricDefine))
	id, err := f.defineMetric(kind, name, help, labels)
	if err != nil {
		f.log.Warn("plugin metric refused", "metric", name, "error", err)
		stack[0] = i32Result(resultError)
		return
	}
	stack[0] = uint64(id)
}

// defineMetric registers a plugin metric as lintel_plugin_<name> with a
// "filter" label, or returns the id it already has (each new instance
// defines its metrics again).
func (f *Filter) defineMetric(kind int32, name, help string, labels []string) (int, error) {
	f.metricsMu.Lock()
	defer f.metricsMu.Unlock()
	if id, ok := f.metricIDs[name]; ok {
		if m := f.defined[id]; m.kind != kind || m.labels != len(labels) {
			return 0, fmt.Errorf("already defined with another kind or labels")
		}
		return id, nil
	}
	if f.registry == nil {
		return 0, errors.New("no metrics registry")
	}
	opts := prometheus.Opts{Name: "lintel_plugin_" + name, Help: help, ConstLabels: prometheus.Labels{"filter": f.name}}
	if help == "" {
		opts.Help = "Defined by plugin " + f.Plugin + "."
	}
	var vec prometheus.Collector
	switch kind {
	case MetricCounter:
		vec = prometheus.NewCounterVec(prometheus.CounterOpts(opts), labels)
	case MetricGauge:
		vec = prometheus.NewGaugeVec(prometheus.GaugeOpts(opts), labels)
	case MetricHistogram:
		vec = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: opts.Name, Help: opts.Help, ConstLabels: opts.ConstLabels}, labels)
	default:
		return 0, fmt.Errorf("unknown metric kind %d", kind)
	}
	vec, err := safeRegister(f.registry, vec)
	if err != nil {
		return 0, err
	}
	f.defined = append(f.defined, metric{kind, len(labels), vec})
	f.metricIDs[name] = len(f.defined) - 1
	return len(f.defined) - 1, nil
}

// safeRegister registers c, turning the panics of invalid names into
// errors. A metric the same filter defined before a reload is reused,
// so its values carry on.
func safeRegister(r *prometheus.Registry, c prometheus.Collector) (out prometheus.Collector, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) && reflect.TypeOf(are.ExistingCollector) == reflect.TypeOf(c) {
			return are.ExistingCollector, nil
		}
		return nil, err
	}
	return c, nil
}

func hostMetricUpdate(ctx context.Context, mod api.Module, stack []uint64) {
	f := stateOf(ctx).f
	id := int(int32(stack[0]))
	v := api.DecodeF64(stack[1])
	values := nulList(read(mod, uint32(stack[2]), uint32(stack[3]), FnMetricUpdate))
	f.metricsMu.Lock()
	if id < 0 || id >= len(f.defined) {
		f.metricsMu.Unlock()
		fail("%s: no metric with id %d", FnMetricUpdate, id)
	}
	m := f.defined[id]
	f.metricsMu.Unlock()
	if len(values) != m.labels {
		fail("%s: metric %d has %d labels, got %d values", FnMetricUpdate, id, m.labels, len(values))
	}
	switch vec := m.vec.(type) {
	case *prometheus.CounterVec:
		if v < 0 {
			fail("%s: a counter cannot decrease", FnMetricUpdate)
		}
		vec.WithLabelValues(values...).Add(v)
	case *prometheus.GaugeVec:
		vec.WithLabelValues(values...).Set(v)
	case *prometheus.HistogramVec:
		vec.WithLabelValues(values...).Observe(v)
	}
}

// Results of http_call besides a status code.
const (
	httpNotAllowed = -1
	httpFailed     = -2
	httpTooLarge   = -3
)

func hostHTTPCall(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	method := readString(mod, uint32(stack[0]), uint32(stack[1]), FnHTTPCall)
	rawURL := readString(mod, uint32(stack[2]), uint32(stack[3]), FnHTTPCall)
	headers := nulList(read(mod, uint32(stack[4]), uint32(stack[5]), FnHTTPCall))
	body := bytes.Clone(read(mod, uint32(stack[6]), uint32(stack[7]), FnHTTPCall))
	s.outResp, s.outBody = nil, nil
	if sc, ok := ctx.(*stateContext); ok {
		// Derive from the deadline, not from the instance's reusable
		// wrapper, which a late timer goroutine must never read.
		ctx = sc.Context
	}
	status, err := s.f.outbound(ctx, s, method, rawURL, headers, body)
	if err != nil {
		s.f.log.Warn("plugin HTTP call", "method", method, "url", rawURL, "error", err, "request_id", s.requestID())
	}
	stack[0] = i32Result(int32(status))
}

// outbound makes an allow-listed HTTP call for the guest and keeps the
// response for http_response_header and http_response_body.
func (f *Filter) outbound(ctx context.Context, s *callState, method, rawURL string, headers []string, body []byte) (int, error) {
	o := f.spec.Outbound
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return httpNotAllowed, fmt.Errorf("refused: %q is not an http(s) URL", rawURL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	if o == nil || !slices.Contains(o.Hosts, host) || !slices.Contains(o.Methods, method) {
		return httpNotAllowed, fmt.Errorf("refused: %s %s is not in the filter's outbound allow-list", method, host)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return httpFailed, err
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || !config.ValidToken(name) || strings.ContainsAny(value, "\r\n") {
			fail("%s: invalid header %q (want \"Name: value\")", FnHTTPCall, h)
		}
		req.Header.Add(name, strings.TrimSpace(value))
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return httpFailed, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(o.MaxResponse)+1))
	if err != nil {
		return httpFailed, err
	}
	if int64(len(b)) > int64(o.MaxResponse) {
		return httpTooLarge, fmt.Errorf("response exceeds max_response (%d bytes)", o.MaxResponse)
	}
	s.outResp, s.outBody = resp, b
	return resp.StatusCode, nil
}

func hostHTTPResponseHeader(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	name := readString(mod, uint32(stack[0]), uint32(stack[1]), FnHTTPResponseHeader)
	var values []string
	if s.outResp != nil {
		values = s.outResp.Header.Values(name)
	}
	stack[0] = writeNULTerminated(mod, uint32(stack[2]), uint32(stack[3]), values, FnHTTPResponseHeader)
}

func hostHTTPResponseBody(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	stack[0] = uint64(writeLimited(mod, uint32(stack[0]), uint32(stack[1]), s.outBody, FnHTTPResponseBody))
}
