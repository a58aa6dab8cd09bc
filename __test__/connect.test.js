'use strict';
// server.connect(socket): connections over sockets accepted elsewhere, and over
// in-memory Duplex streams, as smtp-server's connect() takes them.
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const crypto = require('node:crypto');
const { Duplex } = require('node:stream');
const { IS_REF, createServer, listen, closeServer, Client, transaction, dotStuff, sha256, until, sleep, deadline, runChild } = require('./helpers/smtp-client.js');

/** A net server on 127.0.0.1 that hands every socket to `smtp.connect()`. */
async function frontDoor(smtp, socketOptions) {
    const outer = net.createServer(socket => smtp.connect(socket, socketOptions));
    await new Promise(resolve => outer.listen(0, '127.0.0.1', resolve));
    return outer;
}

function closeOuter(outer) {
    return new Promise(resolve => outer.close(() => resolve()));
}

/** Two connected in-memory Duplex ends; what one writes the other reads. */
function duplexPair() {
    const make = () =>
        new Duplex({
            read() {},
            write(chunk, encoding, callback) {
                other(this).push(chunk);
                callback();
            },
            final(callback) {
                other(this).push(null);
                callback();
            }
        });
    const a = make();
    const b = make();
    const other = end => (end === a ? b : a);
    return [a, b];
}

/** Reads SMTP replies from a Duplex end. */
function replyReader(stream) {
    let buffer = '';
    const replies = [];
    const waiters = [];
    stream.on('data', chunk => {
        buffer += chunk.toString('latin1');
        let nl;
        let lines = [];
        while ((nl = buffer.indexOf('\r\n')) >= 0) {
            const line = buffer.slice(0, nl);
            buffer = buffer.slice(nl + 2);
            lines.push(line);
            if (line[3] !== '-') {
                replies.push(lines.join('\n'));
                lines = [];
            }
        }
        while (waiters.length && replies.length) {
            waiters.shift()(replies.shift());
        }
    });
    return () => deadline(new Promise(resolve => (replies.length ? resolve(replies.shift()) : waiters.push(resolve))), 5000, 'a reply');
}

test('a net.Socket accepted elsewhere: a full transaction, the socket addresses in the session', async () => {
    const got = [];
    const smtp = createServer({
        onData(stream, session, callback) {
            const chunks = [];
            stream.on('data', c => chunks.push(c));
            stream.on('end', () => {
                got.push({ body: Buffer.concat(chunks).toString(), remoteAddress: session.remoteAddress, localPort: session.localPort });
                callback(null, 'Through the front door');
            });
        }
    });
    const outer = await frontDoor(smtp);
    try {
        const client = await Client.open(outer.address().port);
        try {
            assert.equal(await transaction(client, 'Subject: x\r\n\r\n..dot\r\n'), '250 Through the front door');
            assert.equal(await client.cmd('QUIT'), '221 Bye');
            await client.waitClose();
        } finally {
            client.destroy();
        }
        assert.deepEqual(got, [{ body: 'Subject: x\r\n\r\n.dot\r\n', remoteAddress: '127.0.0.1', localPort: outer.address().port }]);
        await until(() => smtp.connections.size === 0, 'the connection to be gone');
    } finally {
        await closeOuter(outer);
    }
});

test('an in-memory Duplex with remoteAddress: greeting, EHLO, a message, QUIT ends the stream', { skip: IS_REF && 'smtp-server needs a net.Socket (setTimeout, setKeepAlive)' }, async () => {
    const got = [];
    const smtp = createServer({
        onData(stream, session, callback) {
            const chunks = [];
            stream.on('data', c => chunks.push(c));
            stream.on('end', () => {
                got.push([Buffer.concat(chunks).toString(), session.remoteAddress, session.clientHostname]);
                callback();
            });
        }
    });
    const [serverEnd, clientEnd] = duplexPair();
    serverEnd.remoteAddress = '192.0.2.7';
    serverEnd.remotePort = 4321;
    smtp.connect(serverEnd);
    const read = replyReader(clientEnd);
    let ended = false;
    clientEnd.on('end', () => (ended = true));
    assert.match(await read(), /^220 /);
    await sleep(120); // past the early-talker window
    clientEnd.write('EHLO memory.test\r\n');
    assert.match(await read(), /^250-/);
    clientEnd.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
    assert.equal(await read(), '250 Accepted');
    assert.equal(await read(), '250 Accepted');
    assert.equal(await read(), '354 End data with <CR><LF>.<CR><LF>');
    clientEnd.write('in memory\r\n.\r\nQUIT\r\n');
    assert.equal(await read(), '250 OK: message queued');
    assert.equal(await read(), '221 Bye');
    await until(() => ended, 'the server to end the stream');
    assert.deepEqual(got, [['in memory\r\n', '192.0.2.7', '[192.0.2.7]']]);
    clientEnd.end();
    await until(() => smtp.connections.size === 0, 'the connection to be gone');
});

