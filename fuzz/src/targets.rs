//! The fuzz target bodies. Each takes arbitrary bytes, never returns an error and panics
//! only when an invariant is broken (a panic inside the code under test counts the same).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::mutate::XorShift;
use crate::protocol::address::{parse_address_command, AddressCommand, ParamValue};
use crate::protocol::config::{Config, HookSet};
use crate::protocol::data::DataDecoder;
use crate::protocol::host::is_ip;
use crate::protocol::js_string::{has_control_chars, is_control, is_js_space};
use crate::protocol::proxy::{parse, ProxyHeader, ProxyParse, MAX_V1_HEADER};
use crate::protocol::sasl::{
    decode_base64_lenient, encode_base64, parse_cram_md5, parse_login_username, parse_plain,
    parse_xoauth2,
};
use crate::protocol::session::{
    AuthOutcome, DataAnswer, DataResult, HookCall, HookOutcome, Peer, Session, Step, TlsInfo,
};
use crate::protocol::xclient::Trust;

/// The names [`run`] knows, in the order the runners use.
pub const TARGETS: &[&str] = &[
    "proxy_v2",
    "proxy_v1",
    "data_decoder",
    "session",
    "address",
    "sasl",
    "bdat",
];

/// Runs the target called `name`; false for an unknown name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "proxy_v2" => proxy_v2(data),
        "proxy_v1" => proxy_v1(data),
        "data_decoder" => data_decoder(data),
        "session" => session(data),
        "address" => address(data),
        "sasl" => sasl(data),
        "bdat" => bdat(data),
        _ => return false,
    }
    true
}

// ----- PROXY headers -----

const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest version 2 header: 16 fixed bytes and a 16-bit body length.
const V2_MAX: usize = 16 + 65535;

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// PROXY version 2: the first byte picks how the rest is shaped so that the fuzzer gets past
/// the signature and the length field cheaply, including headers whose length field lies.
///
/// - `0`: the bytes as they are;
/// - `1`: the signature, then the bytes (version, family, length field and body as given);
/// - `2`: the signature, version/command and family from the bytes, an honest length,
///   the rest as the body;
/// - `3`: the signature and `0x21` (version 2, PROXY), then the bytes.
///
/// Bit 7 appends an SMTP command after the header, as a client pipelining would.
pub fn proxy_v2(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        check_proxy(data);
        return;
    };
    let mut buf = match mode & 3 {
        0 => rest.to_vec(),
        1 => [&V2_SIG[..], rest].concat(),
        2 => {
            let ver_cmd = rest.first().copied().unwrap_or(0x21);
            let family = rest.get(1).copied().unwrap_or(0x11);
            let body = rest.get(2..).unwrap_or_default();
            let body = &body[..body.len().min(65535)];
            let mut b = V2_SIG.to_vec();
            b.push(ver_cmd);
            b.push(family);
            b.extend_from_slice(&(body.len() as u16).to_be_bytes());
            b.extend_from_slice(body);
            b
        }
        _ => [&V2_SIG[..], &[0x21], rest].concat(),
    };
    if mode & 0x80 != 0 {
        buf.extend_from_slice(b"EHLO x\r\n");
    }
    check_proxy(&buf);
}

/// PROXY version 1: the first byte picks a prefix (none, `PROXY `, `PROXY TCP4 `,
/// `PROXY TCP6 `); bit 2 ends the line with CRLF, bit 3 appends an SMTP command.
pub fn proxy_v1(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        check_proxy(data);
        return;
    };
    let prefix: &[u8] = match mode & 3 {
        0 => b"",
        1 => b"PROXY ",
        2 => b"PROXY TCP4 ",
        _ => b"PROXY TCP6 ",
    };
    let mut buf = [prefix, rest].concat();
    if mode & 4 != 0 {
        buf.extend_from_slice(b"\r\n");
    }
    if mode & 8 != 0 {
        buf.extend_from_slice(b"EHLO x\r\n");
    }
    check_proxy(&buf);
}

