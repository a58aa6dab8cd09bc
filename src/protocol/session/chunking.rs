//! CHUNKING (RFC 3030): `BDAT <size> [LAST]` carries the message in counted chunks,
//! without dot-stuffing, into the same `onData` stream as DATA. BINARYMIME rides on it.
//!
//! A chunk's bytes are always read past, also when its command is refused, so they are
//! never taken for commands.

use super::message::Body;
use super::{Command, Esc, Mode, Session, Step, Trace, BODY_CHUNK};
use crate::protocol::js_string::js_split_ws;

/// A BDAT transaction: the message so far, between its first and its last chunk.
#[derive(Debug)]
pub(super) struct Chunked {
    /// Bytes received in all chunks so far.
    pub(super) total: u64,
    /// The body as the application receives it.
    pub(super) body: Body,
}

/// One BDAT chunk being read.
#[derive(Debug)]
pub(super) struct Chunk {
    /// The size the command announced.
    size: u64,
    /// Bytes of the chunk still to come.
    remaining: u64,
    /// `LAST` was given: the message ends with this chunk.
    last: bool,
    /// The chunk is read and dropped; this reply follows it.
    refusal: Option<Refusal>,
}

/// What follows a refused chunk.
#[derive(Debug)]
struct Refusal {
    /// The reply, unless the command was answered already.
    reply: Option<(u16, String, Esc)>,
    /// The refusal also ends the transaction.
    abort: bool,
    /// How many times the reply is sent (one per recipient for a last chunk under LMTP).
    replies: usize,
}

impl Refusal {
    /// The command was answered already; the chunk is only read past.
    fn answered() -> Refusal {
        Refusal {
            reply: None,
            abort: false,
            replies: 1,
        }
    }

    /// One reply after the chunk; the transaction goes on.
    fn reply(code: u16, text: &str) -> Refusal {
        Refusal {
            reply: Some((code, text.to_string(), Esc::Default)),
            abort: false,
            replies: 1,
        }
    }
}

/// Parses `BDAT <size> [LAST]`: the size and whether it is the last chunk.
fn parse_bdat(line: &str) -> Option<(u64, bool)> {
    let parts = js_split_ws(line);
    let size = parts.get(1)?;
    if size.is_empty() || size.len() > 20 || !size.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let size: u64 = size.parse().ok()?;
    match parts.get(2) {
        None if parts.len() == 2 => Some((size, false)),
        Some(word) if parts.len() == 3 && word.eq_ignore_ascii_case("LAST") => Some((size, true)),
        _ => None,
    }
}

impl Session {
    /// BINARYMIME is on offer.
    pub(super) fn binarymime(&self) -> bool {
        self.cfg.chunking && !self.cfg.hide_binarymime && self.is_supported(Command::Bdat)
    }

    /// Refuses a command with 503 `text` between the first and the last chunk of a
    /// message; the transaction goes on.
    pub(super) fn refuse_in_chunking(&mut self, text: &str) -> bool {
        if self.chunked.is_none() {
            return false;
        }
        self.send(503, text, Esc::Default);
        true
    }

    /// DATA is refused inside a BDAT transaction and for a BINARYMIME message.
    pub(super) fn refuse_data_in_chunking(&mut self) -> bool {
        if self.refuse_in_chunking("Error: DATA not allowed after BDAT") {
            return true;
        }
        if self.envelope.body_type == "binarymime" {
            self.send(503, "Error: BINARYMIME requires BDAT", Esc::Default);
            return true;
        }
        false
    }

    /// `BDAT <size> [LAST]`.
    pub(super) fn cmd_bdat(&mut self, line: &str) {
        let Some((size, last)) = parse_bdat(line) else {
            // without a size the chunk cannot be told from the commands after it
            self.send(501, "Error: Syntax: BDAT size [LAST]", Esc::Default);
            self.close();
            return;
        };
        let refusal = if !self.is_supported(Command::Bdat) {
            // disabled for this session (`session.disabledCommands`) after CHUNKING was
            // announced: refused as an unknown command, its chunk still read past
            self.refuse_unrecognized(Some(Command::Bdat));
            Some(Refusal::answered())
        } else if self.admit(Some(Command::Bdat)) {
            self.chunk_refusal(size, last)
        } else {
            // admit() has answered; the chunk is still read past
            Some(Refusal::answered())
        };
        if refusal.is_none() {
            self.open_chunked();
        }
        self.mode = Mode::Chunk(Box::new(Chunk {
            size,
            remaining: size,
            last,
            refusal,
        }));
    }

