'use strict';

// The examples under examples/ and the README's commands, run for real: each example is
// started as a child process (on a free port or a temporary socket, with its output
// directories in a temporary directory), sent mail with nodemailer or a raw client, and
// checked by its replies and the files it wrote. The TypeScript example is type-checked
// with tsc --strict, compiled and run.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const nodemailer = require('nodemailer');

const { WAIT, deadline, until, Client, transaction, run } = require('./helpers/smtp-client.js');
const { startProcess, freePort } = require('./helpers/process.js');

const root = path.join(__dirname, '..');
const examples = path.join(root, 'examples');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const START = 15000;

function tmpDir(tag) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `smtp-rs-example-${tag}-`));
}

/**
 * Starts `cmd args` with extra environment variables and waits for the line that says
 * it is listening. Resolves with { child, output(), stop(), port }.
 */
async function start(cmd, args, env, { cwd = root, ready = /listening on \S*?:(\d+)|listening on (\/\S+),/ } = {}) {
  // detached: stop() reaches the whole process group (npm and the server it starts)
  const handle = await startProcess(cmd, args, { cwd, env, ready, ms: START, detached: true, what: path.basename(args[args.length - 1] || cmd) });
  handle.port = handle.match[1] ? Number(handle.match[1]) : undefined;
  const output = handle.output;
  handle.output = () => output() + handle.errors();
  return handle;
}

function example(name, env, args = []) {
  return start(process.execPath, [path.join(examples, name), ...args], env);
}

function transport(port, extra = {}) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    logger: false,
    connectionTimeout: WAIT,
    greetingTimeout: WAIT,
    socketTimeout: 2 * WAIT,
    ...extra
  });
}

function files(dir) {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** A raw client connected from a given local address, with the greeting read. */
async function greetingFrom(port, localAddress, prefix = null) {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  const client = new Client(socket);
  await deadline(new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject)), WAIT, 'a connection');
  if (prefix) {
    socket.write(prefix);
  }
  const greeting = await client.read('the greeting');
  return { client, greeting };
}

/** A PROXY protocol version 2 header for a TCP/IPv4 connection. */
function proxyV2(src, srcPort, dst, dstPort) {
  const header = Buffer.alloc(28);
  Buffer.from('0d0a0d0a000d0a515549540a', 'hex').copy(header, 0);
  header[12] = 0x21; // version 2, PROXY command
  header[13] = 0x11; // TCP over IPv4
  header.writeUInt16BE(12, 14);
  Buffer.from(src.split('.').map(Number)).copy(header, 16);
  Buffer.from(dst.split('.').map(Number)).copy(header, 20);
  header.writeUInt16BE(srcPort, 24);
  header.writeUInt16BE(dstPort, 26);
  return header;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes, repeats numbered. */
function anchors(markdown) {
  const seen = new Map();
  const out = new Set();
  const text = markdown.replace(/```[\s\S]*?```/g, '');
  for (const m of text.matchAll(/^#{1,6} +(.+?) *$/gm)) {
    const base = m[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) || 0;
    seen.set(base, n + 1);
    out.add(n ? `${base}-${n}` : base);
  }
  return out;
}

test('README and docs: relative links point to files and headings that exist', () => {
  let checked = 0;
  for (const doc of ['README.md', 'docs/api.md', 'docs/migration.md']) {
    const file = path.join(root, doc);
    const text = fs.readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const link = m[1];
      if (/^[a-z]+:/i.test(link)) {
        continue;
      }
      const [target, anchor] = link.split('#');
      const resolved = target ? path.resolve(path.dirname(file), target) : file;
      assert.ok(fs.existsSync(resolved), `${doc}: ${link} points to a missing file`);
      if (anchor) {
        assert.ok(anchors(fs.readFileSync(resolved, 'utf8')).has(anchor), `${doc}: ${link} points to a missing heading`);
      }
      checked++;
    }
  }
  assert.ok(checked > 20, `links checked: ${checked}`);
});

// ---------------------------------------------------------------------------

test('README: `npm start` runs the basic server, which saves a sent message under ./mail/', { timeout: 40000 }, async () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  assert.match(readme, /npm install && npm start/, 'the README shows the set-up command');
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  assert.equal(pkg.scripts.start, 'node examples/basic-server.js', 'npm start runs examples/basic-server.js');

  const mailDir = path.join(root, 'mail');
  const existed = fs.existsSync(mailDir);
  // port 2525 may be taken on this machine: PORT picks a free one, everything else as written
  const server = await start('npm', ['start'], { PORT: '0', HOST: '127.0.0.1', MAIL_DIR: '', npm_config_loglevel: 'silent' });
  let saved = null;
  try {
    const marker = `npm-start-${process.pid}-${Date.now()}`;
    const info = await transport(server.port, { ignoreTLS: true }).sendMail({ from: 'me@example.com', to: 'you@example.com', subject: marker, text: 'hello from the test' });
    const m = /^250 OK: saved as (\S+\.eml)$/.exec(info.response);
    assert.ok(m, `reply: ${info.response}`);
    saved = path.join(mailDir, m[1]);
    assert.ok(fs.existsSync(saved), `./mail/${m[1]} exists`);
    assert.match(fs.readFileSync(saved, 'utf8'), new RegExp(`^Subject: ${marker}\r$`, 'm'));
    await until(() => new RegExp(` <me@example\\.com> -> you@example\\.com \\d+ bytes mail/${m[1].replace(/\./g, '\\.')}`).test(server.output()), 'the log line');
  } finally {
    await server.stop();
    if (saved) {
      fs.rmSync(saved, { force: true });
    }
    if (!existed) {
      try {
        fs.rmdirSync(mailDir); // only when empty: never anything the test did not create
      } catch {
        // something else wrote there meanwhile
      }
    }
  }
});

