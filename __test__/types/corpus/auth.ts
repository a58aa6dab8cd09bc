// onAuth with the callback conventions of the smtp-server documentation.
import { SMTPServer, SMTPServerAuthentication } from 'smtp-server';

interface Account {
  name: string;
  password: string;
  token: string;
}

const accounts = new Map<string, Account>([['alice', { name: 'alice', password: 'secret', token: 'abc' }]]);

function check(auth: SMTPServerAuthentication): Account | null {
  const account = auth.username ? accounts.get(auth.username) : undefined;
  if (!account) {
    return null;
  }
  if (auth.method === 'XOAUTH2') {
    return auth.accessToken === account.token ? account : null;
  }
  if (auth.method === 'PLAIN' || auth.method === 'LOGIN') {
    return auth.password === account.password ? account : null;
  }
  return auth.validatePassword(account.password) ? account : null;
}

const server = new SMTPServer({
  authMethods: ['PLAIN', 'LOGIN', 'XOAUTH2', 'CRAM-MD5'],
  allowInsecureAuth: true,
  onAuth(auth, session, callback) {
    if (auth.method === 'XOAUTH2' && !auth.accessToken) {
      return callback(null, {
        data: {
          status: '401',
          schemes: 'bearer mac',
          scope: 'https://mail.example.com/'
        }
      });
    }
    const account = check(auth);
    if (!account) {
      return callback(new Error('Invalid username or password'));
    }
    callback(null, { user: account.name });
  },
  onMailFrom(address, session, callback) {
    if (!session.user) {
      return callback(Object.assign(new Error('Authentication required'), { responseCode: 530 }));
    }
    callback();
  }
});

server.listen(465);
