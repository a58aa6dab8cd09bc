'use strict';

const { Readable } = require('node:stream');
const { addWebStreamMethods } = require('./web-stream.js');
const { dataStreamOf, setDataStream } = require('./session-view.js');

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

  /**
   * Sends onData's answer once. A stream answered before its end stays the connection's
   * while the rest is dropped, so that it still ends with the final figures.
   */
  _answer(discard) {
    const conn = this._conn;
    if (this._answered || dataStreamOf(conn) !== this) {
      return;
    }
    this._answered = true;
    if (!discard || this._finished || this.destroyed) {
      setDataStream(conn, null);
    }
    this._sendResult(conn, this._error, this._message, discard);
  }

  _read() {
    // every piece that filled the buffer is acknowledged once the reader wants more
    for (; this._owedAcks > 0; this._owedAcks--) {
      this._answers.ack(this._conn.cid);
    }
  }
}

addWebStreamMethods(SMTPDataStream.prototype);

/** onData called back for `stream`: the answer goes out now if the stream is done with, else at its end. */
function handlerAnswered(stream, err, message) {
  stream._handled = true;
  stream._error = err;
  stream._message = message;
  if (stream.readableEnded) {
    return stream._answer(false);
  }
  if (stream.destroyed) {
    return stream._answer(true);
  }
  if (stream.readableFlowing === null) {
    // answered without reading: the rest of the message is dropped natively
    stream._answer(true);
    stream.resume();
  }
  // otherwise the answer waits for the stream to end
}

/** Adds a body piece from the native side to `stream` (`end`: the last one, `total`: the body's bytes). */
function bodyPiece(stream, chunk, end, total) {
  if (stream._finished || stream.destroyed) {
    return;
  }
  if (chunk) {
    stream.byteLength += chunk.length;
    if (stream._maxBytes && stream.byteLength > stream._maxBytes) {
      stream.sizeExceeded = true;
    }
    const more = stream.push(chunk);
    if (!end) {
      if (more) {
        stream._answers.ack(stream._conn.cid);
      } else {
        stream._owedAcks++;
      }
    }
  }
  if (end) {
    stream.byteLength = total;
    stream.sizeExceeded = !!stream._maxBytes && total > stream._maxBytes;
    stream._finished = true;
    if (stream._answered && dataStreamOf(stream._conn) === stream) {
      setDataStream(stream._conn, null);
    }
    stream.push(null);
  }
}

/** True once onData called back for `stream`. */
function isHandled(stream) {
  return stream._handled;
}

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
  setDataStream(conn, stream);
  stream.on('end', dataStreamEnded);
  stream.on('close', dataStreamClosed);
  return stream;
}

module.exports = { openDataStream, bodyPiece, handlerAnswered, isHandled };
