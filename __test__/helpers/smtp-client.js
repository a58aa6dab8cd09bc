'use strict';
// Helpers shared by the test files: a raw SMTP client, server
// start/stop with bounded waits, and small utilities.
const assert = require('node:assert/strict');
const net = require('node:net');
const tls = require('node:tls');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn } = require('node:child_process');

// ---------------------------------------------------------------------------
// helpers

// SMTP_IMPL=ref runs the same tests against the reference package, to check the tests.
const IMPL = (process.env.SMTP_IMPL || 'rs').trim().toLowerCase();
const { SMTPServer } = IMPL === 'ref' ? require('smtp-server') : require('../..');
const IS_REF = IMPL === 'ref';
const IS_BUN = !!process.versions.bun;
const WAIT = 5000;

/** Rejects with a clear message when `promise` does not settle within `ms`. */
function deadline(promise, ms, what) {
    let timer;
    return Promise.race([
        promise,
        new Promise((resolve, reject) => {
            timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
        })
    ]).finally(() => clearTimeout(timer));
}

/** Resolves with the arguments of the next `event`, bounded. */
function nextEvent(emitter, event, what = `the '${event}' event`, ms = WAIT) {
    return deadline(new Promise(resolve => emitter.once(event, (...args) => resolve(args))), ms, what);
}

/** Resolves when predicate() is true, polling; bounded. */
async function until(predicate, what, ms = WAIT) {
    const end = Date.now() + ms;
    while (!predicate()) {
        if (Date.now() > end) {
            throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        }
        await sleep(10);
    }
}

function sleep(ms) {
    return new Promise(resolve => setTimeout(resolve, ms));
}

/** A server of this package (or of `Server`, such as the reference) with the test defaults. */
function createServer(options = {}, Server = SMTPServer) {
    return new Server({ disableReverseLookup: true, logger: false, authOptional: true, closeTimeout: 1000, ...options });
}

/** Listens on 127.0.0.1 (or on a Unix socket path) and resolves with the port (or path). */
async function listen(server, target = 0) {
    await deadline(
        new Promise((resolve, reject) => {
            const onError = err => reject(err);
            server.once('error', onError);
            const done = () => {
                server.removeListener('error', onError);
                resolve();
            };
            if (typeof target === 'string') {
                server.listen(target, done);
            } else {
                server.listen(target, '127.0.0.1', done);
            }
        }),
        WAIT,
        'the server to listen'
    );
    const address = server.server.address();
    return typeof address === 'string' ? address : address.port;
}

/** Closes the server; resolves once its close callback ran (bounded). */
function closeServer(server, ms = WAIT) {
    return deadline(new Promise(resolve => server.close(() => resolve())), ms, 'server.close() to call back');
}

/** Starts a server (of `Server` when given), runs fn(port, server), always closes it. */
async function withServer(options, fn, Server = SMTPServer) {
    const server = createServer(options, Server);
    const port = await listen(server);
    try {
        return await fn(port, server);
    } finally {
        await closeServer(server, WAIT + (options.closeTimeout || 1000));
    }
}

/**
 * A raw SMTP client: writes bytes, parses replies (a multi-line reply is returned
 * as one string with its lines joined by '\n'). It starts on TCP, a Unix socket or TLS,
 * and moves to TLS after STARTTLS (`starttls()` / `handshake()`).
 */
class Client {
    constructor(socket) {
        this.buffer = '';
        this.partial = [];
        this.replies = [];
        this.waiters = [];
        this.ended = false;
        this.closed = false;
        this.error = null;
        this.received = 0;
        this.closedPromise = new Promise(resolve => {
            this._resolveClosed = resolve;
        });
        this._attach(socket);
    }

    /** Reads from `socket` from now on; events of a socket it replaced are ignored. */
    _attach(socket) {
        this.socket = socket;
        const current = fn => (...args) => socket === this.socket && fn(...args);
        socket.on('data', current(chunk => this._onData(chunk)));
        socket.on(
            'end',
            current(() => {
                this.ended = true;
                this._wake();
            })
        );
        socket.on(
            'close',
            current(() => {
                this.closed = true;
                this._resolveClosed();
                this._wake();
            })
        );
        socket.on('error', err => {
            this.error = err;
        });
    }

    static connect(target) {
        const socket = typeof target === 'number' ? net.connect(target, '127.0.0.1') : net.connect({ path: target });
        const client = new this(socket);
        return deadline(
            new Promise((resolve, reject) => {
                socket.once('connect', () => resolve(client));
                socket.once('error', reject);
            }),
            WAIT,
            `a connection to ${target}`
        );
    }

