// Command gostateless is gostamp plus one call: it declares through the
// lintel module that it keeps no state between its phases, so the host
// need not pin an instance for the whole upstream call. Like gostamp it
// copies request header X-Stamp-In to X-Stamp (or "none") and sets
// response header X-Stamped: 1.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath
package main

import "unsafe"

func main() {}

//go:wasmimport lintel declare
func declare(flags uint32)

func init() { declare(1) } // DeclareStateless

//go:wasmimport http_handler get_header_values
func getHeaderValues(kind, name, nameLen, buf, limit uint32) uint64

//go:wasmimport http_handler set_header_value
func setHeaderValue(kind, name, nameLen, value, valueLen uint32)

var buf [64]byte

func str(s string) (uint32, uint32) {
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s)))), uint32(len(s))
}

//go:wasmexport handle_request
func handleRequest() uint64 {
	in, inLen := str("X-Stamp-In")
	out, outLen := str("X-Stamp")
	bp := uint32(uintptr(unsafe.Pointer(&buf[0])))
	cl := getHeaderValues(0, in, inLen, bp, uint32(len(buf)))
	if n := uint32(cl); cl>>32 == 1 && n <= uint32(len(buf)) {
		setHeaderValue(0, out, outLen, bp, n-1)
	} else {
		v, vl := str("none")
		setHeaderValue(0, out, outLen, v, vl)
	}
	return 1
}

//go:wasmexport handle_response
func handleResponse(reqCtx, isError uint32) {
	n, nl := str("X-Stamped")
	v, vl := str("1")
	setHeaderValue(1, n, nl, v, vl)
}
