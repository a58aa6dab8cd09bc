'use strict';
// An LMTP server on a Unix socket that delivers each message into one Maildir per
// recipient, the way an MTA (Postfix `mailbox_transport = lmtp:unix:...`) hands local
// mail to a mailbox store.
//
// Delivery follows the Maildir rules: the message is written to tmp/<unique name>,
// flushed to disk, then renamed into new/ (a rename is atomic, so a mail reader never
// sees half a message). LMTP answers DATA once per recipient, so one recipient can fail
// (here: over its quota) while the others get their copy.
//
// Run:
//   node examples/lmtp-maildir.js
//   LMTP_SOCKET=/tmp/lmtp.sock MAILDIR_ROOT=/tmp/maildirs QUOTA_BYTES=1000000 node examples/lmtp-maildir.js
// Try it:
//   swaks --socket ./lmtp.sock --protocol LMTP --from me@example.com --to alice@example.com,bob@example.com
//   find ./maildirs -type f
// Postfix:  mailbox_transport = lmtp:unix:/path/to/lmtp.sock
// Environment:
//   LMTP_SOCKET   the socket path (default ./lmtp.sock); a stale socket file is replaced
//   MAILDIR_ROOT  where mailboxes live: <root>/<domain>/<local part>/{tmp,new,cur} (default ./maildirs)
//   QUOTA_BYTES   per-mailbox limit on the bytes in new/ and cur/ (default: none)
//   MAX_SIZE      largest message accepted, in bytes (default 50 MiB)
const fs = require('node:fs');
const fsp = require('node:fs/promises');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { SMTPServer } = require('..'); // in your project: require('smtp-server-rs')

const socketPath = path.resolve(process.env.LMTP_SOCKET || 'lmtp.sock');
const root = path.resolve(process.env.MAILDIR_ROOT || 'maildirs');
const quota = Number(process.env.QUOTA_BYTES) || 0;
const maxSize = Number(process.env.MAX_SIZE) || 50 * 1024 * 1024;

// A local part and a domain become directory names: allow a conservative set only.
const LOCAL_PART = /^[a-z0-9][a-z0-9._+-]{0,63}$/i;
const DOMAIN = /^[a-z0-9]([a-z0-9-]{0,62}\.)*[a-z0-9-]{1,63}$/i;

/** The Maildir of a recipient address, or null when the address cannot name one. */
function mailboxOf(address) {
  const at = address.lastIndexOf('@');
  const local = at > 0 ? address.slice(0, at) : '';
  const domain = at > 0 ? address.slice(at + 1) : '';
  if (!LOCAL_PART.test(local) || local.includes('..') || !DOMAIN.test(domain)) {
    return null;
  }
  return path.join(root, domain.toLowerCase(), local.toLowerCase());
}

// Maildir unique names: <seconds>.M<microseconds>P<pid>Q<counter>.<host>
let deliveries = 0;
const host = os.hostname().replace(/\//g, '\\057').replace(/:/g, '\\072');
function uniqueName(size) {
  const now = Date.now();
  const seconds = Math.floor(now / 1000);
  const micros = (now % 1000) * 1000 + Math.floor(Math.random() * 1000);
  return `${seconds}.M${micros}P${process.pid}Q${++deliveries}.${host},S=${size}`;
}

/** Bytes stored in new/ and cur/ of a mailbox. */
async function mailboxUsage(dir) {
  let total = 0;
  for (const sub of ['new', 'cur']) {
    const names = await fsp.readdir(path.join(dir, sub)).catch(() => []);
    for (const name of names) {
      const stat = await fsp.stat(path.join(dir, sub, name)).catch(() => null);
      total += stat ? stat.size : 0;
    }
  }
  return total;
}

/** Writes one copy into tmp/, flushes it, and moves it into new/. Resolves with its name. */
async function deliver(dir, message) {
  for (const sub of ['tmp', 'new', 'cur']) {
    await fsp.mkdir(path.join(dir, sub), { recursive: true });
  }
  if (quota && (await mailboxUsage(dir)) + message.length > quota) {
    const err = new Error('Mailbox is over its quota');
    err.responseCode = 552;
    throw err;
  }
  const name = uniqueName(message.length);
  const tmpFile = path.join(dir, 'tmp', name);
  const handle = await fsp.open(tmpFile, 'wx', 0o600);
  try {
    await handle.writeFile(message);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fsp.rename(tmpFile, path.join(dir, 'new', name));
  return name;
}

const server = new SMTPServer({
  lmtp: true, // LHLO instead of EHLO, one DATA reply per recipient
  authOptional: true, // the MTA in front has done the checking
  disabledCommands: ['AUTH', 'STARTTLS'], // a local socket needs neither
  disableReverseLookup: true, // peers on a Unix socket have no IP address
  size: maxSize,
  onRcptTo(address, session, callback) {
    if (!mailboxOf(address.address)) {
      const err = new Error(`<${address.address}>: no such mailbox here`);
      err.responseCode = 550;
      return callback(err);
    }
    callback();
  },
  onData(stream, session, callback) {
    const chunks = [];
    stream.on('data', chunk => chunks.push(chunk));
    stream.on('error', callback);
    stream.on('end', async () => {
      if (stream.sizeExceeded) {
        const err = new Error(`Message exceeds the maximum size of ${maxSize} bytes`);
        err.responseCode = 552;
        return callback(err); // the same reply for every recipient
      }
      const body = Buffer.concat(chunks);
      const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
      // One result per recipient, in RCPT order: a string is a 250 reply, an Error with
      // a responseCode is that reply.
      const results = await Promise.all(
        session.envelope.rcptTo.map(async rcpt => {
          const headers = `Return-Path: <${sender}>\r\nDelivered-To: ${rcpt.address}\r\n`;
          const message = Buffer.concat([Buffer.from(headers), body]);
          try {
            const name = await deliver(mailboxOf(rcpt.address), message);
            console.log(`delivered ${body.length} bytes from <${sender}> to ${rcpt.address}: new/${name}`);
            return `<${rcpt.address}> delivered`;
          } catch (err) {
            console.error(`delivery to ${rcpt.address} failed: ${err.message}`);
            if (!err.responseCode) {
              err.responseCode = 451; // a write error: let the MTA try again later
              err.message = 'Temporary local problem, try again later';
            }
            err.message = `<${rcpt.address}>: ${err.message}`;
            return err;
          }
        })
      );
      callback(null, results);
    });
  }
});

server.on('error', err => console.error('server error:', err.message));

// A socket file left behind by a process that did not shut down cleanly blocks
// listen(): remove it, but only when nothing answers on it.
function removeStaleSocket(file, done) {
  let stat = null;
  try {
    stat = fs.statSync(file);
  } catch {
    return done(); // nothing there
  }
  if (!stat.isSocket()) {
    console.error(`${file} exists and is not a socket`);
    process.exit(1);
  }
  const probe = net.connect({ path: file });
  probe.once('connect', () => {
    probe.destroy();
    console.error(`${file} is in use by a running server`);
    process.exit(1);
  });
  probe.once('error', () => {
    fs.rmSync(file, { force: true });
    done();
  });
}

removeStaleSocket(socketPath, () => {
  server.listen(socketPath, () => {
    console.log(`LMTP server listening on ${socketPath}, delivering into ${root}`);
  });
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
