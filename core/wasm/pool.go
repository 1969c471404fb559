package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/lintelhq/lintel/core/filter"
	"github.com/lintelhq/lintel/core/wasm/meter"
)

// instance is one instantiated guest.
type instance struct {
	mod            api.Module
	handleRequest  api.Function
	handleResponse api.Function
	onComplete     api.Function      // nil unless exported
	housekeep      api.Function      // nil unless exported
	fuel, depth    api.MutableGlobal // the meter's budgets (package meter)
	stderr         *headBuffer       // what the guest wrote to stderr in its last call
	deadline       *callDeadline     // of the call in progress, for sleeps
	uses           int
	broken         bool // trapped, timed out or misbehaved: never reused
	recycle        bool // handed to the worker to be closed
	ctx            stateContext
	values         headerValues // the values it last set, by header
	stack          [2]uint64    // params and results of calls into the guest
	idleRound      uint64       // the pool's reap round when it went idle
	// The state of a call that ends with it (a completion, the request
	// phase of a guest without a response phase), for whoever holds the
	// instance.
	spare     callState
	spareResp filter.Response
}

// pool bounds a filter's instances and makes them off the request path.
//
// A request takes the idle instance used last (its memory and code are
// the likeliest to be in the CPU's caches, and under a steady load the
// instances a burst added stay idle long enough to be closed), or waits
// for one up to pool_timeout.
// When it has waited spawnWait, it asks the pool's worker for one more;
// the worker makes instances one at a time, outside any request, up to
// the pool's cap. A guest that declared it keeps nothing between phases
// holds its instance only while its code runs, so it is capped at what
// can run at once: cpuInstances, plus the instances waiting in a host call
// (shared state, an outbound call, a sleep), at most max_instances. A
// pinned guest, held across the upstream call, may have max_instances.
//
// An instance goes back to the pool after its request unless it is
// broken, has served max_requests, or its memory grew above
// recycle_memory; then the worker closes it, and replaces it if the pool
// is below min_instances. Every housekeepEvery requests an instance whose
// guest exports lintel_housekeep (the Go SDK: a garbage collection) is
// handed to the worker, which runs it before the instance serves again.
// The worker also closes instances idle for idleTimeout, down to
// min_instances. There is no sync.Pool and no finalizer: every instance is
// closed explicitly.
type pool struct {
	f      *Filter
	slots  chan struct{}  // one token per live instance
	more   chan struct{}  // a request waited: make one more instance
	chores chan *instance // to close, or to housekeep and return

	waiting atomic.Int32 // instances inside a host call that waits
	// round counts the worker's reaps, so that an instance going idle is
	// stamped without reading the clock.
	round atomic.Uint64

	mu      sync.Mutex
	idle    []*instance   // a stack: the one used last on top
	waiters int           // requests waiting in get
	freed   chan struct{} // an instance went idle while requests waited
	closed  bool
	live    int
	stop    chan struct{} // ends the worker
	done    chan struct{} // closed by the worker when it ends
}

const (
	// idleTimeout is about how long an instance may sit unused before the
	// worker closes it, down to min_instances: a burst's instances do not
	// stay. The worker reaps every idleTimeout/idleRounds and closes what
	// has been idle for idleRounds whole rounds: from idleTimeout to one
	// round more.
	idleTimeout = 30 * time.Second
	idleRounds  = 3
	// spawnWait is how long a request waits for a busy instance to come
	// back before it asks for a new one. A call takes microseconds;
	// making an instance of a Go guest takes milliseconds and megabytes.
	spawnWait = 2 * time.Millisecond
	// housekeepEvery is how many requests an instance serves between two
	// calls of its lintel_housekeep.
	housekeepEvery = 2000
	// initTimeout is the least time an instance's initialisation may
	// wait in host calls.
	initTimeout = 10 * time.Second
)

// cpuInstances is how many instances of a stateless guest can run at
// once: one per core, and as many again to cover the moments between
// calls.
var cpuInstances = 2 * runtime.GOMAXPROCS(0)

var (
	errPoolTimeout = errors.New("no free plugin instance")
	errPoolClosed  = errors.New("plugin is closed")
)

