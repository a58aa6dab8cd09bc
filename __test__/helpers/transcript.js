'use strict';

// Differential transcript harness.
//
// A "spec" describes one SMTP conversation played over raw TCP against a server
// class. The same spec is run against the reference package (`smtp-server`) and
// against the implementation under test, and the two recordings must be equal.
//
// spec = {
//   options:   server options (merged over DEFAULT_OPTIONS below),
//   handlers:  { onConnect, onSecure, onAuth, onMailFrom, onRcptTo, onData, onClose }
//              each value is either
//                true           record the call, then behave like the default handler
//                function       record the call, then run this function
//                                (same arguments and `this` as the server would pass)
//                raw(function)  pass the function through untouched (not recorded)
//   steps:     [ step, ... ] (see runTranscript)
//   autoQuit:  false to skip the final "QUIT" sent to connections still open
//   captureWarnings: true to record what the constructor prints to stderr
//   deadline:  ms for every wait (default 5000)
// }

const net = require('node:net');
const assert = require('node:assert');
const crypto = require('node:crypto');

const DEFAULT_DEADLINE = 5000;
const RAW = Symbol('transcript.raw');
const HANDLER_NAMES = ['onConnect', 'onSecure', 'onAuth', 'onMailFrom', 'onRcptTo', 'onData', 'onClose'];
const DEFAULT_OPTIONS = {
    name: 'test.example',
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 500
};
// bodies up to this size are recorded verbatim, larger ones as length + digest
const MAX_VERBATIM_BODY = 4096;

/**
 * Marks a handler so that the harness passes it to the server as it is,
 * without recording its calls. Needed to exercise code paths that depend on
 * the stream not being read (the recorder reads the DATA stream).
 */
function raw(fn) {
    fn[RAW] = true;
    return fn;
}

// ---------------------------------------------------------------------------
// implementation loading

let implCache = null;

function loadReference() {
    return require('smtp-server').SMTPServer;
}

/**
 * Returns { label, SMTPServer } for the implementation under test, selected by
 * SMTP_IMPL: "rs" (default) loads ../../index.js, "ref" loads the reference
 * package again (used to validate the harness and the transcripts).
 * Throws a descriptive error when the implementation cannot be loaded.
 */
function loadImplementation() {
    if (implCache) {
        if (implCache.error) {
            throw implCache.error;
        }
        return implCache;
    }
    const which = (process.env.SMTP_IMPL || 'rs').trim().toLowerCase();
    try {
        if (which === 'ref') {
            implCache = { label: 'ref (smtp-server)', SMTPServer: loadReference() };
        } else if (which === 'rs') {
            let mod;
            try {
                mod = require('../../index.js');
            } catch (err) {
                throw new Error(
                    'Cannot load the implementation under test (index.js at the package root): ' +
                        ((err && err.message) || err) +
                        '\nBuild it first, or run with SMTP_IMPL=ref to check the harness against the reference.'
                );
            }
            if (!mod || typeof mod.SMTPServer !== 'function') {
                throw new Error('index.js does not export an SMTPServer class (got ' + typeof (mod && mod.SMTPServer) + ')');
            }
            implCache = { label: 'rs (index.js)', SMTPServer: mod.SMTPServer };
        } else {
            throw new Error('Unknown SMTP_IMPL value "' + which + '": use "rs" (default) or "ref"');
        }
    } catch (err) {
        implCache = { error: err };
        throw err;
    }
    return implCache;
}

// ---------------------------------------------------------------------------
// snapshots

/**
 * Deep, JSON-safe copy of a value as it is right now.
 * - undefined   -> '[undefined]' (so that a present-but-undefined key still shows)
 * - Map         -> { Map: [[key, value], ...] }
 * - Set         -> { Set: [values] }
 * - Buffer      -> { Buffer: base64 }
 * - Error       -> { Error: { message, responseCode?, code?, ... } }
 * - function    -> '[Function]'
 */
