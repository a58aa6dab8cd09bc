'use strict';

const { EventEmitter } = require('node:events');
const crypto = require('node:crypto');
const dns = require('node:dns');
const os = require('node:os');
const native = require('./binding.js');
const { NetServerFacade } = require('./lib/net-facade.js');
const { createLogger } = require('./lib/logger.js');
const { nativeTls, SecureSocketInfo } = require('./lib/tls.js');
const { openDataStream } = require('./lib/data-stream.js');
const { AnswerQueue } = require('./lib/answers.js');
const { AttachedSockets } = require('./lib/attached.js');
const { logTrace, logUser } = require('./lib/trace-log.js');
const { replyCode, errorText, isError, settleWithPromise } = require('./lib/handler-call.js');
const { SMTPConnection } = require('./lib/session-view.js');
const tlsOptions = require('./lib/tls-options.js');
const { defineLiveOptions } = require('./lib/live-options.js');
const { watchForStall } = require('./lib/stall-warning.js');

/** Event kinds sent by the native server (defined in src/binding/events.rs). */
const EV = native.EventKind;

/** The handler bits of the native mask (defined in src/protocol/config.rs). */
const HOOK_BITS = native.hookBits();

/** The kinds of onAuth answers (defined in src/binding/mod.rs). */
const AUTH = native.AuthAnswer;

/** The application handlers a server can cross into. */
const HOOKS = ['onConnect', 'onMailFrom', 'onRcptTo', 'onData', 'onClose', 'onSecure', 'onAuth'];

const CLOSE_TIMEOUT = 30 * 1000;

/**
 * An SMTP/LMTP server, compatible with `smtp-server`'s `SMTPServer`.
 */
class SMTPServer extends EventEmitter {
  constructor(options) {
    super();
    this.options = options || {};
    const opts = this.options;
    const hasOwnCertificate = !!(opts.key || opts.cert || opts.pfx || opts.SNICallback || opts.sniOptions);

    opts.disabledCommands = [].concat(opts.disabledCommands || []).map(command => (command || '').toString().toUpperCase().trim());
    this._warnAboutDefaultCertificate(hasOwnCertificate);

    opts.authMethods = [].concat(opts.authMethods || []).map(method => (method || '').toString().toUpperCase().trim());
    if (!opts.authMethods.length) {
      opts.authMethods = ['LOGIN', 'PLAIN'];
    }
    if (opts.hideENHANCEDSTATUSCODES === undefined) {
      opts.hideENHANCEDSTATUSCODES = true;
    }
    if (opts.hideDSN === undefined) {
      opts.hideDSN = true;
    }
    if (opts.hideREQUIRETLS === undefined) {
      opts.hideREQUIRETLS = true;
    }

    this.logger = createLogger(opts, opts.component || 'smtp-server');

    // Handlers are found at call time (instance, subclass or prototype). Assigning one on
    // the instance later goes through these accessors, which tell the native side that
    // it now has to call across for that handler.
    for (const name of HOOKS) {
      let own = typeof opts[name] === 'function' ? opts[name] : undefined;
      Object.defineProperty(this, name, {
        configurable: true,
        enumerable: false,
        get() {
          return own !== undefined ? own : Object.getPrototypeOf(this)[name];
        },
        set(value) {
          own = value;
          if (this._native) {
            this._refreshHooks();
          }
        }
      });
    }

    this._closeTimeout = false;
    this.connections = new Set();
    this._conns = new Map();
    this._native = new native.NativeServer(nativeOptions(opts), this._tlsSettings());
    // options assigned later apply from the next connection or command, as in smtp-server
    this._answers = new AnswerQueue(this._native, native.Answer);
    defineLiveOptions(this, opts, () => this._answers.direct().setOptions(nativeOptions(this.options)));
    // 'connect' listeners make the greeting wait for them (the native side must know)
    const listenersChanged = name => {
      if (name === 'connect') {
        process.nextTick(() => this._refreshHooks());
      }
    };
    this.on('newListener', listenersChanged);
    this.on('removeListener', listenersChanged);
    this._applyTlsDefaults();
    this._dispatch = this._dispatch.bind(this);
    this._sendDataResult = this._sendDataResult.bind(this);
    this._attached = new AttachedSockets(this._answers, EV);
    this.server = new NetServerFacade(this);
  }

