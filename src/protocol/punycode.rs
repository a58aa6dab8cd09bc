//! Punycode (RFC 3492) decoding with the observable behaviour of the punycode.js
//! package (version 2.x), which the reference implementation uses to turn the
//! domain of an address into Unicode.
//!
//! [`to_unicode`] splits a domain into labels at `.` and at the ideographic and
//! full-width/half-width full stops (U+3002, U+FF0E, U+FF61), which all become `.`
//! in the result, and decodes every label starting with a lower-case `xn--`. Labels
//! are checked the way punycode.js checks them, so the same inputs are rejected.
//!
//! A JavaScript string can hold unpaired surrogates while a Rust string can not: a
//! decoded surrogate code point that does not pair up with its neighbour becomes
//! U+FFFD, which is also what such a string turns into when it crosses into UTF-8.

use std::borrow::Cow;
use std::fmt;

/// Largest value the decoder's integers may reach (2^31 - 1).
const MAX_INT: u32 = 0x7FFF_FFFF;
/// Number of digit values (Bootstring parameter `base`, RFC 3492 section 5).
const BASE: u32 = 36;
/// Smallest digit threshold (`tmin`).
const T_MIN: u32 = 1;
/// Largest digit threshold (`tmax`).
const T_MAX: u32 = 26;
/// Bias adaptation skew (`skew`).
const SKEW: u32 = 38;
/// Damping applied to the first bias adaptation (`damp`).
const DAMP: u32 = 700;
/// Bias before the first adaptation (`initial_bias`).
const INITIAL_BIAS: u32 = 72;
/// First code point the deltas count from (`initial_n`).
const INITIAL_N: u32 = 0x80;
/// Separates the basic code points from the encoded deltas.
const DELIMITER: u8 = b'-';
/// Prefix of an encoded label (compared case-sensitively, as punycode.js does).
const ACE_PREFIX: &str = "xn--";
/// Label separators other than `.` that RFC 3490 recognizes.
const EXTRA_SEPARATORS: [char; 3] = ['\u{3002}', '\u{FF0E}', '\u{FF61}'];

/// Why a label could not be decoded. The variants correspond to the errors
/// punycode.js throws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PunycodeError {
    /// An intermediate value exceeded 2^31 - 1.
    Overflow,
    /// A non-ASCII character appeared before the last delimiter.
    NotBasic,
    /// A character is not a base-36 digit or the input ended mid-number.
    InvalidInput,
    /// A decoded code point lies beyond U+10FFFF.
    InvalidCodePoint,
}

impl fmt::Display for PunycodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PunycodeError::Overflow => "Overflow: input needs wider integers to process",
            PunycodeError::NotBasic => "Illegal input >= 0x80 (not a basic code point)",
            PunycodeError::InvalidInput => "Invalid input",
            PunycodeError::InvalidCodePoint => "Invalid code point",
        })
    }
}

impl std::error::Error for PunycodeError {}

/// Value of a base-36 digit, or `BASE` if the byte is not one.
#[inline]
fn digit_value(byte: u8) -> u32 {
    match byte {
        b'0'..=b'9' => u32::from(byte - b'0') + 26,
        b'A'..=b'Z' => u32::from(byte - b'A'),
        b'a'..=b'z' => u32::from(byte - b'a'),
        _ => BASE,
    }
}

/// Bias adaptation function of RFC 3492 section 6.1.
fn adapt(delta: u32, num_points: u32, first_time: bool) -> u32 {
    let mut delta = if first_time { delta / DAMP } else { delta / 2 };
    delta += delta / num_points.max(1);
    let mut k = 0;
    while delta > ((BASE - T_MIN) * T_MAX) / 2 {
        delta /= BASE - T_MIN;
        k += BASE;
    }
    k + (BASE - T_MIN + 1) * delta / (delta + SKEW)
}

/// The free places of an array, counted with a Fenwick tree so that the k-th free
/// one is found, and taken, in logarithmic time.
struct FreeSlots {
    /// 1-based Fenwick tree of the number of free places.
    tree: Vec<u32>,
    /// Largest power of two not above the number of places (0 for none).
    top: usize,
}

