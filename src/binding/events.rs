//! The events a server sends to its JavaScript side, and their conversion to JS objects.
//!
//! Every event is one plain object with short keys (`k` kind, `c` connection), read by
//! the dispatcher in `index.js`.

use napi::bindgen_prelude::{Array, Buffer, JsValue, Null, Object, ToNapiValue};
use napi::{sys, Env, Result};

use crate::protocol::address::ParamValue;
use crate::protocol::session::{Address, AuthRequest, ConnectInfo, HookCall, Peer, SessionSync};
use crate::protocol::xclient::XValue;

/// Event kinds, as the `k` field.
pub mod kind {
    /// A connection was accepted.
    pub const OPEN: u32 = 1;
    /// Reverse lookup request.
    pub const REVERSE: u32 = 2;
    /// `onConnect`.
    pub const ON_CONNECT: u32 = 3;
    /// The `connect` event.
    pub const CONNECT_EVENT: u32 = 4;
    /// `onMailFrom`.
    pub const MAIL_FROM: u32 = 5;
    /// `onRcptTo`.
    pub const RCPT_TO: u32 = 6;
    /// `onData` starts.
    pub const DATA_START: u32 = 7;
    /// A body piece.
    pub const BODY: u32 = 8;
    /// The client left mid-DATA.
    pub const DATA_ABORT: u32 = 9;
    /// An `error` event.
    pub const ERROR: u32 = 10;
    /// The connection closed.
    pub const CLOSE: u32 = 11;
    /// The server closed.
    pub const SERVER_CLOSED: u32 = 12;
    /// `onSecure`.
    pub const ON_SECURE: u32 = 13;
    /// `onAuth`.
    pub const ON_AUTH: u32 = 14;
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
    /// The client left mid-DATA.
    DataAbort {
        /// Connection.
        conn: u32,
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
    /// The connection closed.
    Close {
        /// Connection.
        conn: u32,
        /// Session changes.
        sync: SessionSync,
    },
    /// The server is closed.
    ServerClosed,
}

/// A JS value handed back to napi as it is.
pub struct Raw(sys::napi_value);

impl ToNapiValue for Raw {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        Ok(val.0)
    }
}

fn set_peer(obj: &mut Object, peer: &Peer) -> Result<()> {
    obj.set("la", peer.local_address.as_str())?;
    obj.set("lp", u32::from(peer.local_port))?;
    obj.set("ra", peer.remote_address.as_str())?;
    obj.set("rp", u32::from(peer.remote_port))?;
    Ok(())
}

fn address_object<'e>(env: &'e Env, addr: &Address) -> Result<Object<'e>> {
    let mut obj = Object::new(env)?;
    obj.set("address", addr.parsed.address.as_str())?;
    match &addr.parsed.args {
        None => obj.set("args", false)?,
        Some(args) => {
            let mut a = Object::new(env)?;
            for (k, v) in args {
                match v {
                    ParamValue::Flag => a.set(k, true)?,
                    ParamValue::Value(s) => a.set(k, s.as_str())?,
                }
            }
            obj.set("args", a)?;
        }
    }
    if let Some(dsn) = &addr.dsn {
        let mut d = Object::new(env)?;
        if let Some(notify) = &dsn.notify {
            d.set("notify", notify.clone())?;
        }
        if let Some(orcpt) = &dsn.orcpt {
            d.set("orcpt", orcpt.as_str())?;
        }
        obj.set("dsn", d)?;
    }
    Ok(obj)
}

fn auth_object<'e>(env: &'e Env, r: &AuthRequest) -> Result<Object<'e>> {
    let mut obj = Object::new(env)?;
    obj.set("method", r.method)?;
    obj.set("username", r.username.as_str())?;
    for (key, value) in [
        ("authcid", &r.authcid),
        ("authzid", &r.authzid),
        ("password", &r.password),
        ("accessToken", &r.access_token),
        ("challenge", &r.challenge),
        ("challengeResponse", &r.challenge_response),
    ] {
        if let Some(v) = value {
            obj.set(key, v.as_str())?;
        }
    }
    obj.set("tt", r.transmission_type.as_str())?;
    Ok(obj)
}

