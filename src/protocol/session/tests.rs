//! Transcripts of whole sessions: bytes in, replies and bodies out.

use super::*;
use crate::protocol::config::{hook_bit, LiveConfig};
use crate::server::mirror::Mirror;

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
                Step::Hook(call) => {
                    s.resolve_hook(call.question(), HookOutcome::Accept);
                }
                Step::Body(b) => body.extend_from_slice(&b),
                Step::BodyEnd(b) => {
                    body.extend_from_slice(&b);
                    bodies.push(std::mem::take(&mut body));
                    s.resolve_data(DataAnswer::Whole(DataResult::Accepted(Some(
                        "OK: message queued".into(),
                    ))));
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
    let out = transcript(
        c,
        "LHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nRCPT TO:<g@e.f>\r\nDATA\r\nx\r\n.\r\n",
    );
    assert!(out.ends_with("354 End data with <CR><LF>.<CR><LF>\r\n250 OK: message accepted\r\n250 OK: message accepted\r\n"), "{out}");
}

#[test]
fn an_answer_to_another_question_is_ignored() {
    let mut s = Session::new(cfg(|c| c.hooks.mail_from = true), peer());
    s.set_client_hostname("");
    s.reset();
    s.greet();
    s.output().clear();
    s.input()
        .extend_from_slice(b"HELO x\r\nMAIL FROM:<a@b.c>\r\n");
    let mut asked = None;
    loop {
        match s.step(true) {
            Step::Idle => break,
            Step::Hook(call) => asked = Some(call.question()),
            _ => {}
        }
    }
    assert_eq!(asked, Some(Question::MailFrom));
    for other in [Question::RcptTo, Question::Secure, Question::Auth] {
        let answered = s.resolve_hook(other, HookOutcome::Reject(Some(550), "no".into()));
        assert!(!answered && s.is_waiting(), "{other:?} answered onMailFrom");
    }
    assert!(s.resolve_hook(Question::MailFrom, HookOutcome::Accept));
    assert!(!s.is_waiting());
    while s.step(true) != Step::Idle {}
    let out = String::from_utf8_lossy(s.output()).into_owned();
    assert!(!out.contains("550"), "{out}");
    assert!(out.ends_with("250 Accepted\r\n"), "{out}");
}

fn tls_info() -> TlsInfo {
    TlsInfo {
        name: "TLS_AES_128_GCM_SHA256".into(),
        standard_name: "TLS_AES_128_GCM_SHA256".into(),
        version: "TLSv1.3".into(),
        servername: None,
        authorized: false,
        authorization_error: None,
        peer_certificate: None,
    }
}

#[test]
fn on_secure_is_asked_and_answered_the_same_way_before_and_after_the_greeting() {
    let secure_hook = || cfg(|c| c.hooks.secure = true);
    // implicit TLS: before the greeting the session does not wait (early talkers are
    // answered), and a refusal replaces the greeting
    let mut s = Session::new(secure_hook(), peer());
    s.tls_established(tls_info(), false);
    assert!(s.ask_secure());
    assert!(!s.is_waiting());
    assert!(s.resolve_secure(HookOutcome::Reject(Some(530), "no".into())));
    assert!(s.is_closing());
    assert_eq!(String::from_utf8_lossy(s.output()), "530 no\r\n");
    assert!(
        !s.resolve_secure(HookOutcome::Accept),
        "a closed session takes no answer"
    );
    // STARTTLS: the session waits for the answer, and only for onSecure's
    let mut s = Session::new(secure_hook(), peer());
    s.set_client_hostname("");
    s.reset();
    s.greet();
    s.output().clear();
    s.input().extend_from_slice(b"EHLO x\r\nSTARTTLS\r\n");
    while s.step(true) != Step::Idle {}
    s.tls_established(tls_info(), true);
    assert!(s.ask_secure());
    assert!(s.is_waiting());
    s.resolve_hook(Question::MailFrom, HookOutcome::Accept);
    assert!(
        s.is_waiting(),
        "onMailFrom's answer does not answer onSecure"
    );
    s.resolve_hook(Question::Secure, HookOutcome::Accept);
    assert!(!s.is_waiting());
    assert!(!s.resolve_secure(HookOutcome::Accept), "answered once");
    assert!(!s.is_closing());
}

