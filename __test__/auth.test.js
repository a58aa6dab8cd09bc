'use strict';

// AUTH with real clients: nodemailer (PLAIN, LOGIN, CRAM-MD5, XOAUTH2) over STARTTLS,
// Python's smtplib login() (which picks CRAM-MD5, then PLAIN, then LOGIN), swaks when
// it is installed, the default server that refuses every login, and raw transcripts
// for what a fixed-bytes harness cannot do: CRAM-MD5 answered from the live challenge,
// oversized SASL lines and binary junk as a continuation.
//
// SMTP_IMPL=ref runs the same tests against the reference package, to check the tests
// (the tests of deliberate differences are skipped then).

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const nodemailer = require('nodemailer');
const { run, python, IS_REF, SMTPServer, WAIT, listen, closeServer, withServer: sharedWithServer, Client } = require('./helpers/smtp-client.js');

// ---------------------------------------------------------------------------
// helpers

const NAME = 'mx.test.example';

/** A server with this file's defaults (AUTH required unless the options say otherwise). */
function withServer(options, fn) {
    return sharedWithServer({ name: NAME, authOptional: false, ...options }, fn);
}

/** STARTTLS, the handshake (certificate not verified), then EHLO again. */
async function starttls(client, hello = 'EHLO client.test') {
    assert.equal(await client.cmd('STARTTLS'), '220 Ready to start TLS');
    await client.handshake({ servername: 'localhost' });
    if (hello) {
        client.ehlo = await client.cmd(hello);
        assert.match(client.ehlo, /^250[ -]/);
    }
    return client;
}

/** Runs fn(client) against a fresh connection and always destroys it. */
async function withClient(port, fn, hello) {
    const client = await Client.open(port, hello);
    try {
        return await fn(client);
    } finally {
        client.destroy();
    }
}

const b64 = text => Buffer.from(text, 'utf8').toString('base64');
const unb64 = text => Buffer.from(text, 'base64').toString('utf8');
const hmacMd5 = (key, text) => crypto.createHmac('md5', key).update(text).digest('hex');

const USERS = { alice: 'wonderland', 'bob@example.com': 'b0b-p4ss ✓' };
const TOKENS = { alice: 'ya29.good-token' };

/**
 * onAuth that knows USERS/TOKENS and records each call (and the session state seen).
 */
function recordingAuth(calls) {
    return function onAuth(auth, session, callback) {
        calls.push({ auth: { ...auth }, secure: session.secure, transmissionType: session.transmissionType, user: session.user });
        setImmediate(() => {
            let ok = false;
            switch (auth.method) {
                case 'PLAIN':
                case 'LOGIN':
                    ok = USERS[auth.username] !== undefined && USERS[auth.username] === auth.password;
                    break;
                case 'CRAM-MD5':
                    ok = USERS[auth.username] !== undefined && auth.validatePassword(USERS[auth.username]);
                    break;
                case 'XOAUTH2':
                    ok = TOKENS[auth.username] !== undefined && TOKENS[auth.username] === auth.accessToken;
                    if (!ok) {
                        return callback(null, { data: { status: '401', schemes: 'bearer', scope: 'mail' } });
                    }
                    break;
            }
            if (ok) {
                return callback(null, { user: { name: auth.username, via: auth.method } });
            }
            callback(null, { message: 'Invalid credentials for ' + auth.username });
        });
    };
}

/** onData that records the session state and the message. */
function recordingData(messages) {
    return function onData(stream, session, callback) {
        const chunks = [];
        stream.on('data', chunk => chunks.push(chunk));
        stream.on('end', () => {
            messages.push({ body: Buffer.concat(chunks).toString(), user: session.user, transmissionType: session.transmissionType, secure: session.secure, from: session.envelope.mailFrom.address });
            callback();
        });
    };
}

function transport(port, extra = {}) {
    return nodemailer.createTransport({
        host: '127.0.0.1',
        port,
        secure: false,
        requireTLS: true,
        tls: { rejectUnauthorized: false },
        logger: false,
        connectionTimeout: WAIT,
        greetingTimeout: WAIT,
        socketTimeout: 2 * WAIT,
        ...extra
    });
}

const MESSAGE = { from: 'sender@example.com', to: 'rcpt@example.com', subject: 'auth test', text: 'hello' };

function which(bin) {
    const res = spawnSync('sh', ['-c', `command -v ${bin}`]);
    return res.status === 0 ? res.stdout.toString().trim() : null;
}

const SWAKS = which('swaks');
const SWAKS_SUPPORT = SWAKS ? spawnSync(SWAKS, ['--support']).stdout.toString() + spawnSync(SWAKS, ['--support']).stderr.toString() : '';
const swaksCan = feature => new RegExp('^=== ' + feature + ' supported', 'm').test(SWAKS_SUPPORT);
const NO_SWAKS = SWAKS ? false : 'swaks is not installed (.ci/run installs it with apt-get)';

