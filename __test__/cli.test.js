'use strict';

// The command line mail catcher (bin/smtp-server-rs.js, lib/cli.js): the real binary is
// spawned on an ephemeral port (or a Unix socket), mail goes in with nodemailer and with
// raw sockets, and the stored files are compared byte for byte with what was sent.

const test = require('node:test');
const assert = require('node:assert/strict');
const tls = require('node:tls');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const nodemailer = require('nodemailer');
const { deadline, Client, tmpSocketPath, WAIT } = require('./helpers/smtp-client.js');
const cli = require('../lib/cli.js');

const BIN = path.join(__dirname, '..', 'bin', 'smtp-server-rs.js');
const VERSION = require('../package.json').version;

function tmpDir() {
    return fs.mkdtempSync(path.join(os.tmpdir(), 'smtp-rs-cli-'));
}

function removeDir(dir) {
    fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Spawns the CLI with the current runtime (node or bun). Collects stdout lines;
 * `waitLine(re)` resolves with the first line matching re; `exited` with { code, signal }.
 */
function spawnCli(args, options = {}) {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd || os.tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
    const proc = { child, lines: [], stdout: '', stderr: '', waiters: [] };
    const killer = setTimeout(() => child.kill('SIGKILL'), options.killAfter || 20000);
    const wake = () => {
        for (const fn of proc.waiters.splice(0)) {
            fn();
        }
    };
    child.stdout.on('data', chunk => {
        proc.stdout += chunk.toString('utf8');
        const parts = proc.stdout.split('\n');
        proc.lines = parts.slice(0, -1);
        wake();
    });
    child.stderr.on('data', chunk => {
        proc.stderr += chunk.toString('utf8');
    });
    proc.exited = new Promise(resolve => {
        child.on('close', (code, signal) => {
            clearTimeout(killer);
            proc.done = { code, signal };
            wake();
            resolve(proc.done);
        });
    });
    proc.waitLine = (re, what = String(re), ms = WAIT) =>
        deadline(
            new Promise((resolve, reject) => {
                const check = () => {
                    const line = proc.lines.find(l => re.test(l));
                    if (line !== undefined) {
                        return resolve(line);
                    }
                    if (proc.done) {
                        return reject(new Error(`the CLI exited (${proc.done.code}) before printing ${what}; stdout: ${proc.stdout} stderr: ${proc.stderr}`));
                    }
                    proc.waiters.push(check);
                };
                check();
            }),
            ms,
            `the CLI to print ${what} (stdout so far: ${JSON.stringify(proc.stdout)}, stderr: ${JSON.stringify(proc.stderr)})`
        );
    proc.exit = (ms = WAIT) => deadline(proc.exited, ms, `the CLI to exit (stdout: ${JSON.stringify(proc.stdout)})`);
    proc.kill = () => {
        if (!proc.done) {
            child.kill('SIGKILL');
        }
    };
    return proc;
}

/** Spawns the CLI and resolves once it listens, with the port (or socket path) it printed. */
async function startCli(args, options) {
    const proc = spawnCli(args, options);
    const line = await proc.waitLine(/^Listening on /, 'the listening line');
    const m = /^Listening on (?:(\S+):(\d+)|(\/\S+)) \(/.exec(line);
    assert.ok(m, `listening line: ${line}`);
    proc.port = m[2] ? Number(m[2]) : null;
    proc.address = m[3] || null;
    return proc;
}

/** Runs the CLI to completion (for --help and errors). */
async function runCli(args, ms = WAIT) {
    const proc = spawnCli(args);
    const { code } = await proc.exit(ms);
    return { code, stdout: proc.stdout, stderr: proc.stderr };
}

function transport(port, extra = {}) {
    return nodemailer.createTransport({ host: '127.0.0.1', port, tls: { rejectUnauthorized: false }, connectionTimeout: WAIT, greetingTimeout: WAIT, socketTimeout: WAIT, ...extra });
}

/** The .eml files (final names only) in dir, sorted. */
function emlFiles(dir) {
    return fs
        .readdirSync(dir)
        .filter(name => name.endsWith('.eml'))
        .sort();
}

/** A raw message with CRLF line ends, 8-bit bytes and lines that start with a dot. */
function rawMessage(subject, extraBody = '') {
    return Buffer.concat([
        Buffer.from(`From: a@example.com\r\nTo: b@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@example.com>\r\n\r\n`, 'latin1'),
        Buffer.from('line one\r\n.starts with a dot\r\n..two dots\r\n', 'latin1'),
        Buffer.from([0xe9, 0xfc, 0x20, 0x38, 0x62, 0x69, 0x74, 0x0d, 0x0a]),
        Buffer.from(`${extraBody}last line\r\n`, 'latin1')
    ]);
}

/** Dot-stuffs a CRLF message for DATA. */
function dotStuff(buf) {
    const text = buf.toString('latin1').replace(/^\./, '..').replace(/\r\n\./g, '\r\n..');
    return Buffer.from(text, 'latin1');
}

// ---------------------------------------------------------------------------
// command line

test('--help, -h and `help` explain every option and exit 0', async () => {
    const results = await Promise.all([runCli(['--help']), runCli(['-h']), runCli(['help'])]);
    for (const res of results) {
        assert.equal(res.code, 0);
        assert.equal(res.stderr, '');
        assert.equal(res.stdout, results[0].stdout);
    }
    const help = results[0].stdout;
    assert.match(help, /^Usage: smtp-server-rs \[serve\] \[options\]/);
    for (const option of ['--port', '--host', '--socket', '--out', '--format', '--lmtp', '--tls', '--starttls', '--no-starttls', '--key', '--cert', '--size', '--auth', '--name', '--envelope-headers', '--max-messages', '--json', '--quiet', '--log', '--help', '--version']) {
        assert.match(help, new RegExp(`^\\s+(-\\w, )?${option}\\b`, 'm'), `help lists ${option}`);
    }
    assert.match(help, /maildir/);
    assert.match(help, /Exit status/);
    assert.equal(help, cli.helpText());
});

test('--version and -v print the package version; the bin file runs through its shebang', async () => {
    const mode = fs.statSync(BIN).mode;
    assert.ok(mode & 0o100, 'bin/smtp-server-rs.js is executable');
    assert.match(fs.readFileSync(BIN, 'utf8'), /^#!\/usr\/bin\/env node\n'use strict';/);
    const viaShebang = await new Promise((resolve, reject) => {
        const child = spawn(BIN, ['--version'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', d => (out += d));
        child.on('error', reject);
        child.on('close', code => resolve({ code, out }));
    });
    assert.deepEqual(viaShebang, { code: 0, out: `smtp-server-rs ${VERSION}\n` });
    const short = await runCli(['-v']);
    assert.deepEqual([short.code, short.stdout], [0, `smtp-server-rs ${VERSION}\n`]);
});

test('unknown options and bad values exit 2 with a message on stderr', async () => {
    const cases = [
        [['--bogus'], /unknown option '--bogus'/],
        [['--prot', '25'], /unknown option '--prot' \(did you mean --port\?\)/],
        [['-x'], /unknown option '-x'/],
        [['--port', 'abc'], /--port needs a whole number from 0 to 65535, not 'abc'/],
        [['--port', '70000'], /--port needs a whole number/],
        [['--port'], /--port needs a value/],
        [['--format', 'mbox'], /--format is 'eml' or 'maildir', not 'mbox'/],
        [['--size', 'huge'], /--size needs a number of bytes/],
        [['--max-messages', '0'], /--max-messages needs a whole number from 1/],
        [['--key', 'k.pem'], /--key and --cert go together/],
        [['--lmtp=yes'], /--lmtp takes no value/],
        [['--socket', '/tmp/x.sock', '--port', '25'], /--socket cannot be combined/],
        [['stray'], /unexpected argument 'stray'/]
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args)));
    results.forEach((res, i) => {
        const [args, re] = cases[i];
        assert.equal(res.code, 2, `exit code for ${args.join(' ')}`);
        assert.equal(res.stdout, '', `nothing on stdout for ${args.join(' ')}`);
        assert.match(res.stderr, re, `stderr for ${args.join(' ')}`);
        assert.match(res.stderr, /Run 'smtp-server-rs --help'/);
    });
});

test('parseArgs: defaults, value forms and the serve subcommand', () => {
    const d = cli.parseArgs([]);
    assert.equal(d.port, 2525);
    assert.equal(d.host, '127.0.0.1');
    assert.equal(d.out, 'mail');
    assert.equal(d.format, 'eml');
    assert.equal(d.starttls, true);
    assert.equal(d.lmtp, false);
    assert.equal(d.size, 0);
    assert.equal(cli.parseArgs(['serve', '-p2600']).port, 2600);
    assert.equal(cli.parseArgs(['--port=0']).port, 0);
    assert.equal(cli.parseArgs(['-o', '/x', '-f', 'MAILDIR']).format, 'maildir');
    assert.equal(cli.parseArgs(['--size', '10M']).size, 10 * 1024 * 1024);
    assert.equal(cli.parseArgs(['--size=512k']).size, 512 * 1024);
    assert.equal(cli.parseArgs(['--no-starttls']).starttls, false);
    assert.equal(cli.parseArgs(['-n', '3']).maxMessages, 3);
    assert.throws(() => cli.parseArgs(['--json', '--quiet']), cli.UsageError);
    assert.throws(() => cli.parseArgs(['--', '--port']), /unexpected argument '--port'/);
});

test('subject lines: unfolding and encoded words', () => {
    const head = Buffer.from('To: x@y\r\nSUBJECT: =?UTF-8?B?SMOpbGxv?=\r\n =?utf-8?q?_w=C3=B6rld?= and\r\n\tmore\r\nX: y\r\n\r\nSubject: body\r\n', 'latin1');
    assert.equal(cli.subjectOf(head), 'Héllo wörld and\tmore');
    assert.equal(cli.subjectOf(Buffer.from('From: a\n\nSubject: in the body\n')), null);
    assert.equal(cli.subjectOf(Buffer.from('Subject:\r\n\r\n')), '');
    assert.equal(cli.decodeWords('=?x-unknown-charset?B?AAAA?='), '=?x-unknown-charset?B?AAAA?=');
    assert.equal(cli.decodeWords('=?iso-8859-1?Q?caf=E9?='), 'café');
});

// ---------------------------------------------------------------------------
// storing mail

test('eml: nodemailer messages are stored byte for byte, one line each, exit after --max-messages', async () => {
    const dir = tmpDir();
    const proc = await startCli(['--port', '0', '--out', path.join(dir, 'mail'), '--max-messages', '2'], { cwd: dir });
    try {
        assert.equal(await proc.waitLine(/^Writing /), `Writing .eml files to ${path.join(fs.realpathSync(dir), 'mail')}; exiting after 2 messages`);
        const t = transport(proc.port);
        const raws = [rawMessage('First message'), rawMessage('Second one', 'x'.repeat(300000) + '\r\n')];
        const infos = [];
        for (const raw of raws) {
            infos.push(await t.sendMail({ envelope: { from: 'sender@example.com', to: ['one@example.com', 'two@example.net'] }, raw }));
        }
        t.close();
        assert.deepEqual(await proc.exit(), { code: 0, signal: null });

        const files = emlFiles(path.join(dir, 'mail'));
        assert.equal(files.length, 2);
        assert.deepEqual(fs.readdirSync(path.join(dir, 'mail')).sort(), files, 'no temporary files are left');
        files.forEach((name, i) => {
            assert.match(name, /^\d{8}T\d{6}\.\d{3}Z-000[12]\.eml$/);
            assert.ok(fs.readFileSync(path.join(dir, 'mail', name)).equals(raws[i]), `${name} holds the bytes that were sent`);
            assert.equal(infos[i].response, `250 OK: message stored as ${name}`);
        });
        const messageLines = proc.lines.filter(l => /  #\d+  /.test(l));
        assert.equal(messageLines.length, 2);
        const re = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)  #(\d+)  from=<sender@example\.com> to=<one@example\.com>,<two@example\.net>  (\d+) bytes  subject="([^"]*)"  -> (\S+)$/;
        messageLines.forEach((line, i) => {
            const m = re.exec(line);
            assert.ok(m, `message line: ${line}`);
            assert.equal(m[2], String(i + 1));
            assert.equal(Number(m[3]), raws[i].length);
            assert.equal(m[4], ['First message', 'Second one'][i]);
            assert.equal(m[5], path.join('mail', files[i]), 'the path is shown relative to the working directory');
        });
        assert.equal(proc.lines[proc.lines.length - 1], 'Stopping: stored 2 messages (--max-messages)');
        assert.equal(proc.stderr, '');
    } finally {
        proc.kill();
        removeDir(dir);
    }
});

test('eml with --json: raw SMTP with a null sender, dot-stuffing and a folded encoded subject', async () => {
    const dir = tmpDir();
    const out = path.join(dir, 'out');
    const proc = spawnCli(['--port', '0', '--out', out, '--json', '--max-messages', '1', '--name', 'catcher.test']);
    try {
        const listening = JSON.parse(await proc.waitLine(/"event":"listening"/));
        assert.equal(listening.protocol, 'SMTP');
        assert.equal(listening.tls, 'starttls');
        assert.equal(listening.host, '127.0.0.1');
        assert.equal(listening.format, 'eml');
        assert.equal(listening.dir, fs.realpathSync(out));
        assert.ok(listening.port > 0);

        const c = await Client.open(listening.port, null);
        assert.match(c.greeting, /^220 catcher\.test /);
        const ehlo = await c.cmd('EHLO client.test');
        assert.match(ehlo, /STARTTLS/);
        assert.doesNotMatch(ehlo, /AUTH/, 'AUTH is not offered without --auth');
        const raw = Buffer.concat([
            Buffer.from('Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n =?UTF-8?B?IGF1cyBCZXJsaW4=?=\r\nFrom: x@y\r\n\r\n', 'latin1'),
            Buffer.from('.\r\n..\r\n.x\r\nend\r\n', 'latin1')
        ]);
        assert.equal(await c.cmd('MAIL FROM:<>'), '250 Accepted');
        assert.equal(await c.cmd('RCPT TO:<rcpt@example.org>'), '250 Accepted');
        assert.match(await c.cmd('DATA'), /^354 /);
        c.write(dotStuff(raw));
        c.write('.\r\n');
        const reply = await c.read('the reply to the message');
        const m = /^250 OK: message stored as (\S+\.eml)$/.exec(reply);
        assert.ok(m, reply);
        await c.cmd('QUIT').catch(() => {});
        c.destroy();
        assert.equal((await proc.exit()).code, 0);

        assert.ok(fs.readFileSync(path.join(out, m[1])).equals(raw));
        const events = proc.lines.map(line => JSON.parse(line));
        assert.deepEqual(events.map(e => e.event), ['listening', 'message', 'stopping']);
        const msg = events[1];
        assert.equal(msg.seq, 1);
        assert.equal(msg.from, '');
        assert.deepEqual(msg.to, ['rcpt@example.org']);
        assert.equal(msg.size, raw.length);
        assert.equal(msg.subject, 'Grüße aus Berlin');
        assert.equal(msg.file, path.join(fs.realpathSync(out), m[1]));
        assert.equal(msg.remoteAddress, '127.0.0.1');
        assert.equal(msg.clientHostname, 'client.test');
        assert.equal(msg.secure, false);
        assert.equal(msg.user, null);
        assert.ok(!Number.isNaN(Date.parse(msg.time)));
    } finally {
        proc.kill();
        removeDir(dir);
    }
});

test('maildir: written to tmp/, renamed into new/ with a unique Maildir name', async () => {
    const dir = tmpDir();
    const elsewhere = tmpDir();
    const proc = await startCli(['-p', '0', '-o', dir, '-f', 'maildir', '-n', '3', '--name', 'mx/1:a'], { cwd: elsewhere });
    try {
        assert.equal(await proc.waitLine(/^Writing /), `Writing a Maildir to ${fs.realpathSync(dir)}; exiting after 3 messages`);
        const t = transport(proc.port, { ignoreTLS: true, pool: true, maxConnections: 3 });
        const raws = [rawMessage('m1'), rawMessage('m2'), rawMessage('m3')];
        await Promise.all(raws.map((raw, i) => t.sendMail({ envelope: { from: 'a@example.com', to: `r${i}@example.com` }, raw })));
        t.close();
        assert.equal((await proc.exit()).code, 0);

        assert.deepEqual(fs.readdirSync(dir).sort(), ['cur', 'new', 'tmp']);
        assert.deepEqual(fs.readdirSync(path.join(dir, 'tmp')), []);
        assert.deepEqual(fs.readdirSync(path.join(dir, 'cur')), []);
        const names = fs.readdirSync(path.join(dir, 'new'));
        assert.equal(names.length, 3);
        const contents = names.map(name => fs.readFileSync(path.join(dir, 'new', name)));
        for (const name of names) {
            const m = /^(\d+)\.M(\d+)P(\d+)Q([123])\.(.+)$/.exec(name);
            assert.ok(m, `Maildir name ${name}`);
            assert.ok(Math.abs(Number(m[1]) - Date.now() / 1000) < 60, 'seconds since the epoch');
            assert.ok(Number(m[2]) < 1000000, 'microseconds');
            assert.equal(Number(m[3]), proc.child.pid);
            assert.equal(m[5], 'mx\\0571\\072a', "'/' and ':' in the host name are escaped");
        }
        for (const raw of raws) {
            assert.equal(contents.filter(c => c.equals(raw)).length, 1, 'each message is stored once, unchanged');
        }
        const lines = proc.lines.filter(l => / -> /.test(l));
        assert.equal(lines.length, 3);
        for (const line of lines) {
            assert.ok(line.includes(`  -> ${path.join(fs.realpathSync(dir), 'new')}/`), `a path outside the working directory is shown in full: ${line}`);
        }
    } finally {
        proc.kill();
        removeDir(dir);
        removeDir(elsewhere);
    }
});

test('--envelope-headers prepends Return-Path and X-Envelope-To, nothing else changes', async () => {
    const dir = tmpDir();
    const proc = await startCli(['-p', '0', '-o', dir, '-n', '1', '--envelope-headers', '--quiet']);
    try {
        const raw = rawMessage('with headers');
        const t = transport(proc.port, { ignoreTLS: true });
        await t.sendMail({ envelope: { from: 'bounce@example.com', to: ['x@example.com', 'y@example.com'] }, raw });
        t.close();
        assert.equal((await proc.exit()).code, 0);
        const [name] = emlFiles(dir);
        const expected = Buffer.concat([Buffer.from('Return-Path: <bounce@example.com>\r\nX-Envelope-To: <x@example.com>, <y@example.com>\r\n'), raw]);
        assert.ok(fs.readFileSync(path.join(dir, name)).equals(expected));
        assert.equal(proc.lines.filter(l => / -> /.test(l)).length, 0, '--quiet prints no message lines');
        assert.match(proc.lines[0], /^Listening on 127\.0\.0\.1:\d+ /, '--quiet still prints where it listens');
    } finally {
        proc.kill();
        removeDir(dir);
    }
});

// ---------------------------------------------------------------------------
// protocols and limits

test('--lmtp on a Unix socket: LHLO, one reply per recipient', async () => {
    const dir = tmpDir();
    const sock = tmpSocketPath('cli-lmtp');
    const proc = await startCli(['--lmtp', '--socket', sock, '-o', dir, '-n', '1']);
    try {
        assert.equal(proc.address, sock);
        assert.match(proc.lines[0], /\(LMTP, /);
        const c = await Client.open(sock, null);
        assert.match(await c.cmd('EHLO client.test'), /^500 /, 'EHLO is not LMTP');
        assert.match(await c.cmd('LHLO client.test'), /^250[ -]/);
        assert.equal(await c.cmd('MAIL FROM:<from@example.com>'), '250 Accepted');
        assert.equal(await c.cmd('RCPT TO:<one@example.com>'), '250 Accepted');
        assert.equal(await c.cmd('RCPT TO:<two@example.com>'), '250 Accepted');
        assert.match(await c.cmd('DATA'), /^354 /);
        const raw = rawMessage('over lmtp');
        c.write(dotStuff(raw));
        c.write('.\r\n');
        const replies = await c.readN(2, 'the LMTP replies');
        const [name] = emlFiles(dir);
        assert.deepEqual(replies, [`250 OK: message for <one@example.com> stored as ${name}`, `250 OK: message for <two@example.com> stored as ${name}`]);
        c.destroy();
        assert.equal((await proc.exit()).code, 0);
        assert.ok(fs.readFileSync(path.join(dir, name)).equals(raw));
        assert.equal(fs.existsSync(sock), false, 'the socket file is removed on exit');
        assert.match(proc.lines.find(l => / -> /.test(l)), /to=<one@example\.com>,<two@example\.com>/);
    } finally {
        proc.kill();
        removeDir(dir);
    }
});

test('--tls: implicit TLS with the built-in certificate, raw TLS and nodemailer', async () => {
    const dir = tmpDir();
    const proc = await startCli(['--tls', '-p', '0', '-o', dir, '-n', '2']);
    try {
        assert.match(proc.lines[0], /\(SMTP, implicit TLS, built-in self-signed certificate\)$/);
        const socket = tls.connect({ host: '127.0.0.1', port: proc.port, servername: 'localhost', rejectUnauthorized: false });
        await deadline(new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject)), WAIT, 'the TLS handshake');
        assert.equal(socket.getPeerCertificate().subject.CN, 'localhost');
        const c = new Client(socket);
        assert.match(await c.read('the greeting'), /^220 /);
        assert.doesNotMatch(await c.cmd('EHLO client.test'), /STARTTLS/, 'no STARTTLS inside TLS');
        const raw = rawMessage('over tls');
        assert.equal(await c.cmd('MAIL FROM:<a@example.com>'), '250 Accepted');
        assert.equal(await c.cmd('RCPT TO:<b@example.com>'), '250 Accepted');
        assert.match(await c.cmd('DATA'), /^354 /);
        c.write(dotStuff(raw));
        c.write('.\r\n');
        assert.match(await c.read('the reply to the message'), /^250 OK: message stored as /);
        c.destroy();

        const t = transport(proc.port, { secure: true });
        const raw2 = rawMessage('nodemailer over tls');
        await t.sendMail({ envelope: { from: 'a@example.com', to: 'c@example.com' }, raw: raw2 });
        t.close();
        assert.equal((await proc.exit()).code, 0);
        const contents = emlFiles(dir).map(name => fs.readFileSync(path.join(dir, name)));
        assert.equal(contents.length, 2);
        assert.ok(contents[0].equals(raw));
        assert.ok(contents[1].equals(raw2));
        assert.equal(proc.stderr, '', 'no warning about the default certificate on stderr');
    } finally {
        proc.kill();
        removeDir(dir);
    }
});

test('--size: advertised, SIZE= and oversized messages get the 552 smtp-server gives, nothing is stored', async () => {
    const dir = tmpDir();
    const proc = await startCli(['-p', '0', '-o', dir, '--size', '400', '-n', '1']);
    // what the reference package answers, configured as the docs say
    const { SMTPServer: RefServer } = require('smtp-server');
    const ref = new RefServer({
        size: 400,
        authOptional: true,
        logger: false,
        disableReverseLookup: true,
        onData(stream, session, callback) {
            stream.resume();
            stream.on('end', () => {
                if (stream.sizeExceeded) {
                    const err = new Error('Error: message exceeds fixed maximum message size 400');
                    err.responseCode = 552;
                    return callback(err);
                }
                callback();
            });
        }
    });
    await new Promise(resolve => ref.listen(0, '127.0.0.1', resolve));
    try {
        assert.match(proc.lines[0], /size limit 400 bytes/);
        const big = rawMessage('too big', 'y'.repeat(1000) + '\r\n');
        const small = rawMessage('fits');
        assert.ok(small.length <= 400, 'the small message fits');
        const replies = {};
        for (const [name, port] of [['cli', proc.port], ['ref', ref.server.address().port]]) {
            const c = await Client.open(port);
            assert.match(c.ehlo, /^250[ -]SIZE 400$/m, `${name} advertises SIZE 400`);
            const r = (replies[name] = {});
            r.sizeParam = await c.cmd('MAIL FROM:<a@example.com> SIZE=401');
            assert.equal(await c.cmd('MAIL FROM:<a@example.com> SIZE=100'), '250 Accepted');
            assert.equal(await c.cmd('RCPT TO:<b@example.com>'), '250 Accepted');
            assert.match(await c.cmd('DATA'), /^354 /);
            c.write(dotStuff(big));
            c.write('.\r\n');
            r.oversized = await c.read('the reply to the oversized message');
            if (name === 'cli') {
                // the connection stays usable: a message within the limit is stored
                assert.equal(await c.cmd('MAIL FROM:<a@example.com>'), '250 Accepted');
                assert.equal(await c.cmd('RCPT TO:<b@example.com>'), '250 Accepted');
                assert.match(await c.cmd('DATA'), /^354 /);
                c.write(dotStuff(small));
                c.write('.\r\n');
                r.small = await c.read('the reply to the small message');
            }
            c.destroy();
        }
        assert.equal(replies.cli.sizeParam, '552 Error: message exceeds fixed maximum message size 400');
        assert.equal(replies.cli.sizeParam, replies.ref.sizeParam);
        assert.equal(replies.cli.oversized, '552 Error: message exceeds fixed maximum message size 400');
        assert.equal(replies.cli.oversized, replies.ref.oversized);
        assert.match(replies.cli.small, /^250 OK: message stored as /);
        assert.equal((await proc.exit()).code, 0);

        const files = fs.readdirSync(dir);
        assert.equal(files.length, 1, `only the small message is stored: ${files}`);
        assert.ok(fs.readFileSync(path.join(dir, files[0])).equals(small));
        assert.match(proc.lines.find(l => /#1 /.test(l)), new RegExp(`  #1  from=<a@example\\.com> to=<b@example\\.com>  ${big.length} bytes  subject="too big"  REJECTED \\(over the size limit of 400 bytes\\)$`));
        assert.match(proc.lines.find(l => /#2 /.test(l)), / -> /);
    } finally {
        proc.kill();
        await new Promise(resolve => ref.close(resolve));
        removeDir(dir);
    }
});

test('--auth accepts any credentials and shows the user', async () => {
    const dir = tmpDir();
    const proc = await startCli(['-p', '0', '-o', dir, '--auth', '-n', '1', '--no-starttls']);
    try {
        const c = await Client.open(proc.port);
        assert.match(c.ehlo, /^250[ -]AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2$/m);
        assert.doesNotMatch(c.ehlo, /STARTTLS/, '--no-starttls');
        assert.equal(await c.cmd('AUTH PLAIN ' + Buffer.from('\0someone\0wrong-or-right').toString('base64')), '235 Authentication successful');
        c.destroy();

        const t = transport(proc.port, { auth: { user: 'dev@example.com', pass: 'anything' } });
        await t.sendMail({ from: 'dev@example.com', to: 'x@example.com', subject: 'authenticated', text: 'hello' });
        t.close();
        assert.equal((await proc.exit()).code, 0);
        assert.match(proc.lines.find(l => / -> /.test(l)), /  user="dev@example\.com"  subject="authenticated"  -> /);
    } finally {
        proc.kill();
        removeDir(dir);
    }
});

test('a client that disconnects in the middle of DATA leaves no file behind', async () => {
    for (const format of ['eml', 'maildir']) {
        const dir = tmpDir();
        const proc = await startCli(['-p', '0', '-o', dir, '-f', format, '-n', '1']);
        try {
            const c = await Client.open(proc.port);
            assert.equal(await c.cmd('MAIL FROM:<a@example.com>'), '250 Accepted');
            assert.equal(await c.cmd('RCPT TO:<b@example.com>'), '250 Accepted');
            assert.match(await c.cmd('DATA'), /^354 /);
            c.write('Subject: cut short\r\n\r\n' + 'z'.repeat(100000) + '\r\n');
            await new Promise(resolve => setTimeout(resolve, 100));
            c.destroy();
            // the catcher carries on: the next message is message #2 and is stored
            const raw = rawMessage('after the cut');
            const t = transport(proc.port, { ignoreTLS: true });
            await t.sendMail({ envelope: { from: 'a@example.com', to: 'b@example.com' }, raw });
            t.close();
            assert.equal((await proc.exit()).code, 0);
            const stored = format === 'eml' ? fs.readdirSync(dir).map(name => path.join(dir, name)) : fs.readdirSync(path.join(dir, 'new')).map(name => path.join(dir, 'new', name));
            assert.equal(stored.length, 1, `${format}: only the complete message is there`);
            assert.ok(fs.readFileSync(stored[0]).equals(raw));
            if (format === 'maildir') {
                assert.deepEqual(fs.readdirSync(path.join(dir, 'tmp')), [], 'tmp/ is empty');
            }
            const lines = proc.lines.filter(l => / -> /.test(l));
            assert.equal(lines.length, 1);
            assert.match(lines[0], /  #2  .*subject="after the cut"/);
        } finally {
            proc.kill();
            removeDir(dir);
        }
    }
});

// ---------------------------------------------------------------------------
// process life

test('SIGTERM and SIGINT stop the server and exit 0, also with a client connected', async () => {
    const dir = tmpDir();
    const idle = await startCli(['-p', '0', '-o', dir]);
    const busy = await startCli(['-p', '0', '-o', dir]);
    try {
        idle.child.kill('SIGTERM');
        assert.deepEqual(await idle.exit(), { code: 0, signal: null });
        assert.equal(idle.lines[idle.lines.length - 1], 'Stopping: got SIGTERM');

        const c = await Client.open(busy.port);
        busy.child.kill('SIGINT');
        await busy.waitLine(/^Stopping: got SIGINT$/);
        // the native side takes the close request asynchronously: a command may still pass
        let reply = await c.cmd('NOOP');
        for (let i = 0; i < 40 && /^250 /.test(reply); i++) {
            await new Promise(resolve => setTimeout(resolve, 50));
            reply = await c.cmd('NOOP');
        }
        assert.equal(reply, '421 Server shutting down', 'a connected client is told the server shuts down');
        assert.deepEqual(await busy.exit(), { code: 0, signal: null });
        c.destroy();
        assert.deepEqual(fs.readdirSync(dir), []);
    } finally {
        idle.kill();
        busy.kill();
        removeDir(dir);
    }
});

test('runtime errors exit 1: a port in use, an output directory that cannot be made', async () => {
    const dir = tmpDir();
    const first = await startCli(['-p', '0', '-o', dir]);
    try {
        const second = await runCli(['-p', String(first.port), '-o', dir]);
        assert.equal(second.code, 1);
        assert.equal(second.stdout, '');
        assert.equal(second.stderr, `smtp-server-rs: cannot listen on 127.0.0.1:${first.port}: address already in use\n`);

        const notADir = path.join(dir, 'plain-file');
        fs.writeFileSync(notADir, 'x');
        const third = await runCli(['-p', '0', '-o', path.join(notADir, 'mail')]);
        assert.equal(third.code, 1);
        assert.equal(third.stdout, '');
        assert.equal(third.stderr, `smtp-server-rs: cannot write to ${path.join(notADir, 'mail')}: ENOTDIR\n`);
    } finally {
        first.child.kill('SIGTERM');
        await first.exit().catch(() => first.kill());
        removeDir(dir);
    }
});

test('main() runs in-process with its own output streams', async () => {
    const dir = tmpDir();
    const out = [];
    const stdout = { write: s => out.push(s) };
    let catcher;
    const done = cli.main(['-p', '0', '-o', dir, '--json', '-n', '1'], { stdout, stderr: stdout, signals: false, onStart: c => (catcher = c) });
    try {
        await deadline(
            (async () => {
                while (!catcher) {
                    await new Promise(resolve => setTimeout(resolve, 10));
                }
            })(),
            WAIT,
            'main() to start'
        );
        const t = transport(catcher.address.port, { ignoreTLS: true });
        await t.sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'in process', text: 'x' });
        t.close();
        assert.equal(await deadline(done, WAIT, 'main() to resolve'), 0);
        const events = out.join('').trim().split('\n').map(l => JSON.parse(l));
        assert.deepEqual(events.map(e => e.event), ['listening', 'message', 'stopping']);
        assert.equal(events[1].subject, 'in process');
        assert.equal(fs.readFileSync(events[1].file, 'latin1').includes('Subject: in process\r\n'), true);
        assert.equal(catcher.stored, 1);
    } finally {
        if (catcher) {
            catcher.stop('test over');
        }
        removeDir(dir);
    }
});