    /** Connects with implicit TLS; resolves after the handshake (greeting not read). */
    static connectTls(port, options = {}) {
        const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...options });
        const client = new this(socket);
        return deadline(
            new Promise((resolve, reject) => {
                socket.once('secureConnect', () => resolve(client));
                socket.once('error', reject);
                socket.once('close', () => reject(new Error('closed before the TLS handshake completed')));
            }),
            WAIT,
            `a TLS connection to port ${port}`
        );
    }

    /** Connects and reads the greeting; optionally sends EHLO/LHLO. */
    static async open(target, hello = 'EHLO client.test') {
        return (await this.connect(target))._start(hello);
    }

    /** Connects with implicit TLS, reads the greeting; optionally sends EHLO. */
    static async openTls(port, options, hello = 'EHLO client.test') {
        return (await this.connectTls(port, options))._start(hello);
    }

    async _start(hello) {
        const greeting = await this.read('the greeting');
        assert.match(greeting, /^220 /, 'greeting');
        this.greeting = greeting;
        if (hello) {
            const reply = await this.cmd(hello);
            assert.match(reply, /^250[ -]/, `reply to ${hello}`);
            this.ehlo = reply;
        }
        return this;
    }

    /** Sends `command` (default STARTTLS), expects 220, then runs the TLS handshake. */
    async starttls(options = {}, command = 'STARTTLS') {
        assert.match(await this.cmd(command), /^220 (2\.0\.0 )?Ready to start TLS$/);
        return this.handshake(options);
    }

    /** Runs a TLS handshake over the current socket (certificate not verified by default). */
    async handshake(options = {}) {
        const secure = tls.connect({ socket: this.socket, rejectUnauthorized: false, ...options });
        this._attach(secure);
        await deadline(
            new Promise((resolve, reject) => {
                secure.once('secureConnect', resolve);
                secure.once('error', reject);
            }),
            WAIT,
            'the TLS handshake'
        );
        return this;
    }

    _onData(chunk) {
        this.received += chunk.length;
        this.buffer += chunk.toString('latin1');
        let idx;
        while ((idx = this.buffer.indexOf('\n')) >= 0) {
            const line = this.buffer.slice(0, idx).replace(/\r$/, '');
            this.buffer = this.buffer.slice(idx + 1);
            this.partial.push(line);
            if (!/^\d{3}-/.test(line)) {
                this.replies.push(this.partial.join('\n'));
                this.partial = [];
            }
        }
        this._wake();
    }

    _wake() {
        const waiters = this.waiters;
        this.waiters = [];
        for (const fn of waiters) {
            fn();
        }
    }

    /** The next complete reply. */
    read(what = 'a reply', ms = WAIT) {
        return new Promise((resolve, reject) => {
            let timer = null;
            const check = () => {
                if (this.replies.length) {
                    clearTimeout(timer);
                    return resolve(this.replies.shift());
                }
                if (this.ended || this.closed) {
                    clearTimeout(timer);
                    return reject(new Error(`the connection closed while waiting for ${what}` + (this.buffer ? ` (partial line ${JSON.stringify(this.buffer.slice(0, 200))})` : '')));
                }
                this.waiters.push(check);
            };
            timer = setTimeout(() => {
                this.waiters = this.waiters.filter(fn => fn !== check);
                reject(new Error(`timed out after ${ms} ms waiting for ${what}` + (this.buffer ? ` (partial line ${JSON.stringify(this.buffer.slice(0, 200))})` : '')));
            }, ms);
            check();
        });
    }

    async readN(n, what = `${n} replies`, ms = WAIT) {
        const out = [];
        for (let i = 0; i < n; i++) {
            out.push(await this.read(`${what} (#${i + 1})`, ms));
        }
        return out;
    }

    write(data) {
        return this.socket.write(data);
    }

    cmd(line, ms = WAIT) {
        this.write(line + '\r\n');
        return this.read(`the reply to ${JSON.stringify(String(line).slice(0, 60))}`, ms);
    }

    /** Resolves when the socket closed; fails after ms. */
    waitClose(what = 'the server to close the connection', ms = WAIT) {
        return deadline(this.closedPromise, ms, what);
    }

    destroy() {
        this.socket.destroy();
    }
}

