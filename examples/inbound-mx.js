'use strict';
// An inbound MX (the port 25 service other mail servers deliver to): no AUTH, mail only
// for the domains this server is responsible for, a message size limit, and a blocklist
// of client addresses. Accepted messages get a Received: header and are stored as .eml
// files under ./inbound/ (a real MX would queue them for filtering and delivery).
//
// Behind a load balancer that sends the PROXY protocol (HAProxy `send-proxy` or
// `send-proxy-v2`, AWS NLB), start it with --proxy (or PROXY=1, or PROXY=<addresses of
// the balancers>): the blocklist and the Received: header then use the client's address
// from the PROXY header.
//
// Run (port 2526 here, so no root is needed; use PORT=25 in production):
//   node examples/inbound-mx.js
//   DOMAINS=example.com,example.net BLOCKLIST=192.0.2.7,198.51.100.23 MAX_SIZE=10485760 node examples/inbound-mx.js
//   node examples/inbound-mx.js --proxy
// Try it:
//   swaks --server 127.0.0.1:2526 --from someone@example.org --to postmaster@example.com   (accepted)
//   swaks --server 127.0.0.1:2526 --from someone@example.org --to user@elsewhere.test      (550, no relaying)
//   swaks --server 127.0.0.1:2526 --to postmaster@example.com --attach-body @big.file      (552 when over MAX_SIZE)
// Environment:
//   PORT (default 2526), HOST (default 0.0.0.0), INBOUND_DIR (default ./inbound)
//   DOMAINS    domains to accept mail for, comma separated (default example.com)
//   BLOCKLIST  client IP addresses refused at connection time with 554, comma separated
//   MAX_SIZE   message size limit in bytes (default 25 MiB)
//   PROXY      1 to read a PROXY header from every client, or the balancers' addresses
//   TLS_KEY / TLS_CERT  PEM files: offer STARTTLS with them (without them STARTTLS is off)
//   SERVER_NAME  the host name in the greeting (default: the machine's host name)
//   REVERSE_LOOKUP=0    skip the reverse DNS lookup of clients
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { SMTPServer } = require('..'); // in your project: require('smtp-server-rs')

function list(text) {
  return String(text || '')
    .split(',')
    .map(entry => entry.trim().toLowerCase())
    .filter(Boolean);
}

const serverName = process.env.SERVER_NAME || os.hostname();
const port = process.env.PORT ? Number(process.env.PORT) : 2526;
const host = process.env.HOST || '0.0.0.0';
const inbound = path.resolve(process.env.INBOUND_DIR || 'inbound');
const domains = new Set(list(process.env.DOMAINS || 'example.com'));
const blocklist = new Set(list(process.env.BLOCKLIST));
const maxSize = Number(process.env.MAX_SIZE) || 25 * 1024 * 1024;
const proxyEnv = process.argv.includes('--proxy') ? '1' : process.env.PROXY;
const useProxy = !proxyEnv || proxyEnv === '0' ? false : proxyEnv === '1' ? true : list(proxyEnv);
const tls = process.env.TLS_KEY && process.env.TLS_CERT ? { key: fs.readFileSync(process.env.TLS_KEY), cert: fs.readFileSync(process.env.TLS_CERT) } : null;
fs.mkdirSync(inbound, { recursive: true });

const server = new SMTPServer({
  name: serverName, // the host name in the greeting and in Received:
  banner: 'no relaying', // the greeting: "220 <name> ESMTP no relaying"
  disabledCommands: tls ? ['AUTH'] : ['AUTH', 'STARTTLS'], // nobody logs in to an MX
  ...(tls || {}),
  size: maxSize, // advertised as SIZE; MAIL FROM with a bigger SIZE= is refused at once
  maxRecipients: 100, // more RCPTs in one transaction get 452
  maxClients: 500, // more connections at once get 421
  socketTimeout: 5 * 60 * 1000, // RFC 5321 minimum for the DATA phase
  useProxy, // PROXY protocol v1 and v2 (v2 is specific to smtp-server-rs)
  disableReverseLookup: process.env.REVERSE_LOOKUP === '0',

  onConnect(session, callback) {
    // session.remoteAddress is the client's address (from the PROXY header when used)
    if (blocklist.has(session.remoteAddress)) {
      const err = new Error(`${session.remoteAddress} is blocked`);
      err.responseCode = 554;
      return callback(err); // the client gets 554 instead of the greeting
    }
    callback();
  },

  onRcptTo(address, session, callback) {
    const domain = address.address.slice(address.address.lastIndexOf('@') + 1).toLowerCase();
    if (!domains.has(domain)) {
      const err = new Error(`<${address.address}>: relay access denied`);
      err.responseCode = 550;
      return callback(err);
    }
    callback();
  },

  onData(stream, session, callback) {
    const id = `${session.id}-${session.transaction}`;
    const file = path.join(inbound, `${id}.eml`);
    const out = fs.createWriteStream(file);
    const rcpt = session.envelope.rcptTo.length === 1 ? `\r\n\tfor <${session.envelope.rcptTo[0].address}>` : '';
    const helo = session.hostNameAppearsAs || 'unknown';
    const client = session.clientHostname && session.clientHostname !== `[${session.remoteAddress}]` ? `${session.clientHostname} ` : '';
    out.write(`Received: from ${helo} (${client}[${session.remoteAddress}])\r\n\tby ${serverName} with ${session.transmissionType} id ${id}${rcpt};\r\n\t${new Date().toUTCString().replace('GMT', '+0000')}\r\n`);
    stream.pipe(out);
    stream.on('error', err => out.destroy(err));
    out.on('error', callback);
    out.on('finish', () => {
      if (stream.sizeExceeded) {
        // the whole message was read (the client cannot be stopped mid-DATA) but is not kept
        fs.rm(file, { force: true }, () => {});
        const err = new Error(`Message exceeds the maximum size of ${maxSize} bytes`);
        err.responseCode = 552;
        return callback(err);
      }
      const from = session.envelope.mailFrom.address || '<>';
      console.log(`[${session.remoteAddress}] ${from} -> ${session.envelope.rcptTo.map(r => r.address).join(', ')}: ${stream.byteLength} bytes, ${path.basename(file)}`);
      callback(null, `Queued as ${id}`);
    });
  }
});

server.on('error', err => console.error('server error:', err.message));
server.listen(port, host, () => {
  console.log(`Inbound MX listening on ${host}:${server.server.address().port} for ${[...domains].join(', ')}${useProxy ? ', expecting PROXY headers' : ''}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
