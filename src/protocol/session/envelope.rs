//! The envelope: MAIL FROM and RCPT TO, their parameters, recipient de-duplication
//! and limits.

use std::borrow::Cow;
use std::collections::HashMap;

use super::{HookCall, Session, Step};
use crate::protocol::address::{parse_address_command, AddressCommand, ParamValue, ParsedAddress};
use crate::protocol::reply::Esc;

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

/// An accepted recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipient {
    /// The address as the application sees it.
    pub address: Address,
    /// Which acceptance put it here: the session's count of accepted recipients
    /// ([`Counts::rcpts`](super::Counts::rcpts)) once it was accepted. A later RCPT for
    /// the same address replaces it with a recipient of a higher number.
    pub accepted: u64,
}

/// The transaction state (`session.envelope`).
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Accepted sender (boxed: an idle session holds no room for one).
    pub mail_from: Option<Box<Address>>,
    /// Accepted recipients.
    pub rcpt_to: Vec<Recipient>,
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
    /// The place of each recipient in `rcpt_to`, by its lower-cased address (a
    /// transaction with many recipients looks each new one up at once).
    rcpt_index: HashMap<String, usize>,
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
            rcpt_index: HashMap::new(),
        }
    }
}

impl Session {
    /// Refuses a duplicate parameter, or one of `keys` given without a value.
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

    /// What is wrong with the MAIL FROM parameters, if anything (`552` stands for the
    /// declared SIZE over the limit).
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

    /// `MAIL FROM:<address> [parameters]`.
    pub(super) fn cmd_mail(&mut self, line: &str) {
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
        self.counts.mail_params = self.counts.mail_params.wrapping_add(1);
        if self.hooks().mail_from {
            self.ask(HookCall::MailFrom(addr));
        } else {
            self.accept_mail(addr);
        }
    }

    /// The sender is accepted.
    pub(super) fn accept_mail(&mut self, addr: Address) {
        self.envelope.mail_from = Some(Box::new(addr));
        self.send(250, "Accepted", Esc::MAIL_OK);
    }

    /// `RCPT TO:<address> [parameters]`.
    pub(super) fn cmd_rcpt(&mut self, line: &str) {
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
        let earlier = self
            .envelope
            .rcpt_index
            .get(&addr.parsed.address.to_lowercase())
            .copied();
        if self.cfg.max_recipients > 0
            && self.envelope.rcpt_to.len() >= self.cfg.max_recipients
            && earlier.is_none()
        {
            self.send(452, "Error: too many recipients", Esc::TOO_MANY_RCPT);
            return;
        }
        let slot = earlier.unwrap_or(self.envelope.rcpt_to.len());
        if self.hooks().rcpt_to {
            self.ask(HookCall::RcptTo {
                address: addr,
                slot,
            });
        } else {
            self.accept_rcpt(addr, slot);
        }
    }

    /// The recipient is accepted at `slot`: in place of an earlier one with the same
    /// address, or at the end.
    pub(super) fn accept_rcpt(&mut self, address: Address, slot: usize) {
        self.counts.rcpts += 1;
        let rcpt = Recipient {
            address,
            accepted: self.counts.rcpts,
        };
        let envelope = &mut self.envelope;
        match envelope.rcpt_to.get_mut(slot) {
            Some(earlier) => *earlier = rcpt,
            None => {
                let key = rcpt.address.parsed.address.to_lowercase();
                envelope.rcpt_to.push(rcpt);
                envelope.rcpt_index.insert(key, envelope.rcpt_to.len() - 1);
            }
        }
        self.send(250, "Accepted", Esc::RCPT_OK);
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
