package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/lintelhq/lintel/core/state"
)

// lintelFuncs is the lintel host module, version lintelABIVersion.
var lintelFuncs = []hostFunc{
	{fnABIVersion, nil, []api.ValueType{i32}, func(_ context.Context, _ api.Module, stack []uint64) {
		stack[0] = lintelABIVersion
	}},
	{fnDeclare, []api.ValueType{i32}, nil, func(ctx context.Context, _ api.Module, stack []uint64) {
		stateOf(ctx).f.declared.Or(uint32(stack[0]) & (declareStateless | declareNoResponse | declareOnComplete | declareNoRequest | declareMemoizable | declareBatchComplete))
	}},
	{fnNow, nil, []api.ValueType{i64}, func(_ context.Context, _ api.Module, stack []uint64) {
		stack[0] = uint64(time.Now().UnixNano())
	}},
	{fnLogKV, []api.ValueType{i32, i32, i32, i32, i32}, nil, hostLogKV},
	{fnGetProperty, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64}, hostGetProperty},
	{fnSetProperty, []api.ValueType{i32, i32, i32, i32}, nil, hostSetProperty},
	{fnStateGet, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64}, hostStateGet},
	{fnStateSet, []api.ValueType{i32, i32, i32, i32, i64}, []api.ValueType{i32}, hostStateSet},
	{fnStateCAS, []api.ValueType{i32, i32, i32, i32, i32, i32, i64}, []api.ValueType{i32}, hostStateCAS},
	{fnStateIncr, []api.ValueType{i32, i32, i64, i64, i32}, []api.ValueType{i32}, hostStateIncr},
	{fnRateLimit, []api.ValueType{i32, i32, i64, i32, i32}, []api.ValueType{i32}, hostRateLimit},
	{fnStateDelete, []api.ValueType{i32, i32}, []api.ValueType{i32}, hostStateDelete},
	{fnMetricDefine, []api.ValueType{i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}, hostMetricDefine},
	{fnMetricUpdate, []api.ValueType{i32, api.ValueTypeF64, i32, i32}, nil, hostMetricUpdate},
	{fnHTTPCall, []api.ValueType{i32, i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}, hostHTTPCall},
	{fnHTTPResponseHeader, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64}, hostHTTPResponseHeader},
	{fnHTTPResponseBody, []api.ValueType{i32, i32}, []api.ValueType{i32}, hostHTTPResponseBody},
	{fnEmit, []api.ValueType{i32, i32}, []api.ValueType{i32}, hostEmit},
	{fnVerifySignature, []api.ValueType{i32, i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}, hostVerifySignature},
	{fnMemoize, []api.ValueType{i32, i32, i32}, nil, hostMemoize},
	{fnGetProperties, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64}, hostGetProperties},
}

// hostEmit writes one raw line to the filter's configured output (an
// access log): 0, or -1 when the filter has no output or writing failed.
func hostEmit(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	s.rec.spoil() // its effect or input cannot be memoized
	line := read(mod, uint32(stack[0]), uint32(stack[1]), fnEmit)
	if s.f.output == nil {
		stack[0] = i32Result(resultError)
		return
	}
	if err := s.f.output.writeLine(line); err != nil {
		s.f.log.Warn("plugin output failed", "error", err)
		stack[0] = i32Result(resultError)
		return
	}
	stack[0] = 0
}

func instantiateLintel(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(moduleLintel)
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
	s.rec.spoil() // its effect or input cannot be memoized
	level := int32(stack[0])
	msg := read(mod, uint32(stack[1]), uint32(stack[2]), fnLogKV)
	kv := nulList(read(mod, uint32(stack[3]), uint32(stack[4]), fnLogKV))
	if len(kv)%2 != 0 {
		fail("%s: key/value list has an odd number of strings", fnLogKV)
	}
	attrs := make([]any, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		attrs = append(attrs, slog.String(kv[i], kv[i+1]))
	}
	s.log(level, msg, attrs...)
}