/// Checks `parse` on `buf` and on its prefixes, as a server that parses again after every
/// read sees them.
///
/// - the result is consistent with the bytes (see [`check_result`]);
/// - the prefixes answer `Incomplete` until the parser decides, and once it has decided
///   every longer prefix gets the same answer: how the bytes are split into reads never
///   matters, and a truncated header is never taken for a valid or an invalid one;
/// - a complete header parses the same without the bytes after it, and its last byte
///   missing makes it incomplete.
fn check_proxy(buf: &[u8]) {
    let full = parse(buf);
    check_result(buf, &full);
    let n = buf.len();
    let mut cuts: Vec<usize> = if n <= 600 {
        (0..n).collect()
    } else {
        (0..n).step_by(n / 256 + 1).collect()
    };
    cuts.extend([11, 12, 13, 15, 16, 17, MAX_V1_HEADER, MAX_V1_HEADER + 1]);
    if let ProxyParse::Complete { len, .. } = full {
        cuts.extend([len.saturating_sub(1), len]);
        if n >= 16 && buf[..12] == *V2_SIG {
            // the last bytes of the body and the addresses
            cuts.extend((len.saturating_sub(40)..len).filter(|c| *c >= 16));
        }
    }
    let mut decided: Option<(usize, ProxyParse)> = None;
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts.into_iter().filter(|c| *c <= n) {
        let r = parse(&buf[..cut]);
        check_result(&buf[..cut], &r);
        match (&r, &decided) {
            (ProxyParse::Incomplete, None) => {}
            (ProxyParse::Incomplete, Some((at, d))) => {
                panic!("prefix {at} decided {d:?}, the longer prefix {cut} is incomplete")
            }
            (_, None) => {
                assert_eq!(
                    r, full,
                    "prefix {cut} decided differently from all {n} bytes"
                );
                decided = Some((cut, r));
            }
            (_, Some((at, d))) => {
                assert_eq!(&r, d, "prefixes {at} and {cut} decided differently");
            }
        }
    }
    if let ProxyParse::Complete { len, .. } = full {
        assert_eq!(
            parse(&buf[..len]),
            full,
            "the header alone parses differently"
        );
        assert_eq!(
            parse(&buf[..len - 1]),
            ProxyParse::Incomplete,
            "a header without its last byte is not incomplete"
        );
    }
}

/// Checks one result of `parse` against the bytes it was given.
fn check_result(buf: &[u8], r: &ProxyParse) {
    let v2 = buf.len() >= 12 && buf[..12] == *V2_SIG;
    let sig_prefix = buf.len() < 12 && V2_SIG.starts_with(buf);
    match r {
        ProxyParse::Incomplete => {
            if sig_prefix {
                return;
            }
            if v2 {
                // never waits past the declared length, nor past the largest header
                assert!(buf.len() < V2_MAX, "v2 incomplete at {} bytes", buf.len());
                if buf.len() >= 16 {
                    assert_eq!(buf[12] >> 4, 2, "wrong version waits for more");
                    let total = 16 + usize::from(be16(&buf[14..16]));
                    assert!(
                        buf.len() < total,
                        "v2 incomplete with {} of {total} bytes",
                        buf.len()
                    );
                }
            } else {
                assert!(
                    buf.len() <= MAX_V1_HEADER,
                    "v1 incomplete at {} bytes",
                    buf.len()
                );
                assert!(!buf.contains(&b'\n'), "v1 incomplete with a complete line");
            }
        }
        ProxyParse::Invalid(why) => {
            assert!(!why.is_empty());
            if v2 {
                assert!(buf.len() >= 16, "v2 rejected before its fixed part");
            } else {
                assert!(
                    buf.len() > MAX_V1_HEADER || buf.contains(&b'\n'),
                    "v1 rejected before its line ended"
                );
            }
        }
        ProxyParse::Complete { len, header } => {
            let len = *len;
            assert!(len > 0 && len <= buf.len(), "length {len} of {}", buf.len());
            if v2 {
                check_v2_header(&buf[..len], header);
            } else {
                check_v1_header(&buf[..len], header);
            }
        }
    }
}

