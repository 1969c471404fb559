package wasm

import "strconv"

// The names and numbers of the plugin ABI, in one place. sdk/ABI.md is the
// normative text; every constant here appears there.

// Host modules a guest may import.
const (
	// moduleHTTPHandler is http-wasm's handler ABI.
	moduleHTTPHandler = "http_handler"
	// moduleLintel is Lintel's own extension module.
	moduleLintel = "lintel"
	// moduleWASI is WASI preview 1, for guests whose toolchain needs it
	// (standard Go). It is sandboxed: no files, network, environment or
	// arguments; clocks and randomness only.
	moduleWASI = "wasi_snapshot_preview1"
)

// Guest exports.
const (
	exportMemory         = "memory"
	exportHandleRequest  = "handle_request"  // () -> i64 ctx_next
	exportHandleResponse = "handle_response" // (i32 req_ctx, i32 is_error) -> ()
	exportInitialize     = "_initialize"     // reactor initialisation, called once per instance
	exportStart          = "_start"          // command entry, called once per instance when there is no _initialize
)

// Functions of the http_handler host module.
const (
	fnLog                = "log"
	fnLogEnabled         = "log_enabled"
	fnGetConfig          = "get_config"
	fnEnableFeatures     = "enable_features"
	fnGetMethod          = "get_method"
	fnSetMethod          = "set_method"
	fnGetURI             = "get_uri"
	fnSetURI             = "set_uri"
	fnGetProtocolVersion = "get_protocol_version"
	fnGetSourceAddr      = "get_source_addr"
	fnGetHeaderNames     = "get_header_names"
	fnGetHeaderValues    = "get_header_values"
	fnSetHeaderValue     = "set_header_value"
	fnAddHeaderValue     = "add_header_value"
	fnRemoveHeader       = "remove_header"
	fnReadBody           = "read_body"
	fnWriteBody          = "write_body"
	fnGetStatusCode      = "get_status_code"
	fnSetStatusCode      = "set_status_code"
)

// Functions of the lintel host module; signatures in lintel.go and
// sdk/ABI.md.
const (
	fnABIVersion         = "abi_version"
	fnDeclare            = "declare"
	fnNow                = "now"
	fnLogKV              = "log_kv"
	fnGetProperty        = "get_property"
	fnSetProperty        = "set_property"
	fnStateGet           = "state_get"
	fnStateSet           = "state_set"
	fnStateCAS           = "state_cas"
	fnStateIncr          = "state_incr"
	fnStateDelete        = "state_delete"
	fnRateLimit          = "rate_limit"
	fnMetricDefine       = "metric_define"
	fnMetricUpdate       = "metric_update"
	fnHTTPCall           = "http_call"
	fnHTTPResponseHeader = "http_response_header"
	fnHTTPResponseBody   = "http_response_body"
	fnEmit               = "emit"
	fnVerifySignature    = "verify_signature"
	fnMemoize            = "memoize"
	fnGetProperties      = "get_properties"
)

// sectionConfigSchema is the custom section in which a plugin may declare
// the schema of its config table (JSON; config.PluginSchema): the host
// reads it without instantiating the module, refuses unknown keys and
// wrong types at load, and shows in /config only what it calls public.
const sectionConfigSchema = "lintel.config_schema"

// exportOnComplete is the optional guest export () -> () the host calls,
// when the guest declared declareOnComplete, once a response is complete,
// on any instance, with the request's properties (status, bytes_out,
// duration_ms) final.
const exportOnComplete = "lintel_on_complete"

// exportHousekeep is the optional guest export () -> () the host calls
// on an idle instance, off any request's path, every 2,000 requests the
// instance served (the Go SDK collects garbage there).
const exportHousekeep = "lintel_housekeep"

// lintelABIVersion is what abi_version returns.
const lintelABIVersion = 3

// The ABI a plugin speaks, as /plugins and `gatewayd plugin inspect`
// report it.
var (
	abiHTTPWasm       = "http-wasm"
	abiHTTPWasmLintel = "http-wasm + lintel v" + strconv.Itoa(lintelABIVersion)
)

// Declare flags, for lintel.declare.
const (
	// declareStateless: the guest keeps no per-request state between
	// handle_request and handle_response, so the host may release the
	// instance after handle_request and run handle_response on any
	// instance.
	declareStateless = 1 << 0
	// declareNoResponse: handle_response does nothing; the host never
	// calls it and releases the instance after handle_request.
	declareNoResponse = 1 << 1
	// declareOnComplete: call the guest's lintel_on_complete export once
	// each response is complete.
	declareOnComplete = 1 << 2
	// declareNoRequest: handle_request does nothing but pass the request
	// on; the host never calls it (an access log's filter, say), and the
	// response phase, if any, runs on any instance.
	declareNoRequest = 1 << 3
	// declareMemoizable: the guest may call memoize in its request
	// phase; the host records what each such call does so it can
	// replay it (memo.go).
	declareMemoizable = 1 << 4
	// declareBatchComplete: lintel_on_complete reads only properties
	// and the request's headers, and may run after the request's handler
	// returned, in a batch with other requests' completions
	// (complete.go).
	declareBatchComplete = 1 << 5
)

// Feature flags of enable_features.
const (
	featureBufferRequest  = 1 << 0
	featureBufferResponse = 1 << 1
	featureTrailers       = 1 << 2
)

// Header kinds.
const (
	headerKindRequest          = 0
	headerKindResponse         = 1
	headerKindRequestTrailers  = 2
	headerKindResponseTrailers = 3
)

// Body kinds.
const (
	bodyKindRequest  = 0
	bodyKindResponse = 1
)

// Log levels.
const (
	logLevelDebug = -1
	logLevelInfo  = 0
	logLevelWarn  = 1
	logLevelError = 2
	logLevelNone  = 3
)

// Results of the state functions.
const (
	resultError      = -1
	resultNotInteger = -2
)

// Metric kinds of metric_define.
const (
	metricCounter   = 0
	metricGauge     = 1
	metricHistogram = 2
)

// Results of http_call besides a status code.
const (
	httpNotAllowed = -1
	httpFailed     = -2
	httpTooLarge   = -3
)
