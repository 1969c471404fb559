// Command conformance is a test guest in standard Go that exercises every
// function of the http_handler host module. It imports nothing but
// http_handler (and WASI, as every standard Go guest does). The request
// header X-Case picks what it does; see the cases below and
// internal/e2e/wasm_test.go.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath
package main

import (
	"strconv"
	"strings"
	"unsafe"
)

func main() {}

//go:wasmimport http_handler log
func hLog(level int32, msg, msgLen uint32)

//go:wasmimport http_handler log_enabled
func hLogEnabled(level int32) uint32

//go:wasmimport http_handler get_config
func hGetConfig(buf, limit uint32) uint32

//go:wasmimport http_handler enable_features
func hEnableFeatures(features uint32) uint32

//go:wasmimport http_handler get_method
func hGetMethod(buf, limit uint32) uint32

//go:wasmimport http_handler set_method
func hSetMethod(ptr, n uint32)

//go:wasmimport http_handler get_uri
func hGetURI(buf, limit uint32) uint32

//go:wasmimport http_handler set_uri
func hSetURI(ptr, n uint32)

//go:wasmimport http_handler get_protocol_version
func hGetProtocolVersion(buf, limit uint32) uint32

//go:wasmimport http_handler get_source_addr
func hGetSourceAddr(buf, limit uint32) uint32

//go:wasmimport http_handler get_header_names
func hGetHeaderNames(kind, buf, limit uint32) uint64

//go:wasmimport http_handler get_header_values
func hGetHeaderValues(kind, name, nameLen, buf, limit uint32) uint64

//go:wasmimport http_handler set_header_value
func hSetHeaderValue(kind, name, nameLen, value, valueLen uint32)

//go:wasmimport http_handler add_header_value
func hAddHeaderValue(kind, name, nameLen, value, valueLen uint32)

//go:wasmimport http_handler remove_header
func hRemoveHeader(kind, name, nameLen uint32)

//go:wasmimport http_handler read_body
func hReadBody(kind, buf, limit uint32) uint64

//go:wasmimport http_handler write_body
func hWriteBody(kind, ptr, n uint32)

//go:wasmimport http_handler get_status_code
func hGetStatusCode() uint32

//go:wasmimport http_handler set_status_code
func hSetStatusCode(code uint32)

const (
	request  = 0
	response = 1
)

func ptr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

func sptr(s string) (uint32, uint32) {
	if s == "" {
		return 0, 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s)))), uint32(len(s))
}

// get calls a buf_limit function twice: once to learn the length, once
// with a buffer of that length.
func get(fn func(buf, limit uint32) uint32) string {
	n := fn(0, 0)
	if n == 0 {
		return ""
	}
	b := make([]byte, n)
	fn(ptr(b), n)
	return string(b)
}

