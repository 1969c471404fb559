package wasm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero/api"

	"github.com/lintelhq/lintel/core/config"
)

func hostHTTPCall(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	s.rec.spoil() // its effect or input cannot be memoized
	method := readString(mod, uint32(stack[0]), uint32(stack[1]), fnHTTPCall)
	rawURL := readString(mod, uint32(stack[2]), uint32(stack[3]), fnHTTPCall)
	headers := nulList(read(mod, uint32(stack[4]), uint32(stack[5]), fnHTTPCall))
	body := read(mod, uint32(stack[6]), uint32(stack[7]), fnHTTPCall)
	if len(body) > int(s.f.spec.Limits.HTTPCallBody) {
		failLimit("%s: a body of %d bytes is over the filter's limits.http_call_body (%d)", fnHTTPCall, len(body), s.f.spec.Limits.HTTPCallBody)
	}
	body = bytes.Clone(body)
	s.outResp, s.outBody = nil, nil
	// The call ends by the guest's deadline, or the outbound timeout.
	ctx, cancel := context.WithDeadline(context.Background(), s.deadline)
	defer cancel()
	s.f.pool.waiting.Add(1) // a wait: the pool may make another instance
	defer s.f.pool.waiting.Add(-1)
	status, err := s.f.outbound(ctx, s, method, rawURL, headers, body)
	if err != nil {
		s.warn("plugin HTTP call refused or failed", "method", method, "url", rawURL, "error", err)
	}
	stack[0] = i32Result(int32(status))
}

// outbound makes an allow-listed HTTP call for the guest and keeps the
// response for http_response_header and http_response_body.
func (f *Filter) outbound(ctx context.Context, s *callState, method, rawURL string, headers []string, body []byte) (int, error) {
	o := f.spec.Outbound
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return httpNotAllowed, fmt.Errorf("refused: %q is not an http(s) URL", rawURL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	if o == nil || !slices.Contains(o.Hosts, host) || !slices.Contains(o.Methods, method) {
		return httpNotAllowed, fmt.Errorf("refused: %s %s is not in the filter's outbound allow-list", method, host)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return httpFailed, err
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || !config.ValidToken(name) || strings.ContainsAny(value, "\r\n") {
			fail("%s: invalid header %q (want \"Name: value\")", fnHTTPCall, h)
		}
		req.Header.Add(name, strings.TrimSpace(value))
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return httpFailed, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(o.MaxResponse)+1))
	if err != nil {
		return httpFailed, err
	}
	if int64(len(b)) > int64(o.MaxResponse) {
		return httpTooLarge, fmt.Errorf("response exceeds max_response (%d bytes)", o.MaxResponse)
	}
	s.outResp, s.outBody = resp, b
	return resp.StatusCode, nil
}

func hostHTTPResponseHeader(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	name := readString(mod, uint32(stack[0]), uint32(stack[1]), fnHTTPResponseHeader)
	var values []string
	if s.outResp != nil {
		values = s.outResp.Header.Values(name)
	}
	stack[0] = writeNULTerminated(mod, uint32(stack[2]), uint32(stack[3]), values, fnHTTPResponseHeader)
}

func hostHTTPResponseBody(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	stack[0] = uint64(writeLimited(mod, uint32(stack[0]), uint32(stack[1]), s.outBody, fnHTTPResponseBody))
}
