// TLS details: SNI callback, onSecure with the socket narrowed, CRAM-MD5.
import { SMTPServer } from 'smtp-server';
import * as tls from 'node:tls';

const certs: Record<string, { key: string; cert: string }> = {
  'a.example.com': { key: 'KEY A', cert: 'CERT A' }
};

const server = new SMTPServer({
  secure: true,
  key: 'KEY',
  cert: 'CERT',
  authMethods: ['CRAM-MD5'],
  SNICallback(servername, callback) {
    const entry = certs[servername];
    if (!entry) {
      return callback(new Error('unknown name ' + servername));
    }
    callback(null, tls.createSecureContext(entry));
  },
  onSecure(socket, session, callback) {
    if ('getCipher' in socket) {
      const cipher = socket.getCipher();
      console.log(cipher.name, cipher.version, socket.getProtocol());
    }
    if (session.tlsOptions) {
      console.log(session.tlsOptions.name, session.tlsOptions.standardName, session.tlsOptions.version);
    }
    callback();
  },
  onAuth(auth, session, callback) {
    if (auth.method === 'CRAM-MD5' && auth.validatePassword('secret')) {
      return callback(null, { user: { name: auth.username, challenge: auth.challenge } });
    }
    if (auth.method === 'XCLIENT') {
      return callback(null);
    }
    callback(null, { message: 'Nope', responseCode: 535 });
  }
});

server.updateSecureContext({ key: 'NEW KEY', cert: 'NEW CERT' });
server.listen(0);
