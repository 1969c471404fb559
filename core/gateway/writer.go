package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"

	"github.com/lintelhq/lintel/core/exchange"
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
