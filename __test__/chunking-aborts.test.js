'use strict';
// A BDAT chunk cut short: by the client closing its side, by a TLS close_notify (implicit
// TLS and after STARTTLS) and by a connection reset, each in the middle of the second
// chunk of a message, after part of it reached the onData stream. Afterwards nothing is
// left: the stream errored and closed, onClose ran, the connection task is gone
// (`server.stats().connections`, `getConnections()`, `server.connections`), a new client
// still gets its message through, and `close()` calls back without waiting for
// `closeTimeout`. And STARTTLS is refused while a BDAT transaction is open.

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const tls = require('node:tls');
const { IS_REF, createServer, listen, closeServer, deadline, until, Client } = require('./helpers/smtp-client.js');

const skip = IS_REF && 'smtp-server has no CHUNKING';
// long enough that close() calling back early shows no connection was waiting for it
const CLOSE_TIMEOUT = 60000;
const FIRST = Buffer.alloc(64 * 1024, 'a');
const SECOND = Buffer.alloc(1024 * 1024, 'b');
// how much of the second chunk is sent before the connection is cut
const SENT = 300 * 1024;

/** A server with CHUNKING whose onData reads and records what each stream did. */
async function start(options = {}) {
    const seen = { streams: [], closes: 0, delivered: 0 };
    const server = createServer({
        hideCHUNKING: false,
        closeTimeout: CLOSE_TIMEOUT,
        ...options,
        onData(stream, session, callback) {
            const record = { bytes: 0, error: null, closed: false, ended: false };
            seen.streams.push(record);
            stream.on('data', chunk => {
                record.bytes += chunk.length;
            });
            stream.on('error', err => {
                record.error = err;
            });
            stream.on('close', () => {
                record.closed = true;
            });
            stream.on('end', () => {
                record.ended = true;
                seen.delivered++;
                callback(null, 'Delivered');
            });
        },
        onClose() {
            seen.closes++;
        }
    });
    server.on('error', () => {});
    const port = await listen(server);
    return { server, port, seen };
}

/** `getConnections()` of the server's listening socket. */
function openConnections(server) {
    return new Promise((resolve, reject) => server.server.getConnections((err, count) => (err ? reject(err) : resolve(count))));
}

/** A plain socket to `port` (kept, so that it can be reset even under TLS). */
function rawSocket(port) {
    return new Promise((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1');
        socket.once('connect', () => resolve(socket));
        socket.once('error', reject);
    });
}

/** The client, its plain socket, and the socket to write and end (TLS or plain). */
async function connect(port, how) {
    const raw = await rawSocket(port);
    if (how === 'implicit') {
        const client = new Client(tls.connect({ socket: raw, rejectUnauthorized: false }));
        await deadline(new Promise((resolve, reject) => (client.socket.once('secureConnect', resolve), client.socket.once('error', reject))), 10000, 'the TLS handshake');
        await client._start('EHLO client.test');
        return { client, raw };
    }
    const client = await new Client(raw)._start('EHLO client.test');
    if (how === 'starttls') {
        await client.starttls();
        assert.match(await client.cmd('EHLO client.test'), /^250[ -]/);
    }
    return { client, raw };
}

/** MAIL FROM and RCPT TO, accepted. */
async function envelope(client) {
    assert.equal(await client.cmd('MAIL FROM:<a@example.com>'), '250 Accepted');
    assert.equal(await client.cmd('RCPT TO:<b@example.com>'), '250 Accepted');
}

/** The envelope, a whole first chunk, then the start of a second one; resolves once the stream has part of it. */
async function midChunk(client, seen) {
    await envelope(client);
    client.write(Buffer.concat([Buffer.from(`BDAT ${FIRST.length}\r\n`), FIRST]));
    assert.equal(await client.read('the reply to the first chunk'), `250 OK: ${FIRST.length} bytes received`);
    client.write(Buffer.concat([Buffer.from(`BDAT ${SECOND.length} LAST\r\n`), SECOND.subarray(0, SENT)]));
    // bounded: the server reads what was sent, the stream is read as it comes
    await until(() => seen.streams.length === 1 && seen.streams[0].bytes > FIRST.length, 'part of the second chunk in the stream');
}

