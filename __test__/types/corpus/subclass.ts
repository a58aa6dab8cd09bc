// Handlers defined by a subclass, with explicit parameter types, plus handlers
// assigned to an instance later.
import { SMTPServer, SMTPServerAddress, SMTPServerAuthentication, SMTPServerAuthenticationResponse, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { Writable } from 'node:stream';

class DiscardingServer extends SMTPServer {
  private received = 0;

  constructor(private readonly limit: number) {
    super({ size: limit, authOptional: true, logger: false, disabledCommands: ['AUTH'] });
  }

  onConnect(session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    console.log('connection from', session.remoteAddress);
    callback();
  }

  onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    callback(address.address.endsWith('.invalid') ? new Error('Bad sender') : null);
  }

  onRcptTo(address: SMTPServerAddress, _session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    setImmediate(callback);
  }

  onAuth(
    auth: SMTPServerAuthentication,
    session: SMTPServerSession,
    callback: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void
  ): void {
    callback(new Error('not here'));
  }

  onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): void {
    const sink = new Writable({
      write(_chunk, _encoding, next) {
        next();
      }
    });
    stream.pipe(sink);
    stream.on('end', () => {
      this.received += stream.byteLength;
      callback(null, `${stream.byteLength} bytes (${this.received} total, limit ${this.limit})`);
    });
  }

  onClose(session: SMTPServerSession): void {
    console.log('bye', session.id);
  }
}

const server = new DiscardingServer(1024 * 1024);
server.listen(0);

// a handler replaced on the instance
const other = new SMTPServer({ logger: false });
other.onData = function (stream, session, callback) {
  stream.on('end', () => callback());
  stream.resume();
};
other.onMailFrom = (address, session, callback) => callback();
