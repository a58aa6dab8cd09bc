'use strict';

// Real SMTP/LMTP clients against smtp-server-rs: nodemailer (single connections,
// LMTP, pooled connections), Python's smtplib (SMTP and LMTP over a Unix socket)
// and a raw LMTP transcript over a Unix socket.

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn } = require('node:child_process');
const nodemailer = require('nodemailer');

// helpers shared with the other test files
const { IMPL, SMTPServer, IS_REF, IS_BUN, WAIT, deadline, nextEvent, until, sleep, createServer, listen, closeServer, withServer, Client, transaction, dotStuff, sha256, collect, smtpError, tmpSocketPath } = require('./helpers/smtp-client.js');
// ---------------------------------------------------------------------------

function transport(port, extra = {}) {
    return nodemailer.createTransport({
        host: '127.0.0.1',
        port,
        secure: false,
        ignoreTLS: true,
        logger: false,
        connectionTimeout: WAIT,
        greetingTimeout: WAIT,
        socketTimeout: 2 * WAIT,
        ...extra
    });
}

/** Runs `python3 -c script args...` with `input` on stdin; resolves with parsed JSON stdout. */
function python(script, args = [], input = Buffer.alloc(0), ms = 15000) {
    return deadline(
        new Promise((resolve, reject) => {
            const child = spawn('python3', ['-c', script, ...args.map(String)], { stdio: ['pipe', 'pipe', 'pipe'] });
            const out = [];
            const err = [];
            child.stdout.on('data', d => out.push(d));
            child.stderr.on('data', d => err.push(d));
            child.on('error', reject);
            child.on('close', code => {
                const stdout = Buffer.concat(out).toString();
                const stderr = Buffer.concat(err).toString();
                if (code !== 0) {
                    return reject(new Error(`python3 exited with ${code}: ${stderr || stdout}`));
                }
                try {
                    resolve(JSON.parse(stdout));
                } catch {
                    reject(new Error(`python3 printed no JSON: ${stdout} ${stderr}`));
                }
            });
            child.stdin.end(input);
            setTimeout(() => child.kill('SIGKILL'), ms).unref();
        }),
        ms + 1000,
        'python3 to finish'
    );
}

// smtplib client: argv = host-or-path port mode(smtp|lmtp) from to[,to...]; message on stdin.
const PY_SEND = `
import json, smtplib, sys
target, port, mode, sender, rcpts = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5].split(',')
msg = sys.stdin.buffer.read()
if mode == 'lmtp':
    s = smtplib.LMTP(target, timeout=10)
    code, _ = s.ehlo('py.client')
else:
    s = smtplib.SMTP(target, port, local_hostname='py.client', timeout=10)
    code, _ = s.ehlo()
out = {'hello': code, 'features': sorted(s.esmtp_features.keys())}
opts = ['BODY=8BITMIME'] if '8bitmime' in s.esmtp_features else []
if mode == 'smtputf8':
    opts.append('SMTPUTF8')
try:
    refused = s.sendmail(sender, rcpts, msg, mail_options=opts)
    out['refused'] = {k: [v[0], v[1].decode('latin1')] for k, v in refused.items()}
except smtplib.SMTPRecipientsRefused as e:
    out['allRefused'] = {k: [v[0], v[1].decode('latin1')] for k, v in e.recipients.items()}
except smtplib.SMTPResponseException as e:
    out['error'] = [e.smtp_code, e.smtp_error.decode('latin1')]
if mode != 'lmtp':
    out['noop'] = list(s.noop()); out['noop'][1] = out['noop'][1].decode()
    out['vrfy'] = list(s.verify('someone')); out['vrfy'][1] = out['vrfy'][1].decode()
    out['help'] = s.help().decode()
out['quit'] = s.quit()[0]
print(json.dumps(out))
`;

/** A message with CRLF line ends, 8-bit bytes (every value 0x80-0xff) and dot-leading lines. */
function eightBitMessage() {
    const high = Buffer.alloc(128);
    for (let i = 0; i < 128; i++) {
        high[i] = 0x80 + i;
    }
    return Buffer.concat([
        Buffer.from('From: sender@example.com\r\nTo: rcpt@example.com\r\nSubject: 8-bit test\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'),
        Buffer.from('Grüße aus Köln – ünïcödé ✓\r\n'),
        Buffer.from('.\r\n'),
        Buffer.from('..\r\n'),
        Buffer.from('.leading dot\r\n'),
        Buffer.from('...three dots\r\n'),
        Buffer.from(' .space then dot\r\n'),
        high,
        Buffer.from('\r\n'),
        Buffer.from('x'.repeat(3000) + '\r\n'),
        Buffer.from('tab\there, NUL\u0000there, CR-less end\r\n'),
        Buffer.from('.\r\n')
    ]);
}

