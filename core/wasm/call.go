package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/filter"
)

// stateContext carries a call's state to host functions. Each instance
// keeps one, so its calls allocate no context: the engine watches no
// context (the meter bounds the guest's work), and host calls that wait
// bound themselves by the call's deadline.
type stateContext struct {
	context.Context
	s *callState
}

func (c *stateContext) Value(key any) any {
	if key == (stateKey{}) {
		return c.s
	}
	return c.Context.Value(key)
}

// call runs one export with params (at most two); any failure marks the
// instance broken. The guest gets limits.fuel for its own work and
// limits.call_depth frames; its waits in host calls end by the
// deadline, timeout from now.
func (f *Filter) call(inst *instance, s *callState, fn api.Function, params ...uint64) (uint64, error) {
	return f.callWith(inst, s, fn, f.spec.Limits.Fuel, params...)
}

// callWith is call with the fuel to give the guest.
func (f *Filter) callWith(inst *instance, s *callState, fn api.Function, fuel int64, params ...uint64) (uint64, error) {
	// One clock read for the deadline, the sleeps' bound and the timer.
	start := monotonicNow()
	deadline := start.Add(f.spec.Timeout.D())
	inst.ctx.Context, inst.ctx.s = context.Background(), s
	s.values = &inst.values
	s.logLines, s.logBytes, s.logDropped = 0, 0, 0
	inst.deadline.set(deadline)
	s.deadline = deadline
	inst.fuel.Set(uint64(fuel))
	// The depth budget needs no reset: the module starts with
	// limits.call_depth, every call that returns gives back the frames it
	// took, and one that traps breaks the instance.
	inst.stderr.reset()
	stack := inst.stack[:]
	copy(stack, params)
	err := fn.CallWithStack(&inst.ctx, stack)
	if f.callTimer != nil {
		f.callTimer.Observe(time.Since(start).Seconds())
	}
	inst.ctx.s = nil
	if s.logDropped > 0 {
		f.log.Warn("plugin log lines dropped", "dropped", s.logDropped, "request_id", s.requestID())
	}
	if err != nil {
		inst.broken = true
		err, kind := inst.callError(err)
		f.metrics.failed(f.name, kind)
		return 0, inst.stderr.explain(err)
	}
	return stack[0], nil
}

// callError is callError, told by the meter's globals whether the trap
// was the guest running out of fuel or of frames.
func (inst *instance) callError(err error) (error, string) {
	switch {
	case int64(inst.fuel.Get()) < 0:
		return errors.New("ran out of fuel (limits.fuel: instructions one call may run) and was stopped"), "fuel"
	case uint32(inst.depth.Get()) == 0:
		return errors.New("nested its calls deeper than limits.call_depth and was stopped"), "stack"
	}
	return callError(err)
}

// callError makes wazero's errors say what happened in the terms of a
// plugin author, and names its kind for the failures metric.
func callError(err error) (error, string) {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("exited with code %d", exit.ExitCode()), "trap"
	}
	var ge *guestError
	if errors.As(err, &ge) {
		if ge.kind != "" {
			return ge, ge.kind
		}
		return ge, "trap"
	}
	msg := err.Error()
	if i := strings.Index(msg, "\nwasm stack trace:"); i >= 0 {
		msg = msg[:i]
	}
	return errors.New(msg), "trap"
}

// log writes a guest's log line to the gateway's log, with the filter and
// request id, within the per-call budget.
func (s *callState) log(level int32, msg []byte, attrs ...any) {
	if level >= logLevelNone {
		return
	}
	if !s.f.log.Enabled(context.Background(), slogLevel(level)) {
		return
	}
	// One line holds at most maxLogLine bytes of message, keys and
	// values; what is cut is marked "...".
	room := maxLogLine
	text := clip(string(msg), &room)
	for i, a := range attrs {
		if kv, ok := a.(slog.Attr); ok {
			attrs[i] = slog.String(clip(kv.Key, &room), clip(kv.Value.String(), &room))
		}
	}
	size := maxLogLine - room
	if s.logLines >= maxLogLines || s.logBytes+size > maxLogBytes {
		s.logDropped++
		return
	}
	s.logLines++
	s.logBytes += size
	l := s.f.log
	if s.x != nil {
		l = l.With("request_id", s.x.RequestID)
	}
	l.Log(context.Background(), slogLevel(level), text, attrs...)
}

