// Wrong options, listener types and server calls.
import { SMTPServer, SMTPServerOptions } from 'smtp-server';

new SMTPServer({
  onDta(stream: unknown, session: unknown, callback: () => void) { // expect-error TS2561
    callback();
  }
});

const options: SMTPServerOptions = {
  secure: 'yes', // expect-error TS2322
  size: '10M', // expect-error TS2322
  authMethods: 'PLAIN', // expect-error TS2322
  useXClient: 'all' // expect-error TS2322
};
console.log(options);

const server = new SMTPServer({});

server.on('connect', info => {
  console.log(info.remotePort.toUpperCase()); // expect-error TS2339
});

server.on('error', (err: string) => console.log(err)); // expect-error TS2769 stricter

server.close(1000); // expect-error TS2345

server.listen(() => undefined, 25); // expect-error TS2769 stricter
