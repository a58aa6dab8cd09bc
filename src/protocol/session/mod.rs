//! The SMTP/LMTP session state machine, sans I/O: bytes go in with [`Session::input`],
//! [`Session::step`] says what has to happen next, replies collect in [`Session::output`].
//!
//! Every decision smtp-server makes without application code is made here: command
//! dispatch and its checks, MAIL/RCPT validation, limits, reply texts and enhanced status
//! codes, DATA framing. Where smtp-server would call an application handler the session
//! stops with [`Step::Hook`] until the matching `resolve_*` method is called.
//!
//! This file holds the state machine core: the [`Session`] and its [`Step`]s, replies,
//! the main loop, the checks every command line passes and the one dispatch `match` on
//! its [`Command`]. Each command family is an `impl Session` of its own:
//!
//! - `hello`: the greeting, EHLO, HELO and LHLO;
//! - `envelope`: MAIL FROM and RCPT TO, their parameters, de-duplication and limits;
//! - `message`: DATA, and the body, size limit and reply count DATA and BDAT share;
//! - `chunking`: BDAT framing (CHUNKING, BINARYMIME);
//! - `auth`: AUTH and the `onAuth` answers;
//! - `xclient`: XCLIENT and XFORWARD;
//! - `tls`: STARTTLS;
//! - `sync`: read-only views for the application's copy of the session, the counts of
//!   changes the state alone does not show, and the recipients that copy lacks.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use memchr::memchr;

use super::config::{Config, HookSet, LiveConfig};
use super::js_string::{command_name, is_http_request, js_split_ws};
use super::reply::{write_reply, Esc};
use super::xclient::XValue;

mod auth;
mod chunking;
mod command;
mod envelope;
mod hello;
mod message;
mod sync;
#[cfg(test)]
mod tests;
mod tls;
mod xclient;

use auth::AuthStep;
pub use auth::{AuthOutcome, AuthRequest};
use chunking::{Chunk, Chunked};
pub use command::Command;
pub use envelope::{Address, Envelope, RcptDsn, Recipient};
use message::{BareLineEnding, DataState};
pub use message::{DataAnswer, DataResult};
pub use sync::{Counts, EnvelopeFlags, SessionSync, View};
pub use tls::TlsInfo;

/// Body bytes collected before a piece is handed to the application.
pub const BODY_CHUNK: usize = 128 * 1024;
/// Output collected before the session asks to flush it.
const OUTPUT_HIGH_WATER: usize = 64 * 1024;

/// The payload of the `connect` event.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectInfo {
    /// Local address.
    pub local_address: String,
    /// Local port.
    pub local_port: u16,
    /// Client address (after XCLIENT/XFORWARD).
    pub remote_address: String,
    /// Client port.
    pub remote_port: XValue,
    /// HELO name.
    pub host_name_appears_as: Option<String>,
    /// Client host name.
    pub client_hostname: String,
    /// The application is asked to acknowledge the event (the greeting waits).
    pub wait: bool,
}

/// Connection-level identity of the client and server ends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Peer {
    /// Normalized local address (shared by the session's copies).
    pub local_address: Arc<str>,
    /// Local port.
    pub local_port: u16,
    /// Normalized remote address (shared by the session's copies).
    pub remote_address: Arc<str>,
    /// Remote port.
    pub remote_port: u16,
}

/// A question for the application.
#[derive(Debug, Clone, PartialEq)]
pub enum HookCall {
    /// `onMailFrom(address, session, cb)`.
    MailFrom(Address),
    /// `onRcptTo(address, session, cb)`.
    RcptTo {
        /// The recipient.
        address: Address,
        /// Its place in `envelope.rcptTo` once accepted: that of an earlier recipient
        /// with the same address (compared case-insensitively), or the end.
        slot: usize,
    },
    /// `onSecure(socket, session, cb)` after STARTTLS.
    Secure,
    /// `onAuth(auth, session, cb)`.
    Auth(AuthRequest),
}