  _warnAboutDefaultCertificate(hasOwnCertificate) {
    const opts = this.options;
    const terminatesTls = !opts.secured && (opts.secure || !(opts.hideSTARTTLS || opts.disabledCommands.includes('STARTTLS')));
    if (!terminatesTls || hasOwnCertificate || opts.logger === false) {
      return;
    }
    console.error(
      'WARNING: smtp-server-rs is using the built-in default TLS certificate. ' +
        'The private key of this certificate is publicly known, so TLS sessions are NOT secure. ' +
        'Provide your own key/cert options in production.'
    );
  }

  /** The TLS material for the native side (throws on invalid material, as smtp-server does). */
  _tlsSettings() {
    return nativeTls(this.options, name => String(name || '').trim());
  }

  /** With `secure`, the built-in TLS defaults fill the options that are missing (smtp-server does so). */
  _applyTlsDefaults() {
    if (this.options.secure) {
      const defaults = tlsOptions();
      for (const key of Object.keys(defaults)) {
        if (!(key in this.options)) {
          this.options[key] = defaults[key];
        }
      }
    }
  }

  /**
   * Replaces the certificates (and SNI certificates) for new TLS handshakes; established
   * sessions keep theirs.
   */
  updateSecureContext(options) {
    Object.assign(this.options, options);
    this._native.updateTls(this._tlsSettings());
    this._applyTlsDefaults();
  }

  /** The bit mask of the handlers this server defines (an undefined one is never called). */
  _hookMask() {
    let mask = this.listenerCount('connect') ? HOOK_BITS.connectListeners : 0;
    for (const name of HOOKS) {
      if (typeof this[name] === 'function' && this[name] !== SMTPServer.prototype[name]) {
        mask |= HOOK_BITS[name];
      }
    }
    return mask;
  }

  _refreshHooks() {
    const mask = this._hookMask();
    if (mask !== this._mask) {
      this._mask = mask;
      this._native.setHooks(mask);
    }
  }

  listen(...args) {
    return this.server.listen(...args);
  }

  /**
   * Serves a connection over a socket accepted elsewhere: a `net.Socket`, a
   * `tls.TLSSocket`, or any Duplex with `remoteAddress`, as smtp-server's `connect()`.
   * The socket is taken as it is (no PROXY header is read, no TLS handshake started;
   * STARTTLS works). `socketOptions` may give `remoteAddress`, `remotePort`,
   * `localAddress` and `localPort` in place of the socket's. Its bytes cross between
   * JavaScript and the native core, so this is slower than the server's own sockets.
   */
  connect(socket, socketOptions) {
    const opts = socketOptions || {};
    const peer = {
      remoteAddress: String(opts.remoteAddress || socket.remoteAddress || ''),
      remotePort: Number(opts.remotePort || socket.remotePort) || 0,
      localAddress: String(opts.localAddress || socket.localAddress || ''),
      localPort: Number(opts.localPort || socket.localPort) || 0
    };
    this._mask = this._hookMask();
    const pipe = this._native.attach(peer, this._mask, this._dispatch);
    this._attached.add(pipe, socket);
    // the connection keeps the process alive from now on, as a listening server would
    this.server._applyRef();
  }

  /**
   * Live counters, cheap enough to read every second: connections open now and in
   * total, messages accepted and refused, bytes in and out, TLS handshakes, errors.
   */
  stats() {
    return this._native.stats();
  }

  _logListening(address) {
    const addr = address && typeof address === 'object' ? address : { address: null, port: null, family: null };
    const opts = this.options;
    this.logger.info(
      { tnx: 'listen', host: addr.address, port: addr.port, secure: !!opts.secure, protocol: opts.lmtp ? 'LMTP' : 'SMTP' },
      '%s%s Server listening on %s:%s',
      opts.secure ? 'Secure ' : '',
      opts.lmtp ? 'LMTP' : 'SMTP',
      addr.family === 'IPv4' ? addr.address : '[' + addr.address + ']',
      addr.port
    );
  }