test('nodemailer: a message with text, html and an attachment arrives whole', { timeout: 20000 }, async () => {
    const got = [];
    await withServer({ onData: collect(got) }, async port => {
        const tr = transport(port);
        try {
            const attachment = crypto.randomBytes(50000);
            const info = await tr.sendMail({
                from: 'Sender <sender@example.com>',
                to: 'One <one@example.com>, two@example.com',
                cc: 'three@example.com',
                subject: 'Hello from nodemailer',
                text: 'Plain text body\n.\n..leading dots\n',
                html: '<p>HTML body</p>',
                attachments: [{ filename: 'blob.bin', content: attachment }]
            });
            assert.deepEqual(info.accepted, ['one@example.com', 'two@example.com', 'three@example.com']);
            assert.deepEqual(info.rejected, []);
            assert.equal(info.response, '250 OK: message queued');
            assert.equal(got.length, 1);
            const { body, envelope, session, byteLength } = got[0];
            assert.equal(byteLength, body.length);
            assert.equal(envelope.mailFrom.address, 'sender@example.com');
            assert.deepEqual(envelope.rcptTo.map(r => r.address), ['one@example.com', 'two@example.com', 'three@example.com']);
            assert.equal(session.openingCommand, 'EHLO');
            assert.equal(session.transmissionType, 'ESMTP');
            const text = body.toString('latin1');
            assert.match(text, /^Subject: Hello from nodemailer\r$/m);
            assert.match(text, /Plain text body\r\n\.\r\n\.\.leading dots/, 'dot-leading lines are un-stuffed exactly once');
            assert.match(text, /<p>HTML body<\/p>/);
            const b64 = attachment.toString('base64');
            const found = text
                .split(/\r\n\r\n/)
                .map(part => part.replace(/\r\n--[\s\S]*$/, '').replace(/\r\n/g, ''))
                .some(part => part === b64);
            assert.ok(found, 'the attachment arrived byte-for-byte (base64)');
            assert.ok(body.subarray(-2).equals(Buffer.from('\r\n')), 'the body ends with the CRLF before the final dot');
        } finally {
            tr.close();
        }
    });
});

test('nodemailer: refused recipients, custom success text', { timeout: 20000 }, async () => {
    const got = [];
    await withServer(
        {
            onRcptTo(address, session, callback) {
                if (address.address.startsWith('bad')) {
                    return callback(smtpError('No such user here', 550));
                }
                callback();
            },
            onData: collect(got, () => [null, 'Queued as ABC123'])
        },
        async port => {
            const tr = transport(port);
            try {
                const info = await tr.sendMail({ from: 's@example.com', to: 'good@example.com, bad@example.com, good2@example.com', subject: 's', text: 't' });
                assert.deepEqual(info.accepted, ['good@example.com', 'good2@example.com']);
                assert.deepEqual(info.rejected, ['bad@example.com']);
                assert.equal(info.rejectedErrors[0].response, '550 No such user here');
                assert.equal(info.response, '250 Queued as ABC123');
                assert.deepEqual(got[0].envelope.rcptTo.map(r => r.address), ['good@example.com', 'good2@example.com']);
            } finally {
                tr.close();
            }
        }
    );
});

test('nodemailer: sender refused and message refused reach sendMail as errors', { timeout: 20000 }, async () => {
    await withServer(
        {
            onMailFrom(address, session, callback) {
                if (address.address === 'blocked@example.com') {
                    return callback(smtpError('Sender blocked', 553));
                }
                callback();
            },
            onData(stream, session, callback) {
                stream.resume();
                stream.on('end', () => callback(smtpError('Message looks like spam', 554)));
            }
        },
        async port => {
            const tr = transport(port);
            try {
                await assert.rejects(tr.sendMail({ from: 'blocked@example.com', to: 'r@example.com', text: 'x' }), err => {
                    assert.equal(err.responseCode, 553);
                    assert.equal(err.response, '553 Sender blocked');
                    return true;
                });
                await assert.rejects(tr.sendMail({ from: 'ok@example.com', to: 'r@example.com', text: 'x' }), err => {
                    assert.equal(err.responseCode, 554);
                    assert.equal(err.response, '554 Message looks like spam');
                    return true;
                });
            } finally {
                tr.close();
            }
        }
    );
});

