//! The SMTP/LMTP session state machine, sans I/O: bytes go in with [`Session::input`],
//! [`Session::step`] says what has to happen next, replies collect in [`Session::output`].
//!
//! Every decision smtp-server makes without application code is made here: command
//! dispatch and its checks, MAIL/RCPT validation, limits, reply texts and enhanced status
//! codes, DATA framing. Where smtp-server would call an application handler the session
//! stops with [`Step::Hook`] until the matching `resolve_*` method is called.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use memchr::memchr;

use super::address::{parse_address_command, AddressCommand, ParamValue, ParsedAddress};
use super::config::{Config, HookSet, LiveConfig};
mod chunking;

use super::data::DataDecoder;
use super::reply::{write_multiline, write_reply, Esc};
use super::sasl;
use super::text::{command_name, is_http_request, js_split_ws, trim_js, utf16_len};
use super::xclient::{js_number, parse_params, XValue};
use chunking::{Chunk, Chunked};

/// Body bytes collected before a piece is handed to the application.
pub const BODY_CHUNK: usize = 128 * 1024;
/// Output collected before the session asks to flush it.
const OUTPUT_HIGH_WATER: usize = 64 * 1024;
/// Longest HELO/EHLO argument accepted (UTF-16 code units, as JavaScript counts).
const MAX_HELO_HOSTNAME_LENGTH: usize = 300;

/// DSN details of a recipient (`address.dsn`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RcptDsn {
    /// Upper-cased NOTIFY values.
    pub notify: Option<Vec<String>>,
    /// ORCPT value.
    pub orcpt: Option<String>,
}

/// An address as the application sees it: `{address, args, dsn?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Address {
    /// The parsed address and parameters.
    pub parsed: ParsedAddress,
    /// DSN details (RCPT with DSN enabled only).
    pub dsn: Option<RcptDsn>,
}

impl Address {
    fn arg(&self, key: &str) -> Option<&ParamValue> {
        self.parsed
            .args
            .as_ref()
            .and_then(|args| args.iter().find(|(k, _)| k == key).map(|(_, v)| v))
    }

    fn arg_str(&self, key: &str) -> Option<&str> {
        match self.arg(key) {
            Some(ParamValue::Value(v)) => Some(v.as_str()),
            _ => None,
        }
    }
}

/// The transaction state (`session.envelope`).
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Accepted sender (boxed: an idle session holds no room for one).
    pub mail_from: Option<Box<Address>>,
    /// Accepted recipients.
    pub rcpt_to: Vec<Address>,
    /// REQUIRETLS was given.
    pub require_tls: bool,
    /// `7bit` or `8bitmime` (the default is not allocated).
    pub body_type: Cow<'static, str>,
    /// SMTPUTF8 was given.
    pub smtp_utf8: bool,
    /// DSN RET (upper-cased).
    pub dsn_ret: Option<String>,
    /// DSN ENVID.
    pub dsn_envid: Option<String>,
}

impl Default for Envelope {
    fn default() -> Self {
        Envelope {
            mail_from: None,
            rcpt_to: Vec::new(),
            require_tls: false,
            body_type: Cow::Borrowed("7bit"),
            smtp_utf8: false,
            dsn_ret: None,
            dsn_envid: None,
        }
    }
}

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

/// The envelope fields MAIL FROM parameters set.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvelopeFlags {
    /// `requireTLS`.
    pub require_tls: bool,
    /// `bodyType`.
    pub body_type: String,
    /// `smtpUtf8`.
    pub smtp_utf8: bool,
    /// `dsn.ret`.
    pub dsn_ret: Option<String>,
    /// `dsn.envid`.
    pub dsn_envid: Option<String>,
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

/// The session fields smtp-server refreshes on every reset.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// Addresses and ports.
    pub peer: Peer,
    /// Reverse-resolved name or `[ip]`.
    pub client_hostname: Arc<str>,
    /// `HELO`, `EHLO` or `LHLO` as of the reset.
    pub opening_command: Option<&'static str>,
    /// The HELO/EHLO argument, lower-cased.
    pub host_name_appears_as: Option<Arc<str>>,
    /// `SMTP`, `ESMTPSA`, ...
    pub transmission_type: &'static str,
    /// 1-based transaction index.
    pub transaction: u32,
    /// `remotePort` (a number, or `''` after an unparsable XCLIENT PORT).
    pub remote_port: XValue,
}

impl View {
    /// Equal in every field but the transaction counter.
    fn same_but_transaction(&self, other: &View) -> bool {
        self.peer == other.peer
            && self.client_hostname == other.client_hostname
            && self.opening_command == other.opening_command
            && self.host_name_appears_as == other.host_name_appears_as
            && self.transmission_type == other.transmission_type
            && self.remote_port == other.remote_port
    }
}

/// What the application learns about an established TLS session.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsInfo {
    /// OpenSSL-style cipher name (`getCipher().name`).
    pub name: String,
    /// IANA cipher name (`getCipher().standardName`).
    pub standard_name: String,
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: String,
    /// The SNI name the client sent.
    pub servername: Option<String>,
    /// The client certificate verified against `ca`.
    pub authorized: bool,
    /// Why it did not, as Node names it.
    pub authorization_error: Option<String>,
    /// The client's certificate (DER), if it sent one.
    pub peer_certificate: Option<Vec<u8>>,
}

/// What the application must be told to bring its copy of the session up to date.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionSync {
    /// The reset generation; a new one means a fresh envelope object.
    pub generation: u32,
    /// The refreshed fields, when a reset happened since the last sync and changed them.
    pub view: Option<View>,
    /// A reset that left every view field but the transaction counter as it was.
    pub transaction: Option<u32>,
    /// `envelope.requireTLS`, `bodyType`, `smtpUtf8`, `dsn.ret`, `dsn.envid`.
    pub envelope_flags: Option<EnvelopeFlags>,
    /// `envelope.mailFrom`, when not yet known to the application.
    pub mail_from: Option<Address>,
    /// Recipients from this index on replace the application's list tail.
    pub rcpt_from: usize,
    /// The recipients from `rcpt_from` on.
    pub rcpts: Vec<Address>,
    /// `session.error`, when it changed.
    pub error: Option<String>,
    /// `session.isWizard` became true.
    pub wizard: bool,
    /// TLS was established (STARTTLS or at the start of the session).
    pub tls: Option<Box<TlsInfo>>,
    /// STARTTLS cleared `session.user`.
    pub user_cleared: bool,
    /// `session.servername` is due: the SNI name, or `None` for none.
    pub servername: Option<Option<String>>,
    /// The whole `session.xClient` map, when it changed.
    pub xclient: Option<Vec<(String, XValue)>>,
    /// The whole `session.xForward` map, when it changed.
    pub xforward: Option<Vec<(String, XValue)>>,
}

/// A question for the application.
#[derive(Debug, Clone, PartialEq)]
pub enum HookCall {
    /// `onMailFrom(address, session, cb)`.
    MailFrom(Address),
    /// `onRcptTo(address, session, cb)`.
    RcptTo(Address),
    /// `onSecure(socket, session, cb)` after STARTTLS.
    Secure,
    /// `onAuth(auth, session, cb)`.
    Auth(AuthRequest),
}

/// The `auth` object of `onAuth`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthRequest {
    /// `PLAIN`, `LOGIN`, `XOAUTH2` or `CRAM-MD5`.
    pub method: &'static str,
    /// User name.
    pub username: String,
    /// Password (PLAIN, LOGIN).
    pub password: Option<String>,
    /// SASL PLAIN authentication identity.
    pub authcid: Option<String>,
    /// SASL PLAIN authorization identity.
    pub authzid: Option<String>,
    /// XOAUTH2 bearer token.
    pub access_token: Option<String>,
    /// CRAM-MD5 challenge.
    pub challenge: Option<String>,
    /// CRAM-MD5 client digest (lower-case hex).
    pub challenge_response: Option<String>,
    /// `session.transmissionType` once this login succeeds.
    pub transmission_type: String,
}

/// The outcome of `onAuth`.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthOutcome {
    /// `cb(null, {user})` with a truthy user.
    Success,
    /// `cb(null, {message?, responseCode?, data?})` or a bare `cb()`.
    Failure {
        /// `responseCode`.
        code: Option<u16>,
        /// `message`.
        message: Option<String>,
        /// `JSON.stringify(data || {})` (XOAUTH2 only).
        data: String,
    },
    /// `cb(err)`.
    Error(Option<u16>, String),
    /// A bare `cb()` for XCLIENT LOGIN: carry on unauthenticated.
    Skip,
}

/// The JSON of smtp-server's default XOAUTH2 challenge.
const DEFAULT_XOAUTH2_CHALLENGE: &str =
    r#"{"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}"#;

/// The continuation an AUTH exchange waits for.
#[derive(Debug, Clone, PartialEq)]
enum AuthStep {
    Plain,
    LoginUsername,
    LoginPassword(String),
    Xoauth2,
    Xoauth2Error,
    CramMd5(String),
}

