'use strict';

// Differential transcripts for the PROXY protocol version 1 (useProxy): the same
// header bytes sent to smtp-server 3.21.6 and to this package; the replies (or the
// "* BAD" line), the close behaviour and what onConnect/onClose and the connect event
// see must be identical. The header goes out with the connection itself, so the
// 100 ms early-talker window starts after it, as in a real proxy set-up.
//
// differs: see README — a header without a destination address is refused here even
// for `ignoredHosts` peers, so no transcript combines the two.

const { describe } = require('node:test');
const { check, send, WAIT_CLOSE } = require('./helpers/transcript.js');

const PROXY = { authOptional: true, useProxy: true };
const SEEN = { onConnect: true, onClose: true };

describe('PROXY protocol v1', { concurrency: true }, () => {
    check('a TCP4 header sets the client address and port', {
        options: PROXY,
        handlers: SEEN,
        steps: [send('PROXY TCP4 192.0.2.7 198.51.100.1 5678 25\r\n'), send('EHLO client.example\r\n'), send('QUIT\r\n')]
    });

    check('a TCP6 header (address normalized)', {
        options: PROXY,
        handlers: SEEN,
        steps: [send('PROXY TCP6 2001:DB8:0:0::7 2001:db8::1 4000 25\r\n'), send('QUIT\r\n')]
    });

    check('an IPv4-mapped source is stripped to IPv4', {
        options: PROXY,
        handlers: SEEN,
        steps: [send('PROXY TCP6 ::ffff:192.0.2.9 ::1 4000 25\r\n'), send('QUIT\r\n')]
    });

    check('PROXY UNKNOWN keeps the socket addresses', {
        options: PROXY,
        handlers: { onClose: true },
        steps: [send('PROXY UNKNOWN\r\n'), send('QUIT\r\n')]
    });

    check('a non-numeric source port keeps the socket port', {
        options: PROXY,
        handlers: { onClose: true },
        steps: [send('PROXY TCP4 192.0.2.8 198.51.100.1 nope 25\r\n'), send('QUIT\r\n')]
    });

    check('lower-case "proxy" and a bare LF line end', {
        options: PROXY,
        handlers: SEEN,
        steps: [send('proxy TCP4 192.0.2.10 198.51.100.1 1234 25\n'), send('QUIT\r\n')]
    });

    check('the connect event carries the proxied address', {
        options: PROXY,
        handlers: { onConnect: true },
        steps: [send('PROXY TCP4 203.0.113.5 198.51.100.1 2000 25\r\n'), send('EHLO x.example\r\n'), send('QUIT\r\n')]
    });

    check('a source that is not an IP address is refused', {
        options: PROXY,
        handlers: { onConnect: true }, // no session, so no onClose (as in smtp-server)
        steps: [send('PROXY TCP4 not-an-ip 198.51.100.1 1 25\r\n'), WAIT_CLOSE]
    });

    check('a header without a destination is refused', {
        options: PROXY,
        handlers: { onConnect: true }, // no session, so no onClose (as in smtp-server)
        steps: [send('PROXY TCP4 192.0.2.7\r\n'), WAIT_CLOSE]
    });

    check('an SMTP command instead of a header is refused', {
        options: PROXY,
        handlers: { onConnect: true }, // no session, so no onClose (as in smtp-server)
        steps: [send('EHLO client.example\r\n'), WAIT_CLOSE]
    });

    check('a header line over 1024 bytes is refused', {
        options: PROXY,
        handlers: { onConnect: true }, // no session, so no onClose (as in smtp-server)
        steps: [send('PROXY TCP4 192.0.2.7 198.51.100.1 1 25 ' + 'x'.repeat(1100) + '\r\n'), WAIT_CLOSE]
    });

    check('1024 bytes without a line end are refused', {
        options: PROXY,
        handlers: { onConnect: true }, // no session, so no onClose (as in smtp-server)
        steps: [send('PROXY ' + 'y'.repeat(1100)), WAIT_CLOSE]
    });

    check('a peer not in the useProxy list connects without a header', {
        options: { authOptional: true, useProxy: ['10.1.2.3'] },
        handlers: SEEN,
        steps: [{ replies: 1 }, send('EHLO client.example\r\n'), send('QUIT\r\n')]
    });

    check('a listed peer (normalized entry) must send a header', {
        options: { authOptional: true, useProxy: ['::ffff:127.0.0.1'] },
        handlers: SEEN,
        steps: [send('PROXY TCP4 192.0.2.44 198.51.100.1 4444 25\r\n'), send('QUIT\r\n')]
    });

    check('commands pipelined behind the header', {
        options: PROXY,
        handlers: { onClose: true },
        steps: [send('PROXY TCP4 192.0.2.7 198.51.100.1 5678 25\r\n'), send('EHLO a.example\r\nNOOP\r\nQUIT\r\n', 3)]
    });
});

describe('reverse DNS through a custom resolver', { concurrency: true }, () => {
    const resolver = answer => ({
        reverse(ip, callback) {
            setImmediate(() => answer(ip, callback));
        }
    });

    check('the first PTR name, lower-cased, without the trailing dot', {
        options: { authOptional: true, disableReverseLookup: false, resolver: resolver((ip, cb) => cb(null, ['Mail.Example.COM.', 'other.example'])) },
        handlers: { onConnect: true },
        steps: [{ replies: 1 }, send('EHLO client.example\r\n'), send('QUIT\r\n')]
    });

    check('an invalid PTR name falls back to [ip]', {
        options: { authOptional: true, disableReverseLookup: false, resolver: resolver((ip, cb) => cb(null, ['bad\r\nname.example'])) },
        handlers: { onConnect: true },
        steps: [{ replies: 1 }, send('EHLO client.example\r\n'), send('QUIT\r\n')]
    });

    check('a resolver error falls back to [ip]', {
        options: { authOptional: true, disableReverseLookup: false, resolver: resolver((ip, cb) => cb(new Error('ENOTFOUND'))) },
        handlers: { onConnect: true },
        steps: [{ replies: 1 }, send('EHLO client.example\r\n'), send('QUIT\r\n')]
    });

    check('a resolver that never answers: the greeting comes after the 1500 ms cap', {
        options: { authOptional: true, disableReverseLookup: false, resolver: { reverse() {} } },
        handlers: { onConnect: true },
        steps: [{ replies: 1 }, send('EHLO client.example\r\n'), send('QUIT\r\n')]
    });
});
