'use strict';

// Drop-in cases found by running existing users' code with this package swapped in
// (maildev, nodemailer's test suite, bun-smtp's documented examples). Where smtp-server
// 3.21.6 has the behaviour, each case runs against it and against this package and the
// two must agree.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Writable } = require('node:stream');
const { IS_BUN, WAIT, deadline, until, listen, closeServer, Client } = require('./helpers/smtp-client.js');

const PACKAGES = [
    ['smtp-server', require('smtp-server').SMTPServer],
    ['smtp-server-rs', require('..').SMTPServer]
];

/** Runs `scenario(SMTPServer, name)` for both packages; the results must be equal. Returns ours. */
async function same(scenario) {
    const results = [];
    for (const [name, SMTPServer] of PACKAGES) {
        results.push(await scenario(SMTPServer, name));
    }
    assert.deepEqual(results[1], results[0], 'smtp-server-rs differs from smtp-server');
    return results[1];
}

function start(SMTPServer, options) {
    const server = new SMTPServer({ disableReverseLookup: true, logger: false, closeTimeout: 1000, name: 'mx.test', ...options });
    return listen(server).then(port => ({ server, port }));
}

function ehloLines(reply) {
    return reply.split('\n').map(line => line.slice(4));
}

const MESSAGE = 'Subject: test\r\n\r\n' + 'x'.repeat(3000) + '\r\n';

async function sendMail(client, body = MESSAGE) {
    await client.cmd('MAIL FROM:<a@example.com>');
    await client.cmd('RCPT TO:<b@example.com>');
    assert.match(await client.cmd('DATA'), /^354 /);
    client.write(body + '.\r\n');
    return client.read('the reply to the message');
}

// ---------------------------------------------------------------------------
// item 8: null TLS options

test('key: null and cert: null are "not given" (maildev 2 passes them)', async () => {
    await same(async SMTPServer => {
        const { server, port } = await start(SMTPServer, { key: null, cert: null, hideSTARTTLS: true, disabledCommands: ['AUTH'], ca: undefined });
        try {
            const client = await Client.open(port);
            const reply = await sendMail(client);
            client.destroy();
            return [client.greeting, client.ehlo, reply];
        } finally {
            await closeServer(server);
        }
    });
});

test('null TLS options leave STARTTLS working with the built-in certificate', async () => {
    const { SMTPServer } = require('..');
    const { server, port } = await start(SMTPServer, { key: null, cert: null, ca: null, minVersion: null, disabledCommands: ['AUTH'] });
    try {
        const client = await Client.open(port);
        await client.starttls();
        assert.match(await client.cmd('EHLO again.test'), /^250-mx\.test/);
        assert.equal(await sendMail(client), '250 OK: message queued');
        client.destroy();
    } finally {
        await closeServer(server);
    }
});

// ---------------------------------------------------------------------------
// item 9: server.options changed on a running server

test('server.options.hidePIPELINING = true on a listening server applies to the next EHLO (nodemailer)', async () => {
    const result = await same(async SMTPServer => {
        const { server, port } = await start(SMTPServer, { authOptional: true });
        try {
            const before = await Client.open(port);
            server.options.hidePIPELINING = true;
            const again = await before.cmd('EHLO again.test');
            const after = await Client.open(port);
            before.destroy();
            after.destroy();
            return [before.ehlo, again, after.ehlo];
        } finally {
            await closeServer(server);
        }
    });
    assert.ok(ehloLines(result[0]).includes('PIPELINING'));
    assert.ok(!ehloLines(result[1]).includes('PIPELINING'));
    assert.ok(!ehloLines(result[2]).includes('PIPELINING'));
});

test('banner, name, size, hide* flags and authMethods apply from the next connection', async () => {
    const result = await same(async SMTPServer => {
        const { server, port } = await start(SMTPServer, {});
        try {
            const first = await Client.open(port);
            first.destroy();
            Object.assign(server.options, {
                banner: 'changed banner',
                size: 1000,
                hide8BITMIME: true,
                hideSMTPUTF8: true,
                hideENHANCEDSTATUSCODES: false,
                hideSTARTTLS: true,
                authMethods: ['PLAIN', 'XOAUTH2']
            });
            const second = await Client.open(port);
            const big = await second.cmd('MAIL FROM:<a@example.com> SIZE=5000');
            second.destroy();
            return [first.greeting, first.ehlo, second.greeting, second.ehlo, big];
        } finally {
            await closeServer(server);
        }
    });
    assert.equal(result[2], '220 mx.test ESMTP changed banner');
    assert.ok(ehloLines(result[3]).includes('SIZE 1000'));
    assert.ok(ehloLines(result[3]).includes('AUTH PLAIN XOAUTH2'));
});