  _logClosed() {
    this.logger.info({ tnx: 'closed' }, (this.options.lmtp ? 'LMTP' : 'SMTP') + ' Server closed');
  }

  /**
   * Stops accepting connections; live ones get `421 Server shutting down` on their next
   * command, and are closed when the grace period (`closeTimeout`) ends.
   */
  close(callback) {
    const connections = this.connections.size;
    const timeout = this.options.closeTimeout || CLOSE_TIMEOUT;
    this.server.close(() => {
      clearTimeout(this._closeTimeout || undefined);
      if (typeof callback === 'function') {
        const cb = callback;
        callback = null;
        return cb();
      }
    });
    if (connections) {
      this.logger.info(
        { tnx: 'close' },
        'Server closing with %s pending connection%s, waiting %s seconds before terminating',
        connections,
        connections !== 1 ? 's' : '',
        timeout / 1000
      );
    }
    this._closeTimeout = setTimeout(() => {
      if (this.connections.size) {
        this.logger.info({ tnx: 'close' }, 'Closing %s pending connection%s to close the server', this.connections.size, this.connections.size !== 1 ? 's' : '');
      }
      this._answers.direct().terminate();
      if (typeof callback === 'function') {
        const cb = callback;
        callback = null;
        cb();
      }
    }, timeout);
    this._closeTimeout.unref();
  }

  // Default handlers, as smtp-server defines them. The native side applies the same
  // defaults without calling into JavaScript when a handler is not overridden.

  onAuth(auth, session, callback) {
    if (auth.method === 'XOAUTH2') {
      return callback(null, { data: { status: '401', schemes: 'bearer mac', scope: 'https://mail.google.com/' } });
    }
    if (auth.method === 'XCLIENT') {
      return callback();
    }
    return callback(null, { message: 'Authentication not implemented' });
  }

  onConnect(session, callback) {
    setImmediate(callback);
  }

  onMailFrom(address, session, callback) {
    setImmediate(callback);
  }

  onRcptTo(address, session, callback) {
    setImmediate(callback);
  }

  onSecure(socket, session, callback) {
    setImmediate(callback);
  }

  onData(stream, session, callback) {
    let chunklen = 0;
    stream.on('data', chunk => {
      chunklen += chunk.length;
    });
    stream.on('end', () => {
      this.logger.info({ tnx: 'message', size: chunklen }, '<received %s bytes>', chunklen);
      callback();
    });
  }

  onClose() {
    // nothing to do
  }

  // ----- events from the native side -----

