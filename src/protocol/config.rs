//! The options that shape a session, taken once from the JavaScript options object.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use super::xclient::Trust;

/// Which application handlers are defined; an undefined one is never called across.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookSet {
    /// `onConnect` is defined.
    pub connect: bool,
    /// `onMailFrom` is defined.
    pub mail_from: bool,
    /// `onRcptTo` is defined.
    pub rcpt_to: bool,
    /// `onData` is defined.
    pub data: bool,
    /// `onClose` is defined.
    pub close: bool,
    /// `onSecure` is defined.
    pub secure: bool,
    /// `onAuth` is defined.
    pub auth: bool,
    /// The server has `connect` listeners: the greeting waits until they ran.
    pub connect_event: bool,
}

/// The bits of a handler mask (JavaScript reads them through the binding's `hookBits()`).
pub mod hook_bit {
    /// `onConnect`.
    pub const CONNECT: u32 = 1;
    /// `onMailFrom`.
    pub const MAIL_FROM: u32 = 2;
    /// `onRcptTo`.
    pub const RCPT_TO: u32 = 4;
    /// `onData`.
    pub const DATA: u32 = 8;
    /// `onClose`.
    pub const CLOSE: u32 = 16;
    /// `onSecure`.
    pub const SECURE: u32 = 32;
    /// `onAuth`.
    pub const AUTH: u32 = 64;
    /// `connect` listeners.
    pub const CONNECT_EVENT: u32 = 128;
    /// The handlers a session waits for while serving commands.
    pub const ASKED: u32 = CONNECT | MAIL_FROM | RCPT_TO | DATA | SECURE | AUTH | CONNECT_EVENT;
}

impl HookSet {
    /// Builds the set from a bit mask of [`hook_bit`]s.
    pub fn from_mask(mask: u32) -> HookSet {
        HookSet {
            connect: mask & hook_bit::CONNECT != 0,
            mail_from: mask & hook_bit::MAIL_FROM != 0,
            rcpt_to: mask & hook_bit::RCPT_TO != 0,
            data: mask & hook_bit::DATA != 0,
            close: mask & hook_bit::CLOSE != 0,
            secure: mask & hook_bit::SECURE != 0,
            auth: mask & hook_bit::AUTH != 0,
            connect_event: mask & hook_bit::CONNECT_EVENT != 0,
        }
    }
}

