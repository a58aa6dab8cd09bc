'use strict';
// Integrity soak: many messages of random sizes (0 to 1 MiB, log-uniform) full of
// dot-leading lines, bare CR/LF and binary bytes, over many connections, to a server in
// its own process whose onData hashes what it receives and answers with the digest.
// Every 250 must carry the digest and length of what was sent (zero lost, zero
// corrupted), the server must have delivered exactly as many messages as got 250, and
// its memory must stay flat over the run.
//
//   node scripts/soak.js [--messages 100000] [--connections 50] [--max-size 1048576]
//                        [--seed N] [--json FILE]
//
// `npm run soak` runs the full size; __test__/soak.test.js a short one (through
// `soak(options)`, exported). Runs under Bun
// too (`bun scripts/soak.js`). Linux only for the memory figures (/proc).

const crypto = require('node:crypto');
const fs = require('node:fs');
const { ChildServer, MiB } = require('../__test__/helpers/child-server.js');
const { Client, dotStuff } = require('../__test__/helpers/smtp-client.js');

function parseArgs(argv) {
    const opts = { messages: 100000, connections: 50, maxSize: MiB, seed: (Date.now() % 1e9) + 1, json: null };
    for (let i = 0; i < argv.length; i++) {
        const next = () => argv[++i];
        switch (argv[i]) {
            case '--messages':
                opts.messages = Number(next());
                break;
            case '--connections':
                opts.connections = Number(next());
                break;
            case '--max-size':
                opts.maxSize = Number(next());
                break;
            case '--seed':
                opts.seed = Number(next());
                break;
            case '--json':
                opts.json = next();
                break;
            default:
                console.error(`soak: unknown argument ${argv[i]}`);
                process.exit(2);
        }
    }
    return opts;
}

/** xorshift32: the same seed gives the same run. */
function generator(seed) {
    let x = seed >>> 0 || 1;
    return () => {
        x ^= x << 13;
        x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5;
        x >>>= 0;
        return x / 4294967296;
    };
}

/** 2 MiB of material: text lines, lines with leading dots, bare CR and LF, binary runs. */
function makePool(random) {
    const parts = [];
    let size = 0;
    while (size < 2 * MiB) {
        const r = random();
        let part;
        if (r < 0.3) {
            part = Buffer.from('.'.repeat(1 + Math.floor(random() * 3)) + 'leading dots\r\n');
        } else if (r < 0.5) {
            part = crypto.randomBytes(1 + Math.floor(random() * 300));
        } else if (r < 0.55) {
            part = Buffer.from(['\r', '\n', '.\n', '\r.\r', '\n.\r\n', '\r\n.\r'][Math.floor(random() * 6)]);
        } else {
            part = Buffer.from('Some text of a line ' + 'x'.repeat(Math.floor(random() * 70)) + '\r\n');
        }
        parts.push(part);
        size += part.length;
    }
    return Buffer.concat(parts);
}

/** A body of about `size` bytes ending with CRLF (or empty). */
function body(pool, random, size) {
    if (size < 2) {
        return Buffer.alloc(0);
    }
    const start = Math.floor(random() * (pool.length - size));
    return Buffer.concat([pool.subarray(start, start + size - 2), Buffer.from('\r\n')]);
}

function write(socket, data) {
    if (socket.write(data)) {
        return Promise.resolve();
    }
    return new Promise(resolve => {
        const done = () => {
            socket.removeListener('drain', done);
            socket.removeListener('close', done);
            resolve();
        };
        socket.on('drain', done);
        socket.on('close', done);
    });
}

/**
 * Sends `opts.messages` messages of random sizes (up to `opts.maxSize`, from `opts.seed`)
 * over `opts.connections` connections to the server on `port`, checking each 250's digest;
 * counts into `result` (sent, accepted, corrupted, lost, bytes, failures). `onMessage`
 * is called after each accepted message. Rejects on the first client error.
 */
async function sendMessages(port, opts, result, onMessage = () => {}) {
    const random = generator(opts.seed);
    const pool = makePool(random);
    const maxExp = Math.log2(opts.maxSize + 1);
    let next = 0;

    async function connection() {
        const client = await Client.open(port);
        try {
            while (next < opts.messages) {
                next++;
                const size = Math.floor(2 ** (random() * maxExp)) - 1;
                const message = body(pool, random, Math.min(size, opts.maxSize));
                const digest = crypto.createHash('sha256').update(message).digest('hex');
                client.write('MAIL FROM:<soak@example.com>\r\nRCPT TO:<rcpt@example.com>\r\nDATA\r\n');
                const envelope = await client.readN(3, 'the envelope replies', 30000);
                if (envelope[0] !== '250 Accepted' || envelope[1] !== '250 Accepted' || !envelope[2].startsWith('354 ')) {
                    throw new Error(`unexpected envelope replies ${JSON.stringify(envelope)}`);
                }
                result.sent++;
                await write(client.socket, Buffer.concat([dotStuff(message), Buffer.from('.\r\n')]));
                let reply;
                try {
                    reply = await client.read('the reply to the message', 60000);
                } catch (err) {
                    result.lost++;
                    throw err;
                }
                if (reply === `250 OK ${digest} ${message.length}`) {
                    result.accepted++;
                    result.bytes += message.length;
                    onMessage();
                } else if (reply.startsWith('250 ')) {
                    result.corrupted++;
                    result.failures.push({ size: message.length, expected: digest, reply });
                } else {
                    result.lost++;
                    result.failures.push({ size: message.length, reply });
                }
            }
            client.write('QUIT\r\n');
            await client.read('the reply to QUIT');
        } finally {
            client.destroy();
        }
    }

    await Promise.all(Array.from({ length: opts.connections }, connection));
}

