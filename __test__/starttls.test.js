'use strict';
// STARTTLS end to end with nodemailer, and the classic plaintext-injection check. This
// file is also run under Bun 1.3.x, where smtp-server's own STARTTLS does not work.
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const tls = require('node:tls');
const nodemailer = require('nodemailer');
const { SMTPServer } = require('..');
const { deadline, listen } = require('./helpers/smtp-client.js');

test('nodemailer delivers over STARTTLS; the session is secure', async () => {
  const seen = [];
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    authOptional: true,
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', c => chunks.push(c));
      stream.on('end', () => {
        seen.push({ secure: session.secure, type: session.transmissionType, version: session.tlsOptions && session.tlsOptions.version, body: Buffer.concat(chunks).toString() });
        callback();
      });
    }
  });
  const port = await listen(server);
  try {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port, requireTLS: true, tls: { rejectUnauthorized: false } });
    const info = await deadline(transport.sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'tls', text: 'over TLS' }), 10000, 'sendMail');
    assert.match(info.response, /^250 /);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].secure, true);
    assert.equal(seen[0].type, 'ESMTPS');
    assert.match(seen[0].version, /^TLSv1\.[23]$/);
    assert.match(seen[0].body, /over TLS/);
  } finally {
    await new Promise(resolve => server.close(resolve));
  }
});

test('plaintext pipelined after STARTTLS is never run inside the TLS session', async () => {
  const commands = [];
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    authOptional: true,
    onMailFrom(address, session, callback) {
      commands.push(address.address);
      callback();
    }
  });
  const port = await listen(server);
  try {
    const replies = await deadline(
      new Promise((resolve, reject) => {
        const plain = net.connect(port, '127.0.0.1');
        let buffer = '';
        let state = 0;
        plain.on('error', reject);
        plain.on('data', chunk => {
          buffer += chunk;
          if (state === 0 && /^220 [^\r\n]*\r\n/.test(buffer)) {
            state = 1;
            plain.write('EHLO client.test\r\n');
          } else if (state === 1 && /\r\n250 [^\r\n]*\r\n$/.test(buffer)) {
            state = 2;
            // the injection: a command pipelined in cleartext right behind STARTTLS
            plain.write('STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n');
          } else if (state === 2 && /220 Ready to start TLS\r\n/.test(buffer)) {
            state = 3;
            plain.removeAllListeners('data');
            const secure = tls.connect({ socket: plain, rejectUnauthorized: false }, () => {
              let inside = '';
              secure.on('data', d => {
                inside += d;
                if (/\r\n250 [^\r\n]*\r\n$/.test(inside) && !secure.sentMail) {
                  secure.sentMail = true;
                  secure.write('MAIL FROM:<real@example.com>\r\n');
                } else if (secure.sentMail && /250 Accepted\r\n$/.test(inside)) {
                  secure.end('QUIT\r\n');
                  resolve(inside);
                }
              });
              secure.write('EHLO client.test\r\n');
            });
            secure.on('error', reject);
          }
        });
      }),
      8000,
      'STARTTLS session'
    );
    assert.match(replies, /^250-/, 'the first reply inside TLS answers the new EHLO');
    assert.deepEqual(commands, ['real@example.com']);
  } finally {
    await new Promise(resolve => server.close(resolve));
  }
});