test('nodemailer pool: 60 messages over at most 3 connections', { timeout: 30000 }, async () => {
    const got = [];
    const connects = new Set();
    let closes = 0;
    await withServer(
        {
            onConnect(session, callback) {
                connects.add(session.id);
                callback();
            },
            onClose() {
                closes++;
            },
            onData: collect(got)
        },
        async port => {
            const tr = transport(port, { pool: true, maxConnections: 3, maxMessages: Infinity });
            try {
                const results = await Promise.all(
                    Array.from({ length: 60 }, (_, i) =>
                        tr.sendMail({ from: 'pool@example.com', to: `r${i}@example.com`, subject: `pooled #${i}`, text: `message number ${i}\n` })
                    )
                );
                for (const [i, info] of results.entries()) {
                    assert.deepEqual(info.accepted, [`r${i}@example.com`]);
                    assert.equal(info.response, '250 OK: message queued');
                }
            } finally {
                tr.close();
            }
            assert.equal(got.length, 60);
            assert.ok(connects.size >= 1 && connects.size <= 3, `used ${connects.size} connections`);
            const seen = new Set();
            for (const { body, envelope, session } of got) {
                const m = /^Subject: pooled #(\d+)\r$/m.exec(body.toString());
                assert.ok(m, 'subject present');
                assert.equal(envelope.rcptTo[0].address, `r${m[1]}@example.com`, 'envelope matches the message');
                assert.ok(connects.has(session.id));
                seen.add(m[1]);
            }
            assert.equal(seen.size, 60, 'every message arrived once');
            assert.ok(Math.max(...got.map(g => g.session.transaction)) > 1, 'connections were reused for several transactions');
            await until(() => closes === connects.size, `onClose for all ${connects.size} pooled connections (got ${closes})`);
        }
    );
});

test('nodemailer pool: maxMessages makes the pool reconnect', { timeout: 30000 }, async () => {
    let received = 0;
    const connects = new Set();
    await withServer(
        {
            onConnect(session, callback) {
                connects.add(session.id);
                callback();
            },
            onData(stream, session, callback) {
                stream.resume();
                stream.on('end', () => {
                    received++;
                    callback();
                });
            }
        },
        async port => {
            const tr = transport(port, { pool: true, maxConnections: 2, maxMessages: 5 });
            try {
                for (let round = 0; round < 4; round++) {
                    await Promise.all(Array.from({ length: 5 }, (_, i) => tr.sendMail({ from: 'p@example.com', to: 'r@example.com', text: `r${round} m${i}` })));
                }
            } finally {
                tr.close();
            }
            assert.equal(received, 20);
            assert.ok(connects.size >= 4, `expected at least 4 connections, got ${connects.size}`);
        }
    );
});

test('nodemailer LMTP: per-recipient results from an array of strings and Errors', { timeout: 20000 }, async () => {
    const got = [];
    await withServer(
        {
            lmtp: true,
            onData: collect(got, (body, session) => [
                null,
                session.envelope.rcptTo.map(r => (r.address.startsWith('full') ? smtpError('Mailbox full', 552) : `Delivered to ${r.address}`))
            ])
        },
        async port => {
            const tr = transport(port, { lmtp: true });
            try {
                const info = await tr.sendMail({ from: 's@example.com', to: 'a@example.com, full@example.com, c@example.com', subject: 'lmtp', text: 'hello lmtp' });
                assert.deepEqual(info.accepted, ['a@example.com', 'c@example.com']);
                assert.deepEqual(info.rejected, ['full@example.com']);
                assert.equal(info.rejectedErrors[0].response, '552 Mailbox full');
                assert.equal(info.response, '250 Delivered to c@example.com');
                assert.equal(got[0].session.openingCommand, 'LHLO');
                assert.equal(got[0].session.transmissionType, 'LMTP');
                assert.match(got[0].body.toString(), /hello lmtp/);

                const all = await tr.sendMail({ from: 's@example.com', to: 'x@example.com, y@example.com', text: 'second' });
                assert.deepEqual(all.accepted, ['x@example.com', 'y@example.com']);
                assert.equal(all.response, '250 Delivered to y@example.com');
            } finally {
                tr.close();
            }
        }
    );
});

