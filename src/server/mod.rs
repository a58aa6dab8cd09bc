//! The tokio side: listeners, the per-connection task, and the registry through which
//! the application's answers reach their connection.

pub mod connection;
pub mod hooks;
pub mod inbox;
pub mod listener;
pub mod lock;
pub mod mirror;
pub mod pipe;
pub mod prefixed;
pub mod proxy;
pub mod ready;
pub mod stats;
pub mod tls;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use crate::protocol::config::{hook_bit, Config, LiveConfig};
use crate::protocol::session::Peer;
use hooks::{ConnId, Hooks};
use inbox::ConnMsg;
use inbox::Inbox;
use lock::{lock, read, write};
use stats::Stats;

/// A place other than the native threads where TCP connections are served (the
/// JavaScript thread's event loop).
pub trait Host: Send + Sync {
    /// Serves an accepted connection there (or natively when it no longer can).
    fn serve(&self, server: Arc<Server>, socket: std::net::TcpStream, peer: Peer);
}

/// Server-wide state changes a connection follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServerState {
    /// Serving.
    Running,
    /// `close()` was called: commands get 421.
    Closing,
    /// The grace period is over: every connection is closed.
    Terminating,
}

/// State shared by a server's listener and connections.
pub struct Server {
    config: Arc<LiveConfig>,
    hooks: Arc<dyn Hooks>,
    registry: Mutex<HashMap<ConnId, Arc<Inbox>>>,
    next_id: AtomicU32,
    /// Sessions that count toward `maxClients` (not yet closing).
    live: AtomicUsize,
    /// Connections whose task is still running.
    open: AtomicUsize,
    listening: AtomicBool,
    state: watch::Sender<ServerState>,
    closed_reported: AtomicBool,
    tls: RwLock<Option<tls::Tls>>,
    /// Sockets still in their PROXY header or implicit TLS handshake.
    pending: AtomicUsize,
    hook_mask: Arc<AtomicU32>,
    /// A handle on the listening socket, to stop listening synchronously in `close()`.
    listener: Mutex<Option<(socket2::Socket, Option<String>)>>,
    /// `SNICallback` questions waiting for their answer.
    sni_waiters: Mutex<HashMap<u32, tokio::sync::oneshot::Sender<Option<tls::Tls>>>>,
    next_sni: AtomicU32,
    /// Live counters, shared with the application's handle.
    pub stats: Arc<Stats>,
    /// Connections over sockets the application handed over.
    pub pipes: Arc<pipe::Pipes>,
    /// Where connections with handlers to ask are served, when not natively.
    host: RwLock<Option<Arc<dyn Host>>>,
}

impl Server {
    /// A server with these options, reporting to `hooks`.
    pub fn new(
        config: Config,
        hooks: Arc<dyn Hooks>,
        hooks_mask: u32,
        stats: Arc<Stats>,
    ) -> Arc<Server> {
        let (state, _) = watch::channel(ServerState::Running);
        Arc::new(Server {
            config: Arc::new(LiveConfig::new(config)),
            hooks,
            registry: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(1),
            live: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            listening: AtomicBool::new(false),
            state,
            closed_reported: AtomicBool::new(false),
            tls: RwLock::new(None),
            pending: AtomicUsize::new(0),
            hook_mask: Arc::new(AtomicU32::new(hooks_mask)),
            listener: Mutex::new(None),
            sni_waiters: Mutex::new(HashMap::new()),
            next_sni: AtomicU32::new(1),
            stats,
            pipes: Arc::default(),
            host: RwLock::new(None),
        })
    }

    /// The TLS configuration for new handshakes.
    pub fn tls(&self) -> Option<tls::Tls> {
        read(&self.tls).clone()
    }

    /// Replaces the TLS configuration; established sessions keep theirs.
    pub fn set_tls(&self, tls: Option<tls::Tls>) {
        *write(&self.tls) = tls
    }

    /// The options new connections start with.
    pub fn config(&self) -> Arc<Config> {
        self.config.get()
    }

    /// The options that live sessions follow.
    pub fn live_config(&self) -> Arc<LiveConfig> {
        Arc::clone(&self.config)
    }

    /// Changes the options: new connections start with them, live sessions take them
    /// before their next command.
    pub fn set_config(&self, config: Config) {
        self.config.replace(config);
    }

    /// Sets where connections with handlers to ask are served (`eventLoop`).
    pub fn set_host(&self, host: Option<Arc<dyn Host>>) {
        *write(&self.host) = host;
    }

