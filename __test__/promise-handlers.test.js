'use strict';
// Handlers that return promises: async functions and promise-returning functions answer
// without the callback; callback style keeps working; mixing both is predictable.
const test = require('node:test');
const assert = require('node:assert/strict');
const { IS_REF, withServer, Client, transaction, smtpError, sleep, until } = require('./helpers/smtp-client.js');

const skip = IS_REF && 'smtp-server has no promise handlers';

test('async onMailFrom/onRcptTo: resolve accepts, reject refuses with the error code', { skip }, async () => {
    await withServer(
        {
            async onMailFrom(address) {
                await sleep(1);
                if (address.address === 'bad@example.com') {
                    throw smtpError('Sender refused', 553);
                }
            },
            onRcptTo(address) {
                return address.address.startsWith('no')
                    ? Promise.reject(smtpError('No such user', 550))
                    : Promise.resolve();
            },
            async onData(stream) {
                for await (const chunk of stream) {
                    void chunk;
                }
                return 'Queued as ABC';
            }
        },
        async port => {
            const client = await Client.open(port);
            try {
                assert.equal(await client.cmd('MAIL FROM:<bad@example.com>'), '553 Sender refused');
                assert.equal(await client.cmd('MAIL FROM:<good@example.com>'), '250 Accepted');
                assert.equal(await client.cmd('RCPT TO:<nobody@example.com>'), '550 No such user');
                assert.equal(await client.cmd('RCPT TO:<yes@example.com>'), '250 Accepted');
                assert.equal(await client.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>');
                client.write('Subject: x\r\n\r\nhello\r\n.\r\n');
                assert.equal(await client.read(), '250 Queued as ABC');
            } finally {
                client.destroy();
            }
        }
    );
});

test('an async onData that rejects refuses the message; without a code it is 450', { skip }, async () => {
    let n = 0;
    await withServer(
        {
            async onData(stream) {
                const chunks = [];
                for await (const chunk of stream) {
                    chunks.push(chunk);
                }
                n++;
                if (n === 1) {
                    throw smtpError('Spam detected', 554);
                }
                throw new Error('Storage is full');
            }
        },
        async port => {
            const client = await Client.open(port);
            try {
                assert.equal(await transaction(client, 'a\r\n'), '554 Spam detected');
                assert.equal(await client.cmd('RSET'), '250 Flushed');
                assert.equal(await transaction(client, 'b\r\n'), '450 Storage is full');
            } finally {
                client.destroy();
            }
        }
    );
});

test('a rejection with a plain value refuses with its text', { skip }, async () => {
    await withServer(
        {
            onMailFrom() {
                return Promise.reject('nope');
            }
        },
        async port => {
            const client = await Client.open(port);
            try {
                assert.equal(await client.cmd('MAIL FROM:<a@example.com>'), '550 nope');
            } finally {
                client.destroy();
            }
        }
    );
});

test('async onAuth resolves with { user }; onConnect and onClose may be async', { skip }, async () => {
    const closed = [];
    await withServer(
        {
            authMethods: ['PLAIN'],
            allowInsecureAuth: true,
            authOptional: false,
            async onConnect(session) {
                await sleep(1);
                if (session.remoteAddress !== '127.0.0.1') {
                    throw smtpError('Not you', 554);
                }
            },
            async onAuth(auth) {
                await sleep(1);
                if (auth.password === 'secret') {
                    return { user: { name: auth.username } };
                }
                return { message: 'Wrong password' };
            },
            async onClose(session) {
                closed.push(session.user && session.user.name);
                throw new Error('ignored: onClose has no reply');
            }
        },
        async (port, server) => {
            const client = await Client.open(port);
            try {
                const bad = Buffer.from('\0alice\0wrong').toString('base64');
                assert.equal(await client.cmd('AUTH PLAIN ' + bad), '535 Wrong password');
                const good = Buffer.from('\0alice\0secret').toString('base64');
                assert.equal(await client.cmd('AUTH PLAIN ' + good), '235 Authentication successful');
                assert.equal(await client.cmd('QUIT'), '221 Bye');
                await client.waitClose();
            } finally {
                client.destroy();
            }
            await until(() => closed.length === 1 && server.connections.size === 0, 'onClose');
            assert.deepEqual(closed, ['alice']);
        }
    );
});

test('async onData under LMTP resolves with one result per recipient', { skip }, async () => {
    await withServer(
        {
            lmtp: true,
            async onData(stream, session) {
                stream.resume();
                await new Promise(resolve => stream.on('end', resolve));
                return session.envelope.rcptTo.map(r => (r.address.startsWith('full') ? smtpError('Mailbox full', 452) : 'Delivered'));
            }
        },
        async port => {
            const client = await Client.connect(port);
            try {
                assert.match(await client.read(), /^220 /);
                assert.match(await client.cmd('LHLO me'), /^250/);
                assert.equal(await client.cmd('MAIL FROM:<a@example.com>'), '250 Accepted');
                assert.equal(await client.cmd('RCPT TO:<ok@example.com>'), '250 Accepted');
                assert.equal(await client.cmd('RCPT TO:<full@example.com>'), '250 Accepted');
                assert.equal(await client.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>');
                client.write('hi\r\n.\r\n');
                assert.deepEqual(await client.readN(2), ['250 Delivered', '452 Mailbox full']);
            } finally {
                client.destroy();
            }
        }
    );
});

test('an async handler that declares the callback and resolves undefined answers through the callback', { skip }, async () => {
    await withServer(
        {
            // callback style inside an async function: the promise resolves at once, the
            // answer comes later through the callback
            async onMailFrom(address, session, callback) {
                setTimeout(() => callback(address.address === 'late@example.com' ? smtpError('Refused later', 551) : null), 20);
            },
            async onData(stream, session, callback) {
                stream.on('end', () => setTimeout(() => callback(null, 'Callback text'), 10));
                stream.resume();
            }
        },
        async port => {
            const client = await Client.open(port);
            try {
                assert.equal(await client.cmd('MAIL FROM:<late@example.com>'), '551 Refused later');
                assert.equal(await transaction(client, 'x\r\n'), '250 Callback text');
            } finally {
                client.destroy();
            }
        }
    );
});

test('callback and promise in one call: the first answer wins, the other is ignored', { skip }, async () => {
    await withServer(
        {
            async onMailFrom(address, session, callback) {
                callback(smtpError('Callback first', 552));
                return 'ignored';
            },
            async onRcptTo(address, session, callback) {
                // resolves with a value before the callback runs: the value answers
                setTimeout(() => callback(smtpError('Too late', 550)), 20);
                return 'accepted by the promise';
            }
        },
        async (port, server) => {
            const client = await Client.open(port);
            try {
                assert.equal(await client.cmd('MAIL FROM:<a@example.com>'), '552 Callback first');
                assert.equal(await client.cmd('MAIL FROM:<b@example.com>'), '552 Callback first');
                server.onMailFrom = (address, session, callback) => callback();
                assert.equal(await client.cmd('MAIL FROM:<b@example.com>'), '250 Accepted');
                assert.equal(await client.cmd('RCPT TO:<c@example.com>'), '250 Accepted');
                // the late callback error is ignored: the next command gets its own reply
                await sleep(40);
                assert.equal(await client.cmd('NOOP'), '250 OK');
            } finally {
                client.destroy();
            }
        }
    );
});

test('a thrown error inside an async handler is a rejection: its code is the reply (not 451)', { skip }, async () => {
    await withServer(
        {
            async onRcptTo() {
                throw smtpError('Mailbox unavailable', 550);
            }
        },
        async port => {
            const client = await Client.open(port);
            try {
                assert.equal(await client.cmd('MAIL FROM:<a@example.com>'), '250 Accepted');
                assert.equal(await client.cmd('RCPT TO:<b@example.com>'), '550 Mailbox unavailable');
                assert.equal(await client.cmd('NOOP'), '250 OK');
            } finally {
                client.destroy();
            }
        }
    );
});
