//! What a connection tells and asks the application (the answers come back as
//! [`ConnMsg`](super::inbox::ConnMsg)s).

use crate::protocol::session::{ConnectInfo, HookCall, Peer, SessionSync, Trace};

/// Identifies a connection of one server.
pub type ConnId = u32;

/// What a connection tells the application. Answers arrive as
/// [`ConnMsg`](super::inbox::ConnMsg)s.
pub trait Hooks: Send + Sync + 'static {
    /// A connection was accepted; the application creates its session object.
    /// `proxy` holds the PROXY header's words when one was read (for the logger).
    fn open(&self, conn: ConnId, session_id: &str, peer: &Peer, secure: bool, proxy: Vec<String>);
    /// Reverse-resolve `ip`; answered with
    /// [`ConnMsg::Reverse`](super::inbox::ConnMsg::Reverse).
    fn reverse(&self, conn: ConnId, ip: &str);
    /// Call `onConnect`; answered with [`ConnMsg::Hook`](super::inbox::ConnMsg::Hook)
    /// for [`Question::Connect`](crate::protocol::session::Question::Connect).
    fn on_connect(&self, conn: ConnId, sync: SessionSync);
    /// Emit the server's `connect` event.
    fn connect_event(&self, conn: ConnId, sync: SessionSync, info: ConnectInfo);
    /// Call `onSecure`, `onMailFrom`, `onRcptTo` or `onAuth`; answered with
    /// [`ConnMsg::Hook`](super::inbox::ConnMsg::Hook) (`onAuth` with
    /// [`ConnMsg::Auth`](super::inbox::ConnMsg::Auth)).
    fn ask(&self, conn: ConnId, call: HookCall, sync: SessionSync);
    /// Call `onData` with a new stream, with the first body piece when it is already
    /// here (`end` when it is the whole body, `total` body bytes so far).
    fn data_start(&self, conn: ConnId, sync: SessionSync, first: Option<(Vec<u8>, bool, u64)>);
    /// A piece of the body; `end` marks the last one. Acknowledged with
    /// [`ConnMsg::Ack`](super::inbox::ConnMsg::Ack) unless it was the last; the result
    /// comes as [`ConnMsg::Data`](super::inbox::ConnMsg::Data).
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