/// Session options, normalized the way smtp-server's constructor normalizes them.
#[derive(Debug, Clone)]
pub struct Config {
    /// Server name used in the greeting and several replies.
    pub name: String,
    /// Text appended to the greeting.
    pub banner: Option<String>,
    /// LMTP mode.
    pub lmtp: bool,
    /// Format of the first HELO/EHLO reply line (`%s` placeholders).
    pub helo_response: Option<String>,
    /// `size` as printed in the EHLO reply, when the option is truthy.
    pub size_text: Option<String>,
    /// `Number(size)` (0 when unset or not a number).
    pub size: f64,
    /// Advertise SIZE without a number and skip the MAIL SIZE check.
    pub hide_size: bool,
    /// Refuse messages over `size` after DATA.
    pub reject_oversized: bool,
    /// Hide PIPELINING in EHLO.
    pub hide_pipelining: bool,
    /// Hide 8BITMIME in EHLO.
    pub hide_8bitmime: bool,
    /// Hide SMTPUTF8 in EHLO.
    pub hide_smtputf8: bool,
    /// Enhanced status codes off (the default).
    pub hide_esc: bool,
    /// DSN off (the default).
    pub hide_dsn: bool,
    /// REQUIRETLS not advertised (the default).
    pub hide_requiretls: bool,
    /// STARTTLS not advertised.
    pub hide_starttls: bool,
    /// CHUNKING (BDAT, RFC 3030) offered; off unless `hideCHUNKING: false`.
    pub chunking: bool,
    /// BINARYMIME not offered alongside CHUNKING.
    pub hide_binarymime: bool,
    /// Upper-cased, trimmed disabled command names.
    pub disabled_commands: Vec<String>,
    /// Upper-cased authentication mechanisms, in advertising order.
    pub auth_methods: Vec<String>,
    /// AUTH is optional.
    pub auth_optional: bool,
    /// AUTH allowed on plaintext even when STARTTLS is available.
    pub allow_insecure_auth: bool,
    /// Text of the 530 reply before authentication.
    pub auth_required_message: Option<String>,
    /// Maximum number of recipients (0 = no limit).
    pub max_recipients: usize,
    /// Longest accepted command line in bytes.
    pub max_command_length: usize,
    /// Maximum concurrent clients (0 = no limit).
    pub max_clients: usize,
    /// Idle timeout in milliseconds.
    pub socket_timeout_ms: u64,
    /// Grace period of `close()` in milliseconds.
    pub close_timeout_ms: u64,
    /// Commands allowed before authentication.
    pub max_unauthenticated: u32,
    /// Minimal MAIL/RCPT address checks.
    pub lenient_address_parsing: bool,
    /// A bare CR or LF in a command line closes the session; one in a DATA body (or a
    /// NUL byte there) refuses the message (`rejectBareLineEndings`).
    pub reject_bare_line_endings: bool,
    /// Bytes sent after DATA before its reply close the session (`strictPipelining`).
    pub strict_pipelining: bool,
    /// Connections with handlers to ask are served on the JavaScript thread's event
    /// loop where it can (`eventLoop`).
    pub event_loop: bool,
    /// Sessions start as secure.
    pub secure: bool,
    /// Every accepted socket does a TLS handshake before the session (`secure` without
    /// `needsUpgrade` or `secured`, or `needsUpgrade`).
    pub implicit_tls: bool,
    /// Certificates are chosen by the application's `SNICallback`.
    pub sni_callback: bool,
    /// The `connect` event waits for XCLIENT/XFORWARD or MAIL.
    pub delay_connect: bool,
    /// Peers that must send a PROXY header first.
    pub use_proxy: Trust,
    /// Peers allowed to use XCLIENT.
    pub use_xclient: Trust,
    /// Peers allowed to use XFORWARD.
    pub use_xforward: Trust,
    /// Skip the reverse DNS lookup.
    pub disable_reverse_lookup: bool,
    /// A logger is set: the session records [`super::session::Trace`] entries for it.
    pub trace: bool,
    /// Which handlers the application defined.
    pub hooks: HookSet,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "localhost".into(),
            banner: None,
            lmtp: false,
            helo_response: None,
            size_text: None,
            size: 0.0,
            hide_size: false,
            reject_oversized: false,
            hide_pipelining: false,
            hide_8bitmime: false,
            hide_smtputf8: false,
            hide_esc: true,
            hide_dsn: true,
            hide_requiretls: true,
            hide_starttls: false,
            chunking: false,
            hide_binarymime: false,
            disabled_commands: Vec::new(),
            auth_methods: vec!["LOGIN".into(), "PLAIN".into()],
            auth_optional: false,
            allow_insecure_auth: false,
            auth_required_message: None,
            max_recipients: 0,
            max_command_length: 16 * 1024,
            max_clients: 0,
            socket_timeout_ms: 60_000,
            close_timeout_ms: 30_000,
            max_unauthenticated: 10,
            lenient_address_parsing: false,
            reject_bare_line_endings: false,
            strict_pipelining: false,
            event_loop: false,
            secure: false,
            implicit_tls: false,
            sni_callback: false,
            delay_connect: false,
            use_proxy: Trust::Nobody,
            use_xclient: Trust::Nobody,
            use_xforward: Trust::Nobody,
            disable_reverse_lookup: false,
            trace: false,
            hooks: HookSet::default(),
        }
    }
}

/// The options of a running server, which the application may change: sessions look at
/// the version before each command and take the new options when it moved.
#[derive(Debug)]
pub struct LiveConfig {
    version: AtomicU32,
    current: RwLock<Arc<Config>>,
}

impl LiveConfig {
    /// Live options starting as `config`.
    pub fn new(config: Config) -> LiveConfig {
        LiveConfig {
            version: AtomicU32::new(0),
            current: RwLock::new(Arc::new(config)),
        }
    }

    /// The options now.
    pub fn get(&self) -> Arc<Config> {
        match self.current.read() {
            Ok(cfg) => Arc::clone(&cfg),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Changes the options; the handler set is kept (it follows its own mask).
    pub fn replace(&self, mut config: Config) {
        let mut current = match self.current.write() {
            Ok(cfg) => cfg,
            Err(poisoned) => poisoned.into_inner(),
        };
        config.hooks = current.hooks;
        *current = Arc::new(config);
        self.version.fetch_add(1, Ordering::Release);
    }

    /// Moves on with each change.
    pub fn version(&self) -> u32 {
        self.version.load(Ordering::Acquire)
    }
}
