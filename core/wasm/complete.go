package wasm

import (
	"context"
	"sync"
	"time"

	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/filter"
	"github.com/lintelhq/lintel/core/tracing"
)

// A guest that declared declareBatchComplete has its lintel_on_complete
// calls made in batches, after the requests' handlers returned: up to
// completeBatch completions back to back on one instance, whichever
// request completes the batch making them, or completeDelay after the
// first one waited. A call into a guest costs several times more when its
// code and memory have left the CPU's caches, as they have when every
// request runs between two calls of a filter; in a batch all but the
// first find them there. What such a completion may read is what stays
// valid once the handler returned: the request's properties (final) and
// headers. The response's headers belong to the server by then. A traced
// request's completion is not batched: its span belongs in the request's
// trace, which has ended by the time a batch is made.
const (
	completeBatch = 16
	completeDelay = 20 * time.Millisecond
)

// completions are the exchanges waiting for a batched lintel_on_complete.
type completions struct {
	delay  time.Duration // completeDelay; tests change it
	mu     sync.Mutex
	queue  []*exchange.Exchange
	timer  *time.Timer
	closed bool // the filter closed: completions run at once
}

// complete calls lintel_on_complete once the response is complete, or,
// for a guest that declared declareBatchComplete, queues it.
func (f *Filter) complete(x *exchange.Exchange) {
	if f.declared.Load()&declareBatchComplete == 0 || x.TraceID != "" {
		// A traced request's completion is made at once, so that its
		// span is in the request's trace.
		f.completeNow([]*exchange.Exchange{x}, false)
		return
	}
	c := &f.completions
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		f.completeNow([]*exchange.Exchange{x}, false)
		return
	}
	if c.queue == nil {
		c.queue = make([]*exchange.Exchange, 0, completeBatch)
	}
	c.queue = append(c.queue, x)
	switch len(c.queue) {
	case 1:
		if c.timer == nil {
			c.timer = time.AfterFunc(c.delay, f.flushCompletions)
		} else {
			c.timer.Reset(c.delay)
		}
	case completeBatch:
		c.timer.Stop()
		c.mu.Unlock()
		f.flushCompletions()
		return
	}
	c.mu.Unlock()
}

// flushCompletions makes the queued completions' calls now: when a
// batch is full, when its first has waited completeDelay, and when the
// filter closes.
func (f *Filter) flushCompletions() {
	c := &f.completions
	c.mu.Lock()
	batch := c.queue
	c.queue = nil
	c.mu.Unlock()
	if len(batch) > 0 {
		f.completeNow(batch, true)
	}
}

// closeCompletions makes the queued calls, and from then on each
// completion's at once.
func (f *Filter) closeCompletions() {
	c := &f.completions
	c.mu.Lock()
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	f.flushCompletions()
}

// completeNow calls lintel_on_complete for each exchange, in order, on
// one instance (another after a call that failed). batched: the
// exchanges' handlers may have returned, so the call gets no response
// headers.
func (f *Filter) completeNow(xs []*exchange.Exchange, batched bool) {
	var inst *instance
	defer func() {
		if inst != nil {
			f.pool.put(inst)
		}
	}()
	for _, x := range xs {
		if inst == nil {
			ctx := context.Background()
			if !batched {
				ctx = x.Request.Context()
			}
			var err error
			if inst, err = f.pool.get(ctx); err != nil {
				f.log.Warn("plugin completion skipped", "error", err, "request_id", x.RequestID)
				continue
			}
		}
		if f.completeOne(inst, x, batched) != nil {
			f.pool.put(inst) // broken: closed, not reused
			inst = nil
		}
	}
}

// completeOne is one lintel_on_complete call on inst.
func (f *Filter) completeOne(inst *instance, x *exchange.Exchange, batched bool) error {
	if x.TraceID != "" {
		if span := tracing.Phase(x.Request.Context(), f.name, "complete"); span != nil {
			defer span.End()
		}
	}
	// The response as sent, to read: a completion changes nothing. The
	// call's state lives in the instance, held until the call returns.
	inst.spareResp = filter.Response{Status: x.Status, Header: x.ResponseHeader}
	if batched {
		inst.spareResp.Header = nil
	}
	s := &inst.spare
	*s = callState{f: f, x: x, complete: true, batched: batched, resp: &inst.spareResp}
	_, err := f.call(inst, s, inst.onComplete)
	if err != nil {
		f.log.Error("filter failed", "phase", "complete", "error", err, "request_id", x.RequestID)
	}
	return err
}