fn set_xvalue(obj: &mut Object, key: &str, value: &XValue) -> Result<()> {
    match value {
        XValue::Str(s) => obj.set(key, s.as_str()),
        XValue::Num(n) => obj.set(key, *n),
        XValue::False => obj.set(key, false),
    }
}

fn xmap<'e>(env: &'e Env, entries: &[(String, XValue)]) -> Result<Array<'e>> {
    let mut arr = env.create_array(entries.len() as u32)?;
    for (i, (k, v)) in entries.iter().enumerate() {
        let mut pair = Object::new(env)?;
        pair.set("k", k.as_str())?;
        set_xvalue(&mut pair, "v", v)?;
        arr.set(i as u32, pair)?;
    }
    Ok(arr)
}

fn opt_str(obj: &mut Object, key: &str, v: Option<&str>) -> Result<()> {
    match v {
        Some(s) => obj.set(key, s),
        None => obj.set(key, false),
    }
}

fn sync_object<'e>(env: &'e Env, sync: &SessionSync) -> Result<Object<'e>> {
    let mut obj = Object::new(env)?;
    obj.set("g", sync.generation)?;
    if let Some(view) = &sync.view {
        let mut v = Object::new(env)?;
        set_peer(&mut v, &view.peer)?;
        v.set("ch", view.client_hostname.as_str())?;
        opt_str(&mut v, "oc", view.opening_command)?;
        opt_str(&mut v, "hn", view.host_name_appears_as.as_deref())?;
        v.set("tt", view.transmission_type.as_str())?;
        v.set("tr", view.transaction)?;
        set_xvalue(&mut v, "rp", &view.remote_port)?;
        obj.set("v", v)?;
    }
    if let Some(flags) = &sync.envelope_flags {
        let mut f = Object::new(env)?;
        f.set("requireTLS", flags.require_tls)?;
        f.set("bodyType", flags.body_type.as_str())?;
        f.set("smtpUtf8", flags.smtp_utf8)?;
        match &flags.dsn_ret {
            Some(r) => f.set("ret", r.as_str())?,
            None => f.set("ret", Null)?,
        }
        match &flags.dsn_envid {
            Some(e) => f.set("envid", e.as_str())?,
            None => f.set("envid", Null)?,
        }
        obj.set("f", f)?;
    }
    if let Some(mail) = &sync.mail_from {
        obj.set("m", address_object(env, mail)?)?;
    }
    if !sync.rcpts.is_empty() {
        obj.set("rf", sync.rcpt_from as u32)?;
        let mut arr: Array = env.create_array(sync.rcpts.len() as u32)?;
        for (i, r) in sync.rcpts.iter().enumerate() {
            arr.set(i as u32, address_object(env, r)?)?;
        }
        obj.set("r", arr)?;
    }
    if let Some(err) = &sync.error {
        obj.set("err", err.as_str())?;
    }
    if sync.wizard {
        obj.set("wiz", true)?;
    }
    if let Some(tls) = &sync.tls {
        let mut t = Object::new(env)?;
        t.set("name", tls.name.as_str())?;
        t.set("standardName", tls.standard_name.as_str())?;
        t.set("version", tls.version.as_str())?;
        match &tls.servername {
            Some(n) => t.set("servername", n.as_str())?,
            None => t.set("servername", false)?,
        }
        t.set("authorized", tls.authorized)?;
        if let Some(err) = &tls.authorization_error {
            t.set("authorizationError", err.as_str())?;
        }
        if let Some(cert) = &tls.peer_certificate {
            t.set("cert", Buffer::from(cert.clone()))?;
        }
        obj.set("t", t)?;
    }
    if let Some(entries) = &sync.xclient {
        obj.set("xc", xmap(env, entries)?)?;
    }
    if let Some(entries) = &sync.xforward {
        obj.set("xf", xmap(env, entries)?)?;
    }
    if sync.user_cleared {
        obj.set("uc", true)?;
    }
    if let Some(name) = &sync.servername {
        match name {
            Some(n) => obj.set("sn", n.as_str())?,
            None => obj.set("sn", Null)?,
        }
    }
    Ok(obj)
}