// warn is a line of the host's own about the guest's doing (a refused
// call): it counts against the guest's log budget, so a guest cannot
// flood the log through the host either.
func (s *callState) warn(msg string, attrs ...any) {
	for i := 0; i+1 < len(attrs); i += 2 {
		if k, ok := attrs[i].(string); ok {
			attrs[i/2] = slog.Any(k, attrs[i+1])
		}
	}
	s.log(logLevelWarn, []byte(msg), attrs[:len(attrs)/2]...)
}

// clip returns s cut to the bytes left in *room (marked "..." when cut)
// and takes them from it.
func clip(s string, room *int) string {
	if len(s) > *room {
		s = s[:max(*room, 0)] + "..."
		*room = 0
		return s
	}
	*room -= len(s)
	return s
}

func (s *callState) requestID() string {
	if s.x == nil {
		return ""
	}
	return s.x.RequestID
}

// callState is what host functions act on during one guest call: the
// request (and, in the response phase, the response) of one exchange.
type callState struct {
	f        *Filter
	values   *headerValues // the instance's
	x        *exchange.Exchange
	w        http.ResponseWriter // request phase: where an answer goes
	resp     *filter.Response    // response phase only
	features uint32

	// The guest's own answer when it returns next=0.
	status      int
	answerBody  []byte
	wroteAnswer bool

	reqBody       *bodyBuffer
	reqBodyWrites bool // write_body(request) was called: it replaces the body
	respWrites    bool // write_body(response) was called in this phase
	respRead      int  // read offset into a buffered response body
	logLines      int  // log lines written in the current call
	logBytes      int  // and their bytes
	logDropped    int  // lines dropped over the budget
	spent         spent
	deadline      time.Time // of the current call (monotonicNow)
	complete      bool      // lintel_on_complete: the response is complete
	batched       bool      // and the handler may have returned (declareBatchComplete)

	outResp *http.Response // the last http_call's response
	outBody []byte

	// rec records a memoizable guest's request-phase call (memo.go);
	// nil otherwise.
	rec *recording
}

type stateKey struct{}

// stateOf returns the call's state; every call into a guest carries one.
func stateOf(ctx context.Context) *callState {
	return ctx.Value(stateKey{}).(*callState)
}

// req returns the state of a call made during a request, failing a call
// made while the instance initialises.
func req(ctx context.Context, fn string) *callState {
	s := stateOf(ctx)
	if s.x == nil {
		fail("%s: called outside a request (during initialisation)", fn)
	}
	return s
}

// guestError is a failure of the guest's own making (a bad pointer, a
// forbidden call). Host functions panic with it; wazero turns the panic
// into the error of the export call, and the instance is discarded.
type guestError struct {
	msg  string
	kind string // of lintel_plugin_failures_total; "" is "trap"
}

func (e *guestError) Error() string { return e.msg }

func fail(format string, args ...any) { panic(&guestError{msg: fmt.Sprintf(format, args...)}) }

// failLimit fails the call for going past one of the filter's limits.
func failLimit(format string, args ...any) {
	panic(&guestError{msg: fmt.Sprintf(format, args...), kind: "limit"})
}

// failTimeout fails the call as having run out of its time: a host call
// that waits (a sleep) would end past the call's deadline.
func failTimeout(format string, args ...any) {
	panic(&guestError{msg: fmt.Sprintf(format, args...), kind: "timeout"})
}

// read returns guest memory [ptr, ptr+n), or fails the call.
func read(mod api.Module, ptr, n uint32, what string) []byte {
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		fail("%s: pointer %d length %d is out of bounds of guest memory (%d bytes)", what, ptr, n, mod.Memory().Size())
	}
	return b
}

func readString(mod api.Module, ptr, n uint32, what string) string {
	return string(read(mod, ptr, n, what))
}

// writeLimited implements http-wasm's buf_limit convention: v is written
// at buf only when it fits in limit; its length is returned either way.
func writeLimited(mod api.Module, buf, limit uint32, v []byte, what string) uint32 {
	n := uint32(len(v))
	if n <= limit && n > 0 {
		if !mod.Memory().Write(buf, v) {
			fail("%s: buffer %d length %d is out of bounds of guest memory", what, buf, n)
		}
	}
	return n
}

