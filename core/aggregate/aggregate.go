// Package aggregate answers one client request by calling several upstream
// services in parallel and merging their JSON bodies into one object.
//
// Each part has a key, a request template (Request: a path, a query,
// headers), a timeout and a service. A part may use fields of other parts'
// answers in its request: it then waits for them, while the parts that
// wait for nothing run at once, so the latency is the critical path's. A
// part
// fails when its upstream is unreachable, times out, answers other than
// 2xx, or sends a body that is not JSON or exceeds the size cap. A required
// part's failure fails the whole response (502, or 504 for a timeout, as
// problem JSON naming the part) and cancels the other parts. An optional
// part's failure leaves null under its key, and the response says it is
// incomplete: X-Lintel-Complete: false, X-Lintel-Missing listing the keys,
// and Cache-Control: no-store so no cache keeps the partial answer.
package aggregate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/problem"
	"github.com/lintelhq/lintel/core/router"
	"github.com/lintelhq/lintel/core/tracing"
)

// Headers the response carries to signal a partial result.
const (
	HeaderComplete = "X-Lintel-Complete"
	HeaderMissing  = "X-Lintel-Missing"
)

// Aggregate is one aggregate route, ready to serve.
type Aggregate struct {
	Timeout time.Duration
	// ForwardHeaders are copied from the client request to every part;
	// X-Request-Id and the X-Forwarded-* headers always are.
	ForwardHeaders []string
	MaxPartBody    int64
	Parts          []*Part
}

// Part is one upstream call of an aggregate.
type Part struct {
	Key     string
	Backend http.RoundTripper
	// Request is the GET the part sends to Backend.
	Request *Request
	// Call, when set, produces the part's JSON instead of a GET of Path
	// on Backend (a gRPC method).
	Call     func(ctx context.Context, x *exchange.Exchange, ps router.Params) ([]byte, error)
	Timeout  time.Duration
	Optional bool
	Shape    Shape
}

// result is what one part produced.
type result struct {
	body    []byte // JSON, shaped
	raw     []byte // JSON as answered, for the parts that use its fields
	err     error
	timeout bool
}

