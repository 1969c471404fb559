package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tetratelabs/wazero"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/filter"
	"github.com/lintelhq/lintel/core/problem"
	"github.com/lintelhq/lintel/core/state"
	"github.com/lintelhq/lintel/internal/ratelog"
)

// Filter is a plugin-backed filter: one runtime, one compiled module, a
// pool of instances. It implements filter.Filter.
type Filter struct {
	name   string
	spec   config.Filter
	config []byte
	log    *slog.Logger

	// Plugin, Size, SHA256 and ABI describe the loaded module.
	Plugin string
	Size   int
	SHA256 string
	ABI    string
	// Schema is the config schema the plugin declares; nil when none.
	Schema *config.PluginSchema

	rt       wazero.Runtime
	compiled wazero.CompiledModule
	pool     *pool
	maxBody  int64

	// declared holds lintel.declare flags; initFeatures the features a
	// guest enabled while initialising (they apply to every request).
	declared     atomic.Uint32
	initFeatures atomic.Uint32
	onComplete   bool // the guest exports lintel_on_complete
	// completeFn is f.complete, made once: registered on every exchange
	// the guest completes, it allocates nothing there.
	completeFn  func(*exchange.Exchange)
	completions completions // batched lintel_on_complete calls

	state        state.Store
	warnings     ratelog.Limiter // of the host's repeated warnings
	stateTimeout time.Duration   // the store's own timeout; 0: it never waits
	output       *lineWriter     // emitted lines; nil when none are allowed
	client       *http.Client    // outbound calls; nil when none are allowed
	registry     *prometheus.Registry
	// headerKeys caches canonical header names (host.go, headerKey).
	headerKeys   atomic.Pointer[map[string]string]
	headerKeysMu sync.Mutex
	metrics      *engineMetrics // the host's, of this filter's calls
	callTimer    prometheus.Observer
	memoHits     prometheus.Counter // nil when metrics are off
	memo         memoTable          // of a memoizable guest's request phase
	respMemo     memoTable          // and of its response phase
	lastNames    atomic.Pointer[nameList]
	metricsMu    sync.Mutex
	defined      []metric // the plugin's own
	metricIDs    map[string]int
	keys         signatureKeys // parsed for verify_signature
}

// Name is the filter's name in gateway.toml.
func (f *Filter) Name() string { return f.name }

// Stats reports the instances alive (idle or in use) and idle.
func (f *Filter) Stats() (live, idle int) { return f.pool.stats() }

// Close closes the pool; the runtime and the output close when the last
// instance in use comes back.
func (f *Filter) Close() error {
	f.closeCompletions()
	if f.pool != nil {
		f.pool.close()
		return nil
	}
	f.closeRuntime()
	return nil
}

// closeRuntime closes the runtime, and the output after its last line.
func (f *Filter) closeRuntime() {
	if f.rt != nil {
		_ = f.rt.Close(context.Background())
	}
	if f.output != nil {
		f.output.close()
	}
}

// Request runs handle_request. See filter.Filter.
func (f *Filter) Request(x *exchange.Exchange, w http.ResponseWriter) (bool, filter.Pending, error) {
	d := f.declared.Load()
	if d&declareNoRequest != 0 {
		// Nothing to run now: no instance, no call.
		if f.onComplete && d&declareOnComplete != 0 {
			x.OnComplete(f.completeFn)
		}
		if d&declareNoResponse != 0 {
			return true, nil, nil
		}
		if f.initFeatures.Load()&featureBufferResponse != 0 {
			x.BufferResponse = true
		}
		return true, newPending(f, x, w), nil
	}
	if f.initFeatures.Load()&featureBufferRequest != 0 {
		// A guest that reads bodies gets the body read first, under the
		// listener's read_timeout: a client that stalls mid-body holds
		// no instance.
		if err := readBodyFirst(x.Request, f.maxBody); err != nil {
			var tooBig *http.MaxBytesError
			switch {
			case errors.As(err, &tooBig):
				problem.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit))
			case x.Request.Context().Err() != nil:
				w.WriteHeader(exchange.StatusClientClosed)
			default:
				problem.Error(w, http.StatusBadRequest, "the request body could not be read: "+err.Error())
			}
			x.AnsweredBy = exchange.ByGateway
			return false, nil, nil
		}
	}
	// A guest with a response phase may memoize its request phase when
	// that phase may run on any instance.
	memoizable := d&declareMemoizable != 0 && d&(declareNoResponse|declareStateless) != 0
	if memoizable {
		if e := f.memo.lookup(x.Request.Header, x.Request.Host, monotonicNow()); e != nil {
			if f.onComplete && d&declareOnComplete != 0 {
				x.OnComplete(f.completeFn)
			}
			f.replay(x, e, nil)
			f.memoHit()
			if d&declareNoResponse != 0 {
				return true, nil, nil
			}
			if f.initFeatures.Load()&featureBufferResponse != 0 {
				x.BufferResponse = true
			}
			p := newPending(f, x, w)
			p.reqCtx = e.reqCtx
			return true, p, nil
		}
	}
	inst, err := f.pool.get(x.Request.Context())
	if err != nil {
		if errors.Is(err, errPoolTimeout) {
			f.metrics.failed(f.name, "busy")
			x.Log().Warn("plugin busy: no free instance", "filter", f.name, "wait", f.spec.PoolTimeout)
			if f.spec.OnError == "allow" {
				return true, nil, nil
			}
			w.Header().Set("Retry-After", "1")
			problem.Error(w, http.StatusServiceUnavailable, fmt.Sprintf("filter %q is busy", f.name))
			return false, nil, nil
		}
		return f.failed(x, err)
	}
	// The call's state lives in the pending response phase: one
	// allocation for both. A guest without a response phase has its state
	// in the instance, which it holds until the call's results are read.
	var p *pending
	var s *callState
	if d&declareNoResponse != 0 {
		s = &inst.spare
		*s = callState{f: f, x: x, w: w}
	} else {
		p = newPending(f, x, w)
		s = &p.s
	}
	if f.onComplete && d&declareOnComplete != 0 {
		x.OnComplete(f.completeFn)
	}
	if f.initFeatures.Load()&featureBufferResponse != 0 {
		x.BufferResponse = true
	}
	if memoizable {
		s.rec = &recording{}
	}
	ctxNext, err := f.call(inst, s, inst.handleRequest)
	if s.reqBody != nil {
		s.applyRequestBody()
	}
	if s.rec != nil {
		if err == nil && uint32(ctxNext)&1 == 1 && len(s.answerBody) == 0 {
			s.rec.reqCtx = uint32(ctxNext >> 32)
			f.memo.store(x.Request.Header, x.Request.Host, s.rec, monotonicNow())
		}
		s.rec = nil
	}
	if err != nil {
		f.pool.put(inst)
		return f.failed(x, err)
	}
	// What the call left in s is read before the instance goes back.
	status, body := s.status, s.answerBody
	if uint32(ctxNext)&1 == 0 { // the guest answered
		f.pool.put(inst)
		if status == 0 {
			status = http.StatusOK
		}
		if len(body) > 0 {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return false, nil, nil
	}
	if len(body) > 0 {
		// A body written before calling next begins the response, as in
		// http-wasm's reference host: the response is held whole so it
		// can be put in front and the length counted again.
		x.BufferResponse = true
	}
	switch {
	case d&declareNoResponse != 0:
		f.pool.put(inst)
		if len(body) > 0 {
			p := newPending(f, x, w)
			p.prefix, p.skipGuest = body, true
			return true, p, nil
		}
		return true, nil, nil
	case d&declareStateless != 0:
		f.pool.put(inst) // handle_response may run on any instance
	default:
		p.inst = inst
	}
	p.reqCtx = uint32(ctxNext >> 32)
	if len(body) > 0 {
		p.prefix = body
	}
	return true, p, nil
}

