'use strict';

// Differential compatibility transcripts: every test below plays the same raw
// SMTP conversation against the reference `smtp-server@3.21.6` and against the
// implementation under test (SMTP_IMPL=rs, the default: ../index.js; SMTP_IMPL=ref
// compares the reference with itself) and requires identical reply bytes, close
// behaviour and handler observations. See helpers/transcript.js for the spec format.
//
// differs: see README — these behaviours are deliberately different in
// smtp-server-rs and are intentionally NOT part of this suite:
//   - a dot that follows a bare LF inside DATA ("\n..", "\n.") — smtp-server
//     un-stuffs it, we keep it;
//   - a client that resets/disconnects in the middle of DATA;
//   - an onData handler that throws;
//   - a handler callback that is called twice;
//   - an LMTP onData result array whose length differs from the recipient count;
//   - onData results (arrays, or anything else) that make SMTP mode send several replies.

const { describe } = require('node:test');
const { raw, check, send, G, EHLO, HELO, WAIT_CLOSE, lines } = require('./helpers/transcript.js');

// ---------------------------------------------------------------------------
// spec helpers

const OPEN = { authOptional: true };
const NOAUTH = { disabledCommands: ['AUTH'] };
const ESC = { hideENHANCEDSTATUSCODES: false };
const DSN = { hideDSN: false };

const RECORD_ALL = { onConnect: true, onMailFrom: true, onRcptTo: true, onData: true, onClose: true };
const RECORD_TX = { onMailFrom: true, onRcptTo: true, onData: true };


function error(message, responseCode) {
    const err = new Error(message);
    if (responseCode !== undefined) {
        err.responseCode = responseCode;
    }
    return err;
}

// address handler that refuses with a fresh error (per run)
const refuse = (message, responseCode) => (address, session, callback) => setImmediate(() => callback(error(message, responseCode)));

// onData handler that waits for the end of the message, then answers with make()
const afterEnd = make => (stream, session, callback) => {
    stream.on('end', () => {
        const [err, message] = make();
        callback(err, message);
    });
};

// a complete, accepted mail transaction (4 replies: MAIL, RCPT, 354, final)
const transaction = (body, from = 'sender@example.com', to = 'rcpt@example.com') => [
    send(lines(`MAIL FROM:<${from}>`, `RCPT TO:<${to}>`, 'DATA'), 3),
    send(body + '.\r\n', 1)
];

// ---------------------------------------------------------------------------