func newPool(f *Filter) *pool {
	p := &pool{
		f:      f,
		freed:  make(chan struct{}, f.spec.MaxInstances),
		slots:  make(chan struct{}, f.spec.MaxInstances),
		more:   make(chan struct{}, 1),
		chores: make(chan *instance, f.spec.MaxInstances),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go p.work(idleTimeout / idleRounds)
	return p
}

// warm creates n instances now, so a plugin whose initialisation fails is
// refused at load.
func (p *pool) warm(n int) error {
	if n < 1 {
		n = 1 // always prove one instance can be made
	}
	var made []*instance
	for range n {
		p.slots <- struct{}{}
		inst, err := p.create()
		if err != nil {
			<-p.slots
			for _, i := range made {
				p.release(i)
			}
			return err
		}
		made = append(made, inst)
	}
	for _, i := range made {
		p.release(i)
	}
	return nil
}

// get returns a free instance, waiting for one up to pool_timeout or
// ctx, and asking the worker for another while it waits.
func (p *pool) get(ctx context.Context) (*instance, error) {
	p.mu.Lock()
	if inst := p.popLocked(); inst != nil || p.closed {
		p.mu.Unlock()
		if inst == nil {
			return nil, errPoolClosed
		}
		return inst, nil
	}
	p.waiters++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.waiters--
		p.mu.Unlock()
	}()
	p.f.metrics.waited(p.f.name)
	timeout := time.NewTimer(p.f.spec.PoolTimeout.D())
	defer timeout.Stop()
	grace := time.NewTicker(spawnWait)
	defer grace.Stop()
	for {
		select {
		case <-p.freed:
			p.mu.Lock()
			inst := p.popLocked()
			p.mu.Unlock()
			if inst != nil {
				return inst, nil
			}
		case <-grace.C:
			p.mu.Lock()
			inst := p.popLocked() // should a signal have been missed
			p.mu.Unlock()
			if inst != nil {
				return inst, nil
			}
			select {
			case p.more <- struct{}{}:
			default: // already asked
			}
		case <-timeout.C:
			return nil, errPoolTimeout
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// popLocked takes the instance on top of the idle stack, or nil.
func (p *pool) popLocked() *instance {
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	inst := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	return inst
}

// limit is how many instances the pool may have now.
func (p *pool) limit() int {
	most := p.f.spec.MaxInstances
	if p.f.declared.Load()&(declareStateless|declareNoResponse|declareNoRequest) == 0 {
		return most // pinned across the upstream call
	}
	return min(most, cpuInstances+int(p.waiting.Load()))
}

// put returns an instance after a request.
func (p *pool) put(inst *instance) {
	inst.uses++
	recycle := inst.broken || inst.uses >= p.f.spec.MaxRequests ||
		inst.mod.Memory().Size() > uint32(p.f.spec.RecycleMemory)
	chore := recycle || (inst.housekeep != nil && inst.uses%housekeepEvery == 0)
	if !chore {
		p.release(inst)
		return
	}
	p.mu.Lock()
	closed := p.closed
	if !closed {
		inst.recycle = recycle
		p.chores <- inst // never blocks: chores holds max_instances
	}
	p.mu.Unlock()
	if closed {
		p.destroy(inst)
	}
}

// release makes an instance idle, or closes it once the pool is closed.
func (p *pool) release(inst *instance) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.destroy(inst)
		return
	}
	inst.idleRound = p.round.Load()
	p.idle = append(p.idle, inst)
	waiters := p.waiters > 0
	p.mu.Unlock()
	if waiters {
		select {
		case p.freed <- struct{}{}:
		default: // as many signals pending as instances: enough
		}
	}
}

// work is the pool's worker: it makes the instances requests ask for,
// does the chores put hands it, and closes instances idle too long.
func (p *pool) work(reapEvery time.Duration) {
	defer close(p.done)
	reap := time.NewTicker(reapEvery)
	defer reap.Stop()
	for {
		select {
		case <-p.stop:
			for {
				select {
				case inst := <-p.chores:
					p.destroy(inst)
				default:
					return
				}
			}
		case inst := <-p.chores:
			p.chore(inst)
		case <-p.more:
			p.grow()
		case <-reap.C:
			// Went idle in round r - idleRounds - 1 or before: idle for
			// at least idleRounds whole rounds.
			if r := p.round.Add(1); r > idleRounds {
				p.reapIdle(r - idleRounds - 1)
			}
		}
	}
}

// grow makes one instance, if the pool is below its limit.
func (p *pool) grow() {
	if live, _ := p.stats(); live >= p.limit() {
		return
	}
	select {
	case p.slots <- struct{}{}:
	default:
		return
	}
	inst, err := p.create()
	if err != nil {
		<-p.slots
		p.f.log.Warn("plugin instance could not be made", "error", err)
		return
	}
	p.release(inst)
}

// chore closes an instance due for recycling (replacing it up to
// min_instances), or runs its housekeeping and returns it.
func (p *pool) chore(inst *instance) {
	if !inst.recycle {
		s := &callState{f: p.f}
		if _, err := p.f.callWith(inst, s, inst.housekeep, p.f.initFuel()); err == nil {
			p.release(inst)
			return
		}
		p.f.log.Warn("plugin housekeeping failed; instance closed", "error", inst.stderr.explain(errors.New("lintel_housekeep failed")))
	}
	p.destroy(inst)
	if live, _ := p.stats(); live < p.f.spec.MinInstances {
		p.grow()
	}
}

// reapIdle closes instances idle since round before or earlier, keeping
// min_instances. Those are at the bottom of the idle stack.
func (p *pool) reapIdle(before uint64) {
	p.mu.Lock()
	n := 0
	for n < len(p.idle) && p.idle[n].idleRound <= before && p.live-n > p.f.spec.MinInstances {
		n++
	}
	reaped := slices.Clone(p.idle[:n])
	p.idle = append(p.idle[:0], p.idle[n:]...)
	p.mu.Unlock()
	for _, inst := range reaped {
		p.destroy(inst)
	}
}

func (p *pool) destroy(inst *instance) {
	_ = inst.mod.Close(context.Background())
	<-p.slots
	p.mu.Lock()
	p.live--
	last := p.closed && p.live == 0
	p.mu.Unlock()
	if last {
		p.f.closeRuntime()
	}
}

// create instantiates the module and runs its _initialize.
func (p *pool) create() (*instance, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errPoolClosed
	}
	p.live++
	p.mu.Unlock()

	f := p.f
	stderr := &headBuffer{max: 2048}
	deadline := &callDeadline{waiting: &p.waiting}
	cfg := wazero.NewModuleConfig().
		WithStderr(stderr).
		WithName(""). // anonymous: many instances of one module
		WithStartFunctions().
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(deadline.sleep).
		WithRandSource(rand.Reader)
	// Initialisation gets more fuel (the module starts with it) and
	// time for its waits than a request's call: a Go guest's runtime
	// start-up is far more work than a handler.
	initDeadline := monotonicNow().Add(max(10*f.spec.Timeout.D(), initTimeout))
	deadline.set(initDeadline)
	ctx := &stateContext{Context: experimental.WithMemoryAllocator(context.Background(), memoryAllocator), s: &callState{f: f, deadline: initDeadline}}
	var inst *instance
	mod, err := f.rt.InstantiateModule(ctx, f.compiled, cfg)
	if err == nil {
		inst = &instance{
			mod:            mod,
			fuel:           mod.ExportedGlobal(meter.FuelExport).(api.MutableGlobal),
			depth:          mod.ExportedGlobal(meter.DepthExport).(api.MutableGlobal),
			handleRequest:  mod.ExportedFunction(exportHandleRequest),
			handleResponse: mod.ExportedFunction(exportHandleResponse),
			onComplete:     mod.ExportedFunction(exportOnComplete),
			housekeep:      mod.ExportedFunction(exportHousekeep),
			stderr:         stderr,
			deadline:       deadline,
		}
		// A reactor initialises with _initialize; a command module (TinyGo
		// guests built for Traefik) with _start, whose main registers the
		// handlers and returns.
		init := mod.ExportedFunction(exportInitialize)
		if init == nil {
			init = mod.ExportedFunction(exportStart)
		}
		if init != nil {
			inst.fuel.Set(uint64(f.initFuel()))
			if _, err = init.Call(ctx); err == nil && mod.IsClosed() {
				err = errors.New("the module exited during initialisation")
			}
		}
	}
	if err != nil {
		if inst != nil {
			err, _ = inst.callError(err)
			_ = mod.Close(context.Background())
		} else {
			err, _ = callError(err)
		}
		p.mu.Lock()
		p.live--
		p.mu.Unlock()
		p.f.metrics.failed(p.f.name, "init")
		return nil, fmt.Errorf("instantiating: %w", stderr.explain(err))
	}
	return inst, nil
}

// close stops handing out instances and closes the idle ones; instances in
// use are closed when they come back, and the runtime with the last.
func (p *pool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	<-p.done // the worker has closed the instances handed to it
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, inst := range idle {
		p.destroy(inst)
	}
	p.mu.Lock()
	none := p.live == 0
	p.mu.Unlock()
	if none {
		p.f.closeRuntime()
	}
}

// headBuffer keeps the first bytes a guest writes to standard error (a Go
// guest's panic message), for the error that explains why it failed. It
// is used by whoever holds the instance, during and right after a call:
// the pool's handover orders those uses, so it needs no lock.
type headBuffer struct {
	b   []byte
	max int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := h.max - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

// reset forgets what was written, before a call.
func (h *headBuffer) reset() { h.b = h.b[:0] }

// explain adds to err the first line the guest wrote to stderr, which
// says why it failed (a Go guest's "panic: ..."; the rest is its stack).
func (h *headBuffer) explain(err error) error {
	out, _, _ := strings.Cut(strings.TrimSpace(string(h.b)), "\n")
	if out == "" {
		return err
	}
	return fmt.Errorf("%w: %s", err, out)
}

// stats reports instances alive and idle.
func (p *pool) stats() (live, idle int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live, len(p.idle)
}