/** Everything the cut connection had is gone; a new client is served; close() is prompt. */
async function nothingLeft(server, port, seen, what, how) {
    await until(() => seen.closes === 1 && server.connections.size === 0, `onClose and an empty server.connections after ${what}`);
    const stream = seen.streams[0];
    await until(() => stream.closed, `the stream's close after ${what}`);
    assert.ok(stream.error, `the stream errored after ${what}`);
    assert.equal(stream.error.code, 'ECONNECTION', what);
    assert.equal(stream.ended, false, `the cut message did not end as if complete (${what})`);
    assert.ok(stream.bytes > FIRST.length && stream.bytes <= FIRST.length + SENT, `${stream.bytes} bytes reached the stream (${what})`);
    // the connection task has ended (it owned the chunk's buffer and the stream's feed)
    await until(() => server.stats().connections === 0, `no connection task left after ${what}`);
    assert.equal(await openConnections(server), 0, what);
    assert.equal(seen.delivered, 0, `nothing was delivered (${what})`);

    // the server goes on: a whole message by BDAT
    const probe = how === 'implicit' ? await Client.openTls(port) : await Client.open(port);
    try {
        await envelope(probe);
        probe.write('BDAT 5 LAST\r\nhello');
        assert.equal(await probe.read('the reply to the probe'), '250 Delivered');
        probe.write('QUIT\r\n');
        await probe.read('the reply to QUIT');
    } finally {
        probe.destroy();
    }
    // close() calls back once every connection is gone, well before closeTimeout
    const started = Date.now();
    await closeServer(server, 20000);
    assert.ok(Date.now() - started < CLOSE_TIMEOUT / 2, `close() took ${Date.now() - started} ms after ${what}`);
    assert.equal(server.stats().connections, 0);
}

const CASES = [
    { name: 'the client closes its side (FIN) mid-chunk', how: 'plain', cut: ({ client }) => client.socket.end() },
    { name: 'a connection reset (RST) mid-chunk', how: 'plain', cut: ({ raw }) => raw.resetAndDestroy() },
    { name: 'a TLS close_notify mid-chunk (implicit TLS)', how: 'implicit', options: { secure: true }, cut: ({ client }) => client.socket.end() },
    { name: 'a connection reset mid-chunk (implicit TLS)', how: 'implicit', options: { secure: true }, cut: ({ raw }) => raw.resetAndDestroy() },
    { name: 'a TLS close_notify mid-chunk (after STARTTLS)', how: 'starttls', cut: ({ client }) => client.socket.end() },
    { name: 'a connection reset mid-chunk (after STARTTLS)', how: 'starttls', cut: ({ raw }) => raw.resetAndDestroy() }
];

for (const c of CASES) {
    test(`BDAT cut short by ${c.name}: no task, buffer or stream left`, { skip, timeout: 60000 }, async () => {
        const { server, port, seen } = await start(c.options);
        try {
            const conn = await connect(port, c.how);
            try {
                await midChunk(conn.client, seen);
                c.cut(conn);
                await nothingLeft(server, port, seen, c.name, c.how);
            } finally {
                conn.client.destroy();
                conn.raw.destroy();
            }
        } finally {
            if (server.server.listening) {
                await closeServer(server, CLOSE_TIMEOUT + 10000);
            }
        }
    });
}

test('STARTTLS is refused while a BDAT transaction is open; the transaction goes on, and STARTTLS works after it', { skip, timeout: 30000 }, async () => {
    const { server, port, seen } = await start();
    const client = await Client.open(port);
    try {
        await envelope(client);
        client.write('BDAT 6\r\nfirst ');
        assert.equal(await client.read(), '250 OK: 6 bytes received');
        assert.equal(await client.cmd('STARTTLS'), '503 Error: STARTTLS not allowed during a BDAT transaction');
        // pipelined right behind a chunk, refused the same way, and what follows is still read as commands
        client.write('BDAT 7\r\nsecond STARTTLS\r\nNOOP\r\n');
        assert.deepEqual(await client.readN(3), ['250 OK: 7 bytes received', '503 Error: STARTTLS not allowed during a BDAT transaction', '250 OK']);
        client.write('BDAT 5 LAST\r\nthird');
        assert.equal(await client.read(), '250 Delivered');
        assert.equal(seen.delivered, 1);
        assert.equal(seen.streams[0].bytes, 'first second third'.length);
        // the transaction is over: STARTTLS is accepted, and a message goes through over TLS
        await client.starttls();
        assert.match(await client.cmd('EHLO client.test'), /^250[ -]/);
        await envelope(client);
        client.write('BDAT 3 LAST\r\nabc');
        assert.equal(await client.read(), '250 Delivered');
        client.write('QUIT\r\n');
        await client.read('the reply to QUIT');
    } finally {
        client.destroy();
        await closeServer(server, 20000);
    }
});

test('RSET ends the BDAT transaction: STARTTLS is accepted afterwards', { skip, timeout: 30000 }, async () => {
    const { server, port, seen } = await start();
    const client = await Client.open(port);
    try {
        await envelope(client);
        client.write('BDAT 4\r\npart');
        assert.equal(await client.read(), '250 OK: 4 bytes received');
        assert.equal(await client.cmd('RSET'), '250 Flushed');
        await until(() => seen.streams[0].closed, 'the stream of the reset message to close');
        assert.equal(seen.streams[0].error && seen.streams[0].error.code, 'ERESET');
        await client.starttls();
        assert.match(await client.cmd('EHLO client.test'), /^250[ -]/);
    } finally {
        client.destroy();
        await closeServer(server, 20000);
    }
});
