//! The Lintel plugin SDK for Rust: safe wrappers over the two host modules,
//! `http_handler` (http-wasm's handler ABI) and `lintel` (Lintel's own,
//! version 1), as `sdk/ABI.md` specifies them, and a small JSON reader for
//! a filter's config. No dependencies: it builds with Debian's `rustc`
//! and `libstd-rust-dev-wasm32`, without cargo or crates.io.
//!
//! A plugin is a `cdylib` that exports `handle_request` and
//! `handle_response` (and, if it likes, `_initialize`):
//!
//! ```ignore
//! #[no_mangle]
//! pub extern "C" fn handle_request() -> i64 {
//!     lintel::set_header(lintel::Kind::Request, "x-hello", "world");
//!     lintel::next(0)
//! }
//! #[no_mangle]
//! pub extern "C" fn handle_response(_req_ctx: i32, _is_error: i32) {}
//! ```
//!
//! Build for `wasm32-unknown-unknown` (no WASI: nothing but the host's
//! functions is imported) or `wasm32-wasi`; see `sdk/rust/README.md`.

pub mod json;
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod heap;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static HEAP: heap::Heap = heap::Heap::new();

mod raw {
    #[link(wasm_import_module = "http_handler")]
    extern "C" {
        pub fn log(level: i32, msg: *const u8, len: u32);
        pub fn log_enabled(level: i32) -> i32;
        pub fn get_config(buf: *mut u8, limit: u32) -> u32;
        pub fn enable_features(features: u32) -> u32;
        pub fn get_method(buf: *mut u8, limit: u32) -> u32;
        pub fn set_method(p: *const u8, len: u32);
        pub fn get_uri(buf: *mut u8, limit: u32) -> u32;
        pub fn set_uri(p: *const u8, len: u32);
        pub fn get_protocol_version(buf: *mut u8, limit: u32) -> u32;
        pub fn get_source_addr(buf: *mut u8, limit: u32) -> u32;
        pub fn get_header_names(kind: u32, buf: *mut u8, limit: u32) -> u64;
        pub fn get_header_values(kind: u32, name: *const u8, name_len: u32, buf: *mut u8, limit: u32) -> u64;
        pub fn set_header_value(kind: u32, name: *const u8, name_len: u32, value: *const u8, value_len: u32);
        pub fn add_header_value(kind: u32, name: *const u8, name_len: u32, value: *const u8, value_len: u32);
        pub fn remove_header(kind: u32, name: *const u8, name_len: u32);
        pub fn read_body(kind: u32, buf: *mut u8, limit: u32) -> u64;
        pub fn write_body(kind: u32, p: *const u8, len: u32);
        pub fn get_status_code() -> u32;
        pub fn set_status_code(code: u32);
    }

    #[link(wasm_import_module = "lintel")]
    extern "C" {
        pub fn abi_version() -> i32;
        pub fn declare(flags: i32);
        pub fn memoize(names: *const u8, names_len: u32, ttl_ms: i32);
        pub fn now() -> i64;
        pub fn log_kv(level: i32, msg: *const u8, msg_len: u32, kv: *const u8, kv_len: u32);
        pub fn get_property(name: *const u8, name_len: u32, buf: *mut u8, limit: u32) -> i64;
        pub fn get_properties(names: *const u8, names_len: u32, buf: *mut u8, limit: u32) -> i64;
        pub fn set_property(name: *const u8, name_len: u32, value: *const u8, value_len: u32);
        pub fn state_get(key: *const u8, key_len: u32, buf: *mut u8, limit: u32) -> i64;
        pub fn state_set(key: *const u8, key_len: u32, value: *const u8, value_len: u32, ttl_ms: i64) -> i32;
        pub fn state_cas(key: *const u8, key_len: u32, old: *const u8, old_len: i32, new: *const u8, new_len: u32, ttl_ms: i64) -> i32;
        pub fn state_incr(key: *const u8, key_len: u32, delta: i64, ttl_ms: i64, result: *mut i64) -> i32;
        pub fn state_delete(key: *const u8, key_len: u32) -> i32;
        pub fn rate_limit(key: *const u8, key_len: u32, interval_ns: i64, burst: i32, result: *mut i64) -> i32;
        pub fn metric_define(kind: i32, name: *const u8, name_len: u32, help: *const u8, help_len: u32, labels: *const u8, labels_len: u32) -> i32;
        pub fn metric_update(id: i32, value: f64, label_values: *const u8, len: u32);
        pub fn http_call(method: *const u8, method_len: u32, url: *const u8, url_len: u32, headers: *const u8, headers_len: u32, body: *const u8, body_len: u32) -> i32;
        pub fn http_response_header(name: *const u8, name_len: u32, buf: *mut u8, limit: u32) -> i64;
        pub fn http_response_body(buf: *mut u8, limit: u32) -> i32;
        pub fn emit(line: *const u8, len: u32) -> i32;
    }
}

