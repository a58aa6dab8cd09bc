// ES module code: the default import (the module object) next to named ones.
import SMTPServerDefault, { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';

const options: SMTPServerOptions = {
  authOptional: true,
  onConnect(session: SMTPServerSession, callback) {
    callback();
  },
  onData(stream, session, callback) {
    stream.resume();
    stream.on('end', () => callback(null, 'queued'));
  }
};

const viaNamed: SMTPServer = new SMTPServer(options);
const viaDefault: SMTPServer = new SMTPServerDefault.SMTPServer(options);
const sameClass: typeof SMTPServer = SMTPServerDefault.SMTPServer;

viaNamed.listen(0);
viaDefault.listen(0, () => viaDefault.close());
console.log(sameClass === SMTPServer);
