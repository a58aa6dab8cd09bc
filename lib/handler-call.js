'use strict';

// smtp-server's conventions for what a handler answers: reply codes and texts from
// errors, and handlers that return promises.

/** A reply code from an application error, or `fallback` when it has none usable. */
function replyCode(value, fallback) {
  const code = Number(value);
  return Number.isInteger(code) && code >= 100 && code <= 999 ? code : fallback;
}

function errorText(err) {
  return err && err.message !== undefined && err.message !== null ? String(err.message) : '';
}

function isError(value) {
  return /Error\]$/i.test(Object.prototype.toString.call(value));
}

/**
 * A handler that returned a promise: a rejection is the error reply, and a fulfilment
 * accepts with its value as the result. A handler that also declares the callback
 * parameter and resolves with `undefined` still answers through the callback, so an
 * `async` handler written in callback style keeps its meaning. Whichever answers
 * first wins; the other is ignored.
 */
function settleWithPromise(promise, takesCallback, callback, onFault) {
  promise.then(
    value => {
      if (value !== undefined || !takesCallback) {
        callback(null, value);
      }
    },
    reason => callback(reason && typeof reason === 'object' ? reason : new Error(reason === undefined || reason === null ? 'Handler rejected' : String(reason)))
  ).then(null, onFault);
}

module.exports = { replyCode, errorText, isError, settleWithPromise };
