//! IP address and host name helpers with the exact semantics of the JavaScript
//! functions the reference implementation relies on.
//!
//! * [`is_ipv4`], [`is_ipv6`] and [`is_ip`] accept precisely the strings that
//!   Node's `net.isIPv4`, `net.isIPv6` and `net.isIP` accept (no leading zeros in
//!   dotted quads, an optional `%zone` suffix on IPv6, an embedded IPv4 tail).
//! * [`normalize_ipv6`] produces the RFC 5952 canonical text form.
//! * [`normalize_address`] and [`is_valid_hostname`] mirror the helpers of the same
//!   purpose in smtp-server.

use std::borrow::Cow;

use super::js_string::trim_js;

/// Upper bound of a hostname, in UTF-16 code units (RFC 1035).
const MAX_HOSTNAME_LENGTH: usize = 253;
/// Upper bound of a single DNS label (RFC 1035).
const MAX_LABEL_LENGTH: usize = 63;

/// Returns `true` if `s` is a dotted-quad IPv4 address as accepted by Node's
/// `net.isIPv4`: four decimal octets of at most 255, written without leading zeros.
#[must_use]
pub fn is_ipv4(s: &str) -> bool {
    is_ipv4_bytes(s.as_bytes())
}

/// [`is_ipv4`] on bytes.
fn is_ipv4_bytes(bytes: &[u8]) -> bool {
    let mut octets = 0usize;
    let mut index = 0usize;
    loop {
        let start = index;
        while bytes.get(index).is_some_and(u8::is_ascii_digit) {
            index += 1;
        }
        if !bytes.get(start..index).is_some_and(is_ipv4_octet) {
            return false;
        }
        octets += 1;
        match bytes.get(index) {
            None => return octets == 4,
            Some(b'.') if octets < 4 => index += 1,
            Some(_) => return false,
        }
    }
}

/// One decimal octet of a dotted quad: `0`-`255`, no leading zero.
fn is_ipv4_octet(part: &[u8]) -> bool {
    match part {
        [d] => d.is_ascii_digit(),
        [a, b] => (b'1'..=b'9').contains(a) && b.is_ascii_digit(),
        [a, b, c] => {
            b.is_ascii_digit()
                && c.is_ascii_digit()
                && match a {
                    b'1' => true,
                    b'2' => *b < b'5' || (*b == b'5' && *c <= b'5'),
                    _ => false,
                }
        }
        _ => false,
    }
}

/// Returns `true` if `s` is an IPv6 address as accepted by Node's `net.isIPv6`.
///
/// The address consists of hexadecimal groups (1-4 digits) separated by `:`,
/// possibly ending in a dotted-quad IPv4 address that counts as two groups. Without
/// `::` there must be exactly eight groups; with a single `::` at most seven. An
/// optional zone suffix `%` followed by one or more of `[0-9A-Za-z.:-]` may follow.
#[must_use]
pub fn is_ipv6(s: &str) -> bool {
    let bytes = s.as_bytes();
    let addr = match bytes.iter().position(|&b| b == b'%') {
        Some(percent) => {
            let zone = bytes.get(percent + 1..).unwrap_or(&[]);
            let zone_ok = !zone.is_empty()
                && zone
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'));
            if !zone_ok {
                return false;
            }
            bytes.get(..percent).unwrap_or(&[])
        }
        None => bytes,
    };
    is_ipv6_bytes(addr)
}

