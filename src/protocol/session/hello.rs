//! The greeting and EHLO, HELO and LHLO.

use std::sync::Arc;

use super::{Command, Session, Trace};
use crate::protocol::js_string::is_control;
use crate::protocol::js_string::{js_split_ws, utf16_len};
use crate::protocol::reply::{write_multiline, Esc};

/// Longest HELO/EHLO argument accepted (UTF-16 code units, as JavaScript counts).
const MAX_HELO_HOSTNAME_LENGTH: usize = 300;

impl Session {
    /// Sends the greeting and starts accepting commands.
    pub fn greet(&mut self) {
        self.ready = true;
        self.send_banner();
    }

    /// The `220` greeting line (also after XCLIENT, which starts the session over).
    pub(super) fn send_banner(&mut self) {
        let proto = if self.cfg.lmtp { "LMTP" } else { "ESMTP" };
        let text = match &self.cfg.banner {
            Some(b) => format!("{} {} {}", self.cfg.name, proto, b),
            None => format!("{} {}", self.cfg.name, proto),
        };
        self.send(220, &text, Esc::Never);
    }

    /// The host name argument of HELO/EHLO/LHLO, lower-cased; `None` when refused.
    fn helo_argument(&mut self, line: &str, syntax_error: &str) -> Option<String> {
        let parts = js_split_ws(line);
        if parts.len() != 2 {
            self.send(501, syntax_error, Esc::Never);
            return None;
        }
        let host = parts[1];
        if utf16_len(host) > MAX_HELO_HOSTNAME_LENGTH || host.chars().any(is_control) {
            self.send(501, "Error: Bad hostname syntax", Esc::Never);
            return None;
        }
        Some(host.to_lowercase())
    }

    /// The first line of the HELO/EHLO answer (`heloResponse`).
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

    /// `EHLO hostname` (and LHLO): the greeting and the extensions on offer.
    pub(super) fn cmd_ehlo(&mut self, line: &str) {
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
        if cfg.chunking && self.is_supported(Command::Bdat) {
            lines.push("CHUNKING".into());
            if !cfg.hide_binarymime {
                lines.push("BINARYMIME".into());
            }
        }
        if !cfg.auth_methods.is_empty() && self.is_supported(Command::Auth) && !self.user {
            lines.push(format!("AUTH {}", cfg.auth_methods.join(" ")));
        }
        if !self.secure && self.is_supported(Command::StartTls) && !cfg.hide_starttls {
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
        if self.proxy_command_allowed(Command::XClient) {
            lines.push("XCLIENT NAME ADDR PORT PROTO HELO LOGIN".into());
        }
        if self.proxy_command_allowed(Command::XForward) {
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

    /// `HELO hostname`.
    pub(super) fn cmd_helo(&mut self, line: &str) {
        let Some(host) = self.helo_argument(line, "Error: Syntax: HELO hostname") else {
            return;
        };
        self.hello_name = Some(host.into());
        self.reset();
        let text = self.helo_line();
        self.send(250, &text, Esc::Never);
    }
}