test('socketOptions give the addresses in place of the socket\'s', async () => {
    const seen = [];
    const smtp = createServer({
        onConnect(session, callback) {
            seen.push([session.remoteAddress, session.remotePort, session.localAddress, session.localPort]);
            callback();
        }
    });
    const outer = await frontDoor(smtp, { remoteAddress: '::ffff:198.51.100.9', remotePort: 5555, localAddress: '203.0.113.1', localPort: 25 });
    try {
        const client = await Client.open(outer.address().port);
        client.destroy();
        await until(() => seen.length === 1, 'onConnect');
        assert.deepEqual(seen[0], ['198.51.100.9', 5555, '203.0.113.1', 25]);
    } finally {
        await closeOuter(outer);
        await until(() => smtp.connections.size === 0, 'the connection to be gone');
    }
});

test('STARTTLS over a handed-over socket', { skip: IS_REF && 'smtp-server would need the socket to be a net.Socket it can wrap' }, async () => {
    const got = [];
    const smtp = createServer({
        onData(stream, session, callback) {
            stream.resume();
            stream.on('end', () => {
                got.push(session.secure);
                callback();
            });
        }
    });
    const outer = await frontDoor(smtp);
    try {
        const client = await Client.open(outer.address().port);
        try {
            await client.starttls();
            assert.match(await client.cmd('EHLO again.test'), /^250/);
            assert.equal(await transaction(client, 'secret\r\n'), '250 OK: message queued');
            assert.deepEqual(got, [true]);
        } finally {
            client.destroy();
        }
    } finally {
        await closeOuter(outer);
    }
});

test('8 MiB of binary body through a handed-over socket arrives intact with a slow reader', { timeout: 60000 }, async () => {
    const body = Buffer.concat([crypto.randomBytes(8 * 1024 * 1024), Buffer.from('\r\n')]);
    let received = null;
    const smtp = createServer({
        onData(stream, session, callback) {
            const hash = crypto.createHash('sha256');
            let n = 0;
            stream.on('data', chunk => {
                hash.update(chunk);
                n += chunk.length;
                stream.pause();
                setTimeout(() => stream.resume(), 1);
            });
            stream.on('end', () => {
                received = { hash: hash.digest('hex'), n };
                callback();
            });
        }
    });
    const outer = await frontDoor(smtp);
    try {
        const client = await Client.open(outer.address().port);
        try {
            assert.equal(await transaction(client, dotStuff(body)), '250 OK: message queued');
            assert.deepEqual(received, { hash: sha256(body), n: body.length });
        } finally {
            client.destroy();
        }
    } finally {
        await closeOuter(outer);
    }
});

test('a client that resets mid-DATA over a handed-over socket: the stream errors, onClose runs', { skip: IS_REF && "smtp-server emits 'error' without a listener here and crashes" }, async () => {
    const errors = [];
    let closed = 0;
    const smtp = createServer({
        onData(stream) {
            stream.on('error', err => errors.push(err.code));
            stream.resume();
        },
        onClose() {
            closed++;
        }
    });
    const outer = await frontDoor(smtp);
    try {
        const client = await Client.open(outer.address().port);
        await client.cmd('MAIL FROM:<a@example.com>');
        await client.cmd('RCPT TO:<b@example.com>');
        await client.cmd('DATA');
        client.write('part of a message\r\n');
        await sleep(50);
        client.socket.resetAndDestroy ? client.socket.resetAndDestroy() : client.destroy();
        await until(() => errors.length === 1 && closed === 1, 'the stream error and onClose');
        assert.deepEqual(errors, ['ECONNECTION']);
    } finally {
        await closeOuter(outer);
    }
});