/// Builds the JS object of an event.
pub fn to_js(env: &Env, event: Event) -> Result<Raw> {
    let mut obj = Object::new(env)?;
    match event {
        Event::Open {
            conn,
            id,
            peer,
            secure,
        } => {
            obj.set("k", kind::OPEN)?;
            obj.set("c", conn)?;
            obj.set("id", id)?;
            set_peer(&mut obj, &peer)?;
            obj.set("secure", secure)?;
        }
        Event::Reverse { conn, ip } => {
            obj.set("k", kind::REVERSE)?;
            obj.set("c", conn)?;
            obj.set("ip", ip)?;
        }
        Event::OnConnect { conn, sync } => {
            obj.set("k", kind::ON_CONNECT)?;
            obj.set("c", conn)?;
            obj.set("s", sync_object(env, &sync)?)?;
        }
        Event::ConnectEvent { conn, sync, info } => {
            obj.set("k", kind::CONNECT_EVENT)?;
            obj.set("c", conn)?;
            obj.set("s", sync_object(env, &sync)?)?;
            obj.set("ch", info.client_hostname)?;
            opt_str(&mut obj, "hn", info.host_name_appears_as.as_deref())?;
            obj.set("la", info.local_address)?;
            obj.set("lp", u32::from(info.local_port))?;
            obj.set("ra", info.remote_address)?;
            set_xvalue(&mut obj, "rp", &info.remote_port)?;
        }
        Event::Address { conn, call, sync } => {
            let (k, addr) = match &call {
                HookCall::MailFrom(a) => (kind::MAIL_FROM, Some(a)),
                HookCall::RcptTo(a) => (kind::RCPT_TO, Some(a)),
                HookCall::Secure => (kind::ON_SECURE, None),
                HookCall::Auth(request) => {
                    obj.set("auth", auth_object(env, request)?)?;
                    (kind::ON_AUTH, None)
                }
            };
            obj.set("k", k)?;
            obj.set("c", conn)?;
            obj.set("s", sync_object(env, &sync)?)?;
            if let Some(addr) = addr {
                obj.set("a", address_object(env, addr)?)?;
            }
        }
        Event::DataStart { conn, sync, first } => {
            obj.set("k", kind::DATA_START)?;
            obj.set("c", conn)?;
            obj.set("s", sync_object(env, &sync)?)?;
            if let Some((chunk, end, total)) = first {
                if !chunk.is_empty() {
                    obj.set("b", Buffer::from(chunk))?;
                }
                obj.set("e", end)?;
                obj.set("n", total as f64)?;
            }
        }
        Event::Body {
            conn,
            chunk,
            end,
            total,
        } => {
            obj.set("k", kind::BODY)?;
            obj.set("c", conn)?;
            if !chunk.is_empty() {
                obj.set("b", Buffer::from(chunk))?;
            }
            obj.set("e", end)?;
            obj.set("n", total as f64)?;
        }
        Event::DataAbort { conn } => {
            obj.set("k", kind::DATA_ABORT)?;
            obj.set("c", conn)?;
        }
        Event::Error {
            conn,
            code,
            message,
            remote_address,
        } => {
            obj.set("k", kind::ERROR)?;
            obj.set("c", conn)?;
            obj.set("code", code)?;
            obj.set("msg", message)?;
            obj.set("ra", remote_address)?;
        }
        Event::Close { conn, sync } => {
            obj.set("k", kind::CLOSE)?;
            obj.set("c", conn)?;
            obj.set("s", sync_object(env, &sync)?)?;
        }
        Event::ServerClosed => {
            obj.set("k", kind::SERVER_CLOSED)?;
        }
    }
    Ok(Raw(obj.raw()))
}