/// [`is_ipv6`] without the zone suffix.
fn is_ipv6_bytes(addr: &[u8]) -> bool {
    let mut groups = 0usize;
    let mut compressed = false;
    let mut index = 0usize;
    if addr.starts_with(b"::") {
        if addr.len() == 2 {
            return true;
        }
        compressed = true;
        index = 2;
    }
    loop {
        let start = index;
        while bytes_hex(addr, index) {
            index += 1;
        }
        if addr.get(index) == Some(&b'.') {
            // an IPv4 tail has to run to the very end
            if !addr.get(start..).is_some_and(is_ipv4_bytes) {
                return false;
            }
            groups += 2;
            break;
        }
        if !(1..=4).contains(&(index - start)) {
            return false;
        }
        groups += 1;
        match addr.get(index) {
            None => break,
            Some(b':') => index += 1,
            Some(_) => return false,
        }
        match addr.get(index) {
            // a single trailing colon
            None => return false,
            Some(b':') => {
                if compressed {
                    return false;
                }
                compressed = true;
                index += 1;
                if index == addr.len() {
                    break;
                }
            }
            Some(_) => {}
        }
    }
    if compressed {
        groups <= 7
    } else {
        groups == 8
    }
}

/// Returns `true` if the byte at `index` is a hexadecimal digit.
#[inline]
fn bytes_hex(bytes: &[u8], index: usize) -> bool {
    bytes.get(index).is_some_and(u8::is_ascii_hexdigit)
}

/// Returns 4 for an IPv4 address, 6 for an IPv6 address and 0 otherwise, exactly
/// like Node's `net.isIP`.
#[must_use]
pub fn is_ip(s: &str) -> u8 {
    if is_ipv4(s) {
        4
    } else if is_ipv6(s) {
        6
    } else {
        0
    }
}

/// Lower-cases `s` like JavaScript's `toLowerCase`, borrowing when nothing changes.
fn to_lower_js(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else {
        let lower = s.to_lowercase();
        if lower == s {
            Cow::Borrowed(s)
        } else {
            Cow::Owned(lower)
        }
    }
}

/// Formats an IPv6 address in the canonical text form of RFC 5952: lower-case hex
/// digits, no leading zeros within a group and the first longest run of two or more
/// all-zero groups collapsed to `::`.
///
/// An embedded IPv4 tail stays in dotted form and a zone suffix (`%eth0`) is kept
/// (lower-cased). The input is expected to satisfy [`is_ipv6`]; anything that does
/// not split into the right number of groups is returned lower-cased and otherwise
/// unchanged, which is what the reference implementation does as well.
#[must_use]
pub fn normalize_ipv6(address: &str) -> String {
    let lower = to_lower_js(address);
    let lower: &str = &lower;
    let (mut rest, zone) = match lower.find('%') {
        Some(pos) => lower.split_at(pos),
        None => (lower, ""),
    };
    let mut ipv4 = "";
    let after_colon = rest.rfind(':').map_or(0, |pos| pos + 1);
    // JavaScript's indexOf starts the search at the last colon itself (or at 0)
    let search_from = after_colon.saturating_sub(1);
    if rest.get(search_from..).is_some_and(|s| s.contains('.')) {
        ipv4 = rest.get(after_colon..).unwrap_or("");
        let hex = rest.get(..after_colon).unwrap_or("");
        rest = if hex.ends_with("::") {
            hex
        } else {
            hex.get(..hex.len().saturating_sub(1)).unwrap_or("")
        };
    }
    let total = if ipv4.is_empty() { 8 } else { 6 };
    let mut buf = [0u16; 8];
    let groups: &mut [u16] = buf.get_mut(..total).unwrap_or_default();
    if !expand_groups(rest, groups) {
        return lower.to_owned();
    }
    let mut out = String::with_capacity(lower.len());
    write_compressed(groups, &mut out);
    if !ipv4.is_empty() {
        if !out.ends_with(':') {
            out.push(':');
        }
        out.push_str(ipv4);
    }
    out.push_str(zone);
    out
}