/** MAIL, RCPT…, DATA, the body (must end with CRLF, already dot-stuffed) and its reply. */
async function transaction(client, body, from = 'sender@example.com', to = ['rcpt@example.com'], replies = 1) {
    assert.equal(await client.cmd(`MAIL FROM:<${from}>`), '250 Accepted');
    for (const rcpt of [].concat(to)) {
        assert.equal(await client.cmd(`RCPT TO:<${rcpt}>`), '250 Accepted');
    }
    assert.equal(await client.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>');
    client.write(body);
    client.write('.\r\n');
    return replies === 1 ? client.read('the reply to the message') : client.readN(replies, 'the replies to the message');
}

/** Writes `total` bytes of `piece` honouring backpressure (bounded client memory). */
async function writeRepeated(socket, piece, total, ms = 20000) {
    let sent = 0;
    while (sent < total) {
        const part = total - sent >= piece.length ? piece : piece.subarray(0, total - sent);
        sent += part.length;
        if (!socket.write(part)) {
            if (socket.destroyed) {
                return sent;
            }
            let done;
            try {
                await deadline(
                    new Promise(resolve => {
                        done = resolve;
                        socket.once('drain', resolve);
                        socket.once('close', resolve);
                    }),
                    ms,
                    'the socket to drain'
                );
            } finally {
                socket.removeListener('drain', done);
                socket.removeListener('close', done);
            }
        }
        if (socket.destroyed) {
            return sent;
        }
    }
    return sent;
}

/** Dot-stuffs a body whose lines end with CRLF (a dot at the start of a line is doubled). */
function dotStuff(buf) {
    const parts = [];
    let start = 0;
    if (buf[0] === 0x2e) {
        parts.push(Buffer.from('.'));
    }
    const needle = Buffer.from('\r\n.');
    let pos;
    while ((pos = buf.indexOf(needle, start)) >= 0) {
        parts.push(buf.subarray(start, pos + 3), Buffer.from('.'));
        start = pos + 3;
    }
    parts.push(buf.subarray(start));
    return Buffer.concat(parts);
}

function sha256(buf) {
    return crypto.createHash('sha256').update(buf).digest('hex');
}

/** onData handler that collects the body and calls back with make(body, session). */
function collect(sink, make = () => []) {
    return function (stream, session, callback) {
        const chunks = [];
        stream.on('data', chunk => chunks.push(chunk));
        stream.on('end', () => {
            const body = Buffer.concat(chunks);
            sink.push({ body, session, envelope: session.envelope, byteLength: stream.byteLength });
            callback(...make(body, session));
        });
    };
}

function smtpError(message, responseCode) {
    const err = new Error(message);
    if (responseCode !== undefined) {
        err.responseCode = responseCode;
    }
    return err;
}

function tmpSocketPath(tag) {
    const p = path.join(os.tmpdir(), `smtp-rs-${tag}-${process.pid}-${crypto.randomBytes(4).toString('hex')}.sock`);
    try {
        fs.unlinkSync(p);
    } catch {
        // not there
    }
    return p;
}

/** Runs a child process with a bounded time; resolves { code, stdout, stderr }. */
function run(cmd, args, input = '', ms = 20000) {
    return deadline(
        new Promise((resolve, reject) => {
            const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
            const out = [];
            const err = [];
            const killer = setTimeout(() => child.kill('SIGKILL'), ms);
            child.stdout.on('data', d => out.push(d));
            child.stderr.on('data', d => err.push(d));
            child.on('error', reject);
            child.on('close', code => {
                clearTimeout(killer);
                resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
            });
            child.stdin.on('error', () => {});
            child.stdin.end(input);
        }),
        ms + 2000,
        `${cmd} to finish`
    );
}

// the module child processes load (SMTP_MODULE): this package, or smtp-server with SMTP_IMPL=ref
const MODULE_PATH = IS_REF ? require.resolve('smtp-server') : path.resolve(__dirname, '..', '..');

/** Runs a script in a child process of the same runtime; resolves with {code, signal, stdout, stderr, ms}. */
function runChild(script, ms) {
    return new Promise((resolve, reject) => {
        const started = Date.now();
        const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SMTP_MODULE: MODULE_PATH } });
        const out = [];
        const err = [];
        child.stdout.on('data', d => out.push(d));
        child.stderr.on('data', d => err.push(d));
        let timedOut = false;
        const timer = setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
        }, ms);
        child.on('error', reject);
        child.on('close', (code, signal) => {
            clearTimeout(timer);
            const result = { code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms: Date.now() - started };
            if (timedOut) {
                return reject(new Error(`the child process did not exit by itself within ${ms} ms (stdout: ${JSON.stringify(result.stdout)}, stderr: ${JSON.stringify(result.stderr)})`));
            }
            resolve(result);
        });
    });
}

/** Runs a Python script that prints JSON; resolves with the parsed output. */
async function python(script, args) {
    const res = await run('python3', ['-c', script, ...args.map(String)]);
    if (res.code !== 0) {
        throw new Error(`python3 exited with ${res.code}: ${res.stderr || res.stdout}`);
    }
    try {
        return JSON.parse(res.stdout);
    } catch {
        throw new Error(`python3 printed no JSON: ${res.stdout} ${res.stderr}`);
    }
}

module.exports = { run, python, IMPL, SMTPServer, IS_REF, IS_BUN, WAIT, deadline, nextEvent, until, sleep, createServer, listen, closeServer, withServer, Client, transaction, dotStuff, sha256, collect, smtpError, tmpSocketPath, runChild, writeRepeated };
