package transcode

import (
	"net/http"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/code"

	"github.com/lintelhq/lintel/core/exchange"
)

// The correspondence of gRPC statuses and HTTP ones, both ways, in one
// place: a gRPC status answered as REST, and a REST refusal (the
// gateway's, a filter's) answered to a gRPC client.

// httpStatus is the standard mapping of a gRPC status to HTTP
// (google.rpc.Code's documentation, as grpc-gateway and Envoy use it).
func httpStatus(c code.Code) int {
	switch c {
	case code.Code_OK:
		return http.StatusOK
	case code.Code_CANCELLED:
		return exchange.StatusClientClosed
	case code.Code_INVALID_ARGUMENT, code.Code_FAILED_PRECONDITION, code.Code_OUT_OF_RANGE:
		return http.StatusBadRequest
	case code.Code_DEADLINE_EXCEEDED:
		return http.StatusGatewayTimeout
	case code.Code_NOT_FOUND:
		return http.StatusNotFound
	case code.Code_ALREADY_EXISTS, code.Code_ABORTED:
		return http.StatusConflict
	case code.Code_PERMISSION_DENIED:
		return http.StatusForbidden
	case code.Code_UNAUTHENTICATED:
		return http.StatusUnauthorized
	case code.Code_RESOURCE_EXHAUSTED:
		return http.StatusTooManyRequests
	case code.Code_UNIMPLEMENTED:
		return http.StatusNotImplemented
	case code.Code_UNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError // UNKNOWN, INTERNAL, DATA_LOSS, any other
}

// CodeForHTTP maps an HTTP status to a gRPC status code: gRPC's own
// mapping ("HTTP to gRPC Status Code Mapping"), except that 429 and 413
// say RESOURCE_EXHAUSTED and 504 DEADLINE_EXCEEDED, which tell a client
// more.
func CodeForHTTP(status int) code.Code {
	switch status {
	case http.StatusBadRequest:
		return code.Code_INTERNAL
	case http.StatusUnauthorized:
		return code.Code_UNAUTHENTICATED
	case http.StatusForbidden:
		return code.Code_PERMISSION_DENIED
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return code.Code_UNIMPLEMENTED
	case http.StatusTooManyRequests, http.StatusRequestEntityTooLarge:
		return code.Code_RESOURCE_EXHAUSTED
	case http.StatusGatewayTimeout:
		return code.Code_DEADLINE_EXCEEDED
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return code.Code_UNAVAILABLE
	}
	return code.Code_UNKNOWN
}

// EncodeMessage percent-encodes a grpc-message value (gRPC over HTTP/2:
// bytes outside printable ASCII, and '%').
func EncodeMessage(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7E || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