    /// Why a chunk of `size` bytes cannot join the transaction, if it cannot.
    fn chunk_refusal(&mut self, size: u64, last: bool) -> Option<Refusal> {
        if self.envelope.mail_from.is_none() {
            return Some(Refusal::reply(503, "Error: need MAIL command"));
        }
        if self.envelope.rcpt_to.is_empty() {
            return Some(Refusal::reply(503, "Error: need RCPT command"));
        }
        let total = self.chunked.as_ref().map_or(0, |tx| tx.total);
        let after = total.saturating_add(size);
        if self.is_oversized(after) {
            self.record(|| Trace::Oversized(after));
            return Some(Refusal {
                reply: Some((552, self.size_exceeded_text(), Esc::TOO_BIG)),
                abort: true,
                // the last chunk is answered as a message
                replies: if last { self.message_replies() } else { 1 },
            });
        }
        None
    }

    /// Starts the BDAT transaction at its first chunk; `onData` gets its stream now.
    fn open_chunked(&mut self) {
        if self.chunked.is_some() {
            return;
        }
        let body = self.open_body();
        self.chunked = Some(Box::new(Chunked { total: 0, body }));
    }

    /// Ends a BDAT transaction before its last chunk (RSET, EHLO, STARTTLS, a refusal).
    pub(super) fn abort_chunked(&mut self) {
        if let Some(tx) = self.chunked.take() {
            if tx.body.handler {
                self.queue.push_back(Step::BodyAbort);
            }
        }
    }

    /// Reads the current chunk; `None` when the caller should go on at once.
    pub(super) fn step_chunk(&mut self, partial_body: bool) -> Option<Step> {
        let Mode::Chunk(chunk) = &mut self.mode else {
            return Some(Step::Idle);
        };
        let avail = self.input.len() - self.pos;
        let cap = avail.min(4 * BODY_CHUNK);
        let take = usize::try_from(chunk.remaining).map_or(cap, |r| r.min(cap));
        if take > 0 {
            if chunk.refusal.is_none() {
                if let Some(tx) = self.chunked.as_mut() {
                    tx.total += take as u64;
                    if tx.body.deliver {
                        tx.body
                            .pending
                            .extend_from_slice(&self.input[self.pos..self.pos + take]);
                    }
                }
            }
            self.pos += take;
            chunk.remaining -= take as u64;
        }
        if chunk.remaining == 0 {
            let Mode::Chunk(chunk) = std::mem::replace(&mut self.mode, Mode::Command) else {
                return Some(Step::Idle);
            };
            if let Some(refusal) = chunk.refusal {
                if let Some((code, text, esc)) = refusal.reply {
                    for _ in 0..refusal.replies {
                        self.send(code, &text, esc);
                    }
                }
                if refusal.abort {
                    self.count_message(false);
                    self.reset();
                }
                return None;
            }
            if chunk.last {
                return self.end_chunked();
            }
            let text = format!("OK: {} bytes received", chunk.size);
            self.send(250, &text, Esc::Default);
        }
        let more_input = self.pos < self.input.len();
        if let Some(piece) = self
            .chunked
            .as_mut()
            .and_then(|tx| tx.body.piece(more_input, partial_body))
        {
            return Some(piece);
        }
        if matches!(self.mode, Mode::Chunk(_)) && !(more_input && take > 0) {
            return Some(Step::Idle);
        }
        None
    }

    /// The last chunk arrived: the message is complete and waits for its result.
    fn end_chunked(&mut self) -> Option<Step> {
        let tx = self.chunked.take()?;
        self.end_message(tx.total, tx.body)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_bdat;

    #[test]
    fn bdat_arguments() {
        assert_eq!(parse_bdat("BDAT 10"), Some((10, false)));
        assert_eq!(parse_bdat("bdat 0 last"), Some((0, true)));
        assert_eq!(
            parse_bdat("BDAT 18446744073709551615 LAST"),
            Some((u64::MAX, true))
        );
        assert_eq!(parse_bdat("BDAT 18446744073709551616"), None);
        assert_eq!(parse_bdat("BDAT"), None);
        assert_eq!(parse_bdat("BDAT -1"), None);
        assert_eq!(parse_bdat("BDAT 1 LAST x"), None);
        assert_eq!(parse_bdat("BDAT 1 FIRST"), None);
        assert_eq!(parse_bdat("BDAT 1x"), None);
    }
}