/// Parses `hex` (a `:`-separated group list with at most one `::`) into exactly
/// `groups.len()` values. Returns `false` if that is not possible.
fn expand_groups(hex: &str, groups: &mut [u16]) -> bool {
    let total = groups.len();
    let (head, tail) = match find_double_colon(hex) {
        Some(pos) => (
            hex.get(..pos).unwrap_or(""),
            Some(hex.get(pos + 2..).unwrap_or("")),
        ),
        None => (hex, None),
    };
    if tail.is_some_and(|tail| find_double_colon(tail).is_some()) {
        // more than one "::"
        return false;
    }
    let head_count = if head.is_empty() {
        0
    } else {
        head.split(':').count()
    };
    let tail_str = tail.unwrap_or("");
    let tail_count = if tail_str.is_empty() {
        0
    } else {
        tail_str.split(':').count()
    };
    let used = head_count + tail_count;
    let fits = match tail {
        // `::` has to stand for at least one group
        Some(_) => used < total,
        None => used == total,
    };
    if !fits {
        return false;
    }
    let head_iter = head.split(':').take(head_count);
    let tail_iter = tail_str.split(':').take(tail_count);
    let mut slot = 0usize;
    for (index, group) in head_iter.enumerate() {
        match parse_group(group) {
            Some(value) => {
                if let Some(dst) = groups.get_mut(index) {
                    *dst = value;
                }
            }
            None => return false,
        }
        slot = index + 1;
    }
    let tail_start = total - tail_count;
    for value in groups.iter_mut().take(tail_start).skip(slot) {
        *value = 0;
    }
    for (index, group) in tail_iter.enumerate() {
        match parse_group(group) {
            Some(value) => {
                if let Some(dst) = groups.get_mut(tail_start + index) {
                    *dst = value;
                }
            }
            None => return false,
        }
    }
    true
}

/// Byte offset of the first `::`.
fn find_double_colon(s: &str) -> Option<usize> {
    s.as_bytes().windows(2).position(|pair| pair == b"::")
}

/// Parses one group of 1-4 lower-case hex digits.
fn parse_group(group: &str) -> Option<u16> {
    if group.is_empty()
        || group.len() > 4
        || !group
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    u16::from_str_radix(group, 16).ok()
}

/// Writes the groups joined by `:`, collapsing the first longest run of at least two
/// zero groups into `::`.
fn write_compressed(groups: &[u16], out: &mut String) {
    let mut best_start = usize::MAX;
    let mut best_len = 1usize;
    let mut index = 0usize;
    while index < groups.len() {
        let run = groups
            .iter()
            .skip(index)
            .take_while(|&&group| group == 0)
            .count();
        if run > best_len {
            best_start = index;
            best_len = run;
        }
        index += run + 1;
    }
    if best_start == usize::MAX {
        write_group_list(groups, out);
    } else {
        let (head, rest) = groups.split_at(best_start.min(groups.len()));
        write_group_list(head, out);
        out.push_str("::");
        write_group_list(rest.get(best_len..).unwrap_or(&[]), out);
    }
}

/// Writes groups as lower-case hex without leading zeros, separated by `:`.
fn write_group_list(groups: &[u16], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, &group) in groups.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let mut started = false;
        for shift in [12u16, 8, 4, 0] {
            let nibble = usize::from((group >> shift) & 0xF);
            if nibble != 0 || started || shift == 0 {
                started = true;
                out.push(char::from(HEX.get(nibble).copied().unwrap_or(b'0')));
            }
        }
    }
}

/// Normalizes an IP address for comparisons, like smtp-server's `normalizeAddress`:
/// trims JavaScript whitespace, drops a leading `::ffff:` (any case) so IPv4-mapped
/// addresses compare equal to plain IPv4, canonicalizes IPv6 with
/// [`normalize_ipv6`] and lower-cases the result.
#[must_use]
pub fn normalize_address(raw: &str) -> String {
    let mut address = trim_js(raw);
    if address
        .get(..7)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("::ffff:"))
    {
        address = address.get(7..).unwrap_or("");
    }
    if !address.is_empty() && is_ipv6(address) {
        // already lower-case and ASCII
        return normalize_ipv6(address);
    }
    to_lower_js(address).into_owned()
}

