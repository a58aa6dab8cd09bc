'use strict';
// Long-running child processes for tests (example servers): started, waited for until
// they say they listen, stopped, and killed whatever happens when the test file exits.
const { spawn } = require('node:child_process');
const net = require('node:net');
const { until } = require('./smtp-client.js');

const children = new Set();
process.on('exit', () => {
  for (const child of children) {
    signalTree(child, 'SIGKILL');
  }
});

/** Sends `signal` to the child, and to its process group when it leads one. */
function signalTree(child, signal) {
  try {
    process.kill(child.detached ? -child.pid : child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // gone already
    }
  }
}

/**
 * Starts `cmd args` and waits (up to `ms`) until its output matches `ready`. With
 * `detached`, the child leads a process group that `stop()` signals as a whole (so a
 * server started through npm is reached too). Resolves with
 * `{ child, match, output(), errors(), exited(), stop() }`: `match` is what `ready`
 * matched; `stop()` sends SIGTERM, then SIGKILL after 3 s, and resolves with the exit.
 */
async function startProcess(cmd, args, { cwd, env, ready, ms = 15000, detached = false, what = cmd } = {}) {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached });
  child.detached = detached;
  children.add(child);
  let out = '';
  let err = '';
  let exited = null;
  child.stdout.on('data', d => (out += d));
  child.stderr.on('data', d => (err += d));
  const exit = new Promise(resolve =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      children.delete(child);
      resolve(exited);
    })
  );
  const handle = {
    child,
    output: () => out,
    errors: () => err,
    exited: () => exited,
    async stop() {
      if (!exited) {
        signalTree(child, 'SIGTERM');
        const timer = setTimeout(() => signalTree(child, 'SIGKILL'), 3000);
        await exit;
        clearTimeout(timer);
      }
      return exited;
    }
  };
  try {
    await until(() => ready.test(out) || exited, `${what} to listen`, ms);
  } catch (e) {
    await handle.stop();
    throw new Error(`${e.message}; output: ${out}${err}`);
  }
  handle.match = ready.exec(out);
  if (!handle.match) {
    throw new Error(`${what} exited (${JSON.stringify(exited)}) before listening: ${out}${err}`);
  }
  return handle;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for a server that cannot take port 0). */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts connections on 127.0.0.1:`port` (tries for 5 s). */
async function waitForPort(port) {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise(resolve => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) {
      return;
    }
    await new Promise(r => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

module.exports = { startProcess, freePort, waitForPort };
