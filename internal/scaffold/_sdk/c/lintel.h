/*
 * lintel.h: the Lintel plugin SDK for C (clang, wasi-libc, reactor model).
 *
 * Header only. It declares every function of the two host modules,
 * http_handler (http-wasm's handler ABI) and lintel (Lintel's own, version
 * 1), exactly as sdk/ABI.md specifies them, and adds small wrappers that
 * take NUL-terminated strings. A plugin defines handle_request and
 * handle_response with LINTEL_EXPORT and builds with
 *
 *   clang --target=wasm32-wasi -mexec-model=reactor -O2 -I sdk/c \
 *         -o plugins/NAME.wasm NAME.c
 *
 * Only the functions a plugin calls become imports of its module.
 */
#ifndef LINTEL_H
#define LINTEL_H

#include <stdint.h>
#include <string.h>
#include <unistd.h> /* getentropy */

#define LINTEL_IMPORT(module, name) __attribute__((import_module(module), import_name(name)))
#define LINTEL_EXPORT(name) __attribute__((export_name(name)))

/* What handle_request returns: go on to the next filter and the target,
 * with req_ctx handed back to handle_response, or stop here (the plugin
 * answered with the status, headers and body it set). */
#define LINTEL_NEXT(req_ctx) (((int64_t)(uint32_t)(req_ctx) << 32) | 1)
#define LINTEL_ANSWERED ((int64_t)0)

/* Header and body kinds. */
enum { LINTEL_REQUEST = 0, LINTEL_RESPONSE = 1 };
/* Log levels. */
enum { LINTEL_DEBUG = -1, LINTEL_INFO = 0, LINTEL_WARN = 1, LINTEL_ERROR = 2 };
/* enable_features flags. */
enum { LINTEL_BUFFER_REQUEST = 1, LINTEL_BUFFER_RESPONSE = 2 };
/* lintel_declare flags. */
enum { LINTEL_STATELESS = 1, LINTEL_NO_RESPONSE = 2, LINTEL_ON_COMPLETE = 4 };
/* Metric kinds. */
enum { LINTEL_COUNTER = 0, LINTEL_GAUGE = 1, LINTEL_HISTOGRAM = 2 };

/* ---- http_handler: the http-wasm handler ABI ---------------------------- */

LINTEL_IMPORT("http_handler", "log") void hh_log(int32_t level, const char *msg, uint32_t len);
LINTEL_IMPORT("http_handler", "log_enabled") int32_t hh_log_enabled(int32_t level);
LINTEL_IMPORT("http_handler", "get_config") uint32_t hh_get_config(char *buf, uint32_t limit);
LINTEL_IMPORT("http_handler", "enable_features") uint32_t hh_enable_features(uint32_t features);
LINTEL_IMPORT("http_handler", "get_method") uint32_t hh_get_method(char *buf, uint32_t limit);
LINTEL_IMPORT("http_handler", "set_method") void hh_set_method(const char *p, uint32_t len);
LINTEL_IMPORT("http_handler", "get_uri") uint32_t hh_get_uri(char *buf, uint32_t limit);
LINTEL_IMPORT("http_handler", "set_uri") void hh_set_uri(const char *p, uint32_t len);
LINTEL_IMPORT("http_handler", "get_protocol_version") uint32_t hh_get_protocol_version(char *buf, uint32_t limit);
LINTEL_IMPORT("http_handler", "get_source_addr") uint32_t hh_get_source_addr(char *buf, uint32_t limit);
LINTEL_IMPORT("http_handler", "get_header_names") uint64_t hh_get_header_names(uint32_t kind, char *buf, uint32_t limit);
LINTEL_IMPORT("http_handler", "get_header_values") uint64_t hh_get_header_values(uint32_t kind, const char *name, uint32_t name_len, char *buf, uint32_t limit);
LINTEL_IMPORT("http_handler", "set_header_value") void hh_set_header_value(uint32_t kind, const char *name, uint32_t name_len, const char *value, uint32_t value_len);
LINTEL_IMPORT("http_handler", "add_header_value") void hh_add_header_value(uint32_t kind, const char *name, uint32_t name_len, const char *value, uint32_t value_len);
LINTEL_IMPORT("http_handler", "remove_header") void hh_remove_header(uint32_t kind, const char *name, uint32_t name_len);
LINTEL_IMPORT("http_handler", "read_body") uint64_t hh_read_body(uint32_t kind, char *buf, uint32_t limit);
LINTEL_IMPORT("http_handler", "write_body") void hh_write_body(uint32_t kind, const char *p, uint32_t len);
LINTEL_IMPORT("http_handler", "get_status_code") uint32_t hh_get_status_code(void);
LINTEL_IMPORT("http_handler", "set_status_code") void hh_set_status_code(uint32_t code);