// smtplib: argv = port user password starttls(0|1); logs in, sends one message, prints JSON.
const PY_LOGIN = `
import json, smtplib, ssl, sys
port, user, password, use_tls = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == '1'
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
out = {}
s = smtplib.SMTP('127.0.0.1', port, local_hostname='py.client', timeout=10)
s.ehlo()
out['authBefore'] = (s.esmtp_features.get('auth') or '').strip() or None
out['starttlsOffered'] = 'starttls' in s.esmtp_features
if use_tls:
    s.starttls(context=ctx)
    s.ehlo()
    out['tlsVersion'] = s.sock.version()
out['auth'] = (s.esmtp_features.get('auth') or '').strip() or None
try:
    code, resp = s.login(user, password)
    out['login'] = [code, resp.decode()]
    s.sendmail('py@example.com', ['rcpt@example.com'], b'Subject: py\\r\\n\\r\\nlogged in\\r\\n')
    out['sent'] = True
except smtplib.SMTPAuthenticationError as e:
    out['authError'] = [e.smtp_code, e.smtp_error.decode()]
except smtplib.SMTPException as e:
    out['error'] = repr(e)
out['afterEhlo'] = s.ehlo()[0]
out['authAfter'] = (s.esmtp_features.get('auth') or '').strip() or None
s.quit()
print(json.dumps(out))
`;

const ALL = ['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2'];

// ---------------------------------------------------------------------------
// nodemailer over STARTTLS

for (const method of ['PLAIN', 'LOGIN', 'CRAM-MD5']) {
    test(`nodemailer ${method} over STARTTLS delivers with session.user set`, { timeout: 20000 }, async () => {
        const calls = [];
        const messages = [];
        await withServer({ authMethods: ALL, onAuth: recordingAuth(calls), onData: recordingData(messages) }, async port => {
            const tr = transport(port, { auth: { user: 'bob@example.com', pass: USERS['bob@example.com'] }, authMethod: method });
            try {
                const info = await tr.sendMail(MESSAGE);
                assert.deepEqual(info.accepted, ['rcpt@example.com']);
            } finally {
                tr.close();
            }
        });
        assert.equal(calls.length, 1, 'one onAuth call');
        const { auth, secure } = calls[0];
        assert.equal(auth.method, method);
        assert.equal(auth.username, 'bob@example.com');
        assert.equal(secure, true, 'onAuth runs after STARTTLS');
        if (method === 'PLAIN') {
            assert.equal(auth.password, USERS['bob@example.com']);
            assert.equal(auth.authzid, '');
            assert.equal(auth.authcid, 'bob@example.com');
        } else if (method === 'LOGIN') {
            assert.deepEqual(Object.keys(auth).sort(), ['method', 'password', 'username']);
            assert.equal(auth.password, USERS['bob@example.com']);
        } else {
            assert.equal(auth.password, undefined, 'CRAM-MD5 has no password field');
            assert.match(auth.challenge, new RegExp(`^<[0-9a-f]{32}\\.\\d+@${NAME.replace(/\./g, '\\.')}>$`));
            assert.equal(auth.challengeResponse, hmacMd5(USERS['bob@example.com'], auth.challenge));
            assert.equal(typeof auth.validatePassword, 'function');
        }
        assert.equal(messages.length, 1);
        assert.deepEqual(messages[0].user, { name: 'bob@example.com', via: method });
        assert.equal(messages[0].transmissionType, 'ESMTPSA');
        assert.equal(messages[0].secure, true);
    });
}

test('nodemailer XOAUTH2 (OAuth2 with an accessToken) over STARTTLS', { timeout: 20000 }, async () => {
    const calls = [];
    const messages = [];
    await withServer({ authMethods: ['XOAUTH2'], onAuth: recordingAuth(calls), onData: recordingData(messages) }, async port => {
        const tr = transport(port, { auth: { type: 'OAuth2', user: 'alice', accessToken: TOKENS.alice } });
        try {
            await tr.sendMail(MESSAGE);
        } finally {
            tr.close();
        }
    });
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0].auth, { method: 'XOAUTH2', username: 'alice', accessToken: TOKENS.alice });
    assert.equal(calls[0].secure, true);
    assert.deepEqual(messages[0].user, { name: 'alice', via: 'XOAUTH2' });
    assert.equal(messages[0].transmissionType, 'ESMTPSA');
});

