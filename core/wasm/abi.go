package wasm

// The names and numbers of the plugin ABI, in one place. sdk/ABI.md is the
// normative text; every constant here appears there.

// Host modules a guest may import.
const (
	// ModuleHTTPHandler is http-wasm's handler ABI.
	ModuleHTTPHandler = "http_handler"
	// ModuleLintel is Lintel's own extension module.
	ModuleLintel = "lintel"
	// ModuleWASI is WASI preview 1, for guests whose toolchain needs it
	// (standard Go). It is sandboxed: no files, network, environment or
	// arguments; clocks and randomness only.
	ModuleWASI = "wasi_snapshot_preview1"
)

// Guest exports.
const (
	ExportMemory         = "memory"
	ExportHandleRequest  = "handle_request"  // () -> i64 ctx_next
	ExportHandleResponse = "handle_response" // (i32 req_ctx, i32 is_error) -> ()
	ExportInitialize     = "_initialize"     // reactor initialisation, called once per instance
	ExportStart          = "_start"          // command entry, called once per instance when there is no _initialize
)

// Functions of the http_handler host module.
const (
	FnLog                = "log"
	FnLogEnabled         = "log_enabled"
	FnGetConfig          = "get_config"
	FnEnableFeatures     = "enable_features"
	FnGetMethod          = "get_method"
	FnSetMethod          = "set_method"
	FnGetURI             = "get_uri"
	FnSetURI             = "set_uri"
	FnGetProtocolVersion = "get_protocol_version"
	FnGetSourceAddr      = "get_source_addr"
	FnGetHeaderNames     = "get_header_names"
	FnGetHeaderValues    = "get_header_values"
	FnSetHeaderValue     = "set_header_value"
	FnAddHeaderValue     = "add_header_value"
	FnRemoveHeader       = "remove_header"
	FnReadBody           = "read_body"
	FnWriteBody          = "write_body"
	FnGetStatusCode      = "get_status_code"
	FnSetStatusCode      = "set_status_code"
)

// Functions of the lintel host module; signatures in lintel.go and
// sdk/ABI.md.
const (
	FnABIVersion         = "abi_version"
	FnDeclare            = "declare"
	FnNow                = "now"
	FnLogKV              = "log_kv"
	FnGetProperty        = "get_property"
	FnSetProperty        = "set_property"
	FnStateGet           = "state_get"
	FnStateSet           = "state_set"
	FnStateCAS           = "state_cas"
	FnStateIncr          = "state_incr"
	FnStateDelete        = "state_delete"
	FnRateLimit          = "rate_limit"
	FnMetricDefine       = "metric_define"
	FnMetricUpdate       = "metric_update"
	FnHTTPCall           = "http_call"
	FnHTTPResponseHeader = "http_response_header"
	FnHTTPResponseBody   = "http_response_body"
	FnEmit               = "emit"
)

// SectionConfigSchema is the custom section in which a plugin may declare
// the schema of its config table (JSON; config.PluginSchema): the host
// reads it without instantiating the module, refuses unknown keys and
// wrong types at load, and shows in /config only what it calls public.
const SectionConfigSchema = "lintel.config_schema"

// ExportOnComplete is the optional guest export () -> () the host calls,
// when the guest declared DeclareOnComplete, once a response is complete,
// on any instance, with the request's properties (status, bytes_out,
// duration_ms) final.
const ExportOnComplete = "lintel_on_complete"

// LintelABIVersion is what abi_version returns.
const LintelABIVersion = 1

// Declare flags, for lintel.declare.
const (
	// DeclareStateless: the guest keeps no per-request state between
	// handle_request and handle_response, so the host may release the
	// instance after handle_request and run handle_response on any
	// instance.
	DeclareStateless = 1 << 0
	// DeclareNoResponse: handle_response does nothing; the host never
	// calls it and releases the instance after handle_request.
	DeclareNoResponse = 1 << 1
	// DeclareOnComplete: call the guest's lintel_on_complete export once
	// each response is complete.
	DeclareOnComplete = 1 << 2
)

// Feature flags of enable_features.
const (
	FeatureBufferRequest  = 1 << 0
	FeatureBufferResponse = 1 << 1
	FeatureTrailers       = 1 << 2
)

// Header kinds.
const (
	HeaderKindRequest          = 0
	HeaderKindResponse         = 1
	HeaderKindRequestTrailers  = 2
	HeaderKindResponseTrailers = 3
)

// Body kinds.
const (
	BodyKindRequest  = 0
	BodyKindResponse = 1
)

// Log levels.
const (
	LogLevelDebug = -1
	LogLevelInfo  = 0
	LogLevelWarn  = 1
	LogLevelError = 2
	LogLevelNone  = 3
)
