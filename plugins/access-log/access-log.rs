//! access-log: Lintel's bundled access log. One line per request, written
//! when the response is complete (streams included), to the filter's
//! output (stdout, stderr or a file) as the plain line itself.
//!
//! ```toml
//! [filters.access-log]
//! output = "stdout"
//! config = { format = "json", redact = ["Authorization", "Cookie"], headers = ["User-Agent"], sample = 1.0 }
//! ```
//!
//! format: "json" (default), "common" or "combined" (NCSA). headers names
//! request headers to include in JSON lines; those in redact appear as
//! "[REDACTED]". sample keeps that fraction of lines (by request id, so a
//! request is kept or dropped the same way everywhere). The host has
//! checked the config's shape against schema.json.

use lintel::json;
use lintel::{Kind, Metric, MetricKind};
use std::cell::RefCell;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Format {
    Json,
    Common,
    Combined,
}

struct Config {
    format: Format,
    /// Request headers for JSON lines: (name as written in the line,
    /// redacted).
    headers: Vec<(String, bool)>,
    sample: f64,
    lines: Option<Metric>,
    properties: lintel::PropertyNames,
}

fn load(config: &str) -> Result<Config, String> {
    let v = json::parse(config).map_err(|e| e.to_string())?;
    let format = match v.get("format").map(|f| f.as_str()) {
        None => Format::Json,
        Some(Some("json")) => Format::Json,
        Some(Some("common")) => Format::Common,
        Some(Some("combined")) => Format::Combined,
        Some(other) => return Err(format!("format must be json, common or combined, not {:?}", other.unwrap_or("(not a string)"))),
    };
    let sample = match v.get("sample") {
        None => 1.0,
        Some(s) => match s.as_f64() {
            Some(f) if (0.0..=1.0).contains(&f) => f,
            _ => return Err("sample must be between 0 and 1".into()),
        },
    };
    let redact: Vec<String> = json::strings(v.get("redact"), "redact")?.iter().map(|h| h.to_ascii_lowercase()).collect();
    let headers = json::strings(v.get("headers"), "headers")?
        .into_iter()
        .map(|h| {
            let lower = h.to_ascii_lowercase();
            let hidden = redact.contains(&lower);
            (lower, hidden)
        })
        .collect();
    Ok(Config { format, headers, sample, lines: None, properties: lintel::PropertyNames::new(&PROPERTIES) })
}

thread_local! {
    static CONFIG: RefCell<Option<Config>> = RefCell::new(None);
    /// The line being written, kept between requests for its capacity.
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(1024));
}

#[no_mangle]
pub extern "C" fn _initialize() {
    let mut c = lintel::configure("access-log", load);
    c.lines = lintel::metric(MetricKind::Counter, "access_log_lines_total", "Access log lines written or dropped.", &["result"]);
    CONFIG.with(|cell| *cell.borrow_mut() = Some(c));
    // Nothing happens before the response is complete; a line needs
    // properties and request headers only, so lines are made in batches.
    lintel::declare(lintel::STATELESS | lintel::NO_RESPONSE | lintel::NO_REQUEST | lintel::ON_COMPLETE | lintel::BATCH_COMPLETE);
}

#[no_mangle]
pub extern "C" fn handle_request() -> i64 {
    lintel::next(0)
}

#[no_mangle]
pub extern "C" fn handle_response(_req_ctx: i32, _is_error: i32) {}

#[no_mangle]
pub extern "C" fn lintel_on_complete() {
    CONFIG.with(|cell| {
        let c = cell.borrow();
        let c = c.as_ref().expect("configured in _initialize");
        // Every property a line needs, in one host call.
        let p = lintel::properties_of(&c.properties);
        let result = if !sampled(p.get(REQUEST_ID), c.sample) {
            "sampled_out"
        } else {
            let written = LINE.with(|line| {
                let mut line = line.borrow_mut();
                line.clear();
                match c.format {
                    Format::Json => json_line(&mut line, c, &p),
                    f => line.push_str(&ncsa_line(f == Format::Combined, &p)),
                }
                lintel::emit(&line)
            });
            if written {
                "written"
            } else {
                "no_output"
            }
        };
        if let Some(m) = c.lines {
            m.update(1.0, &[result]);
        }
    })
}