/// Which message a header or body function is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Request = 0,
    Response = 1,
}

/// Log levels.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Level {
    Debug = -1,
    Info = 0,
    Warn = 1,
    Error = 2,
}

/// `declare` flags: nothing kept between the phases (the instance is
/// released after `handle_request`).
pub const STATELESS: i32 = 1;
/// `declare` flag: `handle_response` is never called.
pub const NO_RESPONSE: i32 = 2;
/// `declare` flag: call the export `lintel_on_complete` after each response.
pub const ON_COMPLETE: i32 = 4;
/// `declare` flag: `handle_request` does nothing but pass the request on,
/// so the host skips the call (an access log, which needs only the
/// completion).
pub const NO_REQUEST: i32 = 8;
/// `declare` flag: a phase's call may end with `memoize`; with
/// `NO_RESPONSE`, or with `STATELESS` for both phases.
pub const MEMOIZABLE: i32 = 16;
/// `declare` flag: `lintel_on_complete` reads only properties and the
/// request's headers, so the host may call it after the request is done,
/// in a batch with other requests' completions (cheaper: the guest's code
/// and memory are still in the CPU's caches). The response's headers
/// cannot be read there.
pub const BATCH_COMPLETE: i32 = 32;
/// `enable_features` flags.
pub const BUFFER_REQUEST: u32 = 1;
pub const BUFFER_RESPONSE: u32 = 2;

/// What `handle_request` returns to go on to the next filter and the
/// target; `req_ctx` comes back to `handle_response`.
pub fn next(req_ctx: u32) -> i64 {
    ((req_ctx as i64) << 32) | 1
}

/// What `handle_request` returns after answering itself (`answer`).
pub const ANSWERED: i64 = 0;

/// Reads a value with the `buf_limit` convention: asks with a buffer,
/// and once more with one of the announced size if it did not fit. The
/// host writes the bytes it reports, so the buffer is not zeroed first.
fn read_with(mut f: impl FnMut(*mut u8, u32) -> u32) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    let mut n = f(buf.as_mut_ptr(), buf.capacity() as u32) as usize;
    if n > buf.capacity() {
        buf.reserve_exact(n);
        n = f(buf.as_mut_ptr(), n as u32) as usize;
    }
    // SAFETY: the host wrote n bytes, n within the capacity it was given.
    unsafe { buf.set_len(n.min(buf.capacity())) };
    buf
}

/// Like `read_with` for results that pack a count or a presence flag in
/// the high 32 bits; `None` when that is 0 (absent).
fn read_list(mut f: impl FnMut(*mut u8, u32) -> u64) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(256);
    let r = f(buf.as_mut_ptr(), buf.capacity() as u32);
    if r >> 32 == 0 {
        return None;
    }
    let mut n = r as u32 as usize;
    if n > buf.capacity() {
        buf.reserve_exact(n);
        n = f(buf.as_mut_ptr(), n as u32) as u32 as usize;
    }
    // SAFETY: as in read_with.
    unsafe { buf.set_len(n.min(buf.capacity())) };
    Some(buf)
}

