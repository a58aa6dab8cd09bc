'use strict';

// The opt-in strict mode: rejectBareLineEndings and strictPipelining, against the bytes
// smtpsmug sends (its ten malformed end-of-data sequences, each written the way it writes
// them, and its pipelining test), plus well-behaved clients that must still get through.
// With the options off, the same bytes keep smtp-server's behaviour (smuggling.test.js
// compares that with smtp-server transcript by transcript).

const test = require('node:test');
const { describe } = require('node:test');
const assert = require('node:assert/strict');
const nodemailer = require('nodemailer');

const { IS_REF, withServer, Client } = require('./helpers/smtp-client.js');

const skip = IS_REF && 'smtp-server has no strict mode';
const STRICT = { authOptional: true, rejectBareLineEndings: true, strictPipelining: true };

// smtpsmug's tests (`--list-tests`), by its names, and what the strict mode calls them
const ENDINGS = {
    lflf: ['\n.\n', 'bare <LF>'],
    crcr: ['\r.\r', 'bare <CR>'],
    crlf: ['\r.\n', 'bare <CR>'],
    lfcr: ['\n.\r', 'bare <LF>'],
    lfcrlf: ['\n.\r\n', 'bare <LF>'],
    crlflf: ['\r\n.\n', 'bare <LF>'],
    crcrlf: ['\r.\r\n', 'bare <CR>'],
    crlfcr: ['\r\n.\r', 'bare <CR>'],
    nullbefore: ['\r\n\x00.\r\n', 'NUL character'],
    nullafter: ['\r\n.\x00\r\n', 'NUL character']
};

const HEADERS = 'From: alice@example.org\r\nTo: bob@example.org\r\nSubject: Hello World\r\n\r\n';

/** An onData handler that records how each message's stream ended. */
function recorder() {
    const messages = [];
    const onData = (stream, session, callback) => {
        const message = { chunks: [], ended: false, error: null };
        messages.push(message);
        stream.on('data', chunk => message.chunks.push(chunk));
        stream.on('end', () => {
            message.ended = true;
            callback();
        });
        stream.on('error', err => {
            message.error = err;
            callback(err);
        });
    };
    return { messages, onData };
}

async function envelope(client) {
    assert.equal(await client.cmd('MAIL FROM:<alice@example.org>'), '250 Accepted');
    assert.equal(await client.cmd('RCPT TO:<bob@example.org>'), '250 Accepted');
}

