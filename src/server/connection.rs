//! One task per connection: reads the socket into the session, writes its replies,
//! keeps the timers, and carries questions to the application and answers back.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{sleep_until, Instant, Sleep};

use super::hooks::{ConnId, Hooks};
use super::inbox::ConnMsg;
use super::inbox::Inbox;
use super::mirror::Mirror;
use super::prefixed::Prefixed;
use super::proxy::read_header;
use super::ready::ReadReady;
use super::stats;
use super::tls::{self, Transport};
use super::Server;
use super::ServerState;
use crate::protocol::host::{is_valid_hostname, normalize_address};
use crate::protocol::session::{
    DataAnswer, HookCall, HookOutcome, Peer, Question, Session, SessionSync, Step,
};
use tokio_rustls::rustls;

/// Body pieces in flight to the application before reading pauses.
const WINDOW: usize = 4;
/// The early-talker window before the greeting.
const EARLY_TALKER: Duration = Duration::from_millis(100);
/// How long a reverse lookup may take.
const REVERSE_LOOKUP_CAP: Duration = Duration::from_millis(1500);
/// Longest wait for a client to close its side after the server closed.
const HALF_CLOSE_CAP: Duration = Duration::from_secs(5);
/// How long a client that closed its side is still served (its pipelined commands).
const EOF_GRACE: Duration = Duration::from_secs(1);
/// Buffered input beyond which reading pauses while the application decides.
const READ_AHEAD: usize = 64 * 1024;

/// Where the connection is on its way to the greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The early-talker window runs until then.
    Early(Instant),
    /// Waiting for the reverse lookup until then.
    Reverse(Instant),
    /// Waiting for `onConnect`.
    Connecting,
    /// Waiting for `onSecure` before the greeting.
    Securing,
    /// Waiting for the `connect` listeners before the greeting.
    Announcing,
    /// Greeted.
    Ready,
}

/// A random session id: 80 bits as 16 base-32 digits (`[0-9a-v]`).
pub fn new_session_id() -> String {
    let mut bytes = [0u8; 10];
    if getrandom::fill(&mut bytes).is_err() {
        // fall back to the clock; ids only need to be unique enough for logs
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes.copy_from_slice(&nanos.to_le_bytes()[..10]);
    }
    let mut value = bytes
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    let mut digits = [b'0'; 16];
    for d in digits.iter_mut().rev() {
        let v = (value & 31) as u8;
        *d = if v < 10 { b'0' + v } else { b'a' + v - 10 };
        value >>= 5;
    }
    String::from_utf8_lossy(&digits).into_owned()
}

/// What happens before a session exists: the PROXY header and the implicit TLS
/// handshake, bounded by `socketTimeout`, capped by `maxClients`, and abandoned when the
/// server closes. `None` drops the connection.
async fn prologue<S>(
    server: Arc<Server>,
    stream: S,
    mut peer: Peer,
    timeout: Duration,
) -> Option<Started<S>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let cfg = server.config();
    let mut stream = Prefixed::new(stream);
    let proxy = cfg.use_proxy.allows(&peer.remote_address);
    if !proxy && !cfg.implicit_tls {
        return Some((Transport::Plain(stream), peer, None, Vec::new()));
    }
    if cfg.max_clients > 0 && server.pending.load(Ordering::SeqCst) >= cfg.max_clients {
        return None;
    }
    server.pending.fetch_add(1, Ordering::SeqCst);
    let mut state = server.state();
    let work = async {
        let mut params = Vec::new();
        if proxy {
            let header = tokio::time::timeout(timeout, read_header(&mut stream))
                .await
                .ok()
                .flatten()?;
            if let Some(source) = header.source {
                peer.remote_address = normalize_address(&source).into();
            }
            if let Some(port) = header.source_port {
                peer.remote_port = port;
            }
            if let Some((address, port)) = header.destination {
                peer.local_address = normalize_address(&address).into();
                peer.local_port = port;
            }
            params = header.params;
        }
        let mut transport = Transport::Plain(stream);
        let mut info = None;
        if cfg.implicit_tls {
            info = Some(handshake(&server, &mut transport, timeout, &peer).await?);
        }
        Some((transport, peer, info, params))
    };
    let result = tokio::select! {
        r = work => r,
        _ = super::stopped(&mut state) => None,
    };
    server.pending.fetch_sub(1, Ordering::SeqCst);
    result
}

