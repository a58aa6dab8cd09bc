//! The normalized options object `index.js` builds from the user's options.

use napi_derive::napi;

use crate::protocol::config::Config;
use crate::protocol::host::normalize_address;
use crate::protocol::xclient::Trust;
use crate::server::tls::{Identity, TlsSettings};

/// Options as `index.js` hands them over, already normalized the way smtp-server's
/// constructor normalizes them (upper-cased lists, defaults applied).
#[napi(object)]
#[derive(Default)]
pub struct NativeOptions {
    /// Server name.
    pub name: String,
    /// Greeting banner.
    pub banner: Option<String>,
    /// LMTP mode.
    pub lmtp: bool,
    /// HELO/EHLO reply format.
    pub helo_response: Option<String>,
    /// `String(size)` when `size` is truthy.
    pub size_text: Option<String>,
    /// `Number(size) || 0`.
    pub size: f64,
    /// `hideSize`.
    pub hide_size: bool,
    /// `rejectOversized`.
    pub reject_oversized: bool,
    /// `hidePIPELINING`.
    pub hide_pipelining: bool,
    /// `hide8BITMIME`.
    pub hide_8bitmime: bool,
    /// `hideSMTPUTF8`.
    pub hide_smtputf8: bool,
    /// `hideENHANCEDSTATUSCODES`.
    pub hide_esc: bool,
    /// `hideDSN`.
    pub hide_dsn: bool,
    /// `hideREQUIRETLS`.
    pub hide_requiretls: bool,
    /// `hideSTARTTLS`.
    pub hide_starttls: bool,
    /// `hideCHUNKING === false`: offer BDAT.
    pub chunking: bool,
    /// `hideBINARYMIME`.
    pub hide_binarymime: bool,
    /// `disabledCommands`, normalized.
    pub disabled_commands: Vec<String>,
    /// `authMethods`, normalized.
    pub auth_methods: Vec<String>,
    /// `authOptional`.
    pub auth_optional: bool,
    /// `allowInsecureAuth`.
    pub allow_insecure_auth: bool,
    /// `authRequiredMessage` when it is a string.
    pub auth_required_message: Option<String>,
    /// `Number(maxRecipients) || 0`.
    pub max_recipients: f64,
    /// `maxCommandLength || 16384`.
    pub max_command_length: f64,
    /// `maxClients || 0`.
    pub max_clients: f64,
    /// `socketTimeout || 60000`.
    pub socket_timeout: f64,
    /// `closeTimeout || 30000`.
    pub close_timeout: f64,
    /// `maxAllowedUnauthenticatedCommands || 10`.
    pub max_unauthenticated: f64,
    /// `lenientAddressParsing`.
    pub lenient_address_parsing: bool,
    /// `rejectBareLineEndings`.
    pub reject_bare_line_endings: bool,
    /// `strictPipelining`.
    pub strict_pipelining: bool,
    /// `eventLoop` (on by default where the runtime's loop is libuv).
    pub event_loop: bool,
    /// Sessions start secure (`secure`, `secured` or `needsUpgrade`).
    pub secure: bool,
    /// A TLS handshake precedes every session.
    pub implicit_tls: bool,
    /// `SNICallback` is a function.
    pub sni_callback: bool,
    /// `useXClient || useXForward`.
    pub delay_connect: bool,
    /// `useProxy`, as `use_xclient`.
    pub use_proxy: Option<Vec<String>>,
    /// `useXClient`: null for nobody, a list of addresses (`*` for everyone).
    pub use_xclient: Option<Vec<String>>,
    /// `useXForward`, as `use_xclient`.
    pub use_xforward: Option<Vec<String>>,
    /// `disableReverseLookup`.
    pub disable_reverse_lookup: bool,
    /// A logger is set: protocol traffic is reported for it.
    pub trace: bool,
}

/// A trust option: `None` nobody, a list with `*` everyone, otherwise the listed peers.
pub fn trust(list: Option<Vec<String>>) -> Trust {
    match list {
        None => Trust::Nobody,
        Some(l) if l.iter().any(|e| e == "*") => Trust::Everyone,
        Some(l) => Trust::List(l.iter().map(|e| normalize_address(e)).collect()),
    }
}