/// The outcome of an application handler.
#[derive(Debug, Clone, PartialEq)]
pub enum HookOutcome {
    /// `cb()`.
    Accept,
    /// `cb(err)`: reply code (if the error had one) and message.
    Reject(Option<u16>, String),
}

/// One reply line of a DATA result.
#[derive(Debug, Clone, PartialEq)]
pub struct DataReply {
    /// Reply code.
    pub code: u16,
    /// Reply text.
    pub text: String,
    /// Enhanced status code context.
    pub esc: Esc,
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

#[derive(Debug)]
struct DataState {
    decoder: DataDecoder,
    /// The application has an `onData` handler (it gets the end of the body).
    handler: bool,
    /// Body pieces still go to the application.
    deliver: bool,
    body: Vec<u8>,
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
    generation: u32,
    synced_generation: u32,
    mail_synced: bool,
    rcpt_synced: usize,
    flags_dirty: bool,
    error: Option<String>,
    error_dirty: bool,
    wizard: bool,
    wizard_dirty: bool,
    tls: Option<Box<TlsInfo>>,
    tls_dirty: bool,
    user_cleared: bool,
    servername_due: bool,
    auth_step: Option<AuthStep>,
    original_remote: Arc<str>,
    remote_port: XValue,
    xclient: Vec<(String, XValue)>,
    xforward: Vec<(String, XValue)>,
    xclient_dirty: bool,
    xforward_dirty: bool,
    hook_mask: Option<Arc<AtomicU32>>,
    /// The server's options and the version this session has.
    live: Option<(Arc<LiveConfig>, u32)>,
    trace: Vec<Trace>,
    /// The view changed in more than its transaction counter since the application
    /// last received it whole (true until it first does).
    view_dirty: bool,
    /// The application's envelope still has the default flags.
    default_flags_synced: bool,
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
            synced_generation: 0,
            mail_synced: true,
            rcpt_synced: 0,
            flags_dirty: false,
            error: None,
            error_dirty: false,
            wizard: false,
            wizard_dirty: false,
            tls: None,
            tls_dirty: false,
            user_cleared: false,
            servername_due: false,
            auth_step: None,
            original_remote: remote,
            remote_port,
            xclient: Vec::new(),
            xforward: Vec::new(),
            xclient_dirty: false,
            xforward_dirty: false,
            hook_mask: None,
            live: None,
            trace: Vec::new(),
            view_dirty: true,
            default_flags_synced: false,
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
            Mode::Data(ds) => ds.decoder.body_len(),
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
            self.error_dirty = true;
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

