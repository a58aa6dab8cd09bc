//! XCLIENT and XFORWARD (Postfix): trust lists and argument parsing.

use super::host::{is_ip, is_ipv6, is_valid_hostname, normalize_address, normalize_ipv6};
use super::js_string::{has_control_chars, js_split_ws};
use super::xtext::decode_xtext;

/// A value stored in `session.xClient` / `session.xForward`.
#[derive(Debug, Clone, PartialEq)]
pub enum XValue {
    /// A string.
    Str(String),
    /// A number (ports).
    Num(f64),
    /// `false` (`[UNAVAILABLE]`, `[TEMPUNAVAIL]`).
    False,
}

impl XValue {
    /// JavaScript truthiness.
    pub fn truthy(&self) -> bool {
        match self {
            XValue::Str(s) => !s.is_empty(),
            XValue::Num(n) => *n != 0.0 && !n.is_nan(),
            XValue::False => false,
        }
    }

    /// `String(value || '')`.
    pub fn text(&self) -> String {
        match self {
            XValue::Str(s) => s.clone(),
            XValue::Num(n) if self.truthy() => format_number(*n),
            _ => String::new(),
        }
    }
}

/// Formats a number as JavaScript's `String(n)` does for the integers ports are.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// `Number(value) || 0` for a port text: JavaScript number parsing of a trimmed decimal
/// (hex, exponents and the like give what `Number()` gives for the common forms).
pub fn js_number(value: &str) -> f64 {
    let t = value.trim();
    if t.is_empty() {
        return 0.0;
    }
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16)
            .map(|v| v as f64)
            .unwrap_or(f64::NAN);
    }
    if t.chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
    {
        return t.parse::<f64>().unwrap_or(f64::NAN);
    }
    match t {
        "Infinity" | "+Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        _ => f64::NAN,
    }
}

/// Who may use a proxy command (`useXClient`, `useXForward`, `useProxy`).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Trust {
    /// Nobody (option falsy).
    #[default]
    Nobody,
    /// Every peer (`true` or a list with `*`).
    Everyone,
    /// The listed addresses (normalized).
    List(Vec<String>),
}

impl Trust {
    /// True when the (normalized) peer address is trusted.
    pub fn allows(&self, address: &str) -> bool {
        match self {
            Trust::Nobody => false,
            Trust::Everyone => true,
            Trust::List(list) => {
                let address = normalize_address(address);
                list.contains(&address)
            }
        }
    }
}

/// Parses `KEY=value ...` arguments; every argument is checked before any is used.
/// Duplicate keys keep the first value. `Err` carries the 501 text.
pub fn parse_params(
    line: &str,
    allowed: &[&str],
    unavailable: &[&str],
) -> Result<Vec<(String, XValue)>, &'static str> {
    const SYNTAX: &str = "Error: Bad command parameter syntax";
    let parts = js_split_ws(line);
    let args = &parts[1.min(parts.len())..];
    if args.is_empty() {
        return Err(SYNTAX);
    }
    let mut params: Vec<(String, XValue)> = Vec::new();
    for part in args {
        let mut pieces = part.split('=');
        let key = pieces.next().unwrap_or("").to_uppercase();
        let rest: Vec<&str> = pieces.collect();
        if rest.len() != 1 || !allowed.contains(&key.as_str()) {
            return Err(SYNTAX);
        }
        let decoded = decode_xtext(rest[0]).into_owned();
        if has_control_chars(&decoded) {
            return Err(SYNTAX);
        }
        let mut value = if unavailable.iter().any(|u| *u == decoded.to_uppercase()) {
            XValue::False
        } else {
            XValue::Str(decoded)
        };
        if key == "ADDR" {
            if let XValue::Str(v) = &value {
                if !v.is_empty() {
                    let stripped = if v.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("IPV6:")) {
                        &v[5..]
                    } else {
                        v.as_str()
                    };
                    if is_ip(stripped) == 0 {
                        return Err("Error: Bad command parameter syntax. Invalid address");
                    }
                    let ip = if is_ipv6(stripped) {
                        normalize_ipv6(stripped)
                    } else {
                        stripped.to_string()
                    };
                    value = XValue::Str(ip);
                }
            }
        }
        if key == "NAME" {
            if let XValue::Str(v) = &value {
                if !v.is_empty() && !is_valid_hostname(v) {
                    return Err("Error: Bad command parameter syntax. Invalid hostname");
                }
            }
        }
        if params.iter().any(|(k, _)| *k == key) {
            continue;
        }
        params.push((key, value));
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &["NAME", "ADDR", "PORT", "PROTO", "HELO", "LOGIN"];

    #[test]
    fn params() {
        let p = parse_params(
            "XCLIENT ADDR=IPV6:2001:DB8::0:1 NAME=[UNAVAILABLE] ADDR=1.2.3.4",
            KEYS,
            &["[UNAVAILABLE]"],
        );
        assert_eq!(
            p,
            Ok(vec![
                ("ADDR".into(), XValue::Str("2001:db8::1".into())),
                ("NAME".into(), XValue::False)
            ])
        );
        assert_eq!(
            parse_params("XCLIENT", KEYS, &[]),
            Err("Error: Bad command parameter syntax")
        );
        assert_eq!(
            parse_params("XCLIENT ADDR=a=b", KEYS, &[]),
            Err("Error: Bad command parameter syntax")
        );
        assert_eq!(
            parse_params("XCLIENT FOO=1", KEYS, &[]),
            Err("Error: Bad command parameter syntax")
        );
        assert_eq!(
            parse_params("XCLIENT ADDR=x", KEYS, &[]),
            Err("Error: Bad command parameter syntax. Invalid address")
        );
        // a multi-byte character across the fifth byte (found by the session fuzz target)
        assert_eq!(
            parse_params("XCLIENT ADDR=1.2\u{fffd}3.4", KEYS, &[]),
            Err("Error: Bad command parameter syntax. Invalid address")
        );
        assert_eq!(
            parse_params("XCLIENT NAME=a_b!", KEYS, &[]),
            Err("Error: Bad command parameter syntax. Invalid hostname")
        );
        assert_eq!(
            parse_params("XCLIENT NAME=a+0D", KEYS, &[]),
            Err("Error: Bad command parameter syntax")
        );
    }

    #[test]
    fn trust() {
        assert!(Trust::List(vec!["10.0.0.5".into()]).allows("::ffff:10.0.0.5"));
        assert!(!Trust::List(vec!["10.0.0.5".into()]).allows("10.0.0.6"));
        assert!(Trust::Everyone.allows("x"));
        assert!(!Trust::Nobody.allows("x"));
        assert_eq!(js_number("2525"), 2525.0);
        assert!(js_number("x").is_nan());
    }
}