test('nodemailer LMTP: default result, every recipient rejected by onData', { timeout: 20000 }, async () => {
    let refuse = false;
    await withServer(
        {
            lmtp: true,
            onData(stream, session, callback) {
                stream.resume();
                stream.on('end', () => callback(refuse ? smtpError('Try again later', 451) : null));
            }
        },
        async port => {
            const tr = transport(port, { lmtp: true });
            try {
                const info = await tr.sendMail({ from: 's@example.com', to: 'a@example.com, b@example.com', text: 'x' });
                assert.deepEqual(info.accepted, ['a@example.com', 'b@example.com']);
                assert.equal(info.response, '250 OK: message accepted');
                refuse = true;
                // nodemailer reports LMTP refusals per recipient instead of failing the send
                const refused = await tr.sendMail({ from: 's@example.com', to: 'a@example.com, b@example.com', text: 'x' });
                assert.deepEqual(refused.accepted, []);
                assert.deepEqual(refused.rejected, ['a@example.com', 'b@example.com']);
                assert.deepEqual(
                    refused.rejectedErrors.map(err => err.response),
                    ['451 Try again later', '451 Try again later']
                );
            } finally {
                tr.close();
            }
        }
    );
});

test('nodemailer LMTP over a Unix socket', { timeout: 20000 }, async () => {
    const got = [];
    const sockPath = tmpSocketPath('nm-lmtp');
    const server = createServer({ lmtp: true, onData: collect(got) });
    assert.equal(await listen(server, sockPath), sockPath);
    try {
        const tr = nodemailer.createTransport({
            lmtp: true,
            host: 'localhost',
            ignoreTLS: true,
            logger: false,
            getSocket(options, callback) {
                const socket = net.connect({ path: sockPath });
                socket.once('error', callback);
                socket.once('connect', () => {
                    socket.removeListener('error', callback);
                    callback(null, { connection: socket });
                });
            }
        });
        try {
            const info = await tr.sendMail({ from: 'unix@example.com', to: 'a@example.com, b@example.com', subject: 'via unix socket', text: 'over AF_UNIX' });
            assert.deepEqual(info.accepted, ['a@example.com', 'b@example.com']);
            assert.equal(info.response, '250 OK: message accepted');
        } finally {
            tr.close();
        }
        assert.equal(got.length, 1);
        assert.match(got[0].body.toString(), /over AF_UNIX/);
        assert.equal(got[0].envelope.mailFrom.address, 'unix@example.com');
    } finally {
        await closeServer(server, 2 * WAIT);
    }
});

test('Python smtplib: sendmail delivers 8-bit and dot-leading lines byte-for-byte', { timeout: 30000 }, async () => {
    const got = [];
    await withServer({ onData: collect(got) }, async port => {
        const msg = eightBitMessage();
        const out = await python(PY_SEND, ['127.0.0.1', port, 'smtp', 'py@example.com', 'one@example.com,two@example.com'], msg);
        assert.equal(out.hello, 250);
        assert.ok(out.features.includes('8bitmime') && out.features.includes('pipelining') && out.features.includes('smtputf8'), `features: ${out.features}`);
        assert.deepEqual(out.refused, {}, 'sendmail refused nobody');
        assert.deepEqual(out.noop, [250, 'OK']);
        assert.deepEqual(out.vrfy, [252, 'Try to send something. No promises though']);
        assert.equal(out.help, 'See https://tools.ietf.org/html/rfc5321 for details');
        assert.equal(out.quit, 221);
        assert.equal(got.length, 1);
        assert.equal(got[0].body.length, msg.length);
        assert.ok(got[0].body.equals(msg), 'the body arrived byte-for-byte');
        assert.equal(got[0].envelope.bodyType, '8bitmime');
        assert.deepEqual(got[0].envelope.rcptTo.map(r => r.address), ['one@example.com', 'two@example.com']);
    });
});

test('Python smtplib: SMTPUTF8 with internationalized addresses', { timeout: 30000 }, async () => {
    const got = [];
    await withServer({ onData: collect(got) }, async port => {
        const msg = Buffer.from('From: =?utf-8?q?J=C3=BCrgen?= <jürgen@exämple.com>\r\nSubject: UTF-8 envelope\r\n\r\nHallo Jürgen ✓\r\n');
        const out = await python(PY_SEND, ['127.0.0.1', port, 'smtputf8', 'jürgen@exämple.com', 'пользователь@例え.jp,plain@example.com'], msg);
        assert.deepEqual(out.refused, {});
        assert.equal(got.length, 1);
        const { envelope, body } = got[0];
        assert.equal(envelope.smtpUtf8, true);
        assert.equal(envelope.mailFrom.address, 'jürgen@exämple.com');
        assert.deepEqual(envelope.mailFrom.args, { BODY: '8BITMIME', SMTPUTF8: true });
        assert.deepEqual(envelope.rcptTo.map(r => r.address), ['пользователь@例え.jp', 'plain@example.com']);
        assert.ok(body.equals(msg), 'the UTF-8 body arrived byte-for-byte');
    });
});

