//! TLS: STARTTLS and what the application learns about an established TLS session.

use super::{HookCall, HookOutcome, Session, Step, Trace, Waiting};
use crate::protocol::js_string::js_split_ws;
use crate::protocol::reply::Esc;

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

impl Session {
    /// `STARTTLS`: the handshake follows the `220` reply.
    pub(super) fn cmd_starttls(&mut self, line: &str) {
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
    /// STARTTLS, which also forgets the identity and HELO name and resets the session.
    /// Either way, [`Session::ask_secure`] comes next (for a secure session, once
    /// `onConnect` accepted it).
    pub fn tls_established(&mut self, info: TlsInfo, starttls: bool) {
        if starttls {
            // the logger sees the identity gone when it logs the upgrade
            self.clear_user();
            self.record(|| Trace::StartTls(info.name.clone()));
        }
        self.secure = true;
        self.tls = Some(Box::new(info));
        if !starttls {
            return;
        }
        if self.waiting == Waiting::Tls {
            self.waiting = Waiting::Nothing;
        }
        self.pos = self.input.len();
        self.hello_name = None;
        self.opening_command = None;
        self.reset();
    }

    /// The TLS session is up for the application (the caller sets `session.servername`):
    /// true when `onSecure` is to be asked (the caller sends [`HookCall::Secure`] and
    /// answers with [`Session::resolve_secure`]). After the greeting (STARTTLS) the
    /// session waits for the answer; before it, the connection holds the greeting back.
    pub fn ask_secure(&mut self) -> bool {
        if !self.hooks().secure {
            return false;
        }
        if self.ready {
            self.waiting = Waiting::Hook(Box::new(HookCall::Secure));
        }
        true
    }

    /// Answers `onSecure`: a rejection refuses the connection before the greeting, and
    /// after STARTTLS ends the session with the error's code (554 without one). An
    /// answer the session is not waiting for is ignored; true when it was applied.
    pub fn resolve_secure(&mut self, outcome: HookOutcome) -> bool {
        if self.ready {
            if !matches!(&self.waiting, Waiting::Hook(call) if **call == HookCall::Secure) {
                return false;
            }
            self.waiting = Waiting::Nothing;
        } else if self.closing {
            return false;
        }
        if let HookOutcome::Reject(code, message) = outcome {
            if self.ready {
                self.send(code.unwrap_or(554), &message, Esc::Default);
                self.close();
            } else {
                self.refuse(code, &message);
            }
        }
        true
    }

    /// True when the session runs over TLS (or counts as secure).
    pub fn is_secure(&self) -> bool {
        self.secure
    }
}
