package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"

	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/problem"
	"github.com/lintelhq/lintel/internal/stdlog"
)

type reverseProxy = *httputil.ReverseProxy

func newReverseProxy(s *Service) reverseProxy {
	return &httputil.ReverseProxy{
		Transport: s,
		Rewrite:   s.rewrite,
		// FlushInterval stays 0: ReverseProxy flushes every write of a
		// response without Content-Length or of text/event-stream, so
		// streams reach the client as the upstream sends them, and
		// buffers the rest.
		ErrorHandler: s.fail,
		ErrorLog:     stdlog.New(s.log),
		BufferPool:   copyBuffers,
	}
}

// copyBuffers recycles the 32 KiB buffers ReverseProxy copies bodies
// through; without it every request allocates one.
var copyBuffers = &bufferPool{sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return *b.p.Get().(*[]byte) }
func (b *bufferPool) Put(p []byte) { b.p.Put(&p) }

// Forward proxies x.Request to the service with upstream path path (decoded,
// normalised), streaming the response to w. When path is the request's
// own, it is sent with the request's escaping (URL.RawPath), which the
// listener kept only where it spells the normalised path. It sets
// x.Upstream to the target that answered and x.AnsweredBy when the
// gateway had to answer instead: for a failed upstream (502 refused, 504
// timed out), or refusing the request (413 body too large, 400 a body the
// client sent broken).
//
// The upstream receives the client's method, query, headers and body, with
// hop-by-hop headers removed (RFC 9110 7.6.1), Host set to the target's,
// and X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host from x.
func (s *Service) Forward(x *exchange.Exchange, w http.ResponseWriter, path string) {
	ctx := x.Request.Context()
	if d := s.cfg.Timeout.D(); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	f := &forward{x: x, path: path}
	ctx = context.WithValue(ctx, stateKey{}, f)
	s.rp.ServeHTTP(w, x.Request.WithContext(ctx))
	x.Upstream, x.Retries = f.target, f.retries
}

// rewrite shapes the outbound request; see Forward.
func (s *Service) rewrite(pr *httputil.ProxyRequest) {
	f := pr.Out.Context().Value(stateKey{}).(*forward)
	out := pr.Out
	out.URL.Path, out.URL.RawPath = f.path, ""
	if in := f.x.Request.URL; in.Path == f.path {
		// The path routed, as the client (or a filter's set_uri) spelled
		// it: escapes kept ("/a%26b"). The normal form otherwise.
		out.URL.RawPath = in.RawPath
	}
	f.x.ForwardHeaders(out.Header)
}

// fail answers for an upstream that did not.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	f, _ := r.Context().Value(stateKey{}).(*forward)
	if f == nil {
		problem.Error(w, http.StatusBadGateway, fmt.Sprintf("upstream service %q failed", s.Name))
		return
	}
	x := f.x
	var tooBig *http.MaxBytesError
	var badBody *exchange.ClientBodyError
	switch {
	case errors.As(err, &tooBig):
		x.AnsweredBy = exchange.ByGateway
		problem.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit))
	case x.Request.Context().Err() != nil:
		// The client left: nobody reads an answer.
		x.Log().Debug("client went away during upstream call", "service", s.Name)
		w.WriteHeader(exchange.StatusClientClosed)
	case errors.Is(err, errCircuitOpen) || errors.Is(err, errBusy) || errors.Is(err, errNoAddress):
		// The gateway's own refusal, to spare a failing or saturated
		// service: at once, with when to come back.
		x.AnsweredBy = exchange.ByGateway
		retry := 1
		if b := s.cfg.Breaker; b != nil && errors.Is(err, errCircuitOpen) {
			retry = max(1, int(b.OpenFor.D().Seconds()))
		}
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		problem.Error(w, http.StatusServiceUnavailable, fmt.Sprintf("upstream service %q: %v", s.Name, err))
	case errors.As(err, &badBody):
		// The client's fault, not the upstream's: not logged as an
		// upstream failure.
		x.Log().Debug("client request body unreadable", "service", s.Name, "error", badBody.Err)
		x.AnsweredBy = exchange.ByGateway
		problem.Error(w, http.StatusBadRequest, "the request body could not be read: "+badBody.Err.Error())
	case isTimeout(err):
		x.AnsweredBy = exchange.ForFailedTarget
		x.Log().Warn("upstream timed out", "service", s.Name, "target", f.target, "error", err)
		problem.Error(w, http.StatusGatewayTimeout, fmt.Sprintf("upstream service %q timed out", s.Name))
	default:
		x.AnsweredBy = exchange.ForFailedTarget
		x.Log().Warn("upstream failed", "service", s.Name, "target", f.target, "error", err)
		problem.Error(w, http.StatusBadGateway, fmt.Sprintf("upstream service %q is unavailable", s.Name))
	}
}
