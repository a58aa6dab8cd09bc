'use strict';

// Differential AUTH transcripts: every test plays the same raw SMTP conversation
// against the reference `smtp-server@3.21.6` and against the implementation under
// test (SMTP_IMPL=rs, the default), and requires identical reply bytes, close
// behaviour and handler observations (onAuth arguments, the session as onAuth and
// a later onMailFrom see it). See helpers/transcript.js for the spec format.
//
// Everything here is plaintext, so AUTH is made possible with allowInsecureAuth,
// hideSTARTTLS or disabledCommands: ['STARTTLS'], except in the 538 cases.
//
// Not here, on purpose:
//   - CRAM-MD5 exchanges past the challenge: the challenge is random (and carries the
//     time), and the harness sends fixed bytes, so those dialogues are tested with real
//     clients in auth.test.js. The CRAM-MD5 replies that come before a challenge
//     (syntax, 504, 538, 503) are here.
//   - `AUTH XCLIENT` (listing XCLIENT in authMethods): smtp-server never replies to it,
//     smtp-server-rs refuses it with 504 (a deliberate difference, see auth.test.js).

const { describe } = require('node:test');
const { check, send, G, EHLO, HELO, WAIT_CLOSE } = require('./helpers/transcript.js');

// ---------------------------------------------------------------------------
// spec helpers

const MAIL = send('MAIL FROM:<sender@example.com>\r\n');

const INSECURE = { allowInsecureAuth: true };
const HIDDEN_TLS = { hideSTARTTLS: true };
const NO_TLS = { disabledCommands: ['STARTTLS'] };
const ESC = { hideENHANCEDSTATUSCODES: false };
const ALL_METHODS = { authMethods: ['PLAIN', 'LOGIN', 'XOAUTH2', 'CRAM-MD5'] };

const b64 = text => Buffer.from(text, 'utf8').toString('base64');
const plain = (authzid, authcid, password) => b64(`${authzid}\x00${authcid}\x00${password}`);
const xoauth2 = (user, token, scheme = 'Bearer') => b64(`user=${user}\x01auth=${scheme} ${token}\x01\x01`);
const line = text => text + '\r\n';

function error(message, responseCode) {
    const err = new Error(message);
    if (responseCode !== undefined) {
        err.responseCode = responseCode;
    }
    return err;
}

// onAuth that accepts user/secret (and for XOAUTH2 user/good-token), asynchronously
function accept(auth, session, callback) {
    const good = auth.username === 'user' && (auth.method === 'XOAUTH2' ? auth.accessToken === 'good-token' : auth.password === 'secret');
    setImmediate(() => {
        if (good) {
            return callback(null, { user: 'uid-' + auth.username });
        }
        callback(null, { message: 'Bad username or password for ' + auth.username });
    });
}

// onAuth that answers with make() (a fresh [err, response] per call)
const answer = make => (auth, session, callback) => setImmediate(() => callback(...make()));

const RECORD = { onAuth: accept, onMailFrom: true };

// ---------------------------------------------------------------------------

