//! The napi binding: the native server class used by `index.js`, option parsing, and
//! the [`Hooks`] implementation that sends events to JavaScript.

#[cfg(unix)]
mod event_loop;
pub mod events;
pub mod json;
pub mod options;

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{Array, Buffer, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{sys, Env, Result, Status};
use napi_derive::napi;

use crate::protocol::config::{hook_bit, Config, HookSet};
use crate::protocol::host::normalize_address;
use crate::protocol::session::{
    AuthOutcome, ConnectInfo, DataAnswer, DataResult, HookCall, HookOutcome, Peer, Question,
    SessionSync, Trace,
};
use crate::server::hooks::{ConnId, Hooks};
use crate::server::inbox::ConnMsg;
use crate::server::listener::{self, Bound, ListenAddr};
use crate::server::stats::{self, Stats};
use crate::server::tls::{self, Tls};
use crate::server::Server;
use crate::server::ServerState;
use events::{Encoded, Event, EventKind, JsArgs};
use options::{NativeOptions, NativeTls};

type Dispatch = ThreadsafeFunction<(), (), JsArgs, Status, false, false, 0>;

/// Events waiting for the JavaScript thread.
#[derive(Default)]
struct Outbox(Mutex<Vec<Encoded>>);

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Encoded>> {
        match self.0.lock() {
            Ok(q) => q,
            Err(p) => p.into_inner(),
        }
    }

    /// Queues an event; true when the queue was empty (the JavaScript thread must be called).
    fn push(&self, event: Encoded) -> bool {
        let mut queue = self.lock();
        queue.push(event);
        queue.len() == 1
    }

    fn take(&self) -> Vec<Encoded> {
        std::mem::take(&mut *self.lock())
    }
}

/// Sends events to the JavaScript dispatcher: one call carries every event queued until
/// the JavaScript thread takes them. The call is made through the threadsafe function,
/// or, for events of connections served on the event loop, directly once the loop's
/// callback has drained them.
struct JsHooks {
    tsfn: Dispatch,
    outbox: Arc<Outbox>,
    /// The dispatcher, for direct calls on the JavaScript thread.
    #[cfg(unix)]
    dispatch: napi::bindgen_prelude::FunctionRef<JsArgs, ()>,
    /// The JavaScript thread's loop, once connections are served there.
    #[cfg(unix)]
    event_loop: std::sync::OnceLock<Arc<event_loop::EventLoop>>,
    /// This, for the loop to call back.
    #[cfg(unix)]
    me: std::sync::Weak<JsHooks>,
}

