// cors: Cross-Origin Resource Sharing (https://fetch.spec.whatwg.org/#http-cors-protocol)
// at the gateway, so upstreams need not know about it.
//
// Config:
//   origins      allowed origins, exact ("https://app.example.com"), or "*"
//   methods      methods a preflight may ask for (default GET, HEAD, POST)
//   headers      request headers a preflight may ask for (case-insensitive)
//   expose       response headers scripts may read (Access-Control-Expose-Headers)
//   credentials  allow cookies and Authorization (default false; not with "*")
//   max_age      seconds a browser may cache a preflight answer (default 600)
//
// A preflight (OPTIONS with Origin and Access-Control-Request-Method) is
// answered here and never reaches the upstream: 204 with the CORS headers
// when the origin, method and headers are allowed, 403 without them
// otherwise. A request from an allowed origin gets
// Access-Control-Allow-Origin (and the others) on its response; one from
// another origin passes unchanged, and the browser keeps the response from
// the script.
import * as lintel from "../../assembly/lintel";

let origins: string[] = [];
let anyOrigin = false;
let methods: string[] = ["GET", "HEAD", "POST"];
let headers: string[] = [];
let expose = "";
let credentials = false;
let maxAge = "600";

// Top-level code runs in _initialize (--exportStart): the config is read
// once per instance, and a bad one stops the plugin from loading.
const cfg = lintel.parseJSON(lintel.config());
if (cfg == null) {
  lintel.log(lintel.ERROR, "cors config: " + lintel.jsonError);
  unreachable();
}
const c = cfg!;
let v = c.get("origins");
if (v != null) origins = v!.strings();
anyOrigin = origins.includes("*");
v = c.get("methods");
if (v != null) methods = v!.strings().map<string>((m: string): string => m.toUpperCase());
v = c.get("headers");
if (v != null) headers = v!.strings().map<string>((h: string): string => h.toLowerCase());
v = c.get("expose");
if (v != null) expose = v!.strings().join(", ");
v = c.get("credentials");
if (v != null) credentials = v!.bool;
v = c.get("max_age");
if (v != null) maxAge = (<i64>v!.num).toString();
if (anyOrigin && credentials) {
  lintel.log(lintel.ERROR, "cors config: credentials cannot be allowed for origin \"*\"");
  unreachable();
}

// The origin of the request in flight, for its response phase: the
// instance stays with one request between the phases (no STATELESS).
let allowedOrigin = "";

function allowed(origin: string): bool {
  return anyOrigin || origins.includes(origin);
}

function allowOriginValue(origin: string): string {
  return anyOrigin && !credentials ? "*" : origin;
}

export function handle_request(): i64 {
  allowedOrigin = "";
  const origin = lintel.header(lintel.REQUEST, "origin");
  if (origin == null) return lintel.next();
  const wanted = lintel.header(lintel.REQUEST, "access-control-request-method");
  if (lintel.method() == "OPTIONS" && wanted != null) {
    return preflight(origin, wanted);
  }
  if (allowed(origin)) allowedOrigin = origin;
  return lintel.next();
}

function preflight(origin: string, wanted: string): i64 {
  let ok = allowed(origin) && methods.includes(wanted.toUpperCase());
  const asked = lintel.header(lintel.REQUEST, "access-control-request-headers");
  if (ok && asked != null) {
    const names = asked.split(",");
    for (let i = 0; i < names.length; i++) {
      const n = names[i].trim().toLowerCase();
      if (n.length > 0 && !headers.includes(n)) ok = false;
    }
  }
  lintel.setHeader(lintel.RESPONSE, "vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
  if (!ok) {
    lintel.answer(403, "", "");
    return lintel.ANSWERED;
  }
  lintel.setHeader(lintel.RESPONSE, "access-control-allow-origin", allowOriginValue(origin));
  lintel.setHeader(lintel.RESPONSE, "access-control-allow-methods", methods.join(", "));
  if (asked != null) lintel.setHeader(lintel.RESPONSE, "access-control-allow-headers", asked);
  if (credentials) lintel.setHeader(lintel.RESPONSE, "access-control-allow-credentials", "true");
  lintel.setHeader(lintel.RESPONSE, "access-control-max-age", maxAge);
  lintel.answer(204, "", "");
  return lintel.ANSWERED;
}

export function handle_response(reqCtx: i32, isError: i32): void {
  if (allowedOrigin.length == 0) return;
  lintel.setHeader(lintel.RESPONSE, "access-control-allow-origin", allowOriginValue(allowedOrigin));
  lintel.addHeader(lintel.RESPONSE, "vary", "Origin");
  if (credentials) lintel.setHeader(lintel.RESPONSE, "access-control-allow-credentials", "true");
  if (expose.length > 0) lintel.setHeader(lintel.RESPONSE, "access-control-expose-headers", expose);
  allowedOrigin = "";
}
