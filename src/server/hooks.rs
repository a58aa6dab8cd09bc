//! The questions and notices a connection sends to the application, and the answers
//! that come back.

use crate::protocol::session::{
    AuthOutcome, ConnectInfo, DataReply, HookCall, HookOutcome, Peer, SessionSync, Trace,
};

/// Identifies a connection of one server.
pub type ConnId = u32;

/// What a connection tells the application. Answers arrive as [`ConnMsg`]s.
pub trait Hooks: Send + Sync + 'static {
    /// A connection was accepted; the application creates its session object.
    /// `proxy` holds the PROXY header's words when one was read (for the logger).
    fn open(&self, conn: ConnId, session_id: &str, peer: &Peer, secure: bool, proxy: Vec<String>);
    /// Reverse-resolve `ip`; answered with [`ConnMsg::Reverse`].
    fn reverse(&self, conn: ConnId, ip: &str);
    /// Call `onConnect`; answered with [`ConnMsg::Hook`].
    fn on_connect(&self, conn: ConnId, sync: SessionSync);
    /// Emit the server's `connect` event.
    fn connect_event(&self, conn: ConnId, sync: SessionSync, info: ConnectInfo);
    /// Call `onSecure`; answered with [`ConnMsg::Hook`].
    fn on_secure(&self, conn: ConnId, sync: SessionSync);
    /// Call `onMailFrom` or `onRcptTo`; answered with [`ConnMsg::Hook`].
    fn on_address(&self, conn: ConnId, call: HookCall, sync: SessionSync);
    /// Call `onData` with a new stream, with the first body piece when it is already
    /// here (`end` when it is the whole body, `total` body bytes so far).
    fn data_start(&self, conn: ConnId, sync: SessionSync, first: Option<(Vec<u8>, bool, u64)>);
    /// A piece of the body; `end` marks the last one. Acknowledged with [`ConnMsg::Ack`]
    /// unless it was the last; the result comes as [`ConnMsg::Data`].
    fn body(&self, conn: ConnId, chunk: Vec<u8>, end: bool, total: u64);
    /// The message stream ends before the body was complete: the client left, or
    /// (`reset`) its BDAT transaction was reset.
    fn data_abort(&self, conn: ConnId, reset: bool);
    /// An error worth reporting on the server (`error` event).
    fn error(&self, conn: ConnId, code: &str, message: &str, remote_address: &str);
    /// Entries for the application's logger (only sent when one is set).
    fn trace(&self, conn: ConnId, entries: Vec<Trace>);
    /// The connection is closed (`onClose`).
    fn close(&self, conn: ConnId, sync: SessionSync);
    /// Ask `SNICallback` for `servername`; answered with `Server::sni_answer(id, ..)`.
    fn sni(&self, id: u32, servername: &str);
    /// The server stopped listening and its last connection ended.
    fn server_closed(&self);
    /// Bytes for the socket of an attached connection (`server.connect(socket)`).
    fn pipe_write(&self, pipe: u32, data: Vec<u8>);
    /// The attached connection is done writing: end the socket.
    fn pipe_end(&self, pipe: u32);
    /// The attached connection read its queued input: resume the paused socket.
    fn pipe_drain(&self, pipe: u32);
}

/// An answer or request from the application to one connection.
#[derive(Debug)]
pub enum ConnMsg {
    /// Result of a reverse lookup: the first name, if any.
    Reverse(Option<String>),
    /// Result of `onConnect`, `onSecure`, `onMailFrom` or `onRcptTo`.
    Hook(HookOutcome),
    /// Result of `onAuth`.
    Auth(AuthOutcome),
    /// Result of `onData`. `discard` means the application answered without reading
    /// the whole body, so the rest is dropped.
    Data {
        /// The replies to send.
        replies: Vec<DataReply>,
        /// Drop the rest of the body.
        discard: bool,
    },
    /// A body piece was consumed.
    Ack,
    /// The application has seen a stream aborted (a BDAT transaction reset): results
    /// and acknowledgements sent before that were about the old stream.
    AbortSeen,
    /// `session.disabledCommands` was set (or cleared) by the application.
    Disabled(Option<Vec<String>>),
    /// `connection.send(code, text)`.
    Send(u16, String),
    /// Bytes written as they are (`connection._socket.write()`).
    Raw(Vec<u8>),
    /// `connection.close()`.
    Close,
    /// The server moved on to this state.
    State(ServerState),
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
