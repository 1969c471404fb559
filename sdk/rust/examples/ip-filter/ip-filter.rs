//! ip-filter: allow or deny clients by address, with CIDR ranges, IPv4
//! and IPv6. The client is the host's `client_ip` property: the address
//! the listener's `trusted_proxies` settle on, not a header a client
//! could forge.
//!
//! Config: `deny` and `allow` are lists of addresses or CIDR ranges;
//! `status` (default 403) is the answer to a refused client. A client in
//! `deny` is refused; if `allow` is not empty, a client outside it is
//! refused too. A config that does not parse stops the plugin from
//! loading, with the reason in the gateway's log.

use lintel::json::{self, Value};
use lintel::Level;
use std::cell::RefCell;
use std::net::IpAddr;

/// An address range: the first `bits` bits of `addr`.
#[derive(Clone, Copy, Debug)]
struct Cidr {
    addr: u128,
    bits: u32,
    v6: bool,
}

fn as_u128(ip: IpAddr) -> (u128, bool) {
    match ip {
        // IPv4-mapped IPv6 clients (::ffff:a.b.c.d) match IPv4 ranges.
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (u32::from(v4) as u128, false),
            None => (u128::from(v6), true),
        },
        IpAddr::V4(v4) => (u32::from(v4) as u128, false),
    }
}

impl Cidr {
    fn parse(s: &str) -> Result<Cidr, String> {
        let (ip, bits) = match s.split_once('/') {
            Some((ip, b)) => (ip, Some(b.parse::<u32>().map_err(|_| format!("invalid prefix length in {:?}", s))?)),
            None => (s, None),
        };
        let ip: IpAddr = ip.parse().map_err(|_| format!("invalid address {:?}", s))?;
        let (addr, v6) = as_u128(ip);
        let width = if v6 { 128 } else { 32 };
        let bits = bits.unwrap_or(width);
        if bits > width {
            return Err(format!("prefix length of {:?} exceeds {}", s, width));
        }
        Ok(Cidr { addr: addr & mask(bits, width), bits, v6 })
    }

    fn contains(&self, addr: u128, v6: bool) -> bool {
        let width = if self.v6 { 128 } else { 32 };
        self.v6 == v6 && addr & mask(self.bits, width) == self.addr
    }
}

fn mask(bits: u32, width: u32) -> u128 {
    if bits == 0 {
        0
    } else {
        (u128::MAX << (width - bits)) & (u128::MAX >> (128 - width))
    }
}

struct Config {
    allow: Vec<Cidr>,
    deny: Vec<Cidr>,
    status: u32,
}

fn ranges(v: Option<&Value>, key: &str) -> Result<Vec<Cidr>, String> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().ok_or_else(|| format!("{}: every entry must be a string", key)).and_then(Cidr::parse))
            .collect(),
        Some(_) => Err(format!("{} must be a list of addresses or CIDR ranges", key)),
    }
}

fn load() -> Result<Config, String> {
    let v = json::parse(&lintel::config()).map_err(|e| e.to_string())?;
    let status = match v.get("status") {
        None => 403,
        Some(s) => match s.as_f64() {
            Some(n) if (400.0..=599.0).contains(&n) && n.fract() == 0.0 => n as u32,
            _ => return Err("status must be a 4xx or 5xx code".into()),
        },
    };
    Ok(Config { allow: ranges(v.get("allow"), "allow")?, deny: ranges(v.get("deny"), "deny")?, status })
}

thread_local! {
    static CONFIG: RefCell<Option<Config>> = RefCell::new(None);
}

#[no_mangle]
pub extern "C" fn _initialize() {
    match load() {
        Ok(c) => CONFIG.with(|cell| *cell.borrow_mut() = Some(c)),
        Err(e) => {
            lintel::log(Level::Error, &format!("ip-filter config: {}", e));
            std::process::abort(); // refuse to load
        }
    }
    lintel::declare(lintel::STATELESS | lintel::NO_RESPONSE);
}

#[no_mangle]
pub extern "C" fn handle_request() -> i64 {
    let ip = lintel::property("client_ip").unwrap_or_default();
    let addr = ip.parse::<IpAddr>().ok().map(as_u128);
    let refused = CONFIG.with(|cell| {
        let cfg = cell.borrow();
        let cfg = cfg.as_ref().expect("configured in _initialize");
        let refused = match addr {
            None => true, // no address we can check: fail closed
            Some((a, v6)) => cfg.deny.iter().any(|c| c.contains(a, v6)) || (!cfg.allow.is_empty() && !cfg.allow.iter().any(|c| c.contains(a, v6))),
        };
        if refused {
            Some(cfg.status)
        } else {
            None
        }
    });
    match refused {
        None => lintel::next(0),
        Some(status) => {
            if lintel::log_enabled(Level::Debug) {
                lintel::log_kv(Level::Debug, "client refused", &[("client_ip", &ip)]);
            }
            lintel::answer(
                status,
                "application/problem+json",
                &format!("{{\"status\":{},\"title\":\"Forbidden\",\"detail\":\"this client address is not allowed\"}}", status),
            );
            lintel::ANSWERED
        }
    }
}

#[no_mangle]
pub extern "C" fn handle_response(_req_ctx: i32, _is_error: i32) {}