/// Runs a server-side TLS handshake on `stream` (which must be plain), bounded by
/// `timeout`. Failures are reported as server errors and end the connection (`None`).
async fn handshake<S>(
    server: &Server,
    stream: &mut Transport<S>,
    timeout: Duration,
    peer: &Peer,
) -> Option<crate::protocol::session::TlsInfo>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Transport::Plain(plain) = std::mem::replace(stream, Transport::Switching) else {
        return None;
    };
    let Some(tls) = server.tls() else {
        stats::add(&server.stats.tls_failures, 1);
        server.error(0, "TLSError", "TLS is not configured", &peer.remote_address);
        return None;
    };
    let sni_callback = server.config().sni_callback;
    let accept = async {
        if !sni_callback {
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.config));
            return acceptor.accept(plain).await.map(|s| (s, None));
        }
        // read the ClientHello first, ask the application for the name's certificate
        let lazy =
            tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), plain);
        let start = lazy.await?;
        let name = start
            .client_hello()
            .server_name()
            .map(tls::normalize_servername);
        let chosen = match name {
            Some(n) => server.sni_lookup(&n).await,
            None => None,
        };
        let config = chosen
            .as_ref()
            .map_or_else(|| Arc::clone(&tls.config), |t| Arc::clone(&t.config));
        start.into_stream(config).await.map(|s| (s, chosen))
    };
    let result = tokio::time::timeout(timeout, accept).await;
    let (code, message) = match result {
        Ok(Ok((established, chosen))) => {
            let auth = chosen
                .as_ref()
                .map_or(tls.client_auth.as_deref(), |t| t.client_auth.as_deref());
            let info = tls::inspect(established.get_ref().1, auth);
            *stream = Transport::Tls(Box::new(established));
            stats::add(&server.stats.tls_handshakes, 1);
            return Some(info);
        }
        Ok(Err(err)) => match (tls::client_cert_refusal(&err), err.kind()) {
            (Some((code, message)), _) => (code.to_string(), message.to_string()),
            (
                None,
                io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe,
            ) => (
                "SocketError".to_string(),
                "Socket closed while initiating TLS".to_string(),
            ),
            (None, _) => (
                "TLSError".to_string(),
                format!("Failed to establish TLS session: {err}"),
            ),
        },
        Err(_) => (
            "ERR_TLS_HANDSHAKE_TIMEOUT".to_string(),
            "TLS handshake timeout".to_string(),
        ),
    };
    stats::add(&server.stats.tls_failures, 1);
    server.error(0, &code, &message, &peer.remote_address);
    None
}

/// The error codes smtp-server treats as a client simply going away.
fn error_code(err: &io::Error) -> &'static str {
    match err.kind() {
        io::ErrorKind::ConnectionReset => "ECONNRESET",
        io::ErrorKind::BrokenPipe => "EPIPE",
        io::ErrorKind::TimedOut => "ETIMEDOUT",
        io::ErrorKind::HostUnreachable => "EHOSTUNREACH",
        io::ErrorKind::NetworkUnreachable => "ENETUNREACH",
        io::ErrorKind::ConnectionAborted => "ECONNABORTED",
        _ => "EIO",
    }
}

fn is_quiet(code: &str) -> bool {
    matches!(
        code,
        "ECONNRESET" | "EPIPE" | "ETIMEDOUT" | "EHOSTUNREACH" | "ENETUNREACH"
    )
}

