//! header-rewrite: Lintel's bundled header filter. It sets, adds, removes
//! and renames request and response headers, with values from templates.
//!
//! ```toml
//! [filters.headers]
//! plugin = "header-rewrite"
//! config.request  = { set = { X-Gateway = "lintel" }, remove = ["X-Debug"] }
//! config.response = { set = { X-Request-Id = "{request_id}" }, rename = { Server = "X-Upstream-Server" } }
//! ```
//!
//! Templates: {request_id}, {client_ip}, {route}, {listener}, {method},
//! {path}, {property:NAME}. Environment variables are read by gatewayd at
//! load: write ${NAME} in gateway.toml. Order within a phase: remove,
//! rename, set, add. The host has checked the config against schema.json
//! before the plugin sees it.

use lintel::json::{self, Value};
use lintel::Kind;
use std::cell::RefCell;

/// One phase's changes. A template is kept split into its literal text
/// and the properties it names, so a request only reads properties.
#[derive(Default)]
struct Rules {
    remove: Vec<String>,
    rename: Vec<(String, String)>,
    set: Vec<(String, Template)>,
    add: Vec<(String, Template)>,
}

impl Rules {
    fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.rename.is_empty() && self.set.is_empty() && self.add.is_empty()
    }

    /// is_constant reports whether the phase makes the same changes to
    /// every message: no rename (which reads the headers) and no template
    /// that reads a property. The host may then replay it (memoize).
    fn is_constant(&self) -> bool {
        self.rename.is_empty() && self.set.iter().chain(&self.add).all(|(_, t)| t.is_literal())
    }
}

/// A header value template: literal pieces and property names, in order.
enum Piece {
    Text(String),
    Property(String),
}

struct Template(Vec<Piece>);

impl Template {
    fn is_literal(&self) -> bool {
        self.0.iter().all(|p| matches!(p, Piece::Text(_)))
    }

    /// parse splits "{name}" references out of s: "{property:NAME}" reads
    /// NAME; an unclosed "{" is literal text.
    fn parse(mut s: &str) -> Template {
        let mut pieces = Vec::new();
        loop {
            let open = s.find('{');
            let close = open.and_then(|i| s[i..].find('}').map(|j| i + j));
            match (open, close) {
                (Some(i), Some(j)) => {
                    if i > 0 {
                        pieces.push(Piece::Text(s[..i].to_string()));
                    }
                    let name = &s[i + 1..j];
                    let name = name.strip_prefix("property:").unwrap_or(name);
                    pieces.push(Piece::Property(name.to_string()));
                    s = &s[j + 1..];
                }
                _ => {
                    if !s.is_empty() {
                        pieces.push(Piece::Text(s.to_string()));
                    }
                    return Template(pieces);
                }
            }
        }
    }

    /// expand writes the template with each property's value ("" when
    /// unset).
    fn expand(&self, property: &dyn Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Property(name) => out.push_str(&property(name).unwrap_or_default()),
            }
        }
        out
    }
}

struct Config {
    request: Rules,
    response: Rules,
}

fn rules(v: Option<&Value>, phase: &str) -> Result<Rules, String> {
    let v = match v {
        None => return Ok(Rules::default()),
        Some(v) => v,
    };
    let templates = |key: &str| -> Result<Vec<(String, Template)>, String> {
        Ok(json::string_table(v.get(key), &format!("{}.{}", phase, key))?.into_iter().map(|(k, t)| (k, Template::parse(&t))).collect())
    };
    Ok(Rules {
        remove: json::strings(v.get("remove"), &format!("{}.remove", phase))?,
        rename: json::string_table(v.get("rename"), &format!("{}.rename", phase))?,
        set: templates("set")?,
        add: templates("add")?,
    })
}

fn load(config: &str) -> Result<Config, String> {
    let v = json::parse(config).map_err(|e| e.to_string())?;
    Ok(Config { request: rules(v.get("request"), "request")?, response: rules(v.get("response"), "response")? })
}

thread_local! {
    static CONFIG: RefCell<Option<Config>> = RefCell::new(None);
}

#[no_mangle]
pub extern "C" fn _initialize() {
    let c = lintel::configure("header-rewrite", load);
    let mut flags = lintel::STATELESS;
    if c.response.is_empty() {
        flags |= lintel::NO_RESPONSE; // one guest call per request saved
    }
    if c.request.is_constant() || c.response.is_constant() {
        // Such a phase is called once an hour; the host replays it.
        flags |= lintel::MEMOIZABLE;
    }
    lintel::declare(flags);
    CONFIG.with(|cell| *cell.borrow_mut() = Some(c));
}

/// The longest a memoized phase holds before the guest is called again.
const MEMO_TTL_MS: i32 = 3_600_000;

fn apply(kind: Kind, r: &Rules) {
    for name in &r.remove {
        lintel::remove_header(kind, name);
    }
    for (from, to) in &r.rename {
        let values = lintel::header_values(kind, from);
        if values.is_empty() {
            continue;
        }
        lintel::remove_header(kind, from);
        lintel::remove_header(kind, to);
        for v in &values {
            lintel::add_header(kind, to, v);
        }
    }
    let property = |name: &str| lintel::property(name);
    for (name, t) in &r.set {
        lintel::set_header(kind, name, &t.expand(&property));
    }
    for (name, t) in &r.add {
        lintel::add_header(kind, name, &t.expand(&property));
    }
    if r.is_constant() {
        lintel::memoize(&[], MEMO_TTL_MS);
    }
}

fn with_config(f: impl FnOnce(&Config)) {
    CONFIG.with(|cell| f(cell.borrow().as_ref().expect("configured in _initialize")))
}

#[no_mangle]
pub extern "C" fn handle_request() -> i64 {
    with_config(|c| apply(Kind::Request, &c.request));
    lintel::next(0)
}

#[no_mangle]
pub extern "C" fn handle_response(_req_ctx: i32, _is_error: i32) {
    with_config(|c| apply(Kind::Response, &c.response));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(t: &str) -> String {
        Template::parse(t).expand(&|name: &str| match name {
            "client_ip" => Some("192.0.2.1".to_string()),
            "user" => Some("alice".to_string()),
            _ => None,
        })
    }

    #[test]
    fn templates() {
        assert_eq!(expand("{client_ip} via {route}"), "192.0.2.1 via ");
        assert_eq!(expand("user={property:user}"), "user=alice");
        assert_eq!(expand("plain"), "plain");
        assert_eq!(expand("a{unclosed"), "a{unclosed");
        assert_eq!(expand("}{client_ip}{"), "}192.0.2.1{");
    }

    #[test]
    fn config() {
        let c = load(r#"{"request":{"set":{"X-A":"1"},"remove":["X-B"]},"response":{}}"#).unwrap();
        assert_eq!(c.request.set.len(), 1);
        assert!(c.response.is_empty());
        assert!(c.request.is_constant());
        let c = load(r#"{"request":{"set":{"X-A":"{client_ip}"}},"response":{"rename":{"Server":"X-Server"}}}"#).unwrap();
        assert!(!c.request.is_constant() && !c.response.is_constant());
        assert!(load(r#"{"request":{"remove":"X-B"}}"#).is_err());
        assert!(load(r#"{"request":{"set":{"X-A":1}}}"#).is_err());
    }
}