fn check_v2_header(h: &[u8], header: &ProxyHeader) {
    assert!(h.len() >= 16 && h.len() <= V2_MAX);
    assert_eq!(h.len(), 16 + usize::from(be16(&h[14..16])), "length field");
    assert_eq!(h[12] >> 4, 2, "version");
    let command = h[12] & 0x0f;
    let family = h[13] >> 4;
    let transport = h[13] & 0x0f;
    let body = &h[16..];
    let port = |b: &[u8]| Some(be16(b)).filter(|p| *p != 0);
    match (command, family) {
        (0, _) => assert_eq!(header, &ProxyHeader::default(), "LOCAL carries addresses"),
        (1, _) if transport > 1 => panic!("accepted transport {transport}"),
        (1, 0 | 3) => assert_eq!(header, &ProxyHeader::default(), "UNSPEC/UNIX addresses"),
        (1, 1) => {
            assert!(body.len() >= 12, "IPv4 addresses from {} bytes", body.len());
            let src = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let dst = Ipv4Addr::new(body[4], body[5], body[6], body[7]);
            let source = header
                .source
                .as_deref()
                .expect("IPv4 header without source");
            assert_eq!(source.parse::<Ipv4Addr>().ok(), Some(src));
            assert_eq!(source, src.to_string());
            assert_eq!(header.source_port, port(&body[8..10]));
            assert_eq!(
                header.destination,
                Some((dst.to_string(), be16(&body[10..12])))
            );
        }
        (1, 2) => {
            assert!(body.len() >= 36, "IPv6 addresses from {} bytes", body.len());
            let mut a = [0u8; 16];
            a.copy_from_slice(&body[0..16]);
            let src = Ipv6Addr::from(a);
            a.copy_from_slice(&body[16..32]);
            let dst = Ipv6Addr::from(a);
            let source = header
                .source
                .as_deref()
                .expect("IPv6 header without source");
            assert_eq!(source.parse::<Ipv6Addr>().ok(), Some(src));
            assert_eq!(header.source_port, port(&body[32..34]));
            assert_eq!(
                header.destination,
                Some((dst.to_string(), be16(&body[34..36])))
            );
        }
        _ => panic!("accepted command {command} family {family}"),
    }
}

fn check_v1_header(line: &[u8], header: &ProxyHeader) {
    assert!(
        line.len() <= MAX_V1_HEADER,
        "v1 header of {} bytes",
        line.len()
    );
    assert_eq!(line.last(), Some(&b'\n'), "v1 header does not end the line");
    assert!(
        !line[..line.len() - 1].contains(&b'\n'),
        "v1 header spans lines"
    );
    assert_eq!(header.destination, None, "v1 reports a destination");
    match &header.source {
        Some(source) => {
            assert!(!source.is_empty());
            assert_eq!(source, &source.to_lowercase());
            assert_ne!(is_ip(source), 0, "v1 source {source:?} is no address");
        }
        None => assert_eq!(header.source_port, None, "port without address"),
    }
    if let Some(port) = header.source_port {
        assert!(port >= 1);
    }
}

// ----- DATA bodies -----

/// What [`DataDecoder::decode`] must produce for `input` given in one piece: the decoded
/// body, the bytes consumed and whether the terminator was seen. Written the simple way:
/// a line starts at the beginning and after CR LF; there `"." CRLF` ends the body, `".."`
/// loses a dot, and a `"."` or `"." CR` that the input ends with is held back.
pub fn reference_unstuff(input: &[u8]) -> (Vec<u8>, usize, bool) {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    let mut line_start = true;
    loop {
        if line_start {
            let rest = &input[i..];
            if rest.starts_with(b".\r\n") {
                return (out, i + 3, true);
            }
            if rest == b"." || rest == b".\r" {
                return (out, input.len(), false);
            }
            if rest.starts_with(b"..") {
                i += 1;
            }
            line_start = false;
        }
        let Some(&b) = input.get(i) else {
            return (out, input.len(), false);
        };
        out.push(b);
        if b == b'\n' && i > 0 && input[i - 1] == b'\r' {
            line_start = true;
        }
        i += 1;
    }
}

/// Feeds `body` to a decoder in pieces whose sizes `next` picks (0 means an empty call);
/// returns the output, the bytes consumed and whether it completed.
fn decode_split(body: &[u8], mut next: impl FnMut() -> usize) -> (Vec<u8>, usize, bool) {
    let mut d = DataDecoder::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut calls = 0usize;
    loop {
        calls += 1;
        assert!(calls <= 4 * body.len() + 16, "decoder makes no progress");
        let n = next().min(body.len() - pos);
        let before = out.len();
        let (consumed, done) = d.decode(&body[pos..pos + n], &mut out);
        assert!(consumed <= n, "consumed {consumed} of {n}");
        assert_eq!(d.body_len(), out.len() as u64, "body_len");
        assert!(
            out.len() - before <= n + 2,
            "more output than input plus held bytes"
        );
        pos += consumed;
        if done {
            // finished: nothing more is consumed or produced
            let len = out.len();
            assert_eq!(d.decode(b"x\r\n.\r\n", &mut out), (0, true));
            assert_eq!(out.len(), len);
            return (out, pos, true);
        }
        assert_eq!(consumed, n, "input left over without the terminator");
        if pos == body.len() {
            return (out, pos, false);
        }
    }
}

