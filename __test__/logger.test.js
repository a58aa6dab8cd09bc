'use strict';

// The `logger` option: the same conversation played against smtp-server 3.21.6 and
// against this package, each with a recording bunyan-style logger; the entries
// (level, transaction kind, fields and the formatted text) must be identical once
// session ids and ports are masked.

const test = require('node:test');
const assert = require('node:assert');
const util = require('node:util');
const net = require('node:net');
const tls = require('node:tls');

const { Client, deadline, WAIT, sleep } = require('./helpers/smtp-client.js');
const { SMTPServer: Ours } = require('../index.js');
const { SMTPServer: Reference } = require('smtp-server');

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

/** A logger that keeps what it is given. */
function recorder() {
  const entries = [];
  const logger = {};
  for (const level of LEVELS) {
    logger[level] = (data, ...args) => entries.push({ level, data, text: util.format(...args) });
  }
  logger.child = () => logger;
  return { logger, entries };
}

/** Masks what differs between any two runs: session ids, ports and the server name. */
function normalize(entries, ids, ports) {
  const mask = value => {
    let text = String(value);
    for (const [id, name] of ids) {
      text = text.split(id).join(name);
    }
    for (const port of ports) {
      text = text.split(String(port)).join('PORT');
    }
    return text;
  };
  return entries.map(({ level, data, text }) => {
    const fields = {};
    for (const [key, value] of Object.entries(data || {})) {
      if (key === 'err') {
        fields.err = value && value.message;
      } else if (key !== 'component') {
        fields[key] = typeof value === 'string' ? mask(value) : ports.has(value) ? 'PORT' : value;
      }
    }
    return `${level} ${JSON.stringify(fields)} ${mask(text)}`;
  });
}

/** Runs `script(port)` against a server of `Impl` with `options`; returns the masked log. */
async function logOf(Impl, options, script) {
  const { logger, entries } = recorder();
  // `options` may be a function of `mark(text)`, which puts a marker between the entries
  const mark = text => entries.push({ level: 'mark', data: {}, text });
  const opts = typeof options === 'function' ? options(mark) : options;
  const server = new Impl({ name: 'log.test', disableReverseLookup: true, closeTimeout: 200, ...opts, logger });
  const ids = new Map();
  server.on('connect', session => ids.set(session.id, `ID${ids.size}`));
  if (opts.markConnect) {
    server.on('connect', () => mark('connect event'));
  }
  const port = await deadline(
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(server.server.address().port));
    }),
    WAIT,
    'listen'
  );
  const ports = new Set([port]);
  try {
    await script(port, ports);
    // the close entries come after the client's socket closed
    await sleep(150);
  } finally {
    await deadline(new Promise(resolve => server.close(resolve)), WAIT, 'close');
  }
  // ids seen only in log entries (sessions that never emitted connect)
  for (const { data } of entries) {
    if (data && data.cid && !ids.has(data.cid)) {
      ids.set(data.cid, `ID${ids.size}`);
    }
  }
  return normalize(entries, ids, ports);
}

async function bothLogs(t, options, script) {
  const ref = await logOf(Reference, options, script);
  const ours = await logOf(Ours, options, script);
  assert.deepStrictEqual(ours, ref);
  assert.ok(ref.length > 3, 'the reference logged the conversation');
  return ours;
}

/** Plays `lines` one at a time (each waits for one reply) and closes. */
function conversation(lines, { hello = 'EHLO client.test' } = {}) {
  return async (port, ports) => {
    const client = await Client.open(port, hello);
    ports.add(client.socket.localPort);
    for (const line of lines) {
      if (Array.isArray(line)) {
        client.socket.write(line[0]);
        for (let i = 0; i < line[1]; i++) {
          await client.read(JSON.stringify(line[0]));
        }
      } else {
        await client.cmd(line);
      }
    }
    client.socket.end();
    await deadline(client.closedPromise, WAIT, 'the close');
  };
}