/// Which question an answer answers: the connection checks it against the question
/// it waits for, and an answer to any other question is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Question {
    /// `onConnect`.
    Connect,
    /// The `connect` event's listeners, which the greeting waits for.
    ConnectEvent,
    /// `onSecure`.
    Secure,
    /// `onMailFrom`.
    MailFrom,
    /// `onRcptTo`.
    RcptTo,
    /// `onAuth`.
    Auth,
}

impl HookCall {
    /// The question this call asks.
    pub fn question(&self) -> Question {
        match self {
            HookCall::MailFrom(_) => Question::MailFrom,
            HookCall::RcptTo { .. } => Question::RcptTo,
            HookCall::Secure => Question::Secure,
            HookCall::Auth(_) => Question::Auth,
        }
    }
}

/// The outcome of an application handler.
#[derive(Debug, Clone, PartialEq)]
pub enum HookOutcome {
    /// `cb()`.
    Accept,
    /// `cb(err)`: reply code (if the error had one) and message.
    Reject(Option<u16>, String),
}

/// What the session needs next.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Waiting for input or for an answer.
    Idle,
    /// The output buffer is large: write it out before stepping again.
    Flush,
    /// An application handler has to decide; answer with [`Session::resolve_hook`].
    /// (Boxed: the other steps are small, and steps wait in a queue.)
    Hook(Box<HookCall>),
    /// DATA began: the application's `onData` gets its stream now.
    DataStart,
    /// A piece of the message body.
    Body(Vec<u8>),
    /// The rest of the body; the message is complete. Answer with [`Session::resolve_data`].
    BodyEnd(Vec<u8>),
    /// A BDAT transaction was reset before its last chunk: the stream `onData` got
    /// ends in an error, and its result no longer counts.
    BodyAbort,
    /// The delayed `connect` event is due.
    EmitConnect,
    /// `220 Ready to start TLS` is in the output: write it, then run the TLS handshake
    /// and report it with [`Session::tls_established`].
    StartTls,
    /// Close the connection once the output is written.
    Close,
}

#[derive(Debug)]
enum Mode {
    Command,
    Data(Box<DataState>),
    /// Reading the bytes of one BDAT chunk.
    Chunk(Box<Chunk>),
}

#[derive(Debug, Clone, PartialEq)]
enum Waiting {
    Nothing,
    Hook(Box<HookCall>),
    DataResult,
    Tls,
}

/// What the application's logger hears about a session (recorded only when a logger is
/// set, see [`Config::trace`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Trace {
    /// A line from the client, with credentials replaced by `/* secured */`.
    Command {
        /// Upper-cased command name (`AUTH` for a continuation line).
        name: String,
        /// The line as logged.
        line: String,
    },
    /// A reply as written, without its last line break.
    Reply(String),
    /// A message body of this many bytes ended.
    Data(u64),
    /// A message over the size limit was refused after its body.
    Oversized(u64),
    /// The client tried SHELL.
    Shell,
    /// The client tried KILL.
    Kill,
    /// XCLIENT or XFORWARD set a field.
    Proxied {
        /// XFORWARD rather than XCLIENT.
        forward: bool,
        /// `ADDR`, `NAME`, `PORT` or `HELO`.
        key: &'static str,
        /// The value the session took.
        value: XValue,
        /// The connection's address before the change.
        through: String,
    },
    /// XCLIENT LOGIN with an empty value logged the user out.
    Deauth,
    /// `session.user` became `false` (STARTTLS, XCLIENT ADDR or LOGIN=).
    UserCleared,
    /// The session started without an `onConnect` handler (client host name).
    Connected(String),
    /// A reverse lookup gave a name that is not a valid host name.
    InvalidHostname(String),
    /// STARTTLS finished with this cipher.
    StartTls(String),
}

/// One SMTP/LMTP session.
#[derive(Debug)]
pub struct Session {
    cfg: Arc<Config>,
    input: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
    queue: VecDeque<Step>,
    mode: Mode,
    waiting: Waiting,
    ready: bool,
    closing: bool,
    server_closing: bool,
    body_bytes: u64,
    /// The BDAT transaction in progress, between its first and its last chunk.
    chunked: Option<Box<Chunked>>,
    /// Messages accepted and refused since the counts were last taken.
    outcomes: (u32, u32),

