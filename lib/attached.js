'use strict';

/**
 * The sockets of connections served through `server.connect(socket)`: their bytes go to
 * the native connection (reading pauses while its queue is full, or while the socket's
 * write buffer is), and its output and end come back to the socket.
 */
class AttachedSockets {
  constructor(answers, kinds) {
    this._answers = answers;
    this._kinds = kinds;
    this._pipes = new Map();
  }

  /** Sockets still attached. */
  get size() {
    return this._pipes.size;
  }

  /** Starts carrying `socket`'s bytes to the native pipe `pipe`. */
  add(pipe, socket) {
    const state = { socket, queueFull: false, writeBlocked: false, ended: false, done: false };
    this._pipes.set(pipe, state);
    const end = failed => {
      if (!state.ended) {
        state.ended = true;
        this._answers.direct().pipeEnd(pipe, failed);
      }
    };
    socket.on('data', chunk => {
      if (state.done) {
        return; // the session has ended: what the client still sends is dropped
      }
      if (this._answers.direct().pipeData(pipe, typeof chunk === 'string' ? Buffer.from(chunk) : chunk)) {
        state.queueFull = true;
        socket.pause();
      }
    });
    socket.on('drain', () => {
      state.writeBlocked = false;
      resumePipe(state);
    });
    socket.on('end', () => end(false));
    socket.on('error', () => end(true));
    socket.on('close', () => end(false));
    if (socket.destroyed || socket.readableEnded) {
      end(false);
    }
  }

  /** Carries an attached connection's output (`PipeWrite`), resume (`PipeDrain`) or end to its socket. */
  event(k, pipe, data) {
    const state = this._pipes.get(pipe);
    if (!state) {
      return;
    }
    const socket = state.socket;
    if (k === this._kinds.PipeWrite) {
      if (data && !socket.destroyed && socket.writable && !socket.write(data)) {
        state.writeBlocked = true;
        socket.pause();
      }
    } else if (k === this._kinds.PipeDrain) {
      state.queueFull = false;
      resumePipe(state);
    } else {
      this._pipes.delete(pipe);
      state.done = true;
      if (!socket.destroyed) {
        // reading on lets the client's end arrive, so the socket closes
        state.queueFull = false;
        state.writeBlocked = false;
        socket.resume();
        socket.end();
      }
    }
  }
}

/** Resumes reading an attached socket once nothing holds it back. */
function resumePipe(state) {
  if (!state.queueFull && !state.writeBlocked && !state.socket.destroyed) {
    state.socket.resume();
  }
}

module.exports = { AttachedSockets };
