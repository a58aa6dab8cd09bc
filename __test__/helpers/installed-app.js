'use strict';
// What the packaging tests share: running a command, an environment without npm's own
// settings, and the scripts that use the installed package in a test project (a message
// over loopback through SMTPServer with require and with import, the deep imports).
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

/** Runs a command to its end; resolves with { code, stdout, stderr } (never rejects). */
function run(cmd, args, options = {}) {
  return new Promise(resolve => {
    execFile(cmd, args, { timeout: 60000, maxBuffer: 64 * 1024 * 1024, ...options }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, err, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

// npm started from `npm test` hands its own settings down in npm_* variables; the nested
// npm runs must not see them (npm_config_global and the like would change what they do)
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) || /^npm_config_(cache|userconfig|registry)$/i.test(k)) {
      env[k] = v;
    }
  }
  return { ...env, ...extra };
}

/** A line for the test report: t.diagnostic where the runner has it, stdout otherwise. */
function note(t, text) {
  if (t && typeof t.diagnostic === 'function') t.diagnostic(text);
  else console.log(`# ${text}`);
}

/** `fn` run at most once: every call gets the first call's promise. */
function once(fn) {
  let promise = null;
  return () => {
    promise = promise || fn();
    return promise;
  };
}

/** The last line of `text` that is a JSON object, parsed; null when there is none. */
function lastJson(text) {
  const line = text.trim().split('\n').filter(l => l.startsWith('{')).pop();
  return line ? JSON.parse(line) : null;
}

// One message through the server with a raw socket; prints what the client and onData saw
const ROUNDTRIP = `'use strict';
const net = require('node:net');
module.exports = async function roundtrip(SMTPServer) {
  const received = [];
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', c => chunks.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map(r => r.address),
          body: Buffer.concat(chunks).toString()
        });
        callback(null, 'Queued');
      });
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = server.server.address().port;
  const codes = [];
  const timer = setTimeout(() => { console.error('timed out'); process.exit(2); }, 15000);
  await new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const steps = ['EHLO client.example', 'MAIL FROM:<sender@example.com>', 'RCPT TO:<rcpt@example.com>', 'DATA',
      'Subject: pack test\\r\\n\\r\\nhello from the packed tarball\\r\\n.', 'QUIT'];
    let buf = '';
    socket.setEncoding('utf8');
    socket.on('error', reject);
    socket.on('close', resolve);
    socket.on('data', d => {
      buf += d;
      const m = /(?:^|\\r\\n)(\\d{3}) [^\\r\\n]*\\r\\n$/.exec(buf);
      if (!m) return;
      codes.push(Number(m[1]));
      buf = '';
      const next = steps.shift();
      if (next !== undefined) socket.write(next + '\\r\\n');
    });
  });
  clearTimeout(timer);
  await new Promise(resolve => server.close(resolve));
  return { codes, received };
};
`;

const USE_CJS = `'use strict';
const path = require('node:path');
const roundtrip = require('./roundtrip.cjs');
const main = require('smtp-server-rs');
const deep = require('smtp-server-rs/lib/smtp-server');
const deepJs = require('smtp-server-rs/lib/smtp-server.js');
const tlsOptions = require('smtp-server-rs/lib/tls-options');
const out = {
  sameDeep: deep.SMTPServer === main.SMTPServer && deepJs.SMTPServer === main.SMTPServer,
  defaultExport: main.default.SMTPServer === main.SMTPServer,
  tlsOptions: typeof tlsOptions === 'function' && /BEGIN CERTIFICATE/.test(tlsOptions().cert) && tlsOptions({ minVersion: 'TLSv1.2' }).minVersion === 'TLSv1.2'
};
try { require('smtp-server-rs/lib/net-facade'); out.internalHidden = false; } catch { out.internalHidden = true; }
out.natives = Object.keys(require.cache).filter(k => k.endsWith('.node')).map(k => path.relative(__dirname, k).split(path.sep).join('/'));
roundtrip(main.SMTPServer).then(r => console.log(JSON.stringify({ ...out, ...r })), err => { console.error(err); process.exit(1); });
`;

const USE_ESM = `import { createRequire } from 'node:module';
import { SMTPServer } from 'smtp-server-rs';
import smtpServer from 'smtp-server-rs';
import { SMTPServer as DeepServer } from 'smtp-server-rs/lib/smtp-server';
import deepDefault from 'smtp-server-rs/lib/smtp-server.js';
import tlsOptions from 'smtp-server-rs/lib/tls-options';
const require = createRequire(import.meta.url);
const roundtrip = require('./roundtrip.cjs');
const out = {
  sameDeep: DeepServer === SMTPServer && deepDefault.SMTPServer === SMTPServer,
  defaultExport: smtpServer.SMTPServer === SMTPServer,
  sameAsRequire: require('smtp-server-rs').SMTPServer === SMTPServer,
  tlsOptions: typeof tlsOptions === 'function' && /BEGIN CERTIFICATE/.test(tlsOptions().cert)
};
try { await import('smtp-server-rs/lib/net-facade'); out.internalHidden = false; } catch { out.internalHidden = true; }
console.log(JSON.stringify({ ...out, ...(await roundtrip(SMTPServer)) }));
`;

function checkRoundtrip(out) {
  assert.deepEqual(out.codes, [220, 250, 250, 250, 354, 250, 221]);
  assert.equal(out.received.length, 1);
  assert.equal(out.received[0].from, 'sender@example.com');
  assert.deepEqual(out.received[0].to, ['rcpt@example.com']);
  assert.match(out.received[0].body, /^Subject: pack test\r\n\r\nhello from the packed tarball\r\n$/);
  assert.equal(out.sameDeep, true, 'the deep imports give the same SMTPServer');
  assert.equal(out.defaultExport, true, 'the default export is { SMTPServer }');
  assert.equal(out.tlsOptions, true, 'lib/tls-options works');
  assert.equal(out.internalHidden, true, 'internal modules are not importable');
}

/** Writes roundtrip.cjs, use-cjs.cjs and use-esm.mjs into the project `dir`. */
function writeUseScripts(dir) {
  fs.writeFileSync(path.join(dir, 'roundtrip.cjs'), ROUNDTRIP);
  fs.writeFileSync(path.join(dir, 'use-cjs.cjs'), USE_CJS);
  fs.writeFileSync(path.join(dir, 'use-esm.mjs'), USE_ESM);
}

module.exports = { run, cleanEnv, note, once, lastJson, writeUseScripts, checkRoundtrip };
