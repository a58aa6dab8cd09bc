//! The events a server sends to its JavaScript side, and their conversion to JS objects.
//!
//! Events reach the dispatcher in `lib/events.js` in batches: every event that waited while
//! the JavaScript thread was busy goes over in one call, as `(kind, connection, json,
//! buffer)` slots; the JSON text carries the fields (short keys), the Buffer a message
//! body piece.

use napi::bindgen_prelude::{Buffer, FnArgs, Null, ToNapiValue};
use napi::{sys, Result};
use napi_derive::napi;

use super::json::Json;
use crate::protocol::address::ParamValue;
use crate::protocol::sasl::encode_base64;
use crate::protocol::session::{
    Address, AuthRequest, ConnectInfo, HookCall, Peer, SessionSync, Trace,
};
use crate::protocol::xclient::XValue;

/// The kinds of events sent to JavaScript, exported as `EventKind` (the dispatcher in
/// `lib/events.js` reads its numbers from there).
#[napi]
pub enum EventKind {
    /// A connection was accepted.
    Open = 1,
    /// Reverse lookup request.
    Reverse = 2,
    /// `onConnect`.
    OnConnect = 3,
    /// The `connect` event.
    ConnectEvent = 4,
    /// `onMailFrom`.
    MailFrom = 5,
    /// `onRcptTo`.
    RcptTo = 6,
    /// `onData` starts.
    DataStart = 7,
    /// A body piece.
    Body = 8,
    /// The client left mid-DATA.
    DataAbort = 9,
    /// An `error` event.
    Error = 10,
    /// The connection closed.
    Close = 11,
    /// The server closed.
    ServerClosed = 12,
    /// `onSecure`.
    OnSecure = 13,
    /// `onAuth`.
    OnAuth = 14,
    /// `SNICallback`.
    Sni = 15,
    /// Logger entries.
    Trace = 16,
    /// A BDAT transaction was reset before its last chunk.
    DataReset = 17,
    /// Bytes for an attached socket.
    PipeWrite = 18,
    /// End an attached socket.
    PipeEnd = 19,
    /// Resume an attached socket.
    PipeDrain = 20,
}

/// One event for JavaScript.
#[derive(Debug)]
pub enum Event {
    /// A connection was accepted.
    Open {
        /// Connection.
        conn: u32,
        /// Session id.
        id: String,
        /// Addresses.
        peer: Peer,
        /// Session starts secure.
        secure: bool,
        /// The PROXY header's words, if one was read.
        proxy: Vec<String>,
    },
    /// Reverse-resolve `ip`.
    Reverse {
        /// Connection.
        conn: u32,
        /// Address to resolve.
        ip: String,
    },
    /// Call `onConnect`.
    OnConnect {
        /// Connection.
        conn: u32,
        /// Session changes.
        sync: SessionSync,
    },
    /// Emit `connect`.
    ConnectEvent {
        /// Connection.
        conn: u32,
        /// Session changes.
        sync: SessionSync,
        /// The event payload.
        info: ConnectInfo,
    },
    /// Call `onMailFrom`/`onRcptTo`.
    Address {
        /// Connection.
        conn: u32,
        /// Which handler and its address.
        call: HookCall,
        /// Session changes.
        sync: SessionSync,
    },
    /// Call `onData`.
    DataStart {
        /// Connection.
        conn: u32,
        /// Session changes.
        sync: SessionSync,
        /// The first body piece (bytes, last piece, body bytes so far), when already here.
        first: Option<(Vec<u8>, bool, u64)>,
    },
    /// A body piece.
    Body {
        /// Connection.
        conn: u32,
        /// Bytes.
        chunk: Vec<u8>,
        /// Last piece.
        end: bool,
        /// Body bytes so far.
        total: u64,
    },
    /// The message stream ends unfinished: the client left, or (`reset`) its BDAT
    /// transaction was reset.
    DataAbort {
        /// Connection.
        conn: u32,
        /// Reset rather than gone.
        reset: bool,
    },
    /// An `error` event.
    Error {
        /// Connection.
        conn: u32,
        /// Error code (`ECONNRESET`, ...).
        code: String,
        /// Message.
        message: String,
        /// Client address.
        remote_address: String,
    },
    /// Logger entries.
    Trace {
        /// Connection.
        conn: u32,
        /// What happened, in order.
        entries: Vec<Trace>,
    },
    /// The connection closed.
    Close {
        /// Connection.
        conn: u32,
        /// Session changes.
        sync: SessionSync,
    },
    /// Ask `SNICallback`.
    Sni {
        /// Question id.
        id: u32,
        /// Normalized server name.
        servername: String,
    },
    /// The server is closed.
    ServerClosed,
    /// Bytes for the socket of an attached connection.
    PipeWrite {
        /// Pipe.
        pipe: u32,
        /// The bytes.
        data: Vec<u8>,
    },
    /// End the socket of an attached connection.
    PipeEnd {
        /// Pipe.
        pipe: u32,
    },
    /// Resume the paused socket of an attached connection.
    PipeDrain {
        /// Pipe.
        pipe: u32,
    },
}

