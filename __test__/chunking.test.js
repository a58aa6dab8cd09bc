'use strict';
// CHUNKING (RFC 3030) and BINARYMIME: BDAT chunks into the onData stream, byte for byte.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { IS_REF, withServer, createServer, listen, Client, collect, smtpError, sleep, until, sha256, python } = require('./helpers/smtp-client.js');

const skip = IS_REF && 'smtp-server has no CHUNKING';
const CHUNKING = { hideCHUNKING: false };

/** `BDAT <n>[ LAST]\r\n` followed by the bytes. */
function bdat(bytes, last) {
    const buf = Buffer.from(bytes);
    return Buffer.concat([Buffer.from(`BDAT ${buf.length}${last ? ' LAST' : ''}\r\n`), buf]);
}

/** Writes raw bytes (a BDAT command with its chunk) and reads the reply. */
function send(client, bytes) {
    client.write(bytes);
    return client.read();
}

async function envelope(client, from = 'a@example.com', to = ['b@example.com'], mailArgs = '') {
    assert.equal(await client.cmd(`MAIL FROM:<${from}>${mailArgs}`), '250 Accepted');
    for (const rcpt of to) {
        assert.equal(await client.cmd(`RCPT TO:<${rcpt}>`), '250 Accepted');
    }
}

test('EHLO: CHUNKING and BINARYMIME only with hideCHUNKING: false; BDAT is unknown otherwise', { skip }, async () => {
    await withServer({}, async port => {
        const client = await Client.connect(port);
        try {
            await client.read();
            const ehlo = await client.cmd('EHLO me');
            assert.doesNotMatch(ehlo, /CHUNKING|BINARYMIME/);
            assert.equal(await client.cmd('BDAT 3 LAST'), '500 Error: command not recognized');
        } finally {
            client.destroy();
        }
    });
    await withServer({ ...CHUNKING }, async port => {
        const client = await Client.connect(port);
        try {
            await client.read();
            const ehlo = (await client.cmd('EHLO me')).split('\n');
            assert.ok(ehlo.includes('250-CHUNKING'), ehlo.join('|'));
            assert.ok(ehlo.includes('250-BINARYMIME'), ehlo.join('|'));
        } finally {
            client.destroy();
        }
    });
    await withServer({ ...CHUNKING, hideBINARYMIME: true }, async port => {
        const client = await Client.connect(port);
        try {
            await client.read();
            const ehlo = await client.cmd('EHLO me');
            assert.match(ehlo, /CHUNKING/);
            assert.doesNotMatch(ehlo, /BINARYMIME/);
            assert.equal(await client.cmd('MAIL FROM:<a@example.com> BODY=BINARYMIME'), '501 Invalid BODY parameter value. Must be 7BIT or 8BITMIME');
        } finally {
            client.destroy();
        }
    });
});

test('chunks pipelined in one write: one reply per chunk, the body arrives byte for byte (no dot-unstuffing)', { skip }, async () => {
    const got = [];
    await withServer({ ...CHUNKING, onData: collect(got) }, async port => {
        const client = await Client.open(port);
        try {
            const parts = [Buffer.from('Subject: t\r\n\r\n.leading dot\r\n'), Buffer.from('\r\n.\r\nstill body\r\n\0\xff'), Buffer.from('..\r\n.')];
            client.write(Buffer.concat([Buffer.from('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n'), bdat(parts[0]), bdat(parts[1]), bdat(parts[2], true)]));
            assert.deepEqual(await client.readN(5), [
                '250 Accepted',
                '250 Accepted',
                `250 OK: ${parts[0].length} bytes received`,
                `250 OK: ${parts[1].length} bytes received`,
                '250 OK: message queued'
            ]);
            assert.equal(got.length, 1);
            assert.deepEqual(got[0].body, Buffer.concat(parts));
            assert.equal(got[0].byteLength, Buffer.concat(parts).length);
            assert.equal(await client.cmd('NOOP'), '250 OK');
        } finally {
            client.destroy();
        }
    });
});

