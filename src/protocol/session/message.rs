//! The message: DATA, and what DATA and BDAT share: the body as the application gets
//! it, the size limit, and the replies a message gets (one per recipient under LMTP).

use memchr::memchr3_iter;

use super::{Mode, Session, Step, Trace, Waiting, BODY_CHUNK};
use crate::protocol::data::DataDecoder;
use crate::protocol::reply::Esc;

/// The text of an accepted message under LMTP, and of a recipient accepted in a list
/// of results.
const ACCEPTED: &str = "OK: message accepted";
/// The text of an accepted message under SMTP.
const QUEUED: &str = "OK: message queued";
/// The reply of an LMTP recipient a list of results left out.
const NO_RESULT: &str = "Error: no delivery result for this recipient";

/// What `onData` said about the message, or about one of its recipients.
#[derive(Debug, Clone, PartialEq)]
pub enum DataResult {
    /// Accepted, with the application's text or (`None`) the default one.
    Accepted(Option<String>),
    /// Refused with a code (`None`: 450, smtp-server's default) and a text.
    Refused(Option<u16>, String),
}

/// `onData`'s answer; the engine turns it into the message's replies (one per
/// recipient under LMTP).
#[derive(Debug, Clone, PartialEq)]
pub enum DataAnswer {
    /// One result for the whole message (every recipient's, under LMTP).
    Whole(DataResult),
    /// One result per recipient, in order (the application answered with a list).
    PerRecipient(Vec<DataResult>),
}

/// One reply line of a DATA result.
#[derive(Debug, Clone)]
struct DataReply {
    code: u16,
    text: String,
    esc: Esc,
}

impl DataResult {
    /// The reply line; an acceptance without a text gets `default`.
    fn into_reply(self, default: &str) -> DataReply {
        match self {
            DataResult::Accepted(text) => DataReply {
                code: 250,
                text: text.unwrap_or_else(|| default.into()),
                esc: Esc::DATA_OK,
            },
            DataResult::Refused(code, text) => DataReply {
                code: code.unwrap_or(450),
                text,
                esc: Esc::Default,
            },
        }
    }
}

/// The body of the message in progress as the application receives it (DATA or a
/// BDAT transaction).
#[derive(Debug)]
pub(super) struct Body {
    /// The application has an `onData` handler (it got a stream when the message began).
    pub(super) handler: bool,
    /// Body pieces still go to the application.
    pub(super) deliver: bool,
    /// Bytes not yet handed over.
    pub(super) pending: Vec<u8>,
}

impl Body {
    /// Stops handing pieces over: the rest of the message is received and dropped.
    fn discard(&mut self) {
        self.deliver = false;
        self.pending.clear();
    }

    /// The next piece for the application, when one is due: a full one, or (with
    /// `partial`) whatever there is once the input is used up (`more_input` false).
    pub(super) fn piece(&mut self, more_input: bool, partial: bool) -> Option<Step> {
        let due = self.pending.len() >= BODY_CHUNK
            || (!more_input && partial && !self.pending.is_empty());
        if self.deliver && due {
            return Some(Step::Body(std::mem::take(&mut self.pending)));
        }
        None
    }
}

/// What `rejectBareLineEndings` refuses: a CR or LF outside a CRLF pair (in a command
/// line or a DATA body), or a NUL byte in a DATA body (RFC 5322 and 8BITMIME allow none;
/// smuggling puts one next to the dot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BareLineEnding {
    /// A CR not followed by LF.
    Cr,
    /// An LF not preceded by CR.
    Lf,
    /// A NUL byte.
    Nul,
}

impl BareLineEnding {
    /// The reply text (the `550` code and `5.5.2` status as Postfix's
    /// `smtpd_forbid_bare_newline = reject`).
    pub(super) fn error(self) -> &'static str {
        match self {
            BareLineEnding::Cr => "Error: bare <CR> received",
            BareLineEnding::Lf => "Error: bare <LF> received",
            BareLineEnding::Nul => "Error: NUL character received",
        }
    }
}

/// Looks for the first [`BareLineEnding`] in a DATA body that arrives in pieces.
#[derive(Debug, Default)]
struct BareScan {
    /// The last piece ended in a CR: the next must start with LF.
    after_cr: bool,
    /// The first one found.
    found: Option<BareLineEnding>,
}