struct Conn<S> {
    id: ConnId,
    server: Arc<Server>,
    hooks: Arc<dyn Hooks>,
    stream: Transport<S>,
    session: Session,
    /// What the application was last told about the session.
    mirror: Mirror,
    rx: Arc<Inbox>,
    phase: Phase,
    timeout: Duration,
    deadline: Instant,
    in_flight: usize,
    early_result: Option<DataAnswer>,
    /// Streams aborted mid-session whose abort the application has not confirmed.
    unseen_aborts: u32,
    /// `onData` is due, and waits for the first body bytes to travel with it.
    pending_start: Option<Box<SessionSync>>,
    counted: bool,
    eof: bool,
    /// When a client that closed its side stops being served.
    eof_deadline: Option<Instant>,
    /// The one timer of the connection, armed for the earliest deadline. Activity only
    /// moves `deadline`; the timer, when it fires early, is armed again, so a busy
    /// connection does not touch the timer wheel for every command.
    timer: Pin<Box<Sleep>>,
    /// The last read was large: the client sends a body in big pieces.
    big_reads: bool,
}

/// Serves one accepted connection until it closes.
///
/// The stream and the addresses move into the boxed prologue right here, not into the
/// returned future: that future lives as long as the connection, and holds only the
/// server, the timeout and, once started, the connection.
pub fn run<S>(server: Arc<Server>, stream: S, peer: Peer) -> impl Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + ReadReady + Unpin + Send + 'static,
{
    server.open.fetch_add(1, Ordering::SeqCst);
    let timeout = Duration::from_millis(server.config().socket_timeout_ms.max(1));
    // boxed: the TLS and PROXY states are large and only live until the session starts
    let prologue = Box::pin(prologue(Arc::clone(&server), stream, peer, timeout));
    async move {
        let Some(started) = prologue.await else {
            server.open.fetch_sub(1, Ordering::SeqCst);
            server.report_if_closed();
            return;
        };
        start(&server, started, timeout).serve_to_end().await;
    }
}

/// Serves a connection over a socket the application handed over: taken as it is, with
/// no PROXY header and no implicit TLS handshake. The caller has counted it as open.
pub async fn run_attached<S>(server: Arc<Server>, stream: S, peer: Peer)
where
    S: AsyncRead + AsyncWrite + ReadReady + Unpin + Send + 'static,
{
    // `open` was counted by `Server::attach`
    let timeout = Duration::from_millis(server.config().socket_timeout_ms.max(1));
    let started = (
        Transport::Plain(Prefixed::new(stream)),
        peer,
        None,
        Vec::new(),
    );
    start(&server, started, timeout).serve_to_end().await;
}

