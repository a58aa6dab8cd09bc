'use strict';

const { EventEmitter } = require('node:events');

/** Where a socket keeps the function that sends bytes to the client as they are. */
const kSendRaw = Symbol('sendRaw');

/**
 * `connection._socket`: what code reaching into smtp-server's private socket uses
 * (SMTP client test suites make a server misbehave this way). Bytes written go to the
 * client as they are, after the replies already sent; `end()` and `destroy()` close the
 * connection once they are out. It emits `end` (the client closed) and `close`.
 */
class ConnectionSocket extends EventEmitter {
  /** `sendRaw(bytes)` sends bytes to the client of `conn` as they are. */
  constructor(conn, sendRaw) {
    super();
    this._conn = conn;
    this[kSendRaw] = sendRaw;
    this.destroyed = false;
    this.writable = true;
    this.readable = true;
  }

  get remoteAddress() {
    return this._conn.remoteAddress;
  }

  get remotePort() {
    return this._conn.remotePort;
  }

  get localAddress() {
    return this._conn.localAddress;
  }

  get localPort() {
    return this._conn.localPort;
  }

  /** Sends `data` (a string in `encoding`, utf-8 by default, or bytes) to the client. */
  write(data, encoding, callback) {
    if (typeof encoding === 'function') {
      callback = encoding;
      encoding = undefined;
    }
    if (!this.writable) {
      const err = new Error(this.destroyed ? 'Cannot call write after a stream was destroyed' : 'write after end');
      err.code = this.destroyed ? 'ERR_STREAM_DESTROYED' : 'ERR_STREAM_WRITE_AFTER_END';
      if (typeof callback === 'function') {
        process.nextTick(callback, err);
      }
      return false;
    }
    const bytes = typeof data === 'string' ? Buffer.from(data, encoding || 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.length) {
      this[kSendRaw](bytes);
    }
    if (typeof callback === 'function') {
      process.nextTick(callback, null);
    }
    return true;
  }

  /** Writes `data` if given, then closes the connection. */
  end(data, encoding, callback) {
    if (typeof data === 'function') {
      callback = data;
      data = undefined;
    } else if (typeof encoding === 'function') {
      callback = encoding;
      encoding = undefined;
    }
    if (data !== undefined && data !== null) {
      this.write(data, encoding);
    }
    if (typeof callback === 'function') {
      this.once('close', () => callback());
    }
    this._close();
    return this;
  }

  /** Closes the connection (what was written before still goes out). */
  destroy(err) {
    if (!this.destroyed) {
      this.destroyed = true;
      this._destroyError = err || null;
      this._close();
    }
    return this;
  }

  _close() {
    if (this.writable) {
      this.writable = false;
      this.readable = false;
      this._conn.close();
    }
  }
}

/** The connection of `socket` closed (`hadError`: after a socket error). */
function socketClosed(socket, hadError) {
  const err = socket._destroyError;
  const byUs = socket.destroyed || !socket.writable;
  socket.destroyed = true;
  socket.writable = false;
  socket.readable = false;
  if (err && socket.listenerCount('error')) {
    socket.emit('error', err);
  }
  if (!byUs) {
    socket.emit('end');
  }
  socket.emit('close', !!hadError || !!err);
}

module.exports = { ConnectionSocket, socketClosed };
