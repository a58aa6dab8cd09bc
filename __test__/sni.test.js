'use strict';
// SNICallback: the certificate for a name comes from the application, asynchronously.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');
const { execFileSync } = require('node:child_process');
const { SMTPServer } = require('..');
const { deadline, listen } = require('./helpers/smtp-client.js');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtp-rs-sni-'));
function makeCert(cn) {
  const keyFile = path.join(dir, `${cn}.key`);
  const certFile = path.join(dir, `${cn}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${cn}`], { stdio: 'ignore' });
  return { key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile) };
}
const alpha = makeCert('alpha.test');

/** The CN of the certificate the server presents for `servername` (implicit TLS). */
function servedCN(port, servername) {
  return deadline(
    new Promise((resolve, reject) => {
      const socket = tls.connect({ port, host: '127.0.0.1', servername, rejectUnauthorized: false }, () => {
        const cn = socket.getPeerCertificate().subject.CN;
        socket.destroy();
        resolve(cn);
      });
      socket.on('error', reject);
    }),
    5000,
    `TLS to ${servername}`
  );
}

test('SNICallback chooses the certificate per name; errors and empty answers fall back', async () => {
  const asked = [];
  const server = new SMTPServer({
    secure: true,
    logger: false,
    disableReverseLookup: true,
    authOptional: true,
    SNICallback(name, cb) {
      asked.push(name);
      setTimeout(() => {
        if (name === 'alpha.test') {
          return cb(null, alpha);
        }
        if (name === 'broken.test') {
          return cb(new Error('no such name'));
        }
        cb(null, null);
      }, 5);
    }
  });
  const port = await listen(server);
  try {
    assert.equal(await servedCN(port, 'Alpha.TEST'), 'alpha.test');
    assert.equal(await servedCN(port, 'broken.test'), 'localhost');
    assert.equal(await servedCN(port, 'other.test'), 'localhost');
    assert.deepEqual(asked, ['alpha.test', 'broken.test', 'other.test']);
  } finally {
    await new Promise(resolve => server.close(resolve));
  }
});

test('SNICallback over STARTTLS', async () => {
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    authOptional: true,
    SNICallback(name, cb) {
      cb(null, name === 'alpha.test' ? alpha : null);
    }
  });
  const port = await listen(server);
  try {
    const cn = await deadline(
      new Promise((resolve, reject) => {
        const plain = net.connect(port, '127.0.0.1');
        let buffer = '';
        plain.on('error', reject);
        plain.on('data', chunk => {
          buffer += chunk;
          if (/^220 .*\r\n$/m.test(buffer) && !buffer.includes('250')) {
            if (!plain.ehloSent) {
              plain.ehloSent = true;
              plain.write('EHLO client.test\r\n');
            }
          }
          if (/\r\n250 [^\r\n]*\r\n$/.test(buffer) && !plain.starttlsSent) {
            plain.starttlsSent = true;
            plain.write('STARTTLS\r\n');
          }
          if (/220 Ready to start TLS\r\n$/.test(buffer) && !plain.upgraded) {
            plain.upgraded = true;
            plain.removeAllListeners('data');
            const secure = tls.connect({ socket: plain, servername: 'alpha.test', rejectUnauthorized: false }, () => {
              const name = secure.getPeerCertificate().subject.CN;
              secure.destroy();
              resolve(name);
            });
            secure.on('error', reject);
          }
        });
      }),
      5000,
      'STARTTLS with SNI'
    );
    assert.equal(cn, 'alpha.test');
  } finally {
    await new Promise(resolve => server.close(resolve));
  }
});
