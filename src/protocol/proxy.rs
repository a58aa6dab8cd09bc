//! PROXY protocol headers (HAProxy): version 1 (text) with smtp-server's exact rules, and
//! version 2 (binary), which smtp-server lacks and load balancers such as AWS NLB send.

use memchr::memchr;

use super::host::is_ip;
use super::js_string::trim_js;
use super::xclient::js_number;

/// Longest accepted version 1 header line, LF included (smtp-server's limit).
pub const MAX_V1_HEADER: usize = 1024;
/// The version 2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// The client (and for version 2 the server) side the proxy reports.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProxyHeader {
    /// Client address (lower-cased), when the header carries one.
    pub source: Option<String>,
    /// Client port, when given and numeric (0 or missing keeps the socket's).
    pub source_port: Option<u16>,
    /// Server address and port (version 2 only; version 1 ignores them like smtp-server).
    pub destination: Option<(String, u16)>,
    /// The words after `PROXY` (version 1, for the logger); version 2 gives the same
    /// five words (`TCP4`/`TCP6`, addresses, ports) for an address block.
    pub params: Vec<String>,
}

/// The outcome of looking at the bytes received so far.
#[derive(Debug, Clone, PartialEq)]
pub enum ProxyParse {
    /// Not enough bytes yet.
    Incomplete,
    /// A header of `len` bytes.
    Complete {
        /// Header length; the bytes after it belong to the session.
        len: usize,
        /// What it says.
        header: ProxyHeader,
    },
    /// Not a valid header: answer `* BAD Invalid PROXY header` and close.
    Invalid(&'static str),
}

/// Parses a PROXY header at the start of `buf`.
pub fn parse(buf: &[u8]) -> ProxyParse {
    let probe = buf.len().min(V2_SIGNATURE.len());
    if probe > 0 && buf[..probe] == V2_SIGNATURE[..probe] {
        if probe < V2_SIGNATURE.len() {
            return ProxyParse::Incomplete;
        }
        return parse_v2(buf);
    }
    parse_v1(buf)
}

fn parse_v1(buf: &[u8]) -> ProxyParse {
    let Some(lf) = memchr(b'\n', buf) else {
        if buf.len() > MAX_V1_HEADER {
            return ProxyParse::Invalid("PROXY header line too long");
        }
        return ProxyParse::Incomplete;
    };
    if lf + 1 > MAX_V1_HEADER {
        return ProxyParse::Invalid("PROXY header line too long");
    }
    let text = String::from_utf8_lossy(&buf[..=lf]);
    let line = trim_js(&text);
    let mut params = line.split(' ');
    if params.next().unwrap_or("").to_uppercase() != "PROXY" {
        return ProxyParse::Invalid("Invalid PROXY header");
    }
    let params: Vec<&str> = params.collect();
    let mut header = ProxyHeader::default();
    if let Some(source) = params.get(1).filter(|s| !s.is_empty()) {
        let source = trim_js(source).to_lowercase();
        if is_ip(&source) == 0 {
            return ProxyParse::Invalid("Invalid PROXY source address");
        }
        // smtp-server reads the destination token while logging; a missing one rejects
        if params.get(2).is_none() {
            return ProxyParse::Invalid("Invalid PROXY header");
        }
        header.source = Some(source);
        header.params = params.iter().map(|p| p.to_string()).collect();
        if let Some(port) = params.get(3).filter(|s| !s.is_empty()) {
            let n = js_number(trim_js(port));
            if n.is_finite() && n >= 1.0 && n.fract() == 0.0 && n <= 65535.0 {
                header.source_port = Some(n as u16);
            }
        }
    }
    ProxyParse::Complete {
        len: lf + 1,
        header,
    }
}

fn ipv4(b: &[u8]) -> String {
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

fn ipv6(b: &[u8]) -> String {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&b[..16]);
    std::net::Ipv6Addr::from(octets).to_string()
}

fn port(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn parse_v2(buf: &[u8]) -> ProxyParse {
    if buf.len() < 16 {
        return ProxyParse::Incomplete;
    }
    let ver_cmd = buf[12];
    if ver_cmd >> 4 != 2 {
        return ProxyParse::Invalid("Unsupported PROXY protocol version");
    }
    let command = ver_cmd & 0x0f;
    let family = buf[13];
    let body_len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let total = 16 + body_len;
    if buf.len() < total {
        return ProxyParse::Incomplete;
    }
    let body = &buf[16..total];
    let mut header = ProxyHeader::default();
    match command {
        // LOCAL: health checks from the proxy itself, the socket addresses stay
        0 => {}
        1 => {
            let transport = family & 0x0f;
            if transport > 1 {
                return ProxyParse::Invalid("Unsupported PROXY transport");
            }
            match family >> 4 {
                0 | 3 => {}
                1 => {
                    if body.len() < 12 {
                        return ProxyParse::Invalid("Truncated PROXY v2 addresses");
                    }
                    header.source = Some(ipv4(&body[0..4]));
                    header.source_port = Some(port(&body[8..10])).filter(|p| *p != 0);
                    header.destination = Some((ipv4(&body[4..8]), port(&body[10..12])));
                }
                2 => {
                    if body.len() < 36 {
                        return ProxyParse::Invalid("Truncated PROXY v2 addresses");
                    }
                    header.source = Some(ipv6(&body[0..16]));
                    header.source_port = Some(port(&body[32..34])).filter(|p| *p != 0);
                    header.destination = Some((ipv6(&body[16..32]), port(&body[34..36])));
                }
                _ => return ProxyParse::Invalid("Unsupported PROXY address family"),
            }
        }
        _ => return ProxyParse::Invalid("Unsupported PROXY command"),
    }
    if let (Some(source), Some((destination, dport))) = (&header.source, &header.destination) {
        let family = if family >> 4 == 1 { "TCP4" } else { "TCP6" };
        let sport = header.source_port.unwrap_or(0);
        header.params = vec![
            family.to_string(),
            source.clone(),
            destination.clone(),
            sport.to_string(),
            dport.to_string(),
        ];
    }
    ProxyParse::Complete { len: total, header }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | cmd);
        out.push(fam);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn v1() {
        let ok = parse(b"PROXY TCP4 192.0.2.1 198.51.100.1 5678 25\r\nEHLO");
        assert_eq!(
            ok,
            ProxyParse::Complete {
                len: 43,
                header: ProxyHeader {
                    source: Some("192.0.2.1".into()),
                    source_port: Some(5678),
                    destination: None,
                    params: ["TCP4", "192.0.2.1", "198.51.100.1", "5678", "25"]
                        .map(String::from)
                        .to_vec(),
                }
            }
        );
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            ProxyParse::Complete {
                len: 15,
                header: ProxyHeader::default()
            }
        );
        assert_eq!(parse(b"PROXY TCP4 1.2.3.4"), ProxyParse::Incomplete);
        assert!(matches!(parse(b"EHLO x\r\n"), ProxyParse::Invalid(_)));
        assert!(matches!(
            parse(b"PROXY TCP4 bad 1.2.3.4 1 2\r\n"),
            ProxyParse::Invalid(_)
        ));
        assert!(matches!(
            parse(b"PROXY TCP4 1.2.3.4\r\n"),
            ProxyParse::Invalid(_)
        ));
        assert!(matches!(parse(&vec![b'P'; 2000]), ProxyParse::Invalid(_)));
        let mut long = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ".to_vec();
        long.extend(vec![b'x'; 1000]);
        long.push(b'\n');
        assert!(matches!(parse(&long), ProxyParse::Invalid(_)));
        match parse(b"PROXY TCP6 2001:DB8::1 ::1 x 25\n") {
            ProxyParse::Complete { header, .. } => {
                assert_eq!(header.source.as_deref(), Some("2001:db8::1"));
                assert_eq!(header.source_port, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn v2_headers() {
        let mut body = vec![192, 0, 2, 1, 198, 51, 100, 1];
        body.extend_from_slice(&5678u16.to_be_bytes());
        body.extend_from_slice(&25u16.to_be_bytes());
        body.extend_from_slice(&[0x04, 0x00, 0x01, 0xaa]); // a TLV, ignored
        let h = v2(1, 0x11, &body);
        assert_eq!(
            parse(&h),
            ProxyParse::Complete {
                len: h.len(),
                header: ProxyHeader {
                    source: Some("192.0.2.1".into()),
                    source_port: Some(5678),
                    destination: Some(("198.51.100.1".into(), 25)),
                    params: ["TCP4", "192.0.2.1", "198.51.100.1", "5678", "25"]
                        .map(String::from)
                        .to_vec(),
                }
            }
        );
        for cut in 0..h.len() {
            assert_eq!(parse(&h[..cut]), ProxyParse::Incomplete, "cut {cut}");
        }
        let local = v2(0, 0, &[]);
        assert_eq!(
            parse(&local),
            ProxyParse::Complete {
                len: 16,
                header: ProxyHeader::default()
            }
        );
        let mut v6 = vec![0u8; 36];
        v6[15] = 1;
        v6[31] = 2;
        v6[33] = 80;
        let h6 = v2(1, 0x21, &v6);
        match parse(&h6) {
            ProxyParse::Complete { header, .. } => {
                assert_eq!(header.source.as_deref(), Some("::1"));
                assert_eq!(header.source_port, Some(80));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&v2(1, 0x11, &[1, 2, 3])),
            ProxyParse::Invalid(_)
        ));
        assert!(matches!(parse(&v2(2, 0x11, &[])), ProxyParse::Invalid(_)));
        let mut bad = v2(1, 0x11, &[]);
        bad[12] = 0x31;
        assert!(matches!(parse(&bad), ProxyParse::Invalid(_)));
        assert!(matches!(
            parse(&v2(1, 0x41, &[0; 12])),
            ProxyParse::Invalid(_)
        ));
    }

    #[test]
    fn never_panics_on_junk() {
        let mut state = 0x1234_5678u32;
        for _ in 0..20_000 {
            let len = (state % 64) as usize;
            let mut buf = V2_SIGNATURE.to_vec();
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                buf.push(state as u8);
            }
            let _ = parse(&buf);
            let _ = parse(&buf[12..]);
        }
    }
}
