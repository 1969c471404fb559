// The Lintel plugin SDK for AssemblyScript: the two host modules,
// http_handler (http-wasm's handler ABI) and lintel (Lintel's own,
// version 1), as sdk/ABI.md specifies them, wrapped for AssemblyScript
// strings, and a small JSON reader for a filter's config.
//
// Build a plugin with
//   asc plugin.ts --outFile plugin.wasm --optimize --runtime incremental \
//       --exportStart _initialize --use abort=assembly/lintel/abort
// --exportStart runs the module's top-level code when the host calls
// _initialize (with the config readable), not during instantiation;
// --use abort replaces AssemblyScript's default `env.abort` import, which
// the host does not provide, with this module's `abort`.

// ---- http_handler ----------------------------------------------------------

@external("http_handler", "log") declare function hh_log(level: i32, msg: usize, len: u32): void;
@external("http_handler", "log_enabled") declare function hh_log_enabled(level: i32): i32;
@external("http_handler", "get_config") declare function hh_get_config(buf: usize, limit: u32): u32;
@external("http_handler", "enable_features") declare function hh_enable_features(features: u32): u32;
@external("http_handler", "get_method") declare function hh_get_method(buf: usize, limit: u32): u32;
@external("http_handler", "set_method") declare function hh_set_method(p: usize, len: u32): void;
@external("http_handler", "get_uri") declare function hh_get_uri(buf: usize, limit: u32): u32;
@external("http_handler", "set_uri") declare function hh_set_uri(p: usize, len: u32): void;
@external("http_handler", "get_protocol_version") declare function hh_get_protocol_version(buf: usize, limit: u32): u32;
@external("http_handler", "get_source_addr") declare function hh_get_source_addr(buf: usize, limit: u32): u32;
@external("http_handler", "get_header_names") declare function hh_get_header_names(kind: u32, buf: usize, limit: u32): u64;
@external("http_handler", "get_header_values") declare function hh_get_header_values(kind: u32, name: usize, nameLen: u32, buf: usize, limit: u32): u64;
@external("http_handler", "set_header_value") declare function hh_set_header_value(kind: u32, name: usize, nameLen: u32, value: usize, valueLen: u32): void;
@external("http_handler", "add_header_value") declare function hh_add_header_value(kind: u32, name: usize, nameLen: u32, value: usize, valueLen: u32): void;
@external("http_handler", "remove_header") declare function hh_remove_header(kind: u32, name: usize, nameLen: u32): void;
@external("http_handler", "read_body") declare function hh_read_body(kind: u32, buf: usize, limit: u32): u64;
@external("http_handler", "write_body") declare function hh_write_body(kind: u32, p: usize, len: u32): void;
@external("http_handler", "get_status_code") declare function hh_get_status_code(): u32;
@external("http_handler", "set_status_code") declare function hh_set_status_code(code: u32): void;

// ---- lintel ------------------------------------------------------------------

@external("lintel", "abi_version") declare function lt_abi_version(): i32;
@external("lintel", "declare") declare function lt_declare(flags: i32): void;
@external("lintel", "now") declare function lt_now(): i64;
@external("lintel", "log_kv") declare function lt_log_kv(level: i32, msg: usize, msgLen: u32, kv: usize, kvLen: u32): void;
@external("lintel", "get_property") declare function lt_get_property(name: usize, nameLen: u32, buf: usize, limit: u32): i64;
@external("lintel", "set_property") declare function lt_set_property(name: usize, nameLen: u32, value: usize, valueLen: u32): void;
@external("lintel", "state_get") declare function lt_state_get(key: usize, keyLen: u32, buf: usize, limit: u32): i64;
@external("lintel", "state_set") declare function lt_state_set(key: usize, keyLen: u32, value: usize, valueLen: u32, ttlMs: i64): i32;
@external("lintel", "state_cas") declare function lt_state_cas(key: usize, keyLen: u32, old: usize, oldLen: i32, nu: usize, newLen: u32, ttlMs: i64): i32;
@external("lintel", "state_delete") declare function lt_state_delete(key: usize, keyLen: u32): i32;
@external("lintel", "state_incr") declare function lt_state_incr(key: usize, keyLen: u32, delta: i64, ttlMs: i64, result: usize): i32;
@external("lintel", "metric_define") declare function lt_metric_define(kind: i32, name: usize, nameLen: u32, help: usize, helpLen: u32, labels: usize, labelsLen: u32): i32;
@external("lintel", "metric_update") declare function lt_metric_update(id: i32, value: f64, labelValues: usize, len: u32): void;
@external("lintel", "http_call") declare function lt_http_call(method: usize, methodLen: u32, url: usize, urlLen: u32, headers: usize, headersLen: u32, body: usize, bodyLen: u32): i32;
@external("lintel", "http_response_header") declare function lt_http_response_header(name: usize, nameLen: u32, buf: usize, limit: u32): i64;
@external("lintel", "http_response_body") declare function lt_http_response_body(buf: usize, limit: u32): i32;
@external("lintel", "emit") declare function lt_emit(line: usize, len: u32): i32;