test('disabledCommands, maxRecipients and lmtp-independent limits apply from the next command', async () => {
    await same(async SMTPServer => {
        const { server, port } = await start(SMTPServer, { authOptional: true });
        try {
            const client = await Client.open(port);
            const out = [await client.cmd('NOOP')];
            server.options.disabledCommands = ['NOOP'];
            out.push(await client.cmd('NOOP'));
            server.options.maxRecipients = 1;
            out.push(await client.cmd('MAIL FROM:<a@example.com>'));
            out.push(await client.cmd('RCPT TO:<b@example.com>'));
            out.push(await client.cmd('RCPT TO:<c@example.com>'));
            delete server.options.maxRecipients;
            out.push(await client.cmd('RCPT TO:<d@example.com>'));
            client.destroy();
            return out;
        } finally {
            await closeServer(server);
        }
    });
});

test('maxClients set on a running server applies to the next connection', async () => {
    await same(async SMTPServer => {
        const { server, port } = await start(SMTPServer, { authOptional: true });
        try {
            const first = await Client.open(port);
            server.options.maxClients = 1;
            const second = await Client.connect(port);
            const refused = await second.read('the refusal');
            await second.waitClose();
            server.options.maxClients = 0;
            const third = await Client.open(port);
            first.destroy();
            third.destroy();
            return [refused, third.greeting];
        } finally {
            await closeServer(server);
        }
    });
});

test('socketTimeout set on a running server applies to the next connection', async () => {
    await same(async SMTPServer => {
        const { server, port } = await start(SMTPServer, { authOptional: true });
        try {
            server.options.socketTimeout = 300;
            const client = await Client.open(port);
            const reply = await client.read('the timeout reply');
            await client.waitClose();
            return reply;
        } finally {
            await closeServer(server);
        }
    });
});

test('replacing server.options with a new object applies it', async () => {
    const { SMTPServer } = require('..');
    const { server, port } = await start(SMTPServer, { authOptional: true });
    try {
        server.options = { ...server.options, banner: 'replaced', hidePIPELINING: true };
        const client = await Client.open(port);
        assert.equal(client.greeting, '220 mx.test ESMTP replaced');
        assert.ok(!ehloLines(client.ehlo).includes('PIPELINING'));
        client.destroy();
    } finally {
        await closeServer(server);
    }
});

// ---------------------------------------------------------------------------
// item 10: connection._socket

test("connection._socket.write() then destroy() in onConnect (nodemailer's disconnecting server)", async () => {
    const result = await same(async SMTPServer => {
        let connected;
        const ready = new Promise(resolve => (connected = resolve));
        const { server, port } = await start(SMTPServer, {
            disabledCommands: ['STARTTLS', 'AUTH'],
            onConnect(session, callback) {
                connected();
                callback();
            }
        });
        try {
            const client = await Client.connect(port);
            await ready;
            const greeting = await client.read('the greeting');
            const [conn] = server.connections;
            const sock = conn._socket;
            const closed = new Promise(resolve => sock.once('close', resolve));
            const info = [typeof sock.remoteAddress, sock.remotePort === client.socket.localPort];
            sock.write('454 4.3.0 Try again later\r\n');
            sock.destroy();
            const line = await client.read('the line written to the socket');
            await client.waitClose();
            await deadline(closed, WAIT, "the socket's close event");
            return [greeting, line, info, server.connections.size];
        } finally {
            await closeServer(server);
        }
    });
    assert.deepEqual(result.slice(1), ['454 4.3.0 Try again later', ['string', true], 0]);
});

test('connection._socket used inside onConnect: as nodemailer does (write and destroy after the callback), and instead of it', async () => {
    const result = await same(async SMTPServer => {
        const out = [];
        for (const mode of ['after-callback', 'instead-of-callback', 'before-callback']) {
            const { server, port } = await start(SMTPServer, {
                disabledCommands: ['STARTTLS', 'AUTH'],
                onConnect(session, callback) {
                    const [conn] = this.connections;
                    if (mode === 'after-callback') {
                        // nodemailer's disconnecting server: the greeting goes out first
                        callback();
                        setImmediate(() => {
                            conn._socket.write('454 4.3.0 Try again later\r\n');
                            conn._socket.destroy();
                        });
                    } else if (mode === 'instead-of-callback') {
                        conn._socket.write('454 4.3.0 Try again later\r\n');
                        conn._socket.destroy();
                    } else {
                        conn._socket.write(Buffer.from('100 before the greeting\r\n'));
                        callback();
                    }
                }
            });
            try {
                const client = await Client.connect(port);
                if (mode === 'before-callback') {
                    out.push(await client.readN(2, 'the line and the greeting'));
                    out.push(await client.cmd('QUIT'));
                } else {
                    out.push(await client.readN(mode === 'after-callback' ? 2 : 1, 'the lines'));
                }
                await client.waitClose();
            } finally {
                await closeServer(server);
            }
        }
        return out;
    });
    assert.deepEqual(result, [
        ['220 mx.test ESMTP', '454 4.3.0 Try again later'],
        ['454 4.3.0 Try again later'],
        ['100 before the greeting', '220 mx.test ESMTP'],
        '221 Bye'
    ]);
});

