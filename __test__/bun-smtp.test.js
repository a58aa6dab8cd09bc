'use strict';

// Code written for bun-smtp, run against this package:
//
// - bun-smtp's documented examples, in __test__/fixtures/bun-smtp/ with the import
//   switched to 'smtp-server-rs' (each file's header says where it is from and what, if
//   anything, was added around the snippet). Each runs in a child process under Bun, and
//   under Node too when it is plain JavaScript without Bun APIs; harness.cjs is
//   preloaded to move the example's fixed port to a free one. The test sends real mail
//   and checks the replies, the files the example wrote and what it printed.
// - The web stream side of the DATA stream (getReader, pipeTo, pipeThrough, tee, cancel,
//   locked) over real connections, the Node stream side when it is not used, and
//   `await server.listen()`.
//
// SMTP_RS_BUN=/path/to/bun picks the Bun that runs the examples (default: this Bun under
// `bun test`, else node_modules/.bin/bun).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const { Writable } = require('node:stream');
const nodemailer = require('nodemailer');

const { WAIT, deadline, until, sleep, createServer, listen, closeServer, Client, transaction, dotStuff, sha256, runChild } = require('./helpers/smtp-client.js');
const { DEFAULT_KEY, DEFAULT_CERT } = require('../lib/tls-options.js');
const { startProcess } = require('./helpers/process.js');

const ROOT = path.join(__dirname, '..');
const FIXTURES = path.join(__dirname, 'fixtures', 'bun-smtp');
const HARNESS = path.join(FIXTURES, 'harness.cjs');
const START = 20000;

function findBun() {
  if (process.env.SMTP_RS_BUN) {
    return process.env.SMTP_RS_BUN;
  }
  if (process.versions.bun) {
    return process.execPath;
  }
  const local = path.join(ROOT, 'node_modules', '.bin', 'bun');
  return fs.existsSync(local) ? local : null;
}

function findNode() {
  if (!process.versions.bun) {
    return process.execPath;
  }
  return spawnSync('node', ['--version'], { stdio: 'ignore' }).status === 0 ? 'node' : null;
}

const RUNTIMES = { bun: findBun(), node: findNode() };

/**
 * Runs a fixture under `runtime` in a fresh working directory (holding `files`) and waits for the port
 * the harness prints. Resolves with { port, dir, output(), waitOutput(re), stop() }.
 */
