//! A small deterministic mutator for the stable replay runner: no coverage feedback, just
//! seeded random edits of corpus inputs (and of earlier mutants) that keep the structure
//! the targets expect often enough to reach past the first checks.

/// xorshift64*: fast, seedable, good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator for `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        XorShift((seed ^ 0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// Byte strings worth inserting: line ends, dots, PROXY and SMTP words, address and SASL
/// pieces, small and large length fields.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b".",
    b"..",
    b"\r\n.\r\n",
    b"\r\n..",
    b"\0",
    b" ",
    b":",
    b"<",
    b">",
    b"=",
    b"\xff",
    b"\xc2\x85",
    b"\r\n\r\n\0\r\nQUIT\n",
    b"\x21\x11\x00\x0c",
    b"\x21\x21\x00\x24",
    b"\x20\x00\x00\x00",
    b"\xff\xff",
    b"\x00\x00",
    b"PROXY ",
    b"TCP4 ",
    b"TCP6 ",
    b"UNKNOWN",
    b"127.0.0.1",
    b"::ffff:1.2.3.4",
    b"65535",
    b"65536",
    b"0x10",
    b"1e3",
    b"EHLO x\r\n",
    b"HELO x\r\n",
    b"LHLO x\r\n",
    b"MAIL FROM:<a@b.c>",
    b"RCPT TO:<d@e.f>",
    b"DATA\r\n",
    b"BDAT",
    b"AUTH PLAIN",
    b"AUTH LOGIN\r\n",
    b"AUTH XOAUTH2",
    b"AUTH CRAM-MD5\r\n",
    b"AGFAYg==",
    b"@",
    b"xn--",
    b"+0D+0A",
    b"\x01",
    b"[IPv6:",
    b"postmaster",
    b"auth=Bearer ",
    b"*\r\n",
    b"STARTTLS\r\n",
    b"RSET\r\n",
    b"QUIT\r\n",
    b"XCLIENT ADDR=1.2.3.4 NAME=x LOGIN=u",
    b"XFORWARD HELO=x",
    b" SIZE=",
    b" BODY=8BITMIME",
    b" SMTPUTF8",
    b" NOTIFY=SUCCESS,DELAY",
    b" ORCPT=rfc822;a@b",
    b" RET=HDRS ENVID=x",
    b"GET / HTTP/1.1\r\n",
];

/// Returns a mutant of `input` of at most `max_len` bytes; `other` is a second input to
/// splice from.
pub fn mutate(rng: &mut XorShift, input: &[u8], other: &[u8], max_len: usize) -> Vec<u8> {
    let mut v = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        match rng.below(11) {
            // flip a bit
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            // set a byte
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next_u64() as u8;
            }
            // set a byte to an interesting value
            2 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = [0, 1, 0x0a, 0x0d, b'.', b' ', 0x20, 0x21, 0x7f, 0x80, 0xff][rng.below(11)];
            }
            // insert a token
            3 | 4 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                let i = rng.below(v.len() + 1);
                v.splice(i..i, t.iter().copied());
            }
            // insert random bytes
            5 => {
                let i = rng.below(v.len() + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                v.splice(i..i, bytes);
            }
            // delete a range
            6 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = 1 + rng.below((v.len() - i).min(16));
                v.drain(i..i + n);
            }
            // duplicate a range
            7 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = 1 + rng.below((v.len() - i).min(64));
                let copy = v[i..i + n].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, copy);
            }
            // truncate
            8 if !v.is_empty() => {
                let n = rng.below(v.len());
                v.truncate(n);
            }
            // overwrite two bytes with a big-endian length (the PROXY v2 length field)
            9 if v.len() >= 2 => {
                let i = rng.below(v.len() - 1);
                let n = [0u16, 1, 11, 12, 35, 36, 0xff, 0x100, 0x7fff, 0xffff][rng.below(10)];
                v[i..i + 2].copy_from_slice(&n.to_be_bytes());
            }
            // splice in part of the other input
            _ if !other.is_empty() => {
                let from = rng.below(other.len());
                let n = 1 + rng.below(other.len() - from);
                let at = rng.below(v.len() + 1);
                let end = (at + n).min(v.len());
                v.splice(at..end, other[from..from + n].iter().copied());
            }
            _ => v.push(rng.next_u64() as u8),
        }
    }
    v.truncate(max_len);
    v
}
