// A relay-style server configured with an options object: named imports, every
// handler given inline with contextually typed parameters.
import { SMTPServer, SMTPServerOptions, SMTPServerSession, SMTPServerAddress } from 'smtp-server';
import { AddressInfo } from 'node:net';

const allowedDomains = new Set(['example.com', 'example.org']);

function describe(session: SMTPServerSession): string {
  const parts = [
    session.id,
    session.remoteAddress + ':' + session.remotePort,
    session.localAddress + ':' + session.localPort,
    session.clientHostname,
    session.openingCommand.toUpperCase(),
    session.hostNameAppearsAs,
    session.transmissionType,
    session.secure ? 'tls' : 'plain'
  ];
  if (session.tlsOptions) {
    parts.push('encrypted');
  }
  if (session.user) {
    parts.push('user=' + String(session.user));
  }
  return parts.join(' ');
}

function domainOf(address: SMTPServerAddress): string {
  return address.address.split('@').pop()!.toLowerCase();
}

const options: SMTPServerOptions = {
  name: 'mx.example.com',
  banner: 'Welcome',
  size: 10 * 1024 * 1024,
  hideSize: false,
  authMethods: ['PLAIN', 'LOGIN'],
  authOptional: true,
  allowInsecureAuth: false,
  disabledCommands: ['STARTTLS'],
  hideSTARTTLS: true,
  hidePIPELINING: false,
  hide8BITMIME: false,
  hideSMTPUTF8: false,
  hideENHANCEDSTATUSCODES: false,
  hideDSN: true,
  disableReverseLookup: true,
  maxClients: 100,
  useProxy: false,
  useXClient: false,
  useXForward: false,
  lmtp: false,
  socketTimeout: 60 * 1000,
  closeTimeout: 5 * 1000,
  logger: false,

  onConnect(session, callback) {
    if (session.remoteAddress === '127.0.0.2') {
      return callback(new Error('No connections from localhost allowed'));
    }
    return callback();
  },

  onMailFrom(address, session, callback) {
    if (address.address === '') {
      return callback(); // bounces are fine
    }
    if (!allowedDomains.has(domainOf(address))) {
      const err = Object.assign(new Error('Sender domain not allowed'), { responseCode: 553 });
      return callback(err);
    }
    callback(null);
  },

  onRcptTo(address, session, callback) {
    const from = session.envelope.mailFrom;
    if (from && from.address === address.address) {
      return callback(new Error('Talking to yourself?'));
    }
    if (session.envelope.rcptTo.length >= 10) {
      return callback(Object.assign(new Error('Too many recipients'), { responseCode: 452 }));
    }
    callback();
  },

  onData(stream, session, callback) {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      const message = Buffer.concat(chunks);
      const recipients = session.envelope.rcptTo.map(rcpt => rcpt.address);
      console.log('%s: %d bytes for %s', describe(session), message.length, recipients.join(', '));
      if (stream.sizeExceeded) {
        const err = new Error('Error: message exceeds fixed maximum message size') as Error & { responseCode: number };
        err.responseCode = 552;
        return callback(err);
      }
      callback(null, 'Message queued as ' + session.id);
    });
  },

  onClose(session) {
    console.log('closed', session.id);
  }
};

const server = new SMTPServer(options);

server.on('error', err => {
  console.error('SMTP error: %s', err.message);
});

server.listen(0, '127.0.0.1', () => {
  const address = server.server.address() as AddressInfo;
  console.log('listening on port %d', address.port);
  server.close(() => console.log('closed'));
});