/* ---- lintel: Lintel's own module, version 1 ------------------------------ */

LINTEL_IMPORT("lintel", "abi_version") int32_t lintel_abi_version(void);
LINTEL_IMPORT("lintel", "declare") void lintel_declare(int32_t flags);
LINTEL_IMPORT("lintel", "now") int64_t lintel_now(void);
LINTEL_IMPORT("lintel", "log_kv") void lintel_log_kv_raw(int32_t level, const char *msg, uint32_t msg_len, const char *kv, uint32_t kv_len);
LINTEL_IMPORT("lintel", "get_property") int64_t lintel_get_property_raw(const char *name, uint32_t name_len, char *buf, uint32_t limit);
LINTEL_IMPORT("lintel", "set_property") void lintel_set_property_raw(const char *name, uint32_t name_len, const char *value, uint32_t value_len);
LINTEL_IMPORT("lintel", "state_get") int64_t lintel_state_get_raw(const char *key, uint32_t key_len, char *buf, uint32_t limit);
LINTEL_IMPORT("lintel", "state_set") int32_t lintel_state_set_raw(const char *key, uint32_t key_len, const char *value, uint32_t value_len, int64_t ttl_ms);
LINTEL_IMPORT("lintel", "state_cas") int32_t lintel_state_cas_raw(const char *key, uint32_t key_len, const char *old, int32_t old_len, const char *new_, uint32_t new_len, int64_t ttl_ms);
LINTEL_IMPORT("lintel", "state_incr") int32_t lintel_state_incr_raw(const char *key, uint32_t key_len, int64_t delta, int64_t ttl_ms, int64_t *result);
LINTEL_IMPORT("lintel", "state_delete") int32_t lintel_state_delete_raw(const char *key, uint32_t key_len);
LINTEL_IMPORT("lintel", "metric_define") int32_t lintel_metric_define_raw(int32_t kind, const char *name, uint32_t name_len, const char *help, uint32_t help_len, const char *labels, uint32_t labels_len);
LINTEL_IMPORT("lintel", "metric_update") void lintel_metric_update_raw(int32_t id, double value, const char *label_values, uint32_t len);
LINTEL_IMPORT("lintel", "http_call") int32_t lintel_http_call_raw(const char *method, uint32_t method_len, const char *url, uint32_t url_len, const char *headers, uint32_t headers_len, const char *body, uint32_t body_len);
LINTEL_IMPORT("lintel", "http_response_header") int64_t lintel_http_response_header_raw(const char *name, uint32_t name_len, char *buf, uint32_t limit);
LINTEL_IMPORT("lintel", "http_response_body") int32_t lintel_http_response_body_raw(char *buf, uint32_t limit);
LINTEL_IMPORT("lintel", "emit") int32_t lintel_emit_raw(const char *line, uint32_t len);

/* ---- Wrappers over NUL-terminated strings --------------------------------
 * Functions that read a value into buf (of cap bytes) return its length,
 * or -1 when it is absent; the value is NUL-terminated when it fits
 * (length < cap), and not written at all otherwise: call again with a
 * larger buffer. */

static inline void lintel_log(int32_t level, const char *msg) { hh_log(level, msg, strlen(msg)); }

/* lintel_config reads the filter's config table as JSON. */
static inline int32_t lintel_config(char *buf, uint32_t cap) {
	uint32_t n = hh_get_config(buf, cap ? cap - 1 : 0);
	if (n < cap) buf[n] = 0;
	return (int32_t)n;
}

