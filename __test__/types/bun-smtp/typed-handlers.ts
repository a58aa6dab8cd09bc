// Handlers written separately with bun-smtp's callback types, LMTP results, the web
// stream members and its other exported names.
import { SMTPServer } from 'bun-smtp';
import type {
  AuthObjectCramMd5,
  AuthObjectPlain,
  AuthObjectXclient,
  AuthObjectXoauth2,
  ConnectionInfo,
  OnAuthCallback,
  OnCloseCallback,
  OnConnectCallback,
  OnDataCallback,
  OnMailFromCallback,
  OnRcptToCallback,
  OnSecureCallback,
  SMTPAddressArgs,
  SMTPError,
  SMTPServerEventMap,
  TLSOptions
} from 'bun-smtp';

const onConnect: OnConnectCallback = (session, callback) => callback(session.secure ? null : undefined);
const onSecure: OnSecureCallback = (socket, session, callback) => {
  console.log(session.tlsOptions);
  callback();
};
const plain = (auth: AuthObjectPlain): string => auth.password;
const cram = (auth: AuthObjectCramMd5): boolean => auth.validatePassword('secret') && auth.challenge.length > 0;
const xoauth = (auth: AuthObjectXoauth2): string => auth.accessToken;
const xclient = (auth: AuthObjectXclient): null => auth.password;
const onAuth: OnAuthCallback = (auth, session, callback) => {
  switch (auth.method) {
    case 'PLAIN':
    case 'LOGIN':
      return callback(null, { user: plain(auth) === 'secret' ? auth.username : undefined });
    case 'CRAM-MD5':
      return callback(null, { user: cram(auth) ? auth.username : undefined });
    case 'XOAUTH2':
      return callback(null, { user: xoauth(auth) ? auth.username : undefined });
    default:
      return callback(null, { user: xclient(auth) === null ? auth.username : undefined });
  }
};
const size = (args: SMTPAddressArgs | false): number => (args && typeof args.SIZE === 'string' ? Number(args.SIZE) : 0);
const onMailFrom: OnMailFromCallback = (address, session, callback) => callback(size(address.args) > 1000 ? new Error('too big') : null);
const onRcptTo: OnRcptToCallback = (address, session, callback) => callback();
const onData: OnDataCallback = (stream, session, callback) => {
  const reader = stream.getReader();
  let total = 0;
  const pump = (): Promise<void> =>
    reader.read().then(({ done, value }) => {
      if (done) {
        return;
      }
      total += value.byteLength;
      return pump();
    });
  pump().then(
    () => {
      const results: Array<string | SMTPError> = session.envelope.rcptTo.map(rcpt => {
        if (rcpt.address === 'full@example.com') {
          const err: SMTPError = new Error('Mailbox full');
          err.responseCode = 452;
          return err;
        }
        return `accepted ${total} bytes`;
      });
      callback(null, results);
    },
    err => callback(err)
  );
};
const onClose: OnCloseCallback = session => console.log(session.id);

const tlsOptions: TLSOptions = { minVersion: 'TLSv1.2' };
const server = new SMTPServer({ lmtp: true, ...tlsOptions, onConnect, onSecure, onAuth, onMailFrom, onRcptTo, onData, onClose });

const events: Array<keyof SMTPServerEventMap> = ['listening', 'close', 'error', 'connect'];
server.on('connect', (info: ConnectionInfo) => console.log(info.remoteAddress, events.length));
server.listen(2424);