describe('rejectBareLineEndings: smtpsmug end-of-data sequences', { concurrency: true }, () => {
    for (const [name, [ending, what]] of Object.entries(ENDINGS)) {
        for (const writes of ['one write', 'two writes']) {
            test(`${name} (${JSON.stringify(ending)}, ${writes}): 550 after the real end, nothing delivered`, { skip }, async () => {
                const { messages, onData } = recorder();
                await withServer({ ...STRICT, onData }, async port => {
                    const client = await Client.open(port, 'EHLO example.org');
                    await envelope(client);
                    assert.equal(await client.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>');
                    // as smtpsmug writes it: a line, the sequence, a line after it, the real end
                    const first = `${HEADERS}This is a test mail with an ${JSON.stringify(ending)} ending.\r\n${ending}`;
                    const second = `This is after a bad mail ${JSON.stringify(ending)} ending.\r\n\r\n.\r\n`;
                    if (writes === 'one write') {
                        client.write(first + second);
                    } else {
                        client.write(first);
                        client.write(second);
                    }
                    assert.equal(await client.read('the reply to the message'), `550 Error: ${what} received`);
                    assert.equal(await client.cmd('NOOP'), '250 OK');
                    client.destroy();
                });
                for (const message of messages) {
                    assert.equal(message.ended, false, 'onData saw the message end as a complete one');
                }
            });
        }
    }

    test('enhanced status codes: 550 5.5.2', { skip }, async () => {
        await withServer({ ...STRICT, hideENHANCEDSTATUSCODES: false }, async port => {
            const client = await Client.open(port, 'EHLO example.org');
            assert.equal(await client.cmd('MAIL FROM:<alice@example.org>'), '250 2.1.0 Accepted');
            assert.equal(await client.cmd('RCPT TO:<bob@example.org>'), '250 2.1.5 Accepted');
            assert.equal(await client.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>');
            client.write('a\n.\nb\r\n.\r\n');
            assert.equal(await client.read(), '550 5.5.2 Error: bare <LF> received');
            client.destroy();
        });
    });

    test('off (the default): the sequence stays in the body and the message is accepted', { skip }, async () => {
        const { messages, onData } = recorder();
        await withServer({ authOptional: true, onData }, async port => {
            const client = await Client.open(port, 'EHLO example.org');
            await envelope(client);
            assert.equal(await client.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>');
            client.write('before\n.\nafter\r\n.\r\n');
            assert.equal(await client.read(), '250 OK: message queued');
            client.destroy();
        });
        assert.equal(messages.length, 1);
        assert.equal(Buffer.concat(messages[0].chunks).toString('latin1'), 'before\n.\nafter\r\n');
    });

    test('a bare LF or CR in a command line: 550, then the connection is closed', { skip }, async () => {
        await withServer(STRICT, async port => {
            for (const [line, what] of [
                ['NOOP\nNOOP\r\n', 'bare <LF>'],
                ['NOOP\rNOOP\r\n', 'bare <CR>'],
                ['MAIL FROM:<alice@example.org>\rRCPT TO:<bob@example.org>\r\n', 'bare <CR>']
            ]) {
                const client = await Client.open(port, 'EHLO example.org');
                client.write(line);
                assert.equal(await client.read(), `550 Error: ${what} received`);
                await client.waitClose();
                assert.equal(client.replies.length, 0, `nothing after the 550 for ${JSON.stringify(line)}`);
            }
        });
    });
});

describe('strictPipelining', { concurrency: true }, () => {
    /** smtpsmug's pipelining test: the end of one message and all of the next in one go. */
    async function pipeliningTest(options, count) {
        const { messages, onData } = recorder();
        const replies = await withServer({ ...options, onData }, async port => {
            const client = await Client.open(port, 'EHLO example.org');
            await envelope(client);
            assert.equal(await client.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>');
            client.write(
                `${HEADERS}This is mail 1/2 to test pipelining\r\n\r\n.\r\n` +
                    'MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n' +
                    `${HEADERS.replace('Hello World', 'Hello World 2')}This is mail 2/2 to test pipelining\r\n\r\n.\r\n`
            );
            const out = await client.readN(count, 'the replies');
            if (options.strictPipelining) {
                await client.waitClose();
                assert.equal(client.replies.length, 0, 'nothing after the 554');
            }
            client.destroy();
            return out;
        });
        return { replies, messages };
    }

    test("smtpsmug's pipelining test: 554 instead of the 354, then the connection is closed", { skip }, async () => {
        const { replies, messages } = await pipeliningTest(STRICT, 4);
        assert.deepEqual(replies, ['250 OK: message queued', '250 Accepted', '250 Accepted', '554 Error: SMTP protocol synchronization']);
        assert.equal(messages.length, 1, 'only the first message reached onData');
        assert.match(Buffer.concat(messages[0].chunks).toString(), /mail 1\/2/);
    });

    test('off (the default): the second message is read from the pipelined bytes, as in smtp-server', { skip }, async () => {
        const { replies, messages } = await pipeliningTest({ authOptional: true }, 5);
        assert.deepEqual(replies, ['250 OK: message queued', '250 Accepted', '250 Accepted', '354 End data with <CR><LF>.<CR><LF>', '250 OK: message queued']);
        assert.equal(messages.length, 2);
    });

    test('a message written right behind DATA: refused before any byte is read as a message', { skip }, async () => {
        const { messages, onData } = recorder();
        await withServer({ ...STRICT, hideENHANCEDSTATUSCODES: false, onData }, async port => {
            const client = await Client.open(port, 'EHLO example.org');
            assert.equal(await client.cmd('MAIL FROM:<alice@example.org>'), '250 2.1.0 Accepted');
            assert.equal(await client.cmd('RCPT TO:<bob@example.org>'), '250 2.1.5 Accepted');
            client.write(`DATA\r\n${HEADERS}smuggled\r\n.\r\nMAIL FROM:<mallory@example.org>\r\n`);
            assert.equal(await client.read(), '554 5.5.0 Error: SMTP protocol synchronization');
            await client.waitClose();
            assert.equal(client.replies.length, 0);
        });
        assert.equal(messages.length, 0);
    });

    test('BDAT commands pipelined with their chunks are served (RFC 3030)', { skip }, async () => {
        const { messages, onData } = recorder();
        await withServer({ ...STRICT, hideCHUNKING: false, onData }, async port => {
            const client = await Client.open(port, 'EHLO example.org');
            client.write('MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nBDAT 6\r\nhello\nBDAT 7 LAST\r\n world\n');
            assert.deepEqual(await client.readN(4), ['250 Accepted', '250 Accepted', '250 OK: 6 bytes received', '250 OK: message queued']);
            client.destroy();
        });
        assert.equal(messages.length, 1);
        assert.equal(Buffer.concat(messages[0].chunks).toString(), 'hello\n world\n');
    });
});

test('both options on: nodemailer delivers a message with an attachment', { skip }, async () => {
    const { messages, onData } = recorder();
    await withServer({ ...STRICT, onData }, async port => {
        const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, logger: false });
        const info = await transport.sendMail({
            from: 'alice@example.org',
            to: 'bob@example.org',
            subject: 'strict',
            text: 'line one\n.line two\n\nend\n',
            attachments: [{ filename: 'a.bin', content: Buffer.from([0, 1, 2, 13, 10, 46, 13]) }]
        });
        assert.match(info.response, /^250 OK: message queued/);
        transport.close();
    });
    assert.equal(messages.length, 1);
    assert.equal(messages[0].ended, true);
    assert.doesNotMatch(Buffer.concat(messages[0].chunks).toString('latin1'), /[^\r]\n|\r[^\n]/);
});

test('set on a running server (server.options): applies from the next command', { skip }, async () => {
    await withServer({ authOptional: true }, async (port, server) => {
        const client = await Client.open(port, 'EHLO example.org');
        client.write('NOOP\n');
        assert.equal(await client.read(), '250 OK');
        server.options.rejectBareLineEndings = true;
        client.write('NOOP\n');
        assert.equal(await client.read(), '550 Error: bare <LF> received');
        await client.waitClose();
    });
});