function snapshot(value, seen = new Set()) {
    if (value === undefined) {
        return '[undefined]';
    }
    if (value === null || typeof value === 'boolean' || typeof value === 'string') {
        return value;
    }
    if (typeof value === 'number') {
        return Number.isFinite(value) ? value : '[number ' + String(value) + ']';
    }
    if (typeof value === 'bigint') {
        return '[bigint ' + value.toString() + ']';
    }
    if (typeof value === 'function') {
        return '[Function]';
    }
    if (typeof value === 'symbol') {
        return '[' + value.toString() + ']';
    }
    if (Buffer.isBuffer(value)) {
        return { Buffer: value.toString('base64') };
    }
    if (seen.has(value)) {
        return '[Circular]';
    }
    seen.add(value);
    let out;
    if (value instanceof Map) {
        out = { Map: [...value].map(([k, v]) => [snapshot(k, seen), snapshot(v, seen)]) };
    } else if (value instanceof Set) {
        out = { Set: [...value].map(v => snapshot(v, seen)) };
    } else if (Array.isArray(value)) {
        out = value.map(v => snapshot(v, seen));
    } else if (value instanceof Error) {
        const e = { message: value.message };
        for (const key of Object.keys(value)) {
            e[key] = snapshot(value[key], seen);
        }
        out = { Error: e };
    } else if (value instanceof Date) {
        out = { Date: value.toISOString() };
    } else {
        out = {};
        for (const key of Object.keys(value).sort()) {
            out[key] = snapshot(value[key], seen);
        }
    }
    seen.delete(value);
    return out;
}

function sessionSnapshot(session) {
    const snap = snapshot(session);
    if (snap && typeof snap === 'object' && !Array.isArray(snap)) {
        delete snap.id;
    }
    return snap;
}

/**
 * Replaces ephemeral port numbers with stable placeholders: '<server-port>' and
 * '<client-port:NAME>'. Applies to object keys that contain "port" (any case)
 * and to Map entries (snapshot form) whose key contains "PORT".
 */
function normalizePorts(value, ports) {
    const mapPort = v => (typeof v === 'number' && ports.has(v) ? ports.get(v) : v);
    const walk = node => {
        if (Array.isArray(node)) {
            return node.map(walk);
        }
        if (!node || typeof node !== 'object') {
            return node;
        }
        if (Array.isArray(node.Map) && Object.keys(node).length === 1) {
            return {
                Map: node.Map.map(([k, v]) => [k, typeof k === 'string' && /port/i.test(k) ? mapPort(v) : walk(v)])
            };
        }
        const out = {};
        for (const key of Object.keys(node)) {
            out[key] = /port/i.test(key) ? mapPort(node[key]) : walk(node[key]);
        }
        return out;
    };
    return walk(value);
}

function describeBody(buf) {
    if (buf.length > MAX_VERBATIM_BODY) {
        return { length: buf.length, sha256: crypto.createHash('sha256').update(buf).digest('hex') };
    }
    const text = buf.toString('utf8');
    if (Buffer.from(text, 'utf8').equals(buf)) {
        return { utf8: text };
    }
    return { base64: buf.toString('base64') };
}

// ---------------------------------------------------------------------------
// default handler logic used when a handler is given as `true`

const DEFAULT_LOGIC = {
    onConnect(session, callback) {
        setImmediate(callback);
    },
    onSecure(socket, session, callback) {
        setImmediate(callback);
    },
    onAuth(auth, session, callback) {
        callback(null, { message: 'Authentication not implemented' });
    },
    onMailFrom(address, session, callback) {
        setImmediate(callback);
    },
    onRcptTo(address, session, callback) {
        setImmediate(callback);
    },
    onData(stream, session, callback) {
        stream.on('end', () => callback());
        stream.resume();
    },
    onClose() {
        // nothing
    }
};

/**
 * Wraps the handlers of a spec so that each call is recorded (a snapshot of
 * its arguments taken at call time) before the spec's own logic runs.
 */
