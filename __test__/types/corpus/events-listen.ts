// Listening in the ways net.Server allows, events, closing, TLS options.
import { SMTPServer } from 'smtp-server';
import * as tls from 'node:tls';
import { AddressInfo } from 'node:net';

const key = '-----BEGIN PRIVATE KEY-----\n...';
const cert = Buffer.from('-----BEGIN CERTIFICATE-----\n...');

const server = new SMTPServer({
  secure: true,
  key,
  cert,
  minVersion: 'TLSv1.2',
  requestCert: false,
  rejectUnauthorized: false,
  sniOptions: {
    'mail.example.com': { key, cert }
  },
  onSecure(socket, session, callback) {
    const tlsSocket = socket as tls.TLSSocket;
    const peer = tlsSocket.getPeerCertificate();
    console.log('TLS with', peer && peer.subject, 'for', session.id);
    callback();
  }
});

server.on('error', (err: Error) => {
  console.error(err);
});
server.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EADDRINUSE') {
    process.exitCode = 1;
  }
});
server.once('close', () => {
  console.log('server closed');
});

const listener = server.listen(2465, () => {
  const info = listener.address() as AddressInfo;
  console.log('on', info.address, info.port, info.family);
});

const port = process.env.SMTP_PORT || 2587;
const second = new SMTPServer({ secured: true, logger: true });
second.listen(port);
second.listen({ port: 0, host: '::1' }, () => console.log('second listening'));
second.server.on('listening', () => console.log(second.server.address()));

const local = new SMTPServer({});
local.listen('/tmp/smtp.sock');

console.log(server.connections.size);
server.updateSecureContext({ key, cert });

setTimeout(() => {
  server.close(() => console.log('done'));
  second.close();
  local.close();
}, 10);