/// The arguments the dispatcher is called with: the events that waited, four slots
/// each (kind, connection, JSON text or null, body piece or null).
pub type JsArgs = FnArgs<(Vec<Slot>,)>;

/// Body pieces smaller than this are copied into their Buffer; larger ones are handed
/// over without a copy.
const COPY_BELOW: usize = 64 * 1024;

/// One slot of a batch of events.
pub enum Slot {
    /// An event kind or a connection.
    Num(u32),
    /// The JSON text of an event's fields.
    Text(String),
    /// A body piece, or bytes for an attached socket.
    Bytes(Vec<u8>),
    /// No fields, or no bytes.
    Null,
}

impl ToNapiValue for Slot {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        // SAFETY: called by napi with the env of the JavaScript thread, as every
        // `to_napi_value` this delegates to and `napi_create_buffer_copy` require; the
        // copy reads `b.len()` bytes from `b`, which lives until the call returns.
        unsafe {
            match val {
                Slot::Num(n) => u32::to_napi_value(env, n),
                Slot::Text(s) => String::to_napi_value(env, s),
                Slot::Bytes(b) if b.len() < COPY_BELOW => {
                    // a small piece is copied: cheaper than an external buffer, whose
                    // finalizer the garbage collector has to run
                    let mut value = std::ptr::null_mut();
                    let status = sys::napi_create_buffer_copy(
                        env,
                        b.len(),
                        b.as_ptr().cast(),
                        std::ptr::null_mut(),
                        &mut value,
                    );
                    if status == sys::Status::napi_ok {
                        Ok(value)
                    } else {
                        Buffer::to_napi_value(env, Buffer::from(b))
                    }
                }
                Slot::Bytes(b) => Buffer::to_napi_value(env, Buffer::from(b)),
                Slot::Null => Null::to_napi_value(env, Null),
            }
        }
    }
}

fn peer(j: &mut Json, peer: &Peer) {
    j.str(Some("la"), &peer.local_address)
        .num(Some("lp"), f64::from(peer.local_port))
        .str(Some("ra"), &peer.remote_address)
        .num(Some("rp"), f64::from(peer.remote_port));
}

fn xvalue(j: &mut Json, key: Option<&str>, value: &XValue) {
    match value {
        XValue::Str(s) => j.str(key, s),
        XValue::Num(n) => j.num(key, *n),
        XValue::False => j.bool(key, false),
    };
}

fn opt_str(j: &mut Json, key: &str, value: Option<&str>) {
    match value {
        Some(s) => j.str(Some(key), s),
        None => j.bool(Some(key), false),
    };
}