/// The replies after the `354` of one message to `rcpts` recipients that `onData`
/// answers with `answer`.
fn data_answer_replies(lmtp: bool, rcpts: usize, answer: DataAnswer) -> String {
    let mut s = Session::new(
        cfg(|c| {
            c.lmtp = lmtp;
            c.hooks.data = true;
        }),
        peer(),
    );
    s.set_client_hostname("");
    s.reset();
    s.greet();
    let rcpt_lines: String = (0..rcpts)
        .map(|i| format!("RCPT TO:<r{i}@e.f>\r\n"))
        .collect();
    let hello = if lmtp { "LHLO" } else { "HELO" };
    let input = format!("{hello} x\r\nMAIL FROM:<a@b.c>\r\n{rcpt_lines}DATA\r\nx\r\n.\r\n");
    s.input().extend_from_slice(input.as_bytes());
    let mut answer = Some(answer);
    loop {
        match s.step(true) {
            Step::Idle => break,
            Step::BodyEnd(_) => {
                if let Some(answer) = answer.take() {
                    s.resolve_data(answer);
                }
            }
            _ => {}
        }
    }
    let out = String::from_utf8_lossy(s.output()).into_owned();
    let start = out
        .find("354 ")
        .map_or(0, |i| i + out[i..].find("\r\n").map_or(0, |j| j + 2));
    out[start..].to_string()
}

#[test]
fn the_engine_makes_the_replies_of_an_on_data_answer() {
    use DataResult::{Accepted, Refused};
    let refused = || Refused(None, "Error: no".to_string());
    // one result: once per recipient under LMTP, with the protocol's default text
    assert_eq!(
        data_answer_replies(true, 2, DataAnswer::Whole(Accepted(None))),
        "250 OK: message accepted\r\n250 OK: message accepted\r\n"
    );
    assert_eq!(
        data_answer_replies(false, 2, DataAnswer::Whole(Accepted(None))),
        "250 OK: message queued\r\n"
    );
    assert_eq!(
        data_answer_replies(true, 2, DataAnswer::Whole(refused())),
        "450 Error: no\r\n450 Error: no\r\n"
    );
    // a list: cut or filled up to the recipients under LMTP, its first entry under SMTP
    assert_eq!(
        data_answer_replies(
            true,
            3,
            DataAnswer::PerRecipient(vec![Accepted(None), Refused(Some(552), "full".into())])
        ),
        "250 OK: message accepted\r\n552 full\r\n451 Error: no delivery result for this recipient\r\n"
    );
    assert_eq!(
        data_answer_replies(
            true,
            1,
            DataAnswer::PerRecipient(vec![Accepted(Some("one".into())), refused()])
        ),
        "250 one\r\n"
    );
    assert_eq!(
        data_answer_replies(
            false,
            1,
            DataAnswer::PerRecipient(vec![Accepted(None), refused()])
        ),
        "250 OK: message accepted\r\n"
    );
    assert_eq!(
        data_answer_replies(false, 1, DataAnswer::PerRecipient(Vec::new())),
        "250 OK: message queued\r\n"
    );
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
    let mut mirror = Mirror::default();
    s.set_client_hostname("host.example.");
    s.reset();
    s.greet();
    let first = mirror.sync(&s);
    assert_eq!(
        first.view.as_ref().map(|v| &*v.client_hostname),
        Some("host.example")
    );
    s.input()
        .extend_from_slice(b"EHLO X\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n");
    assert_eq!(s.step(true), Step::Idle);
    let sync = mirror.sync(&s);
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
        mirror.sync(&s),
        SessionSync {
            generation: sync.generation,
            ..SessionSync::default()
        }
    );
}

#[test]
fn mirror_tells_repeated_changes() {
    let mut s = Session::new(cfg(|_| {}), peer());
    let mut mirror = Mirror::default();
    s.reset();
    s.greet();
    let _ = mirror.sync(&s);
    for _ in 0..2 {
        // the same error reply, WIZ and MAIL parameters again are told again
        s.input()
            .extend_from_slice(b"EHLO x\r\nFOO\r\nWIZ abc\r\nMAIL FROM:<a@b.c> BODY=8BITMIME\r\n");
        assert_eq!(s.step(true), Step::Idle);
        let sync = mirror.sync(&s);
        assert_eq!(
            sync.error.as_deref(),
            Some("500 Error: command not recognized")
        );
        assert!(sync.wizard);
        assert_eq!(
            sync.envelope_flags.map(|f| f.body_type),
            Some("8bitmime".to_string())
        );
        let quiet = mirror.sync(&s);
        assert_eq!((quiet.error, quiet.wizard), (None, false));
        assert_eq!(quiet.envelope_flags, None);
    }
}

