package filter

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/problem"
	"github.com/lintelhq/lintel/core/tracing"
)

var (
	_ http.ResponseWriter = (*hookWriter)(nil)
	_ http.Flusher        = (*hookWriter)(nil)
	_ http.Hijacker       = (*hookWriter)(nil)
)

// MaxBufferedResponse caps a body held for a filter that set
// BufferResponse; a larger response becomes a 502.
const MaxBufferedResponse = 16 << 20

// Handler is what a chain wraps: the router, a proxy, an aggregate.
type Handler func(x *exchange.Exchange, w http.ResponseWriter)

// Chain is an ordered list of filters.
type Chain []Filter

// Serve runs the request phase of each filter in order, then next, then
// the response phase of each filter that passed the request on, in reverse
// order, when the response head is written.
func (c Chain) Serve(x *exchange.Exchange, w http.ResponseWriter, next Handler) {
	if len(c) == 0 {
		next(x, w)
		return
	}
	hw := &hookWriter{w: w, x: x, pending: make([]pendingFilter, 0, len(c))}
	defer hw.releaseAll()

	for _, f := range c {
		hw.buffer = x.BufferResponse
		ok, p, err := callRequest(f, x, hw)
		if err != nil {
			if p != nil {
				p.Release()
			}
			x.Log().Error("filter failed", "filter", f.Name(), "phase", "request", "error", err)
			x.AnsweredBy = exchange.ByGateway
			if !hw.wroteHeader {
				problem.Error(hw, http.StatusInternalServerError, fmt.Sprintf("filter %q failed", f.Name()))
			}
			hw.finish()
			return
		}
		if !ok {
			if p != nil {
				p.Release()
			}
			x.AnsweredBy = exchange.ByFilter
			hw.finish()
			return
		}
		if p != nil {
			hw.pending = append(hw.pending, pendingFilter{f.Name(), p})
		}
	}
	hw.buffer = x.BufferResponse
	next(x, hw)
	hw.finish()
}

// callRequest turns a filter's panic into its error: a filter bug costs
// one request, never the process.
func callRequest(f Filter, x *exchange.Exchange, w http.ResponseWriter) (ok bool, p Pending, err error) {
	var span trace.Span
	if x.TraceID != "" { // traced: no context lookup otherwise
		span = tracing.Phase(x.Request.Context(), f.Name(), "request")
	}
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			ok, err = false, fmt.Errorf("panic: %v", r)
		}
		if span != nil {
			endPhase(span, err, !ok)
		}
	}()
	return f.Request(x, w)
}

// endPhase records a filter phase's result on its span and ends it.
func endPhase(span trace.Span, err error, answered bool) {
	switch {
	case err != nil:
		tracing.Fail(span, err)
	case answered:
		span.SetAttributes(attribute.Bool("lintel.filter.answered", true))
	}
	span.End()
}

type pendingFilter struct {
	name string
	p    Pending
}

// hookWriter runs the response phase of the pending filters just before
// the response head reaches w, or, when buffering, after the whole body.
type hookWriter struct {
	w           http.ResponseWriter
	x           *exchange.Exchange
	pending     []pendingFilter
	buffer      bool
	body        []byte
	status      int
	wroteHeader bool // the head was written, by us or to the buffer
	committed   bool // the head reached w
	tooLarge    bool
	discard     bool // the response phase failed and answered 500: drop the body
}

func (h *hookWriter) Header() http.Header { return h.w.Header() }

func (h *hookWriter) WriteHeader(code int) {
	if h.wroteHeader {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		h.w.WriteHeader(code) // informational: passed through, not final
		return
	}
	h.wroteHeader = true
	h.status = code
	if !h.buffer {
		h.commit(nil)
	}
}

func (h *hookWriter) Write(b []byte) (int, error) {
	if !h.wroteHeader {
		h.WriteHeader(http.StatusOK)
	}
	if h.discard {
		return len(b), nil
	}
	if !h.buffer {
		return h.w.Write(b)
	}
	if h.tooLarge {
		return 0, errBufferFull
	}
	if len(h.body)+len(b) > MaxBufferedResponse {
		h.tooLarge = true
		return 0, errBufferFull
	}
	h.body = append(h.body, b...)
	return len(b), nil
}

