//! What the application's copy of the session is built from: read-only views of the
//! session and the [`Counts`] of changes its state alone does not show. What the copy
//! was last told, and so what it lacks, is kept by the connection (`server::mirror`).

use std::sync::Arc;

use super::{Address, Envelope, Peer, Session, TlsInfo};
use crate::protocol::xclient::XValue;

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
    pub(super) fn same_but_transaction(&self, other: &View) -> bool {
        self.peer == other.peer
            && self.client_hostname == other.client_hostname
            && self.opening_command == other.opening_command
            && self.host_name_appears_as == other.host_name_appears_as
            && self.transmission_type == other.transmission_type
            && self.remote_port == other.remote_port
    }
}

/// How often the session changed in ways its state alone does not show: the same
/// error text again, another WIZ, `session.user` cleared when it was already false,
/// an XCLIENT or XFORWARD that set a value it had. Each counter only grows (wrapping),
/// so whoever keeps a copy of the session tells a change by comparing counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Error replies (4xx and 5xx), each of which sets `session.error`.
    pub errors: u32,
    /// Accepted WIZ commands (`session.isWizard` after the first).
    pub wizard: u32,
    /// Times `session.user` became `false` (STARTTLS, XCLIENT ADDR or LOGIN=).
    pub user_clears: u32,
    /// Resets that changed the session's visible fields in more than the transaction
    /// counter (another reset may have changed them back).
    pub views: u32,
    /// MAIL FROM commands whose parameters went into the envelope (they set its flags,
    /// maybe to the values they had).
    pub mail_params: u32,
    /// XCLIENT commands applied.
    pub xclient: u32,
    /// XFORWARD commands applied.
    pub xforward: u32,
    /// Recipients accepted, each numbered with this count
    /// ([`Recipient::accepted`](super::Recipient::accepted)): one that replaced an
    /// earlier one with the same address shows only here. (Wide enough never to wrap,
    /// so no number is given twice.)
    pub rcpts: u64,
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
    /// The recipients the application's `envelope.rcptTo` lacks, each with its place
    /// there (in place of an earlier one with the same address, or at the end).
    pub rcpts: Vec<(usize, Address)>,
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

impl Session {
    /// The reset generation: a new one means a fresh envelope.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// How often the session changed in the ways [`Counts`] counts.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// `session.error`: the last error reply.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// `session.xClient`: what XCLIENT set.
    pub fn xclient(&self) -> &[(String, XValue)] {
        &self.xclient
    }

    /// `session.xForward`: what XFORWARD set.
    pub fn xforward(&self) -> &[(String, XValue)] {
        &self.xforward
    }

    /// The envelope of the transaction in progress.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The TLS session, once TLS is up.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_deref()
    }

    /// The session fields as of the last reset.
    pub fn view(&self) -> &View {
        &self.view
    }
}
