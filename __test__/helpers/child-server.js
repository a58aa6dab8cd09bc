'use strict';
// The parent's side of helpers/server-child.js: starts the server process, asks it for
// its counters, samples its memory from /proc (Linux) and waits for it to exit.

const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { deadline, sleep } = require('./smtp-client.js');

const IS_REF = (process.env.SMTP_IMPL || 'rs').trim().toLowerCase() === 'ref';
const MODULE_PATH = IS_REF ? require.resolve('smtp-server') : path.resolve(__dirname, '..', '..');
const CHILD = path.join(__dirname, 'server-child.js');
const MiB = 1024 * 1024;

/** Reads VmRSS and VmHWM (bytes) of a process; null when /proc is not there. */
function memoryOf(pid) {
    let text;
    try {
        text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
        return null;
    }
    const field = name => {
        const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
        return m ? Number(m[1]) * 1024 : 0;
    };
    return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

/** True when /proc/<pid>/status can be read (Linux). */
function canMeasure() {
    return memoryOf(process.pid) !== null;
}

/** The soft limit on open files of this process (Infinity when unknown). */
function openFileLimit() {
    try {
        const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
        return m && m[1] !== 'unlimited' ? Number(m[1]) : Infinity;
    } catch {
        return Infinity;
    }
}

class ChildServer {
    /** Starts helpers/server-child.js with `config` ({ options, delay, log }). */
    static async start(config = {}) {
        const args = [];
        if (!process.versions.bun) {
            args.push('--expose-gc');
        }
        args.push(CHILD, JSON.stringify(config));
        const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, SMTP_MODULE: MODULE_PATH } });
        const server = new ChildServer(child);
        const ready = await server.next('listening', 10000);
        server.port = ready.port;
        return server;
    }

    constructor(child) {
        this.child = child;
        this.pid = child.pid;
        this.lines = [];
        this.messages = [];
        this.waiters = [];
        this.stderr = '';
        this.exit = null;
        this.exited = new Promise(resolve => {
            child.on('exit', (code, signal) => {
                this.exit = { code, signal };
                this._wake();
                resolve(this.exit);
            });
        });
        let buffer = '';
        child.stdout.on('data', d => {
            buffer += d;
            let i;
            while ((i = buffer.indexOf('\n')) >= 0) {
                const line = buffer.slice(0, i);
                buffer = buffer.slice(i + 1);
                let msg;
                try {
                    msg = JSON.parse(line);
                } catch {
                    msg = { type: 'text', line };
                }
                this.messages.push(msg);
                this._wake();
            }
        });
        child.stderr.on('data', d => {
            this.stderr += d;
        });
        child.stdin.on('error', () => {});
    }

    _wake() {
        const waiters = this.waiters;
        this.waiters = [];
        for (const fn of waiters) {
            fn();
        }
    }

    /** The next message of `type` from the child (consumed), bounded. */
    next(type, ms = 10000) {
        return deadline(
            new Promise((resolve, reject) => {
                const check = () => {
                    const i = this.messages.findIndex(m => m.type === type);
                    if (i >= 0) {
                        return resolve(this.messages.splice(i, 1)[0]);
                    }
                    if (this.exit) {
                        return reject(new Error(`the server process exited (${JSON.stringify(this.exit)}) before '${type}'; stderr: ${this.stderr.slice(0, 2000)}`));
                    }
                    this.waiters.push(check);
                };
                check();
            }),
            ms,
            `'${type}' from the server process`
        );
    }

    /** Every message of `type` received so far (consumed). */
    take(type) {
        const out = this.messages.filter(m => m.type === type);
        this.messages = this.messages.filter(m => m.type !== type);
        return out;
    }

    send(line) {
        this.child.stdin.write(line + '\n');
    }

    /** The child's counters (after a garbage collection there). */
    stats() {
        this.send('stats');
        return this.next('stats');
    }

    /** VmRSS and VmHWM of the child, in bytes. */
    memory() {
        return memoryOf(this.pid);
    }

    /** Samples VmRSS every `ms`; the returned function stops and gives the peak in bytes. */
    watchPeak(ms = 20) {
        let peak = (this.memory() || { rss: 0 }).rss;
        const timer = setInterval(() => {
            const m = this.memory();
            if (m) {
                peak = Math.max(peak, m.rss);
            }
        }, ms);
        return () => {
            clearInterval(timer);
            const m = this.memory();
            return Math.max(peak, m ? m.rss : 0);
        };
    }

    /** Waits (bounded) until the server has no connection left (its JS set and `getConnections()`); the last stats. */
    async idle(ms = 15000) {
        const end = Date.now() + ms;
        let stats;
        do {
            stats = await this.stats();
            if (stats.connections === 0 && stats.open === 0) {
                break;
            }
            await sleep(100);
        } while (Date.now() < end);
        return stats;
    }

    /** Waits until the child's RSS is at most `limit` bytes (after garbage collections); the last RSS. */
    async settle(limit, ms = 10000) {
        const end = Date.now() + ms;
        let rss = Infinity;
        while (Date.now() < end) {
            await this.stats();
            rss = this.memory().rss;
            if (rss <= limit) {
                break;
            }
            await sleep(250);
        }
        return rss;
    }

    alive() {
        return this.exit === null;
    }

    /** Asks the server to close; the process should then exit by itself. */
    close() {
        this.send('close');
    }

    kill() {
        if (this.alive()) {
            this.child.kill('SIGKILL');
        }
    }
}

module.exports = { ChildServer, memoryOf, canMeasure, openFileLimit, MiB };
