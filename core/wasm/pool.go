package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/lintelhq/lintel/core/wasm/meter"
)

// instance is one instantiated guest.
type instance struct {
	mod            api.Module
	handleRequest  api.Function
	handleResponse api.Function
	onComplete     api.Function      // nil unless exported
	fuel, depth    api.MutableGlobal // the meter's budgets (package meter)
	stderr         *headBuffer       // what the guest wrote to stderr in its last call
	deadline       *callDeadline     // of the call in progress, for sleeps
	uses           int
	broken         bool // trapped, timed out or misbehaved: never reused
	ctx            stateContext
	stack          [2]uint64 // params and results of calls into the guest
	idleSince      time.Time
}

// pool bounds a filter's instances. Instances are created on demand up to
// max_instances; a request that finds none free waits up to pool_timeout.
// An instance returns to the pool after its request unless it is broken,
// has served max_requests, or its memory grew above recycle_memory; then
// it is closed. There is no sync.Pool and no finalizer: every instance is
// closed explicitly, by put or by close.
type pool struct {
	f     *Filter
	idle  chan *instance
	slots chan struct{} // one token per live instance

	mu     sync.Mutex
	closed bool
	live   int
	stop   chan struct{} // ends the reaper
}

// idleTimeout is how long an instance may sit unused before the reaper
// closes it, down to min_instances: a burst's instances do not stay.
const idleTimeout = 30 * time.Second

var errPoolTimeout = errors.New("no free plugin instance")

// initTimeout is the least time an instance gets to initialise.
const initTimeout = 10 * time.Second

func newPool(f *Filter) *pool {
	p := &pool{
		f:     f,
		idle:  make(chan *instance, f.spec.MaxInstances),
		slots: make(chan struct{}, f.spec.MaxInstances),
		stop:  make(chan struct{}),
	}
	go p.reap(idleTimeout / 3)
	return p
}

// reap closes instances idle for longer than idleTimeout, keeping
// min_instances.
func (p *pool) reap(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.reapIdle(time.Now().Add(-idleTimeout))
		}
	}
}

func (p *pool) reapIdle(before time.Time) {
	for range len(p.idle) {
		var inst *instance
		select {
		case inst = <-p.idle:
		default:
			return
		}
		if live, _ := p.stats(); inst.idleSince.Before(before) && live > p.f.spec.MinInstances {
			p.destroy(inst)
			continue
		}
		p.idle <- inst
	}
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
				p.put(i)
			}
			return err
		}
		made = append(made, inst)
	}
	for _, i := range made {
		p.put(i)
	}
	return nil
}

// spawnWait is how long a request waits for a busy instance to come back
// before a new one is made. A call takes microseconds; making an instance
// of a Go guest takes milliseconds and megabytes, so a burst should not
// grow the pool to its maximum.
const spawnWait = 2 * time.Millisecond

// get returns a free instance, creating one if the pool has room and none
// came back within spawnWait, else waiting for one up to pool_timeout or
// ctx.
func (p *pool) get(ctx context.Context) (*instance, error) {
	select {
	case inst := <-p.idle:
		return inst, nil
	default:
	}
	p.f.metrics.waited(p.f.name)
	if live, _ := p.stats(); live >= p.f.spec.MinInstances {
		grace := time.NewTimer(spawnWait)
		select {
		case inst := <-p.idle:
			grace.Stop()
			return inst, nil
		case <-grace.C:
		case <-ctx.Done():
			grace.Stop()
			return nil, ctx.Err()
		}
	}
	timer := time.NewTimer(p.f.spec.PoolTimeout.D())
	defer timer.Stop()
	select {
	case inst := <-p.idle:
		return inst, nil
	case p.slots <- struct{}{}:
		inst, err := p.create()
		if err != nil {
			<-p.slots
			return nil, err
		}
		return inst, nil
	case <-timer.C:
		return nil, errPoolTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// put returns an instance after a request.
func (p *pool) put(inst *instance) {
	inst.uses++
	recycle := inst.broken || inst.uses >= p.f.spec.MaxRequests ||
		inst.mod.Memory().Size() > uint32(p.f.spec.RecycleMemory)
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if !recycle && !closed {
		inst.idleSince = time.Now()
		p.idle <- inst // never blocks: idle holds max_instances
		return
	}
	p.destroy(inst)
}

func (p *pool) destroy(inst *instance) {
	_ = inst.mod.Close(context.Background())
	<-p.slots
	p.mu.Lock()
	p.live--
	last := p.closed && p.live == 0
	p.mu.Unlock()
	if last {
		_ = p.f.rt.Close(context.Background())
	}
}

// create instantiates the module and runs its _initialize.
func (p *pool) create() (*instance, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("plugin is closed")
	}
	p.live++
	p.mu.Unlock()

	f := p.f
	stderr := &headBuffer{max: 2048}
	deadline := new(callDeadline)
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
	initDeadline := time.Now().Add(max(10*f.spec.Timeout.D(), initTimeout))
	deadline.set(initDeadline)
	ctx := &stateContext{Context: context.Background(), s: &callState{f: f, deadline: initDeadline}}
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
			inst.depth.Set(uint64(f.spec.Limits.CallDepth))
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
	for {
		select {
		case inst := <-p.idle:
			p.destroy(inst)
		default:
			p.mu.Lock()
			none := p.live == 0
			p.mu.Unlock()
			if none {
				_ = p.f.rt.Close(context.Background())
			}
			return
		}
	}
}

// headBuffer keeps the first bytes a guest writes to standard error (a Go
// guest's panic message), for the error that explains why it failed.
type headBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := h.max - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

// reset forgets what was written, before a call.
func (h *headBuffer) reset() {
	h.mu.Lock()
	h.b = h.b[:0]
	h.mu.Unlock()
}

// explain adds to err the first line the guest wrote to stderr, which
// says why it failed (a Go guest's "panic: ..."; the rest is its stack).
func (h *headBuffer) explain(err error) error {
	h.mu.Lock()
	out, _, _ := strings.Cut(strings.TrimSpace(string(h.b)), "\n")
	h.mu.Unlock()
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
