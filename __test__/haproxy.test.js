'use strict';
// A real HAProxy in front of two server processes: one backend gets PROXY v1
// (send-proxy), the other PROXY v2 (send-proxy-v2). Both must see the client's own
// address and port, and the messages must arrive. Skipped when haproxy is missing
// (.ci/run installs it).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { freePort, waitForPort } = require('./helpers/process.js');

const haproxy = ['/usr/sbin/haproxy', '/usr/bin/haproxy', '/usr/local/sbin/haproxy'].find(p => fs.existsSync(p)) || (spawnSync('sh', ['-c', 'command -v haproxy']).stdout || '').toString().trim();

function startBackend(name, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'helpers', 'proxy-backend.js')], {
      env: { ...process.env, BACKEND_NAME: name, ...env },
      stdio: ['ignore', 'pipe', 'inherit']
    });
    const messages = [];
    let buffer = '';
    let ready = false;
    const timer = setTimeout(() => reject(new Error(`backend ${name} did not start`)), 10000);
    child.stdout.on('data', chunk => {
      buffer += chunk;
      let i;
      while ((i = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        const m = /^READY (\d+)/.exec(line);
        if (m && !ready) {
          ready = true;
          clearTimeout(timer);
          resolve({ child, port: Number(m[1]), messages });
        } else if (line.startsWith('{')) {
          messages.push(JSON.parse(line));
        }
      }
    });
    child.on('exit', code => {
      if (!ready) {
        clearTimeout(timer);
        reject(new Error(`backend ${name} exited with ${code}`));
      }
    });
  });
}

/** Sends one message over a fresh connection; resolves with the client's local port. */
function sendOne(port, text) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const script = ['EHLO client.test', 'MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'DATA', `Subject: t\r\n\r\n${text}\r\n.`, 'QUIT'];
    let buffer = '';
    let step = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no reply through the proxy (got ${JSON.stringify(buffer)})`));
    }, 10000);
    socket.on('error', reject);
    socket.on('data', chunk => {
      buffer += chunk;
      // one complete reply (the last line has a space after the code) per step
      const lines = buffer.split('\r\n').filter(l => /^\d{3} /.test(l));
      while (step < script.length && lines.length > step) {
        socket.write(script[step] + '\r\n');
        step++;
      }
      if (lines.length > script.length) {
        clearTimeout(timer);
        const localPort = socket.localPort;
        socket.end();
        resolve({ localPort, replies: lines });
      }
    });
  });
}

test('HAProxy with send-proxy and send-proxy-v2 in front of two server processes', { skip: !haproxy && 'haproxy is not installed' }, async () => {
  const a = await startBackend('v1');
  const b = await startBackend('v2');
  const front = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtp-rs-haproxy-'));
  const config = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(
    config,
    [
      'global',
      '  maxconn 100',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 30s',
      '  timeout server 30s',
      'frontend smtp',
      `  bind 127.0.0.1:${front}`,
      '  default_backend servers',
      'backend servers',
      '  balance roundrobin',
      `  server v1 127.0.0.1:${a.port} send-proxy`,
      `  server v2 127.0.0.1:${b.port} send-proxy-v2`,
      ''
    ].join('\n')
  );
  const proxy = spawn(haproxy, ['-db', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let proxyErr = '';
  proxy.stderr.on('data', d => (proxyErr += d));
  try {
    // wait until the frontend accepts
    await waitForPort(front);
    const sent = [];
    for (let i = 0; i < 6; i++) {
      const r = await sendOne(front, `message ${i}`);
      assert.match(r.replies[r.replies.length - 2], /^250 /, `message ${i} accepted`);
      sent.push(r.localPort);
    }
    // the replies came after delivery, so every message is printed already (give stdout a moment)
    for (let i = 0; i < 50 && a.messages.length + b.messages.length < 6; i++) {
      await new Promise(r => setTimeout(r, 100));
    }
    const all = [...a.messages, ...b.messages];
    assert.equal(all.length, 6, `6 messages delivered (haproxy: ${proxyErr.slice(0, 300)})`);
    assert.ok(a.messages.length > 0, 'the send-proxy (v1) backend received traffic');
    assert.ok(b.messages.length > 0, 'the send-proxy-v2 backend received traffic');
    for (const m of all) {
      assert.equal(m.remoteAddress, '127.0.0.1');
      assert.ok(sent.includes(m.remotePort), `remotePort ${m.remotePort} is a client port (${sent.join(', ')}), not the proxy's`);
      assert.match(m.body, /message \d/);
    }
  } finally {
    proxy.kill('SIGTERM');
    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    await Promise.all([proxy, a.child, b.child].map(c => new Promise(r => (c.exitCode !== null ? r() : c.once('exit', r)))));
  }
});

test('two processes serve one port with reusePort', { skip: process.platform !== 'linux' && 'SO_REUSEPORT spreading is Linux behaviour' }, async () => {
  const port = await freePort();
  const a = await startBackend('a', { BACKEND_PROXY: '0', PORT: String(port), REUSE_PORT: '1' });
  const b = await startBackend('b', { BACKEND_PROXY: '0', PORT: String(port), REUSE_PORT: '1' });
  try {
    assert.equal(a.port, port);
    assert.equal(b.port, port);
    for (let i = 0; i < 24; i++) {
      const r = await sendOne(port, `message ${i}`);
      assert.match(r.replies[r.replies.length - 2], /^250 /);
    }
    for (let i = 0; i < 50 && a.messages.length + b.messages.length < 24; i++) {
      await new Promise(r => setTimeout(r, 100));
    }
    assert.equal(a.messages.length + b.messages.length, 24);
    assert.ok(a.messages.length > 0 && b.messages.length > 0, `both processes served (${a.messages.length} / ${b.messages.length})`);
  } finally {
    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    await Promise.all([a.child, b.child].map(c => new Promise(r => (c.exitCode !== null ? r() : c.once('exit', r)))));
  }
});
