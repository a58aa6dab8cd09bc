'use strict';

// The web stream side of the DATA stream: `getReader()`, `pipeTo()`, `pipeThrough()`,
// `tee()`, `cancel()` and `locked`, as on a `ReadableStream<Uint8Array>`, on top of the
// Node `Readable`. They share one web `ReadableStream` made on first use; it takes the
// Readable's Buffer chunks as they are (no copy) and reads from the Readable only when
// a web reader asks for more, so backpressure reaches the socket as with `pipe()`.
// Until one of them is called nothing is attached to the Readable.

const { ReadableStream: WebReadableStream } = globalThis.ReadableStream ? globalThis : require('node:stream/web');

const kView = Symbol('smtp-server-rs.webView');

function prematureClose() {
  const err = new Error('The message stream was destroyed before it ended');
  err.code = 'ERR_STREAM_PREMATURE_CLOSE';
  return err;
}

/** The web stream reading `readable`, made on the first call. */
function webView(readable) {
  if (readable[kView]) {
    return readable[kView];
  }
  let done = false;
  let onData;
  let onEnd;
  let onError;
  let onClose;
  const detach = () => {
    done = true;
    readable.off('data', onData);
    readable.off('end', onEnd);
    readable.off('error', onError);
    readable.off('close', onClose);
  };
  const view = new WebReadableStream(
    {
      start(controller) {
        if (readable.readableEnded) {
          done = true;
          return controller.close();
        }
        if (readable.destroyed) {
          done = true;
          return controller.error(readable.errored || prematureClose());
        }
        onData = chunk => {
          controller.enqueue(chunk);
          if (controller.desiredSize <= 0) {
            readable.pause();
          }
        };
        onEnd = () => {
          detach();
          controller.close();
        };
        onError = err => {
          detach();
          controller.error(err);
        };
        onClose = () => {
          // destroyed without an error (an `error` comes before `close` otherwise)
          if (!done) {
            detach();
            controller.error(prematureClose());
          }
        };
        // paused first, so that attaching `data` does not start the flow: the chunks
        // move when a reader pulls
        readable.pause();
        readable.on('data', onData);
        readable.on('end', onEnd);
        readable.on('error', onError);
        readable.on('close', onClose);
      },
      pull() {
        if (!done) {
          readable.resume();
        }
      },
      cancel() {
        // the reader does not want the rest: the message is dropped as when the
        // Readable is destroyed, and the reply is sent once the handler answers
        if (!done) {
          detach();
          readable.destroy();
        }
      }
    },
    { highWaterMark: 0 }
  );
  Object.defineProperty(readable, kView, { value: view });
  return view;
}

const methods = {
  /** A reader of the message (a `ReadableStreamDefaultReader`); the stream is `locked` until it is released. */
  getReader(options) {
    return webView(this).getReader(options);
  },

  /** Pipes the message into a web `WritableStream`; resolves when the message has been written in full. */
  pipeTo(destination, options) {
    return webView(this).pipeTo(destination, options);
  },

  /** Pipes the message through a web transform (`{ writable, readable }`) and returns its readable side. */
  pipeThrough(transform, options) {
    return webView(this).pipeThrough(transform, options);
  },

  /** Two web `ReadableStream`s that each get every chunk of the message. */
  tee() {
    return webView(this).tee();
  },

  /** Drops the rest of the message (the web counterpart of `destroy()`). */
  cancel(reason) {
    return webView(this).cancel(reason);
  }
};

/** Adds the web stream members to `proto` (a Readable subclass's prototype). */
function addWebStreamMethods(proto) {
  for (const [name, fn] of Object.entries(methods)) {
    Object.defineProperty(proto, name, { value: fn, writable: true, configurable: true, enumerable: false });
  }
  Object.defineProperty(proto, 'locked', {
    configurable: true,
    enumerable: false,
    get() {
      const view = this[kView];
      return view ? view.locked : false;
    }
  });
}

module.exports = { addWebStreamMethods };