// writeNULTerminated writes values as NUL-terminated strings under the
// buf_limit convention and returns count<<32 | len.
func writeNULTerminated(mod api.Module, buf, limit uint32, values []string, what string) uint64 {
	if len(values) == 0 {
		return 0
	}
	size := 0
	for _, v := range values {
		size += len(v) + 1
	}
	if uint64(size) <= uint64(limit) {
		// Written in place: a view of the guest's buffer, no copy.
		out, ok := mod.Memory().Read(buf, uint32(size))
		if !ok {
			fail("%s: buffer %d length %d is out of bounds of guest memory", what, buf, size)
		}
		n := 0
		for _, v := range values {
			n += copy(out[n:], v)
			out[n] = 0
			n++
		}
	}
	return uint64(len(values))<<32 | uint64(size)
}

func (s *callState) requestPhase(fn string) {
	if s.resp != nil {
		fail("%s: the request cannot change in handle_response", fn)
	}
}

// responseOpen fails a change of the response in lintel_on_complete: the
// response was sent.
func (s *callState) responseOpen(fn string) {
	if s.complete {
		fail("%s: the response was sent; lintel_on_complete can only read it", fn)
	}
}

// i32Result encodes a negative i32 result on the stack.
func i32Result(v int32) uint64 { return uint64(uint32(v)) }

// maxLogLines bounds the log lines one guest call may write; more are
// counted and dropped, so a plugin cannot flood the gateway's log.
const (
	maxLogLines = 64
	maxLogLine  = 4 << 10  // bytes of one line: message, keys and values
	maxLogBytes = 32 << 10 // bytes of all the lines of one call
)

// clockEpoch anchors monotonicNow.
var clockEpoch = time.Now()

// monotonicNow is the time now for the host's deadlines, durations and
// memo lifetimes: read from the monotonic clock alone, its wall reading
// derived from it, so it is no date to show or store. time.Now reads
// both clocks, and on a virtual machine each read is a slow call; the
// time.Since of a time with a monotonic reading makes one (38 ns a read
// here, against time.Now's 55, on kvm-clock).
func monotonicNow() time.Time { return clockEpoch.Add(time.Since(clockEpoch)) }

// callDeadline is when an instance's current call must end its waits. A
// guest's sleep (WASI poll_oneoff, which wazero serves with time.Sleep
// and no context) ends by it: one that would outlast it sleeps what is
// left and fails the call as a timeout.
type callDeadline struct {
	unixNano atomic.Int64
	waiting  *atomic.Int32 // the pool's count of instances in a wait
}

func (d *callDeadline) set(t time.Time) { d.unixNano.Store(t.UnixNano()) }

func (d *callDeadline) sleep(ns int64) {
	d.waiting.Add(1)
	defer d.waiting.Add(-1)
	left := d.unixNano.Load() - monotonicNow().UnixNano()
	if ns <= left {
		time.Sleep(time.Duration(ns))
		return
	}
	time.Sleep(time.Duration(max(left, 0)))
	failTimeout("a sleep of %v would outlast the call's time limit", time.Duration(ns))
}

// spent is what a request's guest has had the host copy and keep, over
// both phases, against the filter's limits.
type spent struct {
	body, headers, headerValues, properties int
}

// spend adds n to *used, failing the call when that passes limit (the
// filter's limits.<what>).
func (s *callState) spend(fn, what string, used *int, n, limit int) {
	if *used+n > limit {
		failLimit("%s: over the filter's limits.%s (%d) for one request", fn, what, limit)
	}
	*used += n
}

// stateKey reads a state key, within limits.state_key.
func (s *callState) stateKey(mod api.Module, ptr, n uint32, fn string) string {
	if int64(n) > int64(s.f.spec.Limits.StateKey) {
		failLimit("%s: a key of %d bytes is over the filter's limits.state_key (%d)", fn, n, s.f.spec.Limits.StateKey)
	}
	return readString(mod, ptr, n, fn)
}

// stateValue reads a state value, within limits.state_value.
func (s *callState) stateValue(mod api.Module, ptr, n uint32, fn string) []byte {
	if int64(n) > int64(s.f.spec.Limits.StateValue) {
		failLimit("%s: a value of %d bytes is over the filter's limits.state_value (%d)", fn, n, s.f.spec.Limits.StateValue)
	}
	return read(mod, ptr, n, fn)
}