var errBufferFull = errors.New("response too large to buffer for a filter")

// Flush sends the head (running the response phase) and flushes w. While
// buffering it does nothing: the body is not complete.
func (h *hookWriter) Flush() {
	if h.buffer || h.discard {
		return
	}
	if !h.wroteHeader {
		h.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(h.w).Flush()
}

// Hijack hands the connection over for a protocol switch (a WebSocket
// upgrade). The response phase runs first, with status 101: filters see
// the switch and may add headers to it (the upstream's own 101 headers
// are added after them by the proxy).
func (h *hookWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !h.committed {
		h.wroteHeader, h.committed, h.status = true, true, http.StatusSwitchingProtocols
		r := &Response{Status: h.status, Header: h.w.Header()}
		if err := h.runResponse(r); err != nil {
			return nil, nil, err
		}
	}
	return http.NewResponseController(h.w).Hijack()
}

// Unwrap gives http.ResponseController access to w's other abilities.
func (h *hookWriter) Unwrap() http.ResponseWriter { return h.w }

// finish completes the response after the handler returned.
func (h *hookWriter) finish() {
	if h.committed {
		return
	}
	if !h.wroteHeader {
		h.wroteHeader, h.status = true, http.StatusOK
	}
	if h.tooLarge {
		h.body = nil
		h.runResponse(nil)
		h.x.Log().Error("response too large to buffer for a filter", "limit", MaxBufferedResponse)
		h.committed = true
		problem.Error(h.w, http.StatusBadGateway, "response too large for the gateway's filters")
		return
	}
	h.commit(h.body)
}

// commit runs the response phase and writes the head (and a buffered
// body) to w.
func (h *hookWriter) commit(body []byte) {
	h.committed = true
	r := &Response{Status: h.status, Header: h.w.Header(), Body: body, Buffered: h.buffer, Error: h.x.TargetFailed()}
	if err := h.runResponse(r); err != nil {
		h.discard = true
		clear(r.Header)
		r.Header.Set("X-Request-Id", h.x.RequestID)
		problem.Write(h.w, problem.Details{Status: http.StatusInternalServerError, Detail: err.Error(), RequestID: h.x.RequestID})
		return
	}
	if h.buffer {
		r.Header.Del("Content-Length")
		if r.Status != http.StatusNoContent && r.Status != http.StatusNotModified {
			r.Header.Set("Content-Length", strconv.Itoa(len(r.Body)))
		}
	}
	h.w.WriteHeader(r.Status)
	if h.buffer && len(r.Body) > 0 {
		_, _ = h.w.Write(r.Body)
	}
}

// runResponse runs the pending response phases in reverse order and
// releases each. With r nil it only releases.
func (h *hookWriter) runResponse(r *Response) error {
	var failed error
	for i := len(h.pending) - 1; i >= 0; i-- {
		pf := h.pending[i]
		h.pending = h.pending[:i]
		if r != nil && failed == nil {
			if err := callResponse(pf.name, pf.p, h.x, r); err != nil {
				h.x.Log().Error("filter failed", "filter", pf.name, "phase", "response", "error", err)
				failed = fmt.Errorf("filter %q failed", pf.name)
			}
		}
		pf.p.Release()
	}
	return failed
}

func callResponse(name string, p Pending, x *exchange.Exchange, r *Response) (err error) {
	var span trace.Span
	if x.TraceID != "" {
		span = tracing.Phase(x.Request.Context(), name, "response")
	}
	defer func() {
		if rec := recover(); rec != nil {
			err = fmt.Errorf("panic: %v", rec)
		}
		if span != nil {
			endPhase(span, err, false)
		}
	}()
	return p.Response(x, r)
}

// releaseAll releases holds whose response phase never ran (the handler
// panicked, the connection was hijacked).
func (h *hookWriter) releaseAll() {
	for _, pf := range h.pending {
		pf.p.Release()
	}
	h.pending = nil
}
