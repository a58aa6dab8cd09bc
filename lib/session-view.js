'use strict';

// The connection and its session object as the application sees them: the native side
// owns the session state, and each event carries what changed since the last one.

const { ConnectionSocket, socketClosed } = require('./connection-socket.js');
const { replyCode } = require('./handler-call.js');

/**
 * A client connection as the application sees it in `server.connections`.
 */
class SMTPConnection {
  /** `answers`: the server's answer queue (lib/answers.js). */
  constructor(server, answers, cid, ev) {
    this._server = server;
    this._answers = answers;
    this.cid = cid;
    this.id = ev.id;
    assignAddresses(this, ev);
    this.secure = ev.secure;
    this.session = { id: ev.id, secure: ev.secure };
    this.tlsOptions = false;
    this.clientHostname = undefined;
    // created with the session's fields (an idle connection may never need them)
    this._xClient = null;
    this._xForward = null;
    this._view = null;
    this._tls = undefined;
    this._dataStream = null;
    this._generation = -1;
    this._disabledKey = undefined;
    this._sock = null;
  }

  /** smtp-server's private socket, for code that writes to it or destroys it. */
  get _socket() {
    return this._sock || (this._sock = new ConnectionSocket(this, bytes => this._answers.direct().sendRaw(this.cid, bytes)));
  }

  /** Sends a reply line to the client. */
  send(code, text) {
    this._answers.direct().send(this.cid, replyCode(code, 500), text === undefined || text === null ? '' : String(text));
  }

  /** Closes the connection. */
  close() {
    this._answers.direct().closeConnection(this.cid);
  }
}

/** The envelope of a new transaction, as smtp-server's reset creates it. */
function freshEnvelope(options) {
  const envelope = { mailFrom: false, rcptTo: [], requireTLS: false, bodyType: '7bit', smtpUtf8: false };
  if (!options.hideDSN) {
    envelope.dsn = { ret: null, envid: null };
  }
  return envelope;
}

/** The fields of `conn` and `session` smtp-server assigns on every reset, and a new envelope. */
function applyView(conn, session, v, options) {
  assignAddresses(conn, v);
  conn.clientHostname = v.ch;
  assignAddresses(session, v);
  session.clientHostname = v.ch;
  session.openingCommand = v.oc;
  session.hostNameAppearsAs = v.hn;
  session.xClient = xClientMap(conn);
  session.xForward = xForwardMap(conn);
  session.transmissionType = v.tt;
  session.tlsOptions = conn.tlsOptions;
  session.envelope = freshEnvelope(options);
}

/** Applies the session changes an event carries (`s`) to `conn` and its session. */
function applySync(conn, s, options) {
  const session = conn.session;
  if (s.v) {
    conn._view = s.v;
    applyView(conn, session, s.v, options);
    session.transaction = s.v.tr;
  } else if (s.tr !== undefined && conn._view) {
    // a reset that changed nothing but the transaction counter: the fields are
    // assigned again all the same, undoing what handlers changed, as smtp-server does
    applyView(conn, session, conn._view, options);
    session.transaction = s.tr;
  }
  const envelope = session.envelope;
  if (s.f && envelope) {
    envelope.requireTLS = s.f.requireTLS;
    envelope.bodyType = s.f.bodyType;
    envelope.smtpUtf8 = s.f.smtpUtf8;
    if (envelope.dsn) {
      envelope.dsn.ret = s.f.ret;
      envelope.dsn.envid = s.f.envid;
    }
  }
  if (s.m && envelope) {
    envelope.mailFrom = s.m;
  }
  if (s.r && envelope) {
    // each at its place: in place of an earlier one with the same address, or at the end
    const rcptTo = envelope.rcptTo;
    for (let i = 0; i < s.r.length; i++) {
      rcptTo[Math.min(s.ri[i], rcptTo.length)] = s.r[i];
    }
  }
  if (s.err !== undefined) {
    session.error = s.err;
  }
  if (s.wiz) {
    session.isWizard = true;
  }
  if (s.t) {
    if (s.t.cert) {
      s.t.cert = Buffer.from(s.t.cert, 'base64');
    }
    conn._tls = s.t;
    conn.secure = true;
    conn.tlsOptions = { name: s.t.name, standardName: s.t.standardName, version: s.t.version };
    session.secure = true;
    session.tlsOptions = conn.tlsOptions;
  }
  if (s.xc) {
    replaceEntries(xClientMap(conn), s.xc);
  }
  if (s.xf) {
    replaceEntries(xForwardMap(conn), s.xf);
  }
  if (s.uc) {
    session.user = false;
  }
  if (s.sn !== undefined) {
    session.servername = s.sn !== null ? s.sn : conn._tls ? false : undefined;
  }
}

/** `session.xClient`, one Map for the whole connection. */
function xClientMap(conn) {
  return conn._xClient || (conn._xClient = new Map());
}

/** `session.xForward`, one Map for the whole connection. */
function xForwardMap(conn) {
  return conn._xForward || (conn._xForward = new Map());
}

/** The TLS details of `conn` (as the native side sent them), or undefined before TLS. */
function tlsOf(conn) {
  return conn._tls;
}

/** The message stream of the transaction `conn` is in, or null. */
function dataStreamOf(conn) {
  return conn._dataStream;
}

/** Makes `stream` (or null) the message stream of `conn`. */
function setDataStream(conn, stream) {
  conn._dataStream = stream;
}

/** Records `disabledKey` (what the native side was told about `session.disabledCommands`); true when it changed. */
function disabledKeyChanged(conn, disabledKey) {
  if (disabledKey === conn._disabledKey) {
    return false;
  }
  conn._disabledKey = disabledKey;
  return true;
}

/** A socket error happened on `conn`. */
function markError(conn) {
  conn._hadError = true;
}

/** True once a socket error happened on `conn`. */
function hadError(conn) {
  return !!conn._hadError;
}

/** `conn` closed: its `_socket`, if the application asked for it, ends and closes. */
function connectionClosed(conn) {
  if (conn._sock) {
    socketClosed(conn._sock, conn._hadError);
  }
}

/** Copies the local and remote address and port of an event (`la`, `lp`, `ra`, `rp`) to `target`. */
function assignAddresses(target, v) {
  target.localAddress = v.la;
  target.localPort = v.lp;
  target.remoteAddress = v.ra;
  target.remotePort = v.rp;
}

/** Makes `map` hold exactly `entries` (`{k, v}` pairs, in order). */
function replaceEntries(map, entries) {
  map.clear();
  for (const { k, v } of entries) {
    map.set(k, v);
  }
}

module.exports = { SMTPConnection, applySync, tlsOf, dataStreamOf, setDataStream, disabledKeyChanged, markError, hadError, connectionClosed };
