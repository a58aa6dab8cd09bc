//! String helpers with JavaScript semantics: `trim()`, `split(/\s+/)` and the HTTP
//! request-line check, so that argument splitting matches smtp-server exactly.

/// True for the characters JavaScript's `\s` and `trim()` treat as white space.
pub fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// JavaScript `s.trim()`.
pub fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_space)
}

/// JavaScript `s.trim().split(/\s+/)`: an empty input gives one empty token.
pub fn js_split_ws(s: &str) -> Vec<&str> {
    let t = js_trim(s);
    if t.is_empty() {
        return vec![""];
    }
    t.split(is_js_space).filter(|p| !p.is_empty()).collect()
}

/// The command name as smtp-server derives it: the text before the first space
/// (only U+0020 separates), upper-cased.
pub fn command_name(line: &str) -> String {
    let first = line.split(' ').next().unwrap_or("");
    if first
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_lowercase())
    {
        first.to_string()
    } else {
        first.to_uppercase()
    }
}

/// True for a JavaScript line terminator, which `.` in a regular expression does not match.
fn is_js_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

/// True when a command line is an HTTP request line
/// (`/^(OPTIONS|GET|...|CONNECT) \/.* HTTP\/\d\.\d$/i`).
pub fn is_http_request(line: &str) -> bool {
    const METHODS: [&str; 8] = [
        "OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT",
    ];
    let Some(space) = line.find(' ') else {
        return false;
    };
    let method = &line[..space];
    if !METHODS.iter().any(|m| m.eq_ignore_ascii_case(method)) {
        return false;
    }
    let Some(rest) = line[space + 1..].strip_prefix('/') else {
        return false;
    };
    // the tail must be " HTTP/d.d" and everything before it free of line terminators
    let bytes = rest.as_bytes();
    if bytes.len() < 9 {
        return false;
    }
    let tail = &bytes[bytes.len() - 9..];
    let tail_ok = tail[0] == b' '
        && tail[1..5].eq_ignore_ascii_case(b"HTTP")
        && tail[5] == b'/'
        && tail[6].is_ascii_digit()
        && tail[7] == b'.'
        && tail[8].is_ascii_digit();
    if !tail_ok {
        return false;
    }
    let middle = &rest[..rest.len() - 9];
    !middle.chars().any(is_js_line_terminator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split() {
        assert_eq!(
            js_split_ws("  MAIL   FROM:<a>\t x "),
            vec!["MAIL", "FROM:<a>", "x"]
        );
        assert_eq!(js_split_ws(""), vec![""]);
        assert_eq!(js_split_ws("   "), vec![""]);
        assert_eq!(js_split_ws("a\u{a0}b\u{85}c"), vec!["a", "b\u{85}c"]);
        assert_eq!(js_split_ws("\u{feff}EHLO x"), vec!["EHLO", "x"]);
    }

    #[test]
    fn names() {
        assert_eq!(command_name("ehlo foo"), "EHLO");
        assert_eq!(command_name("EHLO\tfoo"), "EHLO\tFOO");
        assert_eq!(command_name(""), "");
        assert_eq!(command_name(" MAIL"), "");
        assert_eq!(command_name("ſtarttls"), "STARTTLS");
    }

    #[test]
    fn http() {
        assert!(is_http_request("GET / HTTP/1.1"));
        assert!(is_http_request("post /x/y?z HTTP/1.0"));
        assert!(is_http_request("CONNECT /a b c http/2.0"));
        assert!(!is_http_request("GET /HTTP/1.1"));
        assert!(!is_http_request("GET  / HTTP/1.1"));
        assert!(!is_http_request("GET / HTTP/1.1 "));
        assert!(!is_http_request("GET x HTTP/1.1"));
        assert!(!is_http_request("GET /\r HTTP/1.1"));
        assert!(!is_http_request("FETCH / HTTP/1.1"));
        assert!(!is_http_request("GET / HTTP/11"));
    }
}