// Properties the host provides, each appending its value to b. They are
// read-only for guests.
var hostProperties = map[string]func(s *callState, b []byte) []byte{
	"client_ip":  func(s *callState, b []byte) []byte { return s.x.ClientIP.AppendTo(b) },
	"request_id": func(s *callState, b []byte) []byte { return append(b, s.x.RequestID...) },
	"route":      func(s *callState, b []byte) []byte { return append(b, s.x.Route...) },
	"listener":   func(s *callState, b []byte) []byte { return append(b, s.x.Listener...) },
	"start_time": func(s *callState, b []byte) []byte { return s.x.Start.UTC().AppendFormat(b, time.RFC3339Nano) },
	"method":     func(s *callState, b []byte) []byte { return append(b, s.x.Request.Method...) },
	"path":       func(s *callState, b []byte) []byte { return append(b, s.x.Request.URL.Path...) },
	"uri":        func(s *callState, b []byte) []byte { return append(b, s.x.Request.URL.RequestURI()...) },
	"protocol":   func(s *callState, b []byte) []byte { return append(b, protocolVersion(s.x.Request)...) },
	"status": func(s *callState, b []byte) []byte {
		switch {
		case s.resp != nil:
			return strconv.AppendInt(b, int64(s.resp.Status), 10)
		case s.x.Status != 0:
			return strconv.AppendInt(b, int64(s.x.Status), 10)
		}
		return b
	},
	"bytes_in": func(s *callState, b []byte) []byte { return strconv.AppendInt(b, s.x.BytesIn, 10) },
	"bytes_out": func(s *callState, b []byte) []byte {
		if !s.complete {
			return b
		}
		return strconv.AppendInt(b, s.x.BytesOut, 10)
	},
	"duration_ms": func(s *callState, b []byte) []byte {
		if !s.complete {
			return b
		}
		return strconv.AppendFloat(b, s.x.Duration.Seconds()*1000, 'f', 3, 64)
	},
	"upstream": func(s *callState, b []byte) []byte { return append(b, s.x.Upstream...) },
	"upstream_retries": func(s *callState, b []byte) []byte {
		if s.x.Retries == 0 {
			return b
		}
		return strconv.AppendInt(b, int64(s.x.Retries), 10)
	},
	"failed_parts": func(s *callState, b []byte) []byte {
		for i, p := range s.x.FailedParts {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, p...)
		}
		return b
	},
	"grpc_status": func(s *callState, b []byte) []byte { return append(b, s.x.GRPCStatus...) },
}

// appendProperty appends a property of the request to b: the host's, or
// one a filter set. An empty value reads as absent.
func (s *callState) appendProperty(b []byte, name string) []byte {
	return s.appendNamed(b, name, hostProperties[name])
}

// appendNamed is appendProperty with the host's getter of name already
// looked up (nil when name is not the host's).
func (s *callState) appendNamed(b []byte, name string, host func(*callState, []byte) []byte) []byte {
	if host != nil {
		return host(s, b)
	}
	if name == "trace_id" && s.x.TraceID != "" {
		// The gateway's trace, when it traces; otherwise whatever a
		// plugin (such as a trace-context filter) set.
		return append(b, s.x.TraceID...)
	}
	v, _ := s.x.Property(name)
	return append(b, v...)
}

// hostGetProperties is get_properties(names, names_len, buf, buf_limit)
// -> i64: the values of the NUL-terminated names, in their order, each
// as a 4-byte little-endian length and its bytes (an absent property is
// empty); it returns the length, and writes nothing when it exceeds
// buf_limit. One call where a log line needs twenty.
func hostGetProperties(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, fnGetProperties)
	s.rec.spoil() // its input cannot be memoized
	names := s.f.propertyNames(read(mod, uint32(stack[0]), uint32(stack[1]), fnGetProperties))
	buf := propertyBufs.Get().(*[]byte)
	out := (*buf)[:0]
	for i, name := range names.names {
		at := len(out)
		out = s.appendNamed(append(out, 0, 0, 0, 0), name, names.host[i])
		binary.LittleEndian.PutUint32(out[at:], uint32(len(out)-at-4))
	}
	stack[0] = uint64(writeLimited(mod, uint32(stack[2]), uint32(stack[3]), out, fnGetProperties))
	*buf = out
	propertyBufs.Put(buf)
}

// propertyBufs recycles get_properties' answers.
var propertyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// propertyNames parses get_properties' list of names, keeping the last
// list a filter asked for: a plugin asks for the same one every time.
func (f *Filter) propertyNames(list []byte) *nameList {
	if last := f.lastNames.Load(); last != nil && last.list == string(list) {
		return last
	}
	l := &nameList{list: string(list), names: nulList(list)}
	for _, name := range l.names {
		l.host = append(l.host, hostProperties[name])
	}
	f.lastNames.Store(l)
	return l
}