/* lintel_header reads the first value of a request or response header. */
static inline int32_t lintel_header(int kind, const char *name, char *buf, uint32_t cap) {
	uint64_t r = hh_get_header_values(kind, name, strlen(name), buf, cap);
	uint32_t count = r >> 32, len = (uint32_t)r;
	if (count == 0) return -1;
	if (len > cap) return (int32_t)len; /* not written: the caller's buffer is too small */
	/* The list is "v1\0v2\0...": the first value is NUL-terminated already. */
	return (int32_t)strlen(buf);
}

static inline void lintel_set_header(int kind, const char *name, const char *value) {
	hh_set_header_value(kind, name, strlen(name), value, strlen(value));
}

static inline void lintel_add_header(int kind, const char *name, const char *value) {
	hh_add_header_value(kind, name, strlen(name), value, strlen(value));
}

static inline void lintel_remove_header(int kind, const char *name) { hh_remove_header(kind, name, strlen(name)); }

static inline int32_t lintel_method(char *buf, uint32_t cap) {
	uint32_t n = hh_get_method(buf, cap ? cap - 1 : 0);
	if (n < cap) buf[n] = 0;
	return (int32_t)n;
}

static inline int32_t lintel_uri(char *buf, uint32_t cap) {
	uint32_t n = hh_get_uri(buf, cap ? cap - 1 : 0);
	if (n < cap) buf[n] = 0;
	return (int32_t)n;
}

/* lintel_answer sets the status and body of the plugin's own answer (in
 * handle_request); return LINTEL_ANSWERED after it. */
static inline void lintel_answer(uint32_t status, const char *content_type, const char *body) {
	hh_set_status_code(status);
	if (content_type) lintel_set_header(LINTEL_RESPONSE, "content-type", content_type);
	if (body) hh_write_body(LINTEL_RESPONSE, body, strlen(body));
}

/* lintel_property reads a request property: one another filter set, or
 * the host's (client_ip, request_id, route, ...). */
static inline int32_t lintel_property(const char *name, char *buf, uint32_t cap) {
	int64_t r = lintel_get_property_raw(name, strlen(name), buf, cap ? cap - 1 : 0);
	if (r == 0) return -1;
	uint32_t n = (uint32_t)r;
	if (n < cap) buf[n] = 0;
	return (int32_t)n;
}

static inline void lintel_set_property(const char *name, const char *value) {
	lintel_set_property_raw(name, strlen(name), value, strlen(value));
}

/* lintel_state_get: length, -1 absent, -2 backend failure. */
static inline int32_t lintel_state_get(const char *key, char *buf, uint32_t cap) {
	int64_t r = lintel_state_get_raw(key, strlen(key), buf, cap ? cap - 1 : 0);
	if (r == 0) return -1;
	if (r < 0) return -2;
	uint32_t n = (uint32_t)r;
	if (n < cap) buf[n] = 0;
	return (int32_t)n;
}

static inline int32_t lintel_state_set(const char *key, const char *value, int64_t ttl_ms) {
	return lintel_state_set_raw(key, strlen(key), value, strlen(value), ttl_ms);
}

/* lintel_state_incr adds delta and stores the new value in *result:
 * 0 ok, -1 backend failure, -2 not an integer. */
static inline int32_t lintel_state_incr(const char *key, int64_t delta, int64_t ttl_ms, int64_t *result) {
	return lintel_state_incr_raw(key, strlen(key), delta, ttl_ms, result);
}

static inline int32_t lintel_state_delete(const char *key) { return lintel_state_delete_raw(key, strlen(key)); }

/* lintel_metric_define: labels is a NUL-separated list ending in an
 * extra NUL, e.g. "method\0status\0" (pass labels_len = 13), or NULL. */
static inline int32_t lintel_metric_define(int32_t kind, const char *name, const char *help, const char *labels, uint32_t labels_len) {
	return lintel_metric_define_raw(kind, name, strlen(name), help, strlen(help), labels, labels_len);
}

static inline int32_t lintel_emit(const char *line) { return lintel_emit_raw(line, strlen(line)); }

/* lintel_random fills buf with bytes from the host's CSPRNG. */
static inline int lintel_random(void *buf, size_t n) {
	unsigned char *p = buf;
	while (n > 0) {
		size_t k = n > 256 ? 256 : n;
		if (getentropy(p, k) != 0) return -1;
		p += k;
		n -= k;
	}
	return 0;
}

#endif /* LINTEL_H */