/// The properties a line is made of, and their indexes in PROPERTIES.
const PROPERTIES: [&str; 19] = [
    "request_id", "start_time", "trace_id", "client_ip", "method", "path", "status", "duration_ms", "bytes_in",
    "bytes_out", "route", "listener", "upstream", "upstream_retries", "user", "grpc_status", "failed_parts", "uri",
    "protocol",
];
const REQUEST_ID: usize = 0;
const START_TIME: usize = 1;
const TRACE_ID: usize = 2;
const CLIENT_IP: usize = 3;
const METHOD: usize = 4;
const PATH: usize = 5;
const STATUS: usize = 6;
const DURATION_MS: usize = 7;
const BYTES_IN: usize = 8;
const BYTES_OUT: usize = 9;
const ROUTE: usize = 10;
const LISTENER: usize = 11;
const UPSTREAM: usize = 12;
const RETRIES: usize = 13;
const USER: usize = 14;
const GRPC_STATUS: usize = 15;
const FAILED_PARTS: usize = 16;
const URI: usize = 17;
const PROTOCOL: usize = 18;

/// is_number reports whether v is a JSON number as the host writes its
/// properties: an optional '-', digits, and optionally '.' and digits.
fn is_number(v: &str) -> bool {
    let b = v.as_bytes();
    let mut i = if b.first() == Some(&b'-') { 1 } else { 0 };
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// sampled keeps a request when the FNV-1a hash of its id falls under the
/// rate.
fn sampled(id: &str, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    let mut h: u32 = 0x811c9dc5;
    for b in id.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    (h as f64) / 4294967296.0 < rate
}


/// json_line writes the record by hand, in a fixed field order, to b.
fn json_line(b: &mut String, c: &Config, p: &lintel::Properties) {
    // A field is its constant `,"key":` (keys need no escape), then its
    // value.
    let str_field = |b: &mut String, prefix: &str, v: &str| {
        b.push_str(prefix);
        json::write_string(b, v);
    };
    let num_field = |b: &mut String, prefix: &str, v: &str| {
        b.push_str(prefix);
        b.push_str(if is_number(v) { v } else { "null" });
    };
    str_field(b, "{\"time\":", p.get(START_TIME));
    str_field(b, ",\"request_id\":", p.get(REQUEST_ID));
    let trace = p.get(TRACE_ID);
    if !trace.is_empty() {
        str_field(b, ",\"trace_id\":", trace);
    }
    str_field(b, ",\"client_ip\":", p.get(CLIENT_IP));
    str_field(b, ",\"method\":", p.get(METHOD));
    str_field(b, ",\"path\":", p.get(PATH));
    str_field(b, ",\"uri\":", p.get(URI));
    str_field(b, ",\"proto\":", p.get(PROTOCOL));
    num_field(b, ",\"status\":", p.get(STATUS));
    num_field(b, ",\"duration_ms\":", p.get(DURATION_MS));
    num_field(b, ",\"bytes_in\":", p.get(BYTES_IN));
    num_field(b, ",\"bytes_out\":", p.get(BYTES_OUT));
    str_field(b, ",\"route\":", p.get(ROUTE));
    str_field(b, ",\"listener\":", p.get(LISTENER));
    str_field(b, ",\"upstream\":", p.get(UPSTREAM));
    let retries = p.get(RETRIES);
    if !retries.is_empty() {
        num_field(b, ",\"retries\":", retries);
    }
    str_field(b, ",\"user\":", p.get(USER));
    let gs = p.get(GRPC_STATUS);
    if !gs.is_empty() {
        num_field(b, ",\"grpc_status\":", gs);
    }
    let failed = p.get(FAILED_PARTS);
    if !failed.is_empty() {
        b.push_str(",\"failed_parts\":[");
        for (i, p) in failed.split(',').enumerate() {
            if i > 0 {
                b.push(',');
            }
            json::write_string(b, p);
        }
        b.push(']');
    }
    if !c.headers.is_empty() {
        b.push_str(",\"headers\":{");
        let mut n = 0;
        for (name, hidden) in &c.headers {
            let v = match lintel::header(Kind::Request, name) {
                Some(v) if !v.is_empty() => v,
                _ => continue,
            };
            if n > 0 {
                b.push(',');
            }
            n += 1;
            json::write_string(b, name);
            b.push(':');
            json::write_string(b, if *hidden { "[REDACTED]" } else { &v });
        }
        b.push('}');
    }
    b.push('}');
}

/// quote writes s as Go's strconv.Quote does for the text of a request
/// line: backslash escapes for quotes, backslashes and control bytes.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// clf_time turns the host's start_time (RFC 3339, UTC) into the Common
/// Log Format's "[02/Jan/2006:15:04:05 +0000]"; now_ns (Unix time) stands
/// in when start_time cannot be read.
fn clf_time(start: &str, now_ns: i64) -> String {
    let b = start.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> { start.get(r)?.parse().ok() };
    let parsed = (|| {
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || !start.ends_with('Z') {
            return None;
        }
        Some((digits(0..4)? as i64, digits(5..7)?, digits(8..10)?, digits(11..13)?, digits(14..16)?, digits(17..19)?))
    })();
    let (y, mo, d, h, mi, s) = match parsed {
        Some(p) if (1..=12).contains(&p.1) => p,
        _ => civil(now_ns.div_euclid(1_000_000_000)),
    };
    format!("[{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000]", d, MONTHS[(mo - 1) as usize], y, h, mi, s)
}

/// civil converts Unix seconds to a UTC date and time (Howard Hinnant's
/// days-from-civil, inverted).
fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d, (rem / 3600) as u32, (rem % 3600 / 60) as u32, (rem % 60) as u32)
}

