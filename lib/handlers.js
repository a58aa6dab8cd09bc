'use strict';

// The calls of the application's handlers (onConnect, onSecure, onAuth, onMailFrom,
// onRcptTo, onData, onClose) for the native side's questions, and their answers back.

const crypto = require('node:crypto');
const { SecureSocketInfo } = require('./tls.js');
const { openDataStream, bodyPiece, handlerAnswered, isHandled } = require('./data-stream.js');
const { tlsOf, disabledKeyChanged } = require('./session-view.js');
const { replyCode, errorText, isError, settleWithPromise } = require('./handler-call.js');
const { watchForStall } = require('./stall-warning.js');

/**
 * Calls a server's handlers (found on the server at call time, and called with it as
 * `this`) with smtp-server's arguments and callback conventions, and queues what they
 * answer for the native side.
 */
class HandlerCalls {
  /**
   * `kinds`: the questions' kinds (`EventKind`), `authKinds`: the kinds of onAuth
   * answers (`AuthAnswer`), both defined in Rust.
   */
  constructor(server, answers, kinds, authKinds) {
    this._server = server;
    this._answers = answers;
    this._kinds = kinds;
    this._auth = authKinds;
    this._sendDataResult = this._sendDataResult.bind(this);
  }

  /** `onConnect(session, callback)`. */
  connect(conn) {
    this._call(conn, 'onConnect', [conn.session], err => {
      this._server.logger.info({ tnx: 'connection', cid: conn.id, host: conn.remoteAddress, hostname: conn.clientHostname }, 'Connection from %s', conn.clientHostname);
      this._hookAnswer(this._kinds.OnConnect, conn, err);
    });
  }

  /** `onSecure(socket, session, callback)`, with the TLS details of the connection. */
  secure(conn) {
    const socket = new SecureSocketInfo(conn, tlsOf(conn));
    this._call(conn, 'onSecure', [socket, conn.session], err => this._hookAnswer(this._kinds.OnSecure, conn, err));
  }

  /**
   * `onMailFrom` or `onRcptTo` (`mail` false) for `address`; an accepted recipient goes
   * into the envelope at `slot`, the place the native side gave it.
   */
  address(conn, mail, address, slot) {
    const question = mail ? this._kinds.MailFrom : this._kinds.RcptTo;
    this._call(conn, mail ? 'onMailFrom' : 'onRcptTo', [address, conn.session], err => {
      if (!err) {
        // the handler's own address object goes into the envelope, as in smtp-server
        const envelope = conn.session.envelope;
        if (mail) {
          envelope.mailFrom = address;
        } else {
          // at the place the engine gave it (an earlier recipient with the same address, or the end)
          envelope.rcptTo[Math.min(slot, envelope.rcptTo.length)] = address;
        }
      }
      this._hookAnswer(question, conn, err);
    });
  }

  /** `onAuth(auth, session, callback)` for the request `a` the native side decoded. */
  auth(conn, a) {
    const logger = this._server.logger;
    const AUTH = this._auth;
    this._call(conn, 'onAuth', [authObject(a), conn.session], (err, response) => {
      if (err) {
        logger.info({ err, tnx: 'autherror', cid: conn.id, method: a.method, user: a.username }, 'Authentication error for %s using %s. %s', a.username, a.method, err.message);
        return this._answers.direct().completeAuth(conn.cid, AUTH.Error, replyCode(err.responseCode, -1), errorText(err), null);
      }
      if (!response && a.method === 'XCLIENT') {
        logger.info({ tnx: 'authskip', cid: conn.id, method: a.method, user: a.username }, 'Authentication skipped for %s using %s', a.username, a.method);
        return this._answers.direct().completeAuth(conn.cid, AUTH.Skip, -1, null, null);
      }
      response = response || {};
      if (!response.user) {
        logger.info({ tnx: 'authfail', cid: conn.id, method: a.method, user: a.username }, 'Authentication failed for %s using %s', a.username, a.method);
        const message = response.message ? String(response.message) : null;
        return this._answers.direct().completeAuth(conn.cid, AUTH.Failure, replyCode(response.responseCode, -1), message, JSON.stringify(response.data || {}));
      }
      logger.info({ tnx: 'auth', cid: conn.id, method: a.method, user: a.username }, '%s authenticated using %s', a.username, a.method);
      conn.session.user = response.user;
      conn.session.transmissionType = a.tt;
      this._answers.direct().completeAuth(conn.cid, AUTH.Success, -1, null, null);
    });
  }

