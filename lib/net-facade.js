'use strict';

const { EventEmitter } = require('node:events');

/** Builds the error Node's net.Server reports for a failed listen (`failure`: its code and text, from the native side). */
function listenError(failure, target) {
  const { code, text } = failure;
  const where = target.path ? target.path : `${target.host || '::'}:${target.port || 0}`;
  let err;
  if (code === 'ERR_SERVER_ALREADY_LISTEN') {
    err = new Error(text);
  } else if (code === 'ENOTFOUND') {
    err = new Error(`getaddrinfo ENOTFOUND ${target.host}`);
    err.syscall = 'getaddrinfo';
    err.hostname = target.host;
  } else {
    err = new Error(`listen ${code}: ${text || 'failed'} ${where}`);
    err.syscall = 'listen';
    if (target.path) {
      err.address = target.path;
    } else {
      err.address = target.host || '::';
      err.port = target.port || 0;
    }
  }
  err.code = code;
  return err;
}

function isPort(value) {
  return (typeof value === 'number' || (typeof value === 'string' && value.trim() !== '' && /^\d+$/.test(value.trim()))) && Number(value) >= 0 && Number(value) <= 65535;
}

/** Turns the arguments of `net.Server#listen()` into a target and a callback. */
function parseListenArgs(args) {
  let callback;
  if (typeof args[args.length - 1] === 'function') {
    callback = args.pop();
  }
  const first = args[0];
  const target = {};
  if (first !== null && typeof first === 'object') {
    if (first.port !== undefined && first.port !== null) {
      if (!isPort(first.port)) {
        throw rangeError(first.port);
      }
      target.port = Number(first.port);
    }
    if (first.host) {
      target.host = String(first.host);
    }
    if (first.path) {
      target.path = String(first.path);
    }
    if (first.backlog !== undefined) {
      target.backlog = Number(first.backlog) | 0;
    }
    if (first.ipv6Only) {
      target.ipv6Only = true;
    }
    if (first.reusePort) {
      target.reusePort = true;
    }
    if (first.fd !== undefined || first.handle !== undefined || first._handle !== undefined) {
      const err = new TypeError('smtp-server-rs: listening on a handle or file descriptor is not supported');
      err.code = 'ERR_INVALID_ARG_VALUE';
      throw err;
    }
  } else if (typeof first === 'string' && !isPort(first)) {
    target.path = first;
    if (typeof args[1] === 'number') {
      target.backlog = args[1] | 0;
    }
  } else {
    if (first !== undefined && first !== null) {
      if (!isPort(first)) {
        throw rangeError(first);
      }
      target.port = Number(first);
    }
    if (typeof args[1] === 'string') {
      target.host = args[1];
      if (typeof args[2] === 'number') {
        target.backlog = args[2] | 0;
      }
    } else if (typeof args[1] === 'number') {
      target.backlog = args[1] | 0;
    }
  }
  return { target, callback };
}

function rangeError(port) {
  const err = new RangeError(`options.port should be >= 0 and < 65536. Received ${typeof port === 'string' ? `type string ('${port}')` : port}.`);
  err.code = 'ERR_SOCKET_BAD_PORT';
  return err;
}

/**
 * The outcome of one `listen()` called without a callback, for `await server.listen()`:
 * `then` settles once `listening` (or the listen error) has been emitted. The record
 * makes its promise only when `then` is called, so an unawaited failure leaves no
 * rejected promise behind.
 */
function pendingListen(facade) {
  const pending = { state: 'pending', error: null, waiters: null, then: null };
  pending.then = (onFulfilled, onRejected) =>
    new Promise((resolve, reject) => {
      if (pending.state === 'pending') {
        (pending.waiters || (pending.waiters = [])).push({ resolve, reject });
      } else if (pending.state === 'failed') {
        reject(pending.error);
      } else {
        // no longer thenable (see `then` below), so this fulfils with the object itself
        resolve(facade);
      }
    }).then(onFulfilled, onRejected);
  return pending;
}

/** The facade's method that keeps the process alive or not, as `ref()`, the state and the connections say. */
const kApplyRef = Symbol('applyRef');

/** The facade's method for the native server having stopped listening and its last connection having ended. */
const kClosed = Symbol('closed');

/**
 * Stands in for the `net.Server` smtp-server exposes as `server.server`: `listen()`,
 * `address()`, `close()`, `ref()`/`unref()`, `getConnections()` and the `listening`,
 * `close` and `error` events. The sockets themselves live in the native core.
 */
class NetServerFacade extends EventEmitter {
  /**
   * `owner` gives what the facade works with: `server` (the SMTPServer: its events,
   * options and connections), `native` (its native server), `dispatch` (its event
   * handler), and its callbacks `hookMask()` (the handlers to call, recorded as those
   * now served), `stopListening()`, `attachedCount()` (the sockets handed over with
   * `connect()`), `logListening(address)` and `logClosed()`.
   */
  constructor(owner) {
    super();
    const server = owner.server;
    this._owner = owner;
    this._address = null;
    this._ref = true;
    this._closing = false;
    this._closeCallbacks = [];
    this.listening = false;
    this._pending = null;
    this._errorAwaited = false;
    this._maxConnections = undefined;
    this.on('error', err => {
      if (!this._errorAwaited) {
        server.emit('error', err);
      }
    });
    this.once('close', () => server.emit('close'));
  }