async function startExample(runtime, file, files = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtp-rs-bun-smtp-'));
  for (const [name, content] of Object.entries(files)) {
    fs.writeFileSync(path.join(dir, name), content);
  }
  const preload = runtime === 'bun' ? '--preload' : '--require';
  let handle;
  try {
    handle = await startProcess(RUNTIMES[runtime], [preload, HARNESS, path.join(FIXTURES, file)], { cwd: dir, ready: /@@port (\d+)/, ms: START, what: file });
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const stop = handle.stop;
  return {
    dir,
    port: Number(handle.match[1]),
    output: handle.output,
    async waitOutput(re, what = String(re)) {
      await until(() => re.test(handle.output()) || handle.exited(), `the example to print ${what}`);
      assert.match(handle.output(), re, `output of ${file}: ${handle.output()}\n${handle.errors()}`);
    },
    async stop() {
      const exited = await stop();
      fs.rmSync(dir, { recursive: true, force: true });
      return exited;
    }
  };
}

/** Defines one test per runtime that can run `file` (TypeScript and Bun APIs need Bun). */
function exampleTest(name, file, runtimes, fn, files) {
  for (const runtime of runtimes) {
    const why = RUNTIMES[runtime] ? false : `no ${runtime} to run it`;
    test(`${name} (${file}, ${runtime})`, { skip: why, timeout: 60000 }, async () => {
      const example = await startExample(runtime, file, files);
      try {
        await fn(example);
      } finally {
        await example.stop();
      }
    });
  }
}

function transport(port, extra = {}) {
  return nodemailer.createTransport({ host: '127.0.0.1', port, tls: { rejectUnauthorized: false }, connectionTimeout: WAIT, greetingTimeout: WAIT, socketTimeout: 10000, ...extra });
}

/** A message body with CRLF lines, 8-bit text and lines starting with a dot. */
function sampleBody(lines = 200) {
  const parts = ['From: sender@example.com', 'To: rcpt@example.com', 'Subject: bun-smtp example', ''];
  for (let i = 0; i < lines; i++) {
    parts.push(i % 17 === 0 ? `.line ${i} starts with a dot` : `line ${i} ${crypto.randomBytes(24).toString('base64')} ünïcödé`);
  }
  return Buffer.from(parts.join('\r\n') + '\r\n');
}

function b64(text) {
  return Buffer.from(text).toString('base64');
}

function filesIn(dir, re) {
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter(name => re.test(name)) : [];
}

// ---------------------------------------------------------------------------
// bun-smtp's documented examples

exampleTest('basic server: saves the message as an .eml file', 'basic-server.ts', ['bun'], async ex => {
  const body = sampleBody();
  const client = await Client.open(ex.port);
  assert.equal(await transaction(client, dotStuff(body), 'sender@example.com', ['alice@example.com', 'bob@example.com']), '250 OK: message queued');
  await ex.waitOutput(/Saved email to (email-\d+\.eml)/);
  assert.match(ex.output(), /SMTP server listening on port 2525/);
  assert.match(ex.output(), /From: sender@example\.com/);
  assert.match(ex.output(), /To: alice@example\.com, bob@example\.com/);
  const [file] = filesIn(ex.dir, /^email-\d+\.eml$/);
  assert.ok(file, 'an .eml file was written');
  assert.equal(sha256(fs.readFileSync(path.join(ex.dir, file))), sha256(body), 'the file holds the message as sent');
  client.destroy();
});

exampleTest('LMTP server: one reply per recipient, a file per mailbox', 'lmtp-server.ts', ['bun'], async ex => {
  const body = sampleBody(50);
  const client = await Client.open(ex.port, 'LHLO client.test');
  const replies = await transaction(client, dotStuff(body), 'sender@example.com', ['alice@localhost', 'nobody@localhost', 'bob@localhost'], 3);
  assert.deepEqual(replies, ['250 Delivered to alice@localhost', '550 No such user: nobody@localhost', '250 Delivered to bob@localhost']);
  await ex.waitOutput(/✓ Delivered to bob@localhost/);
  assert.match(ex.output(), /Unknown recipient: nobody@localhost/);
  assert.match(ex.output(), /✗ Delivery failed for nobody@localhost/);
  for (const box of ['alice-localhost', 'bob-localhost']) {
    const files = filesIn(path.join(ex.dir, 'mail', box), /^\d+\.eml$/);
    assert.equal(files.length, 1, `one message in mail/${box}`);
    assert.equal(sha256(fs.readFileSync(path.join(ex.dir, 'mail', box, files[0]))), sha256(body));
  }
  assert.deepEqual(filesIn(path.join(ex.dir, 'mail'), /nobody/), []);
  client.destroy();
});

exampleTest('authentication server: STARTTLS, AUTH, the message saved under the user name', 'auth-server.ts', ['bun'], async ex => {
  const raw = sampleBody(20);
  const info = await transport(ex.port, { auth: { user: 'alice', pass: 'secret123' } }).sendMail({ envelope: { from: 'alice@example.com', to: ['rcpt@example.com'] }, raw });
  assert.match(info.response, /^250 /);
  await ex.waitOutput(/Saved email from alice to (alice-\d+\.eml)/);
  const [file] = filesIn(ex.dir, /^alice-\d+\.eml$/);
  assert.equal(sha256(fs.readFileSync(path.join(ex.dir, file))), sha256(raw));
  assert.match(ex.output(), /Auth attempt: PLAIN from 127\.0\.0\.1/);
  await assert.rejects(transport(ex.port, { auth: { user: 'bob', pass: 'wrong' } }).sendMail({ envelope: { from: 'bob@example.com', to: ['rcpt@example.com'] }, raw }), err => {
    assert.equal(err.responseCode, 535);
    assert.match(err.response, /^535 Invalid username or password/);
    return true;
  });
  await ex.waitOutput(/✗ Invalid credentials for bob/);
});

exampleTest('quick start: `await server.listen()` then for await over the stream', 'quick-start.ts', ['bun'], async ex => {
  // the line after the await comes after the harness's `listening` line
  await ex.waitOutput(/@@port \d+\n(.|\n)*SMTP server listening on port 2525/, 'the line after `await server.listen()`');
  const client = await Client.open(ex.port);
  assert.equal(await transaction(client, dotStuff(sampleBody(5000))), '250 OK: message queued');
  client.destroy();
});

exampleTest('first README quick start: getReader() loop and listen(port, host, callback)', 'quick-start-reader.ts', ['bun'], async ex => {
  const body = sampleBody(3000);
  await ex.waitOutput(/Listening on port 2525/);
  const client = await Client.open(ex.port);
  assert.equal(await transaction(client, dotStuff(body)), '250 OK: message queued');
  await ex.waitOutput(new RegExp(`Received message: ${body.length} bytes`));
  client.destroy();
});

exampleTest('onData example: for await and Buffer.concat', 'on-data.ts', ['bun'], async ex => {
  const client = await Client.open(ex.port);
  assert.equal(await transaction(client, dotStuff(sampleBody())), '250 OK: message queued');
  client.destroy();
});

exampleTest('authenticated connections: onAuth and pipeTo(new WritableStream())', 'authenticated.mjs', ['bun', 'node'], async ex => {
  const raw = Buffer.concat([sampleBody(10), crypto.randomBytes(2 * 1024 * 1024).toString('base64').replace(/.{76}/g, '$&\r\n'), Buffer.from('\r\n')].map(Buffer.from));
  const info = await transport(ex.port, { auth: { user: 'user', pass: 'pass' } }).sendMail({ envelope: { from: 'user@example.com', to: ['rcpt@example.com'] }, raw });
  assert.match(info.response, /^250 /);
  await assert.rejects(transport(ex.port, { auth: { user: 'user', pass: 'nope' } }).sendMail({ envelope: { from: 'user@example.com', to: ['rcpt@example.com'] }, raw: 'Subject: x\r\n\r\nx\r\n' }), err => {
    assert.equal(err.responseCode, 535);
    assert.match(err.response, /^535 Invalid credentials/);
    return true;
  });
});

exampleTest(
  'implicit TLS: key and certificate files',
  'implicit-tls.mjs',
  ['bun', 'node'],
  async ex => {
    // the snippet sets no onAuth and leaves AUTH required (as in bun-smtp): the TLS
    // handshake with the certificate from the files, EHLO and the AUTH gate are what it shows
    const client = await Client.openTls(ex.port, { servername: 'localhost' });
    assert.equal(client.socket.getPeerCertificate().subject.CN, 'localhost');
    assert.match(client.ehlo, /AUTH LOGIN PLAIN/);
    assert.match(await client.cmd('MAIL FROM:<sender@example.com>'), /^530 /);
    client.destroy();
  },
  { 'server.key': DEFAULT_KEY, 'server.crt': DEFAULT_CERT }
);

exampleTest('callback examples: onConnect, onSecure, onAuth, onMailFrom, onRcptTo, onData (session), onClose', 'callbacks.mjs', ['bun', 'node'], async ex => {
  const client = await Client.open(ex.port);
  assert.match(await client.cmd('MAIL FROM:<sender@example.com>'), /^530 /, 'AUTH is required');
  await client.starttls();
  assert.match(await client.cmd('EHLO client.test'), /^250[ -]/);
  await ex.waitOutput(/name: ['"]TLS_[A-Z0-9_]+['"]/, 'session.tlsOptions from onSecure');
  assert.match(await client.cmd(`AUTH PLAIN ${b64('\0user\0wrong')}`), /^535 Invalid credentials$/);
  assert.equal(await client.cmd(`AUTH PLAIN ${b64('\0user\0secret')}`), '235 Authentication successful');
  assert.equal(await client.cmd('MAIL FROM:<spammer@blocked.example>'), '550 Sender not allowed');
  assert.equal(await client.cmd('MAIL FROM:<sender@example.com>'), '250 Accepted');
  assert.equal(await client.cmd('RCPT TO:<carol@example.com>'), '550 No such user');
  assert.equal(await client.cmd('RCPT TO:<alice@example.com>'), '250 Accepted');
  assert.equal(await client.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>');
  client.write(dotStuff(sampleBody(3000)));
  client.write('.\r\n');
  assert.match(await client.read(), /^250 /);
  await ex.waitOutput(/User: user/);
  assert.match(ex.output(), /From: sender@example\.com/);
  assert.match(ex.output(), /To: \[ ['"]alice@example\.com['"] \]/);
  assert.match(ex.output(), /Secure: true/);
  assert.match(await client.cmd('QUIT'), /^221 /);
  await ex.waitOutput(/Connection \S+ closed after \d+ transactions/, 'the onClose line');
  client.destroy();
});

exampleTest('size limit example: 552 once the message is over `size`', 'size-limit.mjs', ['bun', 'node'], async ex => {
  const client = await Client.open(ex.port);
  assert.equal(await transaction(client, dotStuff(sampleBody(100))), '250 OK: message queued');
  assert.equal(await transaction(client, dotStuff(sampleBody(3000))), '552 Message too large');
  assert.equal(await transaction(client, dotStuff(sampleBody(10))), '250 OK: message queued', 'the connection goes on');
  client.destroy();
});

exampleTest('LMTP per-recipient responses example', 'lmtp.mjs', ['bun', 'node'], async ex => {
  const client = await Client.open(ex.port, 'LHLO client.test');
  const replies = await transaction(client, dotStuff(sampleBody(10)), 'sender@example.com', ['good@example.com', 'bad@example.com', 'other@example.com'], 3);
  assert.deepEqual(replies, ['250 Message accepted', '452 Mailbox full', '250 Message accepted']);
  client.destroy();
});

// ---------------------------------------------------------------------------
// The DATA stream as a web ReadableStream

/** Starts a server whose onData runs `handle(stream, session)` and answers with its result or error. */
async function streamServer(handle, options = {}) {
  const server = createServer({
    ...options,
    onData(stream, session, callback) {
      Promise.resolve()
        .then(() => handle(stream, session))
        .then(message => callback(null, message), callback);
    }
  });
  return { server, port: await listen(server) };
}

/** A binary body (every byte value, bare CR and LF, dots after CRLF) ending with CRLF. */
function binaryBody(size) {
  const bytes = crypto.randomBytes(size);
  bytes.write('\r\n.\r\n..\r\n.', 1000, 'latin1');
  return Buffer.concat([bytes, Buffer.from('\r\n')]);
}

async function readAll(readable) {
  const chunks = [];
  for await (const chunk of readable) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

test('getReader(): exact bytes of an 8 MiB binary message; the socket is not read ahead of the reader; locked', async () => {
  const body = binaryBody(8 * 1024 * 1024);
  let seen;
  const { server, port } = await streamServer(async stream => {
    const before = stream.locked;
    const reader = stream.getReader();
    const during = stream.locked;
    const chunks = [];
    const first = await reader.read();
    chunks.push(first.value);
    await sleep(400);
    const received = stream.byteLength;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        break;
      }
      chunks.push(value);
    }
    reader.releaseLock();
    seen = { before, during, after: stream.locked, received, chunks };
  });
  try {
    const client = await Client.open(port);
    assert.equal(await transaction(client, dotStuff(body)), '250 OK: message queued');
    client.destroy();
    assert.deepEqual([seen.before, seen.during, seen.after], [false, true, false], 'locked while the reader holds the stream');
    assert.ok(seen.chunks.every(chunk => Buffer.isBuffer(chunk)), 'the chunks are the Readable’s Buffers');
    assert.equal(sha256(Buffer.concat(seen.chunks)), sha256(body));
    assert.ok(seen.received < body.length / 2, `while the reader waited only ${seen.received} of ${body.length} bytes came in`);
  } finally {
    await closeServer(server);
  }
});

test('pipeTo(): into a slow WritableStream; the reply waits for the pipe', async () => {
  const body = binaryBody(3 * 1024 * 1024);
  const chunks = [];
  let writes = 0;
  const { server, port } = await streamServer(async stream => {
    await stream.pipeTo(
      new WritableStream({
        async write(chunk) {
          if (++writes % 8 === 0) {
            await sleep(2);
          }
          chunks.push(chunk);
        }
      })
    );
    return 'piped';
  });
  try {
    const client = await Client.open(port);
    assert.equal(await transaction(client, dotStuff(body)), '250 piped');
    client.destroy();
    assert.equal(sha256(Buffer.concat(chunks)), sha256(body));
  } finally {
    await closeServer(server);
  }
});

test('pipeThrough(): through a TransformStream and a TextDecoderStream', async () => {
  const body = sampleBody(4000);
  let text;
  let sizes;
  const { server, port } = await streamServer(async stream => {
    const [a, b] = stream.tee();
    const decoded = a.pipeThrough(new TextDecoderStream());
    const lengths = b.pipeThrough(new TransformStream({ transform: (chunk, controller) => controller.enqueue(chunk.length) }));
    const parts = [];
    const counted = [];
    await Promise.all([
      (async () => {
        for await (const part of decoded) parts.push(part);
      })(),
      (async () => {
        for await (const n of lengths) counted.push(n);
      })()
    ]);
    text = parts.join('');
    sizes = counted;
  });
  try {
    const client = await Client.open(port);
    assert.equal(await transaction(client, dotStuff(body)), '250 OK: message queued');
    client.destroy();
    assert.equal(text, body.toString('utf8'));
    assert.equal(sizes.reduce((sum, n) => sum + n, 0), body.length);
  } finally {
    await closeServer(server);
  }
});

test('pipeThrough() on the stream itself, and tee(): both branches get every byte', async () => {
  const body = binaryBody(2 * 1024 * 1024);
  const results = [];
  let mode = 'tee';
  const { server, port } = await streamServer(async stream => {
    if (mode === 'tee') {
      const [a, b] = stream.tee();
      results.push(await Promise.all([readAll(a), readAll(b)]));
    } else {
      const piped = stream.pipeThrough(new TransformStream());
      results.push([await readAll(piped)]);
    }
  });
  try {
    const client = await Client.open(port);
    assert.equal(await transaction(client, dotStuff(body)), '250 OK: message queued');
    mode = 'pipeThrough';
    assert.equal(await transaction(client, dotStuff(body)), '250 OK: message queued');
    client.destroy();
    assert.equal(sha256(results[0][0]), sha256(body));
    assert.equal(sha256(results[0][1]), sha256(body));
    assert.equal(sha256(results[1][0]), sha256(body));
  } finally {
    await closeServer(server);
  }
});

test('cancel() and reader.cancel(): the rest of the message is dropped and the connection goes on', async () => {
  const body = binaryBody(2 * 1024 * 1024);
  let mode = 'cancel';
  const { server, port } = await streamServer(async stream => {
    if (mode === 'cancel') {
      await stream.cancel();
      return 'dropped';
    }
    if (mode === 'reader') {
      const reader = stream.getReader();
      await reader.read();
      await reader.cancel();
      return 'dropped after one chunk';
    }
    return `${(await readAll(stream)).length} bytes`;
  });
  try {
    const client = await Client.open(port);
    assert.equal(await transaction(client, dotStuff(body)), '250 dropped');
    mode = 'reader';
    assert.equal(await transaction(client, dotStuff(body)), '250 dropped after one chunk');
    mode = 'read';
    assert.equal(await transaction(client, dotStuff(body)), `250 ${body.length} bytes`);
    client.destroy();
  } finally {
    await closeServer(server);
  }
});

test('a client that goes away during DATA makes the web reader fail', async () => {
  let failure;
  const { server, port } = await streamServer(async stream => {
    const reader = stream.getReader();
    try {
      for (;;) {
        if ((await reader.read()).done) break;
      }
    } catch (err) {
      failure = err;
    }
  });
  try {
    const client = await Client.open(port);
    assert.equal(await client.cmd('MAIL FROM:<a@example.com>'), '250 Accepted');
    assert.equal(await client.cmd('RCPT TO:<b@example.com>'), '250 Accepted');
    assert.equal(await client.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>');
    client.write(dotStuff(binaryBody(64 * 1024)));
    await sleep(100);
    client.destroy();
    await until(() => failure, 'the reader to fail');
    assert.equal(failure.code, 'ECONNECTION');
  } finally {
    await closeServer(server);
  }
});

test('without the web methods: pipe(), for await and the Node stream state are as before', async () => {
  const body = binaryBody(1024 * 1024);
  const seen = [];
  let mode = 'pipe';
  const { server, port } = await streamServer(
    stream =>
      new Promise((resolve, reject) => {
        seen.push({ locked: stream.locked, flowing: stream.readableFlowing, data: stream.listenerCount('data'), error: stream.listenerCount('error') });
        if (mode === 'pipe') {
          const chunks = [];
          stream.pipe(
            new Writable({
              write(chunk, encoding, done) {
                chunks.push(chunk);
                setImmediate(done);
              }
            })
          ).on('finish', () => resolve(`${sha256(Buffer.concat(chunks))}`));
        } else {
          readAll(stream).then(all => resolve(sha256(all)), reject);
        }
      })
  );
  try {
    const client = await Client.open(port);
    assert.equal(await transaction(client, dotStuff(body)), `250 ${sha256(body)}`);
    mode = 'for await';
    assert.equal(await transaction(client, dotStuff(body)), `250 ${sha256(body)}`);
    client.destroy();
    for (const state of seen) {
      assert.deepEqual(state, { locked: false, flowing: null, data: 0, error: 0 });
    }
  } finally {
    await closeServer(server);
  }
});

// ---------------------------------------------------------------------------
// await server.listen()

test('await server.listen(): resolves with server.server once listening; thenable only while listen() is under way', async () => {
  const server = createServer();
  try {
    assert.equal(server.server.then, undefined, 'not thenable before listen()');
    const returned = (async () => server.server)();
    assert.equal(await returned, server.server, 'returned from an async function before listen(): no wait');
    let listened = false;
    server.server.once('listening', () => (listened = true));
    const pending = server.listen(0, '127.0.0.1');
    assert.equal(pending, server.server, 'listen() returns server.server');
    assert.equal(typeof pending.then, 'function');
    const value = await pending;
    assert.equal(value, server.server);
    assert.ok(listened, 'the listening event came first');
    assert.equal(server.server.then, undefined, 'not thenable once listening');
    assert.equal(await Promise.resolve(server.server), server.server);
    assert.ok(server.server.address().port > 0);
  } finally {
    await closeServer(server);
  }
});

test('listen(port, callback) returns a server.server that is not thenable, as in smtp-server', async () => {
  const server = createServer();
  try {
    let called = false;
    const returned = server.listen(0, '127.0.0.1', () => (called = true));
    assert.equal(returned.then, undefined);
    await until(() => called, 'the listen callback');
    const viaThen = await server.listen(0, '127.0.0.1').then(
      () => 'resolved',
      err => err.code
    );
    assert.equal(viaThen, 'ERR_SERVER_ALREADY_LISTEN', 'a second listen() is refused, by the promise');
  } finally {
    await closeServer(server);
  }
});

test('an awaited listen() that fails rejects; with an error listener the event comes too', async () => {
  const holder = net.createServer();
  await new Promise(resolve => holder.listen(0, '127.0.0.1', resolve));
  const port = holder.address().port;
  try {
    const quiet = createServer();
    await assert.rejects(async () => await quiet.listen(port, '127.0.0.1'), { code: 'EADDRINUSE' });
    const loud = createServer();
    const events = [];
    loud.on('error', err => events.push(err.code));
    await assert.rejects(async () => await loud.listen(port, '127.0.0.1'), { code: 'EADDRINUSE' });
    assert.deepEqual(events, ['EADDRINUSE']);
  } finally {
    holder.close();
  }
});

test('an unawaited listen() that fails, without an error listener, still throws the error event', async () => {
  const holder = net.createServer();
  await new Promise(resolve => holder.listen(0, '127.0.0.1', resolve));
  try {
    const script = `const { SMTPServer } = require(${JSON.stringify(ROOT)}); new SMTPServer({ logger: false }).listen(${holder.address().port}, '127.0.0.1');`;
    const res = await runChild(script, 15000);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /EADDRINUSE/);
  } finally {
    holder.close();
  }
});

// ---------------------------------------------------------------------------
// Types

test('types: the web members of the DATA stream and an awaited listen() compile with tsc --strict', { skip: !!process.versions.bun && 'tsc runs in the Node run', timeout: 120000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtp-rs-bun-smtp-types-'));
  try {
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'smtp-server-rs'), 'dir');
    const file = path.join(dir, 'web-stream.ts');
    fs.copyFileSync(path.join(FIXTURES, 'types', 'web-stream.ts'), file);
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = [tsc, '--strict', '--noEmit', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), '--types', 'node', file];
    const res = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8' });
    assert.equal(res.status, 0, res.stdout + res.stderr);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