export const REQUEST: u32 = 0;
export const RESPONSE: u32 = 1;

export const DEBUG: i32 = -1;
export const INFO: i32 = 0;
export const WARN: i32 = 1;
export const ERROR: i32 = 2;

/** declare flags */
export const STATELESS: i32 = 1;
export const NO_RESPONSE: i32 = 2;
export const ON_COMPLETE: i32 = 4;

/** What handle_request returns to go on; reqCtx comes back to handle_response. */
export function next(reqCtx: u32 = 0): i64 {
  return (<i64>reqCtx << 32) | 1;
}

/** What handle_request returns after answering itself. */
export const ANSWERED: i64 = 0;

function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

function ptr(b: ArrayBuffer): usize {
  return changetype<usize>(b);
}

/** Reads a value with the buf_limit convention. */
function readValue(read: (buf: usize, limit: u32) => u32): string {
  let buf = new ArrayBuffer(256);
  let n = read(ptr(buf), 256);
  if (n > 256) {
    buf = new ArrayBuffer(n);
    read(ptr(buf), n);
  }
  return String.UTF8.decodeUnsafe(ptr(buf), n);
}

/** Splits a NUL-terminated list. */
function splitList(p: usize, len: u32): string[] {
  const out = new Array<string>();
  let start: u32 = 0;
  for (let i: u32 = 0; i < len; i++) {
    if (load<u8>(p + i) == 0) {
      if (i > start) out.push(String.UTF8.decodeUnsafe(p + start, i - start));
      start = i + 1;
    }
  }
  return out;
}

function nulList(items: string[]): ArrayBuffer {
  let s = "";
  for (let i = 0; i < items.length; i++) s += items[i] + "\0";
  return utf8(s);
}

/** Writes to the gateway's log, with the filter's name and the request id. */
export function log(level: i32, msg: string): void {
  const b = utf8(msg);
  hh_log(level, ptr(b), b.byteLength);
}

export function logEnabled(level: i32): bool {
  return hh_log_enabled(level) == 1;
}

/** Replaces AssemblyScript's env.abort: logs the message and traps. */
export function abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  log(ERROR, "abort: " + (message !== null ? message : "") + " at " + (fileName !== null ? fileName : "") + ":" + line.toString() + ":" + column.toString());
  unreachable();
}

/** The filter's config table as JSON text. */
export function config(): string {
  return readValue((buf: usize, limit: u32): u32 => hh_get_config(buf, limit));
}

export function enableFeatures(features: u32): u32 {
  return hh_enable_features(features);
}

export function method(): string {
  return readValue((buf: usize, limit: u32): u32 => hh_get_method(buf, limit));
}

export function uri(): string {
  return readValue((buf: usize, limit: u32): u32 => hh_get_uri(buf, limit));
}

export function setMethod(m: string): void {
  const b = utf8(m);
  hh_set_method(ptr(b), b.byteLength);
}

export function protocolVersion(): string {
  return readValue((buf: usize, limit: u32): u32 => hh_get_protocol_version(buf, limit));
}

/** The socket peer, ip:port; the client behind trusted proxies is property("client_ip"). */
export function sourceAddr(): string {
  return readValue((buf: usize, limit: u32): u32 => hh_get_source_addr(buf, limit));
}

/** Header names, lower case, sorted. */
export function headerNames(kind: u32): string[] {
  let buf = new ArrayBuffer(256);
  const r = hh_get_header_names(kind, ptr(buf), 256);
  if (r >> 32 == 0) return new Array<string>();
  const len = <u32>r;
  if (len > 256) {
    buf = new ArrayBuffer(len);
    hh_get_header_names(kind, ptr(buf), len);
  }
  return splitList(ptr(buf), len);
}

