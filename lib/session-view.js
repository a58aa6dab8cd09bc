'use strict';

// The connection and its session object as the application sees them: the native side
// owns the session state, and each event carries what changed since the last one.

const { ConnectionSocket } = require('./connection-socket.js');
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
    return this._sock || (this._sock = new ConnectionSocket(this));
  }

  /** `session.xClient`, one Map for the whole connection. */
  _xClientMap() {
    return this._xClient || (this._xClient = new Map());
  }

  /** `session.xForward`, one Map for the whole connection. */
  _xForwardMap() {
    return this._xForward || (this._xForward = new Map());
  }

  /** Sends a reply line to the client. */
  send(code, text) {
    this._answers.direct().send(this.cid, replyCode(code, 500), text === undefined || text === null ? '' : String(text));
  }

  /** Sends bytes to the client as they are. */
  _sendRaw(bytes) {
    this._answers.direct().sendRaw(this.cid, bytes);
  }

  /** Closes the connection. */
  close() {
    this._answers.direct().closeConnection(this.cid);
  }

  /** The envelope of a new transaction, as smtp-server's reset creates it. */
  _freshEnvelope(options) {
    const envelope = { mailFrom: false, rcptTo: [], requireTLS: false, bodyType: '7bit', smtpUtf8: false };
    if (!options.hideDSN) {
      envelope.dsn = { ret: null, envid: null };
    }
    return envelope;
  }

  /** The fields smtp-server assigns on every reset, and a new envelope. */
  _applyView(session, v, options) {
    const conn = this;
    assignAddresses(conn, v);
    conn.clientHostname = v.ch;
    assignAddresses(session, v);
    session.clientHostname = v.ch;
    session.openingCommand = v.oc;
    session.hostNameAppearsAs = v.hn;
    session.xClient = conn._xClientMap();
    session.xForward = conn._xForwardMap();
    session.transmissionType = v.tt;
    session.tlsOptions = conn.tlsOptions;
    session.envelope = this._freshEnvelope(options);
  }

  /** Applies the session changes an event carries (`s`). */
  _applySync(s, options) {
    const conn = this;
    const session = conn.session;
    if (s.v) {
      conn._view = s.v;
      this._applyView(session, s.v, options);
      session.transaction = s.v.tr;
    } else if (s.tr !== undefined && conn._view) {
      // a reset that changed nothing but the transaction counter: the fields are
      // assigned again all the same, undoing what handlers changed, as smtp-server does
      this._applyView(session, conn._view, options);
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
      if (envelope.rcptTo.length > s.rf) {
        envelope.rcptTo.length = s.rf;
      }
      for (const rcpt of s.r) {
        envelope.rcptTo.push(rcpt);
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
      replaceEntries(conn._xClientMap(), s.xc);
    }
    if (s.xf) {
      replaceEntries(conn._xForwardMap(), s.xf);
    }
    if (s.uc) {
      session.user = false;
    }
    if (s.sn !== undefined) {
      session.servername = s.sn !== null ? s.sn : conn._tls ? false : undefined;
    }
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

module.exports = { SMTPConnection };
