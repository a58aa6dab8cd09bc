// An LMTP server answering per recipient, as smtp-server 3.21 allows.
import { SMTPServer, type SMTPServerDataResult, type SMTPServerOptions } from 'smtp-server';

const options: SMTPServerOptions = {
  lmtp: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  onData(stream, session, callback) {
    stream.resume();
    stream.on('end', () => {
      const results: SMTPServerDataResult[] = session.envelope.rcptTo.map(rcpt => {
        if (rcpt.address.startsWith('full@')) {
          return Object.assign(new Error('Mailbox full'), { responseCode: 452 });
        }
        return 'Delivered to ' + rcpt.address;
      });
      callback(null, results);
    });
  }
};

const server = new SMTPServer(options);
server.listen(2424, '::');