/** The whole body as bytes (request phase, or a buffered response phase). */
export function readBody(kind: u32): Uint8Array {
  let out = new Uint8Array(0);
  const chunk = new ArrayBuffer(16384);
  while (true) {
    const r = hh_read_body(kind, ptr(chunk), 16384);
    const n = <i32><u32>r;
    if (n > 0) {
      const next = new Uint8Array(out.length + n);
      next.set(out);
      next.set(Uint8Array.wrap(chunk, 0, n), out.length);
      out = next;
    }
    if (r >> 32 == 1) return out;
  }
}

export function writeBody(kind: u32, body: string): void {
  const b = utf8(body);
  hh_write_body(kind, ptr(b), b.byteLength);
}

export function setUri(u: string): void {
  const b = utf8(u);
  hh_set_uri(ptr(b), b.byteLength);
}

/** Every value of a header, in order. */
export function headerValues(kind: u32, name: string): string[] {
  const n = utf8(name);
  let buf = new ArrayBuffer(256);
  let r = hh_get_header_values(kind, ptr(n), n.byteLength, ptr(buf), 256);
  if (r >> 32 == 0) return new Array<string>();
  const len = <u32>r;
  if (len > 256) {
    buf = new ArrayBuffer(len);
    hh_get_header_values(kind, ptr(n), n.byteLength, ptr(buf), len);
  }
  return splitList(ptr(buf), len);
}

/** The first value of a header, or null. */
export function header(kind: u32, name: string): string | null {
  const v = headerValues(kind, name);
  return v.length > 0 ? v[0] : null;
}

export function setHeader(kind: u32, name: string, value: string): void {
  const n = utf8(name), v = utf8(value);
  hh_set_header_value(kind, ptr(n), n.byteLength, ptr(v), v.byteLength);
}

export function addHeader(kind: u32, name: string, value: string): void {
  const n = utf8(name), v = utf8(value);
  hh_add_header_value(kind, ptr(n), n.byteLength, ptr(v), v.byteLength);
}

export function removeHeader(kind: u32, name: string): void {
  const n = utf8(name);
  hh_remove_header(kind, ptr(n), n.byteLength);
}

export function status(): u32 {
  return hh_get_status_code();
}

export function setStatus(code: u32): void {
  hh_set_status_code(code);
}

/** Answers from the plugin; return ANSWERED from handle_request after it. */
export function answer(code: u32, contentType: string, body: string): void {
  hh_set_status_code(code);
  if (contentType.length > 0) setHeader(RESPONSE, "content-type", contentType);
  const b = utf8(body);
  if (b.byteLength > 0) hh_write_body(RESPONSE, ptr(b), b.byteLength);
}

/** The version of the lintel module the host speaks. */
export function abiVersion(): i32 {
  return lt_abi_version();
}

/** A structured log line; kv alternates keys and values. */
export function logKV(level: i32, msg: string, kv: string[]): void {
  const m = utf8(msg), l = nulList(kv);
  lt_log_kv(level, ptr(m), m.byteLength, ptr(l), l.byteLength);
}

export function declare(flags: i32): void {
  lt_declare(flags);
}

/** Wall clock, Unix nanoseconds. */
export function now(): i64 {
  return lt_now();
}

/** A request property (a filter's, or the host's: client_ip, request_id, route, ...), or null. */
export function property(name: string): string | null {
  const n = utf8(name);
  let buf = new ArrayBuffer(256);
  const r = lt_get_property(ptr(n), n.byteLength, ptr(buf), 256);
  if (r == 0) return null;
  const len = <u32>r;
  if (len > 256) {
    buf = new ArrayBuffer(len);
    lt_get_property(ptr(n), n.byteLength, ptr(buf), len);
  }
  return String.UTF8.decodeUnsafe(ptr(buf), len);
}

export function setProperty(name: string, value: string): void {
  const n = utf8(name), v = utf8(value);
  lt_set_property(ptr(n), n.byteLength, ptr(v), v.byteLength);
}

/** Shared state: the value, or null when absent or when the backend failed. */
export function stateGet(key: string): string | null {
  const k = utf8(key);
  let buf = new ArrayBuffer(256);
  const r = lt_state_get(ptr(k), k.byteLength, ptr(buf), 256);
  if (r <= 0) return null;
  const len = <u32>r;
  if (len > 256) {
    buf = new ArrayBuffer(len);
    lt_state_get(ptr(k), k.byteLength, ptr(buf), len);
  }
  return String.UTF8.decodeUnsafe(ptr(buf), len);
}