  /**
   * `onData(stream, session, callback)`; `first`, when given, is the first piece of the
   * body (often all of it), which came with the question (`end`: the last one,
   * `total`: the body's bytes so far).
   */
  data(conn, first, end, total) {
    const server = this._server;
    const stream = openDataStream(this._answers, conn, Number(server.options.size) || 0, this._sendDataResult);
    this._call(conn, 'onData', [stream, conn.session], (err, message) => handlerAnswered(stream, err, message));
    if (end !== undefined) {
      bodyPiece(stream, first, end, total);
    }
    if (!isHandled(stream)) {
      watchForStall(stream, server.logger, conn.id);
    }
  }

  /** `onClose(session)`, on a later turn of the event loop; what it throws or rejects is logged. */
  close(conn) {
    const server = this._server;
    const failed = err => server.logger.error({ err, tnx: 'close', cid: conn.id }, 'onClose failed: %s', err && err.message);
    setImmediate(() => {
      try {
        const returned = server.onClose(conn.session, () => false);
        if (returned && typeof returned.then === 'function') {
          returned.then(null, failed);
        }
      } catch (err) {
        failed(err);
      }
    });
  }

  /** Answers `question` (onConnect, onSecure, onMailFrom or onRcptTo): accept, or the error's code and text. */
  _hookAnswer(question, conn, err) {
    if (err) {
      this._answers.hook(question, conn.cid, replyCode(err.responseCode, -1), errorText(err));
    } else {
      this._answers.hook(question, conn.cid, 0, null);
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

  /** Tells the native side about `session.disabledCommands` when the application changed it. */
  _syncDisabled(conn) {
    const list = conn.session.disabledCommands;
    let normalized = null;
    if (Array.isArray(list)) {
      normalized = list.map(entry => (entry || '').toString().trim().toUpperCase());
    }
    const key = normalized ? normalized.join('\n') + '\n' : null;
    if (disabledKeyChanged(conn, key)) {
      this._answers.direct().setDisabled(conn.cid, normalized);
    }
  }

  /** Calls a handler with smtp-server's callback conventions; `done` runs once. */
  _call(conn, name, args, done) {
    const server = this._server;
    let called = false;
    const callback = (err, result) => {
      if (called) {
        return;
      }
      called = true;
      this._syncDisabled(conn);
      done(err, result);
    };
    const failed = err => server.logger.error({ err, tnx: 'command', cid: conn.id }, '%s Failed to process %s: %s', conn.id, name, err && err.message);
    try {
      const handler = server[name];
      const returned = handler.call(server, ...args, callback);
      if (returned && typeof returned.then === 'function') {
        settleWithPromise(returned, handler.length > args.length, callback, failed);
      }
    } catch (err) {
      failed(err);
      if (!called) {
        const error = new Error('Error: internal server error');
        error.responseCode = 451;
        callback(error);
      }
    }
  }
}

/** The `auth` object onAuth receives for the request `a`, as smtp-server makes it for each method. */
function authObject(a) {
  switch (a.method) {
    case 'PLAIN':
      return { method: a.method, username: a.username, authcid: a.authcid, authzid: a.authzid, password: a.password };
    case 'LOGIN':
      return { method: a.method, username: a.username, password: a.password };
    case 'XOAUTH2':
      return { method: a.method, username: a.username, accessToken: a.accessToken };
    case 'XCLIENT':
      return { method: a.method, username: a.username, password: null };
    default: {
      const challenge = a.challenge;
      const challengeResponse = a.challengeResponse;
      return {
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
}

module.exports = { HandlerCalls };
