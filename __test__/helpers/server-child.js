'use strict';
// A server in a process of its own, for the runs that measure its memory or let it exit
// by itself (abuse, shutdown, soak). Started by helpers/child-server.js with one JSON
// argument: { options, delay, log }.
//
// - onData hashes what it receives and answers `250 OK <sha256> <length>`, after `delay`
//   ms when given; a message over `options.size` gets 552, except from a sender whose
//   address starts with `nolimit` (so one run can check a large body byte for byte).
// - stdout: JSON lines. `{"type":"listening","port"}` first; with `log`, one
//   `{"type":"delivered","digest","length"}` line per message just before its 250.
// - stdin: `stats` prints `{"type":"stats",...}` (after a garbage collection);
//   `close` calls server.close() and stops reading stdin, so that the process exits by
//   itself once the server has closed (it prints `{"type":"closed"}` then).

const crypto = require('node:crypto');
const readline = require('node:readline');
const { SMTPServer } = require(process.env.SMTP_MODULE || '../..');

const config = JSON.parse(process.argv[2] || '{}');
const options = config.options || {};
const stats = { delivered: 0, bytes: 0, oversized: 0, aborted: 0, errors: 0, closes: 0 };

function print(obj) {
    process.stdout.write(JSON.stringify(obj) + '\n');
}

const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    authOptional: true,
    ...options,
    onData(stream, session, callback) {
        const hash = crypto.createHash('sha256');
        let length = 0;
        stream.on('data', chunk => {
            hash.update(chunk);
            length += chunk.length;
        });
        stream.on('error', () => {
            stats.aborted++;
        });
        stream.on('end', () => {
            const from = (session.envelope.mailFrom && session.envelope.mailFrom.address) || '';
            if (stream.sizeExceeded && !from.startsWith('nolimit')) {
                stats.oversized++;
                const err = new Error(`Error: message exceeds fixed maximum message size ${options.size}`);
                err.responseCode = 552;
                return callback(err);
            }
            const digest = hash.digest('hex');
            const done = () => {
                stats.delivered++;
                stats.bytes += length;
                if (config.log) {
                    print({ type: 'delivered', digest, length });
                }
                callback(null, `OK ${digest} ${length}`);
            };
            if (config.delay) {
                setTimeout(done, config.delay);
            } else {
                done();
            }
        });
    },
    onClose() {
        stats.closes++;
    }
});
server.on('error', () => {
    stats.errors++;
});

function collectGarbage() {
    if (typeof Bun !== 'undefined') {
        Bun.gc(true);
    } else if (typeof global.gc === 'function') {
        global.gc();
    }
}

const input = readline.createInterface({ input: process.stdin });
input.on('line', line => {
    const cmd = line.trim();
    if (cmd === 'stats') {
        collectGarbage();
        server.server.getConnections((err, count) => {
            const mem = process.memoryUsage();
            print({ type: 'stats', ...stats, connections: server.connections.size, open: err ? -1 : count, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external });
        });
    } else if (cmd === 'close') {
        input.close();
        process.stdin.destroy();
        server.close(() => print({ type: 'closed', ...stats }));
    }
});

server.listen(0, '127.0.0.1', () => {
    print({ type: 'listening', port: server.server.address().port, pid: process.pid });
});