function buildHandlers(specHandlers, record) {
    const out = {};
    for (const name of HANDLER_NAMES) {
        const given = specHandlers && specHandlers[name];
        if (given === undefined || given === false || given === null) {
            continue;
        }
        if (typeof given === 'function' && given[RAW]) {
            out[name] = given;
            continue;
        }
        const logic = typeof given === 'function' ? given : DEFAULT_LOGIC[name];
        out[name] = function recordedHandler(...args) {
            const obs = { handler: name };
            let session;
            switch (name) {
                case 'onConnect':
                case 'onClose':
                    session = args[0];
                    break;
                case 'onSecure':
                    session = args[1];
                    break;
                case 'onAuth':
                    obs.auth = snapshot(args[0]);
                    session = args[1];
                    break;
                case 'onMailFrom':
                case 'onRcptTo':
                    obs.address = snapshot(args[0]);
                    session = args[1];
                    break;
                case 'onData': {
                    const stream = args[0];
                    session = args[1];
                    const chunks = [];
                    obs.stream = {
                        byteLengthAtStart: snapshot(stream.byteLength),
                        sizeExceededAtStart: snapshot(stream.sizeExceeded),
                        ended: false
                    };
                    stream.on('data', chunk => chunks.push(Buffer.from(chunk)));
                    stream.on('end', () => {
                        const body = Buffer.concat(chunks);
                        obs.stream.ended = true;
                        obs.stream.body = describeBody(body);
                        obs.stream.receivedBytes = body.length;
                        obs.stream.byteLength = snapshot(stream.byteLength);
                        obs.stream.sizeExceeded = snapshot(stream.sizeExceeded);
                    });
                    break;
                }
            }
            obs.session = sessionSnapshot(session);
            record(obs, session);
            return logic.apply(this, args);
        };
    }
    return out;
}

// ---------------------------------------------------------------------------
// client side

function isContinuation(line) {
    return /^\d{3}-/.test(line);
}

function showBytes(data, max = 300) {
    let s = Buffer.isBuffer(data) ? data.toString('latin1') : String(data);
    const full = s.length;
    if (s.length > max) {
        s = s.slice(0, max);
    }
    s = JSON.stringify(s);
    return full > max ? s + '... (' + full + ' chars)' : s;
}

class Client {
    constructor(name, port) {
        this.name = name;
        this.port = port;
        this.lines = []; // { text, complete }
        this.completeCount = 0;
        this.partial = Buffer.alloc(0);
        this.closed = false;
        this.endedByClient = false;
        this.closedBy = null;
        this.repliesBeforeClose = null;
        this.waiters = new Set();
        this.localPort = null;
    }

    connect(deadline, early) {
        return new Promise((resolve, reject) => {
            const sock = net.connect({ port: this.port, host: '127.0.0.1' });
            this.sock = sock;
            if (early !== undefined) {
                // queued before the connection completes, so it leaves with the handshake
                // instead of waiting for a possibly busy event loop
                sock.write(early);
            }
            let connected = false;
            const timer = setTimeout(() => {
                if (!connected) {
                    sock.destroy();
                    reject(new Error(`client ${this.name}: TCP connect to 127.0.0.1:${this.port} did not complete within ${deadline} ms`));
                }
            }, deadline);
            sock.on('connect', () => {
                clearTimeout(timer);
                connected = true;
                this.localPort = sock.localPort;
                resolve();
            });
            sock.on('data', chunk => this._onData(chunk));
            sock.on('end', () => this._onClosed());
            sock.on('close', () => this._onClosed());
            sock.on('error', err => {
                if (!connected) {
                    clearTimeout(timer);
                    reject(err);
                }
                this._onClosed();
            });
        });
    }

