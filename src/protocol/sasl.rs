//! SASL pieces of the AUTH command: Node-compatible lenient base64, and the decoding of
//! PLAIN, LOGIN, XOAUTH2 and CRAM-MD5 client responses into the fields `onAuth` receives.

use super::js_string::is_control;
use super::js_string::is_js_space;

/// Decodes base64 the way Node's `Buffer.from(s, 'base64')` does: both alphabets, any
/// other character skipped, decoding stops at the first `=`.
pub fn decode_base64_lenient(input: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for b in input.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Encodes standard base64 with padding.
pub fn encode_base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Buffer.from(token, 'base64').toString()`.
pub fn decode_text(token: &str) -> String {
    String::from_utf8_lossy(&decode_base64_lenient(token)).into_owned()
}

fn has_control(s: &str) -> bool {
    s.chars().any(is_control)
}

/// The credentials of a PLAIN response.
#[derive(Debug, Clone, PartialEq)]
pub struct Plain {
    /// `authcid || authzid`.
    pub username: String,
    /// Authentication identity.
    pub authcid: String,
    /// Authorization identity.
    pub authzid: String,
    /// Password.
    pub password: String,
}

/// Decodes a PLAIN token; `None` means `501 Error: invalid userdata`.
pub fn parse_plain(token: &str) -> Option<Plain> {
    let text = decode_text(token);
    let parts: Vec<&str> = text.split('\0').collect();
    if parts.len() != 3 {
        return None;
    }
    let authzid = parts[0].to_string();
    let authcid = parts[1].to_string();
    let username = if authcid.is_empty() {
        authzid.clone()
    } else {
        authcid.clone()
    };
    if has_control(&username) || has_control(&authzid) {
        return None;
    }
    Some(Plain {
        username,
        authcid,
        authzid,
        password: parts[2].to_string(),
    })
}

/// Why a LOGIN username line is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    /// Decoded to nothing.
    Missing,
    /// Contains control characters.
    Invalid,
}

/// Decodes a LOGIN username line.
pub fn parse_login_username(token: &str) -> Result<String, LoginError> {
    let username = decode_text(token);
    if username.is_empty() {
        return Err(LoginError::Missing);
    }
    if has_control(&username) {
        return Err(LoginError::Invalid);
    }
    Ok(username)
}

/// Decodes an XOAUTH2 token into (username, access token); `None` means invalid userdata.
pub fn parse_xoauth2(token: &str) -> Option<(String, String)> {
    let text = decode_text(token);
    let mut username: Option<String> = None;
    let mut access_token: Option<String> = None;
    for field in text.split('\u{1}') {
        let (key, value) = match field.find('=') {
            Some(i) => (&field[..i], &field[i + 1..]),
            None => (field, ""),
        };
        let value = value.trim_matches(is_js_space);
        match key.to_lowercase().as_str() {
            "user" => username = Some(value.to_string()),
            "auth" => {
                let scheme = value.split(is_js_space).next().unwrap_or("");
                if scheme.to_lowercase() == "bearer" {
                    access_token = Some(js_split_join(value));
                }
            }
            _ => {}
        }
    }
    let username = username.filter(|u| !u.is_empty() && !has_control(u))?;
    let access_token = access_token.filter(|t| !t.is_empty())?;
    Some((username, access_token))
}

/// `value.split(/\s+/)` without its first word, joined with single spaces.
fn js_split_join(value: &str) -> String {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut first = true;
    let mut in_space = false;
    for c in value.chars() {
        if is_js_space(c) {
            if !in_space {
                if first {
                    first = false;
                } else {
                    words.push(std::mem::take(&mut current));
                }
                in_space = true;
            }
        } else {
            in_space = false;
            if !first {
                current.push(c);
            }
        }
    }
    if !first {
        words.push(current);
    }
    words.join(" ")
}

/// Decodes a CRAM-MD5 response into (username, lower-cased digest); `None` means invalid userdata.
pub fn parse_cram_md5(token: &str) -> Option<(String, String)> {
    let text = decode_text(token);
    let mut parts = text.split(' ');
    let username = parts.next().unwrap_or("").to_string();
    let response = parts.next().unwrap_or("").to_lowercase();
    if has_control(&username) {
        return None;
    }
    Some((username, response))
}

/// A CRAM-MD5 challenge: `<hex32.unix-seconds@name>`.
pub fn cram_md5_challenge(name: &str, random: &[u8; 16], unix_seconds: u64) -> String {
    let mut hex = String::with_capacity(32);
    for b in random {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("<{hex}.{unix_seconds}@{name}>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_like_node() {
        let cases: &[(&str, &[u8])] = &[
            ("YQ==", b"a"),
            ("YQ", b"a"),
            ("YQ=", b"a"),
            ("Y", b""),
            ("YWJj", b"abc"),
            ("YW Jj", b"abc"),
            ("YW*Jj", b"abc"),
            ("YQ==YQ==", b"a"),
            ("YWI=YWI=", b"ab"),
            ("-_-_", &[0xfb, 0xff, 0xbf]),
            ("+/+/", &[0xfb, 0xff, 0xbf]),
            ("YWJjZA", b"abcd"),
            ("AAEC", &[0, 1, 2]),
            ("", b""),
        ];
        for (input, want) in cases {
            assert_eq!(decode_base64_lenient(input), *want, "{input:?}");
        }
        for sample in [&b""[..], b"a", b"ab", b"abc", b"abcd", b"\x00\xff\x10"] {
            assert_eq!(decode_base64_lenient(&encode_base64(sample)), sample);
        }
        assert_eq!(encode_base64(b"Username:"), "VXNlcm5hbWU6");
    }

    #[test]
    fn plain() {
        let t = encode_base64(b"\0user\0pass");
        assert_eq!(
            parse_plain(&t),
            Some(Plain {
                username: "user".into(),
                authcid: "user".into(),
                authzid: String::new(),
                password: "pass".into()
            })
        );
        assert_eq!(
            parse_plain(&encode_base64(b"admin\0\0pw")).map(|p| p.username),
            Some("admin".into())
        );
        assert_eq!(parse_plain(&encode_base64(b"a\0b")), None);
        assert_eq!(parse_plain(&encode_base64(b"\0us\ner\0pw")), None);
    }

    #[test]
    fn login_and_cram() {
        assert_eq!(
            parse_login_username(&encode_base64(b"bob")),
            Ok("bob".into())
        );
        assert_eq!(parse_login_username(""), Err(LoginError::Missing));
        assert_eq!(
            parse_login_username(&encode_base64(b"b\x01")),
            Err(LoginError::Invalid)
        );
        assert_eq!(
            parse_cram_md5(&encode_base64(b"bob ABCdef")),
            Some(("bob".into(), "abcdef".into()))
        );
        assert_eq!(
            cram_md5_challenge("h", &[0xab; 16], 7),
            format!("<{}.7@h>", "ab".repeat(16))
        );
    }

    #[test]
    fn xoauth2() {
        let t = encode_base64(b"user=me@x\x01auth=Bearer  tok  en\x01\x01");
        assert_eq!(parse_xoauth2(&t), Some(("me@x".into(), "tok en".into())));
        assert_eq!(
            parse_xoauth2(&encode_base64(b"user=me\x01auth=Basic x\x01\x01")),
            None
        );
        assert_eq!(
            parse_xoauth2(&encode_base64(b"auth=Bearer x\x01\x01")),
            None
        );
        assert_eq!(
            parse_xoauth2(&encode_base64(b"user=me\x01auth=bearer\x01\x01")),
            None
        );
    }
}