fn string(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn split_nul(b: &[u8]) -> Vec<String> {
    b.split(|&c| c == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect()
}

fn nul_list(items: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in items {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    out
}

/// Writes to the gateway's log, with the filter's name and the request id.
pub fn log(level: Level, msg: &str) {
    unsafe { raw::log(level as i32, msg.as_ptr(), msg.len() as u32) }
}

/// Whether the gateway's log lets `level` through.
pub fn log_enabled(level: Level) -> bool {
    unsafe { raw::log_enabled(level as i32) == 1 }
}

/// A structured log line: `kv` are key/value pairs.
pub fn log_kv(level: Level, msg: &str, kv: &[(&str, &str)]) {
    let flat: Vec<&str> = kv.iter().flat_map(|(k, v)| [*k, *v]).collect();
    let list = nul_list(&flat);
    unsafe { raw::log_kv(level as i32, msg.as_ptr(), msg.len() as u32, list.as_ptr(), list.len() as u32) }
}

/// The filter's `config` table, as JSON text (`{}` when absent).
pub fn config() -> String {
    string(read_with(|b, l| unsafe { raw::get_config(b, l) }))
}

/// Reads the filter's config with `load`, for `_initialize`. A config
/// that cannot work is logged, naming the plugin, and the instance aborts:
/// the gateway refuses the plugin at load (a reload keeps the running one).
pub fn configure<C>(plugin: &str, load: impl FnOnce(&str) -> Result<C, String>) -> C {
    match load(&config()) {
        Ok(c) => c,
        Err(e) => {
            log(Level::Error, &format!("{} config: {}", plugin, e));
            std::process::abort()
        }
    }
}

/// Enables features; returns those the host supports.
pub fn enable_features(features: u32) -> u32 {
    unsafe { raw::enable_features(features) }
}

pub fn method() -> String {
    string(read_with(|b, l| unsafe { raw::get_method(b, l) }))
}

pub fn set_method(m: &str) {
    unsafe { raw::set_method(m.as_ptr(), m.len() as u32) }
}

/// The request's path (normalised, percent-encoded) and raw query.
pub fn uri() -> String {
    string(read_with(|b, l| unsafe { raw::get_uri(b, l) }))
}

pub fn set_uri(u: &str) {
    unsafe { raw::set_uri(u.as_ptr(), u.len() as u32) }
}

pub fn protocol_version() -> String {
    string(read_with(|b, l| unsafe { raw::get_protocol_version(b, l) }))
}

/// The socket peer, `ip:port`. The client behind trusted proxies is the
/// property `client_ip`.
pub fn source_addr() -> String {
    string(read_with(|b, l| unsafe { raw::get_source_addr(b, l) }))
}

/// Header names, lower case, sorted.
pub fn header_names(kind: Kind) -> Vec<String> {
    read_list(|b, l| unsafe { raw::get_header_names(kind as u32, b, l) }).map(|v| split_nul(&v)).unwrap_or_default()
}

/// Every value of a header, in order.
pub fn header_values(kind: Kind, name: &str) -> Vec<String> {
    read_list(|b, l| unsafe { raw::get_header_values(kind as u32, name.as_ptr(), name.len() as u32, b, l) })
        .map(|v| split_nul(&v))
        .unwrap_or_default()
}

/// The first value of a header.
pub fn header(kind: Kind, name: &str) -> Option<String> {
    header_values(kind, name).into_iter().next()
}

pub fn set_header(kind: Kind, name: &str, value: &str) {
    unsafe { raw::set_header_value(kind as u32, name.as_ptr(), name.len() as u32, value.as_ptr(), value.len() as u32) }
}

pub fn add_header(kind: Kind, name: &str, value: &str) {
    unsafe { raw::add_header_value(kind as u32, name.as_ptr(), name.len() as u32, value.as_ptr(), value.len() as u32) }
}

pub fn remove_header(kind: Kind, name: &str) {
    unsafe { raw::remove_header(kind as u32, name.as_ptr(), name.len() as u32) }
}

/// Reads the whole body (request phase, or a buffered response phase).
pub fn read_body(kind: Kind) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let r = unsafe { raw::read_body(kind as u32, buf.as_mut_ptr(), buf.len() as u32) };
        out.extend_from_slice(&buf[..r as u32 as usize]);
        if r >> 32 == 1 {
            return out;
        }
    }
}

pub fn write_body(kind: Kind, body: &[u8]) {
    unsafe { raw::write_body(kind as u32, body.as_ptr(), body.len() as u32) }
}

pub fn status() -> u32 {
    unsafe { raw::get_status_code() }
}

pub fn set_status(code: u32) {
    unsafe { raw::set_status_code(code) }
}

/// Answers the request from the plugin: status, content type and body.
/// Return `ANSWERED` from `handle_request` after it.
pub fn answer(status: u32, content_type: &str, body: &str) {
    set_status(status);
    set_header(Kind::Response, "content-type", content_type);
    write_body(Kind::Response, body.as_bytes());
}

/// The version of the `lintel` module the host speaks.
pub fn abi_version() -> i32 {
    unsafe { raw::abi_version() }
}

/// Promises about the phases (`STATELESS`, `NO_RESPONSE`, `ON_COMPLETE`);
/// call it from `_initialize`.
pub fn declare(flags: i32) {
    unsafe { raw::declare(flags) }
}

/// Tells the host that this call's outcome depended only on the headers
/// `names` of its phase (request headers in `handle_request`, response
/// headers in `handle_response`) and holds for `ttl_ms` (at most an hour):
/// the host applies the same header changes, properties and metric
/// updates to a later request whose values of them are the same, without
/// calling the guest. Needs `MEMOIZABLE`; what cannot be replayed (an
/// answer, a body, a property read, a log line...) makes the host ignore
/// it. See sdk/ABI.md.
pub fn memoize(names: &[&str], ttl_ms: i32) {
    let list = nul_list(names);
    unsafe { raw::memoize(list.as_ptr(), list.len() as u32, ttl_ms) }
}

/// Wall clock, Unix nanoseconds.
pub fn now() -> i64 {
    unsafe { raw::now() }
}

/// A request property: one a filter before set, or the host's
/// (`client_ip`, `request_id`, `route`, ...).
pub fn property(name: &str) -> Option<String> {
    read_list(|b, l| unsafe { raw::get_property(name.as_ptr(), name.len() as u32, b, l) as u64 }).map(string)
}

/// Several properties read in one host call (a log line reads twenty):
/// `get(i)` is the value of `names[i]`, "" when absent or not UTF-8.
pub struct Properties {
    buf: Vec<u8>,
    /// Where each value is in buf: only spans that are valid UTF-8.
    spans: Vec<(u32, u32)>,
}

impl Properties {
    pub fn get(&self, i: usize) -> &str {
        match self.spans.get(i) {
            // SAFETY: properties() kept only spans that are valid UTF-8.
            Some(&(start, end)) => unsafe { core::str::from_utf8_unchecked(&self.buf[start as usize..end as usize]) },
            None => "",
        }
    }
}

pub fn properties(names: &[&str]) -> Properties {
    properties_of(&PropertyNames::new(names))
}

/// Property names as `get_properties` takes them, joined once: a filter
/// that reads the same properties on every request keeps them.
pub struct PropertyNames {
    list: Vec<u8>,
    count: usize,
}

impl PropertyNames {
    pub fn new(names: &[&str]) -> PropertyNames {
        PropertyNames { list: nul_list(names), count: names.len() }
    }
}

/// `properties` for names joined beforehand.
pub fn properties_of(names: &PropertyNames) -> Properties {
    let call = |buf: &mut Vec<u8>, limit: usize| unsafe {
        raw::get_properties(names.list.as_ptr(), names.list.len() as u32, buf.as_mut_ptr(), limit as u32) as u32 as usize
    };
    let mut buf = Vec::with_capacity(512);
    let mut n = call(&mut buf, 512);
    if n > buf.capacity() {
        buf.reserve_exact(n);
        n = call(&mut buf, n);
    }
    // SAFETY: the host wrote n bytes, n within the capacity it was given.
    unsafe { buf.set_len(n.min(buf.capacity())) };
    let mut spans = Vec::with_capacity(names.count);
    let mut at = 0;
    while at + 4 <= buf.len() {
        let len = u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
        let (start, end) = (at + 4, (at + 4 + len).min(buf.len()));
        let v = &buf[start..end];
        let ok = ascii(v) || core::str::from_utf8(v).is_ok();
        spans.push(if ok { (start as u32, end as u32) } else { (0, 0) });
        at = end;
    }
    Properties { buf, spans }
}

/// Whether b is all ASCII, eight bytes at a time (from_utf8 goes a byte
/// at a time through a short or unaligned value, and a property is both).
fn ascii(b: &[u8]) -> bool {
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    if b.len() < 8 {
        let mut w = [0u8; 8];
        w[..b.len()].copy_from_slice(b);
        return u64::from_le_bytes(w) & HIGHS == 0;
    }
    let mut i = 0;
    while i + 8 <= b.len() {
        if json::word(b, i) & HIGHS != 0 {
            return false;
        }
        i += 8;
    }
    json::word(b, b.len() - 8) & HIGHS == 0 // the last bytes, overlapping
}

pub fn set_property(name: &str, value: &str) {
    unsafe { raw::set_property(name.as_ptr(), name.len() as u32, value.as_ptr(), value.len() as u32) }
}

/// The shared state backend failed (the host logged why).
#[derive(Debug, PartialEq, Eq)]
pub struct StateError;

pub fn state_get(key: &str) -> Result<Option<Vec<u8>>, StateError> {
    let mut buf = vec![0u8; 256];
    let r = unsafe { raw::state_get(key.as_ptr(), key.len() as u32, buf.as_mut_ptr(), buf.len() as u32) };
    if r < 0 {
        return Err(StateError);
    }
    if r == 0 {
        return Ok(None);
    }
    let n = r as u32 as usize;
    if n > buf.len() {
        buf.resize(n, 0);
        unsafe { raw::state_get(key.as_ptr(), key.len() as u32, buf.as_mut_ptr(), n as u32) };
    }
    buf.truncate(n);
    Ok(Some(buf))
}

/// Sets a key; `ttl_ms <= 0` keeps it forever.
pub fn state_set(key: &str, value: &[u8], ttl_ms: i64) -> Result<(), StateError> {
    match unsafe { raw::state_set(key.as_ptr(), key.len() as u32, value.as_ptr(), value.len() as u32, ttl_ms) } {
        0 => Ok(()),
        _ => Err(StateError),
    }
}

/// Sets `key` to `new` if it holds `old` (`None`: if absent); true if swapped.
pub fn state_cas(key: &str, old: Option<&[u8]>, new: &[u8], ttl_ms: i64) -> Result<bool, StateError> {
    let (op, ol) = old.map(|o| (o.as_ptr(), o.len() as i32)).unwrap_or((core::ptr::null(), -1));
    match unsafe { raw::state_cas(key.as_ptr(), key.len() as u32, op, ol, new.as_ptr(), new.len() as u32, ttl_ms) } {
        1 => Ok(true),
        0 => Ok(false),
        _ => Err(StateError),
    }
}

/// Adds `delta` to the integer at `key` and returns the new value.
pub fn state_incr(key: &str, delta: i64, ttl_ms: i64) -> Result<i64, StateError> {
    let mut out = 0i64;
    match unsafe { raw::state_incr(key.as_ptr(), key.len() as u32, delta, ttl_ms, &mut out) } {
        0 => Ok(out),
        _ => Err(StateError),
    }
}

/// One decision of [`rate_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// Requests still admitted at once after this one.
    pub remaining: i64,
    /// When refused, how long until a request would be admitted (ns).
    pub retry_after_ns: i64,
    /// How long until the limit is full again (ns).
    pub reset_ns: i64,
}