test('BDAT 0 LAST ends the message; an empty message is delivered', { skip }, async () => {
    const got = [];
    await withServer({ ...CHUNKING, onData: collect(got, () => [null, 'Empty is fine']) }, async port => {
        const client = await Client.open(port);
        try {
            await envelope(client);
            assert.equal(await client.cmd('BDAT 0 LAST'), '250 Empty is fine');
            await envelope(client);
            assert.equal(await send(client, 'BDAT 5\r\nhello'), '250 OK: 5 bytes received');
            assert.equal(await client.cmd('BDAT 0 LAST'), '250 Empty is fine');
            assert.deepEqual(got.map(m => m.body.toString()), ['', 'hello']);
        } finally {
            client.destroy();
        }
    });
});

test('8 MiB of random bytes in random chunks, written in small pieces, reach a slow reader intact', { skip, timeout: 60000 }, async () => {
    const body = crypto.randomBytes(8 * 1024 * 1024);
    let received = null;
    await withServer(
        {
            ...CHUNKING,
            onData(stream, session, callback) {
                const hash = crypto.createHash('sha256');
                let n = 0;
                stream.on('readable', async () => {
                    let chunk;
                    while ((chunk = stream.read()) !== null) {
                        hash.update(chunk);
                        n += chunk.length;
                    }
                });
                stream.on('end', () => {
                    received = { hash: hash.digest('hex'), n, bodyType: session.envelope.bodyType };
                    callback(null, 'Stored');
                });
            }
        },
        async port => {
            const client = await Client.open(port);
            try {
                await envelope(client, 'a@example.com', ['b@example.com'], ' BODY=BINARYMIME');
                let offset = 0;
                let chunks = 0;
                const frames = [];
                while (offset < body.length) {
                    const size = Math.min(body.length - offset, 1 + Math.floor(Math.random() * 300000));
                    const last = offset + size === body.length;
                    frames.push(bdat(body.subarray(offset, offset + size), last));
                    offset += size;
                    chunks++;
                }
                const wire = Buffer.concat(frames);
                for (let i = 0; i < wire.length; i += 65521) {
                    client.write(wire.subarray(i, i + 65521));
                    if (i % (1024 * 1024) < 65521) {
                        await sleep(1);
                    }
                }
                const replies = await client.readN(chunks, 'the chunk replies', 30000);
                assert.equal(replies.at(-1), '250 Stored');
                assert.equal(replies.filter(r => /^250 OK: \d+ bytes received$/.test(r)).length, chunks - 1);
                assert.deepEqual(received, { hash: sha256(body), n: body.length, bodyType: 'binarymime' });
            } finally {
                client.destroy();
            }
        }
    );
});

test('a chunk written one byte at a time', { skip }, async () => {
    const got = [];
    await withServer({ ...CHUNKING, onData: collect(got) }, async port => {
        const client = await Client.open(port);
        try {
            await envelope(client);
            const wire = bdat('BDAT 3\r\nQUIT\r\n\r\n.\r\n', true);
            for (const byte of wire) {
                client.write(Buffer.from([byte]));
            }
            assert.equal(await client.read(), '250 OK: message queued');
            assert.equal(got[0].body.toString(), 'BDAT 3\r\nQUIT\r\n\r\n.\r\n');
        } finally {
            client.destroy();
        }
    });
});

test('refused BDAT: the chunk is read past, never taken for commands', { skip }, async () => {
    const got = [];
    await withServer(
        {
            ...CHUNKING,
            onMailFrom(address, session, callback) {
                setTimeout(() => callback(address.address === 'spammer@example.com' ? smtpError('Go away', 550) : null), 5);
            },
            onData: collect(got)
        },
        async port => {
            const client = await Client.open(port);
            try {
                // everything pipelined after a MAIL FROM that will be refused
                const evil = 'RSET\r\nMAIL FROM:<x@example.com>\r\nQUIT\r\n';
                client.write(Buffer.concat([Buffer.from('MAIL FROM:<spammer@example.com>\r\nRCPT TO:<b@example.com>\r\n'), bdat(evil), bdat(evil, true)]));
                assert.deepEqual(await client.readN(4), ['550 Go away', '503 Error: need MAIL command', '503 Error: need MAIL command', '503 Error: need MAIL command']);
                assert.equal(await client.cmd('NOOP'), '250 OK');
                // without RCPT
                await client.cmd('MAIL FROM:<a@example.com>');
                client.write(bdat('QUIT\r\n', true));
                assert.equal(await client.read(), '503 Error: need RCPT command');
                assert.equal(await client.cmd('NOOP'), '250 OK');
                assert.equal(got.length, 0);
            } finally {
                client.destroy();
            }
        }
    );
});

