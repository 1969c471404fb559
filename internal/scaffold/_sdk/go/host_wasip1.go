//go:build wasip1

package lintel

import (
	"bytes"
	"encoding/binary"
	"time"
	"unsafe"
)

// Hosted is true in a plugin running under a host (gatewayd), false
// natively against the fake host. A plugin whose config is invalid should
// fail its initialisation when Hosted, so gatewayd refuses to load it
// and says why; natively, where the fake host's config is empty at
// package init, tests configure it themselves.
const Hosted = true

//go:wasmexport handle_request
func exportHandleRequest() uint64 {
	if handleRequest() {
		return 1
	}
	return 0
}

//go:wasmexport handle_response
func exportHandleResponse(reqCtx, isError uint32) { handleResponse() }

//go:wasmexport lintel_on_complete
func exportOnComplete() { handleComplete() }

//go:wasmexport lintel_housekeep
func exportHousekeep() { housekeep() }

//go:wasmimport http_handler log
func hLog(level int32, msg, msgLen uint32)

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

//go:wasmimport lintel declare
func lDeclare(flags uint32)

//go:wasmimport lintel now
func lNow() int64

//go:wasmimport lintel log_kv
func lLogKV(level int32, msg, msgLen, kv, kvLen uint32)

//go:wasmimport lintel get_property
func lGetProperty(name, nameLen, buf, limit uint32) uint64

//go:wasmimport lintel set_property
func lSetProperty(name, nameLen, value, valueLen uint32)

//go:wasmimport lintel memoize
func lMemoize(names, namesLen, ttlMillis uint32)

//go:wasmimport lintel state_get
func lStateGet(key, keyLen, buf, limit uint32) uint64

//go:wasmimport lintel state_set
func lStateSet(key, keyLen, value, valueLen uint32, ttlMs int64) int32

//go:wasmimport lintel state_cas
func lStateCAS(key, keyLen, old uint32, oldLen int32, value, valueLen uint32, ttlMs int64) int32

//go:wasmimport lintel state_incr
func lStateIncr(key, keyLen uint32, delta, ttlMs int64, out uint32) int32

//go:wasmimport lintel rate_limit
func lRateLimit(key, keyLen uint32, intervalNs int64, burst int32, out uint32) int32

//go:wasmimport lintel state_delete
func lStateDelete(key, keyLen uint32) int32

//go:wasmimport lintel metric_define
func lMetricDefine(kind int32, name, nameLen, help, helpLen, labels, labelsLen uint32) int32

//go:wasmimport lintel metric_update
func lMetricUpdate(id int32, value float64, labels, labelsLen uint32)

//go:wasmimport lintel http_call
func lHTTPCall(method, methodLen, url, urlLen, headers, headersLen, body, bodyLen uint32) int32

//go:wasmimport lintel http_response_header
func lHTTPResponseHeader(name, nameLen, buf, limit uint32) uint64

//go:wasmimport lintel http_response_body
func lHTTPResponseBody(buf, limit uint32) uint32

//go:wasmimport lintel emit
func lEmit(ptr, n uint32) int32

//go:wasmimport lintel verify_signature
func lVerifySignature(algPtr, algLen, keyPtr, keyLen, msgPtr, msgLen, sigPtr, sigLen uint32) int32

func sptr(s string) (uint32, uint32) {
	if s == "" {
		return 0, 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s)))), uint32(len(s))
}

func bptr(b []byte) (uint32, uint32) {
	if len(b) == 0 {
		return 0, 0
	}
	return uint32(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b))
}

// scratch is reused for reads that fit; larger values get their own buffer.
var scratch = make([]byte, 2048)

// getBytes reads a buf_limit value: into scratch when it fits, else again
// into a buffer of the exact length.
func getBytes(fn func(buf, limit uint32) uint32) []byte {
	p, n := bptr(scratch)
	size := fn(p, n)
	if size <= n {
		return append([]byte(nil), scratch[:size]...)
	}
	b := make([]byte, size)
	p, _ = bptr(b)
	fn(p, size)
	return b
}

// getString is getBytes as a string, with one copy.
func getString(fn func(buf, limit uint32) uint32) string {
	p, n := bptr(scratch)
	size := fn(p, n)
	if size <= n {
		return string(scratch[:size])
	}
	b := make([]byte, size)
	p, _ = bptr(b)
	fn(p, size)
	return unsafe.String(&b[0], size)
}

