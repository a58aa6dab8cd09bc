'use strict';

// The web stream side of the DATA stream: `getReader()`, `pipeTo()`, `pipeThrough()`,
// `tee()`, `cancel()` and `locked`, as on a `ReadableStream<Uint8Array>`, on top of the
// Node `Readable`. They share one web `ReadableStream` made on first use; it takes the
// Readable's Buffer chunks as they are (no copy) and reads from the Readable only when
// a web reader asks for more, so backpressure reaches the socket as with `pipe()`.
// Until one of them is called nothing is attached to the Readable.

const { ReadableStream: WebReadableStream } = globalThis.ReadableStream ? globalThis : require('node:stream/web');

const { pipeline } = require('node:stream/promises');

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

/** `pipeTo()` into a Node `Writable`: `pipeline()` semantics (backpressure, errors both ways). */
function pipeToWritable(readable, writable, options) {
  if (options.preventClose) {
    return new Promise((resolve, reject) => {
      const fail = err => {
        readable.unpipe(writable);
        reject(err);
      };
      readable.once('error', fail);
      writable.once('error', fail);
      readable.once('end', () => {
        readable.off('error', fail);
        writable.off('error', fail);
        resolve();
      });
      readable.pipe(writable, { end: false });
    });
  }
  return pipeline(readable, writable, options.signal ? { signal: options.signal } : {});
}

/** Waits for what a sink method returned when it is a promise (Bun's `FileSink` returns one under backpressure). */
async function settled(value) {
  if (value && typeof value.then === 'function') {
    await value;
  }
}

/**
 * `pipeTo()` into a sink with `write(chunk)` and optionally `flush()` and `end()` (Bun's
 * `FileSink`): one chunk at a time, each write awaited when it returns a promise; then
 * `flush()`, and `end()` unless `preventClose`. A failure of the message stream ends the
 * sink with the error (unless `preventAbort`); a failure of the sink destroys the
 * message stream (unless `preventCancel`).
 */
async function pipeToSink(readable, sink, options) {
  const signal = options.signal;
  let reading = true;
  try {
    if (signal && signal.aborted) {
      throw signal.reason;
    }
    for await (const chunk of readable.iterator({ destroyOnReturn: !options.preventCancel })) {
      reading = false;
      await settled(sink.write(chunk));
      reading = true;
      if (signal && signal.aborted) {
        throw signal.reason;
      }
    }
    if (typeof sink.flush === 'function') {
      await settled(sink.flush());
    }
    if (!options.preventClose && typeof sink.end === 'function') {
      await settled(sink.end());
    }
  } catch (err) {
    if (reading && !options.preventAbort && typeof sink.end === 'function') {
      // the message failed: the sink is ended with the error (FileSink's `end(error)`)
      try {
        await settled(sink.end(err));
      } catch {
        // the sink's own failure adds nothing to the message's
      }
    } else if (!reading && !options.preventCancel && !readable.destroyed) {
      readable.destroy();
    }
    throw err;
  }
}

const methods = {
  /** A reader of the message (a `ReadableStreamDefaultReader`); the stream is `locked` until it is released. */
  getReader(options) {
    return webView(this).getReader(options);
  },

  /**
   * Pipes the message into a web `WritableStream`, a Node `Writable` or a sink with
   * `write()` (such as Bun's `FileSink`); resolves when the message has been written in
   * full and the destination has been ended (unless `preventClose`) and flushed.
   */
  pipeTo(destination, options) {
    if (destination && typeof destination.getWriter !== 'function') {
      if (typeof destination.on === 'function' && typeof destination.write === 'function') {
        return pipeToWritable(this, destination, options || {});
      }
      if (typeof destination.write === 'function') {
        return pipeToSink(this, destination, options || {});
      }
    }
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