impl FreeSlots {
    /// `len` places, all free.
    fn new(len: usize) -> Self {
        // with every count 1, the node for `i` covers `i & -i` places
        let tree = (0..=len)
            .map(|i| u32::try_from(i & i.wrapping_neg()).unwrap_or(u32::MAX))
            .collect();
        let top = if len == 0 { 0 } else { 1 << len.ilog2() };
        FreeSlots { tree, top }
    }

    /// Takes the free place with `rank` free places before it and returns its
    /// 0-based index, or `None` if there are not that many free places.
    fn take(&mut self, rank: usize) -> Option<usize> {
        let mut remaining = u32::try_from(rank).ok()?;
        let mut pos = 0usize;
        let mut step = self.top;
        while step > 0 {
            if let Some(&count) = self.tree.get(pos + step) {
                if count <= remaining {
                    pos += step;
                    remaining -= count;
                }
            }
            step >>= 1;
        }
        // the first `pos` places hold `rank` free ones and place `pos` is free,
        // unless `rank` is not below the number of free places (then `pos` is the
        // number of places)
        let mut node = pos + 1;
        if node >= self.tree.len() {
            return None;
        }
        while let Some(count) = self.tree.get_mut(node) {
            *count -= 1;
            node += node & node.wrapping_neg();
        }
        Some(pos)
    }
}

/// Builds the final order of a decoded label: `inserts` are the code points in
/// the order the decoder inserted them, each with the index it was inserted at in
/// the array as it stood then; `basic` holds the basic code points, which fill the
/// places left over. Equivalent to performing the insertions one by one, but each
/// place is found in logarithmic time: a label of n code points takes O(n log n),
/// not O(n²) (a long label, as lenient address parsing with a raised command
/// length allows, would otherwise cost time quadratic in its length).
fn place_inserted(basic: &[u32], inserts: &[(usize, u32)]) -> Vec<u32> {
    let len = basic.len() + inserts.len();
    let mut placed: Vec<Option<u32>> = vec![None; len];
    let mut free = FreeSlots::new(len);
    // the last insertion's index is its final place; walking back, each earlier
    // one lands on the free place of the same rank among those not taken later
    for &(at, point) in inserts.iter().rev() {
        if let Some(slot) = free.take(at).and_then(|index| placed.get_mut(index)) {
            *slot = Some(point);
        }
    }
    let mut basic = basic.iter().copied();
    placed
        .into_iter()
        .filter_map(|slot| slot.or_else(|| basic.next()))
        .collect()
}

/// Decodes a Punycode string (without the `xn--` prefix) into code points,
/// appending them to `points`, which must be empty.
fn decode_points(input: &[u8], points: &mut Vec<u32>) -> Result<(), PunycodeError> {
    let basic = input.iter().rposition(|&b| b == DELIMITER).unwrap_or(0);
    for &byte in input.iter().take(basic) {
        if byte >= 0x80 {
            return Err(PunycodeError::NotBasic);
        }
        points.push(u32::from(byte));
    }

    let mut inserts: Vec<(usize, u32)> = Vec::new();
    let mut index = if basic > 0 { basic + 1 } else { 0 };
    let mut i: u32 = 0;
    let mut n = INITIAL_N;
    let mut bias = INITIAL_BIAS;
    while index < input.len() {
        let old_i = i;
        let mut w: u32 = 1;
        let mut k = BASE;
        loop {
            let Some(&byte) = input.get(index) else {
                return Err(PunycodeError::InvalidInput);
            };
            index += 1;
            let digit = digit_value(byte);
            if digit >= BASE {
                return Err(PunycodeError::InvalidInput);
            }
            if digit > (MAX_INT - i) / w {
                return Err(PunycodeError::Overflow);
            }
            i += digit * w;
            let t = if k <= bias {
                T_MIN
            } else if k >= bias + T_MAX {
                T_MAX
            } else {
                k - bias
            };
            if digit < t {
                break;
            }
            if w > MAX_INT / (BASE - t) {
                return Err(PunycodeError::Overflow);
            }
            w *= BASE - t;
            k += BASE;
        }

        let len = points.len() + inserts.len();
        let out = u32::try_from(len + 1).map_err(|_| PunycodeError::Overflow)?;
        bias = adapt(i - old_i, out, old_i == 0);
        if i / out > MAX_INT - n {
            return Err(PunycodeError::Overflow);
        }
        n += i / out;
        i %= out;
        // `i` is below `out`, so the position is within 0..=len
        let at = usize::try_from(i).map_err(|_| PunycodeError::Overflow)?;
        inserts.push((at.min(len), n));
        i += 1;
    }
    if !inserts.is_empty() {
        *points = place_inserted(points, &inserts);
    }
    Ok(())
}

