//! What the application was last told about a session: the connection's side of
//! keeping the application's copy of the session up to date.

use crate::protocol::session::{Address, Counts, EnvelopeFlags, Question, Session, SessionSync};

/// What the application's copy of the session was last told, compared with the
/// session's state to find what it lacks.
#[derive(Debug, Default)]
pub struct Mirror {
    /// The reset generation last told.
    generation: u32,
    /// The session fields were told whole once.
    view: bool,
    /// The TLS session was told.
    tls: bool,
    /// `session.servername` is due (TLS is up for the application).
    servername_due: bool,
    /// The application's envelope has the default flags.
    default_flags: bool,
    /// The session's counts as of the last sync.
    counts: Counts,
    /// The application's envelope has the sender.
    mail: bool,
    /// The recipients the application's envelope holds, in order, by the number of
    /// their acceptance ([`Recipient::accepted`](crate::protocol::session::Recipient::accepted)).
    rcpts: Vec<u64>,
    /// Recipients accepted since the last sync that the application recorded itself.
    rcpts_recorded: u64,
}

impl Mirror {
    /// TLS is up for the application ([`Session::ask_secure`] was called):
    /// `session.servername` goes with the next sync.
    pub fn secured(&mut self) {
        self.servername_due = true;
    }

    /// The session applied an accepting answer to `question` (`onMailFrom`, or
    /// `onRcptTo` about the recipient for `rcpt_slot`, as
    /// [`Session::pending_rcpt_slot`] said before the answer): the application put
    /// the address into its envelope itself.
    pub fn recorded(&mut self, question: Question, rcpt_slot: Option<usize>, session: &Session) {
        match (question, rcpt_slot) {
            (Question::MailFrom, _) => self.mail = true,
            (Question::RcptTo, Some(slot)) => {
                // the recipient just accepted has the latest number; the application
                // puts it at `rcptTo[Math.min(slot, rcptTo.length)]`
                let latest = session.counts().rcpts;
                match self.rcpts.get_mut(slot) {
                    Some(known) => *known = latest,
                    None => self.rcpts.push(latest),
                }
                self.rcpts_recorded += 1;
            }
            _ => {}
        }
    }

    /// What the application's copy of `session` lacks; afterwards it counts as told.
    pub fn sync(&mut self, session: &Session) -> SessionSync {
        let generation = session.generation();
        let reset = generation != self.generation;
        self.generation = generation;
        let mut sync = SessionSync {
            generation,
            ..SessionSync::default()
        };
        let counts = session.counts();
        if reset {
            // the application keeps the last view it received: when only the counter
            // moved since, the counter is all it needs
            if !self.view || counts.views != self.counts.views {
                self.view = true;
                sync.view = Some(session.view().clone());
            } else {
                sync.transaction = Some(session.view().transaction);
            }
        }
        if !self.tls {
            if let Some(tls) = session.tls() {
                self.tls = true;
                sync.tls = Some(Box::new(tls.clone()));
            }
        }
        if reset {
            // the application makes a fresh envelope object
            self.default_flags = true;
            self.mail = false;
            self.rcpts.clear();
        }
        self.sync_envelope(session, counts, &mut sync);
        if counts.mail_params != self.counts.mail_params {
            let e = session.envelope();
            let default = !e.require_tls
                && e.body_type == "7bit"
                && !e.smtp_utf8
                && e.dsn_ret.is_none()
                && e.dsn_envid.is_none();
            if !(default && self.default_flags) {
                sync.envelope_flags = Some(EnvelopeFlags {
                    require_tls: e.require_tls,
                    body_type: e.body_type.to_string(),
                    smtp_utf8: e.smtp_utf8,
                    dsn_ret: e.dsn_ret.clone(),
                    dsn_envid: e.dsn_envid.clone(),
                });
            }
            self.default_flags = default;
        }
        if counts.errors != self.counts.errors {
            sync.error = session.error().map(str::to_string);
        }
        sync.wizard = counts.wizard != self.counts.wizard;
        if counts.xclient != self.counts.xclient {
            sync.xclient = Some(session.xclient().to_vec());
        }
        if counts.xforward != self.counts.xforward {
            sync.xforward = Some(session.xforward().to_vec());
        }
        sync.user_cleared = counts.user_clears != self.counts.user_clears;
        self.counts = counts;
        if std::mem::take(&mut self.servername_due) {
            sync.servername = Some(session.tls().and_then(|t| t.servername.clone()));
        }
        sync
    }

    /// The sender and the recipients the application's envelope lacks: a recipient
    /// accepted without asking may have replaced one anywhere in the list.
    fn sync_envelope(&mut self, session: &Session, counts: Counts, sync: &mut SessionSync) {
        let envelope = session.envelope();
        if !self.mail {
            if let Some(mail) = &envelope.mail_from {
                self.mail = true;
                sync.mail_from = Some(Address::clone(mail));
            }
        }
        let accepted = counts.rcpts.wrapping_sub(self.counts.rcpts);
        if accepted == std::mem::take(&mut self.rcpts_recorded) {
            // every recipient accepted since the last sync was the application's own
            // doing (or none was): nothing to compare
            return;
        }
        for (slot, r) in envelope.rcpt_to.iter().enumerate() {
            match self.rcpts.get_mut(slot) {
                Some(known) if *known == r.accepted => continue,
                Some(known) => *known = r.accepted,
                None => self.rcpts.push(r.accepted),
            }
            sync.rcpts.push((slot, r.address.clone()));
        }
    }
}
