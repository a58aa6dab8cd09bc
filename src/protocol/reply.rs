//! SMTP reply formatting: enhanced status codes (RFC 3463), control-character scrubbing
//! and the multi-line form, as smtp-server writes them.

use super::js_string::is_control;

/// Which enhanced status code a reply gets when enhanced status codes are enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Esc {
    /// Never an enhanced status code (greeting, HELO/EHLO replies, connection refusals).
    Never,
    /// The default code for the reply code.
    Default,
    /// A code fixed by the context of the reply.
    Fixed(&'static str),
}

impl Esc {
    /// MAIL FROM accepted.
    pub const MAIL_OK: Esc = Esc::Fixed("2.1.0");
    /// RCPT TO accepted.
    pub const RCPT_OK: Esc = Esc::Fixed("2.1.5");
    /// Message accepted.
    pub const DATA_OK: Esc = Esc::Fixed("2.6.0");
    /// Bad sender address syntax.
    pub const SENDER_SYNTAX: Esc = Esc::Fixed("5.1.7");
    /// Bad recipient address syntax.
    pub const MAILBOX_SYNTAX: Esc = Esc::Fixed("5.1.3");
    /// Message too big.
    pub const TOO_BIG: Esc = Esc::Fixed("5.3.4");
    /// Too many recipients.
    pub const TOO_MANY_RCPT: Esc = Esc::Fixed("4.5.3");
    /// Command not allowed for this client.
    pub const NOT_AUTHORIZED: Esc = Esc::Fixed("5.7.0");
    /// A bare CR or LF (or a NUL in a DATA body), with `rejectBareLineEndings`.
    pub const BARE_LINE_ENDING: Esc = Esc::Fixed("5.5.2");
    /// Input sent ahead of a reply it had to wait for, with `strictPipelining`.
    pub const SYNCHRONIZATION: Esc = Esc::Fixed("5.5.0");
}

/// The default enhanced status code for a reply code.
pub fn default_esc(code: u16) -> &'static str {
    match code {
        200 | 211 | 214 | 220 | 221 | 250 | 354 => "2.0.0",
        235 => "2.7.0",
        251 | 252 => "2.1.5",
        420 | 421 => "4.4.2",
        450 => "4.2.1",
        451 => "4.3.0",
        452 => "4.2.2",
        454 => "4.7.0",
        500 => "5.5.2",
        501 | 504 | 555 => "5.5.4",
        502 | 503 => "5.5.1",
        521 => "5.3.2",
        523 => "5.3.4",
        530 | 538 => "5.7.0",
        535 => "5.7.8",
        550 => "5.1.1",
        551 => "5.1.6",
        552 => "5.2.2",
        553 => "5.1.3",
        554 => "5.6.0",
        556 => "5.1.10",
        557 => "5.7.1",
        558 => "5.2.3",
        200..=299 => "2.0.0",
        400..=499 => "4.0.0",
        _ => "5.0.0",
    }
}

/// Resolves the enhanced status code of a reply, or `None` when the reply gets none.
fn resolve_esc(code: u16, esc: Esc, enabled: bool) -> Option<&'static str> {
    if !enabled || (300..400).contains(&code) {
        return None;
    }
    match esc {
        Esc::Never => None,
        Esc::Fixed(fixed) => Some(fixed),
        Esc::Default if code < 200 => None,
        Esc::Default => Some(default_esc(code)),
    }
}

fn push_scrubbed(out: &mut Vec<u8>, text: &str) {
    if !text.chars().any(is_control) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for c in text.chars() {
        let c = if is_control(c) { ' ' } else { c };
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
}

fn push_code(out: &mut Vec<u8>, code: u16) {
    let digits = [
        b'0' + (code / 100 % 10) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ];
    if code >= 1000 {
        out.extend_from_slice(code.to_string().as_bytes());
    } else {
        out.extend_from_slice(&digits);
    }
}

/// Appends a single-line reply (with its CRLF) to `out` and returns the byte range of the
/// line without the CRLF, so the caller can keep it as `session.error`.
pub fn write_reply(
    out: &mut Vec<u8>,
    code: u16,
    text: &str,
    esc: Esc,
    esc_enabled: bool,
) -> std::ops::Range<usize> {
    let start = out.len();
    push_code(out, code);
    let esc = resolve_esc(code, esc, esc_enabled);
    if let Some(esc) = esc {
        out.push(b' ');
        out.extend_from_slice(esc.as_bytes());
    }
    if !text.is_empty() {
        out.push(b' ');
        push_scrubbed(out, text);
    } else if code == 334 && esc.is_none() {
        // RFC 4954: an empty challenge still carries the space
        out.push(b' ');
    }
    let end = out.len();
    out.extend_from_slice(b"\r\n");
    start..end
}

/// Appends a multi-line reply (as EHLO uses) to `out`. Multi-line replies never carry
/// enhanced status codes in smtp-server.
pub fn write_multiline(out: &mut Vec<u8>, code: u16, lines: &[String]) {
    let last = lines.len().saturating_sub(1);
    for (i, line) in lines.iter().enumerate() {
        push_code(out, code);
        out.push(if i < last { b'-' } else { b' ' });
        push_scrubbed(out, line);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(code: u16, text: &str, esc: Esc, enabled: bool) -> String {
        let mut out = Vec::new();
        write_reply(&mut out, code, text, esc, enabled);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn single_lines() {
        let cases: &[(u16, &str, Esc, bool, &str)] = &[
            (250, "OK", Esc::Default, false, "250 OK\r\n"),
            (250, "OK", Esc::Default, true, "250 2.0.0 OK\r\n"),
            (
                250,
                "Accepted",
                Esc::MAIL_OK,
                true,
                "250 2.1.0 Accepted\r\n",
            ),
            (354, "End data", Esc::Default, true, "354 End data\r\n"),
            (334, "", Esc::Default, false, "334 \r\n"),
            (334, "", Esc::Default, true, "334 \r\n"),
            (220, "host ESMTP", Esc::Never, true, "220 host ESMTP\r\n"),
            (550, "a\r\nb", Esc::Default, true, "550 5.1.1 a  b\r\n"),
            (599, "x", Esc::Default, true, "599 5.0.0 x\r\n"),
            (299, "x", Esc::Default, true, "299 2.0.0 x\r\n"),
            (499, "x", Esc::Default, true, "499 4.0.0 x\r\n"),
            (221, "", Esc::Default, false, "221\r\n"),
            (421, "bye", Esc::Never, true, "421 bye\r\n"),
            (421, "bye", Esc::Default, true, "421 4.4.2 bye\r\n"),
            (550, "x\u{85}y", Esc::Never, false, "550 x y\r\n"),
        ];
        for (code, text, esc, enabled, want) in cases {
            assert_eq!(one(*code, text, *esc, *enabled), *want, "{code} {text:?}");
        }
    }

    #[test]
    fn multiline() {
        let mut out = Vec::new();
        write_multiline(&mut out, 250, &["a".into(), "B\nC".into(), "c".into()]);
        assert_eq!(out, b"250-a\r\n250-B C\r\n250 c\r\n");
    }

    #[test]
    fn error_range() {
        let mut out = b"xx".to_vec();
        let r = write_reply(&mut out, 451, "oops", Esc::Default, true);
        assert_eq!(&out[r], b"451 4.3.0 oops");
    }
}
