// server.listen() and server.server used where a net.Server is expected.
import * as net from 'net';
import { SMTPServer } from 'smtp-server';

const server = new SMTPServer({ authOptional: true });

const srv: net.Server = server.listen(2525);
const inner: net.Server = server.server;

function limit(s: net.Server, max: number): void {
  s.maxConnections = max;
}
limit(srv, 100);

const open: number = inner.connections;
inner.getConnections((err, count) => {
  if (!err) {
    console.log(open, count, inner.listening, inner.address());
  }
});

async function shutdown(s: net.Server): Promise<void> {
  await s[Symbol.asyncDispose]();
}

inner.on('listening', () => console.log('listening'));
srv.ref();
srv.unref();
shutdown(srv).then(() => server.close());
