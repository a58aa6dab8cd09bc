'use strict';

const { EventEmitter } = require('node:events');
const os = require('node:os');
const native = require('./binding.js');
const { NetServerFacade, kApplyRef, kClosed } = require('./lib/net-facade.js');
const { createLogger } = require('./lib/logger.js');
const { nativeTls } = require('./lib/tls.js');
const { AnswerQueue } = require('./lib/answers.js');
const { AttachedSockets } = require('./lib/attached.js');
const { EventDispatch } = require('./lib/events.js');
const { HandlerCalls } = require('./lib/handlers.js');
const tlsOptions = require('./lib/tls-options.js');
const { defineLiveOptions } = require('./lib/live-options.js');

/** Event kinds sent by the native server (defined in src/binding/events.rs). */
const EV = native.EventKind;

/** The handler bits of the native mask (defined in src/protocol/config.rs). */
const HOOK_BITS = native.hookBits();

/** The application handlers a server can cross into. */
const HOOKS = ['onConnect', 'onMailFrom', 'onRcptTo', 'onData', 'onClose', 'onSecure', 'onAuth'];

const CLOSE_TIMEOUT = 30 * 1000;
// the server's event dispatcher (a Symbol: EventEmitter keeps its listeners in _events)
const kDispatch = Symbol('dispatch');

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
    this._native = new native.NativeServer(nativeOptions(opts), this._tlsSettings());
    // options assigned later apply from the next connection or command, as in smtp-server
    this._answers = new AnswerQueue(this._native, EV);
    defineLiveOptions(this, opts, () => this._answers.direct().setOptions(nativeOptions(this.options)));
    this._applyTlsDefaults();
    this._attached = new AttachedSockets(this._answers, EV);
    this[kDispatch] = new EventDispatch({
      server: this,
      answers: this._answers,
      handlers: new HandlerCalls(this, this._answers, EV, native.AuthAnswer),
      attached: this._attached,
      kinds: EV,
      connectionsChanged: () => this.server[kApplyRef](),
      refreshHooks: () => this._refreshHooks(),
      serverClosed: () => this.server[kClosed](),
      wantsOnClose: () => (this._mask & HOOK_BITS.onClose) !== 0
    });
    this.server = new NetServerFacade({
      server: this,
      native: this._native,
      dispatch: this[kDispatch].dispatch,
      hookMask: () => this._serveMask(),
      stopListening: () => this._answers.direct().close(),
      attachedCount: () => this._attached.size,
      logListening: address => this._logListening(address),
      logClosed: () => this._logClosed()
    });
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

  /** The handler mask for a listen or a connection about to be served, recorded as the one served. */
  _serveMask() {
    this._mask = this._hookMask();
    return this._mask;
  }

  // 'connect' listeners make the greeting wait for them, so the native side must know of
  // them: the listener methods tell it (a 'newListener' listener would show in
  // eventNames(), where smtp-server's server has none). once() and
  // prependOnceListener() go through on() and prependListener().
  addListener(...args) {
    return this._listenersChanged(super.addListener(...args), args[0]);
  }

  on(...args) {
    return this._listenersChanged(super.on(...args), args[0]);
  }

  prependListener(...args) {
    return this._listenersChanged(super.prependListener(...args), args[0]);
  }

  removeListener(...args) {
    return this._listenersChanged(super.removeListener(...args), args[0]);
  }

  off(...args) {
    return this._listenersChanged(super.off(...args), args[0]);
  }

  removeAllListeners(...args) {
    return this._listenersChanged(super.removeAllListeners(...args), args.length ? args[0] : 'connect');
  }

  _listenersChanged(self, event) {
    if (event === 'connect' && this._native) {
      this._refreshHooks();
    }
    return self;
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
    const pipe = this._native.attach(peer, this._serveMask(), this[kDispatch].dispatch);
    this._attached.add(pipe, socket);
    // the connection keeps the process alive from now on, as a listening server would
    this.server[kApplyRef]();
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
    // Bun's loop is not libuv: its connections stay on the native threads
    eventLoop: opts.eventLoop !== false && !process.versions.bun,
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
