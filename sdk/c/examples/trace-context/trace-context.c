/*
 * trace-context: W3C Trace Context (https://www.w3.org/TR/trace-context/)
 * at the gateway. Every request goes upstream with a valid `traceparent`:
 * the client's trace id and flags are kept when its header is valid, a
 * new trace is started (sampled) when it is absent or malformed (and the
 * client's `tracestate` dropped with it); the parent id is always a new
 * span id, the gateway's. The trace id is set as the request property
 * `trace_id` (for the access log) and returned to the client in
 * `X-Trace-Id`.
 *
 * This is for a gateway without [tracing]. With tracing on, gatewayd
 * itself continues the client's trace (as tracing.incoming says), sends
 * each upstream the traceparent of its own call (overwriting this
 * filter's) and reports its own trace id as `trace_id`.
 *
 *   clang --target=wasm32-wasi -mexec-model=reactor -O2 -I sdk/c \
 *         -o plugins/trace-context.wasm sdk/c/examples/trace-context/trace-context.c
 */
#include "lintel.h"

static const char hex[] = "0123456789abcdef";

static void to_hex(char *out, const unsigned char *in, int n) {
	for (int i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
}

/* is_hex reports whether s[0..n) is lower-case hex, and not all zeros
 * when nonzero is set. */
static int is_hex(const char *s, int n, int nonzero) {
	int zero = 1;
	for (int i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
		if (c != '0') zero = 0;
	}
	return !(nonzero && zero);
}

/* valid checks version-format 00: "00-<32 hex>-<16 hex>-<2 hex>". A
 * later version may be longer; its first four fields are read the same
 * way (the spec's forward compatibility), but "ff" is invalid. */
static int valid(const char *tp, int len) {
	if (len < 55 || (len > 55 && tp[55] != '-')) return 0;
	if (!is_hex(tp, 2, 0) || (tp[0] == 'f' && tp[1] == 'f')) return 0;
	if (len != 55 && tp[0] == '0' && tp[1] == '0') return 0;
	return tp[2] == '-' && is_hex(tp + 3, 32, 1) && tp[35] == '-' && is_hex(tp + 36, 16, 1) &&
	       tp[52] == '-' && is_hex(tp + 53, 2, 0);
}

__attribute__((constructor)) static void init(void) {
	/* Nothing is kept between the phases: the trace id travels as a
	 * property, so any instance can run the response phase. */
	lintel_declare(LINTEL_STATELESS);
}

LINTEL_EXPORT("handle_request") int64_t handle_request(void) {
	char in[128];
	int32_t n = lintel_header(LINTEL_REQUEST, "traceparent", in, sizeof in);
	char trace[33], flags[3] = "01";
	if (n > 0 && n < (int32_t)sizeof in && valid(in, n)) {
		memcpy(trace, in + 3, 32);
		memcpy(flags, in + 53, 2);
	} else {
		unsigned char id[16];
		if (lintel_random(id, sizeof id) != 0) {
			lintel_log(LINTEL_ERROR, "no random bytes: request passed without a new trace");
			return LINTEL_NEXT(0);
		}
		to_hex(trace, id, 16);
		lintel_remove_header(LINTEL_REQUEST, "tracestate");
	}
	trace[32] = 0;
	unsigned char span[8];
	lintel_random(span, sizeof span);
	char out[56] = "00-";
	memcpy(out + 3, trace, 32);
	out[35] = '-';
	to_hex(out + 36, span, 8);
	out[52] = '-';
	memcpy(out + 53, flags, 2);
	out[55] = 0;
	lintel_set_header(LINTEL_REQUEST, "traceparent", out);
	lintel_set_property("trace_id", trace);
	return LINTEL_NEXT(0);
}

LINTEL_EXPORT("handle_response") void handle_response(int32_t req_ctx, int32_t is_error) {
	char trace[40];
	if (lintel_property("trace_id", trace, sizeof trace) == 32) {
		lintel_set_header(LINTEL_RESPONSE, "x-trace-id", trace);
	}
}