    _onData(chunk) {
        let buf = Buffer.concat([this.partial, chunk]);
        let idx;
        while ((idx = buf.indexOf(0x0a)) >= 0) {
            let lineBuf = buf.subarray(0, idx);
            let text;
            if (lineBuf.length && lineBuf[lineBuf.length - 1] === 0x0d) {
                text = lineBuf.subarray(0, -1).toString('utf8');
            } else {
                text = lineBuf.toString('utf8') + ' [bare LF]';
            }
            buf = buf.subarray(idx + 1);
            const complete = !isContinuation(text);
            this.lines.push({ text, complete });
            if (complete) {
                this.completeCount++;
            }
        }
        this.partial = Buffer.from(buf);
        this._notify();
    }

    _onClosed() {
        if (this.closed) {
            return;
        }
        this.closed = true;
        this.closedBy = this.endedByClient ? 'client' : 'server';
        if (this.partial.length) {
            this.lines.push({ text: this.partial.toString('utf8') + ' [no line end]', complete: true });
            this.completeCount++;
            this.partial = Buffer.alloc(0);
        }
        this.repliesBeforeClose = this.completeCount;
        this._notify();
    }

    _notify() {
        for (const w of [...this.waiters]) {
            w();
        }
    }

    write(data) {
        if (this.closed || !this.sock.writable) {
            return false;
        }
        this.sock.write(data);
        return true;
    }

    end() {
        this.endedByClient = true;
        if (!this.closed) {
            this.sock.end();
        }
    }

    destroy() {
        this.endedByClient = true;
        if (this.sock) {
            this.sock.destroy();
        }
        // recorded right away: the socket's own 'close' event comes a tick later
        this._onClosed();
    }

    /** Waits until predicate() is true or the connection closes. */
    waitFor(predicate, deadline, describe) {
        return new Promise((resolve, reject) => {
            const check = () => {
                if (predicate() || this.closed) {
                    clearTimeout(timer);
                    this.waiters.delete(check);
                    resolve();
                    return true;
                }
                return false;
            };
            const timer = setTimeout(() => {
                this.waiters.delete(check);
                reject(new Error(describe()));
            }, deadline);
            this.waiters.add(check);
            check();
        });
    }
}

// ---------------------------------------------------------------------------
// server side

function listen(server, deadline) {
    return new Promise((resolve, reject) => {
        let ret;
        const timer = setTimeout(
            () => reject(new Error(`server.listen(0, '127.0.0.1', cb) did not call back within ${deadline} ms`)),
            deadline
        );
        const onError = err => {
            clearTimeout(timer);
            reject(err);
        };
        try {
            if (typeof server.once === 'function') {
                server.once('error', onError);
            }
            ret = server.listen(0, '127.0.0.1', () => {
                clearTimeout(timer);
                if (typeof server.removeListener === 'function') {
                    server.removeListener('error', onError);
                }
                resolve(ret);
            });
        } catch (err) {
            clearTimeout(timer);
            reject(err);
        }
    });
}

function serverPort(server, listenResult) {
    const candidates = [server && server.server, listenResult];
    for (const c of candidates) {
        if (c && typeof c.address === 'function') {
            const addr = c.address();
            if (addr && typeof addr.port === 'number') {
                return addr.port;
            }
        }
    }
    throw new Error('Cannot determine the listening port: neither server.server.address() nor the value returned by listen() gives one');
}

function closeServer(server, deadline) {
    return new Promise(resolve => {
        let done = false;
        const finish = () => {
            if (!done) {
                done = true;
                clearTimeout(timer);
                resolve();
            }
        };
        const timer = setTimeout(finish, deadline);
        try {
            server.close(finish);
        } catch (err) {
            finish();
        }
    });
}

// ---------------------------------------------------------------------------
// transcript runner