fn address(j: &mut Json, key: Option<&str>, addr: &Address) {
    j.begin(key).str(Some("address"), &addr.parsed.address);
    match &addr.parsed.args {
        None => {
            j.bool(Some("args"), false);
        }
        Some(args) => {
            j.begin(Some("args"));
            for (k, v) in args {
                match v {
                    ParamValue::Flag => j.bool(Some(k), true),
                    ParamValue::Value(s) => j.str(Some(k), s),
                };
            }
            j.end();
        }
    }
    if let Some(dsn) = &addr.dsn {
        j.begin(Some("dsn"));
        if let Some(notify) = &dsn.notify {
            j.begin_array(Some("notify"));
            for n in notify {
                j.str(None, n);
            }
            j.end_array();
        }
        if let Some(orcpt) = &dsn.orcpt {
            j.str(Some("orcpt"), orcpt);
        }
        j.end();
    }
    j.end();
}

fn xmap(j: &mut Json, key: &str, entries: &[(String, XValue)]) {
    j.begin_array(Some(key));
    for (k, v) in entries {
        j.begin(None).str(Some("k"), k);
        xvalue(j, Some("v"), v);
        j.end();
    }
    j.end_array();
}

fn sync(j: &mut Json, sync: &SessionSync) {
    j.begin(Some("s"))
        .num(Some("g"), f64::from(sync.generation));
    if let Some(view) = &sync.view {
        j.begin(Some("v"))
            .str(Some("la"), &view.peer.local_address)
            .num(Some("lp"), f64::from(view.peer.local_port))
            .str(Some("ra"), &view.peer.remote_address);
        xvalue(j, Some("rp"), &view.remote_port);
        j.str(Some("ch"), &view.client_hostname);
        opt_str(j, "oc", view.opening_command);
        opt_str(j, "hn", view.host_name_appears_as.as_deref());
        j.str(Some("tt"), view.transmission_type)
            .num(Some("tr"), f64::from(view.transaction));
        j.end();
    }
    if let Some(tr) = sync.transaction {
        j.num(Some("tr"), f64::from(tr));
    }
    if let Some(flags) = &sync.envelope_flags {
        j.begin(Some("f"))
            .bool(Some("requireTLS"), flags.require_tls)
            .str(Some("bodyType"), &flags.body_type)
            .bool(Some("smtpUtf8"), flags.smtp_utf8);
        match &flags.dsn_ret {
            Some(r) => j.str(Some("ret"), r),
            None => j.null(Some("ret")),
        };
        match &flags.dsn_envid {
            Some(e) => j.str(Some("envid"), e),
            None => j.null(Some("envid")),
        };
        j.end();
    }
    if let Some(mail) = &sync.mail_from {
        address(j, Some("m"), mail);
    }
    if !sync.rcpts.is_empty() {
        j.begin_array(Some("ri"));
        for (slot, _) in &sync.rcpts {
            j.num(None, *slot as f64);
        }
        j.end_array();
        j.begin_array(Some("r"));
        for (_, r) in &sync.rcpts {
            address(j, None, r);
        }
        j.end_array();
    }
    if let Some(err) = &sync.error {
        j.str(Some("err"), err);
    }
    if sync.wizard {
        j.bool(Some("wiz"), true);
    }
    if let Some(tls) = &sync.tls {
        j.begin(Some("t"))
            .str(Some("name"), &tls.name)
            .str(Some("standardName"), &tls.standard_name)
            .str(Some("version"), &tls.version);
        opt_str(j, "servername", tls.servername.as_deref());
        j.bool(Some("authorized"), tls.authorized);
        if let Some(err) = &tls.authorization_error {
            j.str(Some("authorizationError"), err);
        }
        if let Some(cert) = &tls.peer_certificate {
            j.str(Some("cert"), &encode_base64(cert));
        }
        j.end();
    }
    if let Some(entries) = &sync.xclient {
        xmap(j, "xc", entries);
    }
    if let Some(entries) = &sync.xforward {
        xmap(j, "xf", entries);
    }
    if sync.user_cleared {
        j.bool(Some("uc"), true);
    }
    if let Some(name) = &sync.servername {
        match name {
            Some(n) => j.str(Some("sn"), n),
            None => j.null(Some("sn")),
        };
    }
    j.end();
}

