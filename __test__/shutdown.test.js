'use strict';

// Graceful shutdown of a server process (under the runtime running this file, Node or
// Bun): close() while clients are busy sending stops accepting at once, lets the
// transactions in flight finish within closeTimeout, then sends 421 and closes; the
// process exits by itself, and every message that got a 250 was delivered.

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const crypto = require('node:crypto');

const { deadline, sleep, Client } = require('./helpers/smtp-client.js');
const { ChildServer } = require('./helpers/child-server.js');

/** Sends messages until the server says 421 or hangs up; returns what happened to each. */
async function keepSending(port, stats) {
    const client = await Client.open(port);
    try {
        for (let i = 0; ; i++) {
            const body = crypto.randomBytes(1 + ((i * 7919) % 20000)).toString('base64').replace(/.{76}/g, '$&\r\n') + '\r\n';
            const digest = crypto.createHash('sha256').update(body).digest('hex');
            const replies = [];
            try {
                for (const cmd of ['MAIL FROM:<s@example.com>', 'RCPT TO:<r@example.com>', 'DATA']) {
                    const reply = await client.cmd(cmd, 10000);
                    replies.push(reply);
                    if (!/^(250|354) /.test(reply)) {
                        throw Object.assign(new Error('refused'), { reply });
                    }
                }
                client.write(body + '.\r\n');
                stats.sent++;
                const reply = await client.read('the reply to the message', 10000);
                if (reply === `250 OK ${digest} ${body.length}`) {
                    stats.accepted.push(digest);
                    continue;
                }
                stats.others.push(reply);
                return;
            } catch (err) {
                if (err.reply) {
                    stats.others.push(err.reply);
                    return;
                }
                if (client.closed || client.ended) {
                    stats.others.push('closed');
                    return;
                }
                throw err;
            }
        }
    } finally {
        client.destroy();
    }
}

function connectOutcome(port) {
    return new Promise(resolve => {
        const socket = net.connect(port, '127.0.0.1');
        socket.once('error', err => resolve(err.code));
        socket.once('connect', () => {
            socket.destroy();
            resolve('connected');
        });
    });
}

test('close() under load: in-flight transactions finish, then 421; the process exits by itself; no 250 is lost', { timeout: 60000 }, async () => {
    const server = await ChildServer.start({ options: { closeTimeout: 2000 }, delay: 150, log: true });
    try {
        const stats = { sent: 0, accepted: [], others: [] };
        const clients = Array.from({ length: 20 }, () => keepSending(server.port, stats));
        await sleep(700);
        const acceptedBeforeClose = stats.accepted.length;
        server.close();
        await sleep(50);
        assert.equal(await connectOutcome(server.port), 'ECONNREFUSED', 'no new connection once close() was called');
        await deadline(Promise.all(clients), 20000, 'the clients to be turned away');
        const exit = await deadline(server.exited, 10000, 'the server process to exit by itself');
        assert.deepEqual(exit, { code: 0, signal: null }, `exit status (stderr: ${server.stderr.slice(0, 1000)})`);
        const closed = server.take('closed');
        assert.equal(closed.length, 1, "the close callback ran before the exit");
        const delivered = new Set(server.take('delivered').map(d => d.digest));
        const lost = stats.accepted.filter(d => !delivered.has(d));
        assert.deepEqual(lost, [], 'every message that got 250 was delivered');
        assert.ok(acceptedBeforeClose > 0 && stats.accepted.length > acceptedBeforeClose, `transactions went on after close() (${acceptedBeforeClose} before, ${stats.accepted.length} in all)`);
        // each client's last word: 421 (on its next command), never a dropped transaction
        assert.equal(stats.others.length, 20);
        for (const reply of stats.others) {
            assert.equal(reply, '421 Server shutting down');
        }
        console.log(`[shutdown ${process.versions.bun ? 'Bun' : 'Node'}] ${stats.accepted.length} messages accepted (${stats.accepted.length - acceptedBeforeClose} after close()), all delivered; the process exited ${exit.code}`);
    } finally {
        server.kill();
    }
});

test('close() with a transaction slower than closeTimeout: 421 instead of 250, the process exits by itself', { timeout: 30000 }, async () => {
    const server = await ChildServer.start({ options: { closeTimeout: 400 }, delay: 1500, log: true });
    try {
        const client = await Client.open(server.port);
        assert.equal(await client.cmd('MAIL FROM:<s@example.com>'), '250 Accepted');
        assert.equal(await client.cmd('RCPT TO:<r@example.com>'), '250 Accepted');
        assert.match(await client.cmd('DATA'), /^354 /);
        client.write('slow\r\n.\r\n');
        await sleep(100);
        const started = Date.now();
        server.close();
        assert.equal(await client.read('the shutdown notice', 5000), '421 Server shutting down');
        await client.waitClose();
        const waited = Date.now() - started;
        assert.ok(waited >= 300 && waited < 1400, `closed after closeTimeout (${waited} ms), not after the handler`);
        const exit = await deadline(server.exited, 10000, 'the server process to exit by itself');
        assert.equal(exit.code, 0);
        client.destroy();
    } finally {
        server.kill();
    }
});