/// The application's envelope as `lib/session-view.js` applies syncs to it and
/// `lib/handlers.js` records what a handler accepted.
#[derive(Default)]
struct AppEnvelope {
    generation: u32,
    mail: Option<Address>,
    rcpts: Vec<Address>,
}

impl AppEnvelope {
    fn apply(&mut self, sync: SessionSync) -> SessionSync {
        if sync.generation != self.generation {
            *self = AppEnvelope {
                generation: sync.generation,
                ..AppEnvelope::default()
            };
        }
        if let Some(mail) = &sync.mail_from {
            self.mail = Some(mail.clone());
        }
        for (slot, address) in &sync.rcpts {
            match self.rcpts.get_mut(*slot) {
                Some(earlier) => *earlier = address.clone(),
                None => self.rcpts.push(address.clone()),
            }
        }
        sync
    }

    /// Holds what `s`'s envelope holds.
    fn assert_matches(&self, s: &Session) {
        let envelope = s.envelope();
        assert_eq!(self.mail.as_ref(), envelope.mail_from.as_deref());
        let rcpts: Vec<&Address> = envelope.rcpt_to.iter().map(|r| &r.address).collect();
        assert_eq!(self.rcpts.iter().collect::<Vec<_>>(), rcpts);
    }
}

/// Feeds `input` to `s` as the connection does: a sync for `app` before every question
/// and at DATA, `answer` for every question, and an accepted address recorded by `app`
/// itself and so by `mirror`.
fn serve_app(
    s: &mut Session,
    mirror: &mut Mirror,
    app: &mut AppEnvelope,
    input: &str,
    answer: impl Fn(&HookCall) -> HookOutcome,
) {
    s.input().extend_from_slice(input.as_bytes());
    loop {
        match s.step(true) {
            Step::Idle => break,
            Step::Hook(call) => {
                app.apply(mirror.sync(s));
                let question = call.question();
                let outcome = answer(&call);
                let accepted = outcome == HookOutcome::Accept;
                let rcpt_slot = s.pending_rcpt_slot();
                if s.resolve_hook(question, outcome) && accepted {
                    match *call {
                        HookCall::MailFrom(address) => app.mail = Some(address),
                        HookCall::RcptTo { address, slot } => match app.rcpts.get_mut(slot) {
                            Some(earlier) => *earlier = address,
                            None => app.rcpts.push(address),
                        },
                        _ => {}
                    }
                    mirror.recorded(question, rcpt_slot, s);
                }
            }
            Step::DataStart => {
                app.apply(mirror.sync(s));
            }
            Step::BodyEnd(_) => s.resolve_data(DataAnswer::Whole(DataResult::Accepted(None))),
            _ => {}
        }
    }
}

