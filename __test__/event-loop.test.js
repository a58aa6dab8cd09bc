'use strict';
// Where connections are served: under Node, a connection whose commands wait for
// handlers runs on the JavaScript thread's event loop (the `eventLoop` option); the
// others, and every connection under Bun, on the native threads. The replies, the
// handler calls and the bytes must be the same either way.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { IS_REF, IS_BUN, createServer, listen, closeServer, Client, transaction, until, sleep, sha256, writeRepeated, runChild } = require('./helpers/smtp-client.js');

const skip = IS_REF && 'smtp-server has no eventLoop option';

/** A session with every kind of question: MAIL, RCPT (one refused), a message, a pipelined group, RSET. */
async function script(port) {
    const client = await Client.open(port);
    const seen = [client.greeting];
    seen.push(await client.cmd('EHLO client.example'));
    seen.push(await client.cmd('MAIL FROM:<a@example.com> SIZE=100'));
    seen.push(await client.cmd('RCPT TO:<refused@example.com>'));
    seen.push(await client.cmd('RCPT TO:<b@example.com>'));
    seen.push(await client.cmd('DATA'));
    client.write('Subject: one\r\n\r\nbody\r\n.\r\n');
    seen.push(await client.read('the reply to the message'));
    client.write('MAIL FROM:<c@example.com>\r\nRCPT TO:<d@example.com>\r\nRCPT TO:<e@example.com>\r\nDATA\r\n');
    seen.push(...(await client.readN(4, 'the pipelined replies')));
    client.write('two\r\n.\r\nRSET\r\nQUIT\r\n');
    seen.push(...(await client.readN(3, 'the last replies')));
    await client.waitClose();
    return seen;
}

/** Handlers that record what they were asked, and a server with them. */
function recordingServer(extra = {}) {
    const calls = [];
    const server = createServer({
        onMailFrom(address, session, callback) {
            calls.push(['mail', address.address, session.envelope.rcptTo.length]);
            callback();
        },
        onRcptTo(address, session, callback) {
            calls.push(['rcpt', address.address]);
            callback(address.address.startsWith('refused') ? Object.assign(new Error('No such user'), { responseCode: 550 }) : null);
        },
        onData(stream, session, callback) {
            const chunks = [];
            stream.on('data', c => chunks.push(c));
            stream.on('end', () => {
                calls.push(['data', Buffer.concat(chunks).toString(), session.envelope.rcptTo.map(r => r.address)]);
                callback(null, `got ${Buffer.concat(chunks).length}`);
            });
        },
        ...extra
    });
    return { server, calls };
}

test('the same session gets the same replies and handler calls on the event loop and on the native threads', { skip }, async () => {
    const results = [];
    for (const eventLoop of [undefined, false]) {
        const { server, calls } = recordingServer(eventLoop === undefined ? {} : { eventLoop });
        const port = await listen(server);
        try {
            const seen = await script(port);
            await until(() => server.stats().connections === 0, 'the connection to close');
            results.push({ seen, calls, onLoop: server.stats().eventLoopConnections });
        } finally {
            await closeServer(server);
        }
    }
    const [loop, threads] = results;
    assert.deepEqual(loop.seen, threads.seen);
    assert.deepEqual(loop.calls, threads.calls);
    assert.deepEqual(loop.calls, [
        ['mail', 'a@example.com', 0],
        ['rcpt', 'refused@example.com'],
        ['rcpt', 'b@example.com'],
        ['data', 'Subject: one\r\n\r\nbody\r\n', ['b@example.com']],
        ['mail', 'c@example.com', 0],
        ['rcpt', 'd@example.com'],
        ['rcpt', 'e@example.com'],
        ['data', 'two\r\n', ['d@example.com', 'e@example.com']]
    ]);
    assert.equal(loop.seen[6], '250 got 22');
    // under Bun, whose loop is not libuv, every connection stays on the native threads
    assert.equal(loop.onLoop, IS_BUN ? 0 : 1);
    assert.equal(threads.onLoop, 0);
});

