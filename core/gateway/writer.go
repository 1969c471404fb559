package gateway

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/transcode"
)

var (
	_ http.ResponseWriter = (*recorder)(nil)
	_ http.Flusher        = (*recorder)(nil)
	_ http.Hijacker       = (*recorder)(nil)
)

// recorder is the outermost ResponseWriter: it notes the status and bytes
// sent for logs, and whether anything was written yet.
type recorder struct {
	w      http.ResponseWriter
	status int
	bytes  int64
	grpc   bool // a gRPC call: its outcome is in its trailers
}

func (r *recorder) Header() http.Header { return r.w.Header() }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.status = code
	}
	if code == exchange.StatusClientClosed { // nobody to send it to
		return
	}
	r.w.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.w.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	http.NewResponseController(r.w).Flush()
}

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	r.status = http.StatusSwitchingProtocols
	return http.NewResponseController(r.w).Hijack()
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.w }

func (r *recorder) written() bool { return r.status != 0 }

// countingBody counts the request body bytes read, and marks a read
// error as the client's (exchange.ClientBodyError), so the proxy does not
// blame the upstream for it.
type countingBody struct {
	io.ReadCloser
	n *int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	*c.n += int64(n)
	if err != nil && err != io.EOF {
		err = &exchange.ClientBodyError{Err: err}
	}
	return n, err
}

// grpcAnswer makes every answer to a gRPC request a gRPC answer. A
// gRPC client reads only HTTP 200 with a grpc-status; a refusal of the
// gateway's own (404, 413, 431), a filter's (401, 429, a failure's 500)
// or a proxy's (502, 504) would reach it as a transport error. Such an
// answer is held back and sent as HTTP 200 with no message and the
// status in its head (trailers-only): the HTTP status mapped as gRPC's
// spec maps it, and the problem's detail as grpc-message. Answers that
// are gRPC already (an upstream's) pass untouched.
type grpcAnswer struct {
	rec     *recorder
	convert bool
	status  int
	body    []byte
}

// isGRPC reports whether r is a gRPC call (not gRPC-Web).
func isGRPC(r *http.Request) bool {
	if r.ProtoMajor != 2 {
		return false
	}
	ct := r.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "application/grpc") && !strings.HasPrefix(ct, "application/grpc-web")
}

func (g *grpcAnswer) Header() http.Header { return g.rec.Header() }

func (g *grpcAnswer) WriteHeader(code int) {
	if !g.convert && !g.rec.written() && code >= 200 && !strings.HasPrefix(g.rec.Header().Get("Content-Type"), "application/grpc") {
		g.convert, g.status = true, code
		return
	}
	if !g.convert {
		g.rec.WriteHeader(code)
	}
}

func (g *grpcAnswer) Write(b []byte) (int, error) {
	if !g.convert && !g.rec.written() {
		g.WriteHeader(http.StatusOK)
	}
	if g.convert {
		g.body = append(g.body, b[:min(len(b), 4<<10-len(g.body))]...)
		return len(b), nil
	}
	return g.rec.Write(b)
}

func (g *grpcAnswer) Flush() {
	if !g.convert {
		g.rec.Flush()
	}
}

func (g *grpcAnswer) Unwrap() http.ResponseWriter { return g.rec }

// finish sends a held answer as gRPC.
func (g *grpcAnswer) finish() {
	if !g.convert {
		return
	}
	detail := http.StatusText(g.status)
	var p struct{ Detail string }
	if json.Unmarshal(g.body, &p) == nil && p.Detail != "" {
		detail = p.Detail
	}
	h := g.rec.Header()
	for _, name := range []string{"Content-Length", "Content-Type", "X-Content-Type-Options", "Cache-Control"} {
		h.Del(name)
	}
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(int(transcode.CodeForHTTP(g.status))))
	h.Set("Grpc-Message", transcode.EncodeMessage(detail))
	g.rec.WriteHeader(http.StatusOK)
}
