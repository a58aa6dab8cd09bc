//! AUTH: PLAIN, LOGIN, XOAUTH2 and CRAM-MD5, and the answers of `onAuth` (also for
//! XCLIENT LOGIN).

use super::{Command, HookCall, Session, Waiting};
use crate::protocol::js_string::{js_split_ws, trim_js};
use crate::protocol::reply::Esc;
use crate::protocol::sasl;

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
pub(super) enum AuthStep {
    Plain,
    LoginUsername,
    LoginPassword(String),
    Xoauth2,
    Xoauth2Error,
    CramMd5(String),
}

impl Session {
    /// `AUTH mechanism [initial-response]`.
    pub(super) fn cmd_auth(&mut self, line: &str) {
        let args = js_split_ws(line);
        let method = args.get(1).map(|m| m.to_uppercase()).unwrap_or_default();
        let rest: Vec<&str> = args.iter().skip(2).copied().collect();
        if !self.secure
            && self.is_supported(Command::StartTls)
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

    /// Sends a `334` challenge and waits for the client's answer.
    fn auth_prompt(&mut self, step: AuthStep, challenge: &str) {
        self.auth_step = Some(step);
        self.send(334, challenge, Esc::Default);
    }

    /// A line of an AUTH exchange, with smtp-server's checks for an ordinary command line.
    pub(super) fn auth_continuation(
        &mut self,
        step: AuthStep,
        line: &str,
        command: Option<Command>,
    ) {
        if !self.admit(command) {
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

    /// The PLAIN credentials (initial response or continuation).
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

    /// The LOGIN user name; the password is asked for next.
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

    /// The XOAUTH2 token.
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
    pub(super) fn auth_ask(&mut self, mut request: AuthRequest) {
        request.transmission_type = self.transmission_type(true).to_string();
        if self.hooks().auth {
            self.ask(HookCall::Auth(request));
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

    /// Answers AUTH (or finishes XCLIENT LOGIN) with the application's outcome.
    pub(super) fn finish_auth(&mut self, request: &AuthRequest, outcome: AuthOutcome) {
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
}
