'use strict';
// A message submission server (the port 587 service of RFC 6409): clients must upgrade
// the connection with STARTTLS, then log in with AUTH PLAIN or AUTH LOGIN, and may only
// send as their own address. Accepted messages are stored as .eml files under ./outbox/
// (a real server would queue them for relaying).
//
// Passwords are kept as scrypt hashes (node:crypto) and compared in constant time.
//
// Run (port 2587 here, so no root is needed; use PORT=587 in production):
//   node examples/submission.js                                   (built-in localhost certificate)
//   node examples/submission.js --key server.key --cert server.crt
//   PORT=587 TLS_KEY=/etc/ssl/private/mail.key TLS_CERT=/etc/ssl/mail.crt node examples/submission.js
// Try it (the demo users are alice / alice-password and bob / bob-password):
//   swaks --server 127.0.0.1:2587 --tls --auth PLAIN \
//         --auth-user alice --auth-password alice-password --from alice@example.com --to someone@example.org
//   node -e "require('nodemailer').createTransport({host:'127.0.0.1',port:2587,requireTLS:true,
//     tls:{rejectUnauthorized:false},auth:{user:'alice',pass:'alice-password'}})
//     .sendMail({from:'alice@example.com',to:'someone@example.org',text:'hi'}).then(console.log)"
// Environment: PORT (default 2587), HOST (default 0.0.0.0), OUTBOX_DIR (default ./outbox),
//   TLS_KEY / TLS_CERT (PEM files; also --key / --cert), MAX_SIZE (bytes, default 10 MiB).
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { promisify } = require('node:util');
const { SMTPServer } = require('..'); // in your project: require('smtp-server-rs')

const scrypt = promisify(crypto.scrypt);

function argument(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const port = process.env.PORT ? Number(process.env.PORT) : 2587;
const host = process.env.HOST || '0.0.0.0';
const outbox = path.resolve(process.env.OUTBOX_DIR || 'outbox');
const maxSize = Number(process.env.MAX_SIZE) || 10 * 1024 * 1024;
const keyFile = argument('--key') || process.env.TLS_KEY;
const certFile = argument('--cert') || process.env.TLS_CERT;
fs.mkdirSync(outbox, { recursive: true });

// ---------------------------------------------------------------------------
// Users: name -> { address, salt, hash }. In a real deployment these records come from
// a database; only the salt and the scrypt hash of a password are ever stored.

const users = new Map();

async function addUser(name, address, password) {
  const salt = crypto.randomBytes(16);
  const hash = await scrypt(password, salt, 32);
  users.set(name, { address, salt, hash });
}

// Used for unknown user names, so that a login for a name that does not exist takes as
// long as one with a wrong password.
const decoy = { salt: crypto.randomBytes(16), hash: crypto.randomBytes(32) };

async function checkPassword(name, password) {
  const user = users.get(name);
  const record = user || decoy;
  const hash = await scrypt(String(password), record.salt, 32);
  return crypto.timingSafeEqual(hash, record.hash) && user ? user : null;
}

// ---------------------------------------------------------------------------

const options = {
  name: process.env.SERVER_NAME || undefined, // the host name in the greeting (default: os.hostname())
  authMethods: ['PLAIN', 'LOGIN'],
  authOptional: false, // MAIL FROM before AUTH gets "530 Error: authentication Required"
  allowInsecureAuth: false, // AUTH before STARTTLS gets "538 Error: Must issue a STARTTLS command first"
  disabledCommands: [], // STARTTLS stays on
  size: maxSize,
  maxRecipients: 100,

  onAuth(auth, session, callback) {
    // auth.method is PLAIN or LOGIN here (authMethods above); both carry a password
    checkPassword(auth.username, auth.password).then(
      user => {
        if (!user) {
          const err = new Error('Authentication credentials invalid');
          err.responseCode = 535;
          return callback(err);
        }
        // `user` becomes session.user for the rest of the connection
        callback(null, { user: { name: auth.username, address: user.address } });
      },
      err => callback(err)
    );
  },

  onMailFrom(address, session, callback) {
    // session.user is set: without a login the server refuses MAIL FROM by itself
    if (address.address.toLowerCase() !== session.user.address) {
      const err = new Error(`<${address.address}>: sender address not owned by user ${session.user.name}`);
      err.responseCode = 553;
      return callback(err);
    }
    callback();
  },

  onData(stream, session, callback) {
    const id = `${session.id}-${session.transaction}`;
    const file = path.join(outbox, `${id}.eml`);
    const out = fs.createWriteStream(file);
    // record who submitted the message, then the message as received
    out.write(`X-Submitted-By: ${session.user.name} from [${session.remoteAddress}] with ${session.transmissionType}\r\n`);
    stream.pipe(out);
    stream.on('error', err => out.destroy(err));
    out.on('error', callback);
    out.on('finish', () => {
      if (stream.sizeExceeded) {
        fs.rm(file, { force: true }, () => {});
        const err = new Error(`Message exceeds the maximum size of ${maxSize} bytes`);
        err.responseCode = 552;
        return callback(err);
      }
      const to = session.envelope.rcptTo.map(r => r.address).join(', ');
      console.log(`${session.user.name}: <${session.envelope.mailFrom.address}> -> ${to}, ${stream.byteLength} bytes, ${path.basename(file)}`);
      callback(null, `Message queued as ${id}`);
    });
  }
};

if (keyFile || certFile) {
  // PEM files; an encrypted key also needs `passphrase`
  options.key = fs.readFileSync(keyFile);
  options.cert = fs.readFileSync(certFile);
} else {
  // without a certificate the built-in self-signed `localhost` one is used (and a
  // warning is printed): fine for a test, never for production
}

Promise.all([addUser('alice', 'alice@example.com', 'alice-password'), addUser('bob', 'bob@example.com', 'bob-password')]).then(() => {
  const server = new SMTPServer(options);
  server.on('error', err => console.error('server error:', err.message));
  server.listen(port, host, () => {
    console.log(`Submission server listening on ${host}:${server.server.address().port}, STARTTLS with ${keyFile ? certFile : 'the built-in localhost certificate'}`);
  });
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => server.close(() => process.exit(0)));
  }
});
