//! rate-limit: Lintel's bundled rate limiter. GCRA (the generic cell rate
//! algorithm, a token bucket without a timer), decided by the host in one
//! atomic operation on the filter's shared state (`lintel.rate_limit`), so
//! it is exact under concurrency in one gatewayd or a fleet sharing Redis:
//! over any interval t from an idle start it admits at most
//! burst + rate x t requests, on the Redis server's clock.
//!
//! ```toml
//! [filters.limit]
//! plugin = "rate-limit"
//! config = { key = ["client_ip"], rate = 10, period = "1s", burst = 20, on_state_error = "allow",
//!            consumers = { alice = { rate = 100, burst = 200 } } }
//! ```
//!
//! Key parts: "client_ip", "route", "header:NAME", "property:NAME".
//! Answers 429 with Retry-After; every answer carries the RateLimit-Policy
//! and RateLimit fields of draft-ietf-httpapi-ratelimit-headers-10. The
//! host has checked the config's shape against schema.json.

mod sha256;

use lintel::json::{self, Value};
use lintel::{Kind, Level, Metric, MetricKind};
use std::cell::RefCell;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Limit {
    rate: f64,
    burst: i64,
}

struct Config {
    key: Vec<String>,
    period_ns: f64,
    limit: Limit,
    /// The policy's name as a quoted string, for the headers.
    policy: String,
    deny_on_state_error: bool,
    consumers: Vec<(String, Limit)>,
    decisions: Option<Metric>,
}

/// parse_duration reads a Go duration ("1s", "1m30s", "250ms").
fn parse_duration(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * unit;
        rest = &rest[u..];
    }
    Some(total)
}

fn number(v: Option<&Value>, key: &str) -> Result<Option<f64>, String> {
    match v {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| format!("{} must be a number", key)),
    }
}

fn limit(v: &Value, what: &str) -> Result<Limit, String> {
    let rate = number(v.get("rate"), "rate")?.unwrap_or(0.0);
    let burst = number(v.get("burst"), "burst")?.unwrap_or(0.0);
    if !(rate > 0.0) || burst < 1.0 || burst.fract() != 0.0 || burst > i32::MAX as f64 {
        return Err(format!("{}: rate must be > 0 and burst a whole number >= 1", what));
    }
    Ok(Limit { rate, burst: burst as i64 })
}

fn text<'a>(v: &'a Value, key: &str, default: &'a str) -> Result<&'a str, String> {
    match v.get(key) {
        None => Ok(default),
        Some(s) => s.as_str().ok_or_else(|| format!("{} must be a string", key)),
    }
}

/// quote writes s as a quoted string of the structured-fields headers.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn load(config: &str) -> Result<Config, String> {
    let v = json::parse(config).map_err(|e| e.to_string())?;
    let key = match v.get("key") {
        None => vec!["client_ip".to_string()],
        Some(parts) => match json::strings(Some(parts), "key")? {
            parts if parts.is_empty() => return Err("key must name at least one part".into()),
            parts => parts,
        },
    };
    for k in &key {
        if k != "client_ip" && k != "route" && !k.starts_with("header:") && !k.starts_with("property:") {
            return Err(format!("key part {:?} (client_ip, route, header:NAME, property:NAME)", k));
        }
    }
    let period = text(&v, "period", "1s")?;
    let period_ns = parse_duration(period).filter(|d| *d > 0.0).ok_or_else(|| format!("period {:?}", period))?;
    let on_error = text(&v, "on_state_error", "allow")?;
    if on_error != "allow" && on_error != "deny" {
        return Err(format!("on_state_error must be allow or deny, not {:?}", on_error));
    }
    let mut consumers = Vec::new();
    match v.get("consumers") {
        None => {}
        Some(Value::Object(members)) => {
            for (name, l) in members {
                consumers.push((name.clone(), limit(l, &format!("consumers.{}", name))?));
            }
        }
        Some(_) => return Err("consumers must be a table".into()),
    }
    Ok(Config {
        key,
        period_ns,
        limit: limit(&v, "the limit")?,
        policy: quote(text(&v, "policy", "default")?),
        deny_on_state_error: on_error == "deny",
        consumers,
        decisions: None,
    })
}

thread_local! {
    static CONFIG: RefCell<Option<Config>> = RefCell::new(None);
}

#[no_mangle]
pub extern "C" fn _initialize() {
    let mut c = lintel::configure("rate-limit", load);
    c.decisions = lintel::metric(MetricKind::Counter, "rate_limit_decisions_total", "Rate limit decisions.", &["result"]);
    CONFIG.with(|cell| *cell.borrow_mut() = Some(c));
    // The RateLimit fields go on the response from the request phase,
    // so there is no response phase to run.
    lintel::declare(lintel::STATELESS | lintel::NO_RESPONSE);
}

