// The default import (the module object) and smtp-server 3.21's newer fields.
import smtpServer from 'smtp-server';
import type { SMTPServerError, SMTPServerEvents, SMTPServerConnectionInfo, SMTPServerResolver, SMTPServerAddressArgs } from 'smtp-server';

const resolver: SMTPServerResolver = {
  reverse(ip, callback) {
    callback(null, ip === '127.0.0.1' ? ['localhost'] : []);
  }
};

function sizeOf(args: SMTPServerAddressArgs | false): number {
  if (!args || typeof args.SIZE !== 'string') {
    return 0;
  }
  return Number(args.SIZE);
}

const server = new smtpServer.SMTPServer({
  hideDSN: false,
  hideREQUIRETLS: false,
  hideENHANCEDSTATUSCODES: false,
  heloResponse: '%s greets %s',
  lenientAddressParsing: true,
  maxRecipients: 50,
  maxCommandLength: 4096,
  maxAllowedUnauthenticatedCommands: false,
  authRequiredMessage: 'Log in first',
  rejectOversized: true,
  resolver,
  component: 'mx',
  ignoredHosts: ['10.0.0.1'],
  useProxy: ['10.0.0.1'],
  useXClient: ['127.0.0.1'],
  logger: {
    info: (...args: unknown[]) => console.log(...args),
    error: (...args: unknown[]) => console.error(...args)
  },
  onMailFrom(address, session, callback) {
    const env = session.envelope;
    console.log(sizeOf(address.args), env.bodyType, env.smtpUtf8, env.requireTLS, env.dsn && env.dsn.envid, session.transaction);
    if (session.xClient.has('ADDR')) {
      console.log('forwarded for', session.xClient.get('ADDR'));
    }
    callback();
  },
  onRcptTo(address, session, callback) {
    if (address.dsn && address.dsn.notify && address.dsn.notify.includes('NEVER')) {
      const err: SMTPServerError = new Error('No DSN, no mail');
      err.responseCode = 550;
      return callback(err);
    }
    if (session.envelope.rcptTo.length >= 2) {
      session.disabledCommands = ['BDAT'];
    }
    callback();
  },
  onConnect(session, callback) {
    if (session.servername) {
      console.log('SNI', session.servername.toLowerCase());
    }
    if (session.isWizard || session.error) {
      return callback(new Error('no'));
    }
    callback();
  }
});

const onConnect = (...args: SMTPServerEvents['connect']) => {
  const info: SMTPServerConnectionInfo = args[0];
  console.log(info.id, info.remoteAddress, info.remotePort, info.hostNameAppearsAs, info.clientHostname);
};
server.on('connect', onConnect);
server.on('connect', info => console.log(info.localAddress, info.localPort));
server.on('error', err => console.log((err as SMTPServerError).responseCode));
server.on('close', () => undefined);

server.listen(0);
console.log(server.options.authMethods.join(','), server.options.disabledCommands.length);