test('Python smtplib: refused recipients show up in the sendmail result', { timeout: 30000 }, async () => {
    const got = [];
    await withServer(
        {
            onRcptTo(address, session, callback) {
                callback(address.address.startsWith('nobody') ? smtpError('Unknown user', 550) : null);
            },
            onData: collect(got, () => [null, 'Stored'])
        },
        async port => {
            const partly = await python(PY_SEND, ['127.0.0.1', port, 'smtp', 'py@example.com', 'nobody@example.com,someone@example.com'], Buffer.from('Subject: x\r\n\r\nbody\r\n'));
            assert.deepEqual(partly.refused, { 'nobody@example.com': [550, 'Unknown user'] });
            assert.deepEqual(got[0].envelope.rcptTo.map(r => r.address), ['someone@example.com']);

            const none = await python(PY_SEND, ['127.0.0.1', port, 'smtp', 'py@example.com', 'nobody@example.com'], Buffer.from('Subject: x\r\n\r\nbody\r\n'));
            assert.deepEqual(none.allRefused, { 'nobody@example.com': [550, 'Unknown user'] });
            assert.equal(got.length, 1);
        }
    );
});

test('Python smtplib.LMTP over a Unix socket', { timeout: 30000 }, async () => {
    const got = [];
    const sockPath = tmpSocketPath('py-lmtp');
    const server = createServer({ lmtp: true, onData: collect(got, () => [null, 'Saved']) });
    await listen(server, sockPath);
    try {
        const msg = eightBitMessage();
        const out = await python(PY_SEND, [sockPath, 0, 'lmtp', 'py@example.com', 'box@example.com'], msg);
        assert.equal(out.hello, 250);
        assert.deepEqual(out.refused, {});
        assert.equal(out.quit, 221);
        assert.equal(got.length, 1);
        assert.ok(got[0].body.equals(msg), 'the body arrived byte-for-byte');
        assert.equal(got[0].session.transmissionType, 'LMTP');
    } finally {
        await closeServer(server, 2 * WAIT);
    }
});

test('raw LMTP transcript over a Unix socket: one reply per accepted recipient, in order', { timeout: 20000 }, async () => {
    const got = [];
    const sockPath = tmpSocketPath('raw-lmtp');
    const server = createServer({
        lmtp: true,
        banner: 'raw lmtp',
        onRcptTo(address, session, callback) {
            callback(address.address === 'refused@example.com' ? smtpError('Refused here', 550) : null);
        },
        onData: collect(got, (body, session) => [null, session.envelope.rcptTo.map((r, i) => (i === 1 ? smtpError('Over quota', 452) : `ok ${r.address}`))])
    });
    await listen(server, sockPath);
    let client;
    try {
        client = await Client.open(sockPath, null);
        assert.match(client.greeting, /^220 \S+ LMTP raw lmtp$/);
        assert.equal(await client.cmd('HELO me'), '500 Error: HELO not allowed in LMTP server');
        assert.equal(await client.cmd('EHLO me'), '500 Error: EHLO not allowed in LMTP server');
        const lhlo = await client.cmd('LHLO me');
        assert.match(lhlo, /^250-/);
        assert.match(lhlo, /\n250-PIPELINING\n/);
        assert.equal(await client.cmd('MAIL FROM:<from@example.com>'), '250 Accepted');
        assert.equal(await client.cmd('RCPT TO:<a@example.com>'), '250 Accepted');
        assert.equal(await client.cmd('RCPT TO:<refused@example.com>'), '550 Refused here');
        assert.equal(await client.cmd('RCPT TO:<b@example.com>'), '250 Accepted');
        assert.equal(await client.cmd('RCPT TO:<c@example.com>'), '250 Accepted');
        assert.equal(await client.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>');
        client.write('Subject: raw\r\n\r\n..stuffed\r\n.\r\n');
        assert.deepEqual(await client.readN(3, 'per-recipient replies'), ['250 ok a@example.com', '452 Over quota', '250 ok c@example.com']);
        assert.ok(got[0].body.equals(Buffer.from('Subject: raw\r\n\r\n.stuffed\r\n')));
        // the transaction was reset: DATA needs a new MAIL/RCPT
        assert.equal(await client.cmd('DATA'), '503 Error: need RCPT command');
        assert.equal(await client.cmd('QUIT'), '221 Bye');
        await client.waitClose();
    } finally {
        if (client) {
            client.destroy();
        }
        await closeServer(server, 2 * WAIT);
    }
});