test('a mail transaction: commands, replies, the body size, the close', async t => {
  const log = await bothLogs(
    t,
    { authOptional: true, onData: (stream, session, cb) => stream.on('end', cb).resume() },
    conversation(['MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'DATA', ['hello\r\nworld\r\n.\r\n', 1], 'NOOP', 'QUIT'])
  );
  assert.ok(log.some(line => line.includes('C: <14 bytes of DATA>')), log.join('\n'));
  assert.ok(log.some(line => line.includes('"tnx":"send"') && line.includes('S: 250 OK: message queued')), log.join('\n'));
});

test('AUTH credentials are redacted, continuation lines hidden, failures logged', async t => {
  const onAuth = (auth, session, cb) => (auth.password === 'secret' ? cb(null, { user: { username: auth.username } }) : cb(new Error('Nope')));
  const plain = Buffer.from('\0user\0secret').toString('base64');
  const log = await bothLogs(
    t,
    { allowInsecureAuth: true, authMethods: ['PLAIN', 'LOGIN'], onAuth },
    conversation(['AUTH LOGIN', Buffer.from('user').toString('base64'), Buffer.from('wrong').toString('base64'), `AUTH PLAIN ${plain}`, 'MAIL FROM:<a@example.com>', 'QUIT'])
  );
  assert.ok(!log.some(line => line.includes(plain)), 'the PLAIN token is not logged');
  assert.ok(log.some(line => line.includes('C: AUTH PLAIN /* secured */')), log.join('\n'));
});

test('SHELL, KILL, unknown commands and syntax errors', async t => {
  await bothLogs(t, { authOptional: true }, conversation(['SHELL', 'KILL', 'WIZ', 'BOGUS', 'MAIL FROM:nobody', 'RSET', 'QUIT']));
});

test('XCLIENT fields, the re-greeting and LOGIN= (deauthenticate)', async t => {
  const onAuth = (auth, session, cb) => cb(null, { user: auth.username });
  await bothLogs(
    t,
    { authOptional: true, useXClient: true, onAuth },
    conversation([['XCLIENT NAME=mx.example.org ADDR=192.0.2.9 PORT=4321\r\n', 1], 'EHLO again.test', ['XCLIENT LOGIN=someone\r\n', 1], 'EHLO again.test', ['XCLIENT LOGIN=\r\n', 1], 'QUIT'])
  );
});

test('XFORWARD fields', async t => {
  await bothLogs(
    t,
    { authOptional: true, useXForward: true },
    conversation(['XFORWARD NAME=mx.example.org ADDR=192.0.2.9 PORT=4321 HELO=Client.Example', 'MAIL FROM:<a@example.com>', 'QUIT'])
  );
});

test('an oversized message refused after its body', async t => {
  const log = await bothLogs(
    t,
    { authOptional: true, size: 10, onData: (stream, session, cb) => stream.on('end', () => cb(stream.sizeExceeded ? Object.assign(new Error('Too big'), { responseCode: 552 }) : null)).resume() },
    conversation(['MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'DATA', ['this body is longer than ten bytes\r\n.\r\n', 1], 'QUIT'])
  );
  assert.ok(log.some(line => line.includes('bytes of DATA')), log.join('\n'));
});

test('STARTTLS logs the upgrade with the cipher', async t => {
  const negotiated = [];
  const script = async (port, ports) => {
    const client = await Client.open(port);
    ports.add(client.socket.localPort);
    await client.cmd('STARTTLS');
    client.socket.removeAllListeners('data');
    const secure = tls.connect({ socket: client.socket, rejectUnauthorized: false });
    await deadline(new Promise((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject)), WAIT, 'the handshake');
    negotiated.push(secure.getCipher().standardName || secure.getCipher().name);
    const upgraded = new Client(secure);
    await upgraded.cmd('EHLO secure.test');
    await upgraded.cmd('QUIT');
    await deadline(upgraded.closedPromise, WAIT, 'the close');
  };
  // the two TLS stacks may prefer different suites: compare the rest, then check ours
  // names the suite the client saw
  const ref = await logOf(Reference, { authOptional: true }, script);
  const ours = await logOf(Ours, { authOptional: true }, script);
  const masked = log => log.map(line => line.replace(/TLS_[A-Z0-9_]+/g, 'CIPHER'));
  assert.deepStrictEqual(masked(ours), masked(ref));
  assert.ok(ours.some(line => line.includes(`Connection upgraded to TLS using ${negotiated[1]}`)), ours.join('\n'));
});

test('a PROXY header: the proxied address is logged, unless it is an ignored host', async t => {
  const script = header => async (port, ports) => {
    const client = await Client.connect(port);
    ports.add(client.socket.localPort);
    client.socket.write(header);
    await client.read('the greeting');
    await client.cmd('QUIT');
    await deadline(client.closedPromise, WAIT, 'the close');
  };
  const log = await bothLogs(t, { authOptional: true, useProxy: true }, script('PROXY TCP4 192.0.2.7 198.51.100.1 5678 25\r\n'));
  assert.ok(log.some(line => line.includes('PROXY from 192.0.2.7 through 198.51.100.1 (["TCP4","192.0.2.7","198.51.100.1","5678","25"])')), log.join('\n'));
  const quiet = await bothLogs(t, { authOptional: true, useProxy: true, ignoredHosts: ['192.0.2.8'] }, script('PROXY TCP4 192.0.2.8 198.51.100.1 5678 25\r\n'));
  assert.ok(!quiet.some(line => line.includes('PROXY from')), quiet.join('\n'));
});

test('onConnect defined: the connection entry follows it; a bad PTR name is discarded', async t => {
  const resolver = { reverse: (ip, cb) => cb(null, ['bad name\r\n.example']) };
  await bothLogs(t, { authOptional: true, disableReverseLookup: false, resolver, onConnect: (session, cb) => cb() }, conversation(['NOOP', 'QUIT']));
  await bothLogs(t, { authOptional: true, disableReverseLookup: false, resolver }, conversation(['NOOP', 'QUIT']));
});

test('the connection entry comes before the connect event and before onSecure', async t => {
  await bothLogs(t, mark => ({ authOptional: true, markConnect: true, onMailFrom: (a, s, cb) => (mark('onMailFrom'), cb()) }), conversation(['MAIL FROM:<a@example.com>', 'QUIT']));
  const script = async (port, ports) => {
    const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    await deadline(new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject)), WAIT, 'the handshake');
    ports.add(socket.localPort);
    const client = new Client(socket);
    await client.read('the greeting');
    await client.cmd('QUIT');
    await deadline(client.closedPromise, WAIT, 'the close');
  };
  const log = await bothLogs(t, mark => ({ authOptional: true, secure: true, onSecure: (socket, session, cb) => (mark('onSecure'), cb()) }), script);
  const at = text => log.findIndex(line => line.includes(text));
  assert.ok(at('Connection from') >= 0 && at('Connection from') < at('onSecure'), log.join('\n'));
});

test('PROXY: the logged address and the ignoredHosts check use the header\'s own text', async t => {
  const script = async (port, ports) => {
    const client = await Client.connect(port);
    ports.add(client.socket.localPort);
    client.socket.write('PROXY TCP6 ::FFFF:192.0.2.4 ::1 5555 25\r\n');
    await client.read('the greeting');
    await client.cmd('QUIT');
    await deadline(client.closedPromise, WAIT, 'the close');
  };
  const logged = await bothLogs(t, { authOptional: true, useProxy: true, ignoredHosts: ['192.0.2.4'] }, script);
  assert.ok(logged.some(line => line.includes('PROXY from ::ffff:192.0.2.4')), logged.join('\n'));
  const quiet = await bothLogs(t, { authOptional: true, useProxy: true, ignoredHosts: ['::ffff:192.0.2.4'] }, script);
  assert.ok(!quiet.some(line => line.includes('PROXY from')), quiet.join('\n'));
});

test('a client that resets the connection: the error and the close after error', async t => {
  const script = async (port, ports) => {
    const client = await Client.open(port);
    ports.add(client.socket.localPort);
    await client.cmd('MAIL FROM:<a@example.com>');
    client.socket.resetAndDestroy();
    await deadline(client.closedPromise, WAIT, 'the close');
  };
  const ours = await logOf(Ours, { authOptional: true }, script);
  assert.ok(ours.some(line => line.includes('"tnx":"error"') && line.includes('ECONNRESET')), ours.join('\n'));
  assert.ok(ours.some(line => line.includes('received "close" event from 127.0.0.1 after error')), ours.join('\n'));
});

test('logging off: no traffic crosses for the logger and nothing is printed', async () => {
  const { logger, entries } = recorder();
  const server = new Ours({ disableReverseLookup: true, authOptional: true, logger: false });
  assert.notStrictEqual(server.logger, logger);
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve));
  const port = server.server.address().port;
  const client = await Client.open(port);
  await client.cmd('NOOP');
  await client.cmd('QUIT');
  await new Promise(resolve => server.close(resolve));
  assert.strictEqual(entries.length, 0);
  void net;
});