test('connect() and listen() on one server: both kinds of connections are served; close() waits for both', { skip: IS_REF && 'smtp-server closes only what it accepted itself' }, async () => {
    const smtp = createServer();
    const outer = await frontDoor(smtp);
    const port = await listen(smtp);
    const attached = await Client.open(outer.address().port);
    const direct = await Client.open(port);
    try {
        assert.equal(await transaction(attached, 'a\r\n'), '250 OK: message queued');
        assert.equal(await transaction(direct, 'b\r\n'), '250 OK: message queued');
        assert.equal(smtp.connections.size, 2);
        const closing = closeServer(smtp, 10000);
        assert.equal(await attached.read('the shutdown notice', 5000), '421 Server shutting down');
        assert.equal(await direct.read('the shutdown notice', 5000), '421 Server shutting down');
        await closing;
    } finally {
        attached.destroy();
        direct.destroy();
        await closeOuter(outer);
    }
});

test('without listen(), the process exits once the handed-over connection is gone', { timeout: 30000, skip: IS_REF && 'checks this package' }, async () => {
    const script = `
const net = require('node:net');
const { SMTPServer } = require(${JSON.stringify(require.resolve('..'))});
const smtp = new SMTPServer({ logger: false, disableReverseLookup: true, authOptional: true });
const outer = net.createServer(socket => { smtp.connect(socket); outer.close(); });
outer.listen(0, '127.0.0.1', () => {
  const c = net.connect(outer.address().port, '127.0.0.1');
  let text = '';
  c.on('data', d => {
    text += d;
    if (/^220 /m.test(text) && !c.sent) { c.sent = true; setTimeout(() => c.write('QUIT\\r\\n'), 150); }
  });
  c.on('close', () => console.log(JSON.stringify({ bye: /^221 Bye/m.test(text) })));
});
`;
    const result = await runChild(script, 20000);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout.trim().split('\n').pop()), { bye: true });
});

test('a client that pipelines without reading replies: reading its socket pauses, replies do not pile up', { timeout: 60000, skip: IS_REF && 'checks this package' }, async () => {
    const smtp = createServer();
    let inner = null;
    const outer = net.createServer(socket => {
        inner = socket;
        smtp.connect(socket);
    });
    await new Promise(resolve => outer.listen(0, '127.0.0.1', resolve));
    const client = await Client.open(outer.address().port);
    try {
        client.socket.pause();
        const noops = Buffer.from('NOOP\r\n'.repeat(100000));
        for (let i = 0; i < 30; i++) {
            client.socket.write(noops); // 18 MB in all, answered by 24 MB of replies
        }
        let peak = 0;
        for (let i = 0; i < 30; i++) {
            await sleep(100);
            peak = Math.max(peak, inner.writableLength);
        }
        assert.ok(peak < 4 * 1024 * 1024, `replies queued in JavaScript: ${peak} bytes`);
        client.socket.resume();
        await until(() => client.replies.length > 0, 'replies to flow again');
    } finally {
        client.destroy();
        await closeOuter(outer);
        await until(() => smtp.connections.size === 0, 'the connection to be gone');
    }
});

test('a long line on a paused handed-over socket: 421 and the socket is closed, not left half-open', { timeout: 30000, skip: IS_REF && 'checks this package' }, async () => {
    const smtp = createServer();
    const outer = await frontDoor(smtp);
    const client = await Client.open(outer.address().port);
    try {
        client.write(Buffer.alloc(4 * 1024 * 1024, 'a'));
        assert.equal(await client.read('the refusal', 10000), '421 Error: Command line too long');
        await client.waitClose('the server to close the socket', 10000);
    } finally {
        client.destroy();
        await closeOuter(outer);
    }
});
