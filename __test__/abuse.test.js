'use strict';

// Hostile clients at full size, against a server in its own process (so that its memory
// can be read from /proc): 100 MB of random bytes, a 10 MB line, 1,000 slowloris
// connections, 5,000 connections reset mid-greeting and mid-DATA, 100,000 pipelined
// NOOPs never read, a 200 MB message with `size: 10 MB`, 10,000 idle connections.
// After each one: the process is alive, a well-behaved client gets its 250 within 5 s,
// no connection is left open, and the memory comes back near its baseline. The figures
// are printed (the README's "Reliability" section quotes them).

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const crypto = require('node:crypto');

const { IS_REF, IS_BUN, deadline, sleep, Client, dotStuff, writeRepeated, pool } = require('./helpers/smtp-client.js');
const { ChildServer, canMeasure, openFileLimit, MiB } = require('./helpers/child-server.js');

const MB = 1000 * 1000;
const SIZE = 10 * MB;
// memory the server may keep after a scenario, over its baseline (JIT code, the
// JavaScript heap, grown pools; freed native memory goes back to the system, see
// memory.test.js), with room for the seven scenarios' sum; and the peak allowed while a
// scenario runs
const SETTLE_MARGIN = 48 * MiB;
const PEAK_LIMIT = 512 * MiB;
const RUNTIME = IS_BUN ? 'Bun' : 'Node';

const skip = !canMeasure() ? 'needs /proc (Linux)' : false;

let server;
let baseline;
const figures = [];

function mib(bytes) {
    return (bytes / MiB).toFixed(1);
}

function report(line) {
    // the figures are part of the output on purpose
    console.log(`[abuse ${RUNTIME}${IS_REF ? ' ref' : ''}] ${line}`);
}

/** A plain socket that collects what it receives (latin1) and never throws. */
function connect(port) {
    return new Promise((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1');
        socket.text = '';
        socket.on('data', d => {
            if (socket.text.length < 4096) {
                socket.text += d.toString('latin1');
            }
        });
        socket.once('connect', () => {
            socket.removeListener('error', reject);
            socket.on('error', () => {});
            resolve(socket);
        });
        socket.once('error', reject);
    });
}

/** Resolves once the socket's received text matches `re`; rejects on close or after `ms`. */
function expectText(socket, re, ms = 10000) {
    return deadline(
        new Promise((resolve, reject) => {
            const check = () => {
                if (re.test(socket.text)) {
                    cleanup();
                    resolve(socket.text);
                }
            };
            const closed = () => {
                cleanup();
                reject(new Error(`closed before ${re} (got ${JSON.stringify(socket.text.slice(0, 300))})`));
            };
            const cleanup = () => {
                socket.removeListener('data', check);
                socket.removeListener('close', closed);
            };
            socket.on('data', check);
            socket.on('close', closed);
            check();
        }),
        ms,
        `${re} from the server`
    );
}

function waitClose(socket, ms = 10000) {
    if (socket.destroyed) {
        return Promise.resolve();
    }
    return deadline(new Promise(resolve => socket.once('close', resolve)), ms, 'the connection to close');
}

/** A well-behaved client: one message, its 250 within 5 s; returns the time it took. */
async function probe(port) {
    const started = Date.now();
    const body = 'Subject: probe\r\n\r\nstill here\r\n';
    const client = await Client.open(port);
    try {
        assert.equal(await client.cmd('MAIL FROM:<probe@example.com>'), '250 Accepted');
        assert.equal(await client.cmd('RCPT TO:<probe@example.com>'), '250 Accepted');
        assert.match(await client.cmd('DATA'), /^354 /);
        client.write(body + '.\r\n');
        const reply = await client.read('the reply to the probe message');
        assert.equal(reply, `250 OK ${crypto.createHash('sha256').update(body).digest('hex')} ${body.length}`);
        client.write('QUIT\r\n');
        await client.read('the reply to QUIT');
    } finally {
        client.destroy();
    }
    const ms = Date.now() - started;
    assert.ok(ms < 5000, `the well-behaved client took ${ms} ms`);
    return ms;
}

/**
 * The checks after a scenario: alive, a 250 within 5 s, every connection gone (the JS
 * set and the native count), memory back near the baseline; records the figures.
 */