/// The DATA body decoder: one-shot decoding equals [`reference_unstuff`], and so does any
/// split of the input into pieces (the first two bytes seed the split).
pub fn data_decoder(data: &[u8]) {
    let (seed, body) = if data.len() >= 2 {
        (u64::from(be16(data)), &data[2..])
    } else {
        (0, data)
    };
    let want = reference_unstuff(body);

    let got = decode_split(body, || body.len());
    assert_eq!(got, want, "one-shot decoding differs from the reference");

    let mut rng = XorShift::new(seed);
    let max = if seed & 1 == 0 { 8 } else { 300 };
    let empty_calls = seed & 2 != 0;
    let got = decode_split(body, || {
        if empty_calls && rng.below(4) == 0 {
            0
        } else {
            1 + rng.below(max)
        }
    });
    assert_eq!(got, want, "split decoding differs from the reference");

    if body.len() <= 4096 {
        let got = decode_split(body, || 1);
        assert_eq!(
            got, want,
            "byte-by-byte decoding differs from the reference"
        );
    }
}

// ----- the session state machine -----

/// Checks the reply stream: complete `ddd[ -]text` CRLF lines in UTF-8, codes 2xx to 5xx,
/// no control characters in the text, continuation lines of one multi-line reply sharing
/// its code, and no multi-line reply left open while the session waits.
#[derive(Default)]
struct Replies {
    open: Option<[u8; 3]>,
    lines: usize,
}

impl Replies {
    fn take(&mut self, out: &mut Vec<u8>) {
        if out.is_empty() {
            return;
        }
        let text = match std::str::from_utf8(out) {
            Ok(t) => t,
            Err(e) => panic!(
                "reply is not UTF-8: {e}: {:?}",
                String::from_utf8_lossy(out)
            ),
        };
        assert!(text.ends_with("\r\n"), "partial reply line: {text:?}");
        for line in text[..text.len() - 2].split("\r\n") {
            self.line(line);
        }
        out.clear();
    }

    fn line(&mut self, line: &str) {
        self.lines += 1;
        let b = line.as_bytes();
        assert!(
            b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit),
            "reply without a code: {line:?}"
        );
        assert!((b'2'..=b'5').contains(&b[0]), "reply code {line:?}");
        let code = [b[0], b[1], b[2]];
        if let Some(open) = self.open {
            assert_eq!(open, code, "multi-line reply changes its code: {line:?}");
        }
        match b.get(3) {
            None | Some(b' ') => self.open = None,
            Some(b'-') => self.open = Some(code),
            Some(_) => panic!("reply code not followed by a space or '-': {line:?}"),
        }
        let text = line.get(4..).unwrap_or_default();
        assert!(
            !text.chars().any(is_control),
            "control character in reply {line:?}"
        );
    }

    fn at_rest(&self) {
        assert!(self.open.is_none(), "multi-line reply left open");
    }
}

fn tls_info() -> TlsInfo {
    TlsInfo {
        name: "TLS_AES_128_GCM_SHA256".into(),
        standard_name: "TLS_AES_128_GCM_SHA256".into(),
        version: "TLSv1.3".into(),
        servername: Some("mx.test".into()),
        authorized: false,
        authorization_error: None,
        peer_certificate: None,
    }
}

/// Options picked by the first two input bytes.
fn session_config(flags: u16) -> Config {
    let bit = |n: u16| flags & (1 << n) != 0;
    let mut c = Config {
        name: "mx.test".into(),
        lmtp: bit(0),
        hide_esc: !bit(1),
        hide_dsn: !bit(2),
        auth_optional: bit(3),
        allow_insecure_auth: bit(4),
        reject_oversized: bit(6),
        max_recipients: if bit(7) { 2 } else { 0 },
        lenient_address_parsing: bit(11),
        hide_requiretls: !bit(12),
        // bit 13: onMailFrom and onRcptTo; 14: onData; 15: onSecure and onAuth
        hooks: HookSet::from_mask(
            (u32::from(bit(13)) * 0b110)
                | (u32::from(bit(14)) << 3)
                | (u32::from(bit(15)) * 0b110_0000),
        ),
        ..Config::default()
    };
    if bit(5) {
        c.size = 100.0;
        c.size_text = Some("100".into());
    }
    if bit(8) {
        c.max_command_length = 64;
    }
    if bit(9) {
        c.use_xclient = Trust::Everyone;
    }
    if bit(10) {
        c.use_xforward = Trust::Everyone;
        c.auth_methods = ["PLAIN", "LOGIN", "XOAUTH2", "CRAM-MD5"]
            .map(String::from)
            .to_vec();
    }
    c
}