test('connection._socket.end(data) writes, then closes; the client leaving emits end and close', async () => {
    await same(async SMTPServer => {
        const { server, port } = await start(SMTPServer, { authOptional: true });
        try {
            const client = await Client.open(port);
            const [conn] = server.connections;
            conn._socket.end(Buffer.from('421 going away\r\n'));
            const line = await client.read('the line');
            await client.waitClose();

            const other = await Client.open(port);
            const [conn2] = server.connections;
            const events = [];
            const closed = new Promise(resolve => conn2._socket.once('close', resolve));
            conn2._socket.on('end', () => events.push('end'));
            conn2._socket.on('close', () => events.push('close'));
            other.socket.end();
            await deadline(closed, WAIT, "the socket's close event");
            return [line, events];
        } finally {
            await closeServer(server);
        }
    });
});

// ---------------------------------------------------------------------------
// item 2: onData answered before the stream is read

test("onData answering before reading: the stream still emits 'end' with the final byteLength and sizeExceeded", async () => {
    const result = await same(async SMTPServer => {
        const ends = [];
        let ended;
        const done = new Promise(resolve => (ended = resolve));
        const { server, port } = await start(SMTPServer, {
            authOptional: true,
            size: 1000,
            onData(stream, session, callback) {
                stream.on('end', () => {
                    ends.push([stream.byteLength, stream.sizeExceeded]);
                    ended();
                });
                callback(null, 'answered early');
            }
        });
        try {
            const client = await Client.open(port);
            const reply = await sendMail(client);
            await deadline(done, WAIT, "the stream's 'end'");
            const next = await sendMail(client, 'short\r\n');
            client.destroy();
            return [reply, next, ends];
        } finally {
            await closeServer(server);
        }
    });
    assert.equal(result[2][0][0], MESSAGE.length);
    assert.equal(result[2][0][1], true);
});

// ---------------------------------------------------------------------------
// item 7: a handler that waits for 'end' without reading

test('a message nobody reads for a few seconds logs one warning', { timeout: 30000 }, async () => {
    const { SMTPServer } = require('..');
    const warnings = [];
    const logger = { info() {}, debug() {}, error() {}, warn: (entry, ...args) => warnings.push([entry, args]) };
    let stream;
    const { server, port } = await start(SMTPServer, {
        authOptional: true,
        logger,
        onData(s, session, callback) {
            stream = s;
            s.on('end', () => callback());
        }
    });
    try {
        const client = await Client.open(port);
        await client.cmd('MAIL FROM:<a@example.com>');
        await client.cmd('RCPT TO:<b@example.com>');
        await client.cmd('DATA');
        client.write(MESSAGE + '.\r\n');
        await until(() => warnings.length > 0, 'the warning', 15000);
        assert.equal(warnings.length, 1);
        assert.match(warnings[0][1][0], /has not read the message stream/);
        // a reader that comes late still gets the whole message
        let length = 0;
        stream.on('data', chunk => (length += chunk.length));
        assert.equal(await client.read('the reply'), '250 OK: message queued');
        assert.equal(length, MESSAGE.length);
        client.destroy();
    } finally {
        await closeServer(server);
    }
});

// ---------------------------------------------------------------------------
// item 6: pipeTo into a FileSink, a Node Writable, a write()/flush()/end() sink

/** Runs one message through `onData(stream)` calling `save(stream)`; resolves with the reply. */
async function withMessage(save, body = MESSAGE) {
    const { SMTPServer } = require('..');
    let saved;
    const { server, port } = await start(SMTPServer, {
        authOptional: true,
        onData(stream, session, callback) {
            saved = save(stream).then(
                () => callback(),
                err => {
                    callback(err);
                    throw err;
                }
            );
        }
    });
    try {
        const client = await Client.open(port);
        const reply = await sendMail(client, body);
        await saved;
        client.destroy();
        return reply;
    } finally {
        await closeServer(server);
    }
}