/**
 * Plays a spec against one server class and returns the recording:
 * {
 *   steps: [{ client, send?|action, replies: [lines] }],
 *   connections: { NAME: { closedBy: 'server'|'client'|null, repliesBeforeClose } },
 *   observations: { NAME: [ handler calls and connect events ] },
 *   warnings?: [ strings printed by the constructor ]
 * }
 *
 * Steps:
 *   { send: 'BYTES' | Buffer, replies: N, client?: 'a' }
 *       write, then wait until N more complete replies arrived (or the server closed)
 *   { replies: N }             only wait (e.g. for the greeting)
 *   { wait: 'close' }          wait until the server closes the connection
 *   { end: true }              half-close the client side (FIN)
 *   { destroy: true }          destroy the client socket
 *   { serverClose: true }      call server.close() now
 *   { waitHandler: 'onClose', count?: 1 }  wait until that many such observations exist
 *   client defaults to 'a'; a client connects the first time a step names it.
 * Any reply line not of the form "NNN-..." counts as a complete reply.
 */
async function runTranscript(SMTPServerClass, spec, runLabel = 'run') {
    const deadline = spec.deadline || DEFAULT_DEADLINE;
    const result = { steps: [], connections: {}, observations: {} };
    const rawObservations = []; // { obs, session }
    const clients = new Map();
    const ports = new Map();

    const record = (obs, session) => rawObservations.push({ obs, session });
    const handlers = buildHandlers(spec.handlers, record);
    const options = Object.assign({}, DEFAULT_OPTIONS, spec.options || {}, handlers);

    let server;
    if (spec.captureWarnings) {
        const captured = [];
        const origError = console.error;
        const origWrite = process.stderr.write;
        console.error = (...args) => {
            captured.push(args.map(String).join(' '));
        };
        process.stderr.write = chunk => {
            captured.push(String(chunk).replace(/\n$/, ''));
            return true;
        };
        try {
            server = new SMTPServerClass(options);
        } finally {
            console.error = origError;
            process.stderr.write = origWrite;
        }
        // the warning names the package that prints it; the rest must match
        result.warnings = captured.map(line => line.replace(/^WARNING: smtp-server-rs /, 'WARNING: smtp-server '));
    } else {
        server = new SMTPServerClass(options);
    }

    const serverErrors = [];
    if (typeof server.on === 'function') {
        server.on('error', err => serverErrors.push((err && err.message) || String(err)));
        server.on('connect', info => {
            const snap = snapshot(info);
            if (snap && typeof snap === 'object') {
                delete snap.id;
            }
            rawObservations.push({ obs: { event: 'connect', info: snap }, info });
        });
    }

    let port;
    let serverClosing = null;
    const context = () =>
        `[${runLabel}] transcript so far:\n` +
        result.steps
            .map((s, i) => `  #${i} ${s.client} ${s.send !== undefined ? 'send ' + s.send : s.action}\n` + s.replies.map(l => '      < ' + l).join('\n'))
            .join('\n');

    try {
        const listenResult = await listen(server, deadline);
        port = serverPort(server, listenResult);
        ports.set(port, '<server-port>');

        const getClient = async (name, early) => {
            let client = clients.get(name);
            if (!client) {
                client = new Client(name, port);
                clients.set(name, client);
                await client.connect(deadline, early);
                ports.set(client.localPort, '<client-port:' + name + '>');
            }
            return client;
        };

        const cursors = new Map(); // client name -> index into client.lines already assigned to a step
        const takeLines = (client, upToComplete) => {
            // lines since the cursor, up to and including the upToComplete-th complete line
            let start = cursors.get(client.name) || 0;
            let end = start;
            let seen = 0;
            while (end < client.lines.length && (upToComplete === Infinity || seen < upToComplete)) {
                if (client.lines[end].complete) {
                    seen++;
                }
                end++;
            }
            cursors.set(client.name, end);
            return client.lines.slice(start, end).map(l => l.text);
        };
        const pendingComplete = client => {
            const start = cursors.get(client.name) || 0;
            return client.lines.slice(start).filter(l => l.complete).length;
        };

        const steps = spec.steps || [];
        for (let i = 0; i < steps.length; i++) {
            const step = steps[i];
            const name = step.client || 'a';
            // bytes a new connection sends first go out with the connection itself
            const early = !clients.has(name) && step.send !== undefined ? step.send : undefined;
            const client = await getClient(name, early);
            const entry = { client: name, replies: [] };
            result.steps.push(entry);

            if (step.serverClose) {
                entry.action = 'server.close()';
                serverClosing = closeServer(server, ((spec.options && spec.options.closeTimeout) || DEFAULT_OPTIONS.closeTimeout) + deadline);
                continue;
            }
            if (step.end) {
                entry.action = 'end';
                client.end();
                continue;
            }
            if (step.destroy) {
                entry.action = 'destroy';
                client.destroy();
                continue;
            }
            if (step.waitHandler) {
                entry.action = 'waitHandler ' + step.waitHandler;
                const count = step.count || 1;
                await waitUntil(
                    () => rawObservations.filter(o => o.obs.handler === step.waitHandler).length >= count,
                    deadline,
                    () => `[${runLabel}] step #${i}: timed out after ${deadline} ms waiting for ${count} ${step.waitHandler} call(s)\n` + context()
                );
                continue;
            }

            if (step.send !== undefined) {
                entry.send = showBytes(step.send);
                if (early === undefined && !client.write(step.send)) {
                    entry.skipped = 'connection already closed';
                }
            } else if (step.wait === 'close') {
                entry.action = 'wait close';
            } else {
                entry.action = 'wait';
            }

            if (step.wait === 'close') {
                await client.waitFor(
                    () => false,
                    deadline,
                    () =>
                        `[${runLabel}] step #${i} (client ${name}): the server did not close the connection within ${deadline} ms. ` +
                        `Received meanwhile: ${JSON.stringify(client.lines.slice(cursors.get(name) || 0).map(l => l.text))}\n` +
                        context()
                );
                entry.replies = takeLines(client, Infinity);
                continue;
            }

            const expected = step.replies || 0;
            if (expected > 0) {
                await client.waitFor(
                    () => pendingComplete(client) >= expected,
                    deadline,
                    () =>
                        `[${runLabel}] step #${i} (client ${name}${step.send !== undefined ? ', sent ' + showBytes(step.send, 120) : ''}): ` +
                        `timed out after ${deadline} ms waiting for ${expected} complete repl${expected === 1 ? 'y' : 'ies'}; ` +
                        `got ${pendingComplete(client)}: ${JSON.stringify(client.lines.slice(cursors.get(name) || 0).map(l => l.text))}` +
                        (client.partial.length ? ` plus partial ${showBytes(client.partial, 120)}` : '') +
                        '\n' +
                        context()
                );
            }
            entry.expected = expected;
            entry.replies = takeLines(client, expected);
            entry.closedEarly = client.closed && countComplete(entry.replies) < expected;
        }

        // epilogue: QUIT every connection that is still open, which also flushes
        // out any reply the server sent beyond what the steps expected
        for (const client of clients.values()) {
            if (spec.autoQuit === false || client.closed || client.endedByClient) {
                continue;
            }
            const entry = { client: client.name, send: showBytes('QUIT\r\n'), auto: true, replies: [] };
            result.steps.push(entry);
            client.write('QUIT\r\n');
            await client.waitFor(
                () => false,
                deadline,
                () =>
                    `[${runLabel}] automatic QUIT at the end (client ${client.name}): the server did not close the connection within ${deadline} ms. ` +
                    `Received meanwhile: ${JSON.stringify(client.lines.slice(cursors.get(client.name) || 0).map(l => l.text))}\n` +
                    context()
            );
            entry.replies = takeLines(client, Infinity);
        }
        // lines that arrived after the last step of a connection that was not QUIT
        for (const client of clients.values()) {
            const rest = takeLines(client, Infinity);
            if (rest.length) {
                result.steps.push({ client: client.name, action: 'late lines', replies: rest });
            }
        }

        // close every client, wait for onClose when it is being recorded
        for (const client of clients.values()) {
            if (!client.closed) {
                client.destroy();
            }
        }
        if (spec.handlers && spec.handlers.onClose && !spec.handlers.onClose[RAW]) {
            const wanted = clients.size;
            await waitUntil(
                () => rawObservations.filter(o => o.obs.handler === 'onClose').length >= wanted,
                deadline,
                () =>
                    `[${runLabel}] onClose was called ${rawObservations.filter(o => o.obs.handler === 'onClose').length} time(s) ` +
                    `within ${deadline} ms, expected once per connection (${wanted})\n` +
                    context()
            );
        }

        for (const client of clients.values()) {
            result.connections[client.name] = {
                closedBy: client.closedBy,
                repliesBeforeClose: client.repliesBeforeClose
            };
        }

        // attribute observations to connections through the session object
        const sessionOwner = new WeakMap();
        const ownerOf = (session, remotePort) => {
            if (session && typeof session === 'object' && sessionOwner.has(session)) {
                return sessionOwner.get(session);
            }
            let owner = null;
            for (const c of clients.values()) {
                if (c.localPort === remotePort) {
                    owner = c.name;
                }
            }
            if (!owner) {
                owner = clients.size === 1 ? [...clients.keys()][0] : '?';
            }
            if (session && typeof session === 'object') {
                sessionOwner.set(session, owner);
            }
            return owner;
        };
        for (const { obs, session, info } of rawObservations) {
            let owner;
            if (info) {
                owner = ownerOf(null, info.remotePort);
            } else {
                owner = ownerOf(session, session && session.remotePort);
            }
            (result.observations[owner] = result.observations[owner] || []).push(normalizePorts(obs, ports));
        }
        result.serverErrors = serverErrors;
        return result;
    } finally {
        for (const client of clients.values()) {
            client.destroy();
        }
        if (serverClosing) {
            await serverClosing;
        } else if (server && typeof server.close === 'function') {
            await closeServer(server, deadline);
        }
    }
}