// failed applies on_error to a plugin failure.
func (f *Filter) failed(x *exchange.Exchange, err error) (bool, filter.Pending, error) {
	if f.spec.OnError == "allow" {
		x.Log().Warn("plugin failed; skipped (on_error = allow)", "filter", f.name, "error", err)
		return true, nil, nil
	}
	return false, nil, err
}

type pending struct {
	f      *Filter
	s      callState
	inst   *instance // nil when the guest declared itself stateless
	reqCtx uint32
	// prefix is a response body the guest wrote before calling next.
	prefix []byte
	// skipGuest: the guest has no response phase (declareNoResponse);
	// only the prefix is applied.
	skipGuest bool
}

// pendings recycles pending: filter.Pending's contract (released
// exactly once, not used after) lets Release put one back.
var pendings = sync.Pool{New: func() any { return new(pending) }}

// newPending is a hold of f on exchange x, between its two phases.
func newPending(f *Filter, x *exchange.Exchange, w http.ResponseWriter) *pending {
	p := pendings.Get().(*pending)
	p.f, p.s = f, callState{f: f, x: x, w: w}
	return p
}

// Response runs handle_response. See filter.Pending.
func (p *pending) Response(x *exchange.Exchange, r *filter.Response) error {
	if p.prefix != nil && r.Buffered {
		r.Body = append(p.prefix, r.Body...)
	}
	if p.skipGuest {
		return nil
	}
	f := p.f
	inst := p.inst
	// A stateless guest's response phase may be memoized, except for an
	// error response (is_error is not part of the key).
	memoizable := inst == nil && !r.Error && f.declared.Load()&declareMemoizable != 0
	if memoizable {
		if e := f.respMemo.lookup(r.Header, "", monotonicNow()); e != nil {
			f.replay(x, e, r.Header)
			f.memoHit()
			return nil
		}
	}
	if inst == nil {
		var err error
		if inst, err = f.pool.get(x.Request.Context()); err != nil {
			_, _, err = f.failed(x, err)
			return err
		}
		defer f.pool.put(inst)
	}
	p.s.resp, p.s.w = r, nil
	isError := uint64(0)
	if r.Error {
		isError = 1
	}
	if memoizable {
		p.s.rec = &recording{}
	}
	_, err := f.call(inst, &p.s, inst.handleResponse, uint64(p.reqCtx), isError)
	if p.s.rec != nil {
		if err == nil {
			f.respMemo.store(r.Header, "", p.s.rec, monotonicNow())
		}
		p.s.rec = nil
	}
	if err != nil {
		_, _, err = f.failed(x, err)
		return err
	}
	return nil
}

// memoHit counts a phase the host answered from the memo.
func (f *Filter) memoHit() {
	if f.memoHits != nil {
		f.memoHits.Inc()
	}
}

// Release returns a pinned instance to the pool, and p to pendings.
func (p *pending) Release() {
	if p.inst != nil {
		p.f.pool.put(p.inst)
	}
	*p = pending{}
	pendings.Put(p)
}

// initFuel is the fuel of an instance's initialisation: a Go guest's
// runtime start-up is far more work than a handler's call.
func (f *Filter) initFuel() int64 {
	const initFuelFactor = 50
	if f.spec.Limits.Fuel > math.MaxInt64/initFuelFactor {
		return math.MaxInt64
	}
	return initFuelFactor * f.spec.Limits.Fuel
}