test('BDAT before EHLO and before AUTH is refused as other commands are, and its chunk is still skipped', { skip }, async () => {
    await withServer({ ...CHUNKING, authOptional: false, authMethods: ['PLAIN'], allowInsecureAuth: true }, async port => {
        const client = await Client.connect(port);
        try {
            await client.read();
            client.write(bdat('NOOP\r\n', true));
            assert.equal(await client.read(), '503 Error: send HELO/EHLO first');
            await client.cmd('EHLO me');
            client.write(bdat('NOOP\r\n', true));
            assert.equal(await client.read(), '530 Error: authentication Required');
            assert.equal(await client.cmd('QUIT'), '221 Bye');
        } finally {
            client.destroy();
        }
    });
});

test('mixing rules: DATA after BDAT, RCPT after BDAT, DATA with BODY=BINARYMIME', { skip }, async () => {
    const got = [];
    await withServer({ ...CHUNKING, onData: collect(got) }, async port => {
        const client = await Client.open(port);
        try {
            await envelope(client);
            assert.equal(await send(client, 'BDAT 2\r\nab'), '250 OK: 2 bytes received');
            assert.equal(await client.cmd('DATA'), '503 Error: DATA not allowed after BDAT');
            assert.equal(await client.cmd('RCPT TO:<c@example.com>'), '503 Error: RCPT not allowed after BDAT');
            assert.equal(await client.cmd('MAIL FROM:<c@example.com>'), '503 Error: nested MAIL command');
            assert.equal(await client.cmd('NOOP'), '250 OK');
            assert.equal(await send(client, 'BDAT 2 LAST\r\ncd'), '250 OK: message queued');
            assert.equal(got[0].body.toString(), 'abcd');
            await envelope(client, 'a@example.com', ['b@example.com'], ' BODY=BINARYMIME');
            assert.equal(await client.cmd('DATA'), '503 Error: BINARYMIME requires BDAT');
            // a plain DATA transaction still works between BDAT ones
            assert.equal(await client.cmd('RSET'), '250 Flushed');
            await envelope(client);
            assert.equal(await client.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>');
            assert.equal(await client.cmd('..x\r\n.'), '250 OK: message queued');
            assert.equal(got[1].body.toString(), '.x\r\n');
            assert.equal(got[1].envelope.bodyType, '7bit');
        } finally {
            client.destroy();
        }
    });
});

test('RSET between chunks: the stream ends in an ERESET error, its late result is ignored, the next message gets its own reply', { skip }, async () => {
    const errors = [];
    const got = [];
    await withServer(
        {
            ...CHUNKING,
            onData(stream, session, callback) {
                const chunks = [];
                stream.on('data', c => chunks.push(c));
                stream.on('error', err => {
                    errors.push(err.code);
                    // a handler that answers anyway, late: this must not answer the next message
                    setTimeout(() => callback(smtpError('Stale answer', 554)), 30);
                });
                stream.on('end', () => {
                    got.push(Buffer.concat(chunks).toString());
                    setTimeout(() => callback(null, 'Fresh answer'), 60);
                });
            }
        },
        async port => {
            const client = await Client.open(port);
            try {
                await envelope(client);
                assert.equal(await send(client, 'BDAT 4\r\nlost'), '250 OK: 4 bytes received');
                assert.equal(await client.cmd('RSET'), '250 Flushed');
                await envelope(client);
                assert.equal(await send(client, 'BDAT 4 LAST\r\nkept'), '250 Fresh answer');
                assert.deepEqual(errors, ['ERESET']);
                assert.deepEqual(got, ['kept']);
                // EHLO resets too
                await envelope(client);
                assert.equal(await send(client, 'BDAT 1\r\nx'), '250 OK: 1 bytes received');
                assert.match(await client.cmd('EHLO again'), /^250/);
                await until(() => errors.length === 2, 'the second reset');
                await sleep(50);
                assert.equal(await client.cmd('NOOP'), '250 OK');
            } finally {
                client.destroy();
            }
        }
    );
});

test('size with rejectOversized: the chunk that crosses the limit gets 552 and ends the transaction', { skip }, async () => {
    const errors = [];
    await withServer(
        {
            ...CHUNKING,
            size: 100,
            rejectOversized: true,
            onData(stream, session, callback) {
                stream.on('error', err => errors.push(err.code));
                stream.on('end', () => callback());
                stream.resume();
            }
        },
        async port => {
            const client = await Client.open(port);
            try {
                await envelope(client);
                client.write(Buffer.concat([bdat('x'.repeat(60)), bdat('y'.repeat(60)), bdat('z'.repeat(10), true)]));
                assert.deepEqual(await client.readN(3), [
                    '250 OK: 60 bytes received',
                    '552 Error: message exceeds fixed maximum message size 100',
                    '503 Error: need MAIL command'
                ]);
                await until(() => errors.length === 1, 'the stream to end');
                assert.deepEqual(errors, ['ERESET']);
                await envelope(client);
                assert.equal(await send(client, `BDAT 100 LAST\r\n${'k'.repeat(100)}`), '250 OK: message queued');
            } finally {
                client.destroy();
            }
        }
    );
});

test('size without rejectOversized: the handler sees sizeExceeded across chunks and decides', { skip }, async () => {
    const got = [];
    await withServer(
        {
            ...CHUNKING,
            size: 10,
            onData(stream, session, callback) {
                stream.resume();
                stream.on('end', () => {
                    got.push([stream.byteLength, stream.sizeExceeded]);
                    callback(stream.sizeExceeded ? smtpError('Too big for me', 552) : null);
                });
            }
        },
        async port => {
            const client = await Client.open(port);
            try {
                await envelope(client);
                assert.equal(await send(client, 'BDAT 8\r\n12345678'), '250 OK: 8 bytes received');
                assert.equal(await send(client, 'BDAT 8 LAST\r\n12345678'), '552 Too big for me');
                assert.deepEqual(got, [[16, true]]);
            } finally {
                client.destroy();
            }
        }
    );
});

test('LMTP: one reply per recipient after BDAT LAST', { skip }, async () => {
    await withServer(
        {
            ...CHUNKING,
            lmtp: true,
            onData(stream, session, callback) {
                stream.resume();
                stream.on('end', () => callback(null, session.envelope.rcptTo.map(r => (r.address.startsWith('full') ? smtpError('Mailbox full', 452) : 'Delivered'))));
            }
        },
        async port => {
            const client = await Client.connect(port);
            try {
                await client.read();
                const lhlo = await client.cmd('LHLO me');
                assert.match(lhlo, /CHUNKING/);
                await envelope(client, 'a@example.com', ['one@example.com', 'full@example.com', 'two@example.com']);
                client.write(Buffer.concat([bdat('part one '), bdat('part two', true)]));
                assert.deepEqual(await client.readN(4), ['250 OK: 9 bytes received', '250 Delivered', '452 Mailbox full', '250 Delivered']);
            } finally {
                client.destroy();
            }
        }
    );
});

test('a handler that answers before reading: the rest of the chunks is dropped, the answer comes after LAST', { skip }, async () => {
    await withServer(
        {
            ...CHUNKING,
            onData(stream, session, callback) {
                callback(smtpError('Not interested', 550));
            }
        },
        async port => {
            const client = await Client.open(port);
            try {
                await envelope(client);
                const big = Buffer.alloc(1024 * 1024, 'a');
                client.write(Buffer.concat([bdat(big), bdat(big), bdat('end', true)]));
                assert.deepEqual(await client.readN(3), ['250 OK: 1048576 bytes received', '250 OK: 1048576 bytes received', '550 Not interested']);
                assert.equal(await client.cmd('NOOP'), '250 OK');
            } finally {
                client.destroy();
            }
        }
    );
});

test('BDAT with a bad size gets 501 and the connection is closed', { skip }, async () => {
    await withServer({ ...CHUNKING }, async port => {
        for (const line of ['BDAT', 'BDAT x', 'BDAT -1', 'BDAT 1 NOTLAST', 'BDAT 99999999999999999999999']) {
            const client = await Client.open(port);
            try {
                await envelope(client);
                assert.equal(await client.cmd(line), '501 Error: Syntax: BDAT size [LAST]', line);
                await client.waitClose();
            } finally {
                client.destroy();
            }
        }
    });
});

test('the client leaves mid-chunk: the stream errors with ECONNECTION and onClose runs', { skip }, async () => {
    const errors = [];
    let closed = 0;
    await withServer(
        {
            ...CHUNKING,
            onData(stream) {
                stream.on('error', err => errors.push(err.code));
                stream.resume();
            },
            onClose() {
                closed++;
            }
        },
        async (port, server) => {
            const client = await Client.open(port);
            await envelope(client);
            client.write('BDAT 1000 LAST\r\nonly part of it');
            await sleep(50);
            client.destroy();
            await until(() => errors.length === 1 && closed === 1 && server.connections.size === 0, 'the stream error and onClose');
            assert.deepEqual(errors, ['ECONNECTION']);
        }
    );
});

test('no onData handler: BDAT messages are accepted and read past', { skip }, async () => {
    await withServer({ ...CHUNKING, onData: undefined }, async port => {
        const client = await Client.open(port);
        try {
            await envelope(client);
            client.write(Buffer.concat([bdat('a'.repeat(70000)), bdat('b', true)]));
            assert.deepEqual(await client.readN(2), ['250 OK: 70000 bytes received', '250 OK: message queued']);
        } finally {
            client.destroy();
        }
    });
});

test('a Python client speaking RFC 3030 over a raw socket', { skip, timeout: 30000 }, async () => {
    const got = [];
    await withServer({ ...CHUNKING, onData: collect(got, () => [null, 'Stored by chunks']) }, async port => {
        const script = `
import json, socket
out = []
s = socket.create_connection(('127.0.0.1', ${port}))
f = s.makefile('rb')
def reply():
    lines = []
    while True:
        line = f.readline().decode()
        lines.append(line.rstrip('\\r\\n'))
        if line[3:4] != '-':
            return lines
reply()
s.sendall(b'EHLO python.example\\r\\n')
ehlo = reply()
assert any(l[4:] == 'CHUNKING' for l in ehlo), ehlo
assert any(l[4:] == 'BINARYMIME' for l in ehlo), ehlo
s.sendall(b'MAIL FROM:<py@example.com> BODY=BINARYMIME\\r\\n'); out.append(reply()[0])
s.sendall(b'RCPT TO:<rcpt@example.com>\\r\\n'); out.append(reply()[0])
body = bytes(range(256)) * 64 + b'\\r\\n.\\r\\n'
chunks = [body[i:i + 3000] for i in range(0, len(body), 3000)]
for i, c in enumerate(chunks):
    last = b' LAST' if i == len(chunks) - 1 else b''
    s.sendall(b'BDAT %d%s\\r\\n' % (len(c), last) + c)
    out.append(reply()[0])
s.sendall(b'QUIT\\r\\n'); out.append(reply()[0])
print(json.dumps(out))
`;
        const lines = await python(script, []);
        assert.equal(lines[0], '250 Accepted');
        assert.equal(lines[1], '250 Accepted');
        assert.equal(lines.at(-2), '250 Stored by chunks');
        assert.equal(lines.at(-1), '221 Bye');
        const expected = Buffer.concat([...Array(64)].map(() => Buffer.from(Array.from({ length: 256 }, (_, i) => i))).concat([Buffer.from('\r\n.\r\n')]));
        assert.equal(got.length, 1);
        assert.deepEqual(got[0].body, expected);
        assert.equal(got[0].envelope.bodyType, 'binarymime');
    });
});


/** Exim (Debian's exim4), used as the sending MTA. */
const EXIM = ['/usr/sbin/exim4', '/usr/sbin/exim'].find(p => require('node:fs').existsSync(p));

test('Exim as the client: it sees CHUNKING and sends the message with BDAT, delivered intact', { skip: skip || (!EXIM && 'exim4 is not installed') || (process.getuid && process.getuid() !== 0 && 'exim runs its own configuration only for root'), timeout: 60000 }, async () => {
    const fs = require('node:fs');
    const os = require('node:os');
    const path = require('node:path');
    const { spawn } = require('node:child_process');
    const got = [];
    const commands = [];
    const logger = {
        debug: (meta, ...args) => meta && meta.tnx === 'command' && commands.push(args.join(' ')),
        info() {},
        error() {},
        warn() {},
        trace() {},
        fatal() {}
    };
    await withServer({ ...CHUNKING, logger, onData: collect(got, () => [null, 'Stored from Exim']) }, async port => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'exim-'));
        try {
            fs.mkdirSync(path.join(dir, 'spool'));
            fs.chmodSync(dir, 0o777);
            fs.chmodSync(path.join(dir, 'spool'), 0o777);
            const conf = path.join(dir, 'exim.conf');
            // Exim refuses to deliver as root; Debian's exim4 package has this user
            const user = 'Debian-exim';
            fs.writeFileSync(
                conf,
                [
                    `spool_directory = ${dir}/spool`,
                    `log_file_path = ${dir}/%slog`,
                    'primary_hostname = exim.test',
                    `exim_user = ${user}`,
                    `exim_group = ${user}`,
                    'begin routers',
                    'to_test:',
                    '  driver = manualroute',
                    `  route_list = * 127.0.0.1::${port} byname`,
                    '  transport = smtp_out',
                    '  self = send',
                    'begin transports',
                    'smtp_out:',
                    '  driver = smtp',
                    '  hosts_try_chunking = *',
                    '  allow_localhost',
                    `  user = ${user}`,
                    'begin retry',
                    '* * F,1m,1m',
                    ''
                ].join('\n')
            );
            fs.chmodSync(conf, 0o644);
            const lines = [];
            for (let i = 0; lines.join('\n').length < 600 * 1024; i++) {
                lines.push((i % 7 === 0 ? '.' : '') + `line ${i} ` + 'x'.repeat(i % 300));
            }
            const body = lines.join('\n') + '\n';
            const child = spawn(EXIM, ['-C', conf, '-odf', '-oi', '-f', 'sender@example.com', 'rcpt@example.com'], { stdio: ['pipe', 'pipe', 'pipe'] });
            let output = '';
            child.stdout.on('data', d => (output += d));
            child.stderr.on('data', d => (output += d));
            child.stdin.end('Subject: from exim\n\n' + body);
            const code = await new Promise(resolve => child.on('close', resolve));
            const log = fs.existsSync(path.join(dir, 'mainlog')) ? fs.readFileSync(path.join(dir, 'mainlog'), 'utf8') : '';
            assert.equal(code, 0, output + log);
            assert.match(log, /C="250 Stored from Exim"/, log);
            assert.ok(commands.some(c => /^C: BDAT \d+ LAST$/.test(c)), commands.join('|'));
            assert.ok(!commands.some(c => /^C: DATA$/.test(c)), commands.join('|'));
            assert.equal(got.length, 1);
            const text = got[0].body.toString();
            assert.equal(text.slice(text.indexOf('\r\n\r\n') + 4), body.replace(/\n/g, '\r\n'));
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});

test('LMTP: a last chunk over the size limit gets one 552 per recipient', { skip }, async () => {
    await withServer({ ...CHUNKING, lmtp: true, size: 10, rejectOversized: true }, async port => {
        const client = await Client.connect(port);
        try {
            await client.read();
            await client.cmd('LHLO me');
            await envelope(client, 'a@example.com', ['one@example.com', 'two@example.com']);
            client.write(bdat('x'.repeat(20), true));
            assert.deepEqual(await client.readN(2), ['552 Error: message exceeds fixed maximum message size 10', '552 Error: message exceeds fixed maximum message size 10']);
            assert.equal(await client.cmd('NOOP'), '250 OK');
        } finally {
            client.destroy();
        }
    });
});

test('BDAT disabled for the session after CHUNKING was announced: 500, and its chunk is still read past', { skip }, async () => {
    await withServer(
        {
            ...CHUNKING,
            onMailFrom(address, session, callback) {
                session.disabledCommands = ['BDAT'];
                callback();
            }
        },
        async port => {
            const client = await Client.open(port);
            try {
                await envelope(client);
                client.write(bdat('QUIT\r\n', true));
                assert.equal(await client.read(), '500 Error: command not recognized');
                assert.equal(await client.cmd('NOOP'), '250 OK');
            } finally {
                client.destroy();
            }
        }
    );
});

test('close() while a BDAT message is in progress: it still finishes, then 421', { skip }, async () => {
    const got = [];
    const server = createServer({ ...CHUNKING, closeTimeout: 5000, onData: collect(got, () => [null, 'Finished']) });
    const port = await listen(server);
    const client = await Client.open(port);
    try {
        await envelope(client);
        assert.equal(await send(client, 'BDAT 3\r\nabc'), '250 OK: 3 bytes received');
        const closed = new Promise(resolve => server.close(resolve));
        await sleep(50);
        assert.equal(await send(client, 'BDAT 3 LAST\r\ndef'), '250 Finished');
        assert.equal(got[0].body.toString(), 'abcdef');
        assert.equal(await client.cmd('NOOP'), '421 Server shutting down');
        await client.waitClose();
        await closed;
    } finally {
        client.destroy();
    }
});