impl JsHooks {
    fn emit(&self, event: Event) {
        if self.outbox.push(events::encode(event)) {
            #[cfg(unix)]
            if let (Some(l), Some(me)) = (self.event_loop.get(), self.me.upgrade()) {
                if l.defer(me) {
                    return;
                }
            }
            self.tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

#[cfg(unix)]
impl event_loop::Deferred for JsHooks {
    fn run(&self, env: &Env) -> Result<()> {
        let queued = self.outbox.take();
        if queued.is_empty() {
            return Ok(());
        }
        self.dispatch.borrow_back(env)?.call(events::to_js(queued))
    }
}

impl Hooks for JsHooks {
    fn open(&self, conn: ConnId, session_id: &str, peer: &Peer, secure: bool, proxy: Vec<String>) {
        self.emit(Event::Open {
            conn,
            id: session_id.to_string(),
            peer: peer.clone(),
            secure,
            proxy,
        });
    }
    fn reverse(&self, conn: ConnId, ip: &str) {
        self.emit(Event::Reverse {
            conn,
            ip: ip.to_string(),
        });
    }
    fn on_connect(&self, conn: ConnId, sync: SessionSync) {
        self.emit(Event::OnConnect { conn, sync });
    }
    fn connect_event(&self, conn: ConnId, sync: SessionSync, info: ConnectInfo) {
        self.emit(Event::ConnectEvent { conn, sync, info });
    }
    fn ask(&self, conn: ConnId, call: HookCall, sync: SessionSync) {
        self.emit(Event::Address { conn, call, sync });
    }
    fn data_start(&self, conn: ConnId, sync: SessionSync, first: Option<(Vec<u8>, bool, u64)>) {
        self.emit(Event::DataStart { conn, sync, first });
    }
    fn body(&self, conn: ConnId, chunk: Vec<u8>, end: bool, total: u64) {
        self.emit(Event::Body {
            conn,
            chunk,
            end,
            total,
        });
    }
    fn data_abort(&self, conn: ConnId, reset: bool) {
        self.emit(Event::DataAbort { conn, reset });
    }
    fn error(&self, conn: ConnId, code: &str, message: &str, remote_address: &str) {
        self.emit(Event::Error {
            conn,
            code: code.to_string(),
            message: message.to_string(),
            remote_address: remote_address.to_string(),
        });
    }
    fn trace(&self, conn: ConnId, entries: Vec<Trace>) {
        self.emit(Event::Trace { conn, entries });
    }
    fn close(&self, conn: ConnId, sync: SessionSync) {
        self.emit(Event::Close { conn, sync });
    }
    fn sni(&self, id: u32, servername: &str) {
        self.emit(Event::Sni {
            id,
            servername: servername.to_string(),
        });
    }
    fn server_closed(&self) {
        self.emit(Event::ServerClosed);
    }
    fn pipe_write(&self, pipe: u32, data: Vec<u8>) {
        self.emit(Event::PipeWrite { pipe, data });
    }
    fn pipe_end(&self, pipe: u32) {
        self.emit(Event::PipeEnd { pipe });
    }
    fn pipe_drain(&self, pipe: u32) {
        self.emit(Event::PipeDrain { pipe });
    }
}

/// Where `listen()` ended up.
#[napi(object)]
pub struct AddressInfo {
    /// IP address, or the socket path for a Unix socket.
    pub address: String,
    /// `IPv4`, `IPv6` or `unix`.
    pub family: String,
    /// Port (0 for a Unix socket).
    pub port: u32,
}

/// What `listen()` binds.
#[napi(object)]
pub struct ListenOptions {
    /// TCP port.
    pub port: Option<u32>,
    /// Host to bind.
    pub host: Option<String>,
    /// Unix socket path.
    pub path: Option<String>,
    /// Listen backlog.
    pub backlog: Option<i32>,
    /// IPv6 only.
    pub ipv6_only: Option<bool>,
    /// SO_REUSEPORT.
    pub reuse_port: Option<bool>,
}

/// The addresses of a socket handed to `server.connect()`.
#[napi(object)]
pub struct NativePeer {
    /// The client's address.
    pub remote_address: String,
    /// The client's port.
    pub remote_port: u32,
    /// The local address.
    pub local_address: String,
    /// The local port.
    pub local_port: u32,
}

/// What `onData` said about one recipient, in a list of results.
#[napi(object)]
pub struct NativeDataResult {
    /// 0 accepts; any other code refuses (-1: no code given).
    pub code: i32,
    /// The reply text (undefined: the default one).
    pub text: Option<String>,
}

/// The bit of each handler in the masks `listen()`, `attach()` and `setHooks()` take.
#[napi(object)]
pub struct HookBits {
    /// `onConnect`.
    pub on_connect: u32,
    /// `onMailFrom`.
    pub on_mail_from: u32,
    /// `onRcptTo`.
    pub on_rcpt_to: u32,
    /// `onData`.
    pub on_data: u32,
    /// `onClose`.
    pub on_close: u32,
    /// `onSecure`.
    pub on_secure: u32,
    /// `onAuth`.
    pub on_auth: u32,
    /// The server has `connect` listeners (the greeting waits for them).
    pub connect_listeners: u32,
}

/// The handler bits, as the protocol engine reads them.
#[napi]
pub fn hook_bits() -> HookBits {
    HookBits {
        on_connect: hook_bit::CONNECT,
        on_mail_from: hook_bit::MAIL_FROM,
        on_rcpt_to: hook_bit::RCPT_TO,
        on_data: hook_bit::DATA,
        on_close: hook_bit::CLOSE,
        on_secure: hook_bit::SECURE,
        on_auth: hook_bit::AUTH,
        connect_listeners: hook_bit::CONNECT_EVENT,
    }
}

/// The kinds of `onAuth` answers [`NativeServer::complete_auth`] takes.
#[napi]
pub enum AuthAnswer {
    /// Authenticated.
    Success = 0,
    /// Refused: a code, a message and the `data` JSON (XOAUTH2's challenge).
    Failure = 1,
    /// The handler failed: a code and a message.
    Error = 2,
    /// XCLIENT LOGIN answered with a bare callback: carry on unauthenticated.
    Skip = 3,
}

/// Slots per answer in [`NativeServer::answer`].
const ANSWER_SLOTS: u32 = 5;

/// One `onData` result: code 0 accepts, any other refuses (-1: no code given).
fn data_result(code: i32, text: Option<String>) -> DataResult {
    if code == 0 {
        DataResult::Accepted(text)
    } else {
        DataResult::Refused(u16::try_from(code).ok(), text.unwrap_or_default())
    }
}

/// The native half of an `SMTPServer`.
#[napi]
pub struct NativeServer {
    config: Mutex<Config>,
    tls: Mutex<Option<Tls>>,
    running: Mutex<Option<Running>>,
    stats: Arc<Stats>,
}

/// `server.stats()`: counters since the server was created (numbers stay exact up to
/// 2^53), and the connections open now.
#[napi(object)]
pub struct NativeStats {
    /// Connections open now.
    pub connections: u32,
    /// Connections accepted.
    pub connections_total: f64,
    /// Messages answered with a 2xx (under LMTP: for at least one recipient).
    pub messages_accepted: f64,
    /// Messages refused (every recipient, under LMTP).
    pub messages_rejected: f64,
    /// Bytes read from clients (after TLS).
    pub bytes_received: f64,
    /// Bytes written to clients (before TLS).
    pub bytes_sent: f64,
    /// TLS handshakes completed.
    pub tls_handshakes: f64,
    /// TLS handshakes that failed.
    pub tls_failures: f64,
    /// Errors reported through the `error` event.
    pub errors: f64,
    /// Connections served on the JavaScript thread's event loop (`eventLoop`).
    pub event_loop_connections: f64,
}

fn build_tls(settings: Option<NativeTls>) -> Result<Option<Tls>> {
    match settings {
        None => Ok(None),
        Some(s) => tls::build(&s.into_settings())
            .map(Some)
            .map_err(|e| napi::Error::new(Status::InvalidArg, e)),
    }
}

/// A listening (or closing) server and its event channel.
#[derive(Clone)]
struct Running {
    server: Arc<Server>,
    hooks: Arc<JsHooks>,
}

impl Running {
    /// Starts serving connections on the JavaScript thread's loop once the options ask
    /// for it (`eventLoop`, which JavaScript leaves off where the loop is not libuv).
    fn follow_event_loop(&self, env: Env) {
        #[cfg(unix)]
        if self.server.config().event_loop && self.hooks.event_loop.get().is_none() {
            if let Some(l) = event_loop::EventLoop::of(env.raw()) {
                let _ = self.hooks.event_loop.set(Arc::clone(&l));
                self.server
                    .set_host(Some(l as Arc<dyn crate::server::Host>));
            }
        }
        #[cfg(not(unix))]
        let _ = env;
    }
}

/// Why `listen()` failed: Node's error code and text for it.
#[napi(object)]
pub struct ListenFailure {
    /// `EADDRINUSE`, `EACCES`, `EADDRNOTAVAIL`, `ENOTFOUND` (the host did not
    /// resolve), `EIO` (anything else) or `ERR_SERVER_ALREADY_LISTEN`.
    pub code: String,
    /// What failed, in Node's words where Node has them, else the system's.
    pub text: String,
}

impl ListenFailure {
    fn new(code: &str, text: impl Into<String>) -> Self {
        ListenFailure {
            code: code.into(),
            text: text.into(),
        }
    }

    fn from_io(err: &std::io::Error) -> Self {
        match err.kind() {
            std::io::ErrorKind::AddrInUse => Self::new("EADDRINUSE", "address already in use"),
            std::io::ErrorKind::PermissionDenied => Self::new("EACCES", "permission denied"),
            std::io::ErrorKind::AddrNotAvailable => {
                Self::new("EADDRNOTAVAIL", "address not available")
            }
            std::io::ErrorKind::NotFound => Self::new("ENOTFOUND", err.to_string()),
            _ => Self::new("EIO", err.to_string()),
        }
    }
}

/// What `listen()` did: the address it bound, or why it could not.
#[napi(object)]
pub struct Listening {
    /// Where the server listens.
    pub address: Option<AddressInfo>,
    /// Why it does not.
    pub failure: Option<ListenFailure>,
}

impl Listening {
    fn failed(failure: ListenFailure) -> Self {
        Listening {
            address: None,
            failure: Some(failure),
        }
    }
}

#[napi]
impl NativeServer {
    /// Creates the native server from normalized options.
    #[napi(constructor)]
    pub fn new(options: NativeOptions, tls: Option<NativeTls>) -> Result<Self> {
        Ok(NativeServer {
            config: Mutex::new(options.into_config()),
            tls: Mutex::new(build_tls(tls)?),
            running: Mutex::new(None),
            stats: Arc::default(),
        })
    }

    /// The live counters.
    #[napi]
    pub fn stats(&self) -> NativeStats {
        let s = &self.stats;
        let n = |c| stats::read(c) as f64;
        NativeStats {
            connections: self.connection_count(),
            connections_total: n(&s.connections),
            messages_accepted: n(&s.messages_accepted),
            messages_rejected: n(&s.messages_rejected),
            bytes_received: n(&s.bytes_received),
            bytes_sent: n(&s.bytes_sent),
            tls_handshakes: n(&s.tls_handshakes),
            tls_failures: n(&s.tls_failures),
            event_loop_connections: n(&s.event_loop_connections),
            errors: n(&s.errors),
        }
    }

    fn current_tls(&self) -> Option<Tls> {
        match self.tls.lock() {
            Ok(t) => t.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the options (`server.options` changed): new connections start with them,
    /// live sessions take them before their next command.
    #[napi]
    pub fn set_options(&self, env: Env, options: NativeOptions) {
        let config = options.into_config();
        if let Some(running) = self.running() {
            running.server.set_config(config.clone());
            running.follow_event_loop(env);
        }
        match self.config.lock() {
            Ok(mut c) => *c = config,
            Err(p) => *p.into_inner() = config,
        }
    }

    /// Replaces the certificates and TLS policy for new handshakes.
    #[napi]
    pub fn update_tls(&self, tls: Option<NativeTls>) -> Result<()> {
        let built = build_tls(tls)?;
        if let Some(running) = self.running() {
            running.server.set_tls(built.clone());
        }
        match self.tls.lock() {
            Ok(mut t) => *t = built,
            Err(p) => *p.into_inner() = built,
        }
        Ok(())
    }

    fn running(&self) -> Option<Running> {
        match self.running.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn server(&self) -> Option<Arc<Server>> {
        self.running().map(|r| r.server)
    }

    fn set_running(&self, running: Option<Running>) {
        match self.running.lock() {
            Ok(mut s) => *s = running,
            Err(p) => *p.into_inner() = running,
        }
    }

    /// Lets go of a closed server, so that its event channel no longer holds the
    /// event loop and `listen()` may be called again.
    #[napi]
    pub fn release(&self) {
        self.set_running(None);
    }

    /// The running server, started (without a listener) when there is none yet;
    /// `dispatch` receives every event.
    fn ensure_running(
        &self,
        env: Env,
        mask: u32,
        dispatch: Function<JsArgs, ()>,
    ) -> Result<Arc<Server>> {
        if let Some(server) = self.server() {
            server.set_hooks(mask);
            return Ok(server);
        }
        let outbox = Arc::new(Outbox::default());
        let taken = Arc::clone(&outbox);
        let tsfn: Dispatch = dispatch
            .build_threadsafe_function::<()>()
            .callee_handled::<false>()
            .build_callback(move |_| Ok(events::to_js(taken.take())))?;
        let mut config = match self.config.lock() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        };
        config.hooks = HookSet::from_mask(mask);
        #[cfg(unix)]
        let hooks = {
            let dispatch = dispatch.create_ref()?;
            Arc::new_cyclic(|me| JsHooks {
                tsfn,
                outbox,
                dispatch,
                event_loop: std::sync::OnceLock::new(),
                me: me.clone(),
            })
        };
        #[cfg(not(unix))]
        let hooks = Arc::new(JsHooks { tsfn, outbox });
        let server = Server::new(
            config,
            Arc::clone(&hooks) as Arc<dyn Hooks>,
            mask,
            Arc::clone(&self.stats),
        );
        server.set_tls(self.current_tls());
        let running = Running {
            server: Arc::clone(&server),
            hooks,
        };
        running.follow_event_loop(env);
        self.set_running(Some(running));
        Ok(server)
    }

    /// Serves a connection over a socket the application accepted
    /// (`server.connect(socket)`); returns the id of its pipe.
    #[napi]
    pub fn attach(
        &self,
        env: Env,
        peer: NativePeer,
        mask: u32,
        dispatch: Function<JsArgs, ()>,
    ) -> Result<u32> {
        let server = self.ensure_running(env, mask, dispatch)?;
        Ok(server.attach(Peer {
            local_address: normalize_address(&peer.local_address).into(),
            local_port: peer.local_port.min(65535) as u16,
            remote_address: normalize_address(&peer.remote_address).into(),
            remote_port: peer.remote_port.min(65535) as u16,
        }))
    }

    /// Bytes an attached socket read; true asks to pause the socket until `PIPE_DRAIN`.
    #[napi]
    pub fn pipe_data(&self, pipe: u32, data: Buffer) -> bool {
        self.server()
            .is_some_and(|s| s.pipes.push(pipe, data.to_vec()))
    }

    /// An attached socket ended (`failed`: with an error).
    #[napi]
    pub fn pipe_end(&self, pipe: u32, failed: bool) {
        if let Some(server) = self.server() {
            server.pipes.finish(pipe, failed);
        }
    }

    /// Binds and starts accepting; `dispatch` receives every event.
    #[napi]
    pub fn listen(
        &self,
        env: Env,
        target: ListenOptions,
        mask: u32,
        dispatch: Function<JsArgs, ()>,
    ) -> Result<Listening> {
        // a closing server (connections still finishing) cannot listen again either
        if self
            .server()
            .is_some_and(|s| s.is_listening() || !s.is_running())
        {
            return Ok(Listening::failed(ListenFailure::new(
                "ERR_SERVER_ALREADY_LISTEN",
                "Listen method has been called more than once without closing.",
            )));
        }
        let server = self.ensure_running(env, mask, dispatch)?;
        let addr = match target.path {
            Some(path) => ListenAddr::Unix {
                path,
                backlog: target.backlog.unwrap_or(511),
            },
            None => ListenAddr::Tcp {
                host: target.host,
                port: target.port.unwrap_or(0).min(65535) as u16,
                backlog: target.backlog.unwrap_or(511),
                ipv6_only: target.ipv6_only.unwrap_or(false),
                reuse_port: target.reuse_port.unwrap_or(false),
            },
        };
        let bound = match listener::listen(Arc::clone(&server), addr) {
            Ok(bound) => bound,
            Err(e) => {
                if server.connection_count() == 0 {
                    // nothing uses the server: let go of it, so that its event channel
                    // does not hold the event loop
                    self.set_running(None);
                }
                return Ok(Listening::failed(ListenFailure::from_io(&e)));
            }
        };
        let address = match bound {
            Bound::Tcp(sa) => AddressInfo {
                address: sa.ip().to_string(),
                family: if sa.is_ipv4() {
                    "IPv4".into()
                } else {
                    "IPv6".into()
                },
                port: u32::from(sa.port()),
            },
            Bound::Unix(path) => AddressInfo {
                address: path,
                family: "unix".into(),
                port: 0,
            },
        };
        Ok(Listening {
            address: Some(address),
            failure: None,
        })
    }

    /// Updates which handlers are defined (a mask of [`hook_bits`]).
    #[napi]
    pub fn set_hooks(&self, mask: u32) {
        if let Some(server) = self.server() {
            server.set_hooks(mask);
        }
    }

    /// The answers JavaScript gave since its last call, in order, five slots each: the
    /// [`EventKind`] of the question answered, the connection, a code, flags and a text
    /// (or null). The connection applies an answer only to the question it waits for.
    ///
    /// - [`EventKind::OnConnect`], [`EventKind::OnSecure`], [`EventKind::MailFrom`] or
    ///   [`EventKind::RcptTo`]: code 0 accepts, any other code rejects with the text
    ///   (-1: no code given).
    /// - [`EventKind::ConnectEvent`]: the `connect` listeners ran; the greeting goes out.
    /// - [`EventKind::DataStart`] answers `onData` with one result for the whole message
    ///   (every recipient's, under LMTP): code 0 accepts with the text (null: the
    ///   default one), any other code refuses (-1: no code given); flag 1 drops the rest
    ///   of the body (answered before it was read).
    /// - [`EventKind::Body`] says a body piece was consumed.
    #[napi]
    pub fn answer(&self, answers: Array) -> Result<()> {
        self.with_server(|server| apply_answers(server, &answers))
            .unwrap_or(Ok(()))
    }

    /// Answers `onAuth` with an [`AuthAnswer`] `kind` (`code` -1 means none was given).
    #[napi]
    pub fn complete_auth(
        &self,
        conn: u32,
        kind: u32,
        code: i32,
        message: Option<String>,
        data: Option<String>,
    ) {
        let code = u16::try_from(code).ok().filter(|c| *c > 0);
        let outcome = match kind {
            k if k == AuthAnswer::Success as u32 => AuthOutcome::Success,
            k if k == AuthAnswer::Error as u32 => {
                AuthOutcome::Error(code, message.unwrap_or_default())
            }
            k if k == AuthAnswer::Skip as u32 => AuthOutcome::Skip,
            _ => AuthOutcome::Failure {
                code,
                message,
                data: data.unwrap_or_else(|| "{}".into()),
            },
        };
        self.deliver(conn, ConnMsg::Auth(outcome));
    }

    /// Answers `onData` with a list of results, one per recipient (the engine cuts or
    /// fills it up to the replies the message gets). `discard` drops the rest of the
    /// body (answered before reading it).
    #[napi]
    pub fn complete_data(&self, conn: u32, results: Vec<NativeDataResult>, discard: bool) {
        let results = results
            .into_iter()
            .map(|r| data_result(r.code, r.text))
            .collect();
        let answer = DataAnswer::PerRecipient(results);
        self.deliver(conn, ConnMsg::Data { answer, discard });
    }

    /// The answer of `SNICallback`: TLS settings for that name, or null for the default.
    #[napi]
    pub fn sni_result(&self, id: u32, tls: Option<NativeTls>) -> Result<()> {
        let built = match build_tls(tls) {
            Ok(t) => t,
            Err(e) => {
                if let Some(server) = self.server() {
                    server.sni_answer(id, None);
                }
                return Err(e);
            }
        };
        if let Some(server) = self.server() {
            server.sni_answer(id, built);
        }
        Ok(())
    }

    /// Result of a reverse lookup.
    #[napi]
    pub fn reverse_result(&self, conn: u32, name: Option<String>) {
        self.deliver(conn, ConnMsg::Reverse(name));
    }

    /// The application saw the abort of a message stream.
    #[napi]
    pub fn data_aborted(&self, conn: u32) {
        self.deliver(conn, ConnMsg::AbortSeen);
    }

    /// `session.disabledCommands` changed (normalized names, or null to clear).
    #[napi]
    pub fn set_disabled(&self, conn: u32, list: Option<Vec<String>>) {
        self.deliver(conn, ConnMsg::Disabled(list));
    }

    /// `connection.send(code, text)`.
    #[napi]
    pub fn send(&self, conn: u32, code: u32, text: String) {
        self.deliver(
            conn,
            ConnMsg::Send(u16::try_from(code).unwrap_or(500), text),
        );
    }

    /// `connection._socket.write(bytes)`: bytes for the client, as they are.
    #[napi]
    pub fn send_raw(&self, conn: u32, bytes: Buffer) {
        self.deliver(conn, ConnMsg::Raw(bytes.to_vec()));
    }

    /// `connection.close()`.
    #[napi]
    pub fn close_connection(&self, conn: u32) {
        self.deliver(conn, ConnMsg::Close);
    }

    /// Stops accepting; live connections get 421 on their next command.
    #[napi]
    pub fn close(&self) {
        if let Some(server) = self.server() {
            server.set_state(ServerState::Closing);
            server.stop_listening();
        }
    }

    /// Ends the grace period: every connection gets 421 and is closed.
    #[napi]
    pub fn terminate(&self) {
        if let Some(server) = self.server() {
            server.set_state(ServerState::Terminating);
        }
    }

    /// Open connections.
    #[napi]
    pub fn connection_count(&self) -> u32 {
        self.server()
            .map(|s| s.connection_count() as u32)
            .unwrap_or(0)
    }

    /// Keeps (or stops keeping) the event loop alive while the server runs.
    #[napi]
    pub fn set_ref(&self, env: Env, referenced: bool) -> Result<()> {
        let Some(running) = self.running() else {
            return Ok(());
        };
        let raw = running.hooks.tsfn.raw();
        // SAFETY: `raw` is the live threadsafe function owned by `running.hooks` (kept
        // alive by the Arc held here), and this runs on the JavaScript thread with its env, which
        // is what napi_ref/unref_threadsafe_function require.
        let status = unsafe {
            if referenced {
                sys::napi_ref_threadsafe_function(env.raw(), raw)
            } else {
                sys::napi_unref_threadsafe_function(env.raw(), raw)
            }
        };
        if status == sys::Status::napi_ok {
            Ok(())
        } else {
            Err(napi::Error::new(
                Status::GenericFailure,
                "cannot change the server reference",
            ))
        }
    }

    fn deliver(&self, conn: u32, msg: ConnMsg) {
        self.with_server(|server| server.deliver(conn, msg));
    }

    /// Runs `f` with the running server (`None` without one), and then the connections
    /// it woke on the event loop (their replies are written before this returns to
    /// JavaScript).
    fn with_server<R>(&self, f: impl FnOnce(&Server) -> R) -> Option<R> {
        let running = self.running()?;
        #[cfg(unix)]
        if let Some(l) = running.hooks.event_loop.get() {
            return Some(l.batch(|| f(&running.server)));
        }
        Some(f(&running.server))
    }
}

/// Applies a batch of answers (see [`NativeServer::answer`]) to their connections.
fn apply_answers(server: &Server, answers: &Array) -> Result<()> {
    let mut i = 0;
    while i + ANSWER_SLOTS <= answers.len() {
        let kind = answers.get::<u32>(i)?.unwrap_or(0);
        let conn = answers.get::<u32>(i + 1)?.unwrap_or(0);
        let code = answers.get::<i32>(i + 2)?.unwrap_or(0);
        let flags = answers.get::<u32>(i + 3)?.unwrap_or(0);
        let text = answers.get::<Option<String>>(i + 4)?.flatten();
        i += ANSWER_SLOTS;
        let question = match kind {
            k if k == EventKind::OnConnect as u32 => Some(Question::Connect),
            k if k == EventKind::ConnectEvent as u32 => Some(Question::ConnectEvent),
            k if k == EventKind::OnSecure as u32 => Some(Question::Secure),
            k if k == EventKind::MailFrom as u32 => Some(Question::MailFrom),
            k if k == EventKind::RcptTo as u32 => Some(Question::RcptTo),
            _ => None,
        };
        let msg = match question {
            Some(question) => ConnMsg::Hook(
                question,
                if code == 0 {
                    HookOutcome::Accept
                } else {
                    HookOutcome::Reject(u16::try_from(code).ok(), text.unwrap_or_default())
                },
            ),
            None if kind == EventKind::DataStart as u32 => ConnMsg::Data {
                answer: DataAnswer::Whole(data_result(code, text)),
                discard: flags & 1 != 0,
            },
            None if kind == EventKind::Body as u32 => ConnMsg::Ack,
            None => continue,
        };
        server.deliver(conn, msg);
    }
    Ok(())
}

/// The native runtime's handle.
static RUNTIME: std::sync::OnceLock<tokio::runtime::Handle> = std::sync::OnceLock::new();

/// The native runtime, once made.
#[cfg(unix)]
fn runtime() -> Option<tokio::runtime::Handle> {
    RUNTIME.get().cloned()
}

/// Sizes the tokio runtime before anything uses it: one worker per core, less the one
/// the JavaScript thread needs (at least one), or `SMTP_SERVER_RS_THREADS`; with glibc,
/// starts the task that gives freed memory back (`allocator`).
#[napi_derive::module_init]
fn init_runtime() {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let workers = std::env::var("SMTP_SERVER_RS_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| cores.saturating_sub(1).max(1));
    if let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("smtp-server-rs")
        .enable_all()
        .build()
    {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        rt.spawn(crate::allocator::give_back_freed_memory());
        let _ = RUNTIME.set(rt.handle().clone());
        napi::bindgen_prelude::create_custom_tokio_runtime(rt);
    }
}
