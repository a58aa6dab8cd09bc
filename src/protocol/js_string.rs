//! String helpers with JavaScript semantics: `trim()`, `split(/\s+/)`, `.length`, the
//! control-character class smtp-server's patterns use and the HTTP request-line check,
//! so that argument splitting and checks match smtp-server exactly.

/// Returns `true` for every character JavaScript treats as whitespace, i.e. the
/// members of the regular expression class `\s` and the characters
/// `String.prototype.trim` removes.
///
/// This differs from [`char::is_whitespace`]: U+FEFF (zero width no-break space) is
/// whitespace in JavaScript, U+0085 (next line) is not.
#[inline]
#[must_use]
pub fn is_js_space(c: char) -> bool {
    match c {
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' => true,
        c if c.is_ascii() => false,
        '\u{A0}'
        | '\u{1680}'
        | '\u{2000}'..='\u{200A}'
        | '\u{2028}'
        | '\u{2029}'
        | '\u{202F}'
        | '\u{205F}'
        | '\u{3000}'
        | '\u{FEFF}' => true,
        _ => false,
    }
}

/// Removes leading and trailing JavaScript whitespace, like `String.prototype.trim`.
#[inline]
#[must_use]
pub fn trim_js(s: &str) -> &str {
    s.trim_matches(is_js_space)
}

/// Length of `s` in UTF-16 code units, i.e. the value of JavaScript's `.length`.
#[inline]
#[must_use]
pub fn utf16_len(s: &str) -> usize {
    // Every character starts with exactly one non-continuation byte and characters
    // outside the Basic Multilingual Plane (4-byte sequences, lead byte >= 0xF0)
    // take a second code unit.
    s.bytes()
        .map(|b| usize::from((b & 0xC0) != 0x80) + usize::from(b >= 0xF0))
        .sum()
}

/// JavaScript `s.trim().split(/\s+/)`: an empty input gives one empty token.
pub fn js_split_ws(s: &str) -> Vec<&str> {
    let t = trim_js(s);
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

/// True for the characters of smtp-server's control-character class
/// (`[\x00-\x1F\x7F-\x9F]`): C0 controls, DEL and C1 controls. Reply text is scrubbed
/// of them.
pub fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// Returns `true` if `s` contains a C0 control character (U+0000-U+001F), DEL or a
/// C1 control character (U+007F-U+009F).
#[inline]
#[must_use]
pub fn has_control_chars(s: &str) -> bool {
    let bytes = s.as_bytes();
    // U+0080..U+009F are encoded as C2 80..C2 9F; in valid UTF-8 a C2 byte is always
    // the lead byte of such a two-byte sequence
    bytes.iter().enumerate().any(|(i, &b)| {
        b < 0x20 || b == 0x7F || (b == 0xC2 && bytes.get(i + 1).is_some_and(|next| *next <= 0x9F))
    })
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

    #[test]
    fn js_whitespace() {
        // every character matched by /\s/ in V8, which is also what trim() removes
        const JS_SPACE: &[u32] = &[
            0x9, 0xA, 0xB, 0xC, 0xD, 0x20, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
            0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
            0xFEFF,
        ];
        for code in 0..=0x10FFFFu32 {
            if let Some(ch) = char::from_u32(code) {
                assert_eq!(is_js_space(ch), JS_SPACE.contains(&code), "U+{code:04X}");
            }
        }
        assert_eq!(trim_js("\u{FEFF}\u{3000} a b \u{2029}\t"), "a b");
        assert_eq!(trim_js("\u{85}a\u{85}"), "\u{85}a\u{85}");
        assert_eq!(trim_js(" \t "), "");
    }

    #[test]
    fn utf16_length() {
        assert_eq!(utf16_len(""), 0);
        assert_eq!(utf16_len("abc"), 3);
        assert_eq!(utf16_len("\u{E9}\u{4E2D}"), 2);
        assert_eq!(utf16_len("\u{1F600}a"), 3);
        assert_eq!(utf16_len("\u{10FFFF}\u{FFFF}\u{80}"), 4);
    }

    #[test]
    fn control_chars() {
        for code in 0..=0x10FFFFu32 {
            let Some(ch) = char::from_u32(code) else {
                continue;
            };
            let expected = code < 0x20 || (0x7F..=0x9F).contains(&code);
            let mut buf = [0u8; 4];
            let s = ch.encode_utf8(&mut buf);
            assert_eq!(has_control_chars(s), expected, "U+{code:04X}");
        }
        assert!(!has_control_chars(""));
        assert!(!has_control_chars("\u{A0}\u{C2}\u{100}"));
        assert!(has_control_chars("abc\u{85}"));
    }
}