    peer: Peer,
    secure: bool,
    client_hostname: Arc<str>,
    opening_command: Option<&'static str>,
    hello_name: Option<Arc<str>>,
    user: bool,
    transactions: u32,
    unrecognized: u32,
    unauthenticated: u32,
    can_emit_connect: bool,
    disabled_override: Option<Vec<String>>,

    envelope: Envelope,
    view: View,
    /// Resets so far (smtp-server's `_resetSession` makes a new envelope object each time).
    generation: u32,
    error: Option<String>,
    tls: Option<Box<TlsInfo>>,
    auth_step: Option<AuthStep>,
    original_remote: Arc<str>,
    remote_port: XValue,
    xclient: Vec<(String, XValue)>,
    xforward: Vec<(String, XValue)>,
    /// How often the session changed in ways its state alone does not show.
    counts: Counts,
    hook_mask: Option<Arc<AtomicU32>>,
    /// The server's options and the version this session has.
    live: Option<(Arc<LiveConfig>, u32)>,
    trace: Vec<Trace>,
}

impl Session {
    /// A new session for a connection between `peer`'s ends.
    pub fn new(cfg: Arc<Config>, peer: Peer) -> Session {
        let secure = cfg.secure;
        let remote = peer.remote_address.clone();
        let remote_port = XValue::Num(f64::from(peer.remote_port));
        let view = View {
            peer: peer.clone(),
            client_hostname: "".into(),
            opening_command: None,
            host_name_appears_as: None,
            transmission_type: "",
            transaction: 1,
            remote_port: XValue::Num(f64::from(peer.remote_port)),
        };
        Session {
            cfg,
            input: Vec::new(),
            pos: 0,
            out: Vec::new(),
            queue: VecDeque::new(),
            mode: Mode::Command,
            waiting: Waiting::Nothing,
            ready: false,
            closing: false,
            server_closing: false,
            body_bytes: 0,
            chunked: None,
            outcomes: (0, 0),
            peer,
            secure,
            client_hostname: "".into(),
            opening_command: None,
            hello_name: None,
            user: false,
            transactions: 0,
            unrecognized: 0,
            unauthenticated: 0,
            can_emit_connect: true,
            disabled_override: None,
            envelope: Envelope::default(),
            view,
            generation: 0,
            error: None,
            tls: None,
            auth_step: None,
            original_remote: remote,
            remote_port,
            xclient: Vec::new(),
            xforward: Vec::new(),
            counts: Counts::default(),
            hook_mask: None,
            live: None,
            trace: Vec::new(),
        }
    }

    /// Follows a shared handler mask, so that handlers the application assigns while the
    /// connection is open apply to its next command.
    pub fn follow_hooks(&mut self, mask: Arc<AtomicU32>) {
        self.hook_mask = Some(mask);
    }

    /// Follows the server's options, so that options the application changes while the
    /// connection is open apply from its next command.
    pub fn follow_config(&mut self, live: Arc<LiveConfig>) {
        let version = live.version();
        self.cfg = live.get();
        self.live = Some((live, version));
    }

    /// Takes the server's options again when they changed.
    fn refresh_config(&mut self) {
        if let Some((live, seen)) = &mut self.live {
            let version = live.version();
            if version != *seen {
                *seen = version;
                self.cfg = live.get();
            }
        }
    }

    /// The application handlers defined right now.
    pub fn hooks(&self) -> HookSet {
        match &self.hook_mask {
            Some(mask) => HookSet::from_mask(mask.load(Ordering::Relaxed)),
            None => self.cfg.hooks,
        }
    }

    /// The options of this session.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The buffer that received bytes are appended to.
    pub fn input(&mut self) -> &mut Vec<u8> {
        self.compact();
        &mut self.input
    }

    /// True when more than `limit` unprocessed bytes are buffered.
    pub fn has_input_over(&self, limit: usize) -> bool {
        self.input.len() - self.pos > limit
    }

