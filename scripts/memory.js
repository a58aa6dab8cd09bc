'use strict';
// Memory that comes back: bursts of load against a server in its own process, and its
// RSS before (the baseline), during (the peak) and after each one, once the clients are
// gone, a garbage collection has run and the process has had a moment to settle. After
// every burst the RSS must be back within max(32 MiB, 25% of the burst's growth) of the
// baseline.
//
//   node scripts/memory.js [--only name,name] [--json FILE]
//
// The bursts:
//   200mb-size   a 200 MB message to a server with `size: 10 MB` (refused with 552)
//   200mb        a 200 MB message to a server without `size` (hashed, 250)
//   100mb-binary a 100 MB message of random bytes (hashed, 250)
//   10k-idle     10,000 connections opened, left idle after the greeting, then closed
//   soak         20,000 messages of random sizes up to 1 MiB over 50 connections
//
// `npm run memory` runs them all, __test__/memory.test.js all but the first;
// `bun scripts/memory.js` runs the server under Bun.
// Linux only (/proc). The figures also show where the server's RSS is: the main heap
// (`[heap]`), other anonymous memory (thread arenas, V8's heap, the addon's
// allocator), and file mappings.

const crypto = require('node:crypto');
const fs = require('node:fs');
const { ChildServer, openFileLimit, MiB } = require('../__test__/helpers/child-server.js');
const { Client, dotStuff, writeRepeated, pool, sleep } = require('../__test__/helpers/smtp-client.js');
const { sendMessages } = require('./soak.js');

const MB = 1000 * 1000;

function parseArgs(argv) {
    const opts = { only: null, json: null };
    for (let i = 0; i < argv.length; i++) {
        switch (argv[i]) {
            case '--only':
                opts.only = argv[++i].split(',');
                break;
            case '--json':
                opts.json = argv[++i];
                break;
            default:
                console.error(`memory: unknown argument ${argv[i]}`);
                process.exit(2);
        }
    }
    return opts;
}

/** Where a process's resident memory is: sums over /proc/<pid>/smaps by kind of mapping. */
function residentBreakdown(pid) {
    let text;
    try {
        text = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8');
    } catch {
        return null;
    }
    const out = { heap: 0, anonymous: 0, file: 0 };
    let kind = null;
    for (const line of text.split('\n')) {
        const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
        if (head) {
            const name = head[1];
            kind = name === '[heap]' ? 'heap' : name === '' || name.startsWith('[anon') ? 'anonymous' : name.startsWith('/') ? 'file' : null;
            continue;
        }
        const rss = /^Rss:\s+(\d+) kB/.exec(line);
        if (rss && kind) {
            out[kind] += Number(rss[1]) * 1024;
        }
    }
    return out;
}

/** Waits until the server has no connection left (bounded), then collects garbage and settles. */
async function settledRss(server) {
    const stats = await server.idle();
    if (stats.connections !== 0 || stats.open !== 0) {
        throw new Error(`${stats.connections} connections left in the server (${stats.open} open)`);
    }
    // a collection (the Buffers the handler was given are freed then), a moment for the
    // allocators to give memory back, the same again
    await sleep(1000);
    await server.stats();
    await sleep(1000);
    const last = await server.stats();
    return { rss: server.memory().rss, heapTotal: last.heapTotal };
}

/** One message of `total` bytes made of `piece` (already dot-stuffed, ending with CRLF); its reply. */
async function bigMessage(port, from, piece, total) {
    const client = await Client.open(port);
    try {
        client.write(`MAIL FROM:<${from}>\r\nRCPT TO:<rcpt@example.com>\r\nDATA\r\n`);
        const envelope = await client.readN(3, 'the envelope replies');
        if (!envelope[2].startsWith('354 ')) {
            throw new Error(`unexpected envelope replies ${JSON.stringify(envelope)}`);
        }
        await writeRepeated(client.socket, piece, total, 60000);
        client.write('.\r\n');
        const reply = await client.read('the reply to the message', 120000);
        client.write('QUIT\r\n');
        await client.read('the reply to QUIT');
        return reply;
    } finally {
        client.destroy();
    }
}

/** The expected `250 OK <sha256> <length>` of `rounds` copies of `piece` (not stuffed). */
function expectedReply(piece, rounds) {
    const hash = crypto.createHash('sha256');
    for (let i = 0; i < rounds; i++) {
        hash.update(piece);
    }
    return `250 OK ${hash.digest('hex')} ${piece.length * rounds}`;
}

/** A block of text lines (no line starts with a dot), `size` bytes ending with CRLF. */
function textBlock(size) {
    const block = Buffer.alloc(size, 'm');
    for (let i = 998; i < size; i += 1000) {
        block.write('\r\n', i);
    }
    block.write('\r\n', size - 2);
    return block;
}