#[test]
fn mirror_follows_recipients_handlers_accepted() {
    let mut s = Session::new(cfg(|_| {}), peer());
    let hooks = Arc::new(AtomicU32::new(hook_bit::MAIL_FROM | hook_bit::RCPT_TO));
    s.follow_hooks(Arc::clone(&hooks));
    s.reset();
    s.greet();
    let mut mirror = Mirror::default();
    let mut app = AppEnvelope::default();
    let accept = |_: &HookCall| HookOutcome::Accept;
    let told = |app: &mut AppEnvelope, mirror: &mut Mirror, s: &Session| {
        let sync = app.apply(mirror.sync(s));
        app.assert_matches(s);
        let told: Vec<(usize, String)> = sync
            .rcpts
            .iter()
            .map(|(slot, a)| (*slot, a.parsed.address.clone()))
            .collect();
        (sync.mail_from.is_some(), told)
    };
    let lines = "EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<dup@example.com> X-N=1\r\nRCPT TO:<other@example.com> X-N=2\r\n";
    serve_app(&mut s, &mut mirror, &mut app, lines, accept);
    // the handlers accepted both, and the application recorded them
    assert_eq!(told(&mut app, &mut mirror, &s), (false, vec![]));

    // the handler is removed: the same address again replaces the first recipient,
    // and the application is told that one, at its place (the second stays its own)
    hooks.store(0, Ordering::Relaxed);
    let lines = "RCPT TO:<DUP@example.com> X-N=3\r\n";
    serve_app(&mut s, &mut mirror, &mut app, lines, accept);
    let first = vec![(0, "DUP@example.com".to_string())];
    assert_eq!(told(&mut app, &mut mirror, &s), (false, first));

    // back: a handler accepts a replacement, then refuses a recipient
    hooks.store(hook_bit::RCPT_TO, Ordering::Relaxed);
    let lines = "RCPT TO:<OTHER@example.com> X-N=4\r\n";
    serve_app(&mut s, &mut mirror, &mut app, lines, accept);
    assert_eq!(told(&mut app, &mut mirror, &s), (false, vec![]));
    let refuse = |_: &HookCall| HookOutcome::Reject(None, "No".into());
    serve_app(
        &mut s,
        &mut mirror,
        &mut app,
        "RCPT TO:<c@example.com>\r\n",
        refuse,
    );
    assert_eq!(told(&mut app, &mut mirror, &s), (false, vec![]));

    // without a handler, a recipient the same as the one it replaces is told all the same
    hooks.store(0, Ordering::Relaxed);
    let lines = "RCPT TO:<OTHER@example.com> X-N=4\r\n";
    serve_app(&mut s, &mut mirror, &mut app, lines, accept);
    let last = vec![(1, "OTHER@example.com".to_string())];
    assert_eq!(told(&mut app, &mut mirror, &s), (false, last));

    // a new transaction starts with an empty list
    let lines =
        "RSET\r\nMAIL FROM:<b@example.com>\r\nRCPT TO:<dup@example.com>\r\nDATA\r\nx\r\n.\r\n";
    serve_app(&mut s, &mut mirror, &mut app, lines, accept);
    assert_eq!(told(&mut app, &mut mirror, &s), (false, vec![]));
    let lines = "MAIL FROM:<c@example.com>\r\nRCPT TO:<e@example.com>\r\n";
    serve_app(&mut s, &mut mirror, &mut app, lines, accept);
    let first = vec![(0, "e@example.com".to_string())];
    assert_eq!(told(&mut app, &mut mirror, &s), (true, first));
}

/// The malformed end-of-data sequences smtpsmug sends (its `--list-tests`, but the
/// pipelining one), each after a line of text and followed by more text and the real end.
const SMUGGLING_ENDINGS: [(&str, &str); 10] = [
    ("\n.\n", "bare <LF>"),
    ("\r.\r", "bare <CR>"),
    ("\r.\n", "bare <CR>"),
    ("\n.\r", "bare <LF>"),
    ("\n.\r\n", "bare <LF>"),
    ("\r\n.\n", "bare <LF>"),
    ("\r.\r\n", "bare <CR>"),
    ("\r\n.\r", "bare <CR>"),
    ("\r\n\0.\r\n", "NUL character"),
    ("\r\n.\0\r\n", "NUL character"),
];

#[test]
fn bare_line_endings_refuse_the_message_after_its_end() {
    const HEAD: &str = "EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n";
    for (ending, what) in SMUGGLING_ENDINGS {
        let input = format!("{HEAD}Subject: x\r\n\r\nbefore{ending}after\r\n.\r\nNOOP\r\n");
        let strict = cfg(|c| {
            c.reject_bare_line_endings = true;
            c.hooks.data = true;
            c.hide_esc = false;
        });
        let (out, bodies) = transcript_split(strict, input.as_bytes(), usize::MAX);
        assert!(
            out.ends_with(&format!(
                "354 End data with <CR><LF>.<CR><LF>\r\n550 5.5.2 Error: {what} received\r\n250 2.0.0 OK\r\n"
            )),
            "{ending:?}: {out}"
        );
        assert!(bodies.is_empty(), "{ending:?}: the body reached its end");
        // byte by byte too: a CR at the end of one read and its LF in the next
        let strict = cfg(|c| c.reject_bare_line_endings = true);
        let (out, _) = transcript_split(strict, input.as_bytes(), 1);
        assert!(
            out.contains(&format!("550 Error: {what} received\r\n250 OK\r\n")),
            "{ending:?}: {out}"
        );
        // off by default: the sequence stays in the body, only CRLF.CRLF ends it
        let (out, bodies) =
            transcript_split(cfg(|c| c.hooks.data = true), input.as_bytes(), usize::MAX);
        assert!(
            out.ends_with("250 OK: message queued\r\n250 OK\r\n"),
            "{ending:?}: {out}"
        );
        let body = format!("Subject: x\r\n\r\nbefore{ending}after\r\n").replace("\r\n..", "\r\n.");
        assert_eq!(bodies, vec![body.into_bytes()], "{ending:?}");
    }
    // CRLF only, split anywhere: accepted
    let clean = format!("{HEAD}a\r\nb\r\n.\r\n");
    for split in [1, 2, 3, 7] {
        let strict = cfg(|c| {
            c.reject_bare_line_endings = true;
            c.hooks.data = true;
        });
        let (out, bodies) = transcript_split(strict, clean.as_bytes(), split);
        assert!(
            out.ends_with("250 OK: message queued\r\n"),
            "split {split}: {out}"
        );
        assert_eq!(bodies, vec![b"a\r\nb\r\n".to_vec()]);
    }
}