/// The SMTP/LMTP session: command bytes (after two option bytes and a seed byte) arrive in
/// pieces the seed picks; handlers answer yes or no. Never panics, replies stay well
/// formed, buffered input stays within the command length limit, and nothing is written
/// once the session closed. In strict mode (seed bits 64 and 128), no DATA body that
/// holds a bare CR or LF or a NUL reaches its end as a message, and no DATA stream starts
/// with input sent ahead of the 354.
pub fn session(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let flags = be16(data);
    let seed = data[2];
    let input = &data[3..];
    let mut config = session_config(flags);
    // seed bits 16 and 32: CHUNKING, and BINARYMIME hidden; 64 and 128: the strict mode
    config.chunking = seed & 16 != 0;
    config.hide_binarymime = seed & 32 != 0;
    config.reject_bare_line_endings = seed & 64 != 0;
    config.strict_pipelining = seed & 128 != 0;
    // without CHUNKING every message comes with DATA, which the strict mode covers
    let check_bare = config.reject_bare_line_endings && !config.chunking;
    let check_pipelining = config.strict_pipelining && !config.chunking;
    let cfg = Arc::new(config);
    let max_line = cfg.max_command_length;
    let peer = Peer {
        local_address: "127.0.0.1".into(),
        local_port: 25,
        remote_address: if seed & 4 == 0 {
            "10.0.0.1"
        } else {
            "2001:db8::1"
        }
        .into(),
        remote_port: 4000,
    };
    let mut s = Session::new(cfg, peer);
    s.set_client_hostname(if seed & 8 == 0 { "" } else { "client.example." });
    s.reset();
    s.greet();
    let mut replies = Replies::default();
    replies.take(s.output());
    assert_eq!(replies.lines, 1, "greeting");

    let mut rng = XorShift::new((u64::from(seed) << 16) | u64::from(flags));
    let max_piece = if seed & 1 == 0 { 7 } else { 200 };
    let mut closed = false;
    let mut pos = 0;
    // the body of the message in progress, as the application received it
    let mut body: Vec<u8> = Vec::new();
    while pos < input.len() {
        let n = (1 + rng.below(max_piece)).min(input.len() - pos);
        s.input().extend_from_slice(&input[pos..pos + n]);
        pos += n;
        if closed {
            assert_eq!(s.step(true), Step::Idle, "a closed session goes on");
            assert!(s.output().is_empty(), "a closed session writes");
            continue;
        }
        let mut steps = 0u32;
        loop {
            steps += 1;
            assert!(steps < 100_000, "the session does not settle");
            let step = s.step(rng.below(2) == 0);
            match step {
                Step::Idle => break,
                Step::Flush => replies.take(s.output()),
                Step::Close => closed = true,
                Step::Hook(call) => match *call {
                    HookCall::Auth(request) => {
                        let outcome = match rng.below(4) {
                            0 => AuthOutcome::Success,
                            1 => AuthOutcome::Failure {
                                code: None,
                                message: None,
                                data: "{}".into(),
                            },
                            2 if request.method == "XCLIENT" => AuthOutcome::Skip,
                            _ => AuthOutcome::Error(Some(535), "Nope\r\n".into()),
                        };
                        s.resolve_auth(outcome);
                    }
                    other => {
                        s.resolve_hook(
                            other.question(),
                            match rng.below(3) {
                                0 => HookOutcome::Reject(Some(550), "No\u{85}thanks".into()),
                                1 => HookOutcome::Reject(None, "Later".into()),
                                _ => HookOutcome::Accept,
                            },
                        );
                    }
                },
                Step::DataStart => {
                    body.clear();
                    if check_pipelining {
                        assert!(!s.has_input_over(0), "DATA accepted with input behind it");
                    }
                }
                Step::EmitConnect => {}
                Step::Body(piece) => {
                    assert!(!piece.is_empty(), "empty body piece");
                    body.extend_from_slice(&piece);
                    if rng.below(64) == 0 {
                        s.discard_body();
                        body.clear();
                    }
                }
                Step::BodyEnd(piece) => {
                    body.extend_from_slice(&piece);
                    if check_bare {
                        assert!(
                            !has_bare_line_ending(&body),
                            "a body with a bare line ending or NUL was accepted"
                        );
                    }
                    // the engine makes the replies (one per recipient under LMTP)
                    s.resolve_data(DataAnswer::Whole(DataResult::Accepted(None)));
                }
                Step::BodyAbort => body.clear(),
                Step::StartTls => {
                    replies.take(s.output());
                    s.tls_established(tls_info(), true);
                    // the connection asks onSecure after the handshake, as the server does
                    if s.ask_secure() {
                        s.resolve_secure(match rng.below(3) {
                            0 => HookOutcome::Reject(Some(554), "Not secure enough".into()),
                            _ => HookOutcome::Accept,
                        });
                    }
                }
            }
        }
        replies.take(s.output());
        replies.at_rest();
        if closed || s.is_closing() || s.is_waiting() {
            continue;
        }
        if s.in_data() {
            assert!(!s.has_input_over(0), "body bytes left unread");
        } else {
            assert!(
                !s.has_input_over(max_line),
                "more than a command line of input kept"
            );
        }
    }
}