    /// Records an XCLIENT/XFORWARD field for the logger.
    fn record_proxied(&mut self, forward: bool, key: &'static str, value: &XValue) {
        if self.cfg.trace {
            self.trace.push(Trace::Proxied {
                forward,
                key,
                value: value.clone(),
                through: self.peer.remote_address.to_string(),
            });
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

    /// Sends the greeting and starts accepting commands.
    pub fn greet(&mut self) {
        self.ready = true;
        let proto = if self.cfg.lmtp { "LMTP" } else { "ESMTP" };
        let text = match &self.cfg.banner {
            Some(b) => format!("{} {} {}", self.cfg.name, proto, b),
            None => format!("{} {}", self.cfg.name, proto),
        };
        self.send(220, &text, Esc::Never);
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
        self.view_dirty |= !view.same_but_transaction(&self.view);
        self.view = view;
        self.envelope = Envelope::default();
        self.abort_chunked();
        self.generation = self.generation.wrapping_add(1);
        self.mail_synced = true;
        self.rcpt_synced = 0;
        self.flags_dirty = false;
    }

    /// What the application's copy of the session lacks; afterwards it counts as synced.
    pub fn take_sync(&mut self) -> SessionSync {
        let mut sync = SessionSync {
            generation: self.generation,
            ..SessionSync::default()
        };
        if self.synced_generation != self.generation {
            self.synced_generation = self.generation;
            // the application makes a fresh envelope object either way
            self.default_flags_synced = true;
            // the application keeps the last view it received: when only the counter
            // moved since, the counter is all it needs
            if std::mem::take(&mut self.view_dirty) {
                sync.view = Some(self.view.clone());
            } else {
                sync.transaction = Some(self.view.transaction);
            }
        }
        if self.flags_dirty {
            self.flags_dirty = false;
            let e = &self.envelope;
            let default = !e.require_tls
                && e.body_type == "7bit"
                && !e.smtp_utf8
                && e.dsn_ret.is_none()
                && e.dsn_envid.is_none();
            if !(default && self.default_flags_synced) {
                sync.envelope_flags = Some(EnvelopeFlags {
                    require_tls: e.require_tls,
                    body_type: e.body_type.to_string(),
                    smtp_utf8: e.smtp_utf8,
                    dsn_ret: e.dsn_ret.clone(),
                    dsn_envid: e.dsn_envid.clone(),
                });
            }
            self.default_flags_synced = default;
        }
        if !self.mail_synced {
            self.mail_synced = true;
            sync.mail_from = self.envelope.mail_from.as_deref().cloned();
        }
        sync.rcpt_from = self.rcpt_synced;
        if self.rcpt_synced < self.envelope.rcpt_to.len() {
            sync.rcpts = self.envelope.rcpt_to[self.rcpt_synced..].to_vec();
            self.rcpt_synced = self.envelope.rcpt_to.len();
        }
        if self.error_dirty {
            self.error_dirty = false;
            sync.error = self.error.clone();
        }
        if self.wizard_dirty {
            self.wizard_dirty = false;
            sync.wizard = true;
        }
        if self.tls_dirty {
            self.tls_dirty = false;
            sync.tls = self.tls.clone();
        }
        sync.user_cleared = std::mem::take(&mut self.user_cleared);
        if self.xclient_dirty {
            self.xclient_dirty = false;
            sync.xclient = Some(self.xclient.clone());
        }
        if self.xforward_dirty {
            self.xforward_dirty = false;
            sync.xforward = Some(self.xforward.clone());
        }
        if self.servername_due {
            self.servername_due = false;
            sync.servername = Some(self.tls.as_ref().and_then(|t| t.servername.clone()));
        }
        sync
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
        let line = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += nl + 1;
        self.on_command(&line);
        true
    }

    /// The next body step; `None` when the message ended without a handler to ask, so the
    /// caller goes on with the commands after it.
    fn step_data(&mut self, partial_body: bool) -> Option<Step> {
        let Mode::Data(ds) = &mut self.mode else {
            return Some(Step::Idle);
        };
        // bound the work (and the piece size) of one step
        let avail = &self.input[self.pos..];
        let take = avail.len().min(4 * BODY_CHUNK);
        // the decoded bytes never outgrow the input plus the two it may hold back:
        // room for all of them up front, so the piece is never copied by a regrowth
        ds.body.reserve(take + 2);
        let (consumed, done) = ds.decoder.decode(&avail[..take], &mut ds.body);
        self.pos += consumed;
        if !ds.deliver {
            ds.body.clear();
        }
        if done {
            self.body_bytes = ds.decoder.body_len();
            let body = std::mem::take(&mut ds.body);
            let handler = ds.handler;
            self.mode = Mode::Command;
            self.waiting = Waiting::DataResult;
            if handler {
                return Some(Step::BodyEnd(body));
            }
            self.default_data_result();
            return None;
        }
        let more_input = self.pos < self.input.len();
        if ds.deliver
            && (ds.body.len() >= BODY_CHUNK || (!more_input && partial_body && !ds.body.is_empty()))
        {
            return Some(Step::Body(std::mem::take(&mut ds.body)));
        }
        if more_input && consumed > 0 {
            // the cap above stopped the decoder; go on with the next slice
            return None;
        }
        Some(Step::Idle)
    }

    /// The reply smtp-server's default onData gives (no handler defined).
    fn default_data_result(&mut self) {
        let text = if self.cfg.lmtp {
            "OK: message accepted"
        } else {
            "OK: message queued"
        };
        let reply = DataReply {
            code: 250,
            text: text.into(),
            esc: Esc::DATA_OK,
        };
        let count = if self.cfg.lmtp {
            self.envelope.rcpt_to.len()
        } else {
            1
        };
        self.resolve_data(vec![reply; count]);
    }

    // ----- dispatch -----

    fn is_disabled(&self, name: &str) -> bool {
        match &self.disabled_override {
            Some(list) => list.iter().any(|c| c == name),
            None => self.cfg.disabled_commands.iter().any(|c| c == name),
        }
    }

    fn has_handler(&self, name: &str) -> bool {
        matches!(
            name,
            "EHLO"
                | "HELO"
                | "QUIT"
                | "NOOP"
                | "RSET"
                | "HELP"
                | "VRFY"
                | "STARTTLS"
                | "AUTH"
                | "MAIL"
                | "RCPT"
                | "DATA"
                | "WIZ"
                | "SHELL"
                | "KILL"
                | "XCLIENT"
                | "XFORWARD"
        )
    }

    fn is_supported(&self, name: &str) -> bool {
        !self.is_disabled(name) && (self.has_handler(name) || (name == "BDAT" && self.cfg.chunking))
    }

    fn has_hello(&self) -> bool {
        self.hello_name.as_deref().is_some_and(|h| !h.is_empty())
    }

    fn proxy_command_allowed(&self, name: &str) -> bool {
        let trust = if name == "XCLIENT" {
            &self.cfg.use_xclient
        } else {
            &self.cfg.use_xforward
        };
        !self.xclient.iter().any(|(k, _)| k == "ADDR")
            && trust.allows(&self.original_remote)
            && self.is_supported(name)
    }

    fn auth_required(&self) -> bool {
        !self.user && self.is_supported("AUTH") && !self.cfg.auth_optional
    }

    fn on_command(&mut self, line: &str) {
        let raw_name = command_name(line);
        if self.cfg.trace {
            let entry = self.redacted(&raw_name, line);
            self.trace.push(entry);
        }
        if raw_name == "BDAT"
            && self.cfg.chunking
            && self.ready
            && self.auth_step.is_none()
            && (self.chunked.is_some() || !self.server_closing)
        {
            // its chunk is read past whatever the answer, and a message in progress
            // still finishes when the server is closing, as after DATA
            self.cmd_bdat(line);
            return;
        }
        if self.server_closing {
            self.send(421, "Server shutting down", Esc::for_command(&raw_name));
            return;
        }
        if !self.ready {
            let text = format!("{} You talk too soon", self.cfg.name);
            self.send(421, &text, Esc::for_command(&raw_name));
            return;
        }
        if is_http_request(line) {
            self.send(
                421,
                "HTTP requests not allowed",
                Esc::for_command(&raw_name),
            );
            return;
        }
        if let Some(step) = self.auth_step.take() {
            self.auth_continuation(step, line, &raw_name);
            return;
        }
        let mut name: &str = &raw_name;
        match name {
            "HELO" => self.opening_command = Some("HELO"),
            "EHLO" => self.opening_command = Some("EHLO"),
            "LHLO" => self.opening_command = Some("LHLO"),
            _ => {}
        }
        if self.cfg.lmtp {
            match name {
                "HELO" | "EHLO" => {
                    let text = format!("Error: {name} not allowed in LMTP server");
                    self.send(500, &text, Esc::Never);
                    return;
                }
                "LHLO" => name = "EHLO",
                _ => {}
            }
        }
        if !self.is_supported(name) {
            self.refuse_unrecognized(name);
            return;
        }
        if !self.admit(name) {
            return;
        }
        match name {
            "EHLO" => self.cmd_ehlo(line),
            "HELO" => self.cmd_helo(line),
            "QUIT" => {
                self.send(221, "Bye", Esc::Default);
                self.close();
            }
            "NOOP" => self.send(250, "OK", Esc::Default),
            "RSET" => {
                self.reset();
                self.send(250, "Flushed", Esc::Default);
            }
            "HELP" => self.send(
                214,
                "See https://tools.ietf.org/html/rfc5321 for details",
                Esc::Default,
            ),
            "VRFY" => {
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
            "STARTTLS" => self.cmd_starttls(line),
            "AUTH" => self.cmd_auth(line),
            "MAIL" => self.cmd_mail(line),
            "RCPT" => self.cmd_rcpt(line),
            "DATA" => self.cmd_data(),
            "WIZ" => {
                if js_split_ws(line).get(1).is_some_and(|p| !p.is_empty()) {
                    self.wizard = true;
                    self.wizard_dirty = true;
                    self.send(200, "Please pass, oh mighty wizard", Esc::Default);
                } else {
                    self.send(500, "You are no wizard!", Esc::Default);
                }
            }
            "SHELL" => {
                self.record(|| Trace::Shell);
                if self.wizard {
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
            "KILL" => {
                self.record(|| Trace::Kill);
                self.send(500, "Can not kill Mom", Esc::Default);
            }
            "XCLIENT" => self.cmd_xclient(line),
            "XFORWARD" => self.cmd_xforward(line),
            _ => self.send(500, "Error: command not recognized", Esc::Default),
        }
    }

    /// Answers a command that is unknown or disabled; the tenth in a row closes.
    fn refuse_unrecognized(&mut self, name: &str) {
        self.unrecognized += 1;
        if self.unrecognized >= 10 {
            self.send(
                421,
                "Error: too many unrecognized commands",
                Esc::for_command(name),
            );
        } else {
            self.send(500, "Error: command not recognized", Esc::for_command(name));
        }
    }

    /// The checks every command line passes before its handler (and an AUTH
    /// continuation line too, as in smtp-server): the unauthenticated-command limit,
    /// HELO first, AUTH first. False when the line was answered here.
    fn admit(&mut self, name: &str) -> bool {
        if self.auth_required() && name != "AUTH" {
            self.unauthenticated += 1;
            if self.unauthenticated >= self.cfg.max_unauthenticated {
                self.send(
                    421,
                    "Error: too many unauthenticated commands",
                    Esc::for_command(name),
                );
                return false;
            }
        }
        if !self.has_hello() && matches!(name, "MAIL" | "RCPT" | "DATA" | "BDAT" | "AUTH") {
            let text = if self.cfg.lmtp {
                "Error: send LHLO first"
            } else {
                "Error: send HELO/EHLO first"
            };
            self.send(503, text, Esc::Default);
            return false;
        }
        if self.auth_required() && matches!(name, "MAIL" | "RCPT" | "DATA" | "BDAT") {
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

    fn helo_argument(&mut self, line: &str, syntax_error: &str) -> Option<String> {
        let parts = js_split_ws(line);
        if parts.len() != 2 {
            self.send(501, syntax_error, Esc::Never);
            return None;
        }
        let host = parts[1];
        if utf16_len(host) > MAX_HELO_HOSTNAME_LENGTH || host.chars().any(super::reply::is_control)
        {
            self.send(501, "Error: Bad hostname syntax", Esc::Never);
            return None;
        }
        Some(host.to_lowercase())
    }

    fn helo_line(&self) -> String {
        let format = self
            .cfg
            .helo_response
            .as_deref()
            .unwrap_or("%s Nice to meet you, %s");
        let replacements = [self.cfg.name.as_str(), &self.client_hostname];
        let mut out = String::with_capacity(format.len() + 32);
        let mut rest = format;
        let mut i = 0;
        while let Some(at) = rest.find("%s") {
            out.push_str(&rest[..at]);
            out.push_str(replacements.get(i).copied().unwrap_or(""));
            i += 1;
            rest = &rest[at + 2..];
        }
        out.push_str(rest);
        out
    }

    fn cmd_ehlo(&mut self, line: &str) {
        let err = if self.cfg.lmtp {
            "Error: syntax: LHLO hostname"
        } else {
            "Error: syntax: EHLO hostname"
        };
        let Some(host) = self.helo_argument(line, err) else {
            return;
        };
        self.hello_name = Some(host.into());
        let cfg = Arc::clone(&self.cfg);
        let mut lines = vec![self.helo_line()];
        for (hidden, feature) in [
            (cfg.hide_pipelining, "PIPELINING"),
            (cfg.hide_8bitmime, "8BITMIME"),
            (cfg.hide_smtputf8, "SMTPUTF8"),
            (cfg.hide_esc, "ENHANCEDSTATUSCODES"),
            (cfg.hide_dsn, "DSN"),
        ] {
            if !hidden {
                lines.push(feature.to_string());
            }
        }
        if cfg.chunking && self.is_supported("BDAT") {
            lines.push("CHUNKING".into());
            if !cfg.hide_binarymime {
                lines.push("BINARYMIME".into());
            }
        }
        if !cfg.auth_methods.is_empty() && self.is_supported("AUTH") && !self.user {
            lines.push(format!("AUTH {}", cfg.auth_methods.join(" ")));
        }
        if !self.secure && self.is_supported("STARTTLS") && !cfg.hide_starttls {
            lines.push("STARTTLS".into());
        }
        if self.secure && !cfg.hide_requiretls {
            lines.push("REQUIRETLS".into());
        }
        if let Some(size) = &cfg.size_text {
            if cfg.hide_size {
                lines.push("SIZE".into());
            } else {
                lines.push(format!("SIZE {size}"));
            }
        }
        if self.proxy_command_allowed("XCLIENT") {
            lines.push("XCLIENT NAME ADDR PORT PROTO HELO LOGIN".into());
        }
        if self.proxy_command_allowed("XFORWARD") {
            lines.push("XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE".into());
        }
        self.reset();
        let start = self.out.len();
        write_multiline(&mut self.out, 250, &lines);
        if self.cfg.trace {
            let text = String::from_utf8_lossy(&self.out[start..]);
            let text = text.strip_suffix("\r\n").unwrap_or(&text).to_string();
            self.trace.push(Trace::Reply(text));
        }
    }

    fn cmd_helo(&mut self, line: &str) {
        let Some(host) = self.helo_argument(line, "Error: Syntax: HELO hostname") else {
            return;
        };
        self.hello_name = Some(host.into());
        self.reset();
        let text = self.helo_line();
        self.send(250, &text, Esc::Never);
    }

    fn cmd_starttls(&mut self, line: &str) {
        if js_split_ws(line).len() > 1 {
            self.send(501, "Error: syntax: STARTTLS", Esc::Default);
            return;
        }
        if self.secure {
            self.send(503, "Error: TLS already active", Esc::Default);
            return;
        }
        // the chunks so far came in cleartext, and the upgrade would reset the
        // transaction under them
        if self.refuse_in_chunking("Error: STARTTLS not allowed during a BDAT transaction") {
            return;
        }
        self.send(220, "Ready to start TLS", Esc::Default);
        // whatever the client pipelined after STARTTLS arrived in cleartext: drop it
        self.pos = self.input.len();
        self.waiting = Waiting::Tls;
        self.queue.push_back(Step::StartTls);
    }

    /// TLS is up: either at the start of the session (`starttls` false) or after
    /// STARTTLS, which also forgets the identity and HELO name and resets the session,
    /// then asks `onSecure` if the application defined it.
    pub fn tls_established(&mut self, info: TlsInfo, starttls: bool) {
        if starttls {
            // the logger sees the identity gone when it logs the upgrade
            self.clear_user();
            self.record(|| Trace::StartTls(info.name.clone()));
        }
        self.secure = true;
        self.tls = Some(Box::new(info));
        self.tls_dirty = true;
        if !starttls {
            return;
        }
        self.servername_due = true;
        if self.waiting == Waiting::Tls {
            self.waiting = Waiting::Nothing;
        }
        self.pos = self.input.len();
        self.hello_name = None;
        self.opening_command = None;
        self.reset();
        if self.hooks().secure {
            self.waiting = Waiting::Hook(Box::new(HookCall::Secure));
            self.queue.push_back(Step::Hook(Box::new(HookCall::Secure)));
        }
    }

    /// `session.servername` is set now (before `onSecure` at the start of a session).
    pub fn publish_servername(&mut self) {
        self.servername_due = true;
    }

    /// True when the session runs over TLS (or counts as secure).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    fn cmd_auth(&mut self, line: &str) {
        let args = js_split_ws(line);
        let method = args.get(1).map(|m| m.to_uppercase()).unwrap_or_default();
        let rest: Vec<&str> = args.iter().skip(2).copied().collect();
        if !self.secure
            && self.is_supported("STARTTLS")
            && !self.cfg.hide_starttls
            && !self.cfg.allow_insecure_auth
        {
            self.send(
                538,
                "Error: Must issue a STARTTLS command first",
                Esc::Default,
            );
            return;
        }
        if self.user {
            self.send(503, "Error: No identity changes permitted", Esc::Default);
            return;
        }
        let implemented = matches!(method.as_str(), "PLAIN" | "LOGIN" | "XOAUTH2" | "CRAM-MD5");
        if !implemented || !self.cfg.auth_methods.contains(&method) {
            self.send(504, "Error: Unrecognized authentication type", Esc::Default);
            return;
        }
        match method.as_str() {
            "PLAIN" | "LOGIN" | "XOAUTH2" if rest.len() > 1 => {
                let text = match method.as_str() {
                    "PLAIN" => "Error: syntax: AUTH PLAIN token",
                    "LOGIN" => "Error: syntax: AUTH LOGIN",
                    _ => "Error: syntax: AUTH XOAUTH2 token",
                };
                self.send(501, text, Esc::Default);
            }
            "PLAIN" => match rest.first() {
                None => self.auth_prompt(AuthStep::Plain, ""),
                Some(token) => self.auth_plain(false, token),
            },
            "LOGIN" => match rest.first() {
                None => self.auth_prompt(AuthStep::LoginUsername, "VXNlcm5hbWU6"),
                Some(token) => self.auth_login_username(false, token),
            },
            "XOAUTH2" => match rest.first() {
                None => self.auth_prompt(AuthStep::Xoauth2, ""),
                Some(token) => self.auth_xoauth2(false, token),
            },
            _ => {
                if !rest.is_empty() {
                    self.send(501, "Error: syntax: AUTH CRAM-MD5", Esc::Default);
                    return;
                }
                let mut random = [0u8; 16];
                let _ = getrandom::fill(&mut random);
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let challenge = sasl::cram_md5_challenge(&self.cfg.name, &random, now);
                let encoded = sasl::encode_base64(challenge.as_bytes());
                self.auth_prompt(AuthStep::CramMd5(challenge), &encoded);
            }
        }
    }

    fn auth_prompt(&mut self, step: AuthStep, challenge: &str) {
        self.auth_step = Some(step);
        self.send(334, challenge, Esc::Default);
    }

    /// A line of an AUTH exchange, with smtp-server's checks for an ordinary command line.
    fn auth_continuation(&mut self, step: AuthStep, line: &str, name: &str) {
        if !self.admit(name) {
            return;
        }
        match step {
            AuthStep::Plain => self.auth_plain(true, line),
            AuthStep::LoginUsername => self.auth_login_username(true, line),
            AuthStep::LoginPassword(username) => {
                let Some(token) = self.sasl_token(line, true) else {
                    return;
                };
                let request = AuthRequest {
                    method: "LOGIN",
                    username,
                    password: Some(sasl::decode_text(token)),
                    ..AuthRequest::default()
                };
                self.auth_ask(request);
            }
            AuthStep::Xoauth2 => self.auth_xoauth2(true, line),
            AuthStep::Xoauth2Error => self.send(
                535,
                "Error: Username and Password not accepted",
                Esc::Default,
            ),
            AuthStep::CramMd5(challenge) => {
                let Some(token) = self.sasl_token(line, true) else {
                    return;
                };
                let request = sasl::parse_cram_md5(token).map(|(username, response)| AuthRequest {
                    method: "CRAM-MD5",
                    username,
                    challenge: Some(challenge),
                    challenge_response: Some(response),
                    ..AuthRequest::default()
                });
                self.auth_ask_parsed(request);
            }
        }
    }

    /// The token of a SASL line, trimmed; `None` when the client cancelled with `*`
    /// (answered here). An initial response (`can_abort` false) cannot cancel.
    fn sasl_token<'l>(&mut self, line: &'l str, can_abort: bool) -> Option<&'l str> {
        let token = trim_js(line);
        if can_abort && token == "*" {
            self.send(501, "Authentication aborted", Esc::Default);
            return None;
        }
        Some(token)
    }

    fn auth_plain(&mut self, can_abort: bool, line: &str) {
        let Some(token) = self.sasl_token(line, can_abort) else {
            return;
        };
        let request = sasl::parse_plain(token).map(|plain| AuthRequest {
            method: "PLAIN",
            username: plain.username,
            password: Some(plain.password),
            authcid: Some(plain.authcid),
            authzid: Some(plain.authzid),
            ..AuthRequest::default()
        });
        self.auth_ask_parsed(request);
    }

    fn auth_login_username(&mut self, can_abort: bool, line: &str) {
        let Some(token) = self.sasl_token(line, can_abort) else {
            return;
        };
        match sasl::parse_login_username(token) {
            Ok(username) => self.auth_prompt(AuthStep::LoginPassword(username), "UGFzc3dvcmQ6"),
            Err(sasl::LoginError::Missing) => {
                self.send(501, "Error: missing username", Esc::Default)
            }
            Err(sasl::LoginError::Invalid) => {
                self.send(501, "Error: invalid userdata", Esc::Default)
            }
        }
    }

    fn auth_xoauth2(&mut self, can_abort: bool, line: &str) {
        let Some(token) = self.sasl_token(line, can_abort) else {
            return;
        };
        let request = sasl::parse_xoauth2(token).map(|(username, access_token)| AuthRequest {
            method: "XOAUTH2",
            username,
            access_token: Some(access_token),
            ..AuthRequest::default()
        });
        self.auth_ask_parsed(request);
    }

    /// Asks about a SASL answer that parsed, or refuses one that did not.
    fn auth_ask_parsed(&mut self, request: Option<AuthRequest>) {
        match request {
            Some(request) => self.auth_ask(request),
            None => self.send(501, "Error: invalid userdata", Esc::Default),
        }
    }

    /// Asks `onAuth` (or applies smtp-server's default when it is not defined).
    fn auth_ask(&mut self, mut request: AuthRequest) {
        request.transmission_type = self.transmission_type(true).to_string();
        if self.hooks().auth {
            self.waiting = Waiting::Hook(Box::new(HookCall::Auth(request.clone())));
            self.queue
                .push_back(Step::Hook(Box::new(HookCall::Auth(request))));
            return;
        }
        let outcome = if request.method == "XCLIENT" {
            AuthOutcome::Skip
        } else if request.method == "XOAUTH2" {
            AuthOutcome::Failure {
                code: None,
                message: None,
                data: DEFAULT_XOAUTH2_CHALLENGE.to_string(),
            }
        } else {
            AuthOutcome::Failure {
                code: None,
                message: Some("Authentication not implemented".into()),
                data: "{}".into(),
            }
        };
        self.finish_auth(&request, outcome);
    }

    /// Answers a pending `onAuth`.
    pub fn resolve_auth(&mut self, outcome: AuthOutcome) {
        let waiting = std::mem::replace(&mut self.waiting, Waiting::Nothing);
        let request = match waiting {
            Waiting::Hook(call) => match *call {
                HookCall::Auth(request) => request,
                other => {
                    self.waiting = Waiting::Hook(Box::new(other));
                    return;
                }
            },
            other => {
                self.waiting = other;
                return;
            }
        };
        self.finish_auth(&request, outcome);
    }

    fn finish_auth(&mut self, request: &AuthRequest, outcome: AuthOutcome) {
        if request.method == "XCLIENT" {
            match outcome {
                AuthOutcome::Error(_, message) => {
                    self.send(550, &message, Esc::Default);
                    self.close();
                }
                AuthOutcome::Failure { .. } => {
                    self.send(550, "Authentication credentials invalid", Esc::Default);
                    self.close();
                }
                AuthOutcome::Skip => self.finish_xclient(),
                AuthOutcome::Success => {
                    self.user = true;
                    self.finish_xclient();
                }
            }
            return;
        }
        match outcome {
            AuthOutcome::Error(code, message) => {
                self.send(code.unwrap_or(535), &message, Esc::Default)
            }
            AuthOutcome::Failure { code, data, .. } if request.method == "XOAUTH2" => {
                self.auth_step = Some(AuthStep::Xoauth2Error);
                let encoded = sasl::encode_base64(data.as_bytes());
                self.send(code.unwrap_or(334), &encoded, Esc::Default);
            }
            AuthOutcome::Failure { code, message, .. } => {
                let text =
                    message.unwrap_or_else(|| "Error: Authentication credentials invalid".into());
                self.send(code.unwrap_or(535), &text, Esc::Default);
            }
            AuthOutcome::Success => {
                self.user = true;
                self.send(235, "Authentication successful", Esc::Default);
            }
            AuthOutcome::Skip => {
                let text = "Error: Authentication credentials invalid";
                self.send(535, text, Esc::Default);
            }
        }
    }

    /// The checks XCLIENT and XFORWARD share (a trusted peer, no transaction, valid
    /// parameters); `None` when one failed and was answered.
    fn proxy_params(
        &mut self,
        command: &str,
        line: &str,
        keys: &[&str],
        unavailable: &[&str],
    ) -> Option<Vec<(String, XValue)>> {
        if !self.proxy_command_allowed(command) {
            self.send(550, "Error: Not allowed", Esc::NOT_AUTHORIZED);
            return None;
        }
        if self.envelope.mail_from.is_some() {
            self.send(503, "Error: Mail transaction in progress", Esc::Default);
            return None;
        }
        match parse_params(line, keys, unavailable) {
            Ok(params) => Some(params),
            Err(text) => {
                self.send(501, text, Esc::Default);
                None
            }
        }
    }

    /// `session.user` becomes `false` (STARTTLS, XCLIENT ADDR or LOGIN=).
    fn clear_user(&mut self) {
        self.user = false;
        self.user_cleared = true;
        self.record(|| Trace::UserCleared);
    }

    fn cmd_xclient(&mut self, line: &str) {
        let Some(params) = self.proxy_params(
            "XCLIENT",
            line,
            &["NAME", "ADDR", "PORT", "PROTO", "HELO", "LOGIN"],
            &["[UNAVAILABLE]", "[TEMPUNAVAIL]"],
        ) else {
            return;
        };
        let mut login: Option<String> = None;
        let mut has_addr = false;
        for (key, raw) in params {
            let mut value = raw.clone();
            match key.as_str() {
                "LOGIN" => {
                    if let XValue::Str(v) = &raw {
                        login = Some(v.clone());
                    }
                }
                "ADDR" => {
                    has_addr = true;
                    if let XValue::Str(addr) = &raw {
                        if !addr.is_empty() {
                            self.record_proxied(false, "ADDR", &raw);
                            let previous = XValue::Str(self.peer.remote_address.to_string());
                            keep_default(&mut self.xclient, "ADDR:DEFAULT", previous);
                            self.peer.remote_address = addr.as_str().into();
                            self.hello_name = None;
                            self.clear_user();
                        }
                    }
                }
                "NAME" => {
                    let name = raw.text();
                    value = XValue::Str(name.clone());
                    self.record_proxied(false, "NAME", &value);
                    let previous = XValue::Str(self.client_hostname.to_string());
                    keep_default(&mut self.xclient, "NAME:DEFAULT", previous);
                    self.set_client_hostname(&name);
                }
                "PORT" => {
                    let n = js_number(&raw.text());
                    value = if n != 0.0 && !n.is_nan() {
                        XValue::Num(n)
                    } else {
                        XValue::Str(String::new())
                    };
                    self.record_proxied(false, "PORT", &value);
                    let previous = if self.remote_port.truthy() {
                        self.remote_port.clone()
                    } else {
                        XValue::Str(String::new())
                    };
                    keep_default(&mut self.xclient, "PORT:DEFAULT", previous);
                    self.remote_port = value.clone();
                }
                _ => {}
            }
            set_field(&mut self.xclient, key, value);
        }
        self.xclient_dirty = true;
        if has_addr && self.can_emit_connect {
            self.can_emit_connect = false;
            self.queue.push_back(Step::EmitConnect);
        }
        match login {
            Some(username) if !username.is_empty() => {
                let request = AuthRequest {
                    method: "XCLIENT",
                    username,
                    ..AuthRequest::default()
                };
                self.auth_ask(request);
            }
            Some(_) => {
                self.record(|| Trace::Deauth);
                self.clear_user();
                self.finish_xclient();
            }
            None => self.finish_xclient(),
        }
    }

    /// XCLIENT is done: the session starts over with a new greeting.
    fn finish_xclient(&mut self) {
        self.reset();
        let proto = if self.cfg.lmtp { "LMTP" } else { "ESMTP" };
        let text = match &self.cfg.banner {
            Some(b) => format!("{} {} {}", self.cfg.name, proto, b),
            None => format!("{} {}", self.cfg.name, proto),
        };
        self.send(220, &text, Esc::Never);
    }

    fn cmd_xforward(&mut self, line: &str) {
        let Some(params) = self.proxy_params(
            "XFORWARD",
            line,
            &["NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"],
            &["[UNAVAILABLE]"],
        ) else {
            return;
        };
        let mut has_addr = false;
        for (key, raw) in params {
            let mut value = raw.clone();
            match key.as_str() {
                "ADDR" => {
                    if let XValue::Str(addr) = &raw {
                        if !addr.is_empty() {
                            self.record_proxied(true, "ADDR", &raw);
                            let previous = XValue::Str(self.peer.remote_address.to_string());
                            keep_default(&mut self.xforward, "ADDR:DEFAULT", previous);
                            has_addr = true;
                            self.peer.remote_address = addr.as_str().into();
                        }
                    }
                }
                "NAME" => {
                    let name = raw.text();
                    value = XValue::Str(name.clone());
                    self.record_proxied(true, "NAME", &value);
                    self.set_client_hostname(&name);
                }
                "PORT" => {
                    let n = js_number(&raw.text());
                    value = XValue::Num(if n.is_nan() { 0.0 } else { n });
                    self.record_proxied(true, "PORT", &value);
                    self.remote_port = value.clone();
                }
                "HELO" => {
                    let helo = raw.text().to_lowercase();
                    value = XValue::Str(helo.clone());
                    self.record_proxied(true, "HELO", &value);
                    self.hello_name = Some(helo.into());
                }
                _ => {}
            }
            set_field(&mut self.xforward, key, value);
        }
        self.xforward_dirty = true;
        self.reset();
        if has_addr {
            self.can_emit_connect = false;
            self.queue.push_back(Step::EmitConnect);
        }
        self.send(250, "OK", Esc::Default);
    }

    fn reject_invalid_params(&mut self, parsed: &ParsedAddress, keys: &[&str]) -> bool {
        let error = if let Some(dup) = &parsed.duplicate {
            format!("Error: duplicate {dup} parameter")
        } else {
            let valueless = parsed.args.as_ref().and_then(|args| {
                keys.iter().find(|key| {
                    args.iter()
                        .rev()
                        .find(|(k, _)| k == *key)
                        .is_some_and(|(_, v)| matches!(v, ParamValue::Flag))
                })
            });
            match valueless {
                Some(key) => format!("Error: {key} parameter requires a value"),
                None => return false,
            }
        };
        self.send(501, &error, Esc::Default);
        true
    }

    fn mail_param_error(&self, addr: &Address) -> Option<(u16, &'static str, Esc)> {
        if let Some(size) = addr.arg_str("SIZE") {
            let digits =
                !size.is_empty() && size.len() <= 20 && size.bytes().all(|b| b.is_ascii_digit());
            if !digits {
                return Some((501, "Error: Bad message size syntax", Esc::Default));
            }
            if !self.cfg.hide_size && self.cfg.size_text.is_some() {
                let declared: f64 = size.parse().unwrap_or(0.0);
                if declared > self.cfg.size {
                    return Some((552, "", Esc::TOO_BIG));
                }
            }
        }
        if let Some(body) = addr.arg_str("BODY") {
            let body = body.to_lowercase();
            if body != "7bit" && body != "8bitmime" && !(body == "binarymime" && self.binarymime())
            {
                return Some((
                    501,
                    "Invalid BODY parameter value. Must be 7BIT or 8BITMIME",
                    Esc::Default,
                ));
            }
        }
        if let Some(v) = addr.arg("SMTPUTF8") {
            if !matches!(v, ParamValue::Flag) {
                return Some((
                    501,
                    "Invalid SMTPUTF8 parameter. This flag does not accept a value",
                    Esc::Default,
                ));
            }
        }
        if let Some(v) = addr.arg("REQUIRETLS") {
            if !self.secure {
                return Some((
                    530,
                    "REQUIRETLS not permitted on non-TLS connections",
                    Esc::Default,
                ));
            }
            if !matches!(v, ParamValue::Flag) {
                return Some((
                    501,
                    "Invalid REQUIRETLS parameter. This flag does not accept a value",
                    Esc::Default,
                ));
            }
        }
        if !self.cfg.hide_dsn {
            if let Some(ret) = addr.arg_str("RET") {
                let ret = ret.to_uppercase();
                if ret != "FULL" && ret != "HDRS" {
                    return Some((
                        501,
                        "Invalid RET parameter value. Must be FULL or HDRS",
                        Esc::Default,
                    ));
                }
            }
        }
        None
    }

    fn size_exceeded_text(&self) -> String {
        format!(
            "Error: message exceeds fixed maximum message size {}",
            self.cfg.size_text.as_deref().unwrap_or("0")
        )
    }

    fn cmd_mail(&mut self, line: &str) {
        let parsed = parse_address_command(
            AddressCommand::MailFrom,
            line,
            self.cfg.lenient_address_parsing,
        );
        if self.cfg.delay_connect && self.can_emit_connect {
            self.can_emit_connect = false;
            self.queue.push_back(Step::EmitConnect);
        }
        let Ok(parsed) = parsed else {
            self.send(501, "Error: Bad sender address syntax", Esc::SENDER_SYNTAX);
            return;
        };
        if self.reject_invalid_params(&parsed, &["BODY", "SIZE", "RET", "ENVID"]) {
            return;
        }
        if self.envelope.mail_from.is_some() {
            self.send(503, "Error: nested MAIL command", Esc::Default);
            return;
        }
        let addr = Address { parsed, dsn: None };
        if let Some((code, text, esc)) = self.mail_param_error(&addr) {
            if code == 552 {
                let text = self.size_exceeded_text();
                self.send(code, &text, esc);
            } else {
                self.send(code, text, esc);
            }
            return;
        }
        // the parameters go into the envelope before the handler runs
        if let Some(body) = addr.arg_str("BODY") {
            self.envelope.body_type = body.to_lowercase().into();
        }
        if matches!(addr.arg("SMTPUTF8"), Some(ParamValue::Flag)) {
            self.envelope.smtp_utf8 = true;
        }
        if matches!(addr.arg("REQUIRETLS"), Some(ParamValue::Flag)) {
            self.envelope.require_tls = true;
        }
        if !self.cfg.hide_dsn {
            if let Some(ret) = addr.arg_str("RET") {
                self.envelope.dsn_ret = Some(ret.to_uppercase());
            }
            if let Some(envid) = addr.arg_str("ENVID") {
                self.envelope.dsn_envid = Some(envid.to_string());
            }
        }
        self.flags_dirty = true;
        if self.hooks().mail_from {
            self.waiting = Waiting::Hook(Box::new(HookCall::MailFrom(addr.clone())));
            self.queue
                .push_back(Step::Hook(Box::new(HookCall::MailFrom(addr))));
        } else {
            self.accept_mail(addr, false);
        }
    }

    fn accept_mail(&mut self, addr: Address, known: bool) {
        self.envelope.mail_from = Some(Box::new(addr));
        self.mail_synced = known;
        self.send(250, "Accepted", Esc::MAIL_OK);
    }

    fn cmd_rcpt(&mut self, line: &str) {
        let parsed = parse_address_command(
            AddressCommand::RcptTo,
            line,
            self.cfg.lenient_address_parsing,
        );
        let parsed = match parsed {
            Ok(p) if !p.address.is_empty() => p,
            _ => {
                self.send(
                    501,
                    "Error: Bad recipient address syntax",
                    Esc::MAILBOX_SYNTAX,
                );
                return;
            }
        };
        if self.reject_invalid_params(&parsed, &["NOTIFY", "ORCPT"]) {
            return;
        }
        if self.envelope.mail_from.is_none() {
            self.send(503, "Error: need MAIL command", Esc::Default);
            return;
        }
        if self.chunked.is_some() {
            self.send(503, "Error: RCPT not allowed after BDAT", Esc::Default);
            return;
        }
        let mut addr = Address { parsed, dsn: None };
        if !self.cfg.hide_dsn {
            if let Some(notify) = addr.arg_str("NOTIFY") {
                let values: Vec<String> = notify
                    .to_uppercase()
                    .split(',')
                    .map(str::to_string)
                    .collect();
                if values
                    .iter()
                    .any(|v| !matches!(v.as_str(), "NEVER" | "SUCCESS" | "FAILURE" | "DELAY"))
                {
                    self.send(
                        501,
                        "Error: NOTIFY parameter must be NEVER, SUCCESS, FAILURE, or DELAY",
                        Esc::Default,
                    );
                    return;
                }
                if values.len() > 1 && values.iter().any(|v| v == "NEVER") {
                    self.send(
                        501,
                        "Error: NOTIFY=NEVER cannot be combined with other values",
                        Esc::Default,
                    );
                    return;
                }
                addr.dsn.get_or_insert_with(RcptDsn::default).notify = Some(values);
            }
            if let Some(orcpt) = addr.arg_str("ORCPT") {
                if !is_valid_orcpt(orcpt) {
                    self.send(501, "Error: Bad ORCPT parameter syntax", Esc::Default);
                    return;
                }
                addr.dsn.get_or_insert_with(RcptDsn::default).orcpt = Some(orcpt.to_string());
            }
        }
        if self.cfg.max_recipients > 0
            && self.envelope.rcpt_to.len() >= self.cfg.max_recipients
            && self.find_rcpt(&addr.parsed.address).is_none()
        {
            self.send(452, "Error: too many recipients", Esc::TOO_MANY_RCPT);
            return;
        }
        if self.hooks().rcpt_to {
            self.waiting = Waiting::Hook(Box::new(HookCall::RcptTo(addr.clone())));
            self.queue
                .push_back(Step::Hook(Box::new(HookCall::RcptTo(addr))));
        } else {
            self.accept_rcpt(addr, false);
        }
    }

    fn find_rcpt(&self, address: &str) -> Option<usize> {
        let key = address.to_lowercase();
        self.envelope
            .rcpt_to
            .iter()
            .position(|r| r.parsed.address.to_lowercase() == key)
    }

    fn accept_rcpt(&mut self, addr: Address, known: bool) {
        let synced_all = self.rcpt_synced == self.envelope.rcpt_to.len();
        match self.find_rcpt(&addr.parsed.address) {
            Some(i) => {
                self.envelope.rcpt_to[i] = addr;
                if !known {
                    self.rcpt_synced = self.rcpt_synced.min(i);
                }
            }
            None => self.envelope.rcpt_to.push(addr),
        }
        if known && synced_all {
            self.rcpt_synced = self.envelope.rcpt_to.len();
        }
        self.send(250, "Accepted", Esc::RCPT_OK);
    }

    /// Answers the pending [`Step::Hook`]. `applied` tells whether the application side
    /// already recorded the accepted address in its envelope.
    pub fn resolve_hook(&mut self, outcome: HookOutcome) {
        let waiting = std::mem::replace(&mut self.waiting, Waiting::Nothing);
        let Waiting::Hook(call) = waiting else {
            self.waiting = waiting;
            return;
        };
        match (*call, outcome) {
            (HookCall::Secure, HookOutcome::Reject(code, message)) => {
                self.send(code.unwrap_or(554), &message, Esc::Default);
                self.close();
            }
            (HookCall::Secure, HookOutcome::Accept) => {}
            (HookCall::Auth(request), HookOutcome::Accept) => {
                self.finish_auth(&request, AuthOutcome::Success)
            }
            (HookCall::Auth(request), HookOutcome::Reject(code, message)) => {
                self.finish_auth(&request, AuthOutcome::Error(code, message))
            }
            (_, HookOutcome::Reject(code, message)) => {
                self.send(code.unwrap_or(550), &message, Esc::Default);
            }
            (HookCall::MailFrom(addr), HookOutcome::Accept) => self.accept_mail(addr, true),
            (HookCall::RcptTo(addr), HookOutcome::Accept) => self.accept_rcpt(addr, true),
        }
    }

    fn cmd_data(&mut self) {
        if self.envelope.rcpt_to.is_empty() {
            self.send(503, "Error: need RCPT command", Esc::Default);
            return;
        }
        if self.refuse_data_in_chunking() {
            return;
        }
        let deliver = self.hooks().data;
        self.mode = Mode::Data(Box::new(DataState {
            decoder: DataDecoder::new(),
            handler: deliver,
            deliver,
            body: Vec::new(),
        }));
        if deliver {
            self.queue.push_back(Step::DataStart);
        }
        self.send(354, "End data with <CR><LF>.<CR><LF>", Esc::Default);
    }

    /// Stops handing body pieces to the application: the rest of the message is
    /// received and dropped (the application answered before reading it all).
    pub fn discard_body(&mut self) {
        if let Mode::Data(ds) = &mut self.mode {
            ds.deliver = false;
            ds.body.clear();
        }
        if let Some(tx) = &mut self.chunked {
            tx.deliver = false;
            tx.body.clear();
        }
    }

    /// Answers the message once the body is complete: writes the replies (or the
    /// oversize refusal), then starts the next transaction.
    pub fn resolve_data(&mut self, replies: Vec<DataReply>) {
        if self.waiting != Waiting::DataResult {
            return;
        }
        self.waiting = Waiting::Nothing;
        let bytes = self.body_bytes;
        self.record(|| Trace::Data(bytes));
        let oversized = self.cfg.reject_oversized
            && self.cfg.size > 0.0
            && (self.body_bytes as f64) > self.cfg.size;
        if oversized {
            self.record(|| Trace::Oversized(bytes));
            let count = if self.cfg.lmtp {
                self.envelope.rcpt_to.len()
            } else {
                1
            };
            let text = self.size_exceeded_text();
            for _ in 0..count {
                self.send(552, &text, Esc::TOO_BIG);
            }
            self.count_message(false);
        } else {
            self.count_message(replies.iter().any(|r| (200..300).contains(&r.code)));
            for reply in replies {
                self.send(reply.code, &reply.text, reply.esc);
            }
        }
        self.transactions += 1;
        self.unrecognized = 0;
        self.reset();
    }

    fn count_message(&mut self, accepted: bool) {
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

    /// Number of replies a DATA result must have (one per recipient under LMTP).
    #[cfg(test)]
    fn data_reply_count(&self) -> usize {
        if self.cfg.lmtp {
            self.envelope.rcpt_to.len()
        } else {
            1
        }
    }
}

/// Sets `key` of an XCLIENT/XFORWARD map (kept in the order keys first came).
fn set_field(map: &mut Vec<(String, XValue)>, key: String, value: XValue) {
    match map.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => map.push((key, value)),
    }
}

/// Records the value a field had before the first XCLIENT/XFORWARD changed it.
fn keep_default(map: &mut Vec<(String, XValue)>, key: &str, value: XValue) {
    if !map.iter().any(|(k, _)| k == key) {
        map.push((key.to_string(), value));
    }
}

/// `^[a-z0-9!#$%&'*+/=?^_`{|}~-]+;.` (case-insensitive): an addr-type, `;`, and at least
/// one more character that is not a line terminator.
fn is_valid_orcpt(value: &str) -> bool {
    let Some(semi) = value.find(';') else {
        return false;
    };
    let kind = &value[..semi];
    if kind.is_empty()
        || !kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b))
    {
        return false;
    }
    value[semi + 1..]
        .chars()
        .next()
        .is_some_and(|c| !matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(f: impl FnOnce(&mut Config)) -> Arc<Config> {
        let mut c = Config {
            name: "mx.test".into(),
            auth_optional: true,
            ..Config::default()
        };
        f(&mut c);
        Arc::new(c)
    }

    fn peer() -> Peer {
        Peer {
            local_address: "127.0.0.1".into(),
            local_port: 25,
            remote_address: "10.0.0.1".into(),
            remote_port: 4000,
        }
    }

    /// Greets, feeds `input` (in chunks of `split` bytes), answers every question with
    /// `accept`, and returns the replies after the greeting plus the bodies delivered.
    fn transcript_split(cfg: Arc<Config>, input: &[u8], split: usize) -> (String, Vec<Vec<u8>>) {
        let mut s = Session::new(cfg, peer());
        s.set_client_hostname("");
        s.reset();
        s.greet();
        s.output().clear();
        let mut bodies = Vec::new();
        let mut body = Vec::new();
        for chunk in input.chunks(split.max(1)) {
            s.input().extend_from_slice(chunk);
            loop {
                match s.step(true) {
                    Step::Idle => break,
                    Step::Close => {}
                    Step::Flush
                    | Step::DataStart
                    | Step::EmitConnect
                    | Step::StartTls
                    | Step::BodyAbort => {}
                    Step::Hook(_) => s.resolve_hook(HookOutcome::Accept),
                    Step::Body(b) => body.extend_from_slice(&b),
                    Step::BodyEnd(b) => {
                        body.extend_from_slice(&b);
                        bodies.push(std::mem::take(&mut body));
                        let n = s.data_reply_count();
                        s.resolve_data(vec![
                            DataReply {
                                code: 250,
                                text: "OK: message queued".into(),
                                esc: Esc::DATA_OK
                            };
                            n
                        ]);
                    }
                }
            }
        }
        (String::from_utf8_lossy(s.output()).into_owned(), bodies)
    }

    fn transcript(cfg: Arc<Config>, input: &str) -> String {
        transcript_split(cfg, input.as_bytes(), usize::MAX).0
    }

    #[test]
    fn table() {
        let plain = || cfg(|_| {});
        let cases: Vec<(Arc<Config>, &str, &str)> = vec![
            (plain(), "NOOP\r\n", "250 OK\r\n"),
            (plain(), "noop x y\n", "250 OK\r\n"),
            (plain(), "HELP\r\n", "214 See https://tools.ietf.org/html/rfc5321 for details\r\n"),
            (plain(), "VRFY\r\n", "501 Error: Syntax: VRFY address\r\n"),
            (plain(), "VRFY a\r\n", "252 Try to send something. No promises though\r\n"),
            (plain(), "HELO\r\n", "501 Error: Syntax: HELO hostname\r\n"),
            (plain(), "HELO a b\r\n", "501 Error: Syntax: HELO hostname\r\n"),
            (plain(), "HELO A\r\n", "250 mx.test Nice to meet you, [10.0.0.1]\r\n"),
            (
                plain(),
                "EHLO a\r\n",
                "250-mx.test Nice to meet you, [10.0.0.1]\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-AUTH LOGIN PLAIN\r\n250 STARTTLS\r\n",
            ),
            (
                cfg(|c| {
                    c.hide_esc = false;
                    c.hide_dsn = false;
                    c.size_text = Some("100".into());
                    c.size = 100.0;
                    c.disabled_commands = vec!["AUTH".into(), "STARTTLS".into()];
                }),
                "EHLO a\r\n",
                "250-mx.test Nice to meet you, [10.0.0.1]\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250 SIZE 100\r\n",
            ),
            (plain(), "MAIL FROM:<a@b.c>\r\n", "503 Error: send HELO/EHLO first\r\n"),
            (plain(), "HELO x\r\nRCPT TO:<a@b.c>\r\n", "250 mx.test Nice to meet you, [10.0.0.1]\r\n503 Error: need MAIL command\r\n"),
            (plain(), "HELO x\r\nDATA\r\n", "250 mx.test Nice to meet you, [10.0.0.1]\r\n503 Error: need RCPT command\r\n"),
            (
                plain(),
                "HELO x\r\nMAIL FROM:<a@b.c>\r\nMAIL FROM:<a@b.c>\r\n",
                "250 mx.test Nice to meet you, [10.0.0.1]\r\n250 Accepted\r\n503 Error: nested MAIL command\r\n",
            ),
            (
                plain(),
                "HELO x\r\nMAIL FROM:a@b.c\r\n",
                "250 mx.test Nice to meet you, [10.0.0.1]\r\n501 Error: Bad sender address syntax\r\n",
            ),
            (
                cfg(|c| c.hide_esc = false),
                "HELO x\r\nMAIL FROM:a@b.c\r\nMAIL FROM:<>\r\nRCPT TO:<>\r\n",
                "250 mx.test Nice to meet you, [10.0.0.1]\r\n501 5.1.7 Error: Bad sender address syntax\r\n250 2.1.0 Accepted\r\n501 5.1.3 Error: Bad recipient address syntax\r\n",
            ),
            (
                cfg(|c| {
                    c.size_text = Some("10".into());
                    c.size = 10.0;
                }),
                "HELO x\r\nMAIL FROM:<a@b.c> SIZE=11\r\nMAIL FROM:<a@b.c> SIZE=x\r\nMAIL FROM:<a@b.c> SIZE\r\n",
                "250 mx.test Nice to meet you, [10.0.0.1]\r\n552 Error: message exceeds fixed maximum message size 10\r\n501 Error: Bad message size syntax\r\n501 Error: SIZE parameter requires a value\r\n",
            ),
            (
                plain(),
                "HELO x\r\nMAIL FROM:<a@b.c> BODY=binarymime\r\nMAIL FROM:<a@b.c> SMTPUTF8=1\r\nMAIL FROM:<a@b.c> REQUIRETLS\r\nMAIL FROM:<a@b.c> A=1 A=2\r\n",
                "250 mx.test Nice to meet you, [10.0.0.1]\r\n501 Invalid BODY parameter value. Must be 7BIT or 8BITMIME\r\n501 Invalid SMTPUTF8 parameter. This flag does not accept a value\r\n530 REQUIRETLS not permitted on non-TLS connections\r\n501 Error: duplicate A parameter\r\n",
            ),
            (
                cfg(|c| c.hide_dsn = false),
                "HELO x\r\nMAIL FROM:<a@b.c> RET=X\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f> NOTIFY=NEVER,DELAY\r\nRCPT TO:<d@e.f> NOTIFY=X\r\nRCPT TO:<d@e.f> ORCPT=rfc822\r\n",
                "250 mx.test Nice to meet you, [10.0.0.1]\r\n501 Invalid RET parameter value. Must be FULL or HDRS\r\n250 Accepted\r\n501 Error: NOTIFY=NEVER cannot be combined with other values\r\n501 Error: NOTIFY parameter must be NEVER, SUCCESS, FAILURE, or DELAY\r\n501 Error: Bad ORCPT parameter syntax\r\n",
            ),
            (
                cfg(|c| c.max_recipients = 1),
                "HELO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nRCPT TO:<D@e.f>\r\nRCPT TO:<x@e.f>\r\n",
                "250 mx.test Nice to meet you, [10.0.0.1]\r\n250 Accepted\r\n250 Accepted\r\n250 Accepted\r\n452 Error: too many recipients\r\n",
            ),
            (plain(), "GET / HTTP/1.1\r\n", "421 HTTP requests not allowed\r\n"),
            (plain(), "QUIT\r\nNOOP\r\n", "221 Bye\r\n"),
            (plain(), "WIZ\r\nSHELL\r\nWIZ x\r\nSHELL\r\nKILL\r\n", "500 You are no wizard!\r\n500 Mere mortals must not mutter that mantra\r\n200 Please pass, oh mighty wizard\r\n500 Error: Invoking shell is not allowed. This incident will be reported.\r\n500 Can not kill Mom\r\n"),
            (plain(), "STARTTLS x\r\n", "501 Error: syntax: STARTTLS\r\n"),
            (cfg(|c| c.disabled_commands = vec!["NOOP".into()]), "NOOP\r\n", "500 Error: command not recognized\r\n"),
            (cfg(|c| c.lmtp = true), "EHLO x\r\n", "500 Error: EHLO not allowed in LMTP server\r\n"),
            (cfg(|c| c.lmtp = true), "LHLO\r\n", "501 Error: syntax: LHLO hostname\r\n"),
            (
                cfg(|c| c.auth_optional = false),
                "EHLO x\r\nMAIL FROM:<a@b.c>\r\n",
                "250-mx.test Nice to meet you, [10.0.0.1]\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-AUTH LOGIN PLAIN\r\n250 STARTTLS\r\n530 Error: authentication Required\r\n",
            ),
            (
                cfg(|c| c.helo_response = Some("%s|%s|%s".into())),
                "HELO x\r\n",
                "250 mx.test|[10.0.0.1]|\r\n",
            ),
            (
                cfg(|c| c.hide_esc = false),
                "XYZ\r\nEHLO\r\n",
                "500 5.5.2 Error: command not recognized\r\n501 Error: syntax: EHLO hostname\r\n",
            ),
        ];
        for (i, (c, input, want)) in cases.into_iter().enumerate() {
            assert_eq!(transcript(c, input), want, "case {i}: {input:?}");
        }
    }

    #[test]
    fn changed_options_apply_from_the_next_command() {
        let live = Arc::new(LiveConfig::new((*cfg(|_| {})).clone()));
        let mut s = Session::new(live.get(), peer());
        s.follow_config(Arc::clone(&live));
        s.set_client_hostname("");
        s.reset();
        s.greet();
        s.output().clear();
        let run = |s: &mut Session, line: &str| {
            s.input().extend_from_slice(line.as_bytes());
            while !matches!(s.step(true), Step::Idle) {}
            String::from_utf8_lossy(&std::mem::take(s.output())).into_owned()
        };
        assert_eq!(run(&mut s, "NOOP\r\n"), "250 OK\r\n");
        let mut changed = (*live.get()).clone();
        changed.disabled_commands = vec!["NOOP".into()];
        live.replace(changed);
        assert_eq!(
            run(&mut s, "NOOP\r\n"),
            "500 Error: command not recognized\r\n"
        );
    }

    #[test]
    fn unrecognized_limit() {
        let out = transcript(cfg(|_| {}), &"X\r\n".repeat(12));
        assert_eq!(
            out,
            format!(
                "{}421 Error: too many unrecognized commands\r\n",
                "500 Error: command not recognized\r\n".repeat(9)
            )
        );
    }

    #[test]
    fn unauthenticated_limit() {
        let out = transcript(cfg(|c| c.auth_optional = false), &"NOOP\r\n".repeat(11));
        assert_eq!(
            out,
            format!(
                "{}421 Error: too many unauthenticated commands\r\n",
                "250 OK\r\n".repeat(9)
            )
        );
    }

    #[test]
    fn command_too_long() {
        let c = cfg(|c| c.max_command_length = 10);
        assert_eq!(
            transcript(c.clone(), "NOOP 12345678\r\n"),
            "421 Error: Command line too long\r\n"
        );
        assert_eq!(transcript(c.clone(), "NOOP 123\r\n"), "250 OK\r\n");
        assert_eq!(
            transcript(c, "NOOP 1234567"),
            "421 Error: Command line too long\r\n"
        );
    }

    #[test]
    fn talk_too_soon() {
        let mut s = Session::new(cfg(|_| {}), peer());
        s.input().extend_from_slice(b"EHLO x\r\n");
        assert_eq!(s.step(true), Step::Close);
        assert_eq!(s.output().as_slice(), b"421 mx.test You talk too soon\r\n");
    }

    #[test]
    fn data_any_split() {
        let input = b"HELO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n..a\r\nb\n.c\r\n\r\n.\r\nNOOP\r\n";
        let want_out = "250 mx.test Nice to meet you, [10.0.0.1]\r\n250 Accepted\r\n250 Accepted\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 OK: message queued\r\n250 OK\r\n";
        let c = cfg(|c| c.hooks.data = true);
        for split in 1..input.len() {
            let (out, bodies) = transcript_split(c.clone(), input, split);
            assert_eq!(out, want_out, "split {split}");
            assert_eq!(
                bodies,
                vec![b".a\r\nb\n.c\r\n\r\n".to_vec()],
                "split {split}"
            );
        }
    }

    #[test]
    fn lmtp_replies_per_recipient() {
        let c = cfg(|c| c.lmtp = true);
        let out = transcript(c, "LHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nRCPT TO:<g@e.f>\r\nDATA\r\nx\r\n.\r\n");
        assert!(out.ends_with("354 End data with <CR><LF>.<CR><LF>\r\n250 OK: message accepted\r\n250 OK: message accepted\r\n"), "{out}");
    }

    #[test]
    fn whole_transactions_in_one_write_without_a_data_handler() {
        let one = "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\nbody\r\n.\r\n";
        let input = format!("HELO x\r\n{}NOOP\r\n", one.repeat(5));
        let out = transcript(cfg(|c| c.hooks.data = false), &input);
        assert_eq!(
            out.matches("250 OK: message queued\r\n").count(),
            5,
            "{out}"
        );
        assert!(
            out.ends_with("250 OK: message queued\r\n250 OK\r\n"),
            "{out}"
        );
    }

    #[test]
    fn oversized_rejected() {
        let c = cfg(|c| {
            c.size = 3.0;
            c.size_text = Some("3".into());
            c.reject_oversized = true;
            c.hide_esc = false;
        });
        let out = transcript(
            c,
            "HELO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\nabcdef\r\n.\r\n",
        );
        assert!(
            out.ends_with("552 5.3.4 Error: message exceeds fixed maximum message size 3\r\n"),
            "{out}"
        );
    }

    #[test]
    fn sync_tracks_envelope() {
        let mut s = Session::new(cfg(|_| {}), peer());
        s.set_client_hostname("host.example.");
        s.reset();
        s.greet();
        let first = s.take_sync();
        assert_eq!(
            first.view.as_ref().map(|v| &*v.client_hostname),
            Some("host.example")
        );
        s.input()
            .extend_from_slice(b"EHLO X\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n");
        assert_eq!(s.step(true), Step::Idle);
        let sync = s.take_sync();
        let view = sync.view.as_ref().map(|v| {
            (
                v.opening_command,
                v.host_name_appears_as.clone(),
                v.transmission_type,
            )
        });
        assert_eq!(view, Some((Some("EHLO"), Some("x".into()), "ESMTP")));
        assert_eq!(
            sync.mail_from.map(|m| m.parsed.address),
            Some("a@b.c".to_string())
        );
        assert_eq!(sync.rcpts.len(), 1);
        assert_eq!(
            s.take_sync(),
            SessionSync {
                generation: sync.generation,
                rcpt_from: 1,
                ..SessionSync::default()
            }
        );
    }
}