fn auth(j: &mut Json, r: &AuthRequest) {
    j.begin(Some("auth"))
        .str(Some("method"), r.method)
        .str(Some("username"), &r.username);
    for (key, value) in [
        ("authcid", &r.authcid),
        ("authzid", &r.authzid),
        ("password", &r.password),
        ("accessToken", &r.access_token),
        ("challenge", &r.challenge),
        ("challengeResponse", &r.challenge_response),
    ] {
        if let Some(v) = value {
            j.str(Some(key), v);
        }
    }
    j.str(Some("tt"), &r.transmission_type);
    j.end();
}

/// Logger entries as `[{k, ...}]`: `c` command (`n` name, `l` line), `s` reply (`l`),
/// `d` message bytes (`b`), `big` refused size (`b`), `shell`, `kill`, `x` XCLIENT/XFORWARD
/// (`f` forward, `key`, `v` value, `ra` previous address), `deauth`, `tls` (`cipher`), `nouser` (`session.user` is
/// false now), `conn` and `badptr` (`h` host name).
fn trace(j: &mut Json, entries: &[Trace]) {
    j.begin_array(Some("t"));
    for entry in entries {
        j.begin(None);
        match entry {
            Trace::Command { name, line } => {
                j.str(Some("k"), "c")
                    .str(Some("n"), name)
                    .str(Some("l"), line);
            }
            Trace::Reply(line) => {
                j.str(Some("k"), "s").str(Some("l"), line);
            }
            Trace::Data(bytes) => {
                j.str(Some("k"), "d").num(Some("b"), *bytes as f64);
            }
            Trace::Oversized(bytes) => {
                j.str(Some("k"), "big").num(Some("b"), *bytes as f64);
            }
            Trace::Shell => {
                j.str(Some("k"), "shell");
            }
            Trace::Kill => {
                j.str(Some("k"), "kill");
            }
            Trace::Proxied {
                forward,
                key,
                value,
                through,
            } => {
                j.str(Some("k"), "x")
                    .bool(Some("f"), *forward)
                    .str(Some("key"), key);
                xvalue(j, Some("v"), value);
                j.str(Some("ra"), through);
            }
            Trace::Deauth => {
                j.str(Some("k"), "deauth");
            }
            Trace::UserCleared => {
                j.str(Some("k"), "nouser");
            }
            Trace::Connected(hostname) => {
                j.str(Some("k"), "conn").str(Some("h"), hostname);
            }
            Trace::InvalidHostname(name) => {
                j.str(Some("k"), "badptr").str(Some("h"), name);
            }
            Trace::StartTls(cipher) => {
                j.str(Some("k"), "tls").str(Some("cipher"), cipher);
            }
        }
        j.end();
    }
    j.end_array();
}

fn body_fields(j: &mut Json, end: bool, total: u64) {
    j.bool(Some("e"), end).num(Some("n"), total as f64);
}

/// An event serialized for the dispatcher, built on the thread that emits it so the
/// JavaScript thread only wraps the body piece in a Buffer.
#[derive(Debug)]
pub struct Encoded {
    kind: u32,
    conn: u32,
    json: String,
    body: Option<Vec<u8>>,
}

fn nonempty(chunk: Vec<u8>) -> Option<Vec<u8>> {
    if chunk.is_empty() {
        None
    } else {
        Some(chunk)
    }
}

/// The dispatcher's arguments for the events that waited, in the order they were sent.
pub fn to_js(events: Vec<Encoded>) -> JsArgs {
    let mut slots = Vec::with_capacity(events.len() * 4);
    for event in events {
        slots.push(Slot::Num(event.kind));
        slots.push(Slot::Num(event.conn));
        slots.push(if event.json == "{}" {
            Slot::Null
        } else {
            Slot::Text(event.json)
        });
        slots.push(event.body.map_or(Slot::Null, Slot::Bytes));
    }
    FnArgs::from((slots,))
}

