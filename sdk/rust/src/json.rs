//! A small JSON reader for filter configs (RFC 8259; no serde here).

use std::fmt;

/// A JSON value. Objects keep their members in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// A config member that is a list of strings: empty when absent, an error
/// naming `key` when it is anything else.
pub fn strings(v: Option<&Value>, key: &str) -> Result<Vec<String>, String> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(|i| i.as_str().map(str::to_string).ok_or_else(|| format!("{}: every entry must be a string", key))).collect(),
        Some(_) => Err(format!("{} must be a list of strings", key)),
    }
}

/// A config member that is a table of strings, in its order: empty when
/// absent, an error naming `key` when it is anything else.
pub fn string_table(v: Option<&Value>, key: &str) -> Result<Vec<(String, String)>, String> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::Object(members)) => members
            .iter()
            .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())).ok_or_else(|| format!("{}.{} must be a string", key, k)))
            .collect(),
        Some(_) => Err(format!("{} must be a table of strings", key)),
    }
}

/// Appends `s` to `out` as a JSON string: quotes and backslashes escaped,
/// control characters as \u00XX.
pub fn write_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    // Runs of bytes that need no escape are copied whole, found eight
    // bytes at a time: every byte of a multi-byte UTF-8 character is
    // >= 0x80, so cutting at an escaped ASCII byte never splits one.
    let b = s.as_bytes();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        if i + 8 <= b.len() && !word_needs_escape(word(b, i)) {
            i += 8;
            continue;
        }
        let c = b[i];
        if c == b'"' || c == b'\\' || c < 0x20 {
            out.push_str(&s[start..i]);
            match c {
                b'"' => out.push_str("\\\""),
                b'\\' => out.push_str("\\\\"),
                _ => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.push_str("\\u00");
                    out.push(HEX[(c >> 4) as usize] as char);
                    out.push(HEX[(c & 15) as usize] as char);
                }
            }
            start = i + 1;
        }
        i += 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// The eight bytes of b at i as one little-endian word: one load, where
/// eight indexed reads may stay eight.
#[inline(always)]
pub(crate) fn word(b: &[u8], i: usize) -> u64 {
    assert!(i + 8 <= b.len());
    // SAFETY: in bounds, checked above; any alignment is read.
    u64::from_le(unsafe { core::ptr::read_unaligned(b.as_ptr().add(i) as *const u64) })
}

/// Whether any of the eight bytes in w is '"', '\\' or below 0x20 (the
/// bit tricks of "Bit Twiddling Hacks": a byte is zero, or less than n).
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let less = |v: u64, n: u64| v.wrapping_sub(ONES * n) & !v & HIGHS != 0;
    less(w, 0x20) || less(w ^ (ONES * b'"' as u64), 1) || less(w ^ (ONES * b'\\' as u64), 1)
}

/// A syntax error and the byte offset where it was found.
#[derive(Debug, PartialEq)]
pub struct Error {
    pub offset: usize,
    pub msg: &'static str,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.offset, self.msg)
    }
}