/** Sets a key (ttlMs <= 0: no expiry); false when the backend failed. */
export function stateSet(key: string, value: string, ttlMs: i64): bool {
  const k = utf8(key), v = utf8(value);
  return lt_state_set(ptr(k), k.byteLength, ptr(v), v.byteLength, ttlMs) == 0;
}

/** Adds delta to the integer at key; the new value, or i64.MIN_VALUE on failure. */
export function stateIncr(key: string, delta: i64, ttlMs: i64): i64 {
  const k = utf8(key);
  const out = new ArrayBuffer(8);
  if (lt_state_incr(ptr(k), k.byteLength, delta, ttlMs, ptr(out)) != 0) return i64.MIN_VALUE;
  return load<i64>(ptr(out));
}

/** Sets key to value if it holds old (null: if absent): 1 swapped, 0 not, -1 failure. */
export function stateCAS(key: string, old: string | null, value: string, ttlMs: i64): i32 {
  const k = utf8(key), v = utf8(value);
  if (old === null) return lt_state_cas(ptr(k), k.byteLength, 0, -1, ptr(v), v.byteLength, ttlMs);
  const o = utf8(old);
  return lt_state_cas(ptr(k), k.byteLength, ptr(o), o.byteLength, ptr(v), v.byteLength, ttlMs);
}

/** Deletes a key; false when the backend failed. */
export function stateDelete(key: string): bool {
  const k = utf8(key);
  return lt_state_delete(ptr(k), k.byteLength) == 0;
}

/**
 * A blocking HTTP call within the filter's outbound allow-list: the
 * status, or -1 not allowed, -2 failed, -3 response too large. headers
 * are "Name: value" strings.
 */
export function httpCall(method: string, url: string, headers: string[], body: string): i32 {
  const m = utf8(method), u = utf8(url), h = nulList(headers), b = utf8(body);
  return lt_http_call(ptr(m), m.byteLength, ptr(u), u.byteLength, ptr(h), h.byteLength, ptr(b), b.byteLength);
}

/** A header of the last httpCall's response, or null. */
export function callResponseHeader(name: string): string | null {
  const n = utf8(name);
  let buf = new ArrayBuffer(256);
  const r = lt_http_response_header(ptr(n), n.byteLength, ptr(buf), 256);
  if (r >> 32 == 0) return null;
  const len = <u32>r;
  if (len > 256) {
    buf = new ArrayBuffer(len);
    lt_http_response_header(ptr(n), n.byteLength, ptr(buf), len);
  }
  const v = splitList(ptr(buf), len);
  return v.length > 0 ? v[0] : null;
}

/** The body of the last httpCall's response. */
export function callResponseBody(): string {
  return readValue((buf: usize, limit: u32): u32 => <u32>lt_http_response_body(buf, limit));
}

/** Writes one raw line to the filter's output; false when it has none. */
export function emit(line: string): bool {
  const b = utf8(line);
  return lt_emit(ptr(b), b.byteLength) == 0;
}

/** A metric the plugin defined; kind 0 counter, 1 gauge, 2 histogram. */
export class Metric {
  constructor(public id: i32) {}

  static define(kind: i32, name: string, help: string, labels: string[]): Metric {
    const n = utf8(name), h = utf8(help), l = nulList(labels);
    return new Metric(lt_metric_define(kind, ptr(n), n.byteLength, ptr(h), h.byteLength, ptr(l), l.byteLength));
  }

  update(value: f64, labelValues: string[]): void {
    if (this.id < 0) return;
    const l = nulList(labelValues);
    lt_metric_update(this.id, value, ptr(l), l.byteLength);
  }
}

// ---- JSON ------------------------------------------------------------------

/** A JSON value: kind is one of the JSON_* constants. */
export class JSONValue {
  kind: i32 = JSON_NULL;
  bool: bool = false;
  num: f64 = 0;
  str: string = "";
  items: JSONValue[] = [];
  keys: string[] = [];

  /** The member key of an object, or null. */
  get(key: string): JSONValue | null {
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] == key) return this.items[i];
    return null;
  }

  /** The strings of an array (non-strings skipped). */
  strings(): string[] {
    const out = new Array<string>();
    for (let i = 0; i < this.items.length; i++) if (this.items[i].kind == JSON_STRING) out.push(this.items[i].str);
    return out;
  }
}

