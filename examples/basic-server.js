'use strict';
// A working SMTP server on port 2525 that accepts every message and stores it as an
// .eml file under ./mail/, printing one line per message.
//   node examples/basic-server.js            (or: npm start)
//   PORT=2526 MAIL_DIR=/tmp/mail node examples/basic-server.js
const fs = require('node:fs');
const path = require('node:path');
const { SMTPServer } = require('..');

const port = Number(process.env.PORT) || 2525;
const host = process.env.HOST || '0.0.0.0';
const mailDir = path.resolve(process.env.MAIL_DIR || 'mail');
fs.mkdirSync(mailDir, { recursive: true });

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  size: 25 * 1024 * 1024,
  onData(stream, session, callback) {
    const file = path.join(mailDir, `${session.id}-${session.transaction}.eml`);
    const out = fs.createWriteStream(file);
    stream.pipe(out);
    out.on('error', callback);
    out.on('finish', () => {
      const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
      const to = session.envelope.rcptTo.map(r => r.address).join(', ');
      console.log(`${new Date().toISOString()} ${session.remoteAddress} <${from}> -> ${to} ${stream.byteLength} bytes ${path.relative(process.cwd(), file)}`);
      callback(null, `OK: saved as ${path.basename(file)}`);
    });
  }
});

server.on('error', err => console.error('server error:', err.message));
server.listen(port, host, () => {
  console.log(`SMTP server listening on ${host}:${port}, saving messages to ${mailDir}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