/// Serializes an event for the dispatcher.
pub fn encode(event: Event) -> Encoded {
    let mut j = Json::new();
    j.begin(None);
    let mut buf = None;
    let (k, c) = match event {
        Event::Open {
            conn,
            id,
            peer: p,
            secure,
            proxy,
        } => {
            j.str(Some("id"), &id);
            peer(&mut j, &p);
            j.bool(Some("secure"), secure);
            if !proxy.is_empty() {
                j.begin_array(Some("px"));
                for word in &proxy {
                    j.str(None, word);
                }
                j.end_array();
            }
            (EventKind::Open as u32, conn)
        }
        Event::Reverse { conn, ip } => {
            j.str(Some("ip"), &ip);
            (EventKind::Reverse as u32, conn)
        }
        Event::OnConnect { conn, sync: s } => {
            sync(&mut j, &s);
            (EventKind::OnConnect as u32, conn)
        }
        Event::ConnectEvent {
            conn,
            sync: s,
            info,
        } => {
            sync(&mut j, &s);
            j.str(Some("ch"), &info.client_hostname);
            opt_str(&mut j, "hn", info.host_name_appears_as.as_deref());
            j.str(Some("la"), &info.local_address)
                .num(Some("lp"), f64::from(info.local_port))
                .str(Some("ra"), &info.remote_address);
            xvalue(&mut j, Some("rp"), &info.remote_port);
            j.bool(Some("w"), info.wait);
            (EventKind::ConnectEvent as u32, conn)
        }
        Event::Address {
            conn,
            call,
            sync: s,
        } => {
            sync(&mut j, &s);
            let k = match &call {
                HookCall::MailFrom(a) => {
                    address(&mut j, Some("a"), a);
                    EventKind::MailFrom as u32
                }
                HookCall::RcptTo { address: a, slot } => {
                    address(&mut j, Some("a"), a);
                    j.num(Some("i"), *slot as f64);
                    EventKind::RcptTo as u32
                }
                HookCall::Secure => EventKind::OnSecure as u32,
                HookCall::Auth(request) => {
                    auth(&mut j, request);
                    EventKind::OnAuth as u32
                }
            };
            (k, conn)
        }
        Event::DataStart {
            conn,
            sync: s,
            first,
        } => {
            sync(&mut j, &s);
            if let Some((chunk, end, total)) = first {
                body_fields(&mut j, end, total);
                buf = nonempty(chunk);
            }
            (EventKind::DataStart as u32, conn)
        }
        Event::Body {
            conn,
            chunk,
            end,
            total,
        } => {
            body_fields(&mut j, end, total);
            buf = nonempty(chunk);
            (EventKind::Body as u32, conn)
        }
        Event::DataAbort { conn, reset } => (
            if reset {
                EventKind::DataReset as u32
            } else {
                EventKind::DataAbort as u32
            },
            conn,
        ),
        Event::Error {
            conn,
            code,
            message,
            remote_address,
        } => {
            j.str(Some("code"), &code)
                .str(Some("msg"), &message)
                .str(Some("ra"), &remote_address);
            (EventKind::Error as u32, conn)
        }
        Event::Trace { conn, entries } => {
            trace(&mut j, &entries);
            (EventKind::Trace as u32, conn)
        }
        Event::Close { conn, sync: s } => {
            sync(&mut j, &s);
            (EventKind::Close as u32, conn)
        }
        Event::Sni { id, servername } => {
            j.str(Some("name"), &servername);
            (EventKind::Sni as u32, id)
        }
        Event::ServerClosed => (EventKind::ServerClosed as u32, 0),
        Event::PipeWrite { pipe, data } => {
            buf = nonempty(data);
            (EventKind::PipeWrite as u32, pipe)
        }
        Event::PipeEnd { pipe } => (EventKind::PipeEnd as u32, pipe),
        Event::PipeDrain { pipe } => (EventKind::PipeDrain as u32, pipe),
    };
    j.end();
    Encoded {
        kind: k,
        conn: c,
        json: j.finish(),
        body: buf,
    }
}