/// rate_key is the store's key for a key built from the configured parts.
/// One built from what clients send (header values) is kept to a bounded
/// size: a long one is replaced by its SHA-256, so a client cannot make
/// the store keep keys of its choosing size. "rate:", not the "gcra:" of
/// an older plugin-side limiter, whose values were in another unit: the
/// two never read each other's keys.
fn rate_key(k: &str) -> String {
    if k.len() <= 128 {
        let mut out = String::with_capacity(5 + k.len());
        out.push_str("rate:");
        out.push_str(k);
        return out;
    }
    let mut out = String::with_capacity(5 + 7 + 64);
    out.push_str("rate:");
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("sha256:");
    for b in sha256::sum(k.as_bytes()) {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
    out
}

/// key builds the limited key from the configured parts, and returns the
/// first part's value: the consumer, for per-consumer limits.
fn key(c: &Config) -> (String, String) {
    if c.key.len() == 1 && c.key[0] == "client_ip" {
        let ip = lintel::property("client_ip").unwrap_or_default();
        return (rate_key(&ip), ip);
    }
    let parts: Vec<String> = c
        .key
        .iter()
        .map(|p| {
            if let Some(name) = p.strip_prefix("header:") {
                lintel::header(Kind::Request, name).unwrap_or_default()
            } else {
                lintel::property(p.strip_prefix("property:").unwrap_or(p)).unwrap_or_default()
            }
        })
        .collect();
    (rate_key(&parts.join("|")), parts[0].clone())
}

fn seconds(ns: f64) -> i64 {
    (ns / 1e9).ceil() as i64
}

/// field is a RateLimit or RateLimit-Policy field: policy;a=av;b=bv.
fn field(policy: &str, a: &str, av: i64, b: &str, bv: i64) -> String {
    let mut out = String::with_capacity(policy.len() + a.len() + b.len() + 24);
    out.push_str(policy);
    for (name, v) in [(a, av), (b, bv)] {
        out.push(';');
        out.push_str(name);
        out.push('=');
        push_int(&mut out, v);
    }
    out
}

/// push_int appends v in decimal.
fn push_int(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    let (mut n, mut digits, mut i) = (v.unsigned_abs(), [0u8; 20], 20);
    // WebAssembly's i64.div_u is a hardware divide, tens of cycles a
    // digit; a value that fits 32 bits is divided by multiplying instead
    // (n / 10 == n * 0xCCCCCCCD >> 35 for every u32 n).
    while n > u32::MAX as u64 {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let mut n = n as u32;
    loop {
        let q = ((n as u64 * 0xCCCC_CCCD) >> 35) as u32;
        i -= 1;
        digits[i] = b'0' + (n - q * 10) as u8;
        n = q;
        if n == 0 {
            break;
        }
    }
    // SAFETY: ASCII digits.
    out.push_str(unsafe { std::str::from_utf8_unchecked(&digits[i..]) });
}

fn count(c: &Config, result: &str) {
    if let Some(m) = c.decisions {
        m.update(1.0, &[result]);
    }
}

#[no_mangle]
pub extern "C" fn handle_request() -> i64 {
    CONFIG.with(|cell| {
        let c = cell.borrow();
        let c = c.as_ref().expect("configured in _initialize");
        let (k, consumer) = key(c);
        let l = c.consumers.iter().find(|(name, _)| *name == consumer).map(|(_, l)| *l).unwrap_or(c.limit);
        let interval = (c.period_ns / l.rate) as i64; // truncated to whole ns, as the host keeps it
        match lintel::rate_limit(&k, interval, l.burst as i32) {
            Err(_) => {
                let policy = if c.deny_on_state_error { "deny" } else { "allow" };
                lintel::log_kv(Level::Warn, "rate limit state unavailable", &[("policy", policy), ("error", "shared state unavailable")]);
                count(c, if c.deny_on_state_error { "state_error_deny" } else { "state_error_allow" });
                if c.deny_on_state_error {
                    return answer(503, "rate limit unavailable", 1);
                }
                lintel::next(0)
            }
            Ok(d) => {
                let policy = field(&c.policy, "q", l.burst, "w", seconds((interval * l.burst) as f64));
                let fields = field(&c.policy, "r", d.remaining, "t", seconds(d.reset_ns as f64));
                // Set now, they reach whatever answers: the upstream (its
                // own RateLimit policies, if any, join the lists), the
                // gateway, or this filter's 429.
                lintel::set_header(Kind::Response, "ratelimit-policy", &policy);
                lintel::set_header(Kind::Response, "ratelimit", &fields);
                if !d.allowed {
                    count(c, "limited");
                    return answer(429, "rate limit exceeded", seconds(d.retry_after_ns as f64));
                }
                count(c, "allowed");
                lintel::next(0)
            }
        }
    })
}

#[no_mangle]
pub extern "C" fn handle_response(_req_ctx: i32, _is_error: i32) {}


/// answer refuses the request with a problem+json body.
fn answer(status: u32, detail: &str, retry_after: i64) -> i64 {
    let id = lintel::property("request_id").unwrap_or_default();
    let title = if status == 429 { "Too Many Requests" } else { "Service Unavailable" };
    lintel::set_header(Kind::Response, "retry-after", &retry_after.max(1).to_string());
    let mut body = String::from("{\"detail\":");
    json::write_string(&mut body, detail);
    body.push_str(",\"request_id\":");
    json::write_string(&mut body, &id);
    body.push_str(&format!(",\"status\":{},\"title\":", status));
    json::write_string(&mut body, title);
    body.push('}');
    lintel::answer(status, "application/problem+json", &body);
    lintel::ANSWERED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Some(1e9));
        assert_eq!(parse_duration("1m30s"), Some(90e9));
        assert_eq!(parse_duration("250ms"), Some(250e6));
        assert_eq!(parse_duration("1.5h"), Some(5400e9));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn config() {
        let c = load(r#"{"rate":10,"burst":20}"#).unwrap();
        assert_eq!(c.key, vec!["client_ip"]);
        assert_eq!(c.period_ns, 1e9);
        assert_eq!(c.policy, "\"default\"");
        assert!(!c.deny_on_state_error);
        let c = load(r#"{"key":["property:user","route"],"rate":1,"burst":1,"consumers":{"alice":{"rate":1,"burst":3}}}"#).unwrap();
        assert_eq!(c.consumers, vec![("alice".to_string(), Limit { rate: 1.0, burst: 3 })]);
        for bad in [
            r#"{"rate":0,"burst":1}"#,
            r#"{"rate":1,"burst":0}"#,
            r#"{"rate":1,"burst":1.5}"#,
            r#"{"rate":1,"burst":1,"period":"x"}"#,
            r#"{"rate":1,"burst":1,"key":["nope"]}"#,
            r#"{"rate":1,"burst":1,"on_state_error":"maybe"}"#,
            r#"{"rate":1,"burst":1,"consumers":{"bob":{"rate":1}}}"#,
        ] {
            assert!(load(bad).is_err(), "accepted {}", bad);
        }
    }

    // TestLongKeyPartsAreHashed: keyed on header:NAME, the raw header
    // value was the state key, so 60 KiB values made 60 KiB keys.
    #[test]
    fn long_key_parts_are_hashed() {
        assert_eq!(rate_key(&"x".repeat(60 << 10)).len(), "rate:sha256:".len() + 64);
        assert_eq!(rate_key("client|1.2.3.4"), "rate:client|1.2.3.4");
        assert_eq!(rate_key(&"a".repeat(128)), format!("rate:{}", "a".repeat(128)));
        assert_eq!(rate_key(&"a".repeat(129)), "rate:sha256:c12cb024a2e5551cca0e08fce8f1c5e314555cc3fef6329ee994a3db752166ae");
    }

    #[test]
    fn integers() {
        for v in [0, 1, 9, 10, 99, 100, 1_000_000, 4_294_967_295, 4_294_967_296, -1, -4_294_967_296, i64::MAX, i64::MIN] {
            let mut s = String::new();
            push_int(&mut s, v);
            assert_eq!(s, v.to_string());
        }
        // The multiply-and-shift against a divide, across the u32 range.
        let mut n: u64 = 1;
        while n <= u32::MAX as u64 {
            assert_eq!((n * 0xCCCC_CCCD) >> 35, n / 10, "{}", n);
            n += 997 + n / 7;
        }
        assert_eq!(((u32::MAX as u64 * 0xCCCC_CCCD) >> 35) as u32, u32::MAX / 10);
    }

    #[test]
    fn headers() {
        assert_eq!(quote("default"), "\"default\"");
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
        assert_eq!(field("\"default\"", "q", 5, "w", 5), "\"default\";q=5;w=5");
        assert_eq!(field("\"p\"", "r", 0, "t", -12), "\"p\";r=0;t=-12");
        assert_eq!(field("\"p\"", "r", i64::MAX, "t", i64::MIN), format!("\"p\";r={};t={}", i64::MAX, i64::MIN));
        assert_eq!(seconds(1.0), 1);
        assert_eq!(seconds(1e9), 1);
        assert_eq!(seconds(1e9 + 1.0), 2);
    }
}