// Serve fans the request out and writes the merged response.
func (a *Aggregate) Serve(x *exchange.Exchange, w http.ResponseWriter, ps router.Params) {
	ctx, cancel := context.WithTimeout(x.Request.Context(), a.Timeout)
	defer cancel()

	results := make([]result, len(a.Parts))
	// done[i] closes once results[i] is written, for the parts that wait
	// on part i; only an aggregate with chained parts needs them.
	var done []chan struct{}
	if a.chained() {
		done = make([]chan struct{}, len(a.Parts))
		for i := range done {
			done[i] = make(chan struct{})
		}
	}
	var wg sync.WaitGroup
	for i, p := range a.Parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if done != nil {
				defer close(done[i])
			}
			if err := a.waitNeeds(ctx, p, done, results); err != nil {
				results[i] = failure(ctx, err)
			} else {
				results[i] = a.fetch(ctx, x, p, ps, results)
			}
			if results[i].err != nil && !p.Optional {
				cancel() // the response has failed: stop the others
			}
		}()
	}
	wg.Wait()

	if x.Request.Context().Err() != nil {
		x.Log().Debug("client went away during aggregation")
		w.WriteHeader(exchange.StatusClientClosed)
		return
	}

	// The first required part that failed by itself (not by being
	// cancelled after another failed) names the failure.
	var failed *Part
	var failedRes result
	for i, p := range a.Parts {
		r := results[i]
		if r.err == nil {
			continue
		}
		x.FailedParts = append(x.FailedParts, p.Key)
		cancelled := errors.Is(r.err, context.Canceled)
		if !cancelled {
			x.Log().Warn("aggregation part failed", "part", p.Key, "optional", p.Optional, "error", r.err)
		}
		if !p.Optional && (failed == nil || errors.Is(failedRes.err, context.Canceled) && !cancelled) {
			failed, failedRes = p, r
		}
	}
	if failed != nil {
		x.AnsweredBy = exchange.ForFailedTarget
		status, what := http.StatusBadGateway, "failed"
		if failedRes.timeout {
			status, what = http.StatusGatewayTimeout, "timed out"
		}
		problem.Write(w, problem.Details{Status: status, Detail: fmt.Sprintf("required part %q %s", failed.Key, what), Part: failed.Key})
		return
	}

	body := merge(a.Parts, results)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if len(x.FailedParts) > 0 {
		h.Set(HeaderComplete, "false")
		h.Set(HeaderMissing, strings.Join(x.FailedParts, ", "))
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(http.StatusOK)
	if x.Request.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// merge writes {"key": body, ...} in part order, null for failed parts.
func merge(parts []*Part, results []result) []byte {
	n := 2
	for i, p := range parts {
		n += len(p.Key) + 4 + max(len(results[i].body), 4)
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, p := range parts {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, p.Key)
		b = append(b, ':')
		if results[i].err != nil {
			b = append(b, "null"...)
		} else {
			b = append(b, results[i].body...)
		}
	}
	return append(b, '}')
}

// chained reports whether a part waits for another.
func (a *Aggregate) chained() bool {
	for _, p := range a.Parts {
		if p.Request != nil && len(p.Request.Needs) > 0 {
			return true
		}
	}
	return false
}

// waitNeeds waits until the parts p needs have answered; it fails when
// one of them failed or ctx ended first.
func (a *Aggregate) waitNeeds(ctx context.Context, p *Part, done []chan struct{}, results []result) error {
	if p.Request == nil {
		return nil
	}
	for _, n := range p.Request.Needs {
		select {
		case <-done[n]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if results[n].err != nil {
			return fmt.Errorf("needs part %q, which failed", a.Parts[n].Key)
		}
	}
	return nil
}

// fetch calls one part and shapes its body; results holds the answers of
// the parts it needs.
func (a *Aggregate) fetch(ctx context.Context, x *exchange.Exchange, p *Part, ps router.Params, results []result) (res result) {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	var span trace.Span
	if x.TraceID != "" { // traced: no context lookup otherwise
		ctx, span = tracing.Child(ctx, trace.SpanKindInternal, "part", p.Key)
	}
	if span != nil {
		span.SetAttributes(attribute.String("lintel.part", p.Key), attribute.Bool("lintel.part.optional", p.Optional))
		defer func() {
			if res.err != nil {
				span.SetAttributes(attribute.Bool("lintel.part.timed_out", res.timeout))
				tracing.Fail(span, res.err)
			}
			span.End()
		}()
	}
	if p.Call != nil {
		body, err := p.Call(ctx, x, ps)
		if err != nil {
			return failure(ctx, err)
		}
		shaped, err := p.Shape.Apply(body)
		if err != nil {
			return result{err: err}
		}
		return result{body: shaped, raw: body}
	}
	path, rawPath, query, header, err := p.Request.build(ps, results)
	if err != nil {
		return result{err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://upstream", nil)
	if err != nil {
		return result{err: err}
	}
	req.URL.Path, req.URL.RawPath, req.URL.RawQuery = path, rawPath, query
	in := x.Request.Header
	for _, name := range a.ForwardHeaders {
		if v, ok := in[http.CanonicalHeaderKey(name)]; ok {
			req.Header[http.CanonicalHeaderKey(name)] = v
		}
	}
	req.Header.Set("Accept", "application/json")
	for name, v := range header { // the part's own headers win over the client's
		req.Header[name] = v
	}
	x.ForwardHeaders(req.Header)

	resp, err := p.Backend.RoundTrip(req)
	if err != nil {
		return failure(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return result{err: fmt.Errorf("upstream answered %d", resp.StatusCode)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, a.MaxPartBody+1))
	if err != nil {
		return failure(ctx, err)
	}
	if int64(len(body)) > a.MaxPartBody {
		return result{err: fmt.Errorf("body exceeds %d bytes", a.MaxPartBody)}
	}
	body = bytes.TrimSpace(body)
	shaped, err := p.Shape.Apply(body)
	if err != nil {
		return result{err: err}
	}
	return result{body: shaped, raw: body}
}

func failure(ctx context.Context, err error) result {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return result{err: fmt.Errorf("timed out: %w", err), timeout: true}
	}
	return result{err: err}
}