/// A CR or LF outside a CRLF pair, or a NUL (an un-stuffed body ends in CRLF or is empty).
fn has_bare_line_ending(body: &[u8]) -> bool {
    body.iter().enumerate().any(|(i, &b)| match b {
        b'\r' => body.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || body[i - 1] != b'\r',
        0 => true,
        _ => false,
    })
}

// ----- MAIL FROM / RCPT TO -----

/// Characters an accepted address never holds: controls, the invisible formatting
/// characters smtp-server refuses, whitespace (it separates the parameters) and angle
/// brackets (they delimit the path).
fn unsafe_in_address(c: char) -> bool {
    is_control(c) || matches!(c, '\u{200B}' | '\u{2060}' | '\u{FEFF}' | '<' | '>') || is_js_space(c)
}

/// The MAIL FROM / RCPT TO parser. The first byte picks the command (bit 0), lenient
/// parsing (bit 1) and whether the rest is the whole line or goes inside
/// `NAME:<...>` (bit 2); the rest is decoded as the session decodes a command line
/// (lossy UTF-8).
///
/// - no panic, and the same answer twice;
/// - an accepted address holds no control, invisible, space or angle-bracket character
///   (including what a Punycode domain decodes to); it is empty, `postmaster` (RCPT) or
///   has exactly one `@` after a non-empty local part;
/// - parameter keys are upper-cased and unique, values hold no control character, and
///   the reported duplicate is one of the keys;
/// - whatever strict parsing accepts, lenient parsing accepts too.
pub fn address(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let cmd = if mode & 1 == 0 {
        AddressCommand::MailFrom
    } else {
        AddressCommand::RcptTo
    };
    let lenient = mode & 2 != 0;
    let text = String::from_utf8_lossy(rest);
    let line = if mode & 4 != 0 {
        format!("{}:<{text}>", cmd.name())
    } else {
        text.into_owned()
    };
    let parsed = parse_address_command(cmd, &line, lenient);
    assert_eq!(
        parsed,
        parse_address_command(cmd, &line, lenient),
        "not deterministic"
    );
    let Ok(p) = parsed else {
        return;
    };
    assert!(
        !p.address.chars().any(unsafe_in_address),
        "unsafe character in accepted address {:?} from {line:?}",
        p.address
    );
    let postmaster = cmd == AddressCommand::RcptTo && p.address.eq_ignore_ascii_case("postmaster");
    if !p.address.is_empty() && !postmaster {
        let (local, domain) = p
            .address
            .split_once('@')
            .unwrap_or_else(|| panic!("address without '@': {:?}", p.address));
        // the domain itself may come out empty: `xn--` decodes to nothing (punycode.js too)
        assert!(!local.is_empty() && !domain.contains('@'));
    }
    if let Some(args) = &p.args {
        assert!(!args.is_empty(), "an empty parameter list is not None");
        for (i, (key, value)) in args.iter().enumerate() {
            assert!(!key.is_empty());
            assert!(
                !args[..i].iter().any(|(k, _)| k == key),
                "duplicate key {key:?} kept twice"
            );
            assert_eq!(
                key.chars().flat_map(char::to_uppercase).collect::<String>(),
                *key,
                "key not upper-cased"
            );
            if let ParamValue::Value(v) = value {
                assert!(
                    !v.is_empty() && !has_control_chars(v),
                    "parameter value {v:?}"
                );
            }
        }
        if let Some(dup) = &p.duplicate {
            assert!(args.iter().any(|(k, _)| k == dup));
        }
    } else {
        assert!(p.duplicate.is_none());
    }
    if !lenient {
        assert!(
            parse_address_command(cmd, &line, true).is_ok(),
            "strict accepts what lenient refuses: {line:?}"
        );
    }
}