function tmpFile(name) {
    return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'smtp-rs-pipe-')), name);
}

test('pipeTo(Bun.file(path).writer()) saves the message (bun-smtp callbacks page)', { skip: !IS_BUN && 'Bun only' }, async () => {
    const file = tmpFile('message.eml');
    const big = 'Subject: big\r\n\r\n' + ('y'.repeat(998) + '\r\n').repeat(2000);
    const reply = await withMessage(stream => stream.pipeTo(globalThis.Bun.file(file).writer()), big);
    assert.equal(reply, '250 OK: message queued');
    assert.equal(fs.readFileSync(file, 'latin1'), big);
});

test('pipeTo(fs.createWriteStream()) resolves once the file is written', async () => {
    const file = tmpFile('message.eml');
    const big = 'Subject: big\r\n\r\n' + ('z'.repeat(998) + '\r\n').repeat(2000);
    let closed = false;
    const reply = await withMessage(async stream => {
        const out = fs.createWriteStream(file);
        out.on('close', () => (closed = true));
        await stream.pipeTo(out);
        assert.equal(fs.readFileSync(file, 'latin1'), big);
        assert.ok(out.writableFinished);
    }, big);
    assert.equal(reply, '250 OK: message queued');
    await until(() => closed, 'the file stream to close');
});

test('pipeTo(Writable) keeps backpressure, and preventClose leaves it open', async () => {
    const big = 'Subject: big\r\n\r\n' + ('w'.repeat(998) + '\r\n').repeat(3000);
    let received = 0;
    let maxBuffered = 0;
    let maxChunk = 0;
    const slow = new Writable({
        highWaterMark: 16 * 1024,
        write(chunk, encoding, callback) {
            received += chunk.length;
            maxChunk = Math.max(maxChunk, chunk.length);
            maxBuffered = Math.max(maxBuffered, this.writableLength);
            setImmediate(callback);
        }
    });
    await withMessage(stream => stream.pipeTo(slow, { preventClose: true }), big);
    assert.equal(received, big.length);
    assert.equal(slow.writableEnded, false);
    // the pipe stops at the high-water mark: at most one chunk goes over it
    assert.ok(maxBuffered <= 16 * 1024 + maxChunk, `buffered ${maxBuffered}, largest chunk ${maxChunk}`);
    slow.end();
});

test('pipeTo(a sink whose write() returns promises) writes one chunk at a time, flushes and ends', async () => {
    const file = tmpFile('message.eml');
    const big = 'Subject: big\r\n\r\n' + ('v'.repeat(998) + '\r\n').repeat(2000);
    const calls = [];
    let inFlight = 0;
    let maxInFlight = 0;
    let handle;
    const sink = {
        async write(chunk) {
            inFlight++;
            maxInFlight = Math.max(maxInFlight, inFlight);
            handle = handle || (await fs.promises.open(file, 'w'));
            await handle.write(chunk);
            inFlight--;
            calls.push('write');
            return chunk.length;
        },
        flush() {
            calls.push('flush');
            return handle.sync();
        },
        end() {
            calls.push('end');
            return handle.close();
        }
    };
    await withMessage(stream => stream.pipeTo(sink), big);
    assert.equal(maxInFlight, 1);
    assert.deepEqual(calls.slice(-2), ['flush', 'end']);
    assert.equal(fs.readFileSync(file, 'latin1'), big);
});

test('pipeTo(WritableStream) still works', async () => {
    const chunks = [];
    await withMessage(stream => stream.pipeTo(new WritableStream({ write: chunk => void chunks.push(Buffer.from(chunk)) })));
    assert.equal(Buffer.concat(chunks).toString('latin1'), MESSAGE);
});

// ---------------------------------------------------------------------------
// item 4: server.server has the net.Server surface

test('server.server: maxConnections, connections, [Symbol.asyncDispose]', async () => {
    const { SMTPServer } = require('..');
    const { server, port } = await start(SMTPServer, { authOptional: true });
    const facade = server.server;
    assert.equal(facade.maxConnections, undefined);
    const first = await Client.open(port);
    assert.equal(facade.connections, 1);
    facade.maxConnections = 1;
    const second = await Client.connect(port);
    assert.equal(await second.read('the refusal'), '421 mx.test Too many connected clients, try again in a moment');
    await second.waitClose();
    first.destroy();
    await until(() => server.connections.size === 0, 'the connection to close');
    assert.equal(typeof facade[Symbol.asyncDispose], 'function');
    let closed = false;
    server.once('close', () => (closed = true));
    await deadline(facade[Symbol.asyncDispose](), WAIT, 'asyncDispose');
    assert.equal(facade.listening, false);
    await until(() => closed, "the server's close event");
    await facade[Symbol.asyncDispose]();
});