/// Appends decoded code points to `out` the way a JavaScript string built with
/// `String.fromCodePoint` would read once converted to UTF-8: adjacent high/low
/// surrogates combine, unpaired ones become U+FFFD. Fails, writing nothing, if any
/// code point is beyond U+10FFFF (where `fromCodePoint` throws).
fn push_code_points(points: &[u32], out: &mut String) -> Result<(), PunycodeError> {
    if points.iter().any(|&cp| cp > 0x10_FFFF) {
        return Err(PunycodeError::InvalidCodePoint);
    }
    let mut iter = points.iter().copied().peekable();
    while let Some(cp) = iter.next() {
        let ch = match cp {
            0xD800..=0xDBFF => match iter.peek() {
                Some(&low @ 0xDC00..=0xDFFF) => {
                    iter.next();
                    char::from_u32(0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00))
                }
                _ => None,
            },
            _ => char::from_u32(cp),
        };
        out.push(ch.unwrap_or(char::REPLACEMENT_CHARACTER));
    }
    Ok(())
}

/// Decodes one Punycode string, like punycode.js `decode`. The input is the part
/// after `xn--`; it is not lower-cased (the digits are case-insensitive anyway,
/// the basic code points before the last `-` are copied as they are).
///
/// # Errors
///
/// Fails on malformed input, in the same cases in which punycode.js throws.
pub fn decode(input: &str) -> Result<String, PunycodeError> {
    let mut points = Vec::with_capacity(input.len());
    decode_points(input.as_bytes(), &mut points)?;
    let mut out = String::with_capacity(points.len() * 2);
    push_code_points(&points, &mut out)?;
    Ok(out)
}

/// Reusable buffers for decoding several labels.
#[derive(Default)]
struct Scratch {
    /// The lower-cased label body.
    lower: Vec<u8>,
    /// Code points decoded from it.
    points: Vec<u32>,
}

/// Decodes the label body after `xn--` (lower-cased first, as punycode.js does) and
/// appends the result to `out`.
fn decode_label_into(
    body: &str,
    scratch: &mut Scratch,
    out: &mut String,
) -> Result<(), PunycodeError> {
    scratch.lower.clear();
    scratch.points.clear();
    if body.is_ascii() {
        scratch
            .lower
            .extend(body.bytes().map(|b| b.to_ascii_lowercase()));
    } else {
        // Only ASCII survives decoding, but lower-casing can turn a non-ASCII
        // character into ASCII (U+212A KELVIN SIGN becomes `k`)
        scratch
            .lower
            .extend_from_slice(body.to_lowercase().as_bytes());
    }
    decode_points(&scratch.lower, &mut scratch.points)?;
    push_code_points(&scratch.points, out)
}

/// Returns `true` if a domain needs no rewriting by [`to_unicode`].
fn is_plain_domain(domain: &str) -> bool {
    (domain.is_ascii() || !domain.contains(EXTRA_SEPARATORS))
        && !domain.starts_with(ACE_PREFIX)
        && !domain.contains(".xn--")
}