// ----- SASL -----

/// Node's `Buffer.from(s, 'base64')` written the plain way: keep the characters of
/// either alphabet up to the first `=`, then read 6 bits per character, 8 per byte.
pub fn reference_base64(input: &str) -> Vec<u8> {
    const STD: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits: Vec<bool> = Vec::new();
    for b in input.bytes() {
        if b == b'=' {
            break;
        }
        let b = match b {
            b'-' => b'+',
            b'_' => b'/',
            b => b,
        };
        if let Some(v) = STD.iter().position(|&c| c == b) {
            bits.extend((0..6).rev().map(|i| (v >> i) & 1 == 1));
        }
    }
    bits.chunks_exact(8)
        .map(|byte| {
            byte.iter()
                .fold(0u8, |acc, &bit| (acc << 1) | u8::from(bit))
        })
        .collect()
}

/// The SASL decoders. The first byte picks whether the rest goes to them as it is (lossy
/// UTF-8, as a command argument arrives) or base64-encoded first (so that the decoded
/// text has the fuzzer's structure).
///
/// - base64 decoding equals [`reference_base64`], and decoding what `encode_base64`
///   made gives the bytes back;
/// - PLAIN: three NUL-separated fields or nothing; the username is authcid, else
///   authzid; no control character in username or authzid;
/// - LOGIN: a username is not empty and holds no control character;
/// - XOAUTH2: a non-empty user without control characters and a non-empty token of
///   words separated by single spaces;
/// - CRAM-MD5: a username without control characters or spaces, a lower-case digest
///   without spaces.
pub fn sasl(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = if mode & 1 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        encode_base64(rest)
    };
    assert_eq!(decode_base64_lenient(&token), reference_base64(&token));
    assert_eq!(decode_base64_lenient(&encode_base64(rest)), rest);
    let text = String::from_utf8_lossy(&decode_base64_lenient(&token)).into_owned();

    match parse_plain(&token) {
        Some(p) => {
            let fields: Vec<&str> = text.split('\0').collect();
            assert_eq!(fields, [&p.authzid, &p.authcid, &p.password]);
            let expected = if p.authcid.is_empty() {
                &p.authzid
            } else {
                &p.authcid
            };
            assert_eq!(&p.username, expected);
            assert!(!p.username.chars().any(is_control) && !p.authzid.chars().any(is_control));
        }
        None => {
            let fields: Vec<&str> = text.split('\0').collect();
            if fields.len() == 3 {
                let username = if fields[1].is_empty() {
                    fields[0]
                } else {
                    fields[1]
                };
                assert!(
                    username.chars().any(is_control) || fields[0].chars().any(is_control),
                    "PLAIN refused {text:?}"
                );
            }
        }
    }

    if let Ok(username) = parse_login_username(&token) {
        assert_eq!(username, text);
        assert!(!username.is_empty() && !username.chars().any(is_control));
    }

    if let Some((user, access_token)) = parse_xoauth2(&token) {
        assert!(!user.is_empty() && !user.chars().any(is_control));
        assert!(!access_token.is_empty());
        assert!(
            access_token
                .split(' ')
                .all(|w| !w.is_empty() && !w.contains(is_js_space)),
            "token words {access_token:?}"
        );
    }

    if let Some((user, digest)) = parse_cram_md5(&token) {
        assert!(!user.chars().any(is_control) && !user.contains(' '));
        assert!(!digest.contains(' '));
        assert_eq!(digest, digest.to_lowercase());
    }
}

// ----- BDAT framing -----