test('nodemailer XOAUTH2 with a bad token gets the challenge, then EAUTH 535', { timeout: 20000 }, async () => {
    const calls = [];
    await withServer({ authMethods: ['XOAUTH2'], onAuth: recordingAuth(calls) }, async port => {
        const tr = transport(port, { auth: { type: 'OAuth2', user: 'alice', accessToken: 'expired' } });
        try {
            await assert.rejects(tr.verify(), err => {
                assert.equal(err.code, 'EAUTH');
                assert.equal(err.responseCode, 535);
                assert.match(err.response, /^535 Error: Username and Password not accepted/);
                return true;
            });
        } finally {
            tr.close();
        }
    });
    // nodemailer asks for the token again and retries once on the same connection
    assert.equal(calls.length, 2);
    assert.deepEqual(calls.map(c => c.auth.method), ['XOAUTH2', 'XOAUTH2']);
});

for (const method of ['PLAIN', 'LOGIN', 'CRAM-MD5']) {
    test(`nodemailer ${method} with a wrong password gets EAUTH 535 and the handler message`, { timeout: 20000 }, async () => {
        const calls = [];
        await withServer({ authMethods: ALL, onAuth: recordingAuth(calls) }, async port => {
            const tr = transport(port, { auth: { user: 'alice', pass: 'not-the-password' }, authMethod: method });
            try {
                await assert.rejects(tr.verify(), err => {
                    assert.equal(err.code, 'EAUTH');
                    assert.equal(err.responseCode, 535);
                    assert.match(err.response, /^535 Invalid credentials for alice/);
                    return true;
                });
            } finally {
                tr.close();
            }
        });
        assert.equal(calls.length, 1);
        assert.equal(calls[0].auth.method, method);
    });
}

test('nodemailer picks a mechanism from the advertised list (only LOGIN offered)', { timeout: 20000 }, async () => {
    const calls = [];
    await withServer({ authMethods: ['LOGIN'], onAuth: recordingAuth(calls) }, async port => {
        const tr = transport(port, { auth: { user: 'alice', pass: USERS.alice } });
        try {
            assert.equal(await tr.verify(), true);
        } finally {
            tr.close();
        }
    });
    assert.deepEqual(calls.map(c => c.auth.method), ['LOGIN']);
});

test('nodemailer on plaintext with STARTTLS available gets 538 for AUTH', { timeout: 20000 }, async () => {
    const calls = [];
    await withServer({ onAuth: recordingAuth(calls) }, async port => {
        const tr = transport(port, { requireTLS: false, ignoreTLS: true, auth: { user: 'alice', pass: USERS.alice }, authMethod: 'PLAIN' });
        try {
            await assert.rejects(tr.verify(), err => {
                assert.equal(err.code, 'EAUTH');
                assert.equal(err.responseCode, 538);
                assert.match(err.response, /^538 Error: Must issue a STARTTLS command first/);
                return true;
            });
        } finally {
            tr.close();
        }
    });
    assert.equal(calls.length, 0, 'onAuth is never reached');
});

test('nodemailer: many parallel logins each get their own user', { timeout: 30000 }, async () => {
    const messages = [];
    const onAuth = (auth, session, callback) => {
        // answer in a scrambled order
        const delay = (auth.username.charCodeAt(auth.username.length - 1) * 7) % 40;
        setTimeout(() => callback(null, { user: 'id:' + auth.username }), delay);
    };
    await withServer({ onAuth, onData: recordingData(messages) }, async port => {
        const jobs = [];
        for (let i = 0; i < 12; i++) {
            const user = 'user' + String.fromCharCode(97 + i);
            const tr = transport(port, { auth: { user, pass: 'x' } });
            jobs.push(
                tr
                    .sendMail({ ...MESSAGE, from: user + '@example.com' })
                    .finally(() => tr.close())
            );
        }
        await Promise.all(jobs);
    });
    assert.equal(messages.length, 12);
    for (const m of messages) {
        assert.equal(m.user, 'id:' + m.from.split('@')[0], 'the session user belongs to that connection');
        assert.equal(m.transmissionType, 'ESMTPSA');
    }
});

// ---------------------------------------------------------------------------
// Python smtplib