/// Converts a domain name (or an e-mail address, whose local part is kept as is)
/// to Unicode, like punycode.js `toUnicode`.
///
/// Only labels that start with a lower-case `xn--` are decoded; the separators
/// U+3002, U+FF0E and U+FF61 are replaced by `.` everywhere. If the input contains
/// `@`, everything up to the first `@` is copied unchanged and only the text between
/// the first and the second `@` is converted (anything after a second `@` is dropped,
/// as in punycode.js). Returns the input borrowed when nothing changes.
///
/// # Errors
///
/// Fails if an `xn--` label is not valid Punycode, exactly when punycode.js throws.
pub fn to_unicode(input: &str) -> Result<Cow<'_, str>, PunycodeError> {
    let (prefix_len, domain) = match input.find('@') {
        Some(at) => {
            let rest = input.get(at + 1..).unwrap_or("");
            match rest.find('@') {
                // a second '@' cuts off the remainder, so the output differs anyway
                Some(second) => (at + 1, rest.get(..second).unwrap_or("")),
                None if is_plain_domain(rest) => return Ok(Cow::Borrowed(input)),
                None => (at + 1, rest),
            }
        }
        None if is_plain_domain(input) => return Ok(Cow::Borrowed(input)),
        None => (0, input),
    };

    let mut out = String::with_capacity(input.len() + 16);
    out.push_str(input.get(..prefix_len).unwrap_or(""));
    let mut scratch = Scratch::default();
    let is_separator = |c: char| c == '.' || EXTRA_SEPARATORS.contains(&c);
    for (index, label) in domain.split(is_separator).enumerate() {
        if index > 0 {
            out.push('.');
        }
        match label.strip_prefix(ACE_PREFIX) {
            Some(body) => decode_label_into(body, &mut scratch, &mut out)?,
            None => out.push_str(label),
        }
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Ok(output)` or `Err(())` (an exception) from punycode.js 2.3.1 `toUnicode`.
    /// Lone surrogates in the JavaScript output appear as U+FFFD.
    const TO_UNICODE: &[(&str, Result<&str, ()>)] = &[
        ("", Ok("")),
        ("example.com", Ok("example.com")),
        ("xn--mller-kva", Ok("m\u{FC}ller")),
        ("xn--mller-kva.de", Ok("m\u{FC}ller.de")),
        ("xn--MLLER-KVA.de", Ok("m\u{FC}ller.de")),
        ("XN--mller-kva.de", Ok("XN--mller-kva.de")),
        ("Xn--mller-kva", Ok("Xn--mller-kva")),
        ("xn--mller-kva.xn--bcher-kva", Ok("m\u{FC}ller.b\u{FC}cher")),
        ("xn--", Ok("")),
        ("xn--.com", Ok(".com")),
        ("xn--a", Ok("\u{80}")),
        ("xn--a-", Ok("a")),
        ("xn---", Err(())),
        ("xn--ls8h", Ok("\u{1F4A9}")),
        ("xn--tiq49xqyj", Ok("\u{5929}\u{4E3B}\u{6559}")),
        ("xn--mnchen-3ya", Ok("m\u{FC}nchen")),
        ("xn--99999999999", Err(())),
        (
            "xn--zzzzzzzzzzzzz",
            Ok("\u{885E}\u{9CE5}\u{7BA5}\u{7CEA}\u{7E16}"),
        ),
        ("xn--en32g", Err(())),
        ("xn--dn32g", Ok("\u{10FFFF}")),
        ("xn--t016146o", Err(())),
        ("xn--8c9b", Ok("\u{FFFD}")),
        ("xn--8c9bk9h", Ok("\u{1F600}")),
        ("xn--8c9bj9h", Ok("\u{FFFD}\u{FFFD}")),
        ("xn--ab-zd9k", Ok("a\u{FFFD}b")),
        ("xn--ib9b66ea", Ok("\u{10000}\u{FFFD}")),
        ("xn--\u{212A}a", Ok("\u{8A}")),
        ("xn--\u{FC}-", Err(())),
        ("xn--\u{FC}", Err(())),
        ("xn--!", Err(())),
        ("xn--a!-", Ok("a!")),
        ("xn--5", Err(())),
        ("foo\u{3002}bar", Ok("foo.bar")),
        ("foo\u{FF0E}xn--mller-kva", Ok("foo.m\u{FC}ller")),
        ("foo\u{FF61}", Ok("foo.")),
        ("m\u{FC}ller.de", Ok("m\u{FC}ller.de")),
        ("user@xn--mller-kva.de", Ok("user@m\u{FC}ller.de")),
        (
            "xn--mller-kva@xn--mller-kva",
            Ok("xn--mller-kva@m\u{FC}ller"),
        ),
        ("a@b@xn--mller-kva", Ok("a@b")),
        ("a@xn--mller-kva@c", Ok("a@m\u{FC}ller")),
        ("@", Ok("@")),
        ("a@b", Ok("a@b")),
        (".", Ok(".")),
        ("..xn--a..", Ok("..\u{80}..")),
    ];

    #[test]
    fn to_unicode_matches_punycode_js() {
        for (input, expected) in TO_UNICODE {
            let got = to_unicode(input);
            match expected {
                Ok(text) => assert_eq!(got.as_deref(), Ok(*text), "{input:?}"),
                Err(()) => assert!(got.is_err(), "{input:?} gave {got:?}"),
            }
        }
    }

    #[test]
    fn to_unicode_borrows_when_unchanged() {
        for input in [
            "",
            "example.com",
            "a@example.com",
            "XN--ABC.com",
            "m\u{FC}ller.de",
        ] {
            assert!(
                matches!(to_unicode(input), Ok(Cow::Borrowed(_))),
                "{input:?}"
            );
        }
        assert!(matches!(to_unicode("a\u{3002}b"), Ok(Cow::Owned(_))));
    }

    #[test]
    fn decode_and_errors() {
        assert_eq!(decode("mller-kva").as_deref(), Ok("m\u{FC}ller"));
        // basic code points keep their case, only the digits are case-insensitive
        assert_eq!(decode("MLLER-KVA").as_deref(), Ok("M\u{FC}LLER"));
        assert_eq!(decode("").as_deref(), Ok(""));
        assert_eq!(decode("abc-").as_deref(), Ok("abc"));
        assert_eq!(decode("\u{FC}-a"), Err(PunycodeError::NotBasic));
        assert_eq!(decode("a!"), Err(PunycodeError::InvalidInput));
        assert_eq!(decode("9"), Err(PunycodeError::InvalidInput));
        assert_eq!(decode("99999999999"), Err(PunycodeError::Overflow));
        assert_eq!(decode("en32g"), Err(PunycodeError::InvalidCodePoint));
        assert_eq!(decode("8c9bk9h").as_deref(), Ok("\u{1F600}"));
        assert_eq!(decode("8c9bj9h").as_deref(), Ok("\u{FFFD}\u{FFFD}"));
        assert_eq!(PunycodeError::InvalidInput.to_string(), "Invalid input");
    }

    #[test]
    fn placing_matches_inserting_one_by_one() {
        let mut seed = 12345u64;
        let mut next = |bound: usize| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            usize::try_from(seed >> 33).unwrap_or(0) % (bound + 1)
        };
        for (basic_len, count) in [(0, 1), (0, 7), (3, 1), (5, 40), (0, 300), (17, 1000)] {
            let basic: Vec<u32> = (0..basic_len).map(|b| 0x41 + b).collect();
            let mut naive = basic.clone();
            let mut inserts = Vec::new();
            for point in 0..count {
                let at = next(naive.len());
                naive.insert(at, 0x1000 + point);
                inserts.push((at, 0x1000 + point));
            }
            assert_eq!(place_inserted(&basic, &inserts), naive);
        }
        let mut free = FreeSlots::new(3);
        assert_eq!(free.take(3), None);
        assert_eq!(free.take(1), Some(1));
        assert_eq!(free.take(1), Some(2));
        assert_eq!(free.take(1), None);
        assert_eq!(free.take(0), Some(0));
        assert_eq!(FreeSlots::new(0).take(0), None);
    }

    #[test]
    fn adapt_follows_rfc_3492() {
        assert_eq!(adapt(0, 1, true), 0);
        assert_eq!(adapt(700, 1, true), 1);
        assert_eq!(adapt(455, 1, false), 33);
        assert_eq!(adapt(MAX_INT, 1, false), 198);
    }
}
