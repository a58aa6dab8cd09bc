//! xtext (RFC 3461), the encoding of DSN and XCLIENT/XFORWARD parameter values.

use std::borrow::Cow;

/// Decodes an xtext value (RFC 3461): every `+XX` with two upper-case hexadecimal
/// digits becomes the character U+00XX. Anything else, including lower-case escapes,
/// is kept verbatim. Borrows the input when it contains no escape.
#[must_use]
pub fn decode_xtext(value: &str) -> Cow<'_, str> {
    let bytes = value.as_bytes();
    let Some(first) = bytes.iter().position(|&b| b == b'+') else {
        return Cow::Borrowed(value);
    };
    let upper_hex = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let mut out: Option<String> = None;
    let mut copied = 0usize;
    let mut pos = first;
    while pos < bytes.len() {
        if bytes.get(pos) == Some(&b'+') {
            let hi = bytes.get(pos + 1).copied().and_then(upper_hex);
            let lo = bytes.get(pos + 2).copied().and_then(upper_hex);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                let buf = out.get_or_insert_with(|| String::with_capacity(value.len()));
                // `pos` and `copied` sit on ASCII bytes, hence on char boundaries
                buf.push_str(value.get(copied..pos).unwrap_or(""));
                buf.push(char::from(hi * 16 + lo));
                pos += 3;
                copied = pos;
                continue;
            }
        }
        pos += 1;
    }
    match out {
        Some(mut buf) => {
            buf.push_str(value.get(copied..).unwrap_or(""));
            Cow::Owned(buf)
        }
        None => Cow::Borrowed(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output of smtp-server's `decodeXtext` for the same input.
    const XTEXT: &[(&str, &str)] = &[
        ("", ""),
        ("plain", "plain"),
        ("+", "+"),
        ("+4", "+4"),
        ("+41", "A"),
        ("+4142", "A42"),
        ("a+41b+42c", "aAbBc"),
        ("+2B41", "+41"),
        ("++41", "+A"),
        ("+0D+0A", "\r\n"),
        ("+ff", "+ff"),
        ("+FF", "\u{FF}"),
        ("+fF", "+fF"),
        ("+G1", "+G1"),
        ("\u{E9}+41", "\u{E9}A"),
        ("+7F", "\u{7F}"),
        ("+9F", "\u{9F}"),
        ("+A0", "\u{A0}"),
    ];

    #[test]
    fn decode_xtext_matches_reference() {
        for (input, expected) in XTEXT {
            assert_eq!(decode_xtext(input), *expected, "{input:?}");
        }
        assert!(matches!(decode_xtext("no escapes"), Cow::Borrowed(_)));
        assert!(matches!(decode_xtext("a+b+4"), Cow::Borrowed(_)));
    }
}
