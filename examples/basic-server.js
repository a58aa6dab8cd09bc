'use strict';
// A working SMTP server that accepts every message and stores it as an .eml file under
// ./mail/, printing one line per message. No authentication, no TLS: a development
// sink for the mail an application sends.
//
// Run:
//   npm start                                  (= node examples/basic-server.js, port 2525)
//   PORT=2526 MAIL_DIR=/tmp/mail node examples/basic-server.js
//   PORT=0 node examples/basic-server.js       (any free port; the port is printed)
// Try it:
//   swaks --server 127.0.0.1:2525 --from me@example.com --to you@example.com
//   node -e "require('nodemailer').createTransport({host:'127.0.0.1',port:2525,ignoreTLS:true})
//     .sendMail({from:'me@example.com',to:'you@example.com',text:'hello'}).then(console.log)"
// Environment: PORT (default 2525), HOST (default 0.0.0.0), MAIL_DIR (default ./mail).
const fs = require('node:fs');
const path = require('node:path');
const { SMTPServer } = require('..'); // in your project: require('smtp-server-rs')

const port = process.env.PORT ? Number(process.env.PORT) : 2525;
const host = process.env.HOST || '0.0.0.0';
const mailDir = path.resolve(process.env.MAIL_DIR || 'mail');
fs.mkdirSync(mailDir, { recursive: true });

const server = new SMTPServer({
  authOptional: true, // accept mail without AUTH
  disabledCommands: ['STARTTLS'], // plain text only (no certificate needed)
  size: 25 * 1024 * 1024, // advertised in EHLO; a bigger MAIL FROM SIZE= is refused
  onData(stream, session, callback) {
    const file = path.join(mailDir, `${session.id}-${session.transaction}.eml`);
    const out = fs.createWriteStream(file);
    stream.pipe(out);
    out.on('error', callback);
    out.on('finish', () => {
      if (stream.sizeExceeded) {
        fs.unlink(file, () => {});
        const err = new Error('Error: message exceeds fixed maximum message size');
        err.responseCode = 552;
        return callback(err);
      }
      const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
      const to = session.envelope.rcptTo.map(r => r.address).join(', ');
      console.log(`${new Date().toISOString()} ${session.remoteAddress} <${from}> -> ${to} ${stream.byteLength} bytes ${path.relative(process.cwd(), file)}`);
      callback(null, `OK: saved as ${path.basename(file)}`);
    });
  }
});

server.on('error', err => console.error('server error:', err.message));
server.listen(port, host, () => {
  const address = server.server.address();
  console.log(`SMTP server listening on ${host}:${address.port}, saving messages to ${mailDir}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