/** Runs the soak; resolves with the report ({ ok, problems, ... }). */
async function soak(options = {}) {
    const opts = { ...parseArgs([]), ...options };
    const server = await ChildServer.start({ options: { size: opts.maxSize * 2 } });
    const result = {
        runtime: process.versions.bun ? `Bun ${process.versions.bun}` : `Node ${process.version}`,
        seed: opts.seed,
        messages: opts.messages,
        connections: opts.connections,
        sent: 0,
        accepted: 0,
        corrupted: 0,
        lost: 0,
        bytes: 0,
        failures: []
    };
    const samples = [];
    const sampler = setInterval(() => {
        const m = server.memory();
        if (m) {
            samples.push(m.rss);
        }
    }, 500);
    const started = Date.now();
    let lastReport = started;

    // every 10 s: the server's RSS and its JavaScript heap (after a collection there)
    result.progress = [];
    const progress = async () => {
        const at = { messages: result.accepted };
        const stats = await server.stats().catch(() => null);
        const m = server.memory();
        at.rssMiB = m ? +(m.rss / MiB).toFixed(1) : null;
        at.heapMiB = stats ? +(stats.heapUsed / MiB).toFixed(1) : null;
        result.progress.push(at);
        console.log(`soak: ${at.messages}/${opts.messages} messages, ${(result.bytes / 1e9).toFixed(2)} GB, server RSS ${at.rssMiB} MiB, JS heap ${at.heapMiB} MiB`);
    };

    let error = null;
    try {
        await sendMessages(server.port, opts, result, () => {
            if (Date.now() - lastReport > 10000) {
                lastReport = Date.now();
                progress();
            }
        });
    } catch (err) {
        error = err;
    }
    clearInterval(sampler);
    result.seconds = (Date.now() - started) / 1000;
    const stats = await server.stats().catch(() => null);
    result.delivered = stats ? stats.delivered : null;
    result.connectionsLeft = stats ? stats.open : null;
    server.close();
    let timer;
    const exit = await Promise.race([server.exited, new Promise(resolve => (timer = setTimeout(() => resolve(null), 10000)))]);
    clearTimeout(timer);
    server.kill();
    result.exitedByItself = !!(exit && exit.code === 0);

    // memory: the first quarter is the warm-up (pools, JIT, allocator arenas fill up);
    // flat means the last quarter's median is close to the second quarter's
    const median = list => {
        const sorted = [...list].sort((a, b) => a - b);
        return sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0;
    };
    const quarter = Math.max(1, Math.floor(samples.length / 4));
    const toMiB = bytes => +(bytes / MiB).toFixed(1);
    result.rssMiB = {
        first: toMiB(median(samples.slice(0, quarter))),
        second: toMiB(median(samples.slice(quarter, 2 * quarter))),
        last: toMiB(median(samples.slice(-quarter))),
        peak: toMiB(Math.max(0, ...samples)),
        // one sample in ten (every 5 s), to see the shape of the run
        trace: samples.filter((_, i) => i % 10 === 0).map(toMiB)
    };
    const growth = result.rssMiB.last - result.rssMiB.second;
    const problems = [];
    if (error) {
        problems.push(`client error: ${error.message}`);
    }
    if (result.accepted !== opts.messages) {
        problems.push(`${result.accepted} of ${opts.messages} messages accepted`);
    }
    if (result.corrupted || result.lost) {
        problems.push(`${result.corrupted} corrupted, ${result.lost} lost`);
    }
    if (result.delivered !== result.accepted) {
        problems.push(`the server delivered ${result.delivered} messages for ${result.accepted} replies 250`);
    }
    if (result.connectionsLeft !== 0) {
        problems.push(`${result.connectionsLeft} connections left open`);
    }
    if (samples.length >= 8 && growth > 64) {
        problems.push(`server RSS grew by ${growth.toFixed(1)} MiB between the second and the last quarter of the run`);
    }
    if (!result.exitedByItself) {
        problems.push('the server process did not exit by itself after close()');
    }
    result.ok = problems.length === 0;
    result.problems = problems;
    console.log(
        `soak (${result.runtime}): ${result.accepted}/${opts.messages} messages over ${opts.connections} connections, ` +
            `${(result.bytes / 1e9).toFixed(2)} GB in ${result.seconds.toFixed(1)} s; ${result.corrupted} corrupted, ${result.lost} lost, ` +
            `${result.delivered} delivered; server RSS (quarter medians) ${result.rssMiB.first} → ${result.rssMiB.second} → ${result.rssMiB.last} MiB, peak ${result.rssMiB.peak} MiB; seed ${opts.seed}`
    );
    if (opts.json) {
        fs.writeFileSync(opts.json, JSON.stringify(result, null, 2) + '\n');
    }
    return result;
}

if (require.main === module) {
    soak(parseArgs(process.argv.slice(2))).then(
        result => {
            if (!result.ok) {
                console.error('soak: FAILED: ' + result.problems.join('; '));
                process.exit(1);
            }
        },
        err => {
            console.error(err);
            process.exit(1);
        }
    );
}

module.exports = { soak, sendMessages };