    /// Replies waiting to be written.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// True once the session decided to close.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// True while the session waits for the application.
    pub fn is_waiting(&self) -> bool {
        self.waiting != Waiting::Nothing
    }

    /// The place in `envelope.rcptTo` of the recipient the pending `onRcptTo` question
    /// asks about: that of an earlier one with the same address, or the end.
    pub fn pending_rcpt_slot(&self) -> Option<usize> {
        match &self.waiting {
            Waiting::Hook(call) => match **call {
                HookCall::RcptTo { slot, .. } => Some(slot),
                _ => None,
            },
            _ => None,
        }
    }

    /// True while body bytes are being read (after DATA, or inside a BDAT chunk).
    pub fn in_data(&self) -> bool {
        matches!(self.mode, Mode::Data(_) | Mode::Chunk(_))
    }

    /// True while a message stream is open: during DATA, or from the first BDAT chunk
    /// of a transaction to its last (also between chunks).
    pub fn in_message(&self) -> bool {
        matches!(self.mode, Mode::Data(_)) || self.chunked.is_some()
    }

    /// True when the transaction has a sender (errors are then reported, not ignored).
    pub fn in_transaction(&self) -> bool {
        self.envelope.mail_from.is_some()
    }

    /// Bytes of the current (or last) message body.
    pub fn body_bytes(&self) -> u64 {
        match &self.mode {
            Mode::Data(ds) => ds.body_len(),
            Mode::Command | Mode::Chunk(_) => match &self.chunked {
                Some(tx) => tx.total,
                None => self.body_bytes,
            },
        }
    }

    /// Client address and port as the session currently sees them.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// What the `connect` event reports now.
    pub fn connect_info(&self) -> ConnectInfo {
        ConnectInfo {
            local_address: self.peer.local_address.to_string(),
            local_port: self.peer.local_port,
            remote_address: self.peer.remote_address.to_string(),
            remote_port: self.remote_port.clone(),
            host_name_appears_as: self.hello_name.as_deref().map(str::to_string),
            client_hostname: self.client_hostname.to_string(),
            wait: false,
        }
    }