// nameList is a list of property names, parsed, with the host's getter of
// each (nil for a property filters set).
type nameList struct {
	list  string
	names []string
	host  []func(*callState, []byte) []byte
}

func hostGetProperty(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, fnGetProperty)
	s.rec.spoil() // its effect or input cannot be memoized
	name := readString(mod, uint32(stack[0]), uint32(stack[1]), fnGetProperty)
	buf := propertyBufs.Get().(*[]byte)
	defer propertyBufs.Put(buf)
	*buf = s.appendProperty((*buf)[:0], name)
	if len(*buf) == 0 {
		stack[0] = 0
		return
	}
	stack[0] = 1<<32 | uint64(writeLimited(mod, uint32(stack[2]), uint32(stack[3]), *buf, fnGetProperty))
}

func hostSetProperty(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, fnSetProperty)
	name := readString(mod, uint32(stack[0]), uint32(stack[1]), fnSetProperty)
	if _, builtin := hostProperties[name]; builtin || name == "" {
		fail("%s: %q is a property of the host and cannot be set", fnSetProperty, name)
	}
	value := readString(mod, uint32(stack[2]), uint32(stack[3]), fnSetProperty)
	s.spend(fnSetProperty, "properties", &s.spent.properties, len(name)+len(value), int(s.f.spec.Limits.Properties))
	s.x.SetProperty(name, value)
	s.rec.add(memoOp{kind: opSetProperty, name: name, value: value})
}