test('connections that ask nothing, and implicit TLS listeners, stay on the native threads', { skip }, async () => {
    const plain = createServer({});
    let port = await listen(plain);
    try {
        const client = await Client.open(port);
        assert.equal(await transaction(client, 'x\r\n'), '250 OK: message queued');
        await client.cmd('QUIT');
        assert.equal(plain.stats().eventLoopConnections, 0);
    } finally {
        await closeServer(plain);
    }
    const secure = createServer({ secure: true, onData: (stream, session, callback) => stream.resume().on('end', () => callback()) });
    port = await listen(secure);
    try {
        const client = await Client.openTls(port);
        await client.cmd('EHLO client.example');
        assert.equal(await transaction(client, 'x\r\n'), '250 OK: message queued');
        await client.cmd('QUIT');
        assert.equal(secure.stats().eventLoopConnections, 0);
        assert.equal(secure.stats().connectionsTotal, 1);
    } finally {
        await closeServer(secure);
    }
});

test('an 8 MiB message read slowly (the stream paused after every piece) arrives whole', { skip, timeout: 60000 }, async () => {
    const body = Buffer.from(crypto.randomBytes(6 * 1024 * 1024).toString('base64').replace(/(.{76})/g, '$1\r\n') + '\r\n');
    let got = null;
    const server = createServer({
        onData(stream, session, callback) {
            const chunks = [];
            stream.on('data', chunk => {
                chunks.push(chunk);
                // a slow consumer: the server must stop reading, not buffer the rest
                stream.pause();
                setTimeout(() => stream.resume(), 2);
            });
            stream.on('end', () => {
                got = Buffer.concat(chunks);
                callback();
            });
        }
    });
    const port = await listen(server);
    try {
        const client = await Client.open(port);
        await client.cmd('EHLO client.example');
        assert.equal(await client.cmd('MAIL FROM:<a@example.com>'), '250 Accepted');
        assert.equal(await client.cmd('RCPT TO:<b@example.com>'), '250 Accepted');
        assert.equal(await client.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>');
        await writeRepeated(client.socket, body, body.length);
        client.write('.\r\n');
        assert.equal(await client.read('the reply to the message', 40000), '250 OK: message queued');
        assert.equal(sha256(got), sha256(body));
        await client.cmd('QUIT');
        assert.equal(server.stats().eventLoopConnections, IS_BUN ? 0 : 1);
    } finally {
        await closeServer(server);
    }
});

test('replies wait for a client that does not read, and all arrive once it does', { skip, timeout: 60000 }, async () => {
    const server = createServer({ onMailFrom: (address, session, callback) => callback() });
    const port = await listen(server);
    try {
        const client = await Client.open(port);
        await client.cmd('EHLO client.example');
        // 200,000 pipelined NOOPs, 1.6 MB of replies, with the client's reading paused:
        // the server's writes must wait for the socket, and its reading for the writes
        const count = 200000;
        client.socket.pause();
        const writing = writeRepeated(client.socket, Buffer.from('NOOP\r\n'.repeat(1000)), count * 6, 40000);
        await sleep(300);
        client.socket.resume();
        await writing;
        const replies = await client.readN(count, 'every NOOP reply', 40000);
        assert.equal(replies.length, count);
        assert.ok(replies.every(r => r === '250 OK'));
        assert.equal(await client.cmd('MAIL FROM:<a@example.com>'), '250 Accepted');
        await client.cmd('QUIT');
    } finally {
        await closeServer(server);
    }
});

test('socketTimeout still closes an idle connection, and a client reset mid-message leaves nothing behind', { skip }, async () => {
    const aborted = [];
    const server = createServer({
        socketTimeout: 300,
        onData(stream, session, callback) {
            stream.on('error', err => aborted.push(err.code || err.message));
            stream.on('data', () => {});
            stream.on('end', () => callback());
        }
    });
    const port = await listen(server);
    try {
        const idle = await Client.open(port);
        await idle.cmd('EHLO client.example');
        const started = Date.now();
        const reply = await idle.read('the timeout reply', 3000);
        assert.match(reply, /^421 /);
        await idle.waitClose();
        assert.ok(Date.now() - started < 2500);

        const client = await Client.open(port);
        await client.cmd('EHLO client.example');
        await client.cmd('MAIL FROM:<a@example.com>');
        await client.cmd('RCPT TO:<b@example.com>');
        assert.equal(await client.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>');
        client.write('part of a body\r\n');
        await sleep(50);
        client.socket.resetAndDestroy();
        await until(() => server.stats().connections === 0, 'the reset connection to close');
        await until(() => aborted.length > 0 || IS_BUN, 'the stream to see the abort');
    } finally {
        await closeServer(server);
    }
});

test('a server in a worker thread serves on the worker, and ending the worker with a connection open is clean', { skip, timeout: 30000 }, async () => {
    const result = await runChild(
        `
        const { Worker } = require('node:worker_threads');
                const worker = new Worker(\`
            const { parentPort } = require('node:worker_threads');
            const { SMTPServer } = require(process.env.SMTP_MODULE);
            const server = new SMTPServer({ authOptional: true, disableReverseLookup: true, logger: false,
                onData(stream, session, callback) { stream.resume(); stream.on('end', () => callback(null, 'worker ok')); } });
            server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.server.address().port));
            parentPort.on('message', () => parentPort.postMessage('stats ' + server.stats().eventLoopConnections));
        \`, { eval: true, env: process.env });
        worker.once('message', port => {
            const socket = net.connect(port, '127.0.0.1');
            const steps = ['EHLO x\\r\\n', 'MAIL FROM:<a@example.com>\\r\\n', 'RCPT TO:<b@example.com>\\r\\n', 'DATA\\r\\n', 'hi\\r\\n.\\r\\n'];
            let buffer = '';
            let replies = 0;
            socket.on('data', d => {
                buffer += d;
                let end;
                while ((end = buffer.indexOf('\\r\\n')) >= 0) {
                    const line = buffer.slice(0, end);
                    buffer = buffer.slice(end + 2);
                    if (!/^\\d{3} /.test(line)) continue;
                    replies++;
                    if (replies <= steps.length) {
                        socket.write(steps[replies - 1]);
                    } else if (line === '250 worker ok') {
                        worker.once('message', m => {
                            console.log(m);
                            // the connection stays open while the worker ends
                            worker.terminate().then(() => {
                                console.log('terminated');
                                socket.destroy();
                            });
                        });
                        worker.postMessage('stats');
                    }
                }
            });
        });
        `,
        20000
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `stats ${IS_BUN ? 0 : 1}\nterminated\n`);
});

test('a process whose loop ends with a connection still open on it exits cleanly', { skip, timeout: 30000 }, async () => {
    const result = await runChild(
        `
                const { SMTPServer } = require(process.env.SMTP_MODULE);
        const server = new SMTPServer({ authOptional: true, disableReverseLookup: true, logger: false,
            onMailFrom: (address, session, callback) => callback() });
        server.listen(0, '127.0.0.1', () => {
            const socket = net.connect(server.server.address().port, '127.0.0.1');
            socket.once('data', () => {
                socket.write('EHLO x\\r\\n');
                socket.once('data', () => {
                    console.log('greeted');
                    // nothing keeps the loop alive now: it ends with the connection open
                    server.server.unref();
                    socket.unref();
                });
            });
        });
        `,
        20000
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'greeted\n');
    assert.equal(result.stderr, '');
});

test('options given as eventLoop: false keep working after a change through server.options', { skip }, async () => {
    const { server } = recordingServer({ eventLoop: false });
    const port = await listen(server);
    try {
        let client = await Client.open(port);
        assert.equal(await transaction(client, 'x\r\n'), '250 got 3');
        await client.cmd('QUIT');
        assert.equal(server.stats().eventLoopConnections, 0);
        server.options.eventLoop = true;
        client = await Client.open(port);
        assert.equal(await transaction(client, 'x\r\n'), '250 got 3');
        await client.cmd('QUIT');
        assert.equal(server.stats().eventLoopConnections, IS_BUN ? 0 : 1);
    } finally {
        await closeServer(server);
    }
});
