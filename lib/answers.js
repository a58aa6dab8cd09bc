'use strict';

/**
 * The answers handlers give, queued and sent to the native side in one call per turn
 * of the event loop (a microtask after the first one), in the order they were given:
 * five slots each (the `EventKind` of the question answered, connection, code, flags,
 * text), as `NativeServer.answer` in src/binding/mod.rs reads them; the native side
 * applies an answer only to the question the connection waits for.
 * Anything else said to a connection goes through `direct()`, which sends the queued
 * answers first, so a connection hears everything in order.
 */
class AnswerQueue {
  /** `kinds`: `EventKind`, the questions' kinds (defined in Rust). */
  constructor(native, kinds) {
    this._native = native;
    this._kinds = kinds;
    this._queue = [];
    this._flush = () => this.flush();
  }

  _push(kind, cid, code, flags, text) {
    const queue = this._queue;
    if (!queue.length) {
      queueMicrotask(this._flush);
    }
    queue.push(kind, cid, code, flags, text);
  }

  /**
   * The question of kind `question` (`EventKind.OnConnect`, `OnSecure`, `MailFrom`,
   * `RcptTo`, or `ConnectEvent` when its listeners ran) answered: 0 accepts, else a
   * rejection (-1: no code).
   */
  hook(question, cid, code, text) {
    this._push(question, cid, code, 0, text);
  }

  /**
   * `onData` answered with one result for the message: code 0 accepts with `text`
   * (null: the default text), else a rejection (-1: no code); `discard`: drop the rest.
   */
  data(cid, code, text, discard) {
    this._push(this._kinds.DataStart, cid, code, discard ? 1 : 0, text);
  }

  /** A body piece was consumed. */
  ack(cid) {
    this._push(this._kinds.Body, cid, 0, 0, null);
  }

  /** Sends what is queued. */
  flush() {
    const queue = this._queue;
    if (queue.length) {
      this._queue = [];
      this._native.answer(queue);
    }
  }

  /** The native server, for a call that must come after the answers already given. */
  direct() {
    this.flush();
    return this._native;
  }
}

module.exports = { AnswerQueue };