#[test]
fn bare_line_endings_in_commands_close_the_session() {
    let strict = || cfg(|c| c.reject_bare_line_endings = true);
    assert_eq!(
        transcript(strict(), "NOOP\r\nNOOP\nNOOP\r\n"),
        "250 OK\r\n550 Error: bare <LF> received\r\n"
    );
    assert_eq!(
        transcript(strict(), "NOOP\rNOOP\r\nNOOP\r\n"),
        "550 Error: bare <CR> received\r\n"
    );
    assert_eq!(
        transcript(cfg(|_| {}), "NOOP\nNOOP\r\n"),
        "250 OK\r\n250 OK\r\n"
    );
}

#[test]
fn lmtp_refuses_a_bare_line_ending_once_per_recipient() {
    let c = cfg(|c| {
        c.lmtp = true;
        c.reject_bare_line_endings = true;
    });
    let out = transcript(
        c,
        "LHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nRCPT TO:<g@e.f>\r\nDATA\r\nx\ny\r\n.\r\n",
    );
    assert!(
        out.ends_with("550 Error: bare <LF> received\r\n550 Error: bare <LF> received\r\n"),
        "{out}"
    );
}

#[test]
fn strict_pipelining_refuses_bytes_sent_ahead_of_the_354() {
    let strict = || {
        cfg(|c| {
            c.strict_pipelining = true;
            c.hooks.data = true;
            c.hide_esc = false;
        })
    };
    const ENVELOPE: &str = "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n";
    // smtpsmug's pipelining test: the second message's DATA, body and end in one go
    let first = format!("EHLO x\r\n{ENVELOPE}DATA\r\n");
    let rest = format!("one\r\n.\r\n{ENVELOPE}DATA\r\ntwo\r\n.\r\nNOOP\r\n");
    let mut s = Session::new(strict(), peer());
    s.set_client_hostname("");
    s.reset();
    s.greet();
    s.output().clear();
    let mut bodies = 0;
    for part in [first.as_bytes(), rest.as_bytes()] {
        s.input().extend_from_slice(part);
        loop {
            match s.step(true) {
                Step::Idle => break,
                Step::BodyEnd(_) => {
                    bodies += 1;
                    s.resolve_data(DataAnswer::Whole(DataResult::Accepted(None)));
                }
                _ => {}
            }
        }
    }
    let out = String::from_utf8_lossy(s.output()).into_owned();
    assert!(
        out.ends_with("354 End data with <CR><LF>.<CR><LF>\r\n250 2.6.0 OK: message queued\r\n250 2.1.0 Accepted\r\n250 2.1.5 Accepted\r\n554 5.5.0 Error: SMTP protocol synchronization\r\n"),
        "{out}"
    );
    assert_eq!(bodies, 1);
    assert!(s.is_closing());
    // a client that waits for the 354 is served
    let waits = format!("EHLO x\r\n{ENVELOPE}DATA\r\n");
    let (out, _) = transcript_split(strict(), waits.as_bytes(), usize::MAX);
    assert!(
        out.ends_with("354 End data with <CR><LF>.<CR><LF>\r\n"),
        "{out}"
    );
}