function countComplete(lines) {
    return lines.filter(l => !isContinuation(l)).length;
}

function waitUntil(predicate, deadline, describe) {
    return new Promise((resolve, reject) => {
        if (predicate()) {
            return resolve();
        }
        const started = Date.now();
        const tick = () => {
            if (predicate()) {
                return resolve();
            }
            if (Date.now() - started > deadline) {
                return reject(new Error(describe()));
            }
            setTimeout(tick, 5);
        };
        setTimeout(tick, 5);
    });
}

// ---------------------------------------------------------------------------
// comparison

function comparable(recording) {
    return {
        steps: recording.steps.map(s => {
            const out = { client: s.client, replies: s.replies };
            if (s.send !== undefined) {
                out.send = s.send;
            }
            if (s.action) {
                out.action = s.action;
            }
            if (s.auto) {
                out.auto = true;
            }
            if (s.skipped) {
                out.skipped = s.skipped;
            }
            return out;
        }),
        connections: recording.connections,
        observations: recording.observations,
        warnings: recording.warnings
    };
}

/**
 * Checks that the reference recording matches what the spec expects (reply
 * counts), so that a wrong spec is reported as such instead of as a difference.
 */
function checkSpecAgainstReference(rec) {
    rec.steps.forEach((s, i) => {
        if (s.closedEarly) {
            throw new Error(
                `Spec error: the reference closed the connection at step #${i} after ${countComplete(s.replies)} of ${s.expected} expected replies ` +
                    `(${JSON.stringify(s.replies)}). Fix the step's "replies" count or add a { wait: 'close' } step.`
            );
        }
        const unexpected =
            (s.action === 'wait close' && s.replies.length) ||
            (s.action === 'late lines' && s.replies.length) ||
            (s.auto && countComplete(s.replies) > 1);
        if (unexpected) {
            throw new Error(
                `Spec error: the reference sent replies the steps did not account for (step #${i}, ${s.auto ? 'automatic QUIT' : s.action}): ` +
                    `${JSON.stringify(s.replies)}. Raise the "replies" count of the step before it.`
            );
        }
    });
}

