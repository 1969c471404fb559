package wasm

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// applyRequestBody hands the next handler the body as the guest left it:
// every byte it read, then the rest, or what it wrote instead.
func (s *callState) applyRequestBody() {
	r := s.x.Request
	body, n := s.reqBody.body()
	r.Body = body
	if n >= 0 {
		r.ContentLength = n
		r.Header.Set("Content-Length", strconv.FormatInt(n, 10))
		r.TransferEncoding = nil
	}
}

// bodyBuffer reads a request body for the guest while keeping every byte,
// so the upstream still receives the whole body afterwards.
type bodyBuffer struct {
	src      io.ReadCloser
	buf      []byte
	off      int
	max      int64
	replaced bool // write_body replaced the body: src is discarded
}

func newBodyBuffer(src io.ReadCloser, max int64) *bodyBuffer {
	if src == nil {
		src = http.NoBody
	}
	return &bodyBuffer{src: src, max: max}
}

// Read serves what was buffered, then reads more from src and keeps it.
func (b *bodyBuffer) Read(p []byte) (int, error) {
	if b.off < len(b.buf) {
		n := copy(p, b.buf[b.off:])
		b.off += n
		return n, nil
	}
	if b.replaced {
		return 0, io.EOF
	}
	if int64(len(b.buf)) >= b.max {
		return 0, fmt.Errorf("request body exceeds the %d bytes a filter may buffer", b.max)
	}
	n, err := b.src.Read(p[:min(int64(len(p)), b.max-int64(len(b.buf)))])
	b.buf = append(b.buf, p[:n]...)
	b.off += n
	return n, err
}

// replace discards the body: what write_body writes replaces it.
func (b *bodyBuffer) replace() {
	b.replaced, b.buf, b.off = true, b.buf[:0], 0
}

// body returns the request body the next handler receives and its length
// (-1 when unknown).
func (b *bodyBuffer) body() (io.ReadCloser, int64) {
	if b.replaced {
		return io.NopCloser(bytes.NewReader(b.buf)), int64(len(b.buf))
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b.buf), b.src), b.src}, -1
}

// readBodyFirst reads r's body whole (at most max bytes, else a
// MaxBytesError) and puts it back as a byte reader, so that reading it
// later never waits on the client.
func readBodyFirst(r *http.Request, max int64) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	if _, read := r.Body.(*readFirst); read {
		return nil // an earlier filter did
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return err
	}
	if int64(len(b)) > max {
		return &http.MaxBytesError{Limit: max}
	}
	r.Body.Close()
	r.Body = &readFirst{bytes.NewReader(b)}
	return nil
}

// readFirst is a request body already read whole.
type readFirst struct{ *bytes.Reader }

func (*readFirst) Close() error { return nil }