impl BareScan {
    /// Scans the next piece of raw (still dot-stuffed) body bytes.
    fn scan(&mut self, bytes: &[u8]) {
        if self.found.is_some() || bytes.is_empty() {
            return;
        }
        if self.after_cr && bytes[0] != b'\n' {
            self.found = Some(BareLineEnding::Cr);
            return;
        }
        for i in memchr3_iter(b'\r', b'\n', 0, bytes) {
            let bare = match bytes[i] {
                b'\r' => bytes
                    .get(i + 1)
                    .is_some_and(|&next| next != b'\n')
                    .then_some(BareLineEnding::Cr),
                b'\n' => {
                    let after_cr = match i.checked_sub(1) {
                        Some(before) => bytes[before] == b'\r',
                        None => self.after_cr,
                    };
                    (!after_cr).then_some(BareLineEnding::Lf)
                }
                _ => Some(BareLineEnding::Nul),
            };
            if bare.is_some() {
                self.found = bare;
                return;
            }
        }
        self.after_cr = bytes.last() == Some(&b'\r');
    }
}

/// Reading a DATA body.
#[derive(Debug)]
pub(super) struct DataState {
    decoder: DataDecoder,
    body: Body,
    /// `rejectBareLineEndings` is on: what the body holds that it must not.
    scan: Option<BareScan>,
}

impl DataState {
    /// Body bytes so far (after un-stuffing).
    pub(super) fn body_len(&self) -> u64 {
        self.decoder.body_len()
    }
}

impl Session {
    /// The next body step; `None` when the message ended without a handler to ask, so the
    /// caller goes on with the commands after it.
    pub(super) fn step_data(&mut self, partial_body: bool) -> Option<Step> {
        let Mode::Data(ds) = &mut self.mode else {
            return Some(Step::Idle);
        };
        // bound the work (and the piece size) of one step
        let avail = &self.input[self.pos..];
        let take = avail.len().min(4 * BODY_CHUNK);
        let body = &mut ds.body;
        // the decoded bytes never outgrow the input plus the two it may hold back:
        // room for all of them up front, so the piece is never copied by a regrowth
        body.pending.reserve(take + 2);
        let (consumed, done) = ds.decoder.decode(&avail[..take], &mut body.pending);
        self.pos += consumed;
        if let Some(scan) = &mut ds.scan {
            if scan.found.is_none() {
                scan.scan(&avail[..consumed]);
                if scan.found.is_some() {
                    // the message will be refused: onData's stream ends in an error now,
                    // and the rest of the body is read and dropped
                    if body.handler {
                        body.handler = false;
                        self.queue.push_back(Step::BodyAbort);
                    }
                    body.discard();
                }
            }
        }
        if !body.deliver {
            body.pending.clear();
        }
        if done {
            let bytes = ds.decoder.body_len();
            let Mode::Data(ds) = std::mem::replace(&mut self.mode, Mode::Command) else {
                return Some(Step::Idle);
            };
            if let Some(bare) = ds.scan.and_then(|scan| scan.found) {
                self.refuse_bare_message(bytes, bare);
                return None;
            }
            return self.end_message(bytes, ds.body);
        }
        let more_input = self.pos < self.input.len();
        if let Some(piece) = body.piece(more_input, partial_body) {
            return Some(piece);
        }
        if more_input && consumed > 0 {
            // the cap above stopped the decoder; go on with the next slice
            return None;
        }
        Some(Step::Idle)
    }

    /// A message begins (DATA, or the first chunk of a BDAT transaction): `onData`, if
    /// the application defined it, gets its stream now.
    pub(super) fn open_body(&mut self) -> Body {
        let handler = self.hooks().data;
        if handler {
            self.queue.push_back(Step::DataStart);
        }
        Body {
            handler,
            deliver: handler,
            pending: Vec::new(),
        }
    }

    /// The message of `bytes` bytes is complete and waits for its result: the rest of
    /// the body goes to `onData`, or smtp-server's default result is applied at once
    /// (`None`: the caller goes on with the commands after it).
    pub(super) fn end_message(&mut self, bytes: u64, body: Body) -> Option<Step> {
        self.body_bytes = bytes;
        self.waiting = Waiting::DataResult;
        if body.handler {
            return Some(Step::BodyEnd(body.pending));
        }
        self.default_data_result();
        None
    }

    /// Refuses a message of `bytes` bytes whose body held a bare line ending (or a NUL)
    /// with `rejectBareLineEndings`, once it was read to its end.
    fn refuse_bare_message(&mut self, bytes: u64, bare: BareLineEnding) {
        self.body_bytes = bytes;
        self.record(|| Trace::Data(bytes));
        for _ in 0..self.message_replies() {
            self.send(550, bare.error(), Esc::BARE_LINE_ENDING);
        }
        self.count_message(false);
        self.end_transaction();
    }

    /// The message is answered: the next transaction starts.
    fn end_transaction(&mut self) {
        self.transactions += 1;
        self.unrecognized = 0;
        self.reset();
    }

    /// The reply smtp-server's default onData gives (no handler defined).
    fn default_data_result(&mut self) {
        self.resolve_data(DataAnswer::Whole(DataResult::Accepted(None)));
    }