describe('smtp-server differential AUTH transcripts', { concurrency: true }, () => {
    describe('PLAIN', { concurrency: true }, () => {
        check('PLAIN with an initial response succeeds, MAIL sees the user', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), MAIL]
        });

        check('PLAIN with the 334 prompt succeeds', {
            options: HIDDEN_TLS,
            handlers: RECORD,
            steps: [G, EHLO, send('AUTH PLAIN\r\n'), send(line(plain('', 'user', 'secret'))), MAIL]
        });

        check('PLAIN with a wrong password fails with the handler message, a retry succeeds', {
            options: NO_TLS,
            handlers: RECORD,
            steps: [
                G,
                EHLO,
                send(line('AUTH PLAIN ' + plain('', 'user', 'wrong'))),
                MAIL,
                send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))),
                MAIL
            ]
        });

        check('PLAIN with the prompt and a wrong password', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send('AUTH PLAIN\r\n'), send(line(plain('', 'someone', 'secret')))]
        });

        check('PLAIN default onAuth refuses', {
            options: INSECURE,
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), send('AUTH PLAIN\r\n'), send(line(plain('', 'user', 'secret'))), MAIL]
        });

        check('PLAIN * at the prompt aborts', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send('AUTH PLAIN\r\n'), send('*\r\n'), send('AUTH PLAIN\r\n'), send(' * \r\n'), send('AUTH PLAIN\r\n'), send('\r\n'), send('AUTH PLAIN\r\n'), send('**\r\n')]
        });

        check('PLAIN initial response * is not an abort', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send('AUTH PLAIN *\r\n')]
        });

        check('PLAIN initial response = (empty) is invalid userdata', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send('AUTH PLAIN =\r\n')]
        });

        check('PLAIN with authzid and authcid', {
            options: INSECURE,
            handlers: { onAuth: true },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('admin', 'user', 'secret')))]
        });

        check('PLAIN with only the authzid uses it as the username', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('user', '', 'secret'))), MAIL]
        });

        check('PLAIN with empty fields', {
            options: INSECURE,
            handlers: { onAuth: true },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', '', '')))]
        });

        check('PLAIN token with two or four parts is invalid userdata', {
            options: INSECURE,
            handlers: { onAuth: true },
            steps: [
                G,
                EHLO,
                send(line('AUTH PLAIN ' + b64('user\x00secret'))),
                send(line('AUTH PLAIN ' + b64('a\x00user\x00secret\x00more'))),
                send(line('AUTH PLAIN ' + b64('usersecret')))
            ]
        });

        check('PLAIN garbage and non-base64 tokens', {
            options: INSECURE,
            handlers: { onAuth: true },
            steps: [G, EHLO, send('AUTH PLAIN !!!@@@###\r\n'), send('AUTH PLAIN\r\n'), send('this is not base64 at all\r\n'), send('AUTH PLAIN AHVzZXIAc2VjcmV0!!\r\n')]
        });

        check('PLAIN base64url alphabet and missing padding are accepted', {
            options: INSECURE,
            handlers: { onAuth: true },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + b64('\x00us>?er\x00se~~cret').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')))]
        });

        check('PLAIN control characters in the username are refused', {
            options: INSECURE,
            handlers: { onAuth: true },
            steps: [
                G,
                EHLO,
                send(line('AUTH PLAIN ' + plain('', 'us\ter', 'secret'))),
                send(line('AUTH PLAIN ' + plain('', 'user\x7f', 'secret'))),
                send(line('AUTH PLAIN ' + plain('', 'us\u0085er', 'secret'))),
                send(line('AUTH PLAIN ' + plain('', 'user\r\nMAIL FROM:<x@y>', 'secret')))
            ]
        });

        check('PLAIN control characters in the authzid are refused, in the password allowed', {
            options: INSECURE,
            handlers: { onAuth: true },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('ad\x01min', 'user', 'secret'))), send(line('AUTH PLAIN ' + plain('', 'user', 'sec\tret\x7f')))]
        });

        check('PLAIN UTF-8 username and password', {
            options: INSECURE,
            handlers: { onAuth: true },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'jõgeva@näide.ee', 'pässwörd ✓')))]
        });

        check('PLAIN with too many arguments is a syntax error', {
            options: INSECURE,
            handlers: { onAuth: true },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret') + ' extra')), send('AUTH PLAIN a b c\r\n')]
        });

        check('mechanism name is case-insensitive and extra spaces are ignored', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send(line('auth   plain    ' + plain('', 'user', 'secret') + '   ')), MAIL]
        });

        check('binary junk as the PLAIN continuation', {
            options: INSECURE,
            handlers: { onAuth: true },
            steps: [G, EHLO, send('AUTH PLAIN\r\n'), send(Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x1b, 0x9f, 0xc3]), Buffer.from('\r\n')])), send('NOOP\r\n')]
        });
    });

    describe('LOGIN', { concurrency: true }, () => {
        check('LOGIN with both prompts succeeds', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send('AUTH LOGIN\r\n'), send(line(b64('user'))), send(line(b64('secret'))), MAIL]
        });

        check('LOGIN with the username as initial response', {
            options: HIDDEN_TLS,
            handlers: RECORD,
            steps: [G, EHLO, send(line('AUTH LOGIN ' + b64('user'))), send(line(b64('secret'))), MAIL]
        });

        check('LOGIN wrong password', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send('AUTH LOGIN\r\n'), send(line(b64('user'))), send(line(b64('nope'))), MAIL]
        });

        check('LOGIN default onAuth refuses', {
            options: NO_TLS,
            steps: [G, EHLO, send(line('AUTH LOGIN ' + b64('user'))), send(line(b64('secret')))]
        });

        check('LOGIN * at the username prompt aborts', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send('AUTH LOGIN\r\n'), send('*\r\n'), send('NOOP\r\n')]
        });

        check('LOGIN * at the password prompt aborts', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send('AUTH LOGIN\r\n'), send(line(b64('user'))), send('*\r\n'), send('NOOP\r\n')]
        });

        check('LOGIN * at the password prompt after an initial response aborts', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send(line('AUTH LOGIN ' + b64('user'))), send('  *  \r\n')]
        });

        check('LOGIN initial response * is not an abort', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send('AUTH LOGIN *\r\n')]
        });

        check('LOGIN empty username', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send('AUTH LOGIN\r\n'), send('\r\n'), send('AUTH LOGIN\r\n'), send('   \r\n'), send('AUTH LOGIN =\r\n')]
        });

        check('LOGIN control characters in the username are refused', {
            options: INSECURE,
            handlers: RECORD,
            steps: [
                G,
                EHLO,
                send('AUTH LOGIN\r\n'),
                send(line(b64('us\x00er'))),
                send(line('AUTH LOGIN ' + b64('user\x1b[31m'))),
                send(line('AUTH LOGIN ' + b64('user\u009b')))
            ]
        });

        check('LOGIN empty password and garbage username reach onAuth', {
            options: INSECURE,
            handlers: { onAuth: true },
            steps: [G, EHLO, send('AUTH LOGIN\r\n'), send(line(b64('user'))), send('\r\n'), send('AUTH LOGIN\r\n'), send('/w==\r\n'), send('%%%\r\n')]
        });

        check('LOGIN with too many arguments is a syntax error', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send(line('AUTH LOGIN ' + b64('user') + ' ' + b64('secret')))]
        });

        check('LOGIN password line is passed through verbatim (control characters allowed)', {
            options: INSECURE,
            handlers: { onAuth: true },
            steps: [G, EHLO, send(line('AUTH LOGIN ' + b64('user'))), send(line(b64('pa\x00ss\r\nword')))]
        });
    });

    describe('XOAUTH2', { concurrency: true }, () => {
        const X = { authMethods: ['XOAUTH2', 'PLAIN'] };

        check('XOAUTH2 with an initial response succeeds', {
            options: { ...INSECURE, ...X },
            handlers: RECORD,
            steps: [G, EHLO, send(line('AUTH XOAUTH2 ' + xoauth2('user', 'good-token'))), MAIL]
        });

        check('XOAUTH2 with the prompt succeeds', {
            options: { ...HIDDEN_TLS, ...X },
            handlers: RECORD,
            steps: [G, EHLO, send('AUTH XOAUTH2\r\n'), send(line(xoauth2('user', 'good-token'))), MAIL]
        });

        check('XOAUTH2 default onAuth sends the challenge, then 535', {
            options: { ...INSECURE, ...X },
            steps: [G, EHLO, send(line('AUTH XOAUTH2 ' + xoauth2('user', 'good-token'))), send('\r\n'), MAIL]
        });

        check('XOAUTH2 failure without data sends an empty JSON challenge', {
            options: { ...INSECURE, ...X },
            handlers: { onAuth: answer(() => [null, { message: 'this message is ignored' }]) },
            steps: [G, EHLO, send(line('AUTH XOAUTH2 ' + xoauth2('user', 'bad-token'))), send('\r\n')]
        });

        check('XOAUTH2 failure with data', {
            options: { ...INSECURE, ...X },
            handlers: { onAuth: answer(() => [null, { data: { status: '400', schemes: 'Bearer', scope: 'mail ünïcode' } }]) },
            steps: [G, EHLO, send('AUTH XOAUTH2\r\n'), send(line(xoauth2('user', 'bad-token'))), send('\r\n')]
        });

        check('XOAUTH2 failure with data and responseCode', {
            options: { ...INSECURE, ...X },
            handlers: { onAuth: answer(() => [null, { data: { status: '401' }, responseCode: 454, message: 'ignored' }]) },
            steps: [G, EHLO, send(line('AUTH XOAUTH2 ' + xoauth2('user', 'bad-token'))), send('\r\n')]
        });

        check('XOAUTH2 failure with a responseCode and no data', {
            options: { ...INSECURE, ...X },
            handlers: { onAuth: answer(() => [null, { responseCode: 535 }]) },
            steps: [G, EHLO, send(line('AUTH XOAUTH2 ' + xoauth2('user', 'bad-token'))), send('\r\n')]
        });

        check('XOAUTH2 bare cb() sends an empty challenge', {
            options: { ...INSECURE, ...X },
            handlers: { onAuth: answer(() => []) },
            steps: [G, EHLO, send(line('AUTH XOAUTH2 ' + xoauth2('user', 'bad-token'))), send('\r\n')]
        });

        check('the line after the XOAUTH2 challenge always gets 535, whatever it says', {
            options: { ...INSECURE, ...X },
            handlers: { onAuth: true },
            steps: [G, EHLO, send(line('AUTH XOAUTH2 ' + xoauth2('user', 'bad-token'))), send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), send('AUTH XOAUTH2\r\n'), send('*\r\n')]
        });

        check('XOAUTH2 challenge reply and pipelined commands after it', {
            options: { ...INSECURE, ...X },
            steps: [G, EHLO, send(line('AUTH XOAUTH2 ' + xoauth2('user', 'bad-token')) + '\r\nNOOP\r\n', 3)]
        });

        check('XOAUTH2 cb(err) with and without responseCode', {
            options: { ...INSECURE, ...X },
            handlers: {
                onAuth: (auth, session, cb) => setImmediate(() => cb(auth.username === 'coded' ? error('Temporary token service failure', 454) : error('Token revoked')))
            },
            steps: [G, EHLO, send(line('AUTH XOAUTH2 ' + xoauth2('coded', 'tok'))), send(line('AUTH XOAUTH2 ' + xoauth2('plain', 'tok'))), send('NOOP\r\n')]
        });

        check('XOAUTH2 * at the prompt aborts, initial * does not', {
            options: { ...INSECURE, ...X },
            handlers: { onAuth: true },
            steps: [G, EHLO, send('AUTH XOAUTH2\r\n'), send('*\r\n'), send('AUTH XOAUTH2 *\r\n')]
        });

        check('XOAUTH2 token without user, without auth, or with another scheme', {
            options: { ...INSECURE, ...X },
            handlers: { onAuth: true },
            steps: [
                G,
                EHLO,
                send(line('AUTH XOAUTH2 ' + b64('auth=Bearer tok\x01\x01'))),
                send(line('AUTH XOAUTH2 ' + b64('user=user\x01\x01'))),
                send(line('AUTH XOAUTH2 ' + xoauth2('user', 'tok', 'Basic'))),
                send(line('AUTH XOAUTH2 ' + xoauth2('user', '', 'Bearer'))),
                send('AUTH XOAUTH2 !!!\r\n')
            ]
        });

        check('XOAUTH2 field parsing: case, spaces, = inside values', {
            options: { ...INSECURE, ...X },
            handlers: { onAuth: true },
            steps: [
                G,
                EHLO,
                send(line('AUTH XOAUTH2 ' + b64('USER=  someone@example.com  \x01Auth=BEARER   ya29.abc==  def\x01\x01'))),
                send('\r\n'),
                send(line('AUTH XOAUTH2 ' + b64('user=a=b\x01auth=bearer t\x01user=second\x01\x01'))),
                send('\r\n')
            ]
        });

        check('XOAUTH2 control characters in the username are refused', {
            options: { ...INSECURE, ...X },
            handlers: { onAuth: true },
            steps: [G, EHLO, send(line('AUTH XOAUTH2 ' + xoauth2('us\x00er', 'tok'))), send(line('AUTH XOAUTH2 ' + xoauth2('us\u0080er', 'tok')))]
        });

        check('XOAUTH2 with too many arguments is a syntax error', {
            options: { ...INSECURE, ...X },
            handlers: { onAuth: true },
            steps: [G, EHLO, send(line('AUTH XOAUTH2 ' + xoauth2('user', 'tok') + ' more'))]
        });

        check('XOAUTH2 is refused when it is not in authMethods', {
            options: INSECURE,
            handlers: { onAuth: true },
            steps: [G, EHLO, send(line('AUTH XOAUTH2 ' + xoauth2('user', 'good-token'))), send('AUTH XOAUTH2\r\n')]
        });
    });

    describe('CRAM-MD5 before the challenge', { concurrency: true }, () => {
        check('CRAM-MD5 with an argument is a syntax error', {
            options: { ...INSECURE, ...ALL_METHODS },
            handlers: { onAuth: true },
            steps: [G, EHLO, send(line('AUTH CRAM-MD5 ' + b64('user 0123456789abcdef'))), send('AUTH cram-md5 x y\r\n')]
        });

        check('CRAM-MD5 is refused when it is not in authMethods (default)', {
            options: INSECURE,
            handlers: { onAuth: true },
            steps: [G, EHLO, send('AUTH CRAM-MD5\r\n')]
        });

        check('CRAM-MD5 before EHLO and on plaintext with STARTTLS available', {
            options: ALL_METHODS,
            steps: [G, send('AUTH CRAM-MD5\r\n'), EHLO, send('AUTH CRAM-MD5\r\n')]
        });
    });

    describe('onAuth outcomes', { concurrency: true }, () => {
        check('cb(err) without responseCode gives 535 and the message', {
            options: INSECURE,
            handlers: { onAuth: answer(() => [error('Account locked')]) },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), send('AUTH LOGIN\r\n'), send(line(b64('user'))), send(line(b64('secret')))]
        });

        check('cb(err) with responseCode', {
            options: INSECURE,
            handlers: { onAuth: answer(() => [error('Try again later', 454)]) },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), send(line('AUTH LOGIN ' + b64('user'))), send(line(b64('secret')))]
        });

        check('cb(err) with an empty message', {
            options: INSECURE,
            handlers: { onAuth: answer(() => [error('', 550)]) },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret')))]
        });

        check('cb(err) with responseCode 421 closes the connection', {
            options: INSECURE,
            handlers: { onAuth: answer(() => [error('Too many failed logins', 421)]), onClose: true },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), WAIT_CLOSE]
        });

        check('cb(err) message with line breaks is sanitized', {
            options: INSECURE,
            handlers: { onAuth: answer(() => [error('Denied\r\n250 OK\x00really', 535)]) },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), send('NOOP\r\n')]
        });

        check('cb(null, {message, responseCode})', {
            options: INSECURE,
            handlers: { onAuth: answer(() => [null, { message: 'Please use an app password', responseCode: 534 }]) },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), send('AUTH LOGIN\r\n'), send(line(b64('user'))), send(line(b64('secret')))]
        });

        check('cb(null, {message}) without responseCode gives 535', {
            options: INSECURE,
            handlers: { onAuth: answer(() => [null, { message: 'Nope' }]) },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret')))]
        });

        check('bare cb() gives the default 535 text', {
            options: INSECURE,
            handlers: { onAuth: answer(() => []) },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), send(line('AUTH LOGIN ' + b64('user'))), send(line(b64('secret')))]
        });

        check('responseCode given as a numeric string, or 0', {
            options: INSECURE,
            handlers: {
                onAuth: (auth, session, cb) =>
                    setImmediate(() => (auth.username === 'str' ? cb(error('String code', '454')) : auth.username === 'zero' ? cb(error('Zero code', 0)) : cb(null, { message: 'String code again', responseCode: '550' })))
            },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'str', 'x'))), send(line('AUTH PLAIN ' + plain('', 'zero', 'x'))), send(line('AUTH PLAIN ' + plain('', 'other', 'x')))]
        });

        check('XOAUTH2 challenge data given as a string or an array', {
            options: { ...INSECURE, authMethods: ['XOAUTH2'] },
            handlers: { onAuth: (auth, session, cb) => setImmediate(() => cb(null, { data: auth.username === 'str' ? 'just a string' : [1, 'two', { three: 3 }] })) },
            steps: [G, EHLO, send(line('AUTH XOAUTH2 ' + xoauth2('str', 'tok'))), send('\r\n'), send(line('AUTH XOAUTH2 ' + xoauth2('arr', 'tok'))), send('\r\n')]
        });

        check('user: true is stored as is', {
            options: INSECURE,
            handlers: { onAuth: (auth, session, cb) => cb(null, { user: true }), onMailFrom: true },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'x'))), MAIL]
        });

        check('a falsy user is a failure', {
            options: INSECURE,
            handlers: {
                onAuth: (auth, session, cb) => setImmediate(() => cb(null, { user: auth.username === 'zero' ? 0 : '', message: 'falsy ' + auth.username })),
                onMailFrom: true
            },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'zero', 'x'))), send(line('AUTH PLAIN ' + plain('', 'empty', 'x'))), MAIL]
        });

        check('an object user is stored in session.user', {
            options: INSECURE,
            handlers: {
                onAuth: (auth, session, cb) => setImmediate(() => cb(null, { user: { id: 42, name: auth.username, roles: ['send'] }, message: 'ignored', responseCode: 299 })),
                onMailFrom: true,
                onRcptTo: true
            },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), MAIL, send('RCPT TO:<rcpt@example.com>\r\n')]
        });

        check('a synchronous onAuth callback', {
            options: INSECURE,
            handlers: { onAuth: (auth, session, cb) => cb(null, { user: auth.username }), onMailFrom: true },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'sync', 'x'))), MAIL]
        });

        check('onAuth that throws gives 451', {
            options: INSECURE,
            handlers: {
                onAuth: () => {
                    throw new Error('handler bug');
                }
            },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), send('AUTH LOGIN\r\n'), send(line(b64('user'))), send(line(b64('secret'))), send('NOOP\r\n')]
        });

        check('onAuth can store data on the session', {
            options: INSECURE,
            handlers: {
                onAuth: (auth, session, cb) => {
                    session.authAttempts = (session.authAttempts || 0) + 1;
                    setImmediate(() => cb(null, session.authAttempts >= 2 ? { user: 'second-try' } : {}));
                },
                onMailFrom: true
            },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'x'))), send(line('AUTH PLAIN ' + plain('', 'user', 'y'))), MAIL]
        });
    });

    describe('gatekeeping and session', { concurrency: true }, () => {
        check('538 for every mechanism when STARTTLS is available', {
            options: ALL_METHODS,
            handlers: { onAuth: true },
            steps: [
                G,
                EHLO,
                send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))),
                send('AUTH PLAIN\r\n'),
                send('AUTH LOGIN\r\n'),
                send('AUTH XOAUTH2\r\n'),
                send('AUTH UNKNOWN\r\n'),
                send('AUTH\r\n'),
                MAIL
            ]
        });

        check('538 with enhanced status codes', {
            options: ESC,
            steps: [G, EHLO, send('AUTH LOGIN\r\n')]
        });

        check('hideSTARTTLS and disabled STARTTLS allow AUTH on plaintext', {
            options: { ...HIDDEN_TLS, disabledCommands: ['STARTTLS'] },
            handlers: RECORD,
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), MAIL]
        });

        check('AUTH before EHLO gets 503 for every form', {
            options: INSECURE,
            handlers: { onAuth: true },
            steps: [G, send('AUTH PLAIN\r\n'), send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), send('AUTH LOGIN\r\n'), send('AUTH FOO\r\n'), send('AUTH\r\n')]
        });

        check('HELO allows AUTH; transmissionType SMTPA', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, HELO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), MAIL]
        });

        check('AUTH after success gets 503, even for an unknown mechanism', {
            options: INSECURE,
            handlers: RECORD,
            steps: [
                G,
                EHLO,
                send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))),
                send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))),
                send('AUTH LOGIN\r\n'),
                send('AUTH FOO\r\n'),
                MAIL
            ]
        });

        check('EHLO after success drops the AUTH line and keeps the user', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), EHLO, MAIL, send('RSET\r\n'), HELO, MAIL]
        });

        check('authMethods order and normalization', {
            options: { ...INSECURE, authMethods: ['xoauth2', ' cram-md5 ', 'Login', 'PLAIN'] },
            handlers: { onAuth: true },
            steps: [G, EHLO, send(line('AUTH login ' + b64('user'))), send('*\r\n')]
        });

        check('unknown, missing and listed-but-unimplemented mechanisms get 504', {
            options: { ...INSECURE, authMethods: ['PLAIN', 'SCRAM-SHA-256', 'NTLM'] },
            handlers: { onAuth: true },
            steps: [G, EHLO, send('AUTH SCRAM-SHA-256\r\n'), send('AUTH NTLM abc\r\n'), send('AUTH FOO\r\n'), send('AUTH\r\n'), send('AUTH    \r\n'), send('AUTH LOGIN\r\n')]
        });

        check('a tab after AUTH does not separate the command', {
            options: INSECURE,
            steps: [G, EHLO, send('AUTH\tPLAIN\r\n')]
        });

        check('continuation lines count toward maxAllowedUnauthenticatedCommands', {
            options: { ...INSECURE, maxAllowedUnauthenticatedCommands: 3 },
            handlers: { onAuth: true, onClose: true },
            steps: [G, EHLO, send('AUTH LOGIN\r\n'), send(line(b64('user'))), send(line(b64('secret'))), WAIT_CLOSE]
        });

        check('AUTH lines themselves do not count, PLAIN continuation does', {
            options: { ...INSECURE, maxAllowedUnauthenticatedCommands: 2 },
            handlers: { onAuth: true },
            steps: [G, EHLO, send('AUTH PLAIN\r\n'), send('*\r\n'), WAIT_CLOSE]
        });

        check('no unauthenticated limit after a successful AUTH', {
            options: { ...INSECURE, maxAllowedUnauthenticatedCommands: 3 },
            handlers: RECORD,
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), send('NOOP\r\n'.repeat(6), 6), MAIL]
        });

        check('authRequiredMessage before AUTH, MAIL after AUTH', {
            options: { ...INSECURE, authRequiredMessage: 'Log in first, please' },
            handlers: RECORD,
            steps: [G, EHLO, MAIL, send('RCPT TO:<r@example.com>\r\n'), send('DATA\r\n'), send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), MAIL]
        });

        check('authOptional: MAIL without AUTH, AUTH inside a transaction', {
            options: { ...INSECURE, authOptional: true },
            handlers: { onAuth: accept, onMailFrom: true, onRcptTo: true },
            steps: [G, EHLO, MAIL, send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), send('RCPT TO:<r@example.com>\r\n'), send('EHLO again.example\r\n'), MAIL]
        });

        check('enhanced status codes on AUTH replies', {
            options: { ...INSECURE, ...ESC, authMethods: ['PLAIN', 'LOGIN', 'XOAUTH2'] },
            handlers: {
                onAuth: (auth, session, cb) =>
                    setImmediate(() => {
                        if (auth.username === 'err') {
                            return cb(error('Custom code', 454));
                        }
                        if (auth.username === 'user' && auth.password === 'secret') {
                            return cb(null, { user: 'ok' });
                        }
                        cb(null, {});
                    })
            },
            steps: [
                G,
                EHLO,
                send('AUTH FOO\r\n'),
                send('AUTH PLAIN a b\r\n'),
                send('AUTH PLAIN\r\n'),
                send('*\r\n'),
                send(line('AUTH PLAIN ' + b64('bad'))),
                send(line('AUTH PLAIN ' + plain('', 'err', 'x'))),
                send(line('AUTH PLAIN ' + plain('', 'user', 'wrong'))),
                send(line('AUTH XOAUTH2 ' + xoauth2('nobody', 'tok'))),
                send('\r\n'),
                send('AUTH LOGIN\r\n'),
                send('\r\n'),
                send(line('AUTH LOGIN ' + b64('user'))),
                send(line(b64('secret'))),
                send('AUTH LOGIN\r\n')
            ]
        });

        check('ESC off (default) on the same AUTH replies', {
            options: { ...INSECURE, authMethods: ['PLAIN', 'XOAUTH2'] },
            steps: [G, EHLO, send('AUTH FOO\r\n'), send('AUTH PLAIN\r\n'), send('*\r\n'), send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), send(line('AUTH XOAUTH2 ' + xoauth2('user', 'tok'))), send('\r\n')]
        });

        check('pipelined AUTH dialogue and MAIL in one write', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send('AUTH LOGIN\r\n' + line(b64('user')) + line(b64('secret')) + 'MAIL FROM:<sender@example.com>\r\n', 4)]
        });

        check('MAIL pipelined right behind an asynchronous AUTH waits for its result', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret')) + 'MAIL FROM:<sender@example.com>\r\nRCPT TO:<r@example.com>\r\n', 3)]
        });

        check('an HTTP request line at an AUTH prompt is refused', {
            options: INSECURE,
            handlers: { onAuth: true },
            steps: [G, EHLO, send('AUTH PLAIN\r\n'), send('GET / HTTP/1.1\r\n'), WAIT_CLOSE]
        });

        check('a command name at an AUTH prompt is taken as the token', {
            options: INSECURE,
            handlers: { onAuth: true },
            steps: [G, EHLO, send('AUTH LOGIN\r\n'), send('QUIT\r\n'), send('RSET\r\n'), send('NOOP\r\n')]
        });

        check('an oversized AUTH continuation line closes with 421', {
            options: { ...INSECURE, maxCommandLength: 128 },
            handlers: { onAuth: true, onClose: true },
            steps: [G, EHLO, send('AUTH PLAIN\r\n'), send(line(b64('\x00user\x00' + 'x'.repeat(200)))), WAIT_CLOSE]
        });

        check('an oversized AUTH initial response closes with 421', {
            options: { ...INSECURE, maxCommandLength: 64 },
            handlers: { onAuth: true },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'p'.repeat(100)))), WAIT_CLOSE]
        });

        check('disabled AUTH: not advertised, unrecognized, MAIL allowed', {
            options: { ...INSECURE, disabledCommands: ['AUTH'] },
            handlers: { onAuth: true, onMailFrom: true },
            steps: [G, EHLO, send(line('AUTH PLAIN ' + plain('', 'user', 'secret'))), MAIL]
        });

        check('session.disabledCommands from onConnect can disable AUTH', {
            options: INSECURE,
            handlers: {
                onConnect: (session, cb) => {
                    session.disabledCommands = ['AUTH'];
                    cb();
                },
                onMailFrom: true
            },
            steps: [G, EHLO, send('AUTH PLAIN\r\n'), MAIL]
        });

        check('pipelined abort and a new AUTH in one write', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send('AUTH PLAIN\r\n*\r\nAUTH LOGIN\r\n' + line(b64('user')) + line(b64('secret')) + 'MAIL FROM:<sender@example.com>\r\n', 6)]
        });

        check('the line after an XOAUTH2 challenge counts toward the unauthenticated limit', {
            options: { ...INSECURE, authMethods: ['XOAUTH2'], maxAllowedUnauthenticatedCommands: 3 },
            steps: [G, EHLO, send(line('AUTH XOAUTH2 ' + xoauth2('user', 'tok'))), send('\r\n'), send('NOOP\r\n'), WAIT_CLOSE]
        });

        check('whitespace inside tokens and a trailing tab after the mechanism', {
            options: INSECURE,
            handlers: { onAuth: true },
            steps: [G, EHLO, send('AUTH PLAIN\t\r\n'), send('AHVz ZXIA c2Vj cmV0\r\n'), send('AUTH LOGIN\r\n'), send('dXN\tlcg==\r\n'), send('c2Vj cmV0\r\n')]
        });

        check('QUIT during an AUTH prompt is a token, RSET after a failure keeps no user', {
            options: INSECURE,
            handlers: RECORD,
            steps: [G, EHLO, send('AUTH PLAIN\r\n'), send('QUIT\r\n'), send('RSET\r\n'), MAIL]
        });
    });
});