/// Writes `out` and flushes it (TLS buffers records: the reply leaves now, not with the
/// next write). A socket that takes it at once never touches the timer; one that makes
/// the write wait arms the connection's timer for `timeout`, and the write fails when it
/// fires first. (The serving loop re-arms the timer for its own deadlines.)
async fn write_out<W>(
    stream: &mut W,
    timer: &mut Pin<Box<Sleep>>,
    out: &[u8],
    timeout: Duration,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut written = 0;
    let mut armed = false;
    std::future::poll_fn(|cx| {
        let progress = loop {
            if written < out.len() {
                match Pin::new(&mut *stream).poll_write(cx, &out[written..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => written += n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => break Poll::Pending,
                }
            } else {
                break Pin::new(&mut *stream).poll_flush(cx);
            }
        };
        if progress.is_ready() {
            return progress;
        }
        if !armed {
            armed = true;
            timer.as_mut().reset(Instant::now() + timeout);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "write timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// What the prologue hands to the session: the stream (after any PROXY header and
/// implicit TLS handshake), the addresses, the TLS parameters and the PROXY words.
type Started<S> = (
    Transport<Prefixed<S>>,
    Peer,
    Option<crate::protocol::session::TlsInfo>,
    Vec<String>,
);

/// Registers the connection, tells the application, and creates its session.
fn start<S>(server: &Arc<Server>, started: Started<S>, timeout: Duration) -> Conn<Prefixed<S>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (stream, peer, tls_info, proxy_params) = started;
    let cfg = server.config();
    let hooks = Arc::clone(server.hooks());
    let (id, rx) = server.register();
    let session_id = new_session_id();
    hooks.open(id, &session_id, &peer, cfg.secure, proxy_params);
    let live = server.live.fetch_add(1, Ordering::SeqCst) + 1;
    let mut session = Session::new(Arc::clone(&cfg), peer);
    session.follow_hooks(server.hook_mask());
    session.follow_config(server.live_config());
    if let Some(info) = tls_info {
        session.tls_established(info, false);
    }
    if cfg.max_clients > 0 && live > cfg.max_clients {
        session.refuse_too_many();
    }
    let now = Instant::now();
    Conn {
        id,
        server: Arc::clone(server),
        hooks,
        stream,
        session,
        mirror: Mirror::default(),
        rx,
        phase: Phase::Early(now + EARLY_TALKER),
        timeout,
        deadline: now + timeout,
        in_flight: 0,
        early_result: None,
        unseen_aborts: 0,
        pending_start: None,
        counted: true,
        eof: false,
        eof_deadline: None,
        timer: Box::pin(sleep_until(now + timeout)),
        big_reads: false,
    }
}

impl<S> Conn<S>
where
    S: AsyncRead + AsyncWrite + ReadReady + Unpin + Send + 'static,
{
    /// Serves the session, then ends the connection. (An async block rather than an
    /// async fn: a `mut self` parameter would be held twice in the future's state.)
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn would hold the connection twice"
    )]
    fn serve_to_end(mut self) -> impl Future<Output = ()> + Send {
        async move {
            self.serve().await;
            self.finish().await;
            self.end();
        }
    }

    /// The connection is over: the application hears of it last.
    fn end(mut self) {
        if self.pending_start.is_some() {
            // DATA was accepted but no body byte came before the end (a timeout, the
            // server closing): `onData` still gets its stream, which then fails
            self.abort_data(false);
        }
        self.server.unregister(self.id);
        let sync = self.sync();
        self.hooks.close(self.id, sync);
        self.server.open.fetch_sub(1, Ordering::SeqCst);
        self.server.report_if_closed();
    }
}

impl<S> Conn<S>
where
    S: AsyncRead + AsyncWrite + ReadReady + Unpin + Send + 'static,
{
    fn touch(&mut self) {
        self.deadline = Instant::now() + self.timeout;
    }

    fn stop_counting(&mut self) {
        if self.counted {
            self.counted = false;
            self.server.live.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Writes the pending replies. Errors end the connection.
    async fn flush(&mut self) -> io::Result<()> {
        // the logger hears of replies as they are written
        self.send_trace();
        let (accepted, rejected) = self.session.take_message_outcomes();
        stats::add(&self.server.stats.messages_accepted, u64::from(accepted));
        stats::add(&self.server.stats.messages_rejected, u64::from(rejected));
        if self.session.output().is_empty() {
            return Ok(());
        }
        let out = std::mem::take(self.session.output());
        stats::add(&self.server.stats.bytes_sent, out.len() as u64);
        let res = write_out(&mut self.stream, &mut self.timer, &out, self.timeout).await;
        self.touch();
        res
    }

    /// Steps the session until it waits; true when the connection should close.
    async fn drive(&mut self) -> io::Result<bool> {
        loop {
            if self.session.in_message() && self.in_flight >= WINDOW {
                return Ok(self.session.is_closing());
            }
            match self.session.step(self.in_flight == 0) {
                Step::Idle => return Ok(self.session.is_closing()),
                Step::Flush => self.flush().await?,
                Step::Close => {
                    self.stop_counting();
                }
                Step::Hook(call) => {
                    let sync = self.sync();
                    self.hooks.ask(self.id, *call, sync);
                }
                Step::StartTls => {
                    self.flush().await?;
                    let peer = self.session.peer().clone();
                    match Box::pin(handshake(
                        &self.server,
                        &mut self.stream,
                        self.timeout,
                        &peer,
                    ))
                    .await
                    {
                        Some(info) => {
                            self.touch();
                            self.session.tls_established(info, true);
                            self.secured();
                        }
                        None => {
                            self.eof = true;
                            self.session.close();
                        }
                    }
                }
                Step::DataStart => {
                    self.in_flight = 0;
                    self.early_result = None;
                    self.pending_start = Some(Box::new(self.sync()));
                }
                Step::Body(chunk) => {
                    self.in_flight += 1;
                    self.hand_body(chunk, false);
                }
                Step::BodyEnd(chunk) => {
                    self.in_flight = 0;
                    self.hand_body(chunk, true);
                    if let Some(answer) = self.early_result.take() {
                        self.session.resolve_data(answer);
                    }
                }
                Step::BodyAbort => {
                    self.in_flight = 0;
                    self.early_result = None;
                    self.unseen_aborts = self.unseen_aborts.saturating_add(1);
                    self.abort_data(true);
                }
                Step::EmitConnect => {
                    self.emit_connect();
                }
            }
        }
    }

    /// A body piece for the application: with the `onData` call when it is the first.
    fn hand_body(&mut self, chunk: Vec<u8>, end: bool) {
        let total = self.session.body_bytes();
        match self.pending_start.take() {
            Some(sync) => self
                .hooks
                .data_start(self.id, *sync, Some((chunk, end, total))),
            None => self.hooks.body(self.id, chunk, end, total),
        }
    }

    /// The session changes for an event to the application. What the session recorded
    /// for the logger goes first, so entries and events arrive in the order they happened.
    fn sync(&mut self) -> SessionSync {
        self.send_trace();
        self.mirror.sync(&self.session)
    }

    /// Hands what the session recorded for the logger to the application.
    fn send_trace(&mut self) {
        if self.session.config().trace {
            let entries = self.session.take_trace();
            if !entries.is_empty() {
                self.hooks.trace(self.id, entries);
            }
        }
    }

    /// Emits the `connect` event; without listeners it has no one to reach and is not
    /// sent. True when it was sent.
    fn emit_connect(&mut self) -> bool {
        if !self.session.hooks().connect_event {
            return false;
        }
        let sync = self.sync();
        let mut info = self.session.connect_info();
        info.wait = self.phase != Phase::Ready;
        self.hooks.connect_event(self.id, sync, info);
        true
    }

    /// The early-talker window is over: look the client up, then ask `onConnect`.
    fn after_early_window(&mut self) {
        if self.session.config().disable_reverse_lookup {
            self.after_reverse(None);
            return;
        }
        self.phase = Phase::Reverse(Instant::now() + REVERSE_LOOKUP_CAP);
        let ip = self.session.peer().remote_address.clone();
        self.hooks.reverse(self.id, &ip);
    }

    fn after_reverse(&mut self, name: Option<String>) {
        let name = match name {
            Some(n) if !n.is_empty() && !is_valid_hostname(&n) => {
                self.session.record_invalid_hostname(&n);
                String::new()
            }
            n => n.unwrap_or_default(),
        };
        self.session.set_client_hostname(&name);
        self.session.reset();
        if self.session.hooks().connect {
            self.phase = Phase::Connecting;
            let sync = self.sync();
            self.hooks.on_connect(self.id, sync);
        } else {
            self.session.record_connected();
            self.after_connect();
        }
    }

    /// `onConnect` accepted: a secure session asks `onSecure` before the greeting.
    fn after_connect(&mut self) {
        if self.session.is_secure() {
            self.secured();
        } else {
            self.greet();
        }
    }

    /// TLS is up for the application (implicit TLS once `onConnect` accepted, or after
    /// STARTTLS): asks `onSecure` if it is defined, else goes on (before the greeting,
    /// with the greeting). Its answer comes to [`Conn::on_secure`].
    fn secured(&mut self) {
        self.mirror.secured();
        if self.session.ask_secure() {
            if self.phase != Phase::Ready {
                self.phase = Phase::Securing;
            }
            let sync = self.sync();
            self.hooks.ask(self.id, HookCall::Secure, sync);
        } else if self.phase != Phase::Ready {
            self.greet();
        }
    }

    /// `onSecure` answered: the session applies it; before the greeting, an accepted
    /// session is greeted.
    fn on_secure(&mut self, outcome: HookOutcome) {
        if !self.session.resolve_secure(outcome) || self.phase != Phase::Securing {
            return;
        }
        if self.session.is_closing() {
            self.phase = Phase::Ready;
        } else {
            self.greet();
        }
    }

    fn greet(&mut self) {
        if self.session.take_connect_at_greeting() && self.emit_connect() {
            // the listeners run before the client sees the greeting, as in smtp-server
            self.phase = Phase::Announcing;
            return;
        }
        self.phase = Phase::Ready;
        self.session.greet();
    }

    fn on_message(&mut self, msg: ConnMsg) {
        match msg {
            ConnMsg::Reverse(name) => {
                if matches!(self.phase, Phase::Reverse(_)) {
                    self.after_reverse(name);
                }
            }
            ConnMsg::Hook(question, outcome) => match (self.phase, question) {
                (Phase::Announcing, Question::ConnectEvent) => {
                    self.phase = Phase::Ready;
                    self.session.greet();
                }
                (Phase::Connecting, Question::Connect) => match outcome {
                    HookOutcome::Accept => self.after_connect(),
                    HookOutcome::Reject(code, message) => {
                        self.phase = Phase::Ready;
                        self.session.refuse(code, &message);
                    }
                },
                (Phase::Securing | Phase::Ready, Question::Secure) => self.on_secure(outcome),
                (Phase::Ready, question) => {
                    let accepted = outcome == HookOutcome::Accept;
                    let rcpt_slot = self.session.pending_rcpt_slot();
                    if self.session.resolve_hook(question, outcome) && accepted {
                        self.mirror.recorded(question, rcpt_slot, &self.session);
                    }
                }
                // an answer to a question this connection is not waiting for
                _ => {}
            },
            ConnMsg::Data { .. } | ConnMsg::Ack if self.unseen_aborts > 0 => {
                // about a stream the application has not yet seen aborted
            }
            ConnMsg::AbortSeen => self.unseen_aborts = self.unseen_aborts.saturating_sub(1),
            ConnMsg::Data { answer, discard } => {
                if self.session.in_message() {
                    if discard {
                        self.session.discard_body();
                        self.in_flight = 0;
                    }
                    self.early_result = Some(answer);
                } else {
                    self.session.resolve_data(answer);
                }
            }
            ConnMsg::Auth(outcome) => self.session.resolve_auth(outcome),
            ConnMsg::Ack => self.in_flight = self.in_flight.saturating_sub(1),
            ConnMsg::Disabled(list) => self.session.set_disabled_override(list),
            ConnMsg::Send(code, text) => self.session.send_external(code, &text),
            ConnMsg::Raw(bytes) => self.session.send_raw(&bytes),
            ConnMsg::Close => self.session.close(),
            ConnMsg::State(state) => self.on_state(state),
        }
    }

    /// Follows the server's state. The first look and the inbox may both bring the same
    /// change: applying it again changes nothing.
    fn on_state(&mut self, state: ServerState) {
        match state {
            ServerState::Running => {}
            ServerState::Closing => self.session.set_server_closing(),
            ServerState::Terminating => self.session.shutdown(),
        }
    }

    /// The message ended unfinished (the client left mid-DATA, or `reset`: its BDAT
    /// transaction was reset): `onData` still gets its stream, which is destroyed.
    fn abort_data(&mut self, reset: bool) {
        if let Some(sync) = self.pending_start.take() {
            self.hooks.data_start(self.id, *sync, None);
        }
        self.hooks.data_abort(self.id, reset);
    }

    fn report(&mut self, err: &io::Error) {
        let code = error_code(err);
        if is_quiet(code) && !self.session.in_transaction() {
            return;
        }
        let remote = self.session.peer().remote_address.clone();
        let message = format!(
            "{} {}",
            if code == "EPIPE" { "write" } else { "read" },
            code
        );
        self.server.error(self.id, code, &message, &remote);
    }

    fn may_read(&self) -> bool {
        if self.eof || self.session.is_closing() {
            return false;
        }
        if self.session.in_message() && self.in_flight >= WINDOW {
            return false;
        }
        !(self.session.is_waiting() && self.session.has_input_over(READ_AHEAD))
    }

    async fn serve(&mut self) {
        // later changes arrive in the inbox
        self.on_state(self.server.current_state());
        loop {
            match self.drive().await {
                Ok(false) => {}
                Ok(true) => return,
                Err(e) => {
                    self.report(&e);
                    return;
                }
            }
            if let Err(e) = self.flush().await {
                self.report(&e);
                return;
            }
            if self.session.is_closing() {
                return;
            }
            if self.eof {
                if self.session.in_message() {
                    self.abort_data(false);
                    return;
                }
                if !self.session.is_waiting() {
                    return;
                }
            }
            if !self.session.in_message() && !self.session.is_waiting() {
                self.session.shrink();
            }
            let phase_deadline = match self.phase {
                Phase::Early(t) | Phase::Reverse(t) => Some(t),
                _ => None,
            };
            let wake = [phase_deadline, self.eof_deadline]
                .into_iter()
                .flatten()
                .fold(self.deadline, Instant::min);
            if self.timer.is_elapsed() || wake < self.timer.deadline() {
                self.timer.as_mut().reset(wake);
            }
            let may_read = self.may_read();
            // large reads only once a body arrives in large pieces: a small message
            // never allocates (and frees) a large buffer
            let reserve = match (self.session.in_data(), self.big_reads) {
                (true, true) => 256 * 1024,
                (true, false) => 8 * 1024,
                (false, _) => 512,
            };
            tokio::select! {
                biased;
                msg = self.rx.recv() => self.on_message(msg),
                r = read_some(&mut self.stream, self.session.input(), reserve), if may_read => {
                    match r {
                        Ok(0) => {
                            // the client is done sending: what it sent before is still served,
                            // for a short while
                            self.eof = true;
                            self.eof_deadline = Some(Instant::now() + EOF_GRACE.min(self.timeout));
                        }
                        Ok(n) => {
                            stats::add(&self.server.stats.bytes_received, n as u64);
                            self.big_reads = n >= 4 * 1024;
                            self.touch();
                        }
                        Err(e) => {
                            if self.session.in_message() {
                                self.abort_data(false);
                            }
                            self.report(&e);
                            return;
                        }
                    }
                }
                _ = self.timer.as_mut() => {
                    let now = Instant::now();
                    if self.eof_deadline.is_some_and(|t| now >= t) {
                        return;
                    }
                    match self.phase {
                        Phase::Early(t) if now >= t => self.after_early_window(),
                        Phase::Reverse(t) if now >= t => self.after_reverse(None),
                        _ => {}
                    }
                    if now >= self.deadline && !self.session.on_timeout() {
                        self.touch();
                    }
                }
            }
        }
    }

    /// Ends the connection: writes what is left, closes our side, and gives the client
    /// a bounded time to close its side.
    async fn finish(&mut self) {
        self.stop_counting();
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
        if self.eof {
            return;
        }
        let linger = self.timeout.min(HALF_CLOSE_CAP);
        self.timer.as_mut().reset(Instant::now() + linger);
        let mut scratch = vec![0u8; 4096];
        loop {
            tokio::select! {
                r = self.stream.read(&mut scratch) => match r {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
                _ = self.timer.as_mut() => return,
            }
        }
    }
}

/// Reads once into `buf`, growing it by `reserve` bytes first. A buffer released while
/// the connection was idle is only taken again once input is there.
async fn read_some<S: AsyncRead + ReadReady + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    reserve: usize,
) -> io::Result<usize> {
    if buf.capacity() == 0 {
        // moved in as `&mut S`, so the future needs `S: Send`, not `S: Sync`
        let stream = &mut *stream;
        std::future::poll_fn(move |cx| stream.poll_read_ready(cx)).await?;
    }
    if buf.capacity() - buf.len() < reserve / 2 {
        buf.reserve(reserve);
    }
    stream.read_buf(buf).await
}