async function afterwards(name, peak, extra = '') {
    assert.ok(server.alive(), `the server process is alive after ${name} (${JSON.stringify(server.exit)}, stderr ${server.stderr.slice(0, 500)})`);
    const probeMs = await probe(server.port);
    const stats = await server.idle();
    assert.equal(stats.connections, 0, `server.connections is empty after ${name}`);
    assert.equal(stats.open, 0, `getConnections() is 0 after ${name}`);
    const after = await server.settle(baseline + SETTLE_MARGIN);
    assert.ok(peak < PEAK_LIMIT, `peak RSS ${mib(peak)} MiB during ${name}`);
    assert.ok(after <= baseline + SETTLE_MARGIN, `RSS ${mib(after)} MiB after ${name}, baseline ${mib(baseline)} MiB`);
    figures.push({ name, peak, after, probeMs });
    report(`${name}: peak RSS ${mib(peak)} MiB, after ${mib(after)} MiB (baseline ${mib(baseline)} MiB), probe 250 in ${probeMs} ms${extra ? ', ' + extra : ''}`);
    return stats;
}

test('abuse scenarios against a server process', { skip, timeout: 300000 }, async t => {
    server = await ChildServer.start({ options: { size: SIZE, name: 'mx.abuse.test' } });
    t.after(() => server.kill());
    // warm up (JIT, thread pools, buffers), then take the baseline
    for (let i = 0; i < 20; i++) {
        await probe(server.port);
    }
    await server.stats();
    baseline = server.memory().rss;
    report(`baseline RSS ${mib(baseline)} MiB`);

    await t.test('100 MB of random bytes: as commands, then as a message body (hashed)', async () => {
        const block = crypto.randomBytes(MiB);
        const stop = server.watchPeak();
        // as commands: the server refuses them and hangs up (too many unrecognized commands)
        const garbage = await connect(server.port);
        await expectText(garbage, /^220 /);
        const written = await writeRepeated(garbage, block, 100 * MB, 20000);
        await waitClose(garbage);
        assert.match(garbage.text, /\r\n(421|500) /, 'refused, then closed');
        // as a message body: every byte arrives (the sender is exempt from the size limit)
        const blockCrlf = Buffer.concat([block.subarray(0, MiB - 2), Buffer.from('\r\n')]);
        const stuffed = dotStuff(blockCrlf);
        const rounds = 100;
        const hash = crypto.createHash('sha256');
        for (let i = 0; i < rounds; i++) {
            hash.update(blockCrlf);
        }
        const body = await connect(server.port);
        await expectText(body, /^220 /);
        body.write('EHLO x\r\nMAIL FROM:<nolimit@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
        await expectText(body, /\r\n354 /);
        const started = Date.now();
        await writeRepeated(body, stuffed, stuffed.length * rounds, 30000);
        body.write('.\r\n');
        await expectText(body, new RegExp(`\\r\\n250 OK ${hash.digest('hex')} ${blockCrlf.length * rounds}\\r\\n`), 30000);
        const ms = Date.now() - started;
        body.end('QUIT\r\n');
        await waitClose(body);
        await afterwards('100 MB of random bytes', stop(), `${mib(written)} MiB written as commands before the close, ${rounds} MiB body in ${ms} ms`);
    });

    await t.test('a 10 MB line without CRLF', async () => {
        const stop = server.watchPeak();
        const socket = await connect(server.port);
        await expectText(socket, /^220 /);
        const written = await writeRepeated(socket, Buffer.alloc(64 * 1024, 'A'), 10 * MB, 20000);
        await waitClose(socket);
        assert.match(socket.text, /\r\n421 Error: Command line too long\r\n$/);
        await afterwards('a 10 MB line', stop(), `closed after ${mib(written)} MiB`);
    });

    await t.test('1,000 slowloris connections', async () => {
        const stop = server.watchPeak();
        const sockets = [];
        await pool(1000, 100, async i => {
            const s = await connect(server.port);
            sockets.push(s);
            await expectText(s, /^220 /);
            if (i % 2) {
                // half of them in DATA, the others in a command line
                s.write('EHLO slow.example\r\nMAIL FROM:<slow@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
                await expectText(s, /\r\n354 /);
            }
        });
        // one byte per connection every 250 ms, for 3 s; a well-behaved client meanwhile
        const dribble = 'Subject: slowly\r\nX-Header: ' + 'x'.repeat(64);
        let tick = 0;
        const timer = setInterval(() => {
            for (const s of sockets) {
                s.write(dribble[tick % dribble.length]);
            }
            tick++;
        }, 250);
        try {
            await sleep(1500);
            const during = await probe(server.port);
            await sleep(1500);
            const stats = await server.stats();
            assert.equal(stats.connections, 1000, 'every slow connection is still there');
            clearInterval(timer);
            for (const s of sockets) {
                s.destroy();
            }
            await afterwards('1,000 slowloris connections', stop(), `probe during the attack in ${during} ms`);
        } finally {
            clearInterval(timer);
            for (const s of sockets) {
                s.destroy();
            }
        }
    });

    await t.test('5,000 connections reset mid-greeting and mid-DATA', async () => {
        const before = await server.stats();
        const stop = server.watchPeak();
        const started = Date.now();
        await pool(2500, 100, async i => {
            const s = await connect(server.port);
            if (i % 2) {
                await expectText(s, /^2/, 10000).catch(() => {});
            }
            s.resetAndDestroy();
        });
        let dataResets = 0;
        await pool(2500, 100, async () => {
            const s = await connect(server.port);
            try {
                await expectText(s, /^220 /);
                s.write('EHLO reset.example\r\nMAIL FROM:<reset@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
                await expectText(s, /\r\n354 /);
                s.write('Subject: cut\r\n\r\n' + 'partial line\r\n'.repeat(500));
                dataResets++;
            } finally {
                s.resetAndDestroy();
            }
        });
        const ms = Date.now() - started;
        const stats = await afterwards('5,000 resets', stop(), `in ${ms} ms`);
        assert.equal(dataResets, 2500);
        if (!IS_REF) {
            assert.equal(stats.aborted - before.aborted, 2500, "every message cut short errored its stream (an 'error' listener is there)");
        }
        assert.equal(stats.delivered, before.delivered + 1, 'nothing but the probe was delivered');
    });

    await t.test('100,000 pipelined NOOPs, replies never read', async () => {
        const stop = server.watchPeak();
        const socket = await connect(server.port);
        await expectText(socket, /^220 /);
        socket.pause();
        socket.write('NOOP\r\n'.repeat(100000));
        await sleep(1500);
        const during = await probe(server.port);
        const peakWhileStalled = stop();
        // now read them all: every NOOP is answered
        let count = 0;
        let tail = '';
        const done = deadline(
            new Promise((resolve, reject) => {
                socket.on('data', d => {
                    const text = tail + d.toString('latin1');
                    const parts = text.split('\r\n');
                    tail = parts.pop();
                    count += parts.filter(l => l === '250 OK').length;
                    if (count >= 100000) {
                        resolve();
                    }
                });
                socket.on('close', () => reject(new Error(`closed after ${count} replies`)));
            }),
            30000,
            'the 100,000 NOOP replies'
        );
        socket.resume();
        await done;
        socket.end('QUIT\r\n');
        await waitClose(socket);
        assert.equal(count, 100000);
        await afterwards('100,000 pipelined NOOPs', peakWhileStalled, `probe while stalled in ${during} ms`);
    });

    await t.test('a 200 MB message with size: 10 MB gets 552', async () => {
        const stop = server.watchPeak();
        const socket = await connect(server.port);
        await expectText(socket, /^220 /);
        socket.write('EHLO big.example\r\nMAIL FROM:<big@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
        await expectText(socket, /\r\n354 /);
        const line = Buffer.alloc(64 * 1024, 'm');
        line.write('\r\n', line.length - 2);
        const started = Date.now();
        await writeRepeated(socket, line, 200 * MB - ((200 * MB) % line.length), 60000);
        socket.write('.\r\n');
        await expectText(socket, /\r\n552 Error: message exceeds fixed maximum message size 10000000\r\n/, 60000);
        const ms = Date.now() - started;
        socket.write('NOOP\r\n');
        await expectText(socket, /\r\n250 OK\r\n$/);
        socket.destroy();
        await afterwards('a 200 MB message', stop(), `refused in ${ms} ms`);
    });

    await t.test('10,000 concurrent idle connections', async () => {
        // this process and the server each hold one descriptor per connection
        const limit = openFileLimit();
        const count = Math.min(10000, limit - 200);
        assert.ok(count >= 1000, `the open-file limit (${limit}) allows too few connections`);
        const before = server.memory().rss;
        const stop = server.watchPeak();
        const sockets = [];
        const started = Date.now();
        try {
            await pool(count, 200, async () => {
                const s = await connect(server.port);
                sockets.push(s);
                await expectText(s, /^220 /, 20000);
            });
            const opened = Date.now() - started;
            const stats = await server.stats();
            assert.equal(stats.connections, count);
            const during = await probe(server.port);
            const held = server.memory().rss;
            const peak = stop();
            for (const s of sockets) {
                s.destroy();
            }
            await afterwards(`${count.toLocaleString('en-US')} idle connections`, peak, `opened in ${opened} ms, ${((held - before) / count / 1024).toFixed(1)} KiB each, probe in ${during} ms`);
        } finally {
            for (const s of sockets) {
                s.destroy();
            }
        }
    });

    server.close();
    const exit = await deadline(server.exited, 10000, 'the server process to exit after close()');
    assert.equal(exit.code, 0);
    report(`summary: ${figures.map(f => `${f.name}: peak ${mib(f.peak)} MiB`).join('; ')}`);
});