// nulSplit splits the list a buf_limit call wrote into b (count<<32 |
// len: NUL-terminated values). One pass over the bytes: Go's wasm port
// copies and searches a byte at a time, so strings.Split's several
// passes cost microseconds on a long header (a bearer token). Calls into
// the host are made directly, not through a closure: in a Go guest each
// closure and copy costs a heap allocation, a large share of a small
// call.
func nulSplit(b []byte, cl uint64) []string {
	if cl == 0 {
		return nil
	}
	b = b[:uint32(cl)]
	if cl>>32 == 1 {
		// One value: it ends at the last byte, no scan needed.
		return []string{string(b[:len(b)-1])}
	}
	out := make([]string, 0, cl>>32)
	start := 0
	for i, c := range b {
		if c == 0 {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	return out
}

// joined is nulJoin's buffer, reused: the host reads it during the call
// that passes it, and a guest runs one call at a time.
var joined []byte

// nulJoin writes list as NUL-terminated values, into joined.
func nulJoin(list []string) []byte {
	b := joined[:0]
	for _, s := range list {
		b = append(b, s...)
		b = append(b, 0)
	}
	joined = b
	return b
}

func declare(flags uint32)           { lDeclare(flags) }
func enableFeatures(f uint32) uint32 { return hEnableFeatures(f) }
func getConfig() []byte              { return getBytes(hGetConfig) }
func getMethod() string              { return getString(hGetMethod) }
func setMethod(m string)             { hSetMethod(sptr(m)) }
func getURI() string                 { return getString(hGetURI) }
func setURI(u string)                { hSetURI(sptr(u)) }
func getProtocol() string            { return getString(hGetProtocolVersion) }
func getSourceAddr() string          { return getString(hGetSourceAddr) }
func getStatus() int                 { return int(hGetStatusCode()) }
func setStatus(code int)             { hSetStatusCode(uint32(code)) }
func now() int64                     { return lNow() }
func headerNames(kind uint32) []string {
	p, n := bptr(scratch)
	cl := hGetHeaderNames(kind, p, n)
	if uint32(cl) > n {
		b := make([]byte, uint32(cl))
		p, n = bptr(b)
		return nulSplit(b, hGetHeaderNames(kind, p, n))
	}
	return nulSplit(scratch, cl)
}

func headerValues(kind uint32, name string) []string {
	np, nn := sptr(name)
	p, n := bptr(scratch)
	cl := hGetHeaderValues(kind, np, nn, p, n)
	if uint32(cl) > n {
		b := make([]byte, uint32(cl))
		p, n = bptr(b)
		return nulSplit(b, hGetHeaderValues(kind, np, nn, p, n))
	}
	return nulSplit(scratch, cl)
}

// headerValue is the first of headerValues, with one allocation.
func headerValue(kind uint32, name string) string {
	np, nn := sptr(name)
	p, n := bptr(scratch)
	cl := hGetHeaderValues(kind, np, nn, p, n)
	b := scratch
	if uint32(cl) > n {
		b = make([]byte, uint32(cl))
		p, n = bptr(b)
		cl = hGetHeaderValues(kind, np, nn, p, n)
	}
	if cl>>32 == 1 {
		return string(b[:uint32(cl)-1])
	}
	if i := bytes.IndexByte(b[:uint32(cl)], 0); i >= 0 {
		return string(b[:i])
	}
	return ""
}

func setHeader(kind uint32, name, value string) {
	np, nn := sptr(name)
	vp, vn := sptr(value)
	hSetHeaderValue(kind, np, nn, vp, vn)
}

func addHeader(kind uint32, name, value string) {
	np, nn := sptr(name)
	vp, vn := sptr(value)
	hAddHeaderValue(kind, np, nn, vp, vn)
}

func removeHeader(kind uint32, name string) {
	np, nn := sptr(name)
	hRemoveHeader(kind, np, nn)
}

func readBody(kind uint32) []byte {
	var out []byte
	p, n := bptr(scratch)
	for {
		r := hReadBody(kind, p, n)
		out = append(out, scratch[:uint32(r)]...)
		if r>>32 != 0 {
			return out
		}
	}
}

// writeBody appends b; the host replaces the body on the first write of a
// phase.
func writeBody(kind uint32, b []byte) {
	p, n := bptr(b)
	hWriteBody(kind, p, n)
}

// getProperty reads into scratch, without a closure: properties are
// read many times a request (an access log reads a dozen).
func getProperty(name string) (string, bool) {
	np, nn := sptr(name)
	p, n := bptr(scratch)
	r := lGetProperty(np, nn, p, n)
	found, size := r>>32 == 1, uint32(r)
	if size <= n {
		return string(scratch[:size]), found
	}
	b := make([]byte, size)
	p, _ = bptr(b)
	lGetProperty(np, nn, p, size)
	return unsafe.String(&b[0], size), found
}

func memoize(ttl time.Duration, names []string) {
	ms := min(ttl.Milliseconds(), 1<<31-1)
	if ms <= 0 {
		return
	}
	p, n := bptr(nulJoin(names))
	lMemoize(p, n, uint32(ms))
}

func setProperty(name, value string) {
	np, nn := sptr(name)
	vp, vn := sptr(value)
	lSetProperty(np, nn, vp, vn)
}

func stateGet(key string) ([]byte, bool, error) {
	kp, kn := sptr(key)
	p, n := bptr(scratch)
	r := lStateGet(kp, kn, p, n)
	switch {
	case int64(r) == -1: // the backend failed: no length to read
		return nil, false, ErrState
	case r == 0:
		return nil, false, nil
	}
	size := uint32(r)
	if size <= n {
		return append([]byte(nil), scratch[:size]...), true, nil
	}
	// Too large for the scratch buffer: read again into one of its size.
	// The value may change in between (another instance, another
	// gatewayd): a value deleted reads as absent, one grown is read
	// again, into a larger buffer.
	for {
		b := make([]byte, size)
		p, _ = bptr(b)
		r = lStateGet(kp, kn, p, size)
		switch {
		case int64(r) == -1:
			return nil, false, ErrState
		case r == 0:
			return nil, false, nil
		case uint32(r) <= size:
			return b[:uint32(r)], true, nil
		}
		size = uint32(r)
	}
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

func stateSet(key string, value []byte, ttl time.Duration) error {
	kp, kn := sptr(key)
	vp, vn := bptr(value)
	if lStateSet(kp, kn, vp, vn, ms(ttl)) != 0 {
		return ErrState
	}
	return nil
}

func stateCAS(key string, old, value []byte, ttl time.Duration) (bool, error) {
	kp, kn := sptr(key)
	op, on := bptr(old)
	oldLen := int32(on)
	if old == nil {
		oldLen = -1
	}
	vp, vn := bptr(value)
	switch lStateCAS(kp, kn, op, oldLen, vp, vn, ms(ttl)) {
	case 1:
		return true, nil
	case 0:
		return false, nil
	}
	return false, ErrState
}

var incrOut [8]byte

func stateIncr(key string, delta int64, ttl time.Duration) (int64, error) {
	kp, kn := sptr(key)
	switch lStateIncr(kp, kn, delta, ms(ttl), uint32(uintptr(unsafe.Pointer(&incrOut[0])))) {
	case 0:
		return int64(binary.LittleEndian.Uint64(incrOut[:])), nil
	case -2:
		return 0, ErrNotInteger
	}
	return 0, ErrState
}

var rateOut [24]byte

func rateLimit(key string, interval time.Duration, burst int) (RateDecision, error) {
	kp, kn := sptr(key)
	r := lRateLimit(kp, kn, int64(interval), int32(burst), uint32(uintptr(unsafe.Pointer(&rateOut[0]))))
	if r < 0 {
		return RateDecision{}, ErrState
	}
	return RateDecision{
		Allowed:    r == 1,
		Remaining:  int(int64(binary.LittleEndian.Uint64(rateOut[0:]))),
		RetryAfter: time.Duration(binary.LittleEndian.Uint64(rateOut[8:])),
		Reset:      time.Duration(binary.LittleEndian.Uint64(rateOut[16:])),
	}, nil
}

func stateDelete(key string) error {
	if lStateDelete(sptr(key)) != 0 {
		return ErrState
	}
	return nil
}

func metricDefine(kind int32, name, help string, labels []string) int32 {
	np, nn := sptr(name)
	hp, hn := sptr(help)
	lp, ln := bptr(nulJoin(labels))
	return lMetricDefine(kind, np, nn, hp, hn, lp, ln)
}

func metricUpdate(id int32, v float64, labelValues []string) {
	if id < 0 {
		return
	}
	lp, ln := bptr(nulJoin(labelValues))
	lMetricUpdate(id, v, lp, ln)
}

func logKV(level int32, msg string, kv []string) {
	mp, mn := sptr(msg)
	if len(kv)%2 != 0 {
		kv = append(kv, "")
	}
	kp, kn := bptr(nulJoin(kv))
	lLogKV(level, mp, mn, kp, kn)
}

func httpCall(method, url string, headers []string, body []byte) int {
	mp, mn := sptr(method)
	up, un := sptr(url)
	hp, hn := bptr(nulJoin(headers))
	bp, bn := bptr(body)
	return int(lHTTPCall(mp, mn, up, un, hp, hn, bp, bn))
}

func fetchHeader(name string) []string {
	np, nn := sptr(name)
	p, n := bptr(scratch)
	cl := lHTTPResponseHeader(np, nn, p, n)
	if uint32(cl) > n {
		b := make([]byte, uint32(cl))
		p, n = bptr(b)
		return nulSplit(b, lHTTPResponseHeader(np, nn, p, n))
	}
	return nulSplit(scratch, cl)
}

func fetchBody() []byte { return getBytes(lHTTPResponseBody) }

func emit(line []byte) int32 { return lEmit(bptr(line)) }

func verifySignature(alg string, key, msg, sig []byte) int32 {
	ap, an := sptr(alg)
	kp, kn := bptr(key)
	mp, mn := bptr(msg)
	sp, sn := bptr(sig)
	return lVerifySignature(ap, an, kp, kn, mp, mn, sp, sn)
}