func list(fn func(buf, limit uint32) uint64) []string {
	cl := fn(0, 0)
	n := uint32(cl)
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	fn(ptr(b), n)
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

func values(kind uint32, name string) []string {
	p, n := sptr(name)
	return list(func(buf, limit uint32) uint64 { return hGetHeaderValues(kind, p, n, buf, limit) })
}

func names(kind uint32) []string {
	return list(func(buf, limit uint32) uint64 { return hGetHeaderNames(kind, buf, limit) })
}

func set(kind uint32, name, value string) {
	np, nn := sptr(name)
	vp, vn := sptr(value)
	hSetHeaderValue(kind, np, nn, vp, vn)
}

func add(kind uint32, name, value string) {
	np, nn := sptr(name)
	vp, vn := sptr(value)
	hAddHeaderValue(kind, np, nn, vp, vn)
}

func remove(kind uint32, name string) {
	np, nn := sptr(name)
	hRemoveHeader(kind, np, nn)
}

func write(kind uint32, s string) {
	p, n := sptr(s)
	hWriteBody(kind, p, n)
}

func log(level int32, s string) {
	p, n := sptr(s)
	hLog(level, p, n)
}

// readAll reads a body in chunks of size bytes.
func readAll(kind uint32, size int) string {
	var out []byte
	buf := make([]byte, size)
	for {
		r := hReadBody(kind, ptr(buf), uint32(size))
		out = append(out, buf[:uint32(r)]...)
		if r>>32 == 1 {
			return string(out)
		}
	}
}

var current string // the case of the request in flight (pinned instance)

//go:wasmexport handle_request
func handleRequest() uint64 {
	c := values(request, "X-Case")
	current = ""
	if len(c) > 0 {
		current = c[0]
	}
	switch current {
	case "inspect":
		// Answer with everything the request-side getters return.
		hSetStatusCode(200)
		set(response, "Content-Type", "text/plain")
		write(response, "method="+get(hGetMethod)+"\n")
		write(response, "uri="+get(hGetURI)+"\n")
		write(response, "proto="+get(hGetProtocolVersion)+"\n")
		write(response, "source="+get(hGetSourceAddr)+"\n")
		write(response, "config="+get(hGetConfig)+"\n")
		write(response, "names="+strings.Join(names(request), ",")+"\n")
		write(response, "multi="+strings.Join(values(request, "x-multi"), "|")+"\n")
		write(response, "missing="+strconv.Itoa(len(values(request, "X-Absent")))+"\n")
		write(response, "status="+strconv.Itoa(int(hGetStatusCode()))+"\n")
		write(response, "features="+strconv.Itoa(int(hEnableFeatures(0)))+"\n")
		write(response, "trailers="+strconv.Itoa(len(names(2)))+"\n")
		write(response, "debug="+strconv.Itoa(int(hLogEnabled(-1)))+" none="+strconv.Itoa(int(hLogEnabled(3)))+"\n")
		return 0
	case "small-buffer":
		// A buffer too small is left untouched; the length still comes back.
		buf := []byte("untouched")
		n := hGetURI(ptr(buf), 3)
		cl := hGetHeaderNames(request, ptr(buf), 3)
		hSetStatusCode(200)
		write(response, "len="+strconv.Itoa(int(n))+" buf="+string(buf)+" names_count="+strconv.Itoa(int(cl>>32))+" names_len="+strconv.Itoa(int(uint32(cl))))
		return 0
	case "rewrite":
		m, n := sptr("PUT")
		hSetMethod(m, n)
		u, un := sptr("/echo/rewritten?q=a%20b")
		hSetURI(u, un)
		set(request, "X-Set", "one")
		add(request, "X-Added", "a")
		add(request, "X-Added", "b")
		remove(request, "X-Remove-Me")
		return 1
	case "read-body":
		hEnableFeatures(1)
		body := readAll(request, 7)
		set(request, "X-Body-Seen", strconv.Itoa(len(body)))
		return 1
	case "replace-body":
		write(request, "replaced ")
		write(request, "body")
		return 1
	case "answer":
		hSetStatusCode(418)
		set(response, "X-Answer", "teapot")
		write(response, "short ")
		write(response, "and stout")
		return 0
	case "buffer-response":
		hEnableFeatures(2)
		return 7<<32 | 1
	case "response-headers", "ctx":
		return 42<<32 | 1
	case "bad-uri":
		u, un := sptr("no-slash")
		hSetURI(u, un)
		return 1
	case "log":
		log(0, "hello from the guest")
		return 1
	case "prefix-body":
		// A body written before calling next: it begins the response.
		write(response, "proto="+get(hGetProtocolVersion)+"\n")
		return 1
	case "set-uri":
		// set_uri to what the client asked for, escapes and all.
		u, un := sptr(values(request, "X-Uri")[0])
		hSetURI(u, un)
		return 1
	case "panic":
		panic("conformance: deliberate panic")
	}
	return 1
}

//go:wasmexport handle_response
func handleResponse(reqCtx uint32, isError uint32) {
	set(response, "X-Is-Error", strconv.Itoa(int(isError)))
	switch current {
	case "buffer-response":
		body := readAll(response, 5)
		write(response, strings.ToUpper(body))
		hSetStatusCode(201)
		set(response, "X-Req-Ctx", strconv.Itoa(int(reqCtx)))
	case "response-headers":
		set(response, "X-Status", strconv.Itoa(int(hGetStatusCode())))
		set(response, "X-Names", strings.Join(names(response), ","))
		set(response, "X-Upstream-Value", strings.Join(values(response, "x-from-upstream"), "|"))
		remove(response, "X-Secret")
		add(response, "X-Multi-Out", "1")
		add(response, "X-Multi-Out", "2")
		// The body is streamed: nothing to read.
		buf := make([]byte, 8)
		set(response, "X-Body-EOF", strconv.Itoa(int(hReadBody(response, ptr(buf), 8)>>32)))
	case "ctx":
		set(response, "X-Req-Ctx", strconv.Itoa(int(reqCtx)))
	}
}