  /**
   * The events the native side queued, four slots each (kind, connection, JSON text
   * or null, bytes or null), handled in order. An exception thrown by one (from an
   * event listener) does not keep the others from being handled; it is thrown after.
   */
  _dispatch(list) {
    let failure = null;
    for (let i = 0; i < list.length; i += 4) {
      try {
        this._dispatchOne(list[i], list[i + 1], list[i + 2], list[i + 3]);
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

  _dispatchOne(k, c, json, b) {
    if (k === EV.PipeWrite || k === EV.PipeEnd || k === EV.PipeDrain) {
      return this._attached.event(k, c, b);
    }
    const ev = json ? JSON.parse(json) : {};
    const conn = this._conns.get(c);
    switch (k) {
      case EV.Open:
        return this._onOpen(c, ev);
      case EV.Reverse:
        return conn && this._onReverse(conn, ev.ip);
      case EV.OnConnect:
        return conn && this._onConnectHook(conn, ev);
      case EV.ConnectEvent:
        return conn && this._onConnectEvent(conn, ev);
      case EV.MailFrom:
      case EV.RcptTo:
        return conn && this._onAddress(conn, k === EV.MailFrom, ev);
      case EV.DataStart:
        return conn && this._onDataStart(conn, ev, b);
      case EV.Body:
        return conn && conn._dataStream && conn._dataStream._piece(b, ev.e, ev.n);
      case EV.DataAbort:
        return conn && this._onDataAbort(conn);
      case EV.DataReset:
        if (conn) {
          this._onDataAbort(conn, true);
          // results and acknowledgements from now on are about the next stream
          this._answers.direct().dataAborted(c);
        }
        return;
      case EV.Error:
        return this._onConnectionError(conn, ev);
      case EV.Close:
        return conn && this._onConnClose(conn, ev);
      case EV.ServerClosed:
        return this.server._closed();
      case EV.OnSecure:
        return conn && this._onSecureHook(conn, ev);
      case EV.OnAuth:
        return conn && this._onAuthHook(conn, ev);
      case EV.Sni:
        return this._onSni(c, ev.name);
      case EV.Trace:
        return conn && logTrace(this.logger, this.options, conn, ev.t);
    }
  }

  _onOpen(cid, ev) {
    const conn = new SMTPConnection(this, cid, ev);
    if (ev.px && this.options.logger) {
      // the address as the header wrote it (lower-cased), as smtp-server checks and logs it
      const proxied = String(ev.px[1]).trim().toLowerCase();
      if (!(this.options.ignoredHosts && this.options.ignoredHosts.includes(proxied))) {
        this.logger.info({ tnx: 'proxy', cid: conn.id, proxy: proxied }, '[%s] PROXY from %s through %s (%s)', conn.id, proxied, String(ev.px[2]).trim().toLowerCase(), JSON.stringify(ev.px));
      }
    }
    this._conns.set(cid, conn);
    this.connections.add(conn);
    this.server._connectionsChanged();
    this._refreshHooks();
  }

  /**
   * `SNICallback(servername, cb)`: `cb(err, options)` with TLS options (`key`, `cert`,
   * ...) for that name; an error, or nothing, falls back to the default certificate.
   */
  _onSni(id, servername) {
    let answered = false;
    const answer = settings => {
      if (answered) {
        return;
      }
      answered = true;
      try {
        this._answers.direct().sniResult(id, settings);
      } catch (err) {
        this.logger.error({ tnx: 'sni', servername, err }, 'Invalid SNI certificate for %s: %s', servername, err.message);
      }
    };
    const callback = (err, ctx) => {
      if (err) {
        this.logger.error({ tnx: 'sni', servername, err }, 'Failed to fetch SNI context for servername %s', servername);
        return answer(null);
      }
      if (!ctx || typeof ctx !== 'object') {
        return answer(null);
      }
      if (ctx.context && !ctx.key && !ctx.cert && !ctx.pfx) {
        this.logger.error({ tnx: 'sni', servername }, 'SNICallback for %s returned a SecureContext; smtp-server-rs needs TLS options ({key, cert})', servername);
        return answer(null);
      }
      let settings;
      try {
        settings = nativeTls(Object.assign({}, this.options, ctx, { sniOptions: undefined, SNICallback: undefined }), name => String(name || '').trim());
      } catch (e) {
        this.logger.error({ tnx: 'sni', servername, err: e }, 'Invalid SNI options for %s: %s', servername, e.message);
        return answer(null);
      }
      answer(settings);
    };
    try {
      this.options.SNICallback(servername, callback);
    } catch (err) {
      this.logger.error({ tnx: 'sni', servername, err }, 'SNICallback failed for %s: %s', servername, err && err.message);
      answer(null);
    }
  }

  _onAuthHook(conn, ev) {
    conn._applySync(ev.s, this.options);
    const a = ev.auth;
    let auth;
    switch (a.method) {
      case 'PLAIN':
        auth = { method: a.method, username: a.username, authcid: a.authcid, authzid: a.authzid, password: a.password };
        break;
      case 'LOGIN':
        auth = { method: a.method, username: a.username, password: a.password };
        break;
      case 'XOAUTH2':
        auth = { method: a.method, username: a.username, accessToken: a.accessToken };
        break;
      case 'XCLIENT':
        auth = { method: a.method, username: a.username, password: null };
        break;
      default: {
        const challenge = a.challenge;
        const challengeResponse = a.challengeResponse;
        auth = {
          method: a.method,
          username: a.username,
          challenge,
          challengeResponse,
          validatePassword(password) {
            const expected = Buffer.from(crypto.createHmac('md5', password).update(challenge).digest('hex').toLowerCase());
            const received = Buffer.from(challengeResponse);
            return expected.length === received.length && crypto.timingSafeEqual(expected, received);
          }
        };
      }
    }
    this._callHandler(conn, 'onAuth', [auth, conn.session], (err, response) => {
      if (err) {
        this.logger.info({ err, tnx: 'autherror', cid: conn.id, method: a.method, user: a.username }, 'Authentication error for %s using %s. %s', a.username, a.method, err.message);
        return this._answers.direct().completeAuth(conn.cid, AUTH.Error, replyCode(err.responseCode, -1), errorText(err), null);
      }
      if (!response && a.method === 'XCLIENT') {
        this.logger.info({ tnx: 'authskip', cid: conn.id, method: a.method, user: a.username }, 'Authentication skipped for %s using %s', a.username, a.method);
        return this._answers.direct().completeAuth(conn.cid, AUTH.Skip, -1, null, null);
      }
      response = response || {};
      if (!response.user) {
        this.logger.info({ tnx: 'authfail', cid: conn.id, method: a.method, user: a.username }, 'Authentication failed for %s using %s', a.username, a.method);
        const message = response.message ? String(response.message) : null;
        return this._answers.direct().completeAuth(conn.cid, AUTH.Failure, replyCode(response.responseCode, -1), message, JSON.stringify(response.data || {}));
      }
      this.logger.info({ tnx: 'auth', cid: conn.id, method: a.method, user: a.username }, '%s authenticated using %s', a.username, a.method);
      conn.session.user = response.user;
      conn.session.transmissionType = a.tt;
      this._answers.direct().completeAuth(conn.cid, AUTH.Success, -1, null, null);
    });
  }

  _onSecureHook(conn, ev) {
    conn._applySync(ev.s, this.options);
    const socket = new SecureSocketInfo(conn, conn._tls);
    this._callHandler(conn, 'onSecure', [socket, conn.session], err => {
      if (err) {
        return this._answers.hook(conn.cid, replyCode(err.responseCode, -1), errorText(err));
      }
      this._answers.hook(conn.cid, 0, null);
    });
  }

  /** Tells the native side about `session.disabledCommands` when the application changed it. */
  _syncDisabled(conn) {
    const list = conn.session.disabledCommands;
    let normalized = null;
    if (Array.isArray(list)) {
      normalized = list.map(entry => (entry || '').toString().trim().toUpperCase());
    }
    const key = normalized ? normalized.join('\n') + '\n' : null;
    if (key !== conn._disabledKey) {
      conn._disabledKey = key;
      this._answers.direct().setDisabled(conn.cid, normalized);
    }
  }

  /** Calls a handler with smtp-server's callback conventions; `done` runs once. */
  _callHandler(conn, name, args, done) {
    let called = false;
    const callback = (err, result) => {
      if (called) {
        return;
      }
      called = true;
      this._syncDisabled(conn);
      done(err, result);
    };
    try {
      const handler = this[name];
      const returned = handler.call(this, ...args, callback);
      if (returned && typeof returned.then === 'function') {
        settleWithPromise(returned, handler.length > args.length, callback, err =>
          this.logger.error({ err, tnx: 'command', cid: conn.id }, '%s Failed to process %s: %s', conn.id, name, err && err.message)
        );
      }
    } catch (err) {
      this.logger.error({ err, tnx: 'command', cid: conn.id }, '%s Failed to process %s: %s', conn.id, name, err && err.message);
      if (!called) {
        const error = new Error('Error: internal server error');
        error.responseCode = 451;
        callback(error);
      }
    }
  }

  _onReverse(conn, ip) {
    const opts = this.options;
    const resolver = opts.resolver && typeof opts.resolver.reverse === 'function' ? opts.resolver : dns;
    let answered = false;
    const reply = (err, hostnames) => {
      if (answered) {
        return;
      }
      answered = true;
      if (err) {
        this.logger.error(
          { tnx: 'connection', cid: conn.id, host: ip, err },
          'Reverse resolve for %s: %s',
          ip,
          err.message
        );
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

  _onConnectHook(conn, ev) {
    conn._applySync(ev.s, this.options);
    this._callHandler(conn, 'onConnect', [conn.session], err => {
      this.logger.info({ tnx: 'connection', cid: conn.id, host: conn.remoteAddress, hostname: conn.clientHostname }, 'Connection from %s', conn.clientHostname);
      if (err) {
        return this._answers.hook(conn.cid, replyCode(err.responseCode, -1), errorText(err));
      }
      this._answers.hook(conn.cid, 0, null);
    });
  }

  _onConnectEvent(conn, ev) {
    conn._applySync(ev.s, this.options);
    if (ev.w) {
      // the greeting waits for the listeners
      process.nextTick(() => this._answers.hook(conn.cid, 0, null));
    }
    this.emit('connect', {
      id: conn.id,
      localAddress: ev.la,
      localPort: ev.lp,
      remoteAddress: ev.ra,
      remotePort: ev.rp,
      hostNameAppearsAs: ev.hn,
      clientHostname: ev.ch
    });
  }

  _onAddress(conn, mail, ev) {
    conn._applySync(ev.s, this.options);
    const address = ev.a;
    this._callHandler(conn, mail ? 'onMailFrom' : 'onRcptTo', [address, conn.session], err => {
      if (err) {
        return this._answers.hook(conn.cid, replyCode(err.responseCode, -1), errorText(err));
      }
      // the handler's own address object goes into the envelope, as in smtp-server
      const envelope = conn.session.envelope;
      if (mail) {
        envelope.mailFrom = address;
      } else {
        // at the place the engine gave it (an earlier recipient with the same address, or the end)
        envelope.rcptTo[Math.min(ev.i, envelope.rcptTo.length)] = address;
      }
      this._answers.hook(conn.cid, 0, null);
    });
  }

  _onDataStart(conn, ev, body) {
    conn._applySync(ev.s, this.options);
    const maxBytes = Number(this.options.size) || 0;
    const stream = openDataStream(this._answers, conn, maxBytes, this._sendDataResult);
    this._callHandler(conn, 'onData', [stream, conn.session], (err, message) => stream._handlerAnswered(err, message));
    if (ev.e !== undefined) {
      // the first piece of the body (often all of it) came with the event
      stream._piece(body, ev.e, ev.n);
    }
    if (!stream._handled) {
      watchForStall(stream, this.logger, conn.id);
    }
  }

  /**
   * Sends what onData said: an error, a text, or a list of results (one per LMTP
   * recipient). The native side makes the replies and fills in the default texts.
   */
  _sendDataResult(conn, err, message, discard) {
    if (err) {
      this._answers.data(conn.cid, replyCode(err.responseCode, -1), errorText(err), discard);
    } else if (Array.isArray(message)) {
      const results = message.map(response =>
        isError(response) ? { code: replyCode(response.responseCode, -1), text: errorText(response) } : { code: 0, text: typeof response === 'string' ? response : undefined }
      );
      this._answers.direct().completeData(conn.cid, results, discard);
    } else {
      this._answers.data(conn.cid, 0, typeof message === 'string' ? message : null, discard);
    }
  }

  _onDataAbort(conn, reset) {
    const stream = conn._dataStream;
    conn._dataStream = null;
    if (stream && !stream.destroyed && !stream.readableEnded) {
      const err = new Error(reset ? 'The transaction was reset before the message was received in full' : 'Connection closed before the message was received in full');
      err.code = reset ? 'ERESET' : 'ECONNECTION';
      stream.destroy(stream.listenerCount('error') ? err : undefined);
    }
  }

  _onConnectionError(conn, ev) {
    const err = new Error(ev.msg);
    err.code = ev.code;
    err.remoteAddress = ev.ra;
    if (conn) {
      conn._hadError = true;
    }
    this.logger.error({ err, tnx: 'error', user: conn && logUser(conn.session) }, '%s %s %s', conn ? conn.id : '', ev.ra, err.message);
    // a client's misbehaviour must not take the process down
    if (this.listenerCount('error')) {
      this.emit('error', err);
    }
  }

  _onConnClose(conn, ev) {
    conn._applySync(ev.s, this.options);
    if (conn._dataStream) {
      this._onDataAbort(conn);
    }
    this._conns.delete(conn.cid);
    this.connections.delete(conn);
    this.server._connectionsChanged();
    if (conn._sock) {
      conn._sock._closed(conn._hadError);
    }
    if (this.options.logger) {
      const user = logUser(conn.session);
      const hadError = !!conn._hadError;
      this.logger.info({ tnx: 'close', cid: conn.id, host: conn.remoteAddress, user, hadError }, '%s received "close" event from %s' + (hadError ? ' after error' : ''), conn.id, conn.remoteAddress);
      this.logger.info({ tnx: 'close', cid: conn.id, host: conn.remoteAddress, user }, 'Connection closed to %s', conn.clientHostname || conn.remoteAddress);
    }
    if (this._mask & HOOK_BITS.onClose) {
      setImmediate(() => {
        try {
          const returned = this.onClose(conn.session, () => false);
          if (returned && typeof returned.then === 'function') {
            returned.then(null, err => this.logger.error({ err, tnx: 'close', cid: conn.id }, 'onClose failed: %s', err && err.message));
          }
        } catch (err) {
          this.logger.error({ err, tnx: 'close', cid: conn.id }, 'onClose failed: %s', err && err.message);
        }
      });
    }
  }
}

function rethrow(err) {
  throw err;
}

/** A trust option (`true`, or a list of addresses) as the native side takes it. */
function trustList(option) {
  if (!option) {
    return undefined;
  }
  if (!Array.isArray(option)) {
    return ['*'];
  }
  return option.map(entry => String(entry === undefined || entry === null ? '' : entry));
}

/** A list option as strings (the constructor normalized it; a later assignment may not be). */
function stringList(value) {
  return [].concat(value === undefined || value === null ? [] : value).map(entry => String(entry));
}

/** The options the native side needs, normalized as smtp-server reads them. */
function nativeOptions(opts) {
  return {
    name: opts.name ? String(opts.name) : os.hostname(),
    banner: opts.banner ? String(opts.banner) : undefined,
    lmtp: !!opts.lmtp,
    heloResponse: opts.heloResponse ? String(opts.heloResponse) : undefined,
    sizeText: opts.size ? String(opts.size) : undefined,
    size: Number(opts.size) || 0,
    hideSize: !!opts.hideSize,
    rejectOversized: !!opts.rejectOversized,
    hidePipelining: !!opts.hidePIPELINING,
    hide8Bitmime: !!opts.hide8BITMIME,
    hideSmtputf8: !!opts.hideSMTPUTF8,
    hideEsc: !!opts.hideENHANCEDSTATUSCODES,
    hideDsn: !!opts.hideDSN,
    hideRequiretls: !!opts.hideREQUIRETLS,
    hideStarttls: !!opts.hideSTARTTLS,
    chunking: opts.hideCHUNKING === false,
    hideBinarymime: !!opts.hideBINARYMIME,
    disabledCommands: stringList(opts.disabledCommands),
    authMethods: stringList(opts.authMethods),
    authOptional: !!opts.authOptional,
    allowInsecureAuth: !!opts.allowInsecureAuth,
    authRequiredMessage: typeof opts.authRequiredMessage === 'string' ? opts.authRequiredMessage : undefined,
    maxRecipients: Number(opts.maxRecipients) || 0,
    maxCommandLength: Number(opts.maxCommandLength) || 0,
    maxClients: Number(opts.maxClients) || 0,
    socketTimeout: Number(opts.socketTimeout) || 0,
    closeTimeout: Number(opts.closeTimeout) || 0,
    maxUnauthenticated: Number(opts.maxAllowedUnauthenticatedCommands) || 0,
    lenientAddressParsing: !!opts.lenientAddressParsing,
    rejectBareLineEndings: !!opts.rejectBareLineEndings,
    strictPipelining: !!opts.strictPipelining,
    secure: !!(opts.secure || opts.needsUpgrade),
    implicitTls: !!((opts.secure && !opts.secured) || opts.needsUpgrade),
    delayConnect: !!(opts.useXClient || opts.useXForward),
    sniCallback: typeof opts.SNICallback === 'function',
    useProxy: trustList(opts.useProxy),
    useXclient: trustList(opts.useXClient),
    useXforward: trustList(opts.useXForward),
    disableReverseLookup: !!opts.disableReverseLookup,
    trace: !!opts.logger
  };
}

module.exports = { SMTPServer };
module.exports.SMTPServer = SMTPServer;
module.exports.default = module.exports;