describe('smtp-server differential transcripts', { concurrency: true }, () => {
    describe('greeting and session start', { concurrency: true }, () => {
        check('default server greeting', { options: {}, steps: [G] });

        check('greeting with banner', { options: { banner: 'Welcome, friend' }, steps: [G] });

        check('LMTP greeting', { options: { lmtp: true }, steps: [G] });

        check('LMTP greeting with banner', { options: { lmtp: true, banner: 'local delivery' }, steps: [G] });

        check('greeting falls back to the OS hostname when name is unset', {
            options: { name: undefined, authOptional: true },
            steps: [G, EHLO]
        });

        check('onConnect, connect event and onClose observations', {
            options: OPEN,
            handlers: { onConnect: true, onClose: true },
            steps: [G, EHLO, send('QUIT\r\n'), WAIT_CLOSE]
        });

        check('onConnect refusal defaults to 554 and closes', {
            options: OPEN,
            handlers: { onConnect: (session, cb) => cb(new Error('No entry')), onClose: true },
            steps: [G, WAIT_CLOSE]
        });

        check('onConnect refusal with 421 closes', {
            options: OPEN,
            handlers: { onConnect: (session, cb) => setImmediate(() => cb(error('Too busy, try later', 421))) },
            steps: [G, WAIT_CLOSE]
        });

        check('onConnect refusal message is sanitized and carries no ESC', {
            options: { ...OPEN, ...ESC },
            handlers: { onConnect: (session, cb) => cb(error('Blocked\r\nby policy\tnow', 550)) },
            steps: [G, WAIT_CLOSE]
        });

        check('onConnect can set session.disabledCommands', {
            options: {},
            handlers: {
                onConnect: (session, cb) => {
                    session.disabledCommands = ['noop', ' auth '];
                    cb();
                },
                onMailFrom: true
            },
            steps: [G, EHLO, send('NOOP\r\n'), send('MAIL FROM:<a@example.com>\r\n')]
        });

        check('empty session.disabledCommands overrides the server-wide list', {
            options: { ...OPEN, disabledCommands: ['VRFY'] },
            handlers: {
                onConnect: (session, cb) => {
                    session.disabledCommands = [];
                    cb();
                }
            },
            steps: [G, send('VRFY someone\r\n')]
        });

        check('custom session fields set in onConnect persist', {
            options: OPEN,
            handlers: {
                onConnect: (session, cb) => {
                    session.tenant = { id: 7, tags: ['a', 'b'] };
                    setImmediate(cb);
                },
                onMailFrom: true
            },
            steps: [G, EHLO, send('MAIL FROM:<a@example.com>\r\n')]
        });

        check('early talker gets 421 You talk too soon', {
            options: OPEN,
            handlers: { onConnect: true, onClose: true },
            attempts: 3,
            steps: [send('EHLO early.example\r\n'), WAIT_CLOSE]
        });

        check('maxClients refuses the second connection', {
            options: { ...OPEN, maxClients: 1 },
            handlers: { onConnect: true },
            steps: [
                G,
                { client: 'b', replies: 1 },
                { client: 'b', wait: 'close' },
                send('NOOP\r\n')
            ]
        });

        check('maxClients admits a new client after the first one left', {
            options: { ...OPEN, maxClients: 1 },
            steps: [G, send('QUIT\r\n'), WAIT_CLOSE, { client: 'b', replies: 1 }, { client: 'b', send: 'NOOP\r\n', replies: 1 }]
        });

        check('reverse lookup through a custom resolver', {
            options: {
                ...OPEN,
                disableReverseLookup: false,
                resolver: { reverse: (ip, cb) => setImmediate(() => cb(null, ['Mail.Example.COM.', 'other.example'])) }
            },
            handlers: { onConnect: true },
            steps: [G, EHLO]
        });

        check('invalid PTR name falls back to the IP literal', {
            options: {
                ...OPEN,
                disableReverseLookup: false,
                resolver: { reverse: (ip, cb) => cb(null, ['bad\r\nname.example']) }
            },
            handlers: { onConnect: true },
            steps: [G, EHLO]
        });

        check('resolver error falls back to the IP literal', {
            options: {
                ...OPEN,
                disableReverseLookup: false,
                resolver: { reverse: (ip, cb) => setImmediate(() => cb(new Error('ENOTFOUND'))) }
            },
            handlers: { onConnect: true },
            steps: [G, HELO]
        });

        check('client half-close ends the session', {
            options: OPEN,
            handlers: { onMailFrom: true, onClose: true },
            steps: [G, EHLO, send('MAIL FROM:<a@example.com>\r\n'), { end: true }, WAIT_CLOSE]
        });

        check('client disconnect without QUIT', {
            options: OPEN,
            handlers: { onConnect: true, onClose: true },
            steps: [G, EHLO, { destroy: true }, { waitHandler: 'onClose' }]
        });

        check('idle socketTimeout sends 421 and closes', {
            options: { ...OPEN, socketTimeout: 300 },
            steps: [G, EHLO, { replies: 1 }, WAIT_CLOSE]
        });

        check('DATA and then silence: onData gets its stream, which fails at the timeout', {
            options: { ...OPEN, socketTimeout: 300 },
            handlers: { onData: true, onClose: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'DATA'), 3), { replies: 1 }, WAIT_CLOSE, { waitHandler: 'onClose' }]
        });

        check('a reset assigns the session fields again, undoing what a handler changed', {
            options: OPEN,
            handlers: {
                onMailFrom: (address, session, cb) => {
                    session.clientHostname = 'changed.example';
                    session.hostNameAppearsAs = 'changed.example';
                    session.transmissionType = 'CHANGED';
                    cb();
                }
            },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com>', 'RSET', 'MAIL FROM:<b@example.com>'), 3)]
        });

        check('default certificate warning is printed when STARTTLS is available', {
            options: { logger: undefined },
            captureWarnings: true,
            steps: [G]
        });

        check('no certificate warning when STARTTLS is hidden', {
            options: { logger: undefined, hideSTARTTLS: true },
            captureWarnings: true,
            steps: [G]
        });
    });

    describe('HELO / EHLO / LHLO', { concurrency: true }, () => {
        check('HELO', { options: OPEN, steps: [G, HELO] });

        check('HELO syntax errors', {
            options: OPEN,
            steps: [G, send('HELO\r\n'), send('HELO a.example b.example\r\n')]
        });

        check('EHLO syntax errors', {
            options: OPEN,
            steps: [G, send('EHLO\r\n'), send('EHLO a.example b.example\r\n'), send('EHLO   \r\n')]
        });

        check('bad hostname: control character and over-long argument', {
            options: OPEN,
            steps: [G, send('EHLO bad\x01host\r\n'), send('HELO bad\x7fhost\r\n'), send('EHLO ' + 'h'.repeat(301) + '\r\n'), send('EHLO ' + 'h'.repeat(300) + '\r\n')]
        });

        check('EHLO capabilities of the default server', { options: {}, steps: [G, EHLO] });

        check('EHLO capabilities with authOptional', { options: OPEN, steps: [G, EHLO] });

        check('EHLO with hidePIPELINING, hide8BITMIME and hideSMTPUTF8', {
            options: { ...OPEN, hidePIPELINING: true, hide8BITMIME: true, hideSMTPUTF8: true },
            steps: [G, EHLO]
        });

        check('EHLO with hideSTARTTLS', { options: { hideSTARTTLS: true }, steps: [G, EHLO] });

        check('EHLO with ENHANCEDSTATUSCODES and DSN advertised', {
            options: { ...OPEN, ...ESC, ...DSN },
            steps: [G, EHLO]
        });

        check('EHLO with size', { options: { ...OPEN, size: 1048576 }, steps: [G, EHLO] });

        check('EHLO with size and hideSize', { options: { ...OPEN, size: 1048576, hideSize: true }, steps: [G, EHLO] });

        check('EHLO with hideREQUIRETLS false on plaintext', { options: { ...OPEN, hideREQUIRETLS: false }, steps: [G, EHLO] });

        check('EHLO advertises authMethods in the given order', {
            options: { authMethods: ['xoauth2', 'plain', ' login', 'CRAM-MD5'] },
            steps: [G, EHLO]
        });

        check('EHLO with an empty authMethods list', { options: { authMethods: [] }, steps: [G, EHLO] });

        check('disabledCommands removes AUTH and STARTTLS lines', {
            options: { disabledCommands: ['auth', ' starttls '] },
            steps: [G, EHLO, send('STARTTLS\r\n'), send('AUTH PLAIN\r\n')]
        });

        check('EHLO lists XCLIENT and XFORWARD for trusted peers', {
            options: { ...OPEN, useXClient: true, useXForward: true },
            steps: [G, EHLO]
        });

        check('heloResponse without %s', { options: { ...OPEN, heloResponse: 'Hello there' }, steps: [G, EHLO, HELO] });

        check('heloResponse with one %s', { options: { ...OPEN, heloResponse: 'Welcome to %s' }, steps: [G, EHLO, HELO] });

        check('heloResponse with two %s', { options: { ...OPEN, heloResponse: '%s greets %s' }, steps: [G, EHLO, HELO] });

        check('heloResponse with three %s', { options: { ...OPEN, heloResponse: '%s greets %s [%s] ok' }, steps: [G, EHLO, HELO] });

        check('HELO/EHLO argument is lower-cased into hostNameAppearsAs', {
            options: OPEN,
            handlers: { onMailFrom: true },
            steps: [G, send('EHLO Client.EXAMPLE\r\n'), send('MAIL FROM:<a@example.com>\r\n'), send('HELO [192.0.2.1]\r\n'), send('MAIL FROM:<b@example.com>\r\n')]
        });

        check('EHLO resets the transaction', {
            options: OPEN,
            handlers: RECORD_TX,
            steps: [G, EHLO, send('MAIL FROM:<a@example.com>\r\n'), EHLO, send('RCPT TO:<b@example.com>\r\n'), send('MAIL FROM:<c@example.com>\r\n')]
        });

        check('transmissionType follows HELO vs EHLO', {
            options: OPEN,
            handlers: { onMailFrom: true },
            steps: [G, HELO, send('MAIL FROM:<a@example.com>\r\n'), EHLO, send('MAIL FROM:<a@example.com>\r\n')]
        });

        check('disabled HELO is unrecognized, EHLO still works', {
            options: { ...OPEN, disabledCommands: ['HELO'] },
            steps: [G, HELO, EHLO]
        });

        check('LMTP refuses HELO and EHLO', {
            options: { lmtp: true, authOptional: true },
            steps: [G, HELO, EHLO, send('MAIL FROM:<a@example.com>\r\n')]
        });

        check('LMTP LHLO capabilities and syntax error', {
            options: { lmtp: true, authOptional: true, size: 5000 },
            steps: [G, send('LHLO\r\n'), send('LHLO client.example\r\n')]
        });

        check('LMTP session observations after LHLO', {
            options: { lmtp: true, authOptional: true },
            handlers: RECORD_TX,
            steps: [G, send('LHLO client.example\r\n'), ...transaction('Subject: lmtp\r\n\r\nhi\r\n')]
        });

        check('LHLO is unknown in SMTP mode', { options: OPEN, steps: [G, send('LHLO client.example\r\n')] });
    });

    describe('AUTH gatekeeping', { concurrency: true }, () => {
        check('default server requires authentication for MAIL, RCPT and DATA', {
            options: {},
            steps: [G, EHLO, send('MAIL FROM:<a@example.com>\r\n'), send('RCPT TO:<b@example.com>\r\n'), send('DATA\r\n')]
        });

        check('custom authRequiredMessage', {
            options: { authRequiredMessage: 'Please log in first' },
            steps: [G, EHLO, send('MAIL FROM:<a@example.com>\r\n')]
        });

        check('AUTH before EHLO', { options: {}, steps: [G, send('AUTH PLAIN\r\n')] });

        check('AUTH on plaintext with STARTTLS available gets 538', {
            options: {},
            steps: [G, EHLO, send('AUTH PLAIN\r\n'), send('AUTH LOGIN dXNlcg==\r\n')]
        });

        check('AUTH with an unknown mechanism when STARTTLS is hidden', {
            options: { hideSTARTTLS: true },
            steps: [G, EHLO, send('AUTH FOO\r\n'), send('AUTH\r\n')]
        });

        check('AUTH with a listed but unimplemented mechanism', {
            options: { allowInsecureAuth: true, authMethods: ['PLAIN', 'X-UNKNOWN'] },
            steps: [G, EHLO, send('AUTH X-UNKNOWN\r\n'), send('AUTH SCRAM-SHA-1\r\n')]
        });

        check('disabled AUTH is unrecognized and not required', {
            options: NOAUTH,
            steps: [G, EHLO, send('AUTH PLAIN\r\n'), send('MAIL FROM:<a@example.com>\r\n')]
        });

        check('unauthenticated command limit (default 10)', {
            options: {},
            steps: [G, send('EHLO client.example\r\n' + 'NOOP\r\n'.repeat(9), 10), WAIT_CLOSE]
        });

        check('maxAllowedUnauthenticatedCommands: 3', {
            options: { maxAllowedUnauthenticatedCommands: 3 },
            steps: [G, EHLO, send('NOOP\r\n'), send('RSET\r\n'), WAIT_CLOSE]
        });

        check('maxAllowedUnauthenticatedCommands: 0 still means 10', {
            options: { maxAllowedUnauthenticatedCommands: 0 },
            steps: [G, send('NOOP\r\n'.repeat(10), 10), WAIT_CLOSE]
        });

        check('authOptional has no unauthenticated limit', {
            options: OPEN,
            steps: [G, send('NOOP\r\n'.repeat(15), 15)]
        });

        check('AUTH commands do not count toward the unauthenticated limit', {
            options: {},
            steps: [G, send('AUTH PLAIN\r\n'.repeat(12), 12), send('NOOP\r\n')]
        });

        check('unknown commands do not count toward the unauthenticated limit', {
            options: { maxAllowedUnauthenticatedCommands: 3 },
            steps: [G, send(lines('FOO', 'BAR', 'NOOP', 'BAZ', 'NOOP'), 5)]
        });

        check('gatekeeping replies with enhanced status codes', {
            options: ESC,
            steps: [G, send('AUTH PLAIN\r\n'), EHLO, send('AUTH PLAIN\r\n'), send('MAIL FROM:<a@example.com>\r\n')]
        });

        check('unauthenticated limit hit by EHLO has no ESC', {
            options: { ...ESC, maxAllowedUnauthenticatedCommands: 2 },
            steps: [G, send('NOOP\r\n'), send('EHLO client.example\r\n'), WAIT_CLOSE]
        });

        check('unauthenticated limit hit by NOOP has ESC', {
            options: { ...ESC, maxAllowedUnauthenticatedCommands: 2 },
            steps: [G, EHLO, send('NOOP\r\n'), WAIT_CLOSE]
        });
    });

    describe('MAIL FROM', { concurrency: true }, () => {
        check('accepted sender is passed to onMailFrom', {
            options: OPEN,
            handlers: { onMailFrom: true },
            steps: [G, EHLO, send('MAIL FROM:<Sender.Name@Example.COM>\r\n')]
        });

        check('null sender', {
            options: OPEN,
            handlers: RECORD_TX,
            steps: [G, EHLO, ...transaction('x\r\n', '')]
        });

        check('spacing around FROM and the colon', {
            options: OPEN,
            handlers: { onMailFrom: true },
            steps: [G, EHLO, send(lines('MAIL FROM: <a@example.com>', 'RSET', 'MAIL FROM :<b@example.com>', 'RSET', 'mail from:   <c@example.com>   '), 5)]
        });

        check('sender syntax errors', {
            options: OPEN,
            handlers: { onMailFrom: true },
            steps: [
                G,
                EHLO,
                send(
                    lines(
                        'MAIL FROM:a@example.com',
                        'MAIL  FROM:<a@example.com>',
                        'MAIL TO:<a@example.com>',
                        'MAIL',
                        'MAIL FROM:<a@example.com>SIZE=1',
                        'MAIL FROM:<<a@example.com>>',
                        'MAIL FROM:',
                        'MAIL FROM:<a@example.com'
                    ),
                    8
                )
            ]
        });

        check('MAIL before HELO', { options: OPEN, steps: [G, send('MAIL FROM:<a@example.com>\r\n')] });

        check('IPv4 address literals', {
            options: OPEN,
            handlers: { onMailFrom: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<u@[192.0.2.1]>', 'RSET', 'MAIL FROM:<u@[192.0.2.256]>', 'MAIL FROM:<u@[foo]>', 'MAIL FROM:<u@[1.2.3]>'), 5)]
        });

        check('IPv6 address literals are normalized', {
            options: OPEN,
            handlers: { onMailFrom: true },
            steps: [
                G,
                EHLO,
                send(lines('MAIL FROM:<u@[IPv6:2001:DB8:0:0:0:0:0:1]>', 'RSET', 'MAIL FROM:<u@[ipv6:::1]>', 'RSET', 'MAIL FROM:<u@[IPv6:zz::1]>', 'MAIL FROM:<u@[2001:db8::1]>'), 6)
            ]
        });

        check('punycode domains are decoded', {
            options: OPEN,
            handlers: { onMailFrom: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<user@xn--mller-kva.de>', 'RSET', 'MAIL FROM:<user@xn--zz.de>'), 3)]
        });

        check('source routes are stripped', {
            options: OPEN,
            handlers: { onMailFrom: true, onRcptTo: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<@r1.example,@r2.example:user@example.com>', 'RCPT TO:<@relay.example:to@example.org>'), 2)]
        });

        check('postmaster is not a valid sender', {
            options: OPEN,
            steps: [G, EHLO, send('MAIL FROM:<postmaster>\r\n')]
        });

        check('local part dot rules', {
            options: OPEN,
            steps: [G, EHLO, send(lines('MAIL FROM:<.user@example.com>', 'MAIL FROM:<user.@example.com>', 'MAIL FROM:<a..b@example.com>', 'MAIL FROM:<a.b@example.com>'), 4)]
        });

        check('domain rules', {
            options: OPEN,
            handlers: { onMailFrom: true },
            steps: [
                G,
                EHLO,
                send(
                    lines(
                        'MAIL FROM:<a@exa_mple.com>',
                        'MAIL FROM:<a@ex..com>',
                        'MAIL FROM:<a@.ex.com>',
                        'MAIL FROM:<a@ex.com.>',
                        'MAIL FROM:<a@ex-.com>',
                        'MAIL FROM:<a@ex.-com>',
                        'MAIL FROM:<a@ex!.com>',
                        'MAIL FROM:<a@-ex.com>'
                    ),
                    8
                )
            ]
        });

        check('@ count and empty parts', {
            options: OPEN,
            steps: [G, EHLO, send(lines('MAIL FROM:<a@b@example.com>', 'MAIL FROM:<user>', 'MAIL FROM:<@example.com>', 'MAIL FROM:<user@>'), 4)]
        });

        check('lenientAddressParsing accepts what strict mode refuses', {
            options: { ...OPEN, lenientAddressParsing: true },
            handlers: { onMailFrom: true },
            steps: [
                G,
                EHLO,
                send(
                    lines(
                        'MAIL FROM:<user.@example.com>',
                        'RSET',
                        'MAIL FROM:<a..b@exa_mple.com>',
                        'RSET',
                        'MAIL FROM:<u@[999.1.1.1]>',
                        'RSET',
                        'MAIL FROM:<u@xn--zz.de>',
                        'RSET',
                        'MAIL FROM:<u@xn--mller-kva.de>',
                        'RSET',
                        'MAIL FROM:<a@b@c>'
                    ),
                    11
                )
            ]
        });

        check('quoted local parts', {
            options: OPEN,
            handlers: { onMailFrom: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<"john.doe"@example.com>', 'RSET', 'MAIL FROM:<"john doe"@example.com>'), 3)]
        });

        check('UTF-8 addresses are accepted', {
            options: OPEN,
            handlers: RECORD_TX,
            steps: [G, EHLO, ...transaction('Subject: ünïcödé\r\n\r\nõ\r\n', 'jõgeva@näide.ee', 'δοκιμή@παράδειγμα.δοκιμή')]
        });

        check('invisible and control characters are refused even when lenient', {
            options: { ...OPEN, lenientAddressParsing: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<a\u200Bb@example.com>', 'MAIL FROM:<ab@exam\uFEFFple.com>', 'MAIL FROM:<a\u2060@example.com>', 'MAIL FROM:<a\x7fb@example.com>'), 4)]
        });

        check('address length limit (253)', {
            options: OPEN,
            handlers: { onMailFrom: true },
            steps: [
                G,
                EHLO,
                send('MAIL FROM:<' + 'a'.repeat(64) + '@' + 'b'.repeat(60) + '.' + 'c'.repeat(60) + '.' + 'd'.repeat(60) + '.ex>\r\n'),
                send('MAIL FROM:<' + 'a'.repeat(64) + '@' + 'b'.repeat(60) + '.' + 'c'.repeat(60) + '.' + 'd'.repeat(60) + '.com>\r\n')
            ]
        });

        check('SIZE parameter within and over the limit', {
            options: { ...OPEN, size: 500 },
            handlers: { onMailFrom: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com> SIZE=501', 'MAIL FROM:<a@example.com> SIZE=500', 'RSET', 'MAIL FROM:<a@example.com> SIZE=0'), 4)]
        });

        check('SIZE parameter without a size option', {
            options: OPEN,
            handlers: { onMailFrom: true },
            steps: [G, EHLO, send('MAIL FROM:<a@example.com> SIZE=99999999999\r\n')]
        });

        check('hideSize skips the declared SIZE check', {
            options: { ...OPEN, size: 500, hideSize: true },
            handlers: { onMailFrom: true },
            steps: [G, EHLO, send('MAIL FROM:<a@example.com> SIZE=10000\r\n')]
        });

        check('SIZE syntax and missing value', {
            options: { ...OPEN, size: 500 },
            steps: [
                G,
                EHLO,
                send(
                    lines(
                        'MAIL FROM:<a@example.com> SIZE=abc',
                        'MAIL FROM:<a@example.com> SIZE=123456789012345678901',
                        'MAIL FROM:<a@example.com> SIZE=-1',
                        'MAIL FROM:<a@example.com> SIZE',
                        'MAIL FROM:<a@example.com> SIZE='
                    ),
                    5
                )
            ]
        });

        check('BODY parameter', {
            options: OPEN,
            handlers: { onMailFrom: true, onRcptTo: true },
            steps: [
                G,
                EHLO,
                send(
                    lines(
                        'MAIL FROM:<a@example.com> BODY=BINARYMIME',
                        'MAIL FROM:<a@example.com> BODY',
                        'MAIL FROM:<a@example.com> BODY=8bitMIME',
                        'RCPT TO:<b@example.com>',
                        'RSET',
                        'MAIL FROM:<a@example.com> BODY=7BIT',
                        'RCPT TO:<b@example.com>'
                    ),
                    7
                )
            ]
        });

        check('SMTPUTF8 parameter', {
            options: OPEN,
            handlers: { onMailFrom: true, onRcptTo: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com> SMTPUTF8=yes', 'MAIL FROM:<a@example.com> smtputf8', 'RCPT TO:<b@example.com>'), 3)]
        });

        check('REQUIRETLS on a plaintext session', {
            options: { ...OPEN, hideREQUIRETLS: false },
            handlers: { onMailFrom: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com> REQUIRETLS', 'MAIL FROM:<a@example.com> REQUIRETLS=yes'), 2)]
        });

        check('DSN RET and ENVID with DSN enabled', {
            options: { ...OPEN, ...DSN },
            handlers: { onMailFrom: true, onRcptTo: true },
            steps: [
                G,
                EHLO,
                send(
                    lines(
                        'MAIL FROM:<a@example.com> RET=bogus',
                        'MAIL FROM:<a@example.com> RET',
                        'MAIL FROM:<a@example.com> ENVID=',
                        'MAIL FROM:<a@example.com> RET=hdrs ENVID=abc+2Bdef+3D',
                        'RCPT TO:<b@example.com>'
                    ),
                    5
                )
            ]
        });

        check('DSN RET and ENVID with DSN hidden', {
            options: OPEN,
            handlers: { onMailFrom: true, onRcptTo: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com> RET=bogus ENVID=x+41y', 'RCPT TO:<b@example.com>', 'RSET', 'MAIL FROM:<a@example.com> ENVID'), 4)]
        });

        check('xtext values with control characters are refused', {
            options: { ...OPEN, ...DSN },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com> ENVID=ab+0D+0Acd', 'MAIL FROM:<a@example.com> X-TAG=+85', 'MAIL FROM:<a@example.com> X-TAG=+7f', 'MAIL FROM:<a@example.com> X-TAG=+7F'), 4)]
        });

        check('duplicate parameters', {
            options: OPEN,
            handlers: { onMailFrom: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com> SIZE=1 SIZE=2', 'MAIL FROM:<a@example.com> x-a=1 X-A=2', 'MAIL FROM:<a@example.com> FLAG FLAG'), 3)]
        });

        check('unknown, valueless and odd parameters are kept in args', {
            options: OPEN,
            handlers: { onMailFrom: true },
            steps: [G, EHLO, send('MAIL FROM:<a@example.com> AUTH=<> X-FOO=bar FLAG =ignored KEY= X=a=b x-lower=Case+2B\r\n')]
        });

        check('parameter keys are case-insensitive', {
            options: { ...OPEN, ...DSN },
            handlers: { onMailFrom: true },
            steps: [G, EHLO, send('mail from:<a@example.com> size=100 body=8bitmime ret=full envid=QQ\r\n')]
        });

        check('nested MAIL', {
            options: OPEN,
            handlers: { onMailFrom: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com>', 'MAIL FROM:<b@example.com>'), 2)]
        });

        check('order of MAIL checks', {
            options: { ...OPEN, size: 100 },
            steps: [
                G,
                EHLO,
                send(
                    lines(
                        'MAIL FROM:<a@example.com>',
                        'MAIL FROM:<bad> SIZE=1 SIZE=2',
                        'MAIL FROM:<x@example.com> SIZE=1 SIZE=2',
                        'MAIL FROM:<x@example.com> SIZE',
                        'MAIL FROM:<x@example.com> SIZE=abc',
                        'MAIL FROM:<x@example.com> SIZE=1000'
                    ),
                    6
                )
            ]
        });

        check('order of parameter validation', {
            options: { ...OPEN, size: 100, ...DSN },
            steps: [
                G,
                EHLO,
                send(
                    lines(
                        'MAIL FROM:<a@example.com> BODY=bad SIZE=1000',
                        'MAIL FROM:<a@example.com> BODY=bad SMTPUTF8=1',
                        'MAIL FROM:<a@example.com> SMTPUTF8=1 REQUIRETLS',
                        'MAIL FROM:<a@example.com> REQUIRETLS RET=x',
                        'MAIL FROM:<a@example.com> RET=x'
                    ),
                    5
                )
            ]
        });

        check('onMailFrom refusal defaults to 550', {
            options: OPEN,
            handlers: { onMailFrom: refuse('Sender rejected') },
            steps: [G, EHLO, send('MAIL FROM:<a@example.com>\r\n'), send('RCPT TO:<b@example.com>\r\n')]
        });

        check('onMailFrom refusal with custom code and CR/LF in the message', {
            options: OPEN,
            handlers: { onMailFrom: refuse('Bad\r\nsender\x00here', 553) },
            steps: [G, EHLO, send('MAIL FROM:<a@example.com>\r\n')]
        });

        check('onMailFrom that throws gives 451 and the session continues', {
            options: OPEN,
            handlers: {
                onMailFrom: () => {
                    throw new Error('handler bug');
                }
            },
            steps: [G, EHLO, send('MAIL FROM:<a@example.com>\r\n'), send('NOOP\r\n'), send('MAIL FROM:<a@example.com>\r\n')]
        });

        check('envelope flags of a refused MAIL persist until reset', {
            options: OPEN,
            handlers: {
                onMailFrom: (address, session, cb) => setImmediate(() => cb(address.address.startsWith('bad') ? error('no') : null)),
                onRcptTo: true
            },
            steps: [
                G,
                EHLO,
                send(lines('MAIL FROM:<bad@example.com> BODY=8BITMIME SMTPUTF8', 'MAIL FROM:<good@example.com>', 'RCPT TO:<b@example.com>', 'RSET', 'MAIL FROM:<good@example.com>', 'RCPT TO:<b@example.com>'), 6)
            ]
        });

        check('asynchronous onMailFrom', {
            options: OPEN,
            handlers: { onMailFrom: (address, session, cb) => setTimeout(cb, 20) },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>'), 2)]
        });
    });

    describe('RCPT TO', { concurrency: true }, () => {
        check('RCPT before MAIL', {
            options: OPEN,
            steps: [G, EHLO, send('RCPT TO:<b@example.com>\r\n')]
        });

        check('recipient syntax errors', {
            options: OPEN,
            handlers: { onRcptTo: true },
            steps: [
                G,
                EHLO,
                send('MAIL FROM:<a@example.com>\r\n'),
                send(lines('RCPT TO:<>', 'RCPT TO:b@example.com', 'RCPT FROM:<b@example.com>', 'RCPT  TO:<b@example.com>', 'RCPT TO:<b..c@example.com>', 'RCPT TO:<b@[300.1.1.1]>'), 6)
            ]
        });

        check('bad recipient syntax is reported before the missing MAIL', {
            options: OPEN,
            steps: [G, EHLO, send(lines('RCPT TO:<>', 'RCPT TO:<x@example.com> NOTIFY', 'RCPT TO:<x@example.com>'), 3)]
        });

        check('postmaster recipient without a domain', {
            options: OPEN,
            handlers: RECORD_TX,
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<postmaster>', 'RCPT TO:<PostMaster>', 'RCPT TO:<postmaster@example.com>', 'DATA'), 5), send('hi\r\n.\r\n')]
        });

        check('multiple recipients reach the envelope in order', {
            options: OPEN,
            handlers: RECORD_TX,
            steps: [
                G,
                EHLO,
                send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<one@example.com>', 'RCPT TO:<two@example.org> X-ID=2', 'RCPT TO:<three@[192.0.2.3]>', 'DATA'), 5),
                send('body\r\n.\r\n')
            ]
        });

        check('DSN NOTIFY and ORCPT with DSN enabled', {
            options: { ...OPEN, ...DSN },
            handlers: RECORD_TX,
            steps: [
                G,
                EHLO,
                send(
                    lines(
                        'MAIL FROM:<a@example.com> RET=FULL ENVID=id1',
                        'RCPT TO:<b@example.com> NOTIFY=success,failure ORCPT=rfc822;b+2Bx@example.com',
                        'RCPT TO:<c@example.com> NOTIFY=NEVER',
                        'RCPT TO:<d@example.com> ORCPT=RFC822;d@example.com',
                        'RCPT TO:<e@example.com> NOTIFY=NEVER,SUCCESS',
                        'RCPT TO:<e@example.com> NOTIFY=BOGUS',
                        'RCPT TO:<e@example.com> NOTIFY=success,',
                        'RCPT TO:<e@example.com> ORCPT=rfc822',
                        'RCPT TO:<e@example.com> ORCPT=bad/type;x',
                        'RCPT TO:<e@example.com> NOTIFY',
                        'RCPT TO:<e@example.com> ORCPT=',
                        'DATA'
                    ),
                    12
                ),
                send('x\r\n.\r\n')
            ]
        });

        check('DSN parameters with DSN hidden', {
            options: OPEN,
            handlers: { onRcptTo: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com> NOTIFY=BOGUS ORCPT=whatever', 'RCPT TO:<c@example.com> NOTIFY', 'RCPT TO:<c@example.com> ORCPT'), 4)]
        });

        check('maxRecipients and repeated recipients', {
            options: { ...OPEN, maxRecipients: 2 },
            handlers: RECORD_TX,
            steps: [
                G,
                EHLO,
                send(
                    lines(
                        'MAIL FROM:<a@example.com>',
                        'RCPT TO:<one@example.com>',
                        'RCPT TO:<two@example.com>',
                        'RCPT TO:<three@example.com>',
                        'RCPT TO:<ONE@Example.com> X-SECOND=yes',
                        'DATA'
                    ),
                    6
                ),
                send('x\r\n.\r\n')
            ]
        });

        check('duplicate recipients replace the earlier entry', {
            options: OPEN,
            handlers: RECORD_TX,
            steps: [
                G,
                EHLO,
                send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<dup@example.com> X-N=1', 'RCPT TO:<other@example.com>', 'RCPT TO:<DUP@example.com> X-N=2', 'DATA'), 5),
                send('x\r\n.\r\n')
            ]
        });

        check('a recipient accepted without asking replaces an earlier one, and the others stay the objects onRcptTo saw', {
            options: OPEN,
            handlers: {
                // marks the addresses it accepts and puts the default handler back at the
                // second: the third recipient (the first address again) is not asked about
                onRcptTo: function (address, session, cb) {
                    address.marked = session.envelope.rcptTo.length + 1;
                    if (session.envelope.rcptTo.length >= 1) {
                        this.onRcptTo = Object.getPrototypeOf(this).onRcptTo;
                    }
                    setImmediate(cb);
                },
                onData: true
            },
            steps: [
                G,
                EHLO,
                send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<dup@example.com>', 'RCPT TO:<other@example.com>', 'RCPT TO:<third@example.com>', 'RCPT TO:<DUP@example.com> X-N=2', 'DATA'), 6),
                send('x\r\n.\r\n')
            ]
        });

        check('onRcptTo refusal defaults to 550', {
            options: OPEN,
            handlers: { onRcptTo: refuse('No such user here'), onData: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'DATA'), 3)]
        });

        check('onRcptTo refusal with custom code, per recipient', {
            options: OPEN,
            handlers: {
                onRcptTo: (address, session, cb) => setImmediate(() => cb(address.address.startsWith('full') ? error('Mailbox full\nsorry', 452) : null)),
                onData: true
            },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<full@example.com>', 'RCPT TO:<ok@example.com>', 'DATA'), 4), send('hello\r\n.\r\n')]
        });

        check('onRcptTo that throws gives 451', {
            options: OPEN,
            handlers: {
                onRcptTo: () => {
                    throw new TypeError('oops');
                }
            },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'DATA'), 3)]
        });

        check('RCPT replies with enhanced status codes', {
            options: { ...OPEN, ...ESC, maxRecipients: 1 },
            steps: [G, EHLO, send(lines('RCPT TO:<b@example.com>', 'MAIL FROM:<a@example.com>', 'RCPT TO:<>', 'RCPT TO:<b@example.com>', 'RCPT TO:<c@example.com>', 'RCPT TO:<c@example.com> NOTIFY'), 6)]
        });
    });

    describe('DATA', { concurrency: true }, () => {
        check('DATA without recipients', {
            options: OPEN,
            steps: [G, EHLO, send('DATA\r\n'), send('MAIL FROM:<a@example.com>\r\n'), send('DATA\r\n')]
        });

        check('DATA before HELO', { options: OPEN, steps: [G, send('DATA\r\n')] });

        check('default onData accepts the message', {
            options: OPEN,
            steps: [G, EHLO, ...transaction('Subject: hi\r\n\r\nHello\r\n')]
        });

        check('default onData in LMTP mode answers per recipient', {
            options: { ...OPEN, lmtp: true },
            steps: [G, send('LHLO client.example\r\n'), send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'RCPT TO:<c@example.com>', 'DATA'), 4), send('x\r\n.\r\n', 2)]
        });

        check('message body is delivered byte for byte', {
            options: OPEN,
            handlers: RECORD_ALL,
            steps: [G, EHLO, ...transaction('From: a@example.com\r\nTo: b@example.com\r\nSubject: test\r\n\r\nLine 1\r\n\r\nLine 3 with trailing spaces   \r\n\tindented\r\n')]
        });

        check('dot-stuffing is removed only from lines that start with two dots', {
            options: OPEN,
            handlers: { onData: true },
            steps: [G, EHLO, ...transaction('first\r\n..leading\r\n.single\r\nmid..dle.\r\n...\r\n..\r\n. space\r\n')]
        });

        check('empty body', {
            options: OPEN,
            handlers: { onData: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'DATA'), 3), send('.\r\n')]
        });

        check('body that starts with a stuffed dot line', {
            options: OPEN,
            handlers: { onData: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'DATA'), 3), send('..\r\n.\r\n')]
        });

        check('body that starts with a dot followed by text', {
            options: OPEN,
            handlers: { onData: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'DATA'), 3), send('.hidden\r\nvisible\r\n.\r\n')]
        });

        check('body that ends with empty lines', {
            options: OPEN,
            handlers: { onData: true },
            steps: [G, EHLO, ...transaction('text\r\n\r\n\r\n')]
        });

        check('whole transactions pipelined in one write', {
            options: OPEN,
            handlers: RECORD_TX,
            steps: [
                G,
                EHLO,
                send(
                    lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'DATA') +
                        'first message\r\n.\r\n' +
                        lines('MAIL FROM:<c@example.com>', 'RCPT TO:<d@example.com>', 'DATA') +
                        'second message\r\n..dot\r\n.\r\n' +
                        lines('NOOP', 'RSET'),
                    10
                )
            ]
        });

        check('whole transactions pipelined in one write, no onData handler', {
            options: OPEN,
            steps: [
                G,
                EHLO,
                send(
                    (lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'DATA') + 'a message\r\n.\r\n').repeat(4) +
                        lines('NOOP'),
                    17
                )
            ]
        });

        check('terminator split across several writes', {
            options: OPEN,
            handlers: { onData: true },
            steps: [
                G,
                EHLO,
                send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'DATA'), 3),
                send('part one\r\n', 0),
                send('part two\r', 0),
                send('\n.', 0),
                send('.stuffed\r\n', 0),
                send('end\r\n.', 0),
                send('\r', 0),
                send('\nNOOP\r\n', 2)
            ]
        });

        check('binary body with every byte value', {
            options: OPEN,
            handlers: { onData: true },
            steps: [
                G,
                EHLO,
                send(lines('MAIL FROM:<a@example.com> BODY=8BITMIME', 'RCPT TO:<b@example.com>', 'DATA'), 3),
                send(Buffer.concat([...Array(4)].map(() => Buffer.from([...Array(256).keys()])).concat([Buffer.from('\r\n.\r\n')])))
            ]
        });

        check('bare LF and bare CR inside the body are kept', {
            options: OPEN,
            handlers: { onData: true },
            steps: [G, EHLO, ...transaction('a\nb\rc\n\nd\r\r\ne\r\n')]
        });

        check('UTF-8 body', {
            options: OPEN,
            handlers: { onData: true },
            steps: [G, EHLO, ...transaction('Subject: =?UTF-8?Q?x?=\r\n\r\nTere, maailm! Ünïcödé ✓ 😀\r\n')]
        });

        check('large body with stuffed lines', {
            options: OPEN,
            handlers: { onData: true },
            steps: [
                G,
                EHLO,
                ...transaction(
                    [...Array(5000).keys()].map(i => (i % 50 === 0 ? '..dotted line ' : 'Line ') + i + ' ' + 'x'.repeat(60) + '\r\n').join('')
                )
            ]
        });

        check('size exceeded without rejectOversized is only flagged', {
            options: { ...OPEN, size: 20 },
            handlers: { onData: true },
            steps: [G, EHLO, ...transaction('0123456789012345678901234567890123456789\r\n')]
        });

        check('body exactly at the size limit', {
            options: { ...OPEN, size: 12 },
            handlers: { onData: true },
            steps: [G, EHLO, ...transaction('0123456789\r\n')]
        });

        check('rejectOversized refuses the message after DATA', {
            options: { ...OPEN, size: 20, rejectOversized: true },
            handlers: { onData: afterEnd(() => [null, 'accepted anyway']) },
            steps: [G, EHLO, ...transaction('0123456789012345678901234567890123456789\r\n'), send('NOOP\r\n')]
        });

        check('rejectOversized with enhanced status codes', {
            options: { ...OPEN, ...ESC, size: 10, rejectOversized: true },
            handlers: { onData: true },
            steps: [G, EHLO, ...transaction('0123456789ABCDEF\r\n')]
        });

        check('rejectOversized in LMTP answers once per recipient', {
            options: { ...OPEN, lmtp: true, size: 10, rejectOversized: true },
            handlers: { onData: true },
            steps: [G, send('LHLO client.example\r\n'), send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'RCPT TO:<c@example.com>', 'DATA'), 4), send('0123456789ABCDEF\r\n.\r\n', 2)]
        });

        check('rejectOversized without size does nothing', {
            options: { ...OPEN, rejectOversized: true },
            handlers: { onData: true },
            steps: [G, EHLO, ...transaction('0123456789ABCDEF\r\n')]
        });

        check('onData error defaults to 450', {
            options: OPEN,
            handlers: { onData: afterEnd(() => [new Error('Try again later')]) },
            steps: [G, EHLO, ...transaction('x\r\n'), send('NOOP\r\n')]
        });

        check('onData error with responseCode and CR/LF in the message', {
            options: OPEN,
            handlers: { onData: afterEnd(() => [error('Message\r\nrejected\tas spam', 554)]) },
            steps: [G, EHLO, ...transaction('x\r\n')]
        });

        check('onData custom success text', {
            options: OPEN,
            handlers: { onData: afterEnd(() => [null, 'Queued as 1A2B3C']) },
            steps: [G, EHLO, ...transaction('x\r\n')]
        });

        check('onData empty success text with ESC', {
            options: { ...OPEN, ...ESC },
            handlers: { onData: afterEnd(() => [null, '']) },
            steps: [G, EHLO, ...transaction('x\r\n')]
        });

        check('onData non-string success value', {
            options: OPEN,
            handlers: { onData: afterEnd(() => [null, { id: 42 }]) },
            steps: [G, EHLO, ...transaction('x\r\n')]
        });

        check('onData that answers before reading the stream', {
            options: OPEN,
            handlers: { onData: raw((stream, session, cb) => cb(error('Rejected without reading', 550))) },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'DATA'), 3), send('line one\r\nline two\r\n.\r\nNOOP\r\n', 2)]
        });

        check('onData that answers asynchronously after reading', {
            options: OPEN,
            handlers: {
                onData: (stream, session, cb) => {
                    stream.on('end', () => setTimeout(() => cb(null, 'done later'), 30));
                }
            },
            steps: [G, EHLO, ...transaction('x\r\n'), send('NOOP\r\n')]
        });

        check('session is reset after DATA', {
            options: OPEN,
            handlers: RECORD_ALL,
            steps: [G, EHLO, ...transaction('one\r\n'), send('RCPT TO:<b@example.com>\r\n'), ...transaction('two\r\n', 'x@example.com', 'y@example.com')]
        });

        check('DATA arguments are ignored', {
            options: OPEN,
            handlers: { onData: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'DATA now please'), 3), send('x\r\n.\r\n')]
        });

        check('LMTP per-recipient replies from an array', {
            options: { ...OPEN, lmtp: true },
            handlers: {
                onData: afterEnd(() => [null, ['2.0.0 delivered to b', new Error('Mailbox busy'), error('Mailbox full', 552), { not: 'a string' }]])
            },
            steps: [
                G,
                send('LHLO client.example\r\n'),
                send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'RCPT TO:<c@example.com>', 'RCPT TO:<d@example.com>', 'RCPT TO:<e@example.com>', 'DATA'), 6),
                send('x\r\n.\r\n', 4)
            ]
        });

        check('LMTP error answers every recipient', {
            options: { ...OPEN, lmtp: true },
            handlers: { onData: afterEnd(() => [error('Temporary failure', 451)]) },
            steps: [
                G,
                send('LHLO client.example\r\n'),
                send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'RCPT TO:<c@example.com>', 'RCPT TO:<d@example.com>', 'DATA'), 5),
                send('x\r\n.\r\n', 3)
            ]
        });

        check('LMTP custom success text for every recipient', {
            options: { ...OPEN, lmtp: true },
            handlers: { onData: afterEnd(() => [null, 'Delivered']) },
            steps: [G, send('LHLO client.example\r\n'), send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'RCPT TO:<c@example.com>', 'DATA'), 4), send('x\r\n.\r\n', 2)]
        });

        check('LMTP array replies with enhanced status codes', {
            options: { ...OPEN, ...ESC, lmtp: true },
            handlers: { onData: afterEnd(() => [null, ['ok', error('Quota exceeded', 452), error('No such user')]]) },
            steps: [
                G,
                send('LHLO client.example\r\n'),
                send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'RCPT TO:<c@example.com>', 'RCPT TO:<d@example.com>', 'DATA'), 5),
                send('x\r\n.\r\n', 3)
            ]
        });

        check('DATA replies with enhanced status codes', {
            options: { ...OPEN, ...ESC },
            handlers: {
                onData: afterEnd(() => [null])
            },
            steps: [G, EHLO, send('DATA\r\n'), ...transaction('x\r\n')]
        });

        check('onData error with enhanced status codes gets the default-map prefix', {
            options: { ...OPEN, ...ESC },
            handlers: { onData: afterEnd(() => [error('5.7.1 Message rejected as spam', 550)]) },
            steps: [G, EHLO, ...transaction('x\r\n')]
        });

        check('onData error without code with enhanced status codes', {
            options: { ...OPEN, ...ESC },
            handlers: { onData: afterEnd(() => [new Error('Later')]) },
            steps: [G, EHLO, ...transaction('x\r\n')]
        });

        check('unrecognized counter is reset after a DATA transaction', {
            options: OPEN,
            steps: [G, EHLO, send('XYZZY\r\n'.repeat(9), 9), ...transaction('x\r\n'), send('XYZZY\r\n'.repeat(9), 9), send('XYZZY\r\n'), WAIT_CLOSE]
        });

        check('commands pipelined after DATA with a refused recipient', {
            options: OPEN,
            handlers: {
                onRcptTo: (address, session, cb) => cb(address.address === 'bad@example.com' ? error('Unknown user') : null),
                onData: true
            },
            steps: [
                G,
                EHLO,
                send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<bad@example.com>', 'RCPT TO:<good@example.com>', 'DATA') + 'content\r\n.\r\n' + lines('RCPT TO:<good@example.com>', 'NOOP'), 7)
            ]
        });
    });

    describe('other commands', { concurrency: true }, () => {
        check('RSET clears the envelope but keeps HELO', {
            options: OPEN,
            handlers: { onMailFrom: true, onRcptTo: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com>', 'RSET', 'RCPT TO:<b@example.com>', 'MAIL FROM:<c@example.com>', 'RCPT TO:<b@example.com>'), 5)]
        });

        check('RSET, NOOP, HELP and VRFY before HELO', {
            options: OPEN,
            steps: [G, send(lines('RSET', 'NOOP', 'HELP', 'VRFY x'), 4)]
        });

        check('NOOP with arguments', { options: OPEN, steps: [G, send('NOOP hello there\r\n')] });

        check('VRFY', { options: OPEN, steps: [G, EHLO, send('VRFY postmaster\r\n'), send('VRFY\r\n'), send('VRFY   \r\n')] });

        check('HELP', { options: OPEN, steps: [G, send('HELP\r\n'), send('HELP MAIL\r\n')] });

        check('QUIT closes the connection', {
            options: OPEN,
            handlers: { onClose: true },
            steps: [G, send('QUIT\r\n'), WAIT_CLOSE]
        });

        check('lines pipelined after QUIT are ignored', {
            options: OPEN,
            handlers: { onMailFrom: true },
            steps: [G, EHLO, send(lines('QUIT', 'MAIL FROM:<a@example.com>', 'NOOP')), WAIT_CLOSE]
        });

        check('QUIT on the default server', { options: {}, steps: [G, send('QUIT\r\n'), WAIT_CLOSE] });

        check('WIZ, SHELL and KILL', {
            options: OPEN,
            handlers: { onMailFrom: true },
            steps: [
                G,
                EHLO,
                send(lines('SHELL', 'WIZ', 'KILL', 'MAIL FROM:<a@example.com>', 'WIZ abracadabra', 'SHELL', 'RSET', 'MAIL FROM:<a@example.com>'), 8)
            ]
        });

        check('unsupported commands are unrecognized', {
            options: OPEN,
            steps: [G, EHLO, send(lines('EXPN staff', 'ETRN example.com', 'TURN', 'ATRN', 'BDAT 10 LAST', 'XEXCH50 1 2', 'SEND FROM:<a@example.com>'), 7)]
        });

        check('empty and whitespace-only lines are unrecognized', {
            options: OPEN,
            steps: [G, send('\r\n'), send('   \r\n'), send('\t\r\n')]
        });

        check('STARTTLS with an argument', {
            options: OPEN,
            steps: [G, EHLO, send('STARTTLS now\r\n')]
        });

        check('disabled STARTTLS is unrecognized', {
            options: { ...OPEN, disabledCommands: ['STARTTLS'] },
            steps: [G, EHLO, send('STARTTLS\r\n')]
        });

        check('disabled QUIT', {
            options: { ...OPEN, disabledCommands: ['QUIT'] },
            autoQuit: false,
            steps: [G, send('QUIT\r\n'), send('NOOP\r\n')]
        });

        check('disabled NOOP, VRFY and WIZ', {
            options: { ...OPEN, disabledCommands: ['noop', 'Vrfy', 'WIZ'] },
            steps: [G, send(lines('NOOP', 'VRFY x', 'WIZ pw', 'RSET'), 4)]
        });

        check('XCLIENT and XFORWARD are refused for untrusted peers', {
            options: OPEN,
            steps: [G, EHLO, send('XCLIENT ADDR=192.0.2.1\r\n'), send('XFORWARD ADDR=192.0.2.1\r\n')]
        });

        check('XCLIENT and XFORWARD refusal with ESC, and disabled XCLIENT', {
            options: { ...OPEN, ...ESC, disabledCommands: ['XCLIENT'] },
            steps: [G, EHLO, send('XCLIENT ADDR=192.0.2.1\r\n'), send('XFORWARD ADDR=192.0.2.1\r\n')]
        });

        check('150 pipelined commands', {
            options: OPEN,
            steps: [G, send('NOOP\r\n'.repeat(150), 150)]
        });
    });

    describe('XCLIENT / XFORWARD', { concurrency: true }, () => {
        check('XCLIENT ADDR and NAME re-greet and delay the connect event', {
            options: { ...OPEN, useXClient: true },
            handlers: { onConnect: true, onMailFrom: true, onClose: true },
            steps: [
                G,
                EHLO,
                send('XCLIENT ADDR=192.0.2.10 NAME=Client.Example.NET PROTO=ESMTP HELO=relay\r\n'),
                EHLO,
                send('MAIL FROM:<a@example.com>\r\n'),
                send('XCLIENT ADDR=192.0.2.11\r\n')
            ]
        });

        check('XCLIENT LOGIN= right after AUTH: the next transaction is plain ESMTP again', {
            options: { ...OPEN, useXClient: true, allowInsecureAuth: true },
            handlers: { onAuth: (auth, session, cb) => cb(null, { user: auth.username }), onMailFrom: true },
            steps: [
                G,
                EHLO,
                send('AUTH PLAIN ' + Buffer.from('\0user\0pass').toString('base64') + '\r\n'),
                send('XCLIENT LOGIN=\r\n'),
                EHLO,
                send('MAIL FROM:<a@example.com>\r\n')
            ]
        });

        check('XCLIENT syntax errors', {
            options: { ...OPEN, useXClient: true },
            steps: [
                G,
                EHLO,
                send(lines('XCLIENT', 'XCLIENT FOO=bar', 'XCLIENT ADDR', 'XCLIENT ADDR=a=b', 'XCLIENT ADDR=not-an-ip', 'XCLIENT NAME=bad_name!', 'XCLIENT NAME=ab+0D+0Acd'), 7)
            ]
        });

        check('XCLIENT during a mail transaction', {
            options: { ...OPEN, useXClient: true },
            steps: [G, EHLO, send(lines('MAIL FROM:<a@example.com>', 'XCLIENT ADDR=192.0.2.1'), 2)]
        });

        check('XCLIENT IPv6 address, port and unavailable name', {
            options: { ...OPEN, useXClient: true },
            handlers: { onMailFrom: true },
            steps: [G, EHLO, send('XCLIENT ADDR=IPV6:2001:DB8::0:1 PORT=4567 NAME=[UNAVAILABLE] LOGIN=\r\n'), EHLO, send('MAIL FROM:<a@example.com>\r\n')]
        });

        check('XCLIENT for a peer that is not in the trust list', {
            options: { ...OPEN, useXClient: ['192.0.2.99'] },
            handlers: { onConnect: true, onMailFrom: true },
            steps: [G, EHLO, send('XCLIENT ADDR=192.0.2.1\r\n'), send('MAIL FROM:<a@example.com>\r\n')]
        });

        check('XFORWARD applies forwarded details without a new greeting', {
            options: { ...OPEN, useXForward: true },
            handlers: { onConnect: true, onMailFrom: true },
            steps: [
                G,
                send('XFORWARD ADDR=192.0.2.20 NAME=Relay.Example PORT=2525 HELO=Origin.EXAMPLE IDENT=abc SOURCE=REMOTE\r\n'),
                send('MAIL FROM:<a@example.com>\r\n'),
                send('XFORWARD NAME=x.example\r\n'),
                send('RSET\r\n'),
                send('XFORWARD ADDR=192.0.2.21 PROTO=SMTP\r\n'),
                send('XFORWARD BOGUS=1\r\n')
            ]
        });
    });

    describe('limits and protections', { concurrency: true }, () => {
        check('ten unrecognized commands close the connection', {
            options: OPEN,
            steps: [G, send('FOO\r\n'.repeat(9), 9), send('BAR\r\n'), WAIT_CLOSE]
        });

        check('unrecognized limit with enhanced status codes', {
            options: { ...OPEN, ...ESC },
            steps: [G, send('FOO\r\n'.repeat(10), 10), WAIT_CLOSE]
        });

        check('disabled EHLO counts as unrecognized without ESC', {
            options: { ...OPEN, ...ESC, disabledCommands: ['EHLO'] },
            steps: [G, EHLO, send('FOO\r\n')]
        });

        check('unrecognized limit reached by an EHLO line has no ESC', {
            options: { ...OPEN, ...ESC, disabledCommands: ['EHLO'] },
            steps: [G, send('FOO\r\n'.repeat(9), 9), EHLO, WAIT_CLOSE]
        });

        check('maxCommandLength: a line at the limit is processed', {
            options: { ...OPEN, maxCommandLength: 64 },
            steps: [G, send('NOOP ' + 'x'.repeat(59) + '\r\n'), send('MAIL FROM:<a@example.com> X=' + 'y'.repeat(34) + '\r\n')]
        });

        check('maxCommandLength: a longer line closes the connection', {
            options: { ...OPEN, maxCommandLength: 64 },
            steps: [G, send('NOOP ' + 'x'.repeat(60) + '\r\nNOOP\r\n'), WAIT_CLOSE]
        });

        check('maxCommandLength: unterminated input over the limit', {
            options: { ...OPEN, maxCommandLength: 64 },
            steps: [G, send('NOOP', 0), send(' ' + 'x'.repeat(70)), WAIT_CLOSE]
        });

        check('default maxCommandLength is 16384', {
            options: OPEN,
            steps: [G, send('NOOP ' + 'x'.repeat(16379) + '\r\n'), send('NOOP ' + 'x'.repeat(16380) + '\r\n'), WAIT_CLOSE]
        });

        check('HTTP request line is refused', {
            options: OPEN,
            handlers: { onClose: true },
            steps: [G, send('GET / HTTP/1.1\r\nHost: example.com\r\n\r\n'), WAIT_CLOSE]
        });

        check('HTTP POST in lower case after EHLO is refused', {
            options: { ...OPEN, ...ESC },
            steps: [G, EHLO, send('post /submit?x=1 http/1.0\r\n'), WAIT_CLOSE]
        });

        check('lines that only look like HTTP are unrecognized', {
            options: OPEN,
            steps: [G, send(lines('GET /', 'GET index.html HTTP/1.1', 'FETCH / HTTP/1.1', 'GET / HTTP/1.1 extra'), 4)]
        });

        check('server.close() makes the next command get 421', {
            options: { ...OPEN, closeTimeout: 5000 },
            steps: [G, EHLO, { serverClose: true }, send('NOOP\r\n'), WAIT_CLOSE]
        });

        check('server.close() with ESC: EHLO context has no ESC', {
            options: { ...OPEN, ...ESC, closeTimeout: 5000 },
            steps: [G, { serverClose: true }, EHLO, WAIT_CLOSE]
        });

        check('server.close() grace period expiry', {
            options: { ...OPEN, closeTimeout: 200 },
            handlers: { onClose: true },
            steps: [G, EHLO, { serverClose: true }, { replies: 1 }, WAIT_CLOSE]
        });

        check('a message in transfer finishes during server.close()', {
            options: { ...OPEN, closeTimeout: 5000 },
            handlers: { onData: true },
            steps: [
                G,
                EHLO,
                send(lines('MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'DATA'), 3),
                send('part one\r\n', 0),
                { serverClose: true },
                send('part two\r\n.\r\n'),
                send('NOOP\r\n'),
                WAIT_CLOSE
            ]
        });
    });

    describe('enhanced status codes', { concurrency: true }, () => {
        check('success replies', {
            options: { ...OPEN, ...ESC },
            steps: [G, EHLO, HELO, send(lines('RSET', 'NOOP', 'HELP', 'VRFY a@example.com', 'WIZ x'), 5), ...transaction('x\r\n'), send('QUIT\r\n'), WAIT_CLOSE]
        });

        check('syntax and sequence errors', {
            options: { ...OPEN, ...ESC, size: 100 },
            steps: [
                G,
                send('HELO\r\n'),
                send('EHLO bad\x01\r\n'),
                send('MAIL FROM:<a@example.com>\r\n'),
                EHLO,
                send(
                    lines(
                        'VRFY',
                        'MAIL FROM:bad',
                        'RCPT TO:<b@example.com>',
                        'MAIL FROM:<a@example.com> SIZE=1000',
                        'MAIL FROM:<a@example.com> SIZE=1 SIZE=1',
                        'MAIL FROM:<a@example.com> SIZE',
                        'MAIL FROM:<a@example.com> BODY=x',
                        'MAIL FROM:<a@example.com> SMTPUTF8=x',
                        'MAIL FROM:<a@example.com> REQUIRETLS',
                        'MAIL FROM:<a@example.com>',
                        'MAIL FROM:<a@example.com>',
                        'DATA',
                        'SHELL',
                        'KILL',
                        'WIZ',
                        'STARTTLS x',
                        'BLAH'
                    ),
                    17
                )
            ]
        });

        check('application errors get the default-map code', {
            options: { ...OPEN, ...ESC },
            handlers: {
                onMailFrom: (address, session, cb) => {
                    const codes = { 'a@example.com': undefined, 'b@example.com': 553, 'c@example.com': 451, 'd@example.com': 599, 'e@example.com': 421 };
                    const code = codes[address.address];
                    setImmediate(() => cb(address.address === 'ok@example.com' ? null : error('Refused ' + address.address, code)));
                },
                onRcptTo: () => {
                    throw new Error('boom');
                }
            },
            steps: [
                G,
                EHLO,
                send(lines('MAIL FROM:<a@example.com>', 'MAIL FROM:<b@example.com>', 'MAIL FROM:<c@example.com>', 'MAIL FROM:<d@example.com>', 'MAIL FROM:<ok@example.com>', 'RCPT TO:<x@example.com>'), 6),
                send(lines('RSET', 'MAIL FROM:<e@example.com>'), 2),
                WAIT_CLOSE
            ]
        });

        check('LMTP HELO refusal has no ESC', {
            options: { ...OPEN, ...ESC, lmtp: true },
            steps: [G, HELO, send('MAIL FROM:<a@example.com>\r\n'), send('LHLO client.example\r\n'), send('MAIL FROM:<a@example.com>\r\n')]
        });

        check('session.error keeps the last error reply', {
            options: { ...OPEN, ...ESC },
            handlers: { onMailFrom: true, onClose: true },
            steps: [G, EHLO, send('FOO\r\n'), send('MAIL FROM:<a@example.com>\r\n'), send('RCPT TO:<>\r\n'), send('RSET\r\n')]
        });
    });

    describe('lexical details', { concurrency: true }, () => {
        check('commands are case-insensitive', {
            options: OPEN,
            handlers: RECORD_TX,
            steps: [G, send('ehlo client.example\r\n'), send(lines('mail from:<a@example.com>', 'Rcpt To:<b@example.com>', 'data'), 3), send('hi\r\n.\r\n'), send('rSeT\r\n'), send('quit\r\n'), WAIT_CLOSE]
        });

        check('a tab does not separate the command name', {
            options: OPEN,
            steps: [G, send('NOOP\tx\r\n'), send('EHLO\tclient.example\r\n'), send('HELO\t\r\n')]
        });

        check('tabs and extra spaces inside arguments', {
            options: OPEN,
            handlers: { onMailFrom: true, onRcptTo: true },
            steps: [G, send('EHLO   client.example  \r\n'), send(lines('MAIL FROM:<a@example.com>\tSIZE=10 \t BODY=8BITMIME', 'RCPT TO:\t<b@example.com>\t'), 2)]
        });

        check('bare LF line endings in commands', {
            options: OPEN,
            handlers: RECORD_TX,
            steps: [G, send('EHLO client.example\n'), send('MAIL FROM:<a@example.com>\nRCPT TO:<b@example.com>\r\nDATA\n', 3), send('body\r\n.\r\nNOOP\n', 2)]
        });

        check('CR inside a line and leading spaces', {
            options: OPEN,
            steps: [G, send('NOOP\rX\r\n'), send(' NOOP\r\n'), send('NOOP   \r\n'), send('\rNOOP\r\n')]
        });

        check('8-bit and NUL bytes in command names', {
            options: OPEN,
            steps: [G, send(Buffer.from([0xff, 0xfe, 0x0d, 0x0a])), send('NO\x00OP\r\n'), send('NÖÖP\r\n')]
        });

        check('8-bit bytes in HELO argument are accepted', {
            options: OPEN,
            handlers: { onMailFrom: true },
            steps: [G, send('EHLO hõst.example\r\n'), send('MAIL FROM:<a@example.com>\r\n')]
        });
    });
});