test('README: the quick-start example runs as written (but on a free port), and the import form loads', { timeout: 30000 }, async () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const m = /<!-- quick-start -->\s*```js\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'the README has a quick-start block');
  const code = m[1];
  assert.match(code, /require\('smtp-server-rs'\)/);
  assert.ok(code.trim().split('\n').length <= 12, 'the quick start is short');
  const listen = /\.listen\((\d+)/.exec(code);
  assert.ok(listen, 'it listens on a port');
  // `smtp-server-rs` is resolved to this checkout through a node_modules link
  const dir = tmpDir('quick');
  try {
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(root, path.join(dir, 'node_modules', 'smtp-server-rs'), 'dir');
    fs.writeFileSync(path.join(dir, 'quick-start.js'), code.replace(`.listen(${listen[1]}`, `.listen(Number(process.env.PORT), '127.0.0.1'`) + "\nconsole.log('listening on 127.0.0.1:' + process.env.PORT);\n");
    // the ES module form the README gives
    const esm = /`(import \{ SMTPServer \} from 'smtp-server-rs';)`/.exec(readme);
    assert.ok(esm, 'the README shows the import form');
    fs.writeFileSync(path.join(dir, 'esm.mjs'), `${esm[1]}\nconsole.log(typeof SMTPServer, typeof new SMTPServer({ logger: false }).listen);\n`);
    const imported = await run(process.execPath, [path.join(dir, 'esm.mjs')]);
    assert.equal(imported.stdout.trim(), 'function function', imported.stderr);

    const port = await freePort();
    const server = await start(process.execPath, [path.join(dir, 'quick-start.js')], { PORT: String(port) }, { cwd: dir });
    try {
      const info = await transport(port, { ignoreTLS: true }).sendMail({ from: 'me@example.com', to: 'you@example.com', subject: 'quick', text: 'quick start body' });
      assert.match(info.response, /^250 /);
      await until(() => /quick start body/.test(server.output()), 'the message to be printed');
    } finally {
      await server.stop();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('basic-server.js: PORT and MAIL_DIR; each message becomes one .eml file', { timeout: 30000 }, async () => {
  const dir = tmpDir('basic');
  const server = await example('basic-server.js', { PORT: '0', HOST: '127.0.0.1', MAIL_DIR: dir });
  try {
    const mailer = transport(server.port, { ignoreTLS: true });
    const body = 'line one\r\n.line starting with a dot\r\n';
    const info = await mailer.sendMail({ envelope: { from: 'a@example.com', to: ['b@example.com', 'c@example.org'] }, raw: `Subject: basic\r\n\r\n${body}` });
    assert.deepEqual(info.accepted, ['b@example.com', 'c@example.org']);
    const saved = files(dir);
    assert.equal(saved.length, 1);
    assert.equal(fs.readFileSync(path.join(dir, saved[0]), 'utf8'), `Subject: basic\r\n\r\n${body}`, 'stored byte for byte, dot-unstuffed');
    await until(() => /<a@example\.com> -> b@example\.com, c@example\.org/.test(server.output()), 'the log line');
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('lmtp-maildir.js: LMTP on a Unix socket, Maildir delivery, one reply per recipient', { timeout: 30000 }, async () => {
  const dir = tmpDir('lmtp');
  const socketPath = path.join(dir, 'lmtp.sock');
  const maildirs = path.join(dir, 'maildirs');
  // bob's mailbox is nearly full: 1990 of 2000 bytes
  fs.mkdirSync(path.join(maildirs, 'example.com', 'bob', 'cur'), { recursive: true });
  fs.writeFileSync(path.join(maildirs, 'example.com', 'bob', 'cur', '1.old'), Buffer.alloc(1990, 'x'));
  const server = await example('lmtp-maildir.js', { LMTP_SOCKET: socketPath, MAILDIR_ROOT: maildirs, QUOTA_BYTES: '2000' });
  let client = null;
  try {
    assert.ok(fs.statSync(socketPath).isSocket(), 'listens on the socket');
    client = await Client.open(socketPath, 'LHLO mta.test');
    assert.match(client.ehlo, /^250-/);
    assert.equal(await client.cmd('MAIL FROM:<sender@example.org>'), '250 Accepted');
    assert.equal(await client.cmd('RCPT TO:<Alice@Example.com>'), '250 Accepted');
    assert.equal(await client.cmd('RCPT TO:<bob@example.com>'), '250 Accepted');
    assert.match(await client.cmd('RCPT TO:<-x@example.com>'), /^550 <-x@example\.com>: no such mailbox here$/);
    assert.equal(await client.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>');
    client.write('Subject: lmtp\r\n\r\nhello\r\n..dot\r\n.\r\n');
    const [alice, bob] = await client.readN(2, 'one reply per accepted recipient');
    assert.equal(alice, '250 <Alice@Example.com> delivered');
    assert.equal(bob, '552 <bob@example.com>: Mailbox is over its quota');
    assert.equal(await client.cmd('QUIT'), '221 Bye');

    const box = path.join(maildirs, 'example.com', 'alice');
    const delivered = files(path.join(box, 'new'));
    assert.equal(delivered.length, 1, 'one message in alice/new');
    assert.deepEqual(files(path.join(box, 'tmp')), [], 'nothing left in tmp/');
    const message = fs.readFileSync(path.join(box, 'new', delivered[0]), 'utf8');
    assert.equal(message, 'Return-Path: <sender@example.org>\r\nDelivered-To: Alice@Example.com\r\nSubject: lmtp\r\n\r\nhello\r\n.dot\r\n');
    assert.match(delivered[0], new RegExp(`^\\d+\\.M\\d+P\\d+Q\\d+\\.[^/]+,S=${Buffer.byteLength(message)}$`), 'a Maildir unique name with the size');
    assert.deepEqual(files(path.join(maildirs, 'example.com', 'bob', 'new')), [], 'bob got nothing');

    if (spawnSync('swaks', ['--version']).status === 0) {
      // the command from the example's header
      const res = await run('swaks', ['--socket', socketPath, '--protocol', 'LMTP', '--from', 'me@example.com', '--to', 'alice@example.com,bob@example.com']);
      assert.match(res.stdout, /^<\S* +250 <alice@example\.com> delivered$/m);
      assert.match(res.stdout, /^<\S* +552 <bob@example\.com>: Mailbox is over its quota$/m);
      assert.equal(files(path.join(box, 'new')).length, 2);
    }
  } finally {
    if (client) {
      client.destroy();
    }
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(fs.existsSync(socketPath), false, 'the socket is removed on SIGTERM');
});

test('submission.js: STARTTLS, then AUTH PLAIN/LOGIN against scrypt hashes, senders bound to users', { timeout: 30000 }, async () => {
  const dir = tmpDir('submission');
  const server = await example('submission.js', { PORT: '0', HOST: '127.0.0.1', OUTBOX_DIR: dir });
  let client = null;
  try {
    const tlsOpts = { requireTLS: true, tls: { rejectUnauthorized: false } };
    for (const method of ['PLAIN', 'LOGIN']) {
      const info = await transport(server.port, { ...tlsOpts, authMethod: method, auth: { user: 'alice', pass: 'alice-password' } }).sendMail({
        from: 'alice@example.com',
        to: 'someone@example.org',
        subject: `submitted with ${method}`,
        text: 'hi'
      });
      assert.match(info.response, /^250 Message queued as \S+$/, method);
    }
    const saved = files(dir);
    assert.equal(saved.length, 2);
    const first = fs.readFileSync(path.join(dir, saved[0]), 'utf8');
    assert.match(first, /^X-Submitted-By: alice from \[127\.0\.0\.1\] with ESMTPSA\r\n/);

    // a wrong password, an unknown user
    for (const auth of [{ user: 'alice', pass: 'wrong' }, { user: 'mallory', pass: 'alice-password' }]) {
      await assert.rejects(transport(server.port, { ...tlsOpts, auth }).sendMail({ from: 'alice@example.com', to: 'x@example.org', text: 'x' }), err => err.responseCode === 535);
    }
    // bob may not send as alice
    await assert.rejects(
      transport(server.port, { ...tlsOpts, auth: { user: 'bob', pass: 'bob-password' } }).sendMail({ from: 'alice@example.com', to: 'x@example.org', text: 'x' }),
      err => err.responseCode === 553 && /not owned by user bob/.test(err.response)
    );

    // without TLS: AUTH is refused; without AUTH: MAIL is refused
    client = await Client.open(server.port, 'EHLO client.test');
    assert.match(client.ehlo, /\n250[- ]STARTTLS/);
    assert.equal(await client.cmd('AUTH PLAIN AGFsaWNlAGFsaWNlLXBhc3N3b3Jk'), '538 Error: Must issue a STARTTLS command first');
    assert.equal(await client.cmd('MAIL FROM:<alice@example.com>'), '530 Error: authentication Required');
    assert.equal(files(dir).length, 2, 'nothing else was stored');
  } finally {
    if (client) {
      client.destroy();
    }
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('submission.js --key/--cert: STARTTLS presents the given certificate', { timeout: 30000, skip: spawnSync('openssl', ['version']).status !== 0 && 'openssl is not installed' }, async () => {
  const dir = tmpDir('submission-cert');
  const key = path.join(dir, 'server.key');
  const cert = path.join(dir, 'server.crt');
  const made = await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=mail.test', '-addext', 'subjectAltName=DNS:mail.test']);
  assert.equal(made.code, 0, made.stderr);
  const server = await example('submission.js', { PORT: '0', HOST: '127.0.0.1', OUTBOX_DIR: path.join(dir, 'outbox') }, ['--key', key, '--cert', cert]);
  try {
    assert.doesNotMatch(server.output(), /built-in default TLS certificate/, 'no warning with a certificate of its own');
    // verified against the generated certificate: fails if any other one is presented
    const info = await transport(server.port, { requireTLS: true, tls: { ca: [fs.readFileSync(cert)], servername: 'mail.test' }, auth: { user: 'bob', pass: 'bob-password' } }).sendMail({
      from: 'bob@example.com',
      to: 'x@example.org',
      text: 'verified'
    });
    assert.match(info.response, /^250 /);
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('inbound-mx.js: local domains only, size limit, blocklist, no AUTH', { timeout: 30000 }, async () => {
  const dir = tmpDir('mx');
  const server = await example('inbound-mx.js', { PORT: '0', HOST: '127.0.0.1', INBOUND_DIR: dir, DOMAINS: 'example.com, Example.NET', BLOCKLIST: '127.0.0.2', MAX_SIZE: '4096', SERVER_NAME: 'mx.test', REVERSE_LOOKUP: '0' });
  const clients = [];
  try {
    const info = await transport(server.port, { ignoreTLS: true }).sendMail({ from: 'someone@example.org', to: ['postmaster@example.net', 'abuse@elsewhere.test'], subject: 'inbound', text: 'hello' });
    assert.deepEqual(info.accepted, ['postmaster@example.net']);
    assert.deepEqual(info.rejected, ['abuse@elsewhere.test']);
    assert.match(info.rejectedErrors[0].response, /^550 <abuse@elsewhere\.test>: relay access denied$/);
    const saved = files(dir);
    assert.equal(saved.length, 1);
    const text = fs.readFileSync(path.join(dir, saved[0]), 'utf8');
    assert.match(text, /^Received: from \S+ \(\[127\.0\.0\.1\]\)\r\n\tby mx\.test with ESMTP id \S+\r\n\tfor <postmaster@example\.net>;\r\n\t\w{3}, \d\d \w{3} \d{4} [\d:]{8} \+0000\r\n/);
    assert.match(text, /\r\nSubject: inbound\r\n/);

    const client = await Client.open(server.port, 'EHLO client.test');
    clients.push(client);
    assert.match(client.greeting, /^220 mx\.test ESMTP no relaying$/);
    assert.match(client.ehlo, /\n250[- ]SIZE 4096(\n|$)/);
    assert.doesNotMatch(client.ehlo, /AUTH|STARTTLS/, 'no AUTH, and no STARTTLS without a certificate');
    assert.equal(await client.cmd('AUTH PLAIN AGEAYg=='), '500 Error: command not recognized', 'AUTH is disabled');
    // a message over MAX_SIZE is read to its end, answered with 552 and not kept
    const big = 'Subject: big\r\n\r\n' + 'x'.repeat(70).concat('\r\n').repeat(80);
    assert.equal(await transaction(client, big, 'someone@example.org', ['postmaster@example.com']), '552 Message exceeds the maximum size of 4096 bytes');
    await until(() => files(dir).length === 1, 'the oversized file to be removed');
    // MAIL FROM with a SIZE over the limit is refused at once
    assert.match(await client.cmd('MAIL FROM:<someone@example.org> SIZE=5000'), /^552 /);

    // a blocklisted client (connecting from 127.0.0.2) gets 554 instead of the greeting
    const blocked = await greetingFrom(server.port, '127.0.0.2');
    clients.push(blocked.client);
    assert.equal(blocked.greeting, '554 127.0.0.2 is blocked');
  } finally {
    for (const c of clients) {
      c.destroy();
    }
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('inbound-mx.js --proxy: the client address comes from PROXY v1 and v2 headers', { timeout: 30000 }, async () => {
  const dir = tmpDir('mx-proxy');
  const server = await example('inbound-mx.js', { PORT: '0', HOST: '127.0.0.1', INBOUND_DIR: dir, BLOCKLIST: '203.0.113.9', REVERSE_LOOKUP: '0' }, ['--proxy']);
  const clients = [];
  try {
    assert.match(server.output(), /expecting PROXY headers/);
    const blocked = await greetingFrom(server.port, undefined, `PROXY TCP4 203.0.113.9 127.0.0.1 40000 25\r\n`);
    clients.push(blocked.client);
    assert.equal(blocked.greeting, '554 203.0.113.9 is blocked');

    const { client, greeting } = await greetingFrom(server.port, undefined, proxyV2('198.51.100.4', 40001, '192.0.2.25', 25));
    clients.push(client);
    assert.match(greeting, /^220 /);
    assert.match(await client.cmd('EHLO relay.example.org'), /^250-/);
    assert.match(await transaction(client, 'Subject: proxied\r\n\r\nhi\r\n', 'a@example.org', ['postmaster@example.com']), /^250 Queued as /);
    const saved = files(dir);
    assert.equal(saved.length, 1);
    assert.match(fs.readFileSync(path.join(dir, saved[0]), 'utf8'), /^Received: from relay\.example\.org \(\[198\.51\.100\.4\]\)/);
  } finally {
    for (const c of clients) {
      c.destroy();
    }
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('typescript/: tsc --strict --noEmit passes; compiled, the server runs', { timeout: 60000 }, async () => {
  const project = path.join(examples, 'typescript');
  const check = await run(process.execPath, [tsc, '-p', project, '--strict', '--noEmit'], '', 40000);
  assert.equal(check.code, 0, `tsc --strict --noEmit:\n${check.stdout}${check.stderr}`);

  // build into a temporary directory whose node_modules links `smtp-server-rs` to this checkout
  const dir = tmpDir('ts');
  let server = null;
  try {
    const built = await run(process.execPath, [tsc, '-p', project, '--outDir', path.join(dir, 'dist')], '', 40000);
    assert.equal(built.code, 0, `tsc:\n${built.stdout}${built.stderr}`);
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(root, path.join(dir, 'node_modules', 'smtp-server-rs'), 'dir');
    server = await start(process.execPath, [path.join(dir, 'dist', 'server.js')], { PORT: '0', HOST: '127.0.0.1', MAIL_DIR: path.join(dir, 'mail'), DOMAIN: 'example.com' }, { cwd: dir });
    const mailer = transport(server.port, { ignoreTLS: true });
    const info = await mailer.sendMail({ from: 'a@example.org', to: 'postmaster@example.com', text: 'typed' });
    assert.match(info.response, /^250 Stored as \S+\.eml$/);
    await assert.rejects(mailer.sendMail({ from: 'a@example.org', to: 'x@other.test', text: 'x' }), err => err.responseCode === 550);
    assert.equal(files(path.join(dir, 'mail')).length, 1);
    await until(() => /#1 on \S+: <a@example\.org> -> postmaster@example\.com/.test(server.output()), 'the log line');
  } finally {
    if (server) {
      await server.stop();
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('prometheus-stats.js: /metrics counts connections, messages and bytes', { timeout: 30000 }, async () => {
  const server = await example('prometheus-stats.js', { PORT: '0', METRICS_PORT: '0', HOST: '127.0.0.1' });
  try {
    const metricsPort = Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(server.output())[1]);
    const mailer = transport(server.port, { ignoreTLS: true });
    for (let i = 0; i < 3; i++) {
      await mailer.sendMail({ envelope: { from: 'a@example.com', to: ['b@example.com'] }, raw: `Subject: ${i}\r\n\r\nhello\r\n` });
    }
    mailer.close();
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const value = name => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)[1]);
    assert.match(text, /^# TYPE smtp_messages_accepted_total counter$/m);
    assert.equal(value('smtp_messages_accepted_total'), 3);
    assert.equal(value('smtp_messages_rejected_total'), 0);
    assert.ok(value('smtp_connections_total') >= 1);
    assert.ok(value('smtp_received_bytes_total') > 3 * 'hello'.length);
    assert.ok(value('smtp_sent_bytes_total') > 0);
  } finally {
    await server.stop();
  }
});
