'use strict';

const { isHandled } = require('./data-stream.js');

/** How long a message may wait for a reader before the warning is logged. */
const STALL_WARNING_MS = 5000;

/** True when nothing reads `stream`: no `data` or `readable` listener, no pipe, no web reader. */
function unread(stream) {
  return stream.readableFlowing === null && !stream.listenerCount('readable') && !stream.locked;
}

/**
 * Watches a message stream that nobody read when `onData` returned: if it is still
 * unread, unanswered and not ended after a few seconds, one warning goes to the
 * server's logger. The stream keeps Node's semantics (it is not drained, since a reader
 * may still come); the client waits for the reply meanwhile.
 */
function watchForStall(stream, logger, cid) {
  if (!unread(stream)) {
    return;
  }
  const timer = setTimeout(() => {
    if (unread(stream) && !isHandled(stream) && !stream.readableEnded && !stream.destroyed) {
      logger.warn(
        { tnx: 'data', cid, bytes: stream.byteLength },
        '%s onData has not read the message stream for %s seconds and has not called back; the client waits. Read the stream (pipe(), on("data"), resume()) or call back',
        cid,
        STALL_WARNING_MS / 1000
      );
    }
  }, STALL_WARNING_MS);
  timer.unref();
  stream.once('close', () => clearTimeout(timer));
}

module.exports = { watchForStall, STALL_WARNING_MS };