/**
 * Writes both recordings of a transcript as JSON into dir (TRANSCRIPT_DUMP=dir),
 * one file per test, to inspect what the reference actually does.
 */
function dumpRecordings(dir, name, ref, actual) {
    const fs = require('node:fs');
    const path = require('node:path');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').slice(0, 100) + '.json');
    fs.writeFileSync(file, JSON.stringify({ name, reference: ref, actual }, null, 2));
}

/**
 * Runs the spec against the reference package and against the implementation
 * under test (SMTP_IMPL), and asserts that replies, close behaviour and
 * handler observations are deep-equal. Returns both recordings.
 */
/**
 * Runs `compareOnce`, up to `spec.attempts` times (default 1). Only for transcripts whose
 * outcome depends on wall-clock timing that this shared event loop can disturb (the early
 * talker window): the reference server and the test clients share one loop, so a busy loop
 * can delay the client's first bytes past the 100 ms window.
 */
async function compare(t, spec) {
    const attempts = spec.attempts || 1;
    for (let i = 1; ; i++) {
        try {
            return await compareOnce(t, spec);
        } catch (err) {
            if (i >= attempts || /^Spec error/.test(err.message)) {
                throw err;
            }
        }
    }
}

async function compareOnce(t, spec) {
    const impl = loadImplementation();
    const Reference = loadReference();
    // both runs always finish (settle) before the test ends, so that a failing
    // run never leaves the other one's server behind
    const [refRun, implRun] = await Promise.allSettled([
        runTranscript(Reference, spec, 'reference smtp-server'),
        runTranscript(impl.SMTPServer, spec, impl.label)
    ]);
    if (refRun.status === 'rejected') {
        const err = refRun.reason;
        err.message = 'Spec error: the reference smtp-server itself failed this transcript\n' + err.message;
        throw err;
    }
    if (implRun.status === 'rejected') {
        throw implRun.reason;
    }
    const ref = refRun.value;
    const actual = implRun.value;
    if (process.env.TRANSCRIPT_DUMP) {
        dumpRecordings(process.env.TRANSCRIPT_DUMP, spec.name || (t && t.name) || 'unnamed', ref, actual);
    }
    checkSpecAgainstReference(ref);
    if (spec.expect) {
        // optional sanity check of the reference itself, e.g. expect: r => assert(...)
        spec.expect(ref);
    }
    const a = comparable(actual);
    const e = comparable(ref);
    const sections = [
        ['replies', x => x.steps],
        ['connection close behaviour', x => x.connections],
        ['handler observations', x => x.observations],
        ['constructor warnings', x => x.warnings]
    ];
    for (const [what, pick] of sections) {
        try {
            assert.deepStrictEqual(pick(a), pick(e));
        } catch (err) {
            err.message =
                `${impl.label} differs from the smtp-server reference in ${what}` +
                ` (actual = ${impl.label}, expected = reference)\n` +
                err.message;
            throw err;
        }
    }
    return { reference: ref, actual };
}

// ---------------------------------------------------------------------------
// spec building blocks for the differential test files

/** A test that plays `spec` against both packages and compares the recordings. */
const check = (name, spec) =>
    require('node:test')(name, async t => {
        await compare(t, { name, ...spec });
    });
/** Sends `data` and waits for `replies` replies. */
const send = (data, replies = 1) => ({ send: data, replies });
/** Waits for the greeting. */
const G = { replies: 1 };
const EHLO = send('EHLO client.example\r\n');
const HELO = send('HELO client.example\r\n');
/** Waits for the server to close the connection. */
const WAIT_CLOSE = { wait: 'close' };
/** Command lines joined with CRLF (each one ended). */
const lines = (...cmds) => cmds.map(c => c + '\r\n').join('');

module.exports = {
    check,
    send,
    G,
    EHLO,
    HELO,
    WAIT_CLOSE,
    lines,
    runTranscript,
    compare,
    raw,
    snapshot,
    loadImplementation,
    loadReference,
    DEFAULT_OPTIONS
};
