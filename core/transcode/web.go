package transcode

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/code"

	"github.com/lintelhq/lintel/core/exchange"
)

// IsWeb reports whether r is a gRPC-Web call (application/grpc-web,
// +proto, or -text, its base64 form).
func IsWeb(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc-web")
}

// webSkip are request headers that describe the browser's request, not
// the call, and are not sent on as metadata.
var webSkip = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Accept": true, "Accept-Encoding": true, "Accept-Language": true,
	"Connection": true, "Te": true, "Host": true, "Origin": true, "Referer": true, "User-Agent": true,
	"X-Grpc-Web": true, "X-User-Agent": true, "Sec-Fetch-Mode": true, "Sec-Fetch-Site": true, "Sec-Fetch-Dest": true,
}

// ServeWeb answers a gRPC-Web call, from a browser over HTTP/1.1 or
// HTTP/2, by making it as gRPC to up at path ("/package.Service/Method"):
// the same length-prefixed messages, the status and trailing metadata
// sent as gRPC-Web's trailer frame at the end of the body. Binary
// answers stream as the service sends them; -text answers are base64 of
// the whole answer.
func ServeWeb(up Upstream, x *exchange.Exchange, w http.ResponseWriter, path string) {
	r := x.Request
	text := strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc-web-text")
	ctype := "application/grpc-web+proto"
	if text {
		ctype = "application/grpc-web-text+proto"
	}
	fail := func(c code.Code, msg string) {
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("Grpc-Status", strconv.Itoa(int(c)))
		h.Set("Grpc-Message", EncodeMessage(msg))
		w.WriteHeader(http.StatusOK)
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxRequestBody))
	if err == nil && text {
		body, err = base64.StdEncoding.DecodeString(strings.TrimRight(string(body), "\r\n"))
	}
	if err != nil {
		x.AnsweredBy = exchange.ByGateway
		fail(code.Code_INTERNAL, "the gRPC-Web request body could not be read")
		return
	}
	ctx := r.Context()
	if d := up.Timeout(); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	header := http.Header{}
	for name, values := range r.Header {
		if !webSkip[name] {
			header[name] = values
		}
	}
	x.ForwardHeaders(header)
	resp, err := post(ctx, up, x, path, body, header)
	if err != nil {
		x.AnsweredBy = exchange.ForFailedTarget
		if errors.Is(err, context.DeadlineExceeded) {
			fail(code.Code_DEADLINE_EXCEEDED, "the gRPC service "+err.Error())
			return
		}
		fail(code.Code_UNAVAILABLE, "the gRPC service "+err.Error())
		return
	}
	defer resp.Body.Close()
	h := w.Header()
	for name, values := range metadata(resp.Header) {
		h[name] = values
	}
	h.Set("Content-Type", ctype)
	h.Del("Content-Length")
	var out io.Writer = w
	var held bytes.Buffer
	if text {
		out = &held
	} else {
		w.WriteHeader(http.StatusOK)
	}
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			_, _ = out.Write(buf[:n])
			if !text {
				_ = rc.Flush()
			}
		}
		if err != nil {
			if err != io.EOF {
				resp.Trailer = http.Header{"Grpc-Status": {"14"}, "Grpc-Message": {"the gRPC service broke off its answer"}}
			}
			break
		}
	}
	trailer := resp.Trailer
	if resp.Header.Get("Grpc-Status") != "" { // trailers only
		trailer = resp.Header
	}
	_, _ = out.Write(trailerFrame(trailer))
	if text {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, base64.StdEncoding.EncodeToString(held.Bytes()))
	}
}

// trailerFrame is gRPC-Web's last frame: flag 0x80, then the trailers as
// an HTTP/1 header block with lower-case names.
func trailerFrame(trailer http.Header) []byte {
	var block bytes.Buffer
	names := make([]string, 0, len(trailer))
	for name := range trailer {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		lower := strings.ToLower(strings.TrimPrefix(name, http.TrailerPrefix))
		if lower == "grpc-status" || lower == "grpc-message" || lower == "grpc-status-details-bin" || !strings.HasPrefix(lower, "grpc-") {
			for _, v := range trailer[name] {
				block.WriteString(lower + ": " + v + "\r\n")
			}
		}
	}
	if trailer.Get("Grpc-Status") == "" {
		block.WriteString("grpc-status: 2\r\ngrpc-message: the gRPC service answered without a status\r\n") // UNKNOWN
	}
	frame := make([]byte, 5, 5+block.Len())
	frame[0] = 0x80
	binary.BigEndian.PutUint32(frame[1:], uint32(block.Len()))
	return append(frame, block.Bytes()...)
}