fn count(v: f64) -> usize {
    if v.is_finite() && v > 0.0 {
        v.min(usize::MAX as f64) as usize
    } else {
        0
    }
}

impl NativeOptions {
    /// The session configuration these options describe.
    pub fn into_config(self) -> Config {
        Config {
            name: self.name,
            banner: self.banner,
            lmtp: self.lmtp,
            helo_response: self.helo_response,
            size_text: self.size_text,
            size: if self.size.is_finite() {
                self.size
            } else {
                0.0
            },
            hide_size: self.hide_size,
            reject_oversized: self.reject_oversized,
            hide_pipelining: self.hide_pipelining,
            hide_8bitmime: self.hide_8bitmime,
            hide_smtputf8: self.hide_smtputf8,
            hide_esc: self.hide_esc,
            hide_dsn: self.hide_dsn,
            hide_requiretls: self.hide_requiretls,
            hide_starttls: self.hide_starttls,
            chunking: self.chunking,
            hide_binarymime: self.hide_binarymime,
            disabled_commands: self.disabled_commands,
            auth_methods: self.auth_methods,
            auth_optional: self.auth_optional,
            allow_insecure_auth: self.allow_insecure_auth,
            auth_required_message: self.auth_required_message,
            max_recipients: count(self.max_recipients),
            max_command_length: match count(self.max_command_length) {
                0 => 16 * 1024,
                n => n,
            },
            max_clients: count(self.max_clients),
            socket_timeout_ms: match count(self.socket_timeout) {
                0 => 60_000,
                n => n as u64,
            },
            close_timeout_ms: match count(self.close_timeout) {
                0 => 30_000,
                n => n as u64,
            },
            max_unauthenticated: match count(self.max_unauthenticated) {
                0 => 10,
                n => n.min(u32::MAX as usize) as u32,
            },
            lenient_address_parsing: self.lenient_address_parsing,
            reject_bare_line_endings: self.reject_bare_line_endings,
            strict_pipelining: self.strict_pipelining,
            event_loop: self.event_loop,
            secure: self.secure,
            implicit_tls: self.implicit_tls,
            sni_callback: self.sni_callback,
            delay_connect: self.delay_connect,
            use_proxy: trust(self.use_proxy),
            use_xclient: trust(self.use_xclient),
            use_xforward: trust(self.use_xforward),
            disable_reverse_lookup: self.disable_reverse_lookup,
            trace: self.trace,
            hooks: Default::default(),
        }
    }
}

/// A certificate chain and key, PEM.
#[napi(object)]
pub struct NativeIdentity {
    /// PEM certificate chain.
    pub cert: String,
    /// PEM private key (unencrypted).
    pub key: String,
}

/// Identities for one SNI name.
#[napi(object)]
pub struct NativeSniEntry {
    /// Normalized server name.
    pub name: String,
    /// Its certificates.
    pub identities: Vec<NativeIdentity>,
}

/// TLS material and policy, normalized by `lib/tls.js`.
#[napi(object)]
pub struct NativeTls {
    /// Identities for names without their own.
    pub identities: Vec<NativeIdentity>,
    /// Per-name identities.
    pub sni: Vec<NativeSniEntry>,
    /// Trusted CA certificates (PEM) for client certificates.
    pub ca: Vec<String>,
    /// `requestCert`.
    pub request_cert: bool,
    /// `rejectUnauthorized`.
    pub reject_unauthorized: bool,
    /// `minVersion`.
    pub min_version: Option<String>,
    /// `maxVersion`.
    pub max_version: Option<String>,
}

fn identities(list: Vec<NativeIdentity>) -> Vec<Identity> {
    list.into_iter()
        .map(|i| Identity {
            cert: i.cert,
            key: i.key,
        })
        .collect()
}

impl NativeTls {
    /// The settings these options describe.
    pub fn into_settings(self) -> TlsSettings {
        TlsSettings {
            default: identities(self.identities),
            sni: self
                .sni
                .into_iter()
                .map(|e| (e.name, identities(e.identities)))
                .collect(),
            ca: self.ca,
            request_cert: self.request_cert,
            reject_unauthorized: self.reject_unauthorized,
            min_version: self.min_version,
            max_version: self.max_version,
        }
    }
}