/// Decides one request against the rate limit kept at `key`, by GCRA in
/// the host, atomically on the filter's shared state (one Redis round
/// trip in a fleet): one request per `interval_ns` sustained, `burst` at
/// once from idle. An error is the store failing (or an interval or
/// burst that is not positive): the plugin decides whether to admit.
pub fn rate_limit(key: &str, interval_ns: i64, burst: i32) -> Result<RateDecision, StateError> {
    let mut out = [0i64; 3];
    let r = unsafe { raw::rate_limit(key.as_ptr(), key.len() as u32, interval_ns, burst, out.as_mut_ptr()) };
    if r < 0 {
        return Err(StateError);
    }
    Ok(RateDecision { allowed: r == 1, remaining: out[0], retry_after_ns: out[1], reset_ns: out[2] })
}

pub fn state_delete(key: &str) -> Result<(), StateError> {
    match unsafe { raw::state_delete(key.as_ptr(), key.len() as u32) } {
        0 => Ok(()),
        _ => Err(StateError),
    }
}

/// Metric kinds.
#[derive(Clone, Copy, Debug)]
pub enum MetricKind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

/// A metric the plugin defined; exported as `lintel_plugin_<name>`.
#[derive(Clone, Copy, Debug)]
pub struct Metric(i32);

/// Defines a metric; `None` when the name is invalid or taken by another kind.
pub fn metric(kind: MetricKind, name: &str, help: &str, labels: &[&str]) -> Option<Metric> {
    let l = nul_list(labels);
    let id = unsafe { raw::metric_define(kind as i32, name.as_ptr(), name.len() as u32, help.as_ptr(), help.len() as u32, l.as_ptr(), l.len() as u32) };
    if id < 0 {
        None
    } else {
        Some(Metric(id))
    }
}