    /// Serves an accepted TCP connection: on the host (the event loop) when `eventLoop`
    /// is on, the connection starts in plain text and a handler answers its commands;
    /// otherwise on the native threads.
    pub fn serve_tcp(self: &Arc<Self>, socket: std::net::TcpStream, peer: Peer) {
        let cfg = self.config();
        let asks = self.hook_mask.load(Ordering::Relaxed) & hook_bit::ASKED != 0;
        let host = if cfg.event_loop && !cfg.implicit_tls && asks {
            read(&self.host).clone()
        } else {
            None
        };
        match host {
            Some(host) => host.serve(Arc::clone(self), socket, peer),
            None => listener::serve_natively(Arc::clone(self), socket, peer),
        }
    }

    /// Changes which application handlers are defined; live sessions follow it.
    pub fn set_hooks(&self, mask: u32) {
        self.hook_mask.store(mask, Ordering::Relaxed);
    }

    /// The shared handler mask sessions follow.
    pub fn hook_mask(&self) -> Arc<AtomicU32> {
        Arc::clone(&self.hook_mask)
    }

    /// The application's side of the connections.
    pub fn hooks(&self) -> &Arc<dyn Hooks> {
        &self.hooks
    }

    /// Delivers an answer to a connection; false when it is gone.
    pub fn deliver(&self, conn: ConnId, msg: ConnMsg) -> bool {
        let sender = lock(&self.registry).get(&conn).cloned();
        sender.is_some_and(|s| s.send(msg))
    }

    /// Delivers a message to every connection.
    pub fn broadcast(&self, make: impl Fn() -> ConnMsg) {
        let senders: Vec<_> = lock(&self.registry).values().cloned().collect();
        for s in senders {
            let _ = s.send(make());
        }
    }

    /// Reports an error to the application (`error` event) and counts it.
    pub fn error(&self, conn: ConnId, code: &str, message: &str, remote_address: &str) {
        stats::add(&self.stats.errors, 1);
        self.hooks.error(conn, code, message, remote_address);
    }

    fn register(&self) -> (ConnId, Arc<Inbox>) {
        stats::add(&self.stats.connections, 1);
        let inbox = Arc::new(Inbox::default());
        let mut map = lock(&self.registry);
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 && !map.contains_key(&id) {
                map.insert(id, Arc::clone(&inbox));
                return (id, inbox);
            }
        }
    }

    fn unregister(&self, id: ConnId) {
        let inbox = lock(&self.registry).remove(&id);
        if let Some(inbox) = inbox {
            inbox.close();
        }
    }

    /// `close()` has not been called.
    pub fn is_running(&self) -> bool {
        self.current_state() == ServerState::Running
    }

    /// The server's state now.
    pub fn current_state(&self) -> ServerState {
        *self.state.borrow()
    }

    /// A listener is accepting connections.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    /// Number of open connections (`getConnections`).
    pub fn connection_count(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Follows the server state (running, closing, terminating).
    pub fn state(&self) -> watch::Receiver<ServerState> {
        self.state.subscribe()
    }

    /// Asks the application's `SNICallback` for the certificate of `servername`.
    pub async fn sni_lookup(&self, servername: &str) -> Option<tls::Tls> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let id = self.next_sni.fetch_add(1, Ordering::Relaxed);
        lock(&self.sni_waiters).insert(id, tx);
        self.hooks.sni(id, servername);
        rx.await.ok().flatten()
    }

    /// The application answered an `SNICallback` question.
    pub fn sni_answer(&self, id: u32, tls: Option<tls::Tls>) {
        let waiter = lock(&self.sni_waiters).remove(&id);
        if let Some(tx) = waiter {
            let _ = tx.send(tls);
        }
    }

    fn keep_listener(&self, socket: socket2::Socket, unix_path: Option<String>) {
        *lock(&self.listener) = Some((socket, unix_path))
    }

    /// Stops listening right away: new connection attempts are refused from now on.
    pub fn stop_listening(&self) {
        let socket = lock(&self.listener).take();
        if let Some((socket, unix_path)) = socket {
            let _ = socket.shutdown(std::net::Shutdown::Both);
            if let Some(path) = unix_path {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// Moves the server to a later state; connections react to it.
    pub fn set_state(&self, state: ServerState) {
        let changed = self.state.send_if_modified(|s| {
            if *s < state {
                *s = state;
                true
            } else {
                false
            }
        });
        if changed {
            // a connection registered after this reads the new state when it starts
            self.broadcast(|| ConnMsg::State(state));
        }
        self.report_if_closed();
    }

    fn report_if_closed(&self) {
        let stopped = *self.state.borrow() != ServerState::Running;
        if stopped
            && !self.listening.load(Ordering::SeqCst)
            && self.open.load(Ordering::SeqCst) == 0
            && !self.closed_reported.swap(true, Ordering::SeqCst)
        {
            self.hooks.server_closed();
        }
    }
}

/// Waits until the server leaves the running state.
pub(crate) async fn stopped(state: &mut tokio::sync::watch::Receiver<ServerState>) {
    while *state.borrow_and_update() == ServerState::Running {
        if state.changed().await.is_err() {
            return;
        }
    }
}
