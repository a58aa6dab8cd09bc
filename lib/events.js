'use strict';

// The events the native side sends: decoded, applied to the connections and their
// session objects, and routed to the handler calls and the server's own events.

const dns = require('node:dns');
const { nativeTls } = require('./tls.js');
const { SMTPConnection, applySync, dataStreamOf, setDataStream, markError, hadError, connectionClosed } = require('./session-view.js');
const { logTrace, logUser } = require('./trace-log.js');
const { bodyPiece } = require('./data-stream.js');

/**
 * Handles the event batches of one server. `host` gives what it works with: `server`
 * (the SMTPServer: options, logger, connections, events), `answers` (lib/answers.js),
 * `handlers` (lib/handlers.js), `attached` (lib/attached.js), `kinds` (`EventKind`,
 * defined in Rust), and the server's callbacks `connectionsChanged()`, `refreshHooks()`,
 * `serverClosed()` and `wantsOnClose()`.
 */
class EventDispatch {
  constructor(host) {
    this._host = host;
    this._server = host.server;
    this._answers = host.answers;
    this._handlers = host.handlers;
    this._kinds = host.kinds;
    this._conns = new Map();
    this.dispatch = this.dispatch.bind(this);
  }

  /**
   * The events the native side queued, four slots each (kind, connection, JSON text
   * or null, bytes or null), handled in order. An exception thrown by one (from an
   * event listener) does not keep the others from being handled; it is thrown after.
   */
  dispatch(list) {
    let failure = null;
    for (let i = 0; i < list.length; i += 4) {
      try {
        this._one(list[i], list[i + 1], list[i + 2], list[i + 3]);
      } catch (err) {
        if (failure) {
          process.nextTick(rethrow, err);
        } else {
          failure = { err };
        }
      }
    }
    if (failure) {
      throw failure.err;
    }
  }

  _one(k, c, json, b) {
    const EV = this._kinds;
    if (k === EV.PipeWrite || k === EV.PipeEnd || k === EV.PipeDrain) {
      return this._host.attached.event(k, c, b);
    }
    const ev = json ? JSON.parse(json) : {};
    const conn = this._conns.get(c);
    if (conn && ev.s) {
      // what changed in the session since the last event
      applySync(conn, ev.s, this._server.options);
    }
    switch (k) {
      case EV.Open:
        return this._open(c, ev);
      case EV.Reverse:
        return conn && this._reverse(conn, ev.ip);
      case EV.OnConnect:
        return conn && this._handlers.connect(conn);
      case EV.ConnectEvent:
        return conn && this._connectEvent(conn, ev);
      case EV.MailFrom:
      case EV.RcptTo:
        return conn && this._handlers.address(conn, k === EV.MailFrom, ev.a, ev.i);
      case EV.DataStart:
        return conn && this._handlers.data(conn, b, ev.e, ev.n);
      case EV.Body: {
        const stream = conn && dataStreamOf(conn);
        return stream && bodyPiece(stream, b, ev.e, ev.n);
      }
      case EV.DataAbort:
        return conn && this._dataAbort(conn);
      case EV.DataReset:
        if (conn) {
          this._dataAbort(conn, true);
          // results and acknowledgements from now on are about the next stream
          this._answers.direct().dataAborted(c);
        }
        return;
      case EV.Error:
        return this._error(conn, ev);
      case EV.Close:
        return conn && this._close(conn);
      case EV.ServerClosed:
        return this._host.serverClosed();
      case EV.OnSecure:
        return conn && this._handlers.secure(conn);
      case EV.OnAuth:
        return conn && this._handlers.auth(conn, ev.auth);
      case EV.Sni:
        return this._sni(c, ev.name);
      case EV.Trace:
        return conn && logTrace(this._server.logger, this._server.options, conn, ev.t);
    }
  }

  _open(cid, ev) {
    const server = this._server;
    const conn = new SMTPConnection(server, this._answers, cid, ev);
    if (ev.px && server.options.logger) {
      // the address as the header wrote it (lower-cased), as smtp-server checks and logs it
      const proxied = String(ev.px[1]).trim().toLowerCase();
      if (!(server.options.ignoredHosts && server.options.ignoredHosts.includes(proxied))) {
        server.logger.info({ tnx: 'proxy', cid: conn.id, proxy: proxied }, '[%s] PROXY from %s through %s (%s)', conn.id, proxied, String(ev.px[2]).trim().toLowerCase(), JSON.stringify(ev.px));
      }
    }
    this._conns.set(cid, conn);
    server.connections.add(conn);
    this._host.connectionsChanged();
    this._host.refreshHooks();
  }