impl Metric {
    /// Counter: adds; gauge: sets; histogram: observes.
    pub fn update(self, value: f64, label_values: &[&str]) {
        // Label values are short: a list of up to 64 bytes is built on
        // the stack.
        let mut small = [0u8; 64];
        let len: usize = label_values.iter().map(|v| v.len() + 1).sum();
        if len > small.len() {
            let l = nul_list(label_values);
            return unsafe { raw::metric_update(self.0, value, l.as_ptr(), l.len() as u32) };
        }
        let mut at = 0;
        for v in label_values {
            small[at..at + v.len()].copy_from_slice(v.as_bytes());
            at += v.len() + 1;
        }
        unsafe { raw::metric_update(self.0, value, small.as_ptr(), len as u32) }
    }
}

/// Why an outbound call did not return a status.
#[derive(Debug, PartialEq, Eq)]
pub enum CallError {
    NotAllowed,
    Failed,
    TooLarge,
}

/// A blocking HTTP call within the filter's `outbound` allow-list.
/// Returns the status; read the response with `call_response_header`
/// and `call_response_body`.
pub fn http_call(method: &str, url: &str, headers: &[&str], body: &[u8]) -> Result<u32, CallError> {
    let h = nul_list(headers);
    let r = unsafe {
        raw::http_call(method.as_ptr(), method.len() as u32, url.as_ptr(), url.len() as u32, h.as_ptr(), h.len() as u32, body.as_ptr(), body.len() as u32)
    };
    match r {
        -1 => Err(CallError::NotAllowed),
        -3 => Err(CallError::TooLarge),
        r if r < 0 => Err(CallError::Failed),
        r => Ok(r as u32),
    }
}

pub fn call_response_header(name: &str) -> Option<String> {
    read_list(|b, l| unsafe { raw::http_response_header(name.as_ptr(), name.len() as u32, b, l) as u64 })
        .and_then(|v| split_nul(&v).into_iter().next())
}

pub fn call_response_body() -> Vec<u8> {
    read_with(|b, l| unsafe { raw::http_response_body(b, l) as u32 })
}

/// Writes one raw line to the filter's `output`; false when it has none.
pub fn emit(line: &str) -> bool {
    unsafe { raw::emit(line.as_ptr(), line.len() as u32) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_at_every_length_and_offset() {
        for n in 0..24 {
            let plain = vec![b'a'; n];
            assert!(ascii(&plain), "{} ASCII bytes", n);
            for at in 0..n {
                let mut b = plain.clone();
                b[at] = 0x80;
                assert!(!ascii(&b), "a high byte at {} of {}", at, n);
            }
        }
    }
}