/// ncsa_line is the Common Log Format, or Combined with referer and agent:
/// host ident user [time] "request" status bytes ["referer" "agent"].
fn ncsa_line(combined: bool, p: &lintel::Properties) -> String {
    let dash = |s: String| if s.is_empty() { "-".to_string() } else { s };
    let mut b = format!(
        "{} - {} {} {} {} {}",
        dash(p.get(CLIENT_IP).to_string()),
        dash(p.get(USER).to_string()),
        clf_time(p.get(START_TIME), lintel::now()),
        quote(&format!("{} {} {}", p.get(METHOD), p.get(URI), p.get(PROTOCOL))),
        dash(p.get(STATUS).to_string()),
        dash(p.get(BYTES_OUT).to_string())
    );
    if combined {
        let h = |name: &str| dash(lintel::header(Kind::Request, name).unwrap_or_default());
        b.push_str(&format!(" {} {}", quote(&h("referer")), quote(&h("user-agent"))));
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config() {
        let c = load(r#"{"headers":["User-Agent","Authorization"],"redact":["authorization"]}"#).unwrap();
        assert_eq!(c.format, Format::Json);
        assert_eq!(c.headers, vec![("user-agent".to_string(), false), ("authorization".to_string(), true)]);
        assert_eq!(load(r#"{"format":"combined"}"#).unwrap().format, Format::Combined);
        assert!(load(r#"{"format":"xml"}"#).is_err());
        assert!(load(r#"{"sample":1.5}"#).is_err());
    }

    #[test]
    fn times() {
        assert_eq!(clf_time("2026-11-25T10:00:00.5Z", 0), "[25/Nov/2026:10:00:00 +0000]");
        assert_eq!(clf_time("2026-01-02T03:04:05Z", 0), "[02/Jan/2026:03:04:05 +0000]");
        // Unreadable: the clock instead (2026-11-25T10:00:00Z).
        assert_eq!(clf_time("", 1_795_600_800_000_000_000), "[25/Nov/2026:10:00:00 +0000]");
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
    }

    #[test]
    fn sampling_is_by_request_id() {
        assert!(sampled("anything", 1.0));
        assert!(!sampled("anything", 0.0));
        let kept = (0..10000).filter(|i| sampled(&format!("req-{}", i), 0.25)).count();
        assert!((2200..2800).contains(&kept), "kept {} of 10000 at 0.25", kept);
        assert_eq!(sampled("req-7", 0.5), sampled("req-7", 0.5));
    }

    #[test]
    fn numbers() {
        for ok in ["0", "200", "-1", "12.345", "0.5"] {
            assert!(is_number(ok), "{:?}", ok);
        }
        for bad in ["", "-", ".5", "5.", "1.2.3", "1e3", "abc", "12a", "--1"] {
            assert!(!is_number(bad), "{:?}", bad);
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("GET /a?b=\"c\" HTTP/1.1"), "\"GET /a?b=\\\"c\\\" HTTP/1.1\"");
        assert_eq!(quote("a\u{1}"), "\"a\\x01\"");
    }
}