  listen(...args) {
    const { target, callback } = parseListenArgs(args);
    if (callback) {
      this.once('listening', callback);
    }
    const owner = this._owner;
    const pending = callback ? null : pendingListen(this);
    this._pending = pending;
    const mask = owner.hookMask();
    let info;
    let failure;
    try {
      ({ address: info, failure } = owner.native.listen(target, mask, owner.dispatch));
    } catch (err) {
      // the native side could not start at all
      failure = { code: 'EIO', text: err.message };
    }
    if (failure) {
      process.nextTick(() => this._listenFailed(listenError(failure, target), pending));
      return this;
    }
    this._address = info.family === 'unix' ? info.address : { address: info.address, family: info.family, port: info.port };
    this.listening = true;
    this._closing = false;
    this[kApplyRef]();
    process.nextTick(() => {
      owner.logListening(this._address);
      this.emit('listening');
      this._settle(pending, null);
    });
    return this;
  }

  /**
   * While a `listen()` without a callback is under way the object is thenable, so
   * `await server.listen(port)` waits for `listening` and throws the listen error. It
   * is not thenable otherwise: with a callback (as in smtp-server), before `listen()`
   * and once it has settled, when awaiting it or returning it from an async function
   * gives the object itself, as a `net.Server` would.
   */
  get then() {
    return this._pending ? this._pending.then : undefined;
  }

  _settle(pending, err) {
    if (!pending) {
      return;
    }
    if (this._pending === pending) {
      this._pending = null;
    }
    pending.state = err ? 'failed' : 'listening';
    pending.error = err;
    const waiters = pending.waiters || [];
    pending.waiters = null;
    for (const waiter of waiters) {
      if (err) {
        waiter.reject(err);
      } else {
        waiter.resolve(this);
      }
    }
  }

  /**
   * A listen error goes to `error` listeners as from `net.Server`. When the server has
   * none and the `listen()` is awaited, the rejection carries it instead of an uncaught
   * `error` event. An `await` reaches `then` in a promise job, which can run after this
   * tick, so without listeners the choice waits for the jobs of this turn.
   */
  _listenFailed(err, pending, deferred) {
    const server = this._owner.server;
    if (pending && !deferred && !pending.waiters && !server.listenerCount('error')) {
      setImmediate(() => this._listenFailed(err, pending, true));
      return;
    }
    const awaited = !!(pending && pending.waiters);
    this._settle(pending, err);
    this._errorAwaited = awaited && !server.listenerCount('error');
    try {
      this.emit('error', err);
    } finally {
      this._errorAwaited = false;
    }
  }

  address() {
    return this.listening ? this._address : null;
  }

  close(callback) {
    if (!this.listening) {
      if (typeof callback === 'function') {
        const err = new Error('Server is not running.');
        err.code = 'ERR_SERVER_NOT_RUNNING';
        process.nextTick(callback, err);
      }
      return this;
    }
    if (typeof callback === 'function') {
      this._closeCallbacks.push(callback);
    }
    if (!this._closing) {
      this._closing = true;
      this._owner.stopListening();
    }
    return this;
  }

  /** The native server stopped listening and its last connection ended. */
  [kClosed]() {
    this.listening = false;
    this._closing = false;
    this._owner.native.release();
    const callbacks = this._closeCallbacks.splice(0);
    this._owner.logClosed();
    for (const cb of callbacks) {
      cb();
    }
    this.emit('close');
    this.once('close', () => this._owner.server.emit('close'));
  }

  [kApplyRef]() {
    // connections handed over with connect() keep the loop alive only while they last
    // (counted from connect(), before the native side has announced them)
    const owner = this._owner;
    const busy = this.listening || owner.server.connections.size > 0 || owner.attachedCount() > 0;
    owner.native.setRef(this._ref && busy);
  }

  ref() {
    this._ref = true;
    this[kApplyRef]();
    return this;
  }

  unref() {
    this._ref = false;
    this[kApplyRef]();
    return this;
  }

  /**
   * `net.Server#maxConnections`: undefined until set. Setting it limits the clients as
   * `maxClients` does (the client over the limit gets smtp-server's 421 reply).
   */
  get maxConnections() {
    return this._maxConnections;
  }

  set maxConnections(value) {
    this._maxConnections = value;
    this._owner.server.options.maxClients = value;
  }

  /** The number of open connections (`net.Server#connections`, deprecated there). */
  get connections() {
    return this._owner.native.connectionCount();
  }

  getConnections(callback) {
    const count = this._owner.native.connectionCount();
    if (typeof callback === 'function') {
      process.nextTick(callback, null, count);
    }
    return this;
  }
}

if (Symbol.asyncDispose) {
  // `await using` support (Node 20 and Bun have the symbol): closes the server and
  // resolves once it has closed
  NetServerFacade.prototype[Symbol.asyncDispose] = function asyncDispose() {
    if (!this.listening) {
      return Promise.resolve();
    }
    return new Promise(resolve => this.close(() => resolve()));
  };
}

module.exports = { NetServerFacade, parseListenArgs, kApplyRef, kClosed };
