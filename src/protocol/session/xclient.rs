//! XCLIENT and XFORWARD (Postfix): a trusted proxy passes on what it knows of the client.

use super::{AuthRequest, Command, Session, Step, Trace};
use crate::protocol::reply::Esc;
use crate::protocol::xclient::{js_number, parse_params, XValue};

impl Session {
    /// True when the client may use XCLIENT or XFORWARD (`command`): it is trusted
    /// for it, the command is not disabled, and XCLIENT has not changed its address.
    pub(super) fn proxy_command_allowed(&self, command: Command) -> bool {
        let trust = if command == Command::XClient {
            &self.cfg.use_xclient
        } else {
            &self.cfg.use_xforward
        };
        !self.xclient.iter().any(|(k, _)| k == "ADDR")
            && trust.allows(&self.original_remote)
            && self.is_supported(command)
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

    /// The checks XCLIENT and XFORWARD share (a trusted peer, no transaction, valid
    /// parameters); `None` when one failed and was answered.
    fn proxy_params(
        &mut self,
        command: Command,
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

    /// `XCLIENT attribute=value...`.
    pub(super) fn cmd_xclient(&mut self, line: &str) {
        let Some(params) = self.proxy_params(
            Command::XClient,
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
        self.counts.xclient = self.counts.xclient.wrapping_add(1);
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
    pub(super) fn finish_xclient(&mut self) {
        self.reset();
        self.send_banner();
    }

    /// `XFORWARD attribute=value...`.
    pub(super) fn cmd_xforward(&mut self, line: &str) {
        let Some(params) = self.proxy_params(
            Command::XForward,
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
        self.counts.xforward = self.counts.xforward.wrapping_add(1);
        self.reset();
        if has_addr {
            self.can_emit_connect = false;
            self.queue.push_back(Step::EmitConnect);
        }
        self.send(250, "OK", Esc::Default);
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