    /// The replies of a message answered with `answer`: one per recipient under LMTP
    /// (a list of results cut or filled up to that many), else one.
    fn data_replies(&self, answer: DataAnswer) -> Vec<DataReply> {
        let count = self.message_replies();
        match answer {
            DataAnswer::Whole(result) => {
                let default = if self.cfg.lmtp { ACCEPTED } else { QUEUED };
                vec![result.into_reply(default); count]
            }
            DataAnswer::PerRecipient(results) => {
                let mut replies: Vec<DataReply> = results
                    .into_iter()
                    .take(count)
                    .map(|r| r.into_reply(ACCEPTED))
                    .collect();
                if self.cfg.lmtp {
                    replies.resize(
                        count,
                        DataResult::Refused(Some(451), NO_RESULT.into()).into_reply(ACCEPTED),
                    );
                } else if replies.is_empty() {
                    replies.push(DataResult::Accepted(None).into_reply(QUEUED));
                }
                replies
            }
        }
    }

    /// How many replies a message gets: one per recipient under LMTP, else one.
    pub(super) fn message_replies(&self) -> usize {
        if self.cfg.lmtp {
            self.envelope.rcpt_to.len()
        } else {
            1
        }
    }

    /// True when a message of `bytes` bytes is refused for its size (the `size` option
    /// with `rejectOversized`).
    pub(super) fn is_oversized(&self, bytes: u64) -> bool {
        self.cfg.reject_oversized && self.cfg.size > 0.0 && bytes as f64 > self.cfg.size
    }

    /// The text of the `552` size refusals (MAIL FROM SIZE=, and the message itself).
    pub(super) fn size_exceeded_text(&self) -> String {
        format!(
            "Error: message exceeds fixed maximum message size {}",
            self.cfg.size_text.as_deref().unwrap_or("0")
        )
    }

    /// `DATA`: the body follows the `354` reply, up to a line with a single dot.
    pub(super) fn cmd_data(&mut self) {
        if self.cfg.strict_pipelining && self.pos < self.input.len() {
            // the client sent more without waiting for the 354 (RFC 2920 makes DATA
            // the last command of a group): refused and closed, as Postfix's
            // smtpd_forbid_unauth_pipelining does, before any byte is read as a message
            self.pos = self.input.len();
            self.send(
                554,
                "Error: SMTP protocol synchronization",
                Esc::SYNCHRONIZATION,
            );
            self.close();
            return;
        }
        if self.envelope.rcpt_to.is_empty() {
            self.send(503, "Error: need RCPT command", Esc::Default);
            return;
        }
        if self.refuse_data_in_chunking() {
            return;
        }
        let body = self.open_body();
        self.mode = Mode::Data(Box::new(DataState {
            decoder: DataDecoder::new(),
            body,
            scan: self.cfg.reject_bare_line_endings.then(BareScan::default),
        }));
        self.send(354, "End data with <CR><LF>.<CR><LF>", Esc::Default);
    }

    /// Stops handing body pieces to the application: the rest of the message is
    /// received and dropped (the application answered before reading it all).
    pub fn discard_body(&mut self) {
        if let Mode::Data(ds) = &mut self.mode {
            ds.body.discard();
        }
        if let Some(tx) = &mut self.chunked {
            tx.body.discard();
        }
    }

    /// Answers the message once the body is complete: writes the replies (or the
    /// oversize refusal), then starts the next transaction.
    pub fn resolve_data(&mut self, answer: DataAnswer) {
        if self.waiting != Waiting::DataResult {
            return;
        }
        self.waiting = Waiting::Nothing;
        let bytes = self.body_bytes;
        self.record(|| Trace::Data(bytes));
        if self.is_oversized(bytes) {
            self.record(|| Trace::Oversized(bytes));
            let count = self.message_replies();
            let text = self.size_exceeded_text();
            for _ in 0..count {
                self.send(552, &text, Esc::TOO_BIG);
            }
            self.count_message(false);
        } else {
            let replies = self.data_replies(answer);
            self.count_message(replies.iter().any(|r| (200..300).contains(&r.code)));
            for reply in replies {
                self.send(reply.code, &reply.text, reply.esc);
            }
        }
        self.end_transaction();
    }

    /// Counts a message as accepted or refused (`server.stats()`).
    pub(super) fn count_message(&mut self, accepted: bool) {
        if accepted {
            self.outcomes.0 = self.outcomes.0.saturating_add(1);
        } else {
            self.outcomes.1 = self.outcomes.1.saturating_add(1);
        }
    }

    /// Messages accepted and refused since the last call.
    pub fn take_message_outcomes(&mut self) -> (u32, u32) {
        std::mem::take(&mut self.outcomes)
    }
}