    fn compact(&mut self) {
        if self.pos == 0 {
            return;
        }
        if self.pos >= self.input.len() {
            self.input.clear();
            self.pos = 0;
        } else if self.pos > self.input.len() / 2 || self.pos > 64 * 1024 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// Releases buffer memory while the connection is idle.
    pub fn shrink(&mut self) {
        self.compact();
        if self.input.is_empty() && self.input.capacity() > 0 {
            self.input = Vec::new();
        }
        if self.out.is_empty() && self.out.capacity() > 0 {
            // an idle connection holds no reply buffer
            self.out = Vec::new();
        }
    }

    // ----- replies -----

    fn esc_on(&self) -> bool {
        !self.cfg.hide_esc
    }

    fn send(&mut self, code: u16, text: &str, esc: Esc) {
        // one allocation for a typical reply (the buffer is released while idle)
        self.out.reserve(128);
        let on = self.esc_on();
        let range = write_reply(&mut self.out, code, text, esc, on);
        if self.cfg.trace {
            let line = String::from_utf8_lossy(&self.out[range.clone()]).into_owned();
            self.trace.push(Trace::Reply(line));
        }
        if code >= 400 {
            self.error = Some(String::from_utf8_lossy(&self.out[range]).into_owned());
            self.counts.errors = self.counts.errors.wrapping_add(1);
        }
        if code == 421 {
            self.close();
        }
    }

    /// Records `entry` for the logger when one is set.
    fn record(&mut self, entry: impl FnOnce() -> Trace) {
        if self.cfg.trace {
            self.trace.push(entry());
        }
    }

    /// Notes for the logger that the session starts (no `onConnect` handler to ask).
    pub fn record_connected(&mut self) {
        let name = self.client_hostname.to_string();
        self.record(|| Trace::Connected(name));
    }

    /// Notes for the logger that a reverse lookup answer was discarded.
    pub fn record_invalid_hostname(&mut self, name: &str) {
        self.record(|| Trace::InvalidHostname(name.to_string()));
    }

    /// The logger entries recorded since the last call.
    pub fn take_trace(&mut self) -> Vec<Trace> {
        std::mem::take(&mut self.trace)
    }

    /// Writes a reply on behalf of the application (`connection.send(code, text)`).
    pub fn send_external(&mut self, code: u16, text: &str) {
        if self.closing {
            return;
        }
        self.send(code, text, Esc::Default);
    }

    /// Writes bytes as they are on behalf of the application (`connection._socket.write`).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        if !self.closing {
            self.out.extend_from_slice(bytes);
        }
    }

    /// Marks the session as closing: nothing more is parsed.
    pub fn close(&mut self) {
        if !self.closing {
            self.closing = true;
            self.queue.push_back(Step::Close);
        }
    }

    // ----- session start -----

    /// Sets the client's host name (a validated PTR name or empty for `[ip]`).
    pub fn set_client_hostname(&mut self, hostname: &str) {
        let lower = hostname.to_lowercase();
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        self.client_hostname = if name.is_empty() {
            format!("[{}]", self.peer.remote_address).into()
        } else {
            name.into()
        };
    }

    /// The maxClients refusal.
    pub fn refuse_too_many(&mut self) {
        let text = format!(
            "{} Too many connected clients, try again in a moment",
            self.cfg.name
        );
        self.send(421, &text, Esc::Never);
    }

    /// Refuses the session with an application error (onConnect), then closes.
    pub fn refuse(&mut self, code: Option<u16>, message: &str) {
        self.send(code.unwrap_or(554), message, Esc::Never);
        self.close();
    }

    /// True when the `connect` event is sent at the greeting (not delayed).
    pub fn take_connect_at_greeting(&mut self) -> bool {
        if self.cfg.delay_connect || !self.can_emit_connect {
            return false;
        }
        self.can_emit_connect = false;
        true
    }

    /// `close()` was called on the server: every further command gets 421.
    pub fn set_server_closing(&mut self) {
        self.server_closing = true;
    }

    /// The idle timeout fired: true when the session timed out (the 421 is written),
    /// false when the wait belongs to the application and the timer should be re-armed.
    pub fn on_timeout(&mut self) -> bool {
        if self.is_waiting() {
            return false;
        }
        self.send(421, "Timeout - closing connection", Esc::Default);
        true
    }

    /// The server's close grace period ended.
    pub fn shutdown(&mut self) {
        if !self.closing {
            self.send(421, "Server shutting down", Esc::Default);
        }
        self.close();
    }

    /// Replaces the disabled-command list for this session (`session.disabledCommands`).
    pub fn set_disabled_override(&mut self, list: Option<Vec<String>>) {
        self.disabled_override = list;
    }

    // ----- session reset and sync -----

    /// `SMTP`, `ESMTPSA`, ...: the opening command, the protocol, TLS and AUTH
    /// (`authenticated`, as the session is or as it will be once AUTH succeeds).
    fn transmission_type(&self, authenticated: bool) -> &'static str {
        const NAMES: [&str; 16] = [
            "SMTP", "SMTPA", "SMTPS", "SMTPSA", "LMTP", "LMTPA", "LMTPS", "LMTPSA", "ESMTP",
            "ESMTPA", "ESMTPS", "ESMTPSA", "ELMTP", "ELMTPA", "ELMTPS", "ELMTPSA",
        ];
        let index = usize::from(self.opening_command == Some("EHLO")) << 3
            | usize::from(self.cfg.lmtp) << 2
            | usize::from(self.secure) << 1
            | usize::from(authenticated);
        NAMES[index]
    }

    /// Resets the session (smtp-server's `_resetSession`): refreshes the visible fields
    /// and starts a new envelope.
    pub fn reset(&mut self) {
        let view = View {
            peer: self.peer.clone(),
            client_hostname: self.client_hostname.clone(),
            opening_command: self.opening_command,
            host_name_appears_as: self.hello_name.clone(),
            transmission_type: self.transmission_type(self.user),
            transaction: self.transactions + 1,
            remote_port: self.remote_port.clone(),
        };
        if !view.same_but_transaction(&self.view) {
            self.counts.views = self.counts.views.wrapping_add(1);
        }
        self.view = view;
        self.envelope = Envelope::default();
        self.abort_chunked();
        self.generation = self.generation.wrapping_add(1);
    }

    // ----- the main loop -----

    /// Processes buffered input until something needs the outside world.
    /// `partial_body` allows handing out a body piece smaller than [`BODY_CHUNK`].
    pub fn step(&mut self, partial_body: bool) -> Step {
        loop {
            if let Some(step) = self.queue.pop_front() {
                return step;
            }
            if self.closing || self.waiting != Waiting::Nothing {
                return Step::Idle;
            }
            if self.out.len() >= OUTPUT_HIGH_WATER {
                return Step::Flush;
            }
            match self.mode {
                Mode::Data(_) => {
                    if let Some(step) = self.step_data(partial_body) {
                        return step;
                    }
                }
                Mode::Chunk(_) => {
                    if let Some(step) = self.step_chunk(partial_body) {
                        return step;
                    }
                }
                Mode::Command => {
                    if !self.next_command() {
                        return Step::Idle;
                    }
                }
            }
        }
    }

    /// The logger's view of a command line: AUTH credentials and continuation lines
    /// are hidden.
    fn redacted(&self, name: &str, line: &str) -> Trace {
        const SECURED: &str = "/* secured */";
        if self.auth_step.is_some() {
            return Trace::Command {
                name: "AUTH".into(),
                line: SECURED.into(),
            };
        }
        let mut line = line.to_string();
        if name == "AUTH" {
            let parts = js_split_ws(&line);
            if parts.len() > 2 {
                line = format!("{} {} {SECURED}", parts[0], parts[1]);
            }
        }
        Trace::Command {
            name: name.to_string(),
            line,
        }
    }

    /// Handles the next complete command line; false when none is buffered.
    fn next_command(&mut self) -> bool {
        self.refresh_config();
        let rest = &self.input[self.pos..];
        let Some(nl) = memchr(b'\n', rest) else {
            if rest.len() > self.cfg.max_command_length {
                self.pos = self.input.len();
                self.send(421, "Error: Command line too long", Esc::Default);
            }
            return false;
        };
        let mut end = nl;
        if end > 0 && rest[end - 1] == b'\r' {
            end -= 1;
        }
        if end > self.cfg.max_command_length {
            self.pos = self.input.len();
            self.send(421, "Error: Command line too long", Esc::Default);
            return true;
        }
        if self.cfg.reject_bare_line_endings {
            let bare = if end == nl {
                Some(BareLineEnding::Lf)
            } else {
                memchr(b'\r', &rest[..end]).map(|_| BareLineEnding::Cr)
            };
            if let Some(bare) = bare {
                // what the line meant, and where the next one starts, is unclear: the
                // session ends here (as Postfix's smtpd_forbid_bare_newline = reject)
                self.pos = self.input.len();
                self.send(550, bare.error(), Esc::BARE_LINE_ENDING);
                self.close();
                return true;
            }
        }
        let line = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += nl + 1;
        self.on_command(&line);
        true
    }

    // ----- dispatch -----

    /// True when `command` is listed in `disabledCommands` (or the session's override).
    fn is_disabled(&self, command: Command) -> bool {
        let name = command.name();
        match &self.disabled_override {
            Some(list) => list.iter().any(|c| c == name),
            None => self.cfg.disabled_commands.iter().any(|c| c == name),
        }
    }

    /// True when `command` gets its handler: not disabled, LHLO only under LMTP (where
    /// it stands for EHLO, also in `disabledCommands`), BDAT only with CHUNKING.
    pub(super) fn is_supported(&self, command: Command) -> bool {
        match command {
            Command::Lhlo => self.cfg.lmtp && !self.is_disabled(Command::Ehlo),
            Command::Bdat => self.cfg.chunking && !self.is_disabled(command),
            _ => !self.is_disabled(command),
        }
    }

    fn has_hello(&self) -> bool {
        self.hello_name.as_deref().is_some_and(|h| !h.is_empty())
    }

    fn auth_required(&self) -> bool {
        !self.user && self.is_supported(Command::Auth) && !self.cfg.auth_optional
    }

    /// Handles one command line: the checks smtp-server makes before a handler, then
    /// the handler.
    fn on_command(&mut self, line: &str) {
        let name = command_name(line);
        let command = Command::parse(&name);
        if self.cfg.trace {
            let entry = self.redacted(&name, line);
            self.trace.push(entry);
        }
        let Some(command) = self.admit_line(command, line) else {
            return;
        };
        match command {
            Command::Ehlo | Command::Lhlo => self.cmd_ehlo(line),
            Command::Helo => self.cmd_helo(line),
            Command::Quit => {
                self.send(221, "Bye", Esc::Default);
                self.close();
            }
            Command::Noop => self.send(250, "OK", Esc::Default),
            Command::Rset => {
                self.reset();
                self.send(250, "Flushed", Esc::Default);
            }
            Command::Help => self.send(
                214,
                "See https://tools.ietf.org/html/rfc5321 for details",
                Esc::Default,
            ),
            Command::Vrfy => {
                if js_split_ws(line).get(1).is_none() {
                    self.send(501, "Error: Syntax: VRFY address", Esc::Default);
                } else {
                    self.send(
                        252,
                        "Try to send something. No promises though",
                        Esc::Default,
                    );
                }
            }
            Command::StartTls => self.cmd_starttls(line),
            Command::Auth => self.cmd_auth(line),
            Command::Mail => self.cmd_mail(line),
            Command::Rcpt => self.cmd_rcpt(line),
            Command::Data => self.cmd_data(),
            Command::Bdat => self.cmd_bdat(line),
            Command::Wiz => {
                if js_split_ws(line).get(1).is_some_and(|p| !p.is_empty()) {
                    self.counts.wizard = self.counts.wizard.wrapping_add(1);
                    self.send(200, "Please pass, oh mighty wizard", Esc::Default);
                } else {
                    self.send(500, "You are no wizard!", Esc::Default);
                }
            }
            Command::Shell => {
                self.record(|| Trace::Shell);
                if self.counts.wizard != 0 {
                    self.send(
                        500,
                        "Error: Invoking shell is not allowed. This incident will be reported.",
                        Esc::Default,
                    );
                } else {
                    self.send(
                        500,
                        "Mere mortals must not mutter that mantra",
                        Esc::Default,
                    );
                }
            }
            Command::Kill => {
                self.record(|| Trace::Kill);
                self.send(500, "Can not kill Mom", Esc::Default);
            }
            Command::XClient => self.cmd_xclient(line),
            Command::XForward => self.cmd_xforward(line),
        }
    }

    /// The checks before a command's handler: the command to run, or `None` when the
    /// line was answered (or was an AUTH continuation, handled here).
    fn admit_line(&mut self, command: Option<Command>, line: &str) -> Option<Command> {
        if command == Some(Command::Bdat)
            && self.cfg.chunking
            && self.ready
            && self.auth_step.is_none()
            && (self.chunked.is_some() || !self.server_closing)
        {
            // BDAT makes the other checks itself: its chunk is read past whatever the
            // answer, and a message in progress still finishes when the server is
            // closing, as after DATA
            return Some(Command::Bdat);
        }
        let esc = Command::refusal_esc(command);
        if self.server_closing {
            self.send(421, "Server shutting down", esc);
            return None;
        }
        if !self.ready {
            let text = format!("{} You talk too soon", self.cfg.name);
            self.send(421, &text, esc);
            return None;
        }
        if is_http_request(line) {
            self.send(421, "HTTP requests not allowed", esc);
            return None;
        }
        if let Some(step) = self.auth_step.take() {
            self.auth_continuation(step, line, command);
            return None;
        }
        let Some(command) = command else {
            self.refuse_unrecognized(None);
            return None;
        };
        if matches!(command, Command::Helo | Command::Ehlo | Command::Lhlo) {
            self.opening_command = Some(command.name());
            if self.cfg.lmtp && command != Command::Lhlo {
                let text = format!("Error: {} not allowed in LMTP server", command.name());
                self.send(500, &text, Esc::Never);
                return None;
            }
        }
        if !self.is_supported(command) {
            self.refuse_unrecognized(Some(command));
            return None;
        }
        if !self.admit(Some(command)) {
            return None;
        }
        Some(command)
    }

    /// Answers a command that is unknown (`None`) or disabled; the tenth in a row closes.
    pub(super) fn refuse_unrecognized(&mut self, command: Option<Command>) {
        self.unrecognized += 1;
        let esc = Command::refusal_esc(command);
        if self.unrecognized >= 10 {
            self.send(421, "Error: too many unrecognized commands", esc);
        } else {
            self.send(500, "Error: command not recognized", esc);
        }
    }

    /// The checks every command line passes before its handler (and an AUTH
    /// continuation line too, as in smtp-server, with the command its first word names,
    /// if any): the unauthenticated-command limit, HELO first, AUTH first. False when
    /// the line was answered here.
    pub(super) fn admit(&mut self, command: Option<Command>) -> bool {
        if self.auth_required() && command != Some(Command::Auth) {
            self.unauthenticated += 1;
            if self.unauthenticated >= self.cfg.max_unauthenticated {
                self.send(
                    421,
                    "Error: too many unauthenticated commands",
                    Command::refusal_esc(command),
                );
                return false;
            }
        }
        let transaction = command.is_some_and(Command::is_transaction);
        if !self.has_hello() && (transaction || command == Some(Command::Auth)) {
            let text = if self.cfg.lmtp {
                "Error: send LHLO first"
            } else {
                "Error: send HELO/EHLO first"
            };
            self.send(503, text, Esc::Default);
            return false;
        }
        if self.auth_required() && transaction {
            let text = self
                .cfg
                .auth_required_message
                .clone()
                .unwrap_or_else(|| "Error: authentication Required".into());
            self.send(530, &text, Esc::Default);
            return false;
        }
        true
    }

    // ----- asking the application -----

    /// Stops the session until the application answers `call` (a [`Step::Hook`], answered
    /// with [`Session::resolve_hook`] or, for AUTH, [`Session::resolve_auth`]).
    pub(super) fn ask(&mut self, call: HookCall) {
        self.waiting = Waiting::Hook(Box::new(call.clone()));
        self.queue.push_back(Step::Hook(Box::new(call)));
    }

    /// Answers the pending [`Step::Hook`] with the outcome of the application's handler;
    /// an answer to any other `question` than the one pending is ignored. (`onSecure`'s
    /// answer goes to [`Session::resolve_secure`].) True when it answered the pending
    /// question.
    pub fn resolve_hook(&mut self, question: Question, outcome: HookOutcome) -> bool {
        if question == Question::Secure {
            return self.resolve_secure(outcome);
        }
        let call = match std::mem::replace(&mut self.waiting, Waiting::Nothing) {
            Waiting::Hook(call) if call.question() == question => call,
            waiting => {
                self.waiting = waiting;
                return false;
            }
        };
        match (*call, outcome) {
            // answered by resolve_secure, above
            (HookCall::Secure, _) => {}
            (HookCall::Auth(request), HookOutcome::Accept) => {
                self.finish_auth(&request, AuthOutcome::Success)
            }
            (HookCall::Auth(request), HookOutcome::Reject(code, message)) => {
                self.finish_auth(&request, AuthOutcome::Error(code, message))
            }
            (_, HookOutcome::Reject(code, message)) => {
                self.send(code.unwrap_or(550), &message, Esc::Default);
            }
            (HookCall::MailFrom(addr), HookOutcome::Accept) => self.accept_mail(addr),
            (HookCall::RcptTo { address, slot }, HookOutcome::Accept) => {
                self.accept_rcpt(address, slot)
            }
        }
        true
    }

    /// `session.user` becomes `false` (STARTTLS, XCLIENT ADDR or LOGIN=).
    fn clear_user(&mut self) {
        self.user = false;
        self.counts.user_clears = self.counts.user_clears.wrapping_add(1);
        self.record(|| Trace::UserCleared);
    }
}