export const JSON_NULL: i32 = 0;
export const JSON_BOOL: i32 = 1;
export const JSON_NUMBER: i32 = 2;
export const JSON_STRING: i32 = 3;
export const JSON_ARRAY: i32 = 4;
export const JSON_OBJECT: i32 = 5;

/** Parses JSON; on a syntax error, jsonError says why and null is returned. */
export function parseJSON(s: string): JSONValue | null {
  jsonError = "";
  const p = new JSONParser(s);
  const v = p.value(0);
  p.ws();
  if (v == null) return null;
  if (p.i != s.length) {
    jsonError = "trailing characters at " + p.i.toString();
    return null;
  }
  return v;
}

export let jsonError = "";

class JSONParser {
  i: i32 = 0;
  constructor(public s: string) {}

  fail(msg: string): JSONValue | null {
    if (jsonError.length == 0) jsonError = msg + " at " + this.i.toString();
    return null;
  }

  ws(): void {
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i);
      if (c != 32 && c != 9 && c != 10 && c != 13) break;
      this.i++;
    }
  }

  value(depth: i32): JSONValue | null {
    this.ws();
    if (depth > 64) return this.fail("nested too deeply");
    if (this.i >= this.s.length) return this.fail("unexpected end");
    const c = this.s.charCodeAt(this.i);
    const v = new JSONValue();
    if (c == 123 /* { */ || c == 91 /* [ */) {
      const obj = c == 123;
      v.kind = obj ? JSON_OBJECT : JSON_ARRAY;
      this.i++;
      this.ws();
      if (this.i < this.s.length && this.s.charCodeAt(this.i) == (obj ? 125 : 93)) {
        this.i++;
        return v;
      }
      while (true) {
        if (obj) {
          this.ws();
          const k = this.str();
          if (k == null) return null;
          this.ws();
          if (this.i >= this.s.length || this.s.charCodeAt(this.i) != 58 /* : */) return this.fail("expected ':'");
          this.i++;
          v.keys.push(k);
        }
        const item = this.value(depth + 1);
        if (item == null) return null;
        v.items.push(item);
        this.ws();
        if (this.i >= this.s.length) return this.fail("unexpected end");
        const d = this.s.charCodeAt(this.i++);
        if (d == 44 /* , */) continue;
        if (d == (obj ? 125 : 93)) return v;
        return this.fail("expected ',' or a closing bracket");
      }
    }
    if (c == 34 /* " */) {
      const t = this.str();
      if (t == null) return null;
      v.kind = JSON_STRING;
      v.str = t;
      return v;
    }
    if (this.s.startsWith("true", this.i)) { this.i += 4; v.kind = JSON_BOOL; v.bool = true; return v; }
    if (this.s.startsWith("false", this.i)) { this.i += 5; v.kind = JSON_BOOL; return v; }
    if (this.s.startsWith("null", this.i)) { this.i += 4; return v; }
    const start = this.i;
    while (this.i < this.s.length) {
      const d = this.s.charCodeAt(this.i);
      if (!((d >= 48 && d <= 57) || d == 45 || d == 43 || d == 46 || d == 101 || d == 69)) break;
      this.i++;
    }
    if (this.i == start) return this.fail("unexpected character");
    v.kind = JSON_NUMBER;
    v.num = parseFloat(this.s.substring(start, this.i));
    if (isNaN(v.num)) return this.fail("invalid number");
    return v;
  }

  str(): string | null {
    if (this.i >= this.s.length || this.s.charCodeAt(this.i) != 34) {
      this.fail("expected a string");
      return null;
    }
    this.i++;
    let out = "";
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i++);
      if (c == 34) return out;
      if (c < 32) { this.fail("control character in a string"); return null; }
      if (c != 92 /* \ */) { out += String.fromCharCode(c); continue; }
      if (this.i >= this.s.length) break;
      const e = this.s.charCodeAt(this.i++);
      if (e == 110) out += "\n";
      else if (e == 116) out += "\t";
      else if (e == 114) out += "\r";
      else if (e == 98) out += "\b";
      else if (e == 102) out += "\f";
      else if (e == 34 || e == 92 || e == 47) out += String.fromCharCode(e);
      else if (e == 117 && this.i + 4 <= this.s.length) {
        const code = I32.parseInt(this.s.substring(this.i, this.i + 4), 16);
        out += String.fromCharCode(code); // UTF-16 code unit: surrogate pairs join by themselves
        this.i += 4;
      } else { this.fail("invalid escape"); return null; }
    }
    this.fail("unterminated string");
    return null;
  }
}