// ---------------------------------------------------------------------------
// a client that leaves while a handler is pending (nodemailer's pool test: the client's
// socket timeout fires while onRcptTo has not answered)

test('a client that leaves while onRcptTo is pending: onClose fires, the connection is gone, close() completes, the late callback is harmless', async () => {
    const result = await same(async SMTPServer => {
        const events = [];
        let pending;
        let closed;
        const gone = new Promise(resolve => (closed = resolve));
        const { server, port } = await start(SMTPServer, {
            disabledCommands: ['STARTTLS', 'AUTH'],
            onRcptTo(address, session, callback) {
                events.push('onRcptTo ' + address.address);
                pending = callback;
            },
            onClose() {
                events.push('onClose');
                closed();
            }
        });
        let stopped = false;
        try {
            const client = await Client.open(port);
            await client.cmd('MAIL FROM:<a@example.com>');
            client.write('RCPT TO:<b@example.com>\r\n');
            await until(() => pending, 'onRcptTo to be called');
            client.destroy();
            await deadline(gone, WAIT, 'onClose after the client left');
            const left = server.connections.size;
            await closeServer(server);
            stopped = true;
            pending();
            return [events, left];
        } finally {
            if (!stopped) {
                await closeServer(server);
            }
        }
    });
    assert.deepEqual(result, [['onRcptTo b@example.com', 'onClose'], 0]);
});

test("onMailFrom's and onRcptTo's address objects are the envelope's: what a handler stores on them is in onData's session", async () => {
    const seen = await same(async SMTPServer => {
        let envelope = null;
        const { server, port } = await start(SMTPServer, {
            disabledCommands: ['AUTH', 'STARTTLS'],
            onMailFrom(address, session, callback) {
                address.tag = 'sender';
                callback();
            },
            onRcptTo(address, session, callback) {
                address.tag = 'rcpt-' + address.args.N;
                callback();
            },
            onData(stream, session, callback) {
                envelope = { mailFrom: session.envelope.mailFrom.tag, rcptTo: session.envelope.rcptTo.map(rcpt => [rcpt.address, rcpt.tag]) };
                stream.resume();
                stream.on('end', () => callback());
            }
        });
        try {
            const client = await Client.open(port);
            await client.cmd('EHLO client.test');
            await client.cmd('MAIL FROM:<a@example.com>');
            for (const [address, n] of [['one@example.com', 1], ['two@example.com', 2], ['ONE@example.com', 3]]) {
                assert.match(await client.cmd(`RCPT TO:<${address}> N=${n}`), /^250 /);
            }
            assert.match(await client.cmd('DATA'), /^354 /);
            client.write(MESSAGE + '.\r\n');
            const reply = await client.read('the reply to the message');
            client.destroy();
            return { reply, envelope };
        } finally {
            await closeServer(server);
        }
    });
    assert.deepEqual(seen.envelope, {
        mailFrom: 'sender',
        rcptTo: [
            ['ONE@example.com', 'rcpt-3'],
            ['two@example.com', 'rcpt-2']
        ]
    });
});

test('the server keeps its listeners where EventEmitter does: eventNames(), any event name, removeAllListeners(), and a connect listener added while listening', async () => {
    const seen = await same(async SMTPServer => {
        const { server, port } = await start(SMTPServer, { disableReverseLookup: true, logger: false, authOptional: true });
        const result = { initial: server.eventNames() };
        try {
            // names that are fields of the server's own helpers are ordinary event names
            const order = [];
            server.on('dispatch', () => order.push('dispatch event'));
            server.on('_conns', () => order.push('_conns event'));
            server.emit('dispatch');
            server.emit('_conns');
            // a connect listener added while listening runs before the next greeting
            server.on('connect', info => order.push(`connect ${info.remoteAddress}`));
            const client = await Client.open(port);
            order.push('greeting');
            await client.cmd('QUIT');
            result.order = order;
            result.names = server.eventNames().sort();
            // without listeners the server still serves
            server.removeAllListeners();
            result.after = server.eventNames();
            const again = await Client.open(port);
            result.noop = (await again.cmd('NOOP')).slice(0, 3);
            again.destroy();
            return result;
        } finally {
            await closeServer(server);
        }
    });
    assert.deepEqual(seen.initial, []);
    assert.deepEqual(seen.order, ['dispatch event', '_conns event', 'connect 127.0.0.1', 'greeting']);
    assert.deepEqual(seen.after, []);
});