for (const [offered, expected] of [
    [['PLAIN', 'LOGIN', 'CRAM-MD5'], 'CRAM-MD5'],
    [['LOGIN', 'PLAIN'], 'PLAIN'],
    [['LOGIN'], 'LOGIN']
]) {
    test(`smtplib login() over STARTTLS with ${offered.join(' ')} offered uses ${expected}`, { timeout: 30000 }, async () => {
        const calls = [];
        const messages = [];
        let out;
        await withServer({ authMethods: offered, onAuth: recordingAuth(calls), onData: recordingData(messages) }, async port => {
            out = await python(PY_LOGIN, [port, 'alice', USERS.alice, 1]);
        });
        assert.equal(out.authBefore, offered.join(' '), 'AUTH is advertised on plaintext too');
        assert.equal(out.starttlsOffered, true);
        assert.match(out.tlsVersion, /^TLSv1\.[23]$/);
        assert.deepEqual(out.login, [235, 'Authentication successful']);
        assert.equal(out.sent, true);
        assert.equal(out.authAfter, null, 'EHLO after AUTH no longer lists AUTH');
        assert.deepEqual(calls.map(c => c.auth.method), [expected]);
        assert.equal(calls[0].auth.username, 'alice');
        assert.equal(calls[0].secure, true);
        assert.equal(messages.length, 1);
        assert.deepEqual(messages[0].user, { name: 'alice', via: expected });
        assert.equal(messages[0].transmissionType, 'ESMTPSA');
    });
}

test('smtplib login() with a wrong password tries CRAM-MD5, PLAIN and LOGIN, then fails with 535', { timeout: 30000 }, async () => {
    const calls = [];
    let out;
    await withServer({ authMethods: ['LOGIN', 'PLAIN', 'CRAM-MD5'], onAuth: recordingAuth(calls) }, async port => {
        out = await python(PY_LOGIN, [port, 'alice', 'wrong', 1]);
    });
    assert.deepEqual(out.authError, [535, 'Invalid credentials for alice']);
    assert.deepEqual(calls.map(c => c.auth.method), ['CRAM-MD5', 'PLAIN', 'LOGIN']);
    assert.equal(out.authAfter, 'LOGIN PLAIN CRAM-MD5', 'AUTH still advertised after failures');
});

test('smtplib login() without STARTTLS gets 538', { timeout: 30000 }, async () => {
    const calls = [];
    let out;
    await withServer({ onAuth: recordingAuth(calls) }, async port => {
        out = await python(PY_LOGIN, [port, 'alice', USERS.alice, 0]);
    });
    assert.deepEqual(out.authError, [538, 'Error: Must issue a STARTTLS command first']);
    assert.equal(calls.length, 0);
});

test('smtplib login() on plaintext with allowInsecureAuth', { timeout: 30000 }, async () => {
    const calls = [];
    let out;
    await withServer({ allowInsecureAuth: true, onAuth: recordingAuth(calls) }, async port => {
        out = await python(PY_LOGIN, [port, 'alice', USERS.alice, 0]);
    });
    assert.deepEqual(out.login, [235, 'Authentication successful']);
    assert.equal(out.sent, true);
    assert.equal(calls[0].secure, false);
    assert.equal(calls[0].transmissionType, 'ESMTP');
});

// ---------------------------------------------------------------------------
// swaks

async function swaks(port, args) {
    return run(SWAKS, ['--server', '127.0.0.1', '--port', String(port), '--from', 'swaks@example.com', '--to', 'rcpt@example.com', '--helo', 'swaks.client', '--timeout', '10', ...args]);
}

for (const method of ['PLAIN', 'LOGIN', 'CRAM-MD5']) {
    const skip = NO_SWAKS || (method === 'CRAM-MD5' && !swaksCan('AUTH CRAM-MD5') ? 'this swaks lacks CRAM-MD5 support' : false);
    test(`swaks --auth ${method} (plaintext, allowInsecureAuth)`, { timeout: 30000, skip }, async () => {
        const calls = [];
        const messages = [];
        let res;
        await withServer({ allowInsecureAuth: true, authMethods: ALL, onAuth: recordingAuth(calls), onData: recordingData(messages) }, async port => {
            res = await swaks(port, ['--auth', method, '--auth-user', 'alice', '--auth-password', USERS.alice]);
        });
        assert.equal(res.code, 0, `swaks failed:\n${res.stdout}\n${res.stderr}`);
        assert.match(res.stdout, /<-\s+235 Authentication successful/);
        assert.deepEqual(calls.map(c => c.auth.method), [method]);
        assert.equal(messages.length, 1);
        assert.deepEqual(messages[0].user, { name: 'alice', via: method });
        assert.equal(messages[0].transmissionType, 'ESMTPA');
    });
}