/** The bursts: the server options they need, and `run(server)`, which resolves with what was done. */
const BURSTS = {
    '200mb-size': {
        options: { size: 10 * MB },
        async run(server) {
            const piece = textBlock(64 * 1024);
            const rounds = Math.floor((200 * MB) / piece.length);
            const reply = await bigMessage(server.port, 'big@example.com', piece, piece.length * rounds);
            if (!reply.startsWith('552 ')) {
                throw new Error(`expected 552, got ${reply}`);
            }
            return `${((piece.length * rounds) / MB).toFixed(0)} MB refused with 552`;
        }
    },
    '200mb': {
        async run(server) {
            const piece = textBlock(64 * 1024);
            const rounds = Math.floor((200 * MB) / piece.length);
            const reply = await bigMessage(server.port, 'big@example.com', piece, piece.length * rounds);
            if (reply !== expectedReply(piece, rounds)) {
                throw new Error(`unexpected reply ${reply}`);
            }
            return `${((piece.length * rounds) / MB).toFixed(0)} MB delivered, digest matched`;
        }
    },
    '100mb-binary': {
        async run(server) {
            const random = crypto.randomBytes(MiB);
            random.write('\r\n', MiB - 2);
            const rounds = 100;
            const stuffed = dotStuff(random);
            const reply = await bigMessage(server.port, 'binary@example.com', stuffed, stuffed.length * rounds);
            if (reply !== expectedReply(random, rounds)) {
                throw new Error(`unexpected reply ${reply}`);
            }
            return `${rounds} MiB of random bytes delivered, digest matched`;
        }
    },
    '10k-idle': {
        async run(server) {
            const count = Math.min(10000, openFileLimit() - 200);
            const clients = [];
            try {
                await pool(count, 200, async () => {
                    clients.push(await Client.open(server.port, null));
                });
                const stats = await server.stats();
                if (stats.connections !== count) {
                    throw new Error(`${stats.connections} connections in the server, ${count} opened`);
                }
            } finally {
                for (const client of clients) {
                    client.destroy();
                }
            }
            return `${count.toLocaleString('en-US')} connections opened and closed`;
        }
    },
    soak: {
        async run(server) {
            const messages = 20000;
            const result = { sent: 0, accepted: 0, corrupted: 0, lost: 0, bytes: 0, failures: [] };
            await sendMessages(server.port, { messages, connections: 50, maxSize: MiB, seed: 21 }, result);
            if (result.accepted !== messages) {
                throw new Error(`${result.accepted} of ${messages} messages accepted (${result.corrupted} corrupted, ${result.lost} lost)`);
            }
            return `${messages.toLocaleString('en-US')} messages, ${(result.bytes / MB).toFixed(0)} MB, every digest matched`;
        }
    }
};

/** The bound: how far above the baseline the RSS may stay after a burst whose peak grew by `growth`. */
function allowed(growth) {
    return Math.max(32 * MiB, 0.25 * growth);
}

/** Runs the bursts; resolves with the report ({ ok, problems, runs }). */
async function measure(options = {}) {
    const opts = { ...parseArgs([]), ...options };
    const names = opts.only || Object.keys(BURSTS);
    const runtime = process.versions.bun ? `Bun ${process.versions.bun}` : `Node ${process.version}`;
    const report = { runtime, runs: [], problems: [] };
    // bursts that need the same server options share one server process, in this order
    const groups = new Map();
    for (const name of names) {
        const burst = BURSTS[name];
        if (!burst) {
            throw new Error(`unknown burst ${name} (known: ${Object.keys(BURSTS).join(', ')})`);
        }
        const key = JSON.stringify(burst.options || {});
        groups.set(key, [...(groups.get(key) || []), name]);
    }
    const toMiB = bytes => +(bytes / MiB).toFixed(1);
    for (const [key, group] of groups) {
        const server = await ChildServer.start({ options: { name: 'mx.memory.test', ...JSON.parse(key) } });
        try {
            // warm up (JIT, thread pools, the first buffers), then take the baseline
            await sendMessages(server.port, { messages: 200, connections: 4, maxSize: 64 * 1024, seed: 1 }, { sent: 0, accepted: 0, corrupted: 0, lost: 0, bytes: 0, failures: [] });
            const base = await settledRss(server);
            const baseline = base.rss;
            for (const name of group) {
                const stop = server.watchPeak(20);
                const started = Date.now();
                const what = await BURSTS[name].run(server);
                const seconds = (Date.now() - started) / 1000;
                const peak = stop();
                const settled = await settledRss(server);
                const after = settled.rss;
                const growth = Math.max(0, peak - baseline);
                const kept = after - baseline;
                const run = {
                    name,
                    what,
                    seconds,
                    baselineMiB: toMiB(baseline),
                    peakMiB: toMiB(peak),
                    afterMiB: toMiB(after),
                    keptMiB: toMiB(kept),
                    allowedMiB: toMiB(allowed(growth)),
                    ok: kept <= allowed(growth),
                    jsHeapMiB: { before: toMiB(base.heapTotal), after: toMiB(settled.heapTotal) },
                    where: Object.fromEntries(Object.entries(residentBreakdown(server.pid) || {}).map(([k, v]) => [k, toMiB(v)]))
                };
                report.runs.push(run);
                if (!run.ok) {
                    report.problems.push(`${name}: ${run.keptMiB} MiB kept over the baseline, ${run.allowedMiB} MiB allowed`);
                }
                console.log(
                    `memory (${runtime}) ${name}: baseline ${run.baselineMiB} MiB, peak ${run.peakMiB} MiB, after ${run.afterMiB} MiB ` +
                        `(kept ${run.keptMiB} MiB, allowed ${run.allowedMiB} MiB${run.ok ? '' : ', TOO MUCH'}); ${what} in ${seconds.toFixed(1)} s; ` +
                        `JS heap ${run.jsHeapMiB.before} → ${run.jsHeapMiB.after} MiB; resident: heap ${run.where.heap} MiB, other anonymous ${run.where.anonymous} MiB, files ${run.where.file} MiB`
                );
            }
        } finally {
            server.close();
            await Promise.race([server.exited, sleep(10000)]);
            server.kill();
        }
    }
    report.ok = report.problems.length === 0;
    if (opts.json) {
        fs.writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
    }
    return report;
}

if (require.main === module) {
    measure(parseArgs(process.argv.slice(2))).then(
        report => {
            if (!report.ok) {
                console.error('memory: FAILED: ' + report.problems.join('; '));
                process.exit(1);
            }
        },
        err => {
            console.error(err);
            process.exit(1);
        }
    );
}

module.exports = { measure, allowed };