/// CHUNKING: a message cut into BDAT chunks (sizes and bytes from the input, NOOPs and
/// pipelined refused chunks between them), fed to the session in random pieces. The
/// `onData` stream gets exactly the chunk bytes, in order; each chunk but the last gets
/// its 250, the last the message reply; no chunk byte is ever read as a command.
///
/// Input: a seed byte, then records of a length byte and that many payload bytes (the
/// top bit of the length byte puts a NOOP before the chunk).
pub fn bdat(data: &[u8]) {
    let Some((&seed, mut rest)) = data.split_first() else {
        return;
    };
    let mut chunks: Vec<(bool, &[u8])> = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len & 0x7f).min(tail.len());
        chunks.push((len & 0x80 != 0, &tail[..n]));
        rest = &tail[n..];
    }
    let config = Config {
        name: "mx.test".into(),
        chunking: true,
        auth_optional: true,
        lmtp: seed & 1 != 0,
        hooks: HookSet::from_mask(1 << 3),
        ..Config::default()
    };
    let lmtp = config.lmtp;
    let peer = Peer {
        local_address: "127.0.0.1".into(),
        local_port: 25,
        remote_address: "10.0.0.1".into(),
        remote_port: 4000,
    };
    let mut s = Session::new(Arc::new(config), peer);
    s.reset();
    s.greet();
    s.output().clear();

    // a refused chunk first (no transaction yet): its bytes must be read past
    let mut wire: Vec<u8> = Vec::new();
    let decoy = b"NOOP\r\nMAIL FROM:<x@y>\r\n";
    wire.extend_from_slice(format!("BDAT {}\r\n", decoy.len()).as_bytes());
    wire.extend_from_slice(decoy);
    wire.extend_from_slice(if lmtp { b"LHLO c\r\n" } else { b"EHLO c\r\n" });
    wire.extend_from_slice(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
    let mut expected_body = Vec::new();
    let mut expected = vec!["503".to_string(), "250".into(), "250".into(), "250".into()];
    let count = chunks.len();
    for (i, (noop, payload)) in chunks.iter().enumerate() {
        if *noop && i > 0 && seed & 2 != 0 {
            // inside the transaction STARTTLS is refused, and the transaction goes on
            wire.extend_from_slice(b"STARTTLS\r\n");
            expected.push("503 Error: STARTTLS not allowed during a BDAT transaction".into());
        } else if *noop {
            wire.extend_from_slice(b"NOOP\r\n");
            expected.push("250 OK".into());
        }
        let last = i + 1 == count;
        let head = format!(
            "BDAT {}{}\r\n",
            payload.len(),
            if last { " LAST" } else { "" }
        );
        wire.extend_from_slice(head.as_bytes());
        wire.extend_from_slice(payload);
        expected_body.extend_from_slice(payload);
        expected.push(if last {
            "250 Stored".into()
        } else {
            format!("250 OK: {} bytes received", payload.len())
        });
    }
    if count == 0 {
        wire.extend_from_slice(b"BDAT 0 LAST\r\n");
        expected.push("250 Stored".into());
    }
    wire.extend_from_slice(b"NOOP\r\n");
    expected.push("250 OK".into());

    let mut rng = XorShift::new(u64::from(seed) << 8 | 1);
    let mut body = Vec::new();
    let mut ended = false;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < wire.len() {
        let n = (1 + rng.below(64)).min(wire.len() - pos);
        s.input().extend_from_slice(&wire[pos..pos + n]);
        pos += n;
        let mut steps = 0u32;
        loop {
            steps += 1;
            assert!(steps < 100_000, "the session does not settle");
            match s.step(rng.below(2) == 0) {
                Step::Idle => break,
                Step::Flush => out.append(s.output()),
                Step::Close => panic!("the session closed"),
                Step::Hook(_) | Step::StartTls => panic!("unexpected hook"),
                Step::DataStart | Step::EmitConnect => {}
                Step::BodyAbort => panic!("the transaction was aborted"),
                Step::Body(piece) => {
                    assert!(!ended, "body after its end");
                    assert!(!piece.is_empty(), "empty body piece");
                    body.extend_from_slice(&piece);
                }
                Step::BodyEnd(piece) => {
                    assert!(!ended, "a second end");
                    ended = true;
                    body.extend_from_slice(&piece);
                    s.resolve_data(DataAnswer::Whole(DataResult::Accepted(Some(
                        "Stored".into(),
                    ))));
                }
            }
        }
        out.append(s.output());
    }
    assert!(
        ended,
        "the message did not end: {:?}",
        String::from_utf8_lossy(&out)
    );
    assert!(body == expected_body, "the body differs from the chunks");
    let text = String::from_utf8_lossy(&out);
    let replies: Vec<&str> = text
        .split("\r\n")
        .filter(|l| !l.is_empty() && l.as_bytes().get(3) != Some(&b'-'))
        .collect();
    assert_eq!(replies.len(), expected.len(), "replies: {replies:?}");
    for (got, want) in replies.iter().zip(&expected) {
        assert!(got.starts_with(want.as_str()), "{got:?} is not {want:?}");
    }
}
