'use strict';

const { Readable } = require('node:stream');
const { addWebStreamMethods } = require('./web-stream.js');

const DATA_STREAM_OPTIONS = { highWaterMark: 256 * 1024 };

/**
 * The message stream `onData` receives: a Readable with live `byteLength` and
 * `sizeExceeded`, fed by the native connection with backpressure. It also has the
 * methods of a web `ReadableStream` (lib/web-stream.js).
 */
class SMTPDataStream extends Readable {
  constructor(answers, conn, maxBytes, sendResult) {
    super(DATA_STREAM_OPTIONS);
    this.byteLength = 0;
    this.sizeExceeded = false;
    this._answers = answers;
    this._sendResult = sendResult;
    this._conn = conn;
    this._maxBytes = maxBytes;
    this._owedAcks = 0;
    this._finished = false;
    // what onData answered, sent once the stream has ended (or closed without ending)
    this._handled = false;
    this._answered = false;
    this._error = null;
    this._message = undefined;
  }

  /** onData called back: the answer goes out now if the stream is done with, else at its end. */
  _handlerAnswered(err, message) {
    this._handled = true;
    this._error = err;
    this._message = message;
    if (this.readableEnded) {
      return this._answer(false);
    }
    if (this.destroyed) {
      return this._answer(true);
    }
    if (this.readableFlowing === null) {
      // answered without reading: the rest of the message is dropped natively
      this._answer(true);
      this.resume();
    }
    // otherwise the answer waits for the stream to end
  }

  /**
   * Sends onData's answer once. A stream answered before its end stays the connection's
   * while the rest is dropped, so that it still ends with the final figures.
   */
  _answer(discard) {
    const conn = this._conn;
    if (this._answered || conn._dataStream !== this) {
      return;
    }
    this._answered = true;
    if (!discard || this._finished || this.destroyed) {
      conn._dataStream = null;
    }
    this._sendResult(conn, this._error, this._message, discard);
  }

  _read() {
    // every piece that filled the buffer is acknowledged once the reader wants more
    for (; this._owedAcks > 0; this._owedAcks--) {
      this._answers.ack(this._conn.cid);
    }
  }

  /** Adds a body piece from the native side. */
  _piece(chunk, end, total) {
    if (this._finished || this.destroyed) {
      return;
    }
    if (chunk) {
      this.byteLength += chunk.length;
      if (this._maxBytes && this.byteLength > this._maxBytes) {
        this.sizeExceeded = true;
      }
      const more = this.push(chunk);
      if (!end) {
        if (more) {
          this._answers.ack(this._conn.cid);
        } else {
          this._owedAcks++;
        }
      }
    }
    if (end) {
      this.byteLength = total;
      this.sizeExceeded = !!this._maxBytes && total > this._maxBytes;
      this._finished = true;
      if (this._answered && this._conn._dataStream === this) {
        this._conn._dataStream = null;
      }
      this.push(null);
    }
  }
}

addWebStreamMethods(SMTPDataStream.prototype);

/** A message stream's 'end' listener: the answer goes out if onData gave it. */
function dataStreamEnded() {
  if (this._handled) {
    this._answer(false);
  }
}

/** A message stream's 'close' listener: a stream closed before its end discards the rest. */
function dataStreamClosed() {
  if (this._handled) {
    this._answer(true);
  }
}

/**
 * The message stream for the transaction `conn` starts: the connection's stream until
 * onData's answer has gone out through `sendResult(conn, err, message, discard)`.
 */
function openDataStream(answers, conn, maxBytes, sendResult) {
  const stream = new SMTPDataStream(answers, conn, maxBytes, sendResult);
  conn._dataStream = stream;
  stream.on('end', dataStreamEnded);
  stream.on('close', dataStreamClosed);
  return stream;
}

module.exports = { openDataStream };