/// Parses one JSON document.
pub fn parse(s: &str) -> Result<Value, Error> {
    let mut p = Parser { b: s.as_bytes(), i: 0, depth: 0 };
    let v = p.value()?;
    p.ws();
    if p.i != p.b.len() {
        return p.err("trailing characters");
    }
    Ok(v)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn err<T>(&self, msg: &'static str) -> Result<T, Error> {
        Err(Error { offset: self.i, msg })
    }

    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.b[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Value, Error> {
        self.ws();
        if self.depth > 64 {
            return self.err("nested too deeply");
        }
        match self.b.get(self.i) {
            None => self.err("unexpected end"),
            Some(b'{') => {
                self.i += 1;
                self.depth += 1;
                let mut members = Vec::new();
                self.ws();
                if self.eat("}") {
                    self.depth -= 1;
                    return Ok(Value::Object(members));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.ws();
                    if !self.eat(":") {
                        return self.err("expected ':'");
                    }
                    members.push((k, self.value()?));
                    self.ws();
                    if self.eat(",") {
                        continue;
                    }
                    if self.eat("}") {
                        self.depth -= 1;
                        return Ok(Value::Object(members));
                    }
                    return self.err("expected ',' or '}'");
                }
            }
            Some(b'[') => {
                self.i += 1;
                self.depth += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat("]") {
                    self.depth -= 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    if self.eat(",") {
                        continue;
                    }
                    if self.eat("]") {
                        self.depth -= 1;
                        return Ok(Value::Array(items));
                    }
                    return self.err("expected ',' or ']'");
                }
            }
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') if self.eat("true") => Ok(Value::Bool(true)),
            Some(b'f') if self.eat("false") => Ok(Value::Bool(false)),
            Some(b'n') if self.eat("null") => Ok(Value::Null),
            Some(c) if *c == b'-' || c.is_ascii_digit() => self.number(),
            _ => self.err("unexpected character"),
        }
    }

    fn number(&mut self) -> Result<Value, Error> {
        let start = self.i;
        while self.i < self.b.len() && matches!(self.b[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).unwrap_or("");
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Value::Number(n)),
            _ => Err(Error { offset: start, msg: "invalid number" }),
        }
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let s = self.b.get(self.i..self.i + 4).and_then(|h| std::str::from_utf8(h).ok());
        match s.and_then(|h| u32::from_str_radix(h, 16).ok()) {
            Some(v) => {
                self.i += 4;
                Ok(v)
            }
            None => self.err("invalid \\u escape"),
        }
    }

    fn string(&mut self) -> Result<String, Error> {
        if !self.eat("\"") {
            return self.err("expected a string");
        }
        let mut out = String::new();
        loop {
            let start = self.i;
            while self.i < self.b.len() && self.b[self.i] != b'"' && self.b[self.i] != b'\\' {
                if self.b[self.i] < 0x20 {
                    return self.err("control character in a string");
                }
                self.i += 1;
            }
            out.push_str(std::str::from_utf8(&self.b[start..self.i]).map_err(|_| Error { offset: start, msg: "invalid UTF-8" })?);
            match self.b.get(self.i) {
                None => return self.err("unterminated string"),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                _ => {}
            }
            self.i += 1; // the backslash
            let c = match self.b.get(self.i) {
                Some(c) => *c,
                None => return self.err("unterminated string"),
            };
            self.i += 1;
            match c {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    let mut cp = self.hex4()?;
                    if (0xD800..0xDC00).contains(&cp) && self.eat("\\u") {
                        let lo = self.hex4()?;
                        if !(0xDC00..0xE000).contains(&lo) {
                            return self.err("invalid surrogate pair");
                        }
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    match char::from_u32(cp) {
                        Some(ch) => out.push(ch),
                        None => return self.err("invalid code point"),
                    }
                }
                _ => return self.err("invalid escape"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_configs() {
        let v = parse(r#" {"allow": ["10.0.0.0/8", "::1"], "status": 403, "on": true, "x": null, "s": "a\"\u00e9\ud83d\ude00"} "#).unwrap();
        assert_eq!(v.get("allow").unwrap().as_array().unwrap()[1].as_str(), Some("::1"));
        assert_eq!(v.get("status").unwrap().as_f64(), Some(403.0));
        assert_eq!(v.get("on").unwrap().as_bool(), Some(true));
        assert_eq!(v.get("s").unwrap().as_str(), Some("a\"é😀"));
        assert_eq!(v.get("missing"), None);
    }

    #[test]
    fn reads_lists_and_tables_of_strings() {
        let v = parse(r#"{"l": ["a", "b"], "t": {"x": "1", "y": "2"}, "n": [1], "o": {"x": 1}}"#).unwrap();
        assert_eq!(strings(v.get("l"), "l"), Ok(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(strings(v.get("missing"), "m"), Ok(vec![]));
        assert_eq!(strings(v.get("n"), "n"), Err("n: every entry must be a string".to_string()));
        assert_eq!(strings(v.get("t"), "t"), Err("t must be a list of strings".to_string()));
        assert_eq!(string_table(v.get("t"), "t"), Ok(vec![("x".to_string(), "1".to_string()), ("y".to_string(), "2".to_string())]));
        assert_eq!(string_table(v.get("o"), "o"), Err("o.x must be a string".to_string()));
        assert_eq!(string_table(v.get("l"), "l"), Err("l must be a table of strings".to_string()));
    }

    #[test]
    fn writes_strings() {
        let mut s = String::new();
        write_string(&mut s, "a\"\\\n");
        assert_eq!(s, "\"a\\\"\\\\\\u000a\"");
        assert_eq!(parse(&s).unwrap().as_str(), Some("a\"\\\n"));
    }

    #[test]
    fn writes_strings_a_word_at_a_time() {
        // Every byte that needs an escape, at every offset of an 8-byte
        // word, among plain ASCII and multi-byte UTF-8.
        let naive = |s: &str| {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        };
        for special in ['"', '\\', '\n', '\u{0}', '\u{1f}', ' ', '~', 'é', '€'] {
            for at in 0..20 {
                let mut text: String = "abcdefghijklmnopqrstuvwxyz".chars().take(at).collect();
                text.push(special);
                text.push_str("ABCDEFGHIJKLMNOP\u{7f}ü");
                let mut got = String::new();
                write_string(&mut got, &text);
                assert_eq!(got, naive(&text), "{:?}", text);
                assert_eq!(parse(&got).unwrap().as_str(), Some(text.as_str()));
            }
        }
    }

    #[test]
    fn refuses_bad_json() {
        for bad in ["", "{", "{\"a\" 1}", "[1,]", "\"\\x\"", "01x", "{} {}", "\"\u{1}\""] {
            assert!(parse(bad).is_err(), "{:?} parsed", bad);
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(&deep).is_err());
    }
}