/// Checks that a hostname from an untrusted source (PTR record, XCLIENT `NAME`)
/// looks like a real hostname, like smtp-server's `isValidHostname`.
///
/// The whole value (including an optional trailing root dot) may be at most 253
/// UTF-16 code units; each dot-separated label must hold 1-63 ASCII letters, digits,
/// hyphens or underscores and must not start or end with a hyphen.
#[must_use]
pub fn is_valid_hostname(hostname: &str) -> bool {
    // non-ASCII input fails the label check anyway, so bytes can stand in for
    // UTF-16 code units here
    if hostname.is_empty() || hostname.len() > MAX_HOSTNAME_LENGTH {
        return false;
    }
    let name = hostname.strip_suffix('.').unwrap_or(hostname);
    name.split('.').all(is_valid_label)
}

/// One label of [`is_valid_hostname`].
fn is_valid_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    let edge = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= MAX_LABEL_LENGTH
                && edge(first)
                && edge(last)
                && bytes.iter().all(|b| edge(b) || *b == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `net.isIP` results of Node 20 for the same input.
    const IS_IP: &[(&str, u8)] = &[
        ("", 0),
        ("0.0.0.0", 4),
        ("1.2.3.4", 4),
        ("255.255.255.255", 4),
        ("256.0.0.1", 0),
        ("01.2.3.4", 0),
        ("1.2.3.04", 0),
        ("1.2.3", 0),
        ("1.2.3.4.5", 0),
        (" 1.2.3.4", 0),
        ("1.2.3.4\n", 0),
        ("1.2.3.4%eth0", 0),
        ("::", 6),
        ("::1", 6),
        ("1::", 6),
        (":::", 0),
        (":1::", 0),
        ("1:2:3:4:5:6:7:8", 6),
        ("1:2:3:4:5:6:7:8:9", 0),
        ("1:2:3:4:5:6:7", 0),
        ("1:2:3:4:5:6:7::", 6),
        ("::2:3:4:5:6:7:8", 6),
        ("1::2:3:4:5:6:7:8", 0),
        ("1:2:3:4:5:6::7:8", 0),
        ("1::2::3", 0),
        ("12345::", 0),
        ("g::1", 0),
        ("ABCD:EF01::", 6),
        ("::ffff:1.2.3.4", 6),
        ("::FFFF:1.2.3.4", 6),
        ("1:2:3:4:5:6:1.2.3.4", 6),
        ("1:2:3:4:5:6:7:1.2.3.4", 0),
        ("1:2:3:4:5::1.2.3.4", 6),
        ("1:2:3:4:5:6::1.2.3.4", 0),
        ("::1.2.3.4:1", 0),
        ("::1.2.3", 0),
        ("::01.2.3.4", 0),
        ("fe80::1%eth0", 6),
        ("fe80::1%", 0),
        ("fe80::1%a.b:c-D", 6),
        ("fe80::1%a_b", 0),
        ("fe80::1%eth0%1", 0),
        ("fe80::1%\u{E9}", 0),
        ("::1 ", 0),
        ("\u{A0}::1", 0),
        ("fe80::1\u{130}", 0),
        ("0000:0000::0000", 6),
    ];

    /// Output of smtp-server's `normalizeIPv6` for the same input.
    const NORMALIZE_IPV6: &[(&str, &str)] = &[
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("0:0:0:0:0:0:0:0", "::"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("2001:DB8:0:0:0:0:0:0001", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:db8::0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
        ("1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"),
        ("0:1:0:1:0:1:0:1", "0:1:0:1:0:1:0:1"),
        ("1:2:3:4:5:6:7:0", "1:2:3:4:5:6:7:0"),
        ("0:0:1:2:3:4:5:6", "::1:2:3:4:5:6"),
        ("0001:0002:0003:0004:0005:0006:0007:0008", "1:2:3:4:5:6:7:8"),
        ("::FFFF:192.0.2.1", "::ffff:192.0.2.1"),
        ("::ffff:0:192.0.2.1", "::ffff:0:192.0.2.1"),
        ("0:0:0:0:0:0:192.0.2.1", "::192.0.2.1"),
        ("1:2:3:4:5:6:192.0.2.1", "1:2:3:4:5:6:192.0.2.1"),
        ("1:0:0:0:0:0:1.2.3.4", "1::1.2.3.4"),
        ("FE80::0001%ETH0", "fe80::1%eth0"),
        ("fe80:0:0:0:0:0:0:1%1", "fe80::1%1"),
        ("not-an-address", "not-an-address"),
        ("ABC", "abc"),
        ("1:2:3", "1:2:3"),
        ("x::1", "x::1"),
        ("1.2.3.4", "1.2.3.4"),
        (":::", ":::"),
        ("FE80::1::2", "fe80::1::2"),
    ];

    /// Output of smtp-server's `normalizeAddress` for the same input.
    const NORMALIZE_ADDRESS: &[(&str, &str)] = &[
        ("", ""),
        ("   ", ""),
        ("192.0.2.1", "192.0.2.1"),
        (" 192.0.2.1 ", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("::FFFF:192.0.2.1", "192.0.2.1"),
        ("\u{A0}::ffff:192.0.2.1\u{FEFF}", "192.0.2.1"),
        ("::ffff:", ""),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("::1", "::1"),
        ("FE80::1%ETH0", "fe80::1%eth0"),
        ("Example.COM", "example.com"),
        ("::ffff:2001:DB8::1", "2001:db8::1"),
        ("::ffff:ABC", "abc"),
        ("\u{130}STANBUL", "i\u{307}stanbul"),
        ("::ffff:::1", "::1"),
        ("::FfFf:0:1", "0:1"),
    ];

    /// Output of smtp-server's `isValidHostname` for the same input.
    const VALID_HOSTNAME: &[(&str, bool)] = &[
        ("", false),
        (".", false),
        ("a", true),
        ("a.", true),
        ("a..", false),
        (".a", false),
        ("localhost", true),
        ("mail.example.com", true),
        ("mail.example.com.", true),
        ("mail.example.com..", false),
        ("MAIL.Example.COM", true),
        ("_dmarc.example.com", true),
        ("a_", true),
        ("-a.com", false),
        ("a-.com", false),
        ("a-b.com", true),
        ("a--b.com", true),
        ("a b.com", false),
        ("a\r\n.com", false),
        ("ex\u{E1}mple.com", false),
        ("xn--mller-kva.de", true),
        ("a*.com", false),
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", true),
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", false),
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.a", true),
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.ab", false),
        ("a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a", true),
        ("a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.", false),
        ("a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.", false),
    ];

    #[test]
    fn is_ip_matches_node() {
        for (input, expected) in IS_IP {
            assert_eq!(is_ip(input), *expected, "{input:?}");
            assert_eq!(is_ipv4(input), *expected == 4, "{input:?}");
            assert_eq!(is_ipv6(input), *expected == 6, "{input:?}");
        }
    }

    #[test]
    fn ipv4_octets() {
        for value in 0..=999u32 {
            let octet = value.to_string();
            let expected = value <= 255;
            assert_eq!(is_ipv4(&format!("{octet}.0.0.1")), expected, "{octet}");
            assert_eq!(is_ipv4(&format!("1.1.1.{octet}")), expected, "{octet}");
            assert!(!is_ipv4(&format!("0{octet}.1.1.1")), "0{octet}");
        }
    }

    #[test]
    fn normalize_ipv6_matches_reference() {
        for (input, expected) in NORMALIZE_IPV6 {
            assert_eq!(normalize_ipv6(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn normalize_address_matches_reference() {
        for (input, expected) in NORMALIZE_ADDRESS {
            assert_eq!(normalize_address(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn is_valid_hostname_matches_reference() {
        for (input, expected) in VALID_HOSTNAME {
            assert_eq!(is_valid_hostname(input), *expected, "{input:?}");
        }
    }
}
