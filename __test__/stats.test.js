'use strict';
// server.stats(): live counters checked after scripted sessions.
const test = require('node:test');
const assert = require('node:assert/strict');
const { IS_REF, createServer, listen, closeServer, Client, transaction, smtpError, until } = require('./helpers/smtp-client.js');

const skip = IS_REF && 'smtp-server has no stats()';

test('counters after scripted sessions: connections, accepted and refused messages, bytes', { skip }, async () => {
    const server = createServer({
        size: 1000,
        rejectOversized: true,
        onData(stream, session, callback) {
            stream.resume();
            stream.on('end', () => callback(session.envelope.mailFrom.address === 'refused@example.com' ? smtpError('No', 554) : null));
        }
    });
    const before = server.stats();
    assert.deepEqual(before, {
        connections: 0,
        connectionsTotal: 0,
        messagesAccepted: 0,
        messagesRejected: 0,
        bytesReceived: 0,
        bytesSent: 0,
        tlsHandshakes: 0,
        tlsFailures: 0,
        errors: 0,
        eventLoopConnections: 0
    });
    const port = await listen(server);
    try {
        const client = await Client.open(port);
        assert.equal(server.stats().connections, 1);
        assert.equal(await transaction(client, 'one\r\n'), '250 OK: message queued');
        assert.equal(await transaction(client, 'two\r\n'), '250 OK: message queued');
        assert.equal(await transaction(client, 'three\r\n', 'refused@example.com'), '554 No');
        assert.equal(await transaction(client, 'x'.repeat(1500) + '\r\n'), '552 Error: message exceeds fixed maximum message size 1000');
        const mid = server.stats();
        assert.equal(mid.connections, 1);
        assert.equal(mid.connectionsTotal, 1);
        assert.equal(mid.messagesAccepted, 2);
        assert.equal(mid.messagesRejected, 2);
        assert.equal(mid.bytesReceived, client.socket.bytesWritten);
        assert.equal(mid.bytesSent, client.received);
        await client.cmd('QUIT');
        await client.waitClose();
        const second = await Client.open(port);
        second.destroy();
        await until(() => server.stats().connections === 0, 'the connections to close');
        assert.equal(server.stats().connectionsTotal, 2);
    } finally {
        await closeServer(server);
    }
    // the counters outlive close() and a second listen()
    assert.equal(server.stats().messagesAccepted, 2);
});

test('TLS handshakes and failures are counted; a failure is also an error', { skip }, async () => {
    // the built-in certificate, as smtp-server has one
    const server = createServer({ secure: true });
    server.on('error', () => {});
    const port = await listen(server);
    try {
        const client = await Client.connectTls(port);
        assert.match(await client.read(), /^220 /);
        client.destroy();
        // a plain-text client on the TLS port: the handshake fails
        const plain = await Client.connect(port);
        plain.write('EHLO me\r\n');
        await plain.waitClose();
        plain.destroy();
        await until(() => server.stats().tlsFailures === 1, 'the failed handshake to be counted');
        const s = server.stats();
        assert.equal(s.tlsHandshakes, 1);
        assert.equal(s.errors, 1);
    } finally {
        await closeServer(server);
    }
});

test('LMTP: a message is accepted when one recipient got 2xx, refused when none did', { skip }, async () => {
    const server = createServer({
        lmtp: true,
        onData(stream, session, callback) {
            stream.resume();
            stream.on('end', () => callback(null, session.envelope.rcptTo.map(r => (r.address.startsWith('full') ? smtpError('Full', 452) : 'OK'))));
        }
    });
    const port = await listen(server);
    try {
        const client = await Client.connect(port);
        await client.read();
        await client.cmd('LHLO me');
        assert.deepEqual(await transaction(client, 'a\r\n', 'a@example.com', ['ok@example.com', 'full@example.com'], 2), ['250 OK', '452 Full']);
        assert.deepEqual(await transaction(client, 'b\r\n', 'a@example.com', ['full@example.com', 'full2@example.com'], 2), ['452 Full', '452 Full']);
        client.destroy();
        const s = server.stats();
        assert.equal(s.messagesAccepted, 1);
        assert.equal(s.messagesRejected, 1);
    } finally {
        await closeServer(server);
    }
});