test('swaks --auth PLAIN with a wrong password fails with 535', { timeout: 30000, skip: NO_SWAKS }, async () => {
    const calls = [];
    const messages = [];
    let res;
    await withServer({ allowInsecureAuth: true, onAuth: recordingAuth(calls), onData: recordingData(messages) }, async port => {
        res = await swaks(port, ['--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 'nope']);
    });
    assert.notEqual(res.code, 0);
    assert.match(res.stdout + res.stderr, /<\*\*\s+535 Invalid credentials for alice/);
    assert.equal(messages.length, 0);
});

test('swaks --tls --auth LOGIN', { timeout: 30000, skip: NO_SWAKS || (!swaksCan('TLS') && 'this swaks has no TLS support (libnet-ssleay-perl)') }, async () => {
    const calls = [];
    const messages = [];
    let res;
    await withServer({ onAuth: recordingAuth(calls), onData: recordingData(messages) }, async port => {
        res = await swaks(port, ['--tls', '--auth', 'LOGIN', '--auth-user', 'alice', '--auth-password', USERS.alice]);
    });
    assert.equal(res.code, 0, `swaks failed:\n${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /<-\s+220 Ready to start TLS/);
    assert.match(res.stdout, /<~\s+235 Authentication successful/);
    assert.equal(calls[0].secure, true);
    assert.equal(messages[0].transmissionType, 'ESMTPSA');
});

// ---------------------------------------------------------------------------
// the default server (no options): AUTH required, every login refused

test('default server: AUTH needs STARTTLS, then every login is refused and MAIL needs AUTH', { timeout: 20000 }, async () => {
    const server = new SMTPServer({ disableReverseLookup: true, logger: false, closeTimeout: 1000 });
    const port = await listen(server);
    try {
        await withClient(port, async c => {
            assert.match(c.ehlo, /^250-AUTH LOGIN PLAIN$/m);
            assert.match(c.ehlo, /^250 STARTTLS$/m);
            assert.equal(await c.cmd('MAIL FROM:<a@example.com>'), '530 Error: authentication Required');
            assert.equal(await c.cmd('AUTH PLAIN ' + b64('\0alice\0' + USERS.alice)), '538 Error: Must issue a STARTTLS command first');
            await starttls(c);
            assert.doesNotMatch(c.ehlo, /STARTTLS/);
            assert.match(c.ehlo, /^250 AUTH LOGIN PLAIN$/m);
            assert.equal(await c.cmd('AUTH PLAIN ' + b64('\0alice\0' + USERS.alice)), '535 Authentication not implemented');
            assert.equal(await c.cmd('AUTH LOGIN'), '334 VXNlcm5hbWU6');
            assert.equal(await c.cmd(b64('alice')), '334 UGFzc3dvcmQ6');
            assert.equal(await c.cmd(b64(USERS.alice)), '535 Authentication not implemented');
            assert.equal(await c.cmd('AUTH XOAUTH2 ' + b64('user=alice\x01auth=Bearer t\x01\x01')), '504 Error: Unrecognized authentication type');
            assert.equal(await c.cmd('AUTH CRAM-MD5'), '504 Error: Unrecognized authentication type');
            assert.equal(await c.cmd('MAIL FROM:<a@example.com>'), '530 Error: authentication Required');
            assert.equal(await c.cmd('RCPT TO:<b@example.com>'), '530 Error: authentication Required');
            assert.equal(await c.cmd('DATA'), '530 Error: authentication Required');
        });
    } finally {
        await closeServer(server);
    }
});

test('default server: the default onAuth answers XOAUTH2 with the Gmail-style challenge', { timeout: 20000 }, async () => {
    await withServer({ authMethods: ['XOAUTH2'] }, async port => {
        await withClient(port, async c => {
            await starttls(c);
            const reply = await c.cmd('AUTH XOAUTH2 ' + b64('user=alice\x01auth=Bearer t\x01\x01'));
            assert.match(reply, /^334 /);
            assert.deepEqual(JSON.parse(unb64(reply.slice(4))), { status: '401', schemes: 'bearer mac', scope: 'https://mail.google.com/' });
            assert.equal(await c.cmd(''), '535 Error: Username and Password not accepted');
        });
    });
});

test('default server: nodemailer login is refused (535), and without auth MAIL gets 530', { timeout: 20000 }, async () => {
    const server = new SMTPServer({ disableReverseLookup: true, logger: false, closeTimeout: 1000 });
    const port = await listen(server);
    try {
        const withAuth = transport(port, { auth: { user: 'alice', pass: USERS.alice } });
        try {
            await assert.rejects(withAuth.verify(), err => {
                assert.equal(err.code, 'EAUTH');
                assert.equal(err.responseCode, 535);
                assert.match(err.response, /Authentication not implemented/);
                return true;
            });
        } finally {
            withAuth.close();
        }
        const noAuth = transport(port);
        try {
            await assert.rejects(noAuth.sendMail(MESSAGE), err => {
                assert.equal(err.responseCode, 530);
                assert.match(err.response, /^530 Error: authentication Required/);
                return true;
            });
        } finally {
            noAuth.close();
        }
    } finally {
        await closeServer(server);
    }
});

// ---------------------------------------------------------------------------
// CRAM-MD5 answered from the live challenge (raw client)

const CRAM = { allowInsecureAuth: true, authMethods: ['CRAM-MD5', 'PLAIN'] };

async function cramChallenge(c) {
    const reply = await c.cmd('AUTH CRAM-MD5');
    assert.match(reply, /^334 [A-Za-z0-9+/]+=*$/, 'a base64 challenge');
    return unb64(reply.slice(4));
}

test('CRAM-MD5: challenge format, validatePassword, success and MAIL', { timeout: 20000 }, async () => {
    const calls = [];
    const seen = [];
    const onAuth = (auth, session, callback) => {
        calls.push({
            keys: Object.keys(auth).sort(),
            challenge: auth.challenge,
            challengeResponse: auth.challengeResponse,
            good: auth.validatePassword('wonderland'),
            bad: auth.validatePassword('wonderland2'),
            empty: auth.validatePassword('')
        });
        callback(null, auth.validatePassword(USERS[auth.username] || '\0') ? { user: auth.username } : null);
    };
    const onMailFrom = (address, session, callback) => {
        seen.push({ user: session.user, tt: session.transmissionType });
        callback();
    };
    await withServer({ ...CRAM, onAuth, onMailFrom }, async port => {
        await withClient(port, async c => {
            const before = Math.floor(Date.now() / 1000);
            const challenge = await cramChallenge(c);
            const after = Math.floor(Date.now() / 1000);
            const m = /^<([0-9a-f]{32})\.(\d+)@(.+)>$/.exec(challenge);
            assert.ok(m, `challenge ${JSON.stringify(challenge)} is <hex.time@name>`);
            assert.ok(Number(m[2]) >= before - 1 && Number(m[2]) <= after + 1, 'the challenge carries the current unix time');
            assert.equal(m[3], NAME);
            assert.equal(await c.cmd(b64('alice ' + hmacMd5('wonderland', challenge))), '235 Authentication successful');
            assert.equal(calls.length, 1);
            assert.deepEqual(calls[0].keys, ['challenge', 'challengeResponse', 'method', 'username', 'validatePassword']);
            assert.equal(calls[0].challenge, challenge);
            assert.equal(calls[0].good, true);
            assert.equal(calls[0].bad, false);
            assert.equal(calls[0].empty, false);
            assert.equal(await c.cmd('MAIL FROM:<a@example.com>'), '250 Accepted');
            assert.deepEqual(seen, [{ user: 'alice', tt: 'ESMTPA' }]);
            assert.equal(await c.cmd('AUTH CRAM-MD5'), '503 Error: No identity changes permitted');
        });
    });
});

test('CRAM-MD5: wrong response fails, upper-case hex is accepted, every challenge is new', { timeout: 20000 }, async () => {
    const calls = [];
    const onAuth = (auth, session, callback) => {
        calls.push({ username: auth.username, challengeResponse: auth.challengeResponse });
        callback(null, auth.validatePassword(USERS[auth.username] || '\0') ? { user: auth.username } : { message: 'CRAM says no' });
    };
    await withServer({ ...CRAM, onAuth }, async port => {
        await withClient(port, async c => {
            const challenges = new Set();
            let ch = await cramChallenge(c);
            challenges.add(ch);
            assert.equal(await c.cmd(b64('alice ' + hmacMd5('wrong', ch))), '535 CRAM says no');
            ch = await cramChallenge(c);
            challenges.add(ch);
            // a response without a digest
            assert.equal(await c.cmd(b64('alice')), '535 CRAM says no');
            ch = await cramChallenge(c);
            challenges.add(ch);
            assert.equal(challenges.size, 3, 'a fresh challenge each time');
            const upper = hmacMd5('wonderland', ch).toUpperCase();
            assert.equal(await c.cmd(b64('alice ' + upper + ' trailing words')), '235 Authentication successful');
            assert.deepEqual(calls[1], { username: 'alice', challengeResponse: '' });
            assert.equal(calls[2].challengeResponse, upper.toLowerCase());
        });
    });
});

test('CRAM-MD5: * aborts, control characters in the username are refused, default onAuth refuses', { timeout: 20000 }, async () => {
    await withServer(CRAM, async port => {
        await withClient(port, async c => {
            await cramChallenge(c);
            assert.equal(await c.cmd('*'), '501 Authentication aborted');
            const ch = await cramChallenge(c);
            assert.equal(await c.cmd(b64('ali\x07ce ' + hmacMd5('wonderland', ch))), '501 Error: invalid userdata');
            const ch2 = await cramChallenge(c);
            assert.equal(await c.cmd(b64('alice ' + hmacMd5('wonderland', ch2))), '535 Authentication not implemented');
            assert.equal(await c.cmd('AUTH CRAM-MD5 ' + b64('alice x')), '501 Error: syntax: AUTH CRAM-MD5');
        });
    });
});

test('CRAM-MD5 with enhanced status codes: 334 has none, the result has one', { timeout: 20000 }, async () => {
    const onAuth = (auth, session, callback) => callback(null, auth.validatePassword('wonderland') ? { user: 'alice' } : {});
    await withServer({ ...CRAM, hideENHANCEDSTATUSCODES: false, onAuth }, async port => {
        await withClient(port, async c => {
            let ch = await cramChallenge(c);
            assert.equal(await c.cmd(b64('alice 00')), '535 5.7.8 Error: Authentication credentials invalid');
            ch = await cramChallenge(c);
            assert.equal(await c.cmd(b64('alice ' + hmacMd5('wonderland', ch))), '235 2.7.0 Authentication successful');
        });
    });
});

test('CRAM-MD5 over STARTTLS with a raw client', { timeout: 20000 }, async () => {
    const sessions = [];
    const onAuth = (auth, session, callback) => {
        sessions.push({ secure: session.secure, tlsOptions: session.tlsOptions });
        callback(null, auth.validatePassword('wonderland') ? { user: 'alice' } : {});
    };
    await withServer({ authMethods: ['CRAM-MD5'], onAuth }, async port => {
        await withClient(port, async c => {
            assert.equal(await c.cmd('AUTH CRAM-MD5'), '538 Error: Must issue a STARTTLS command first');
            await starttls(c);
            assert.match(c.ehlo, /^250 AUTH CRAM-MD5$/m);
            const ch = await cramChallenge(c);
            assert.equal(await c.cmd(b64('alice ' + hmacMd5('wonderland', ch))), '235 Authentication successful');
        });
    });
    assert.equal(sessions[0].secure, true);
    assert.equal(typeof sessions[0].tlsOptions.name, 'string');
});

// ---------------------------------------------------------------------------
// raw transcripts: oversized SASL lines, binary junk

test('an AUTH PLAIN continuation over maxCommandLength gets 421 and a close', { timeout: 20000 }, async () => {
    const calls = [];
    await withServer({ allowInsecureAuth: true, maxCommandLength: 512, onAuth: recordingAuth(calls) }, async port => {
        // exactly at the limit is still a line
        await withClient(port, async c => {
            assert.equal(await c.cmd('AUTH PLAIN'), '334 ');
            const atLimit = 'A'.repeat(512);
            assert.equal(await c.cmd(atLimit), '501 Error: invalid userdata');
            assert.equal(await c.cmd('NOOP'), '250 OK');
        });
        await withClient(port, async c => {
            assert.equal(await c.cmd('AUTH PLAIN'), '334 ');
            const token = b64('\0alice\0' + 'x'.repeat(600));
            assert.ok(token.length > 512);
            assert.equal(await c.cmd(token), '421 Error: Command line too long');
            await c.waitClose();
        });
        await withClient(port, async c => {
            assert.equal(await c.cmd('AUTH LOGIN'), '334 VXNlcm5hbWU6');
            assert.equal(await c.cmd(b64('alice')), '334 UGFzc3dvcmQ6');
            // a password line that never ends within the limit
            c.write('B'.repeat(4096));
            assert.equal(await c.read('the reply to an endless password line'), '421 Error: Command line too long');
            await c.waitClose();
        });
    });
    assert.equal(calls.length, 0, 'onAuth never ran');
});

test('an oversized SASL line with the default maxCommandLength (16 KiB)', { timeout: 20000 }, async () => {
    await withServer({ allowInsecureAuth: true, authMethods: ['XOAUTH2'] }, async port => {
        await withClient(port, async c => {
            assert.equal(await c.cmd('AUTH XOAUTH2'), '334 ');
            // a realistic large token still fits
            const big = b64('user=alice\x01auth=Bearer ' + 'T'.repeat(8000) + '\x01\x01');
            assert.match(await c.cmd(big), /^334 /);
            assert.equal(await c.cmd(''), '535 Error: Username and Password not accepted');
            assert.equal(await c.cmd('AUTH XOAUTH2'), '334 ');
            assert.equal(await c.cmd('Q'.repeat(20000)), '421 Error: Command line too long');
            await c.waitClose();
        });
    });
});

test('binary junk as an AUTH continuation is refused and the connection stays usable', { timeout: 20000 }, async () => {
    const calls = [];
    await withServer({ allowInsecureAuth: true, authMethods: ['PLAIN', 'LOGIN', 'XOAUTH2'], onAuth: recordingAuth(calls) }, async port => {
        await withClient(port, async c => {
            const junk = Buffer.from([0x00, 0xff, 0xfe, 0x1b, 0x5b, 0x32, 0x4a, 0x80, 0x9f, 0xc3, 0x28, 0x07, 0x08, 0x7f, 0xe2, 0x82]);
            assert.equal(await c.cmd('AUTH PLAIN'), '334 ');
            c.write(Buffer.concat([junk, Buffer.from('\r\n')]));
            assert.equal(await c.read('the reply to junk at the PLAIN prompt'), '501 Error: invalid userdata');
            assert.equal(await c.cmd('AUTH XOAUTH2'), '334 ');
            c.write(Buffer.concat([junk, junk, Buffer.from('\r\n')]));
            assert.equal(await c.read('the reply to junk at the XOAUTH2 prompt'), '501 Error: invalid userdata');
            assert.equal(await c.cmd('NOOP'), '250 OK');
            assert.equal(await c.cmd('AUTH PLAIN ' + b64('\0alice\0' + USERS.alice)), '235 Authentication successful');
        });
    });
    assert.deepEqual(calls.map(c => c.auth.method), ['PLAIN']);
});

test('binary junk as the LOGIN password reaches onAuth as decoded text', { timeout: 20000 }, async () => {
    const calls = [];
    await withServer({ allowInsecureAuth: true, onAuth: recordingAuth(calls) }, async port => {
        await withClient(port, async c => {
            assert.equal(await c.cmd('AUTH LOGIN'), '334 VXNlcm5hbWU6');
            assert.equal(await c.cmd(b64('alice')), '334 UGFzc3dvcmQ6');
            c.write(Buffer.concat([Buffer.from([0xff, 0x00, 0x41, 0x41, 0x41, 0x41, 0xfe]), Buffer.from('\r\n')]));
            assert.equal(await c.read('the reply to junk as the password'), '535 Invalid credentials for alice');
        });
    });
    assert.equal(calls.length, 1);
    // the lenient base64 decoder keeps only "AAAA" -> three NUL bytes
    assert.equal(calls[0].auth.password, '\0\0\0');
});

// ---------------------------------------------------------------------------
// timing around the dialogue

test('idle at an AUTH prompt: 421 Timeout after socketTimeout', { timeout: 20000 }, async () => {
    await withServer({ allowInsecureAuth: true, socketTimeout: 300 }, async port => {
        await withClient(port, async c => {
            assert.equal(await c.cmd('AUTH LOGIN'), '334 VXNlcm5hbWU6');
            assert.equal(await c.read('the idle timeout reply'), '421 Timeout - closing connection');
            await c.waitClose();
        });
    });
});

test('a client that leaves while onAuth is pending: the late callback is harmless', { timeout: 20000 }, async () => {
    let release;
    const released = new Promise(resolve => {
        release = resolve;
    });
    const closed = [];
    let authCalls = 0;
    const onAuth = (auth, session, callback) => {
        authCalls++;
        released.then(() => callback(null, { user: auth.username }));
    };
    await withServer({ allowInsecureAuth: true, onAuth, onClose: session => closed.push(session.id) }, async (port, server) => {
        try {
            await leaveDuringOnAuth(port, server);
        } finally {
            release();
        }
    });

    async function leaveDuringOnAuth(port, server) {
        const c = await Client.open(port);
        c.write('AUTH PLAIN ' + b64('\0alice\0' + USERS.alice) + '\r\n');
        const start = Date.now();
        while (authCalls === 0) {
            assert.ok(Date.now() - start < WAIT, 'onAuth was not called');
            await new Promise(resolve => setTimeout(resolve, 10));
        }
        c.destroy();
        // the close is noticed while onAuth is still pending (smtp-server calls onClose at once)
        while (closed.length === 0) {
            assert.ok(Date.now() - start < WAIT, 'onClose was not called while onAuth was pending (the client left ' + WAIT + ' ms ago)');
            await new Promise(resolve => setTimeout(resolve, 10));
        }
        assert.equal(server.connections.size, 0, 'the connection left server.connections');
        release();
        await withClient(port, async d => {
            assert.equal(await d.cmd('AUTH PLAIN ' + b64('\0bob\0x')), '235 Authentication successful');
        });
    }
});

// ---------------------------------------------------------------------------
// deliberate differences

test('AUTH XCLIENT (XCLIENT listed in authMethods) is refused with 504', { timeout: 20000, skip: IS_REF && 'smtp-server never replies to AUTH XCLIENT' }, async () => {
    const calls = [];
    await withServer({ allowInsecureAuth: true, authMethods: ['PLAIN', 'XCLIENT'], onAuth: recordingAuth(calls) }, async port => {
        await withClient(port, async c => {
            assert.match(c.ehlo, /^250-AUTH PLAIN XCLIENT$/m);
            assert.equal(await c.cmd('AUTH XCLIENT alice'), '504 Error: Unrecognized authentication type');
            assert.equal(await c.cmd('MAIL FROM:<a@example.com>'), '530 Error: authentication Required');
        });
    });
    assert.equal(calls.length, 0);
});
