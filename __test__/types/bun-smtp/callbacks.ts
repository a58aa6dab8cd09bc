// bun-smtp's documented callback examples, with its exported type names.
import { SMTPServer } from 'bun-smtp';
import type { AuthObject, AuthResponse, DataStream, SMTPAddress, SMTPError, SMTPSession, SMTPServerOptions } from 'bun-smtp';

const users = new Map<string, string>([['alice', 'secret']]);

function checkAuth(auth: AuthObject): AuthResponse | null {
  if (auth.method === 'CRAM-MD5') {
    return auth.validatePassword(users.get(auth.username) ?? '') ? { user: auth.username } : null;
  }
  if (auth.method === 'PLAIN' || auth.method === 'LOGIN') {
    const password: string = auth.password;
    return users.get(auth.username) === password ? { user: auth.username } : null;
  }
  if (auth.method === 'XOAUTH2') {
    const token: string = auth.accessToken;
    return token === 'token' ? { user: auth.username } : { data: { status: '401', schemes: 'bearer' } };
  }
  return { user: auth.username };
}

function refuse(message: string, code: number): SMTPError {
  const err: SMTPError = new Error(message);
  err.responseCode = code;
  return err;
}

function blockedSender(address: SMTPAddress): boolean {
  return address.address.endsWith('@blocked.example');
}

async function readAll(stream: DataStream): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const options: SMTPServerOptions = {
  authOptional: true,
  size: 10 * 1024 * 1024,
  onConnect(session, callback) {
    if (session.remoteAddress === '1.2.3.4') {
      return callback(refuse('Blocked', 421));
    }
    callback(null);
  },
  onAuth(auth, session, callback) {
    const response = checkAuth(auth as AuthObject);
    if (!response) {
      return callback(new Error('Invalid credentials'));
    }
    callback(null, response);
  },
  onMailFrom(address, session, callback) {
    if (blockedSender(address)) {
      return callback(new Error('Sender not allowed'));
    }
    callback(null);
  },
  onRcptTo(address, session: SMTPSession, callback) {
    const known = ['alice@example.com', 'bob@example.com'];
    if (!known.includes(address.address)) {
      return callback(refuse('No such user', 550));
    }
    callback(null);
  },
  onData(stream, session, callback) {
    async function process() {
      const body = await readAll(stream);
      if (stream.sizeExceeded) {
        return callback(refuse('Message too large', 552));
      }
      console.log(`${session.id}: ${body.length} bytes, ${stream.byteLength}`);
      callback(null);
    }
    process().catch(callback);
  },
  onClose(session) {
    console.log(`Connection ${session.id} closed after ${session.transaction} transactions`);
  }
};

const server = new SMTPServer(options);
server.on('error', (err: SMTPError) => console.error(err.responseCode, err.message));
server.listen(2525);