  /**
   * `SNICallback(servername, cb)`: `cb(err, options)` with TLS options (`key`, `cert`,
   * ...) for that name; an error, or nothing, falls back to the default certificate.
   */
  _sni(id, servername) {
    const server = this._server;
    const logger = server.logger;
    let answered = false;
    const answer = settings => {
      if (answered) {
        return;
      }
      answered = true;
      try {
        this._answers.direct().sniResult(id, settings);
      } catch (err) {
        logger.error({ tnx: 'sni', servername, err }, 'Invalid SNI certificate for %s: %s', servername, err.message);
      }
    };
    const callback = (err, ctx) => {
      if (err) {
        logger.error({ tnx: 'sni', servername, err }, 'Failed to fetch SNI context for servername %s', servername);
        return answer(null);
      }
      if (!ctx || typeof ctx !== 'object') {
        return answer(null);
      }
      if (ctx.context && !ctx.key && !ctx.cert && !ctx.pfx) {
        logger.error({ tnx: 'sni', servername }, 'SNICallback for %s returned a SecureContext; smtp-server-rs needs TLS options ({key, cert})', servername);
        return answer(null);
      }
      let settings;
      try {
        settings = nativeTls(Object.assign({}, server.options, ctx, { sniOptions: undefined, SNICallback: undefined }), name => String(name || '').trim());
      } catch (e) {
        logger.error({ tnx: 'sni', servername, err: e }, 'Invalid SNI options for %s: %s', servername, e.message);
        return answer(null);
      }
      answer(settings);
    };
    try {
      server.options.SNICallback(servername, callback);
    } catch (err) {
      logger.error({ tnx: 'sni', servername, err }, 'SNICallback failed for %s: %s', servername, err && err.message);
      answer(null);
    }
  }

  _reverse(conn, ip) {
    const server = this._server;
    const opts = server.options;
    const resolver = opts.resolver && typeof opts.resolver.reverse === 'function' ? opts.resolver : dns;
    let answered = false;
    const reply = (err, hostnames) => {
      if (answered) {
        return;
      }
      answered = true;
      if (err) {
        server.logger.error({ tnx: 'connection', cid: conn.id, host: ip, err }, 'Reverse resolve for %s: %s', ip, err.message);
      }
      const first = !err && Array.isArray(hostnames) ? hostnames[0] : null;
      this._answers.direct().reverseResult(conn.cid, typeof first === 'string' ? first : null);
    };
    try {
      resolver.reverse(String(ip), reply);
    } catch (err) {
      reply(err);
    }
  }

  _connectEvent(conn, ev) {
    if (ev.w) {
      // the greeting waits for the listeners
      process.nextTick(() => this._answers.hook(this._kinds.ConnectEvent, conn.cid, 0, null));
    }
    this._server.emit('connect', {
      id: conn.id,
      localAddress: ev.la,
      localPort: ev.lp,
      remoteAddress: ev.ra,
      remotePort: ev.rp,
      hostNameAppearsAs: ev.hn,
      clientHostname: ev.ch
    });
  }

  _dataAbort(conn, reset) {
    const stream = dataStreamOf(conn);
    setDataStream(conn, null);
    if (stream && !stream.destroyed && !stream.readableEnded) {
      const err = new Error(reset ? 'The transaction was reset before the message was received in full' : 'Connection closed before the message was received in full');
      err.code = reset ? 'ERESET' : 'ECONNECTION';
      stream.destroy(stream.listenerCount('error') ? err : undefined);
    }
  }

  _error(conn, ev) {
    const server = this._server;
    const err = new Error(ev.msg);
    err.code = ev.code;
    err.remoteAddress = ev.ra;
    if (conn) {
      markError(conn);
    }
    server.logger.error({ err, tnx: 'error', user: conn && logUser(conn.session) }, '%s %s %s', conn ? conn.id : '', ev.ra, err.message);
    // a client's misbehaviour must not take the process down
    if (server.listenerCount('error')) {
      server.emit('error', err);
    }
  }

  _close(conn) {
    const server = this._server;
    if (dataStreamOf(conn)) {
      this._dataAbort(conn);
    }
    this._conns.delete(conn.cid);
    server.connections.delete(conn);
    this._host.connectionsChanged();
    connectionClosed(conn);
    if (server.options.logger) {
      const user = logUser(conn.session);
      const afterError = hadError(conn);
      server.logger.info({ tnx: 'close', cid: conn.id, host: conn.remoteAddress, user, hadError: afterError }, '%s received "close" event from %s' + (afterError ? ' after error' : ''), conn.id, conn.remoteAddress);
      server.logger.info({ tnx: 'close', cid: conn.id, host: conn.remoteAddress, user }, 'Connection closed to %s', conn.clientHostname || conn.remoteAddress);
    }
    if (this._host.wantsOnClose()) {
      this._handlers.close(conn);
    }
  }
}

function rethrow(err) {
  throw err;
}

module.exports = { EventDispatch };
