// A typed SMTP server: accepts mail for one domain, stores each message as an .eml file
// and answers with the file name. Every handler argument is typed by smtp-server-rs's
// declarations (the same shapes as @types/smtp-server).
//
// Run:
//   cd examples/typescript && npm install && npm run build && npm start
//   PORT=2527 DOMAIN=example.com MAIL_DIR=/tmp/mail npm start
// Try it:
//   swaks --server 127.0.0.1:2527 --to postmaster@example.com
// Environment: PORT (default 2527), HOST (default 0.0.0.0), DOMAIN (default example.com),
//   MAIL_DIR (default ./mail).
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import { SMTPServer } from 'smtp-server-rs';
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerError, SMTPServerOptions, SMTPServerSession } from 'smtp-server-rs';

const port: number = process.env.PORT ? Number(process.env.PORT) : 2527;
const host: string = process.env.HOST ?? '0.0.0.0';
const domain: string = (process.env.DOMAIN ?? 'example.com').toLowerCase();
const mailDir: string = path.resolve(process.env.MAIL_DIR ?? 'mail');
mkdirSync(mailDir, { recursive: true });

/** An Error carrying the SMTP reply code the client gets. */
function smtpError(responseCode: number, message: string): SMTPServerError {
  const err: SMTPServerError = new Error(message);
  err.responseCode = responseCode;
  return err;
}

/** What this server keeps per connection. */
interface Counters {
  accepted: number;
}

// Per-connection state keyed by the session object (the same object for the whole
// connection); it goes away with the session.
const perConnection = new WeakMap<SMTPServerSession, Counters>();

function counters(session: SMTPServerSession): Counters {
  let entry = perConnection.get(session);
  if (!entry) {
    entry = { accepted: 0 };
    perConnection.set(session, entry);
  }
  return entry;
}

const options: SMTPServerOptions = {
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  size: 10 * 1024 * 1024,

  onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: SMTPServerError | null) => void): void {
    const at = address.address.lastIndexOf('@');
    if (address.address.slice(at + 1).toLowerCase() !== domain) {
      return callback(smtpError(550, `<${address.address}>: this server only accepts mail for ${domain}`));
    }
    callback();
  },

  onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: SMTPServerError | null, message?: string) => void): void {
    const name = `${session.id}-${session.transaction}.eml`;
    const out = createWriteStream(path.join(mailDir, name));
    stream.pipe(out);
    out.on('error', (err: Error) => callback(smtpError(451, `Cannot store the message: ${err.message}`)));
    out.on('finish', () => {
      if (stream.sizeExceeded) {
        return callback(smtpError(552, 'Message too big'));
      }
      const count = ++counters(session).accepted;
      const sender: string = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
      const recipients: string[] = session.envelope.rcptTo.map((rcpt: SMTPServerAddress) => rcpt.address);
      console.log(`#${count} on ${session.id}: <${sender}> -> ${recipients.join(', ')}, ${stream.byteLength} bytes, ${name}`);
      callback(null, `Stored as ${name}`);
    });
  }
};

const server = new SMTPServer(options);
server.on('error', (err: SMTPServerError) => console.error('server error:', err.message));
server.listen(port, host, () => {
  const address = server.server.address();
  const bound = address && typeof address === 'object' ? address.port : port;
  console.log(`TypeScript example listening on ${host}:${bound}, accepting mail for ${domain}`);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