func ttl(ms uint64) time.Duration {
	if int64(ms) <= 0 {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

// storeCall runs one shared-state operation. The store bounds it with its
// own timeout ([state] timeout): the guest's call deadline is not passed
// on, since it may be nearly spent by the guest's own work, which would
// make a healthy store look broken. When the guest has less time left than the store may take,
// the operation runs aside and the guest waits only what it has left:
// then its call fails as a timeout, and the operation finishes, or times
// out, on its own, without counting as a store failure. A store that
// never waits (in memory) is called directly.
func storeCall[T any](s *callState, fn string, op func(context.Context) (T, error)) (T, error) {
	wait := s.f.stateTimeout
	if wait == 0 { // a store that never waits
		return op(context.Background())
	}
	s.f.pool.waiting.Add(1) // a wait: the pool may make another instance
	defer s.f.pool.waiting.Add(-1)
	left := time.Until(s.deadline)
	if left >= wait {
		return op(context.Background())
	}
	if left <= 0 {
		failTimeout("%s: the call's time ran out before the shared state call", fn)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := op(context.Background())
		done <- result{v, err}
	}()
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case r := <-done:
		return r.v, r.err
	case <-t.C:
		failTimeout("%s: the call's time ran out waiting for the shared state store", fn)
		panic("unreachable")
	}
}

// found is a Get's answer.
type found struct {
	v  []byte
	ok bool
}

// stateErr logs a failure of the shared state backend: once per
// operation every ten seconds, with the count of those not logged.
func (s *callState) stateErr(op string, err error) {
	if errors.Is(err, state.ErrFull) {
		failLimit("%s: %v (state.namespace_limit)", op, err)
	}
	if ok, suppressed := s.f.warnings.Allow(op); ok {
		s.f.log.Warn("shared state unavailable", "op", op, "error", err, "request_id", s.requestID(), "suppressed", suppressed)
	}
}

func hostStateGet(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	s.rec.spoil() // its effect or input cannot be memoized
	key := s.stateKey(mod, uint32(stack[0]), uint32(stack[1]), fnStateGet)
	r, err := storeCall(s, fnStateGet, func(ctx context.Context) (found, error) {
		v, ok, err := s.f.state.Get(ctx, key)
		return found{v, ok}, err
	})
	v, ok := r.v, r.ok
	switch {
	case err != nil:
		s.stateErr(fnStateGet, err)
		stack[0] = math.MaxUint64 // -1
	case !ok:
		stack[0] = 0
	default:
		stack[0] = 1<<32 | uint64(writeLimited(mod, uint32(stack[2]), uint32(stack[3]), v, fnStateGet))
	}
}

func hostStateSet(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	s.rec.spoil() // its effect or input cannot be memoized
	key := s.stateKey(mod, uint32(stack[0]), uint32(stack[1]), fnStateSet)
	v := s.stateValue(mod, uint32(stack[2]), uint32(stack[3]), fnStateSet)
	if s.f.stateTimeout != 0 {
		v = bytes.Clone(v) // the operation may outlive the call
	}
	exp := ttl(stack[4])
	stack[0] = 0
	if _, err := storeCall(s, fnStateSet, func(ctx context.Context) (struct{}, error) { return struct{}{}, s.f.state.Set(ctx, key, v, exp) }); err != nil {
		s.stateErr(fnStateSet, err)
		stack[0] = i32Result(resultError)
	}
}

func hostStateCAS(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	s.rec.spoil() // its effect or input cannot be memoized
	key := s.stateKey(mod, uint32(stack[0]), uint32(stack[1]), fnStateCAS)
	var old []byte
	if int32(stack[3]) >= 0 {
		old = bytes.Clone(s.stateValue(mod, uint32(stack[2]), uint32(stack[3]), fnStateCAS))
		if old == nil {
			old = []byte{}
		}
	}
	v := s.stateValue(mod, uint32(stack[4]), uint32(stack[5]), fnStateCAS)
	if s.f.stateTimeout != 0 {
		v = bytes.Clone(v) // the operation may outlive the call
	}
	exp := ttl(stack[6])
	swapped, err := storeCall(s, fnStateCAS, func(ctx context.Context) (bool, error) {
		return s.f.state.CompareAndSwap(ctx, key, old, v, exp)
	})
	switch {
	case err != nil:
		s.stateErr(fnStateCAS, err)
		stack[0] = i32Result(resultError)
	case swapped:
		stack[0] = 1
	default:
		stack[0] = 0
	}
}

func hostStateIncr(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	s.rec.spoil() // its effect or input cannot be memoized
	key := s.stateKey(mod, uint32(stack[0]), uint32(stack[1]), fnStateIncr)
	out := uint32(stack[4])
	if _, ok := mod.Memory().Read(out, 8); !ok {
		fail("%s: result pointer %d is out of bounds of guest memory", fnStateIncr, out)
	}
	delta, exp := int64(stack[2]), ttl(stack[3])
	n, err := storeCall(s, fnStateIncr, func(ctx context.Context) (int64, error) {
		return s.f.state.Increment(ctx, key, delta, exp)
	})
	switch {
	case errors.Is(err, state.ErrNotInteger):
		stack[0] = i32Result(resultNotInteger)
	case err != nil:
		s.stateErr(fnStateIncr, err)
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
	s.rec.spoil() // its effect or input cannot be memoized
	key := s.stateKey(mod, uint32(stack[0]), uint32(stack[1]), fnRateLimit)
	interval, burst, out := int64(stack[2]), int32(stack[3]), uint32(stack[4])
	if interval <= 0 || burst < 1 {
		fail("%s: interval %d ns and burst %d must both be positive", fnRateLimit, interval, burst)
	}
	if _, ok := mod.Memory().Read(out, 24); !ok {
		fail("%s: result pointer %d is out of bounds of guest memory", fnRateLimit, out)
	}
	var d state.Decision
	var err error
	if s.f.stateTimeout == 0 {
		// A store that never waits, called as storeCall would, without
		// its closure (an allocation on every request).
		d, err = s.f.state.GCRA(context.Background(), key, time.Duration(interval), int(burst))
	} else {
		d, err = storeCall(s, fnRateLimit, func(ctx context.Context) (state.Decision, error) {
			return s.f.state.GCRA(ctx, key, time.Duration(interval), int(burst))
		})
	}
	if err != nil {
		s.stateErr(fnRateLimit, err)
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
	s.rec.spoil() // its effect or input cannot be memoized
	key := s.stateKey(mod, uint32(stack[0]), uint32(stack[1]), fnStateDelete)
	stack[0] = 0
	if _, err := storeCall(s, fnStateDelete, func(ctx context.Context) (struct{}, error) { return struct{}{}, s.f.state.Delete(ctx, key) }); err != nil {
		s.stateErr(fnStateDelete, err)
		stack[0] = i32Result(resultError)
	}
}
