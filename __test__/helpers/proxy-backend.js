'use strict';
// A backend server process for the scaling-out tests: prints "READY <port>" and then one
// JSON line per message it receives. BACKEND_PROXY=0 turns PROXY headers off, PORT and
// REUSE_PORT=1 listen on a shared port.
const { SMTPServer } = require('../..');

const server = new SMTPServer({
  useProxy: process.env.BACKEND_PROXY !== '0',
  authOptional: true,
  disableReverseLookup: true,
  logger: false,
  onData(stream, session, callback) {
    const chunks = [];
    stream.on('data', chunk => chunks.push(chunk));
    stream.on('end', () => {
      console.log(
        JSON.stringify({
          name: process.env.BACKEND_NAME,
          remoteAddress: session.remoteAddress,
          remotePort: session.remotePort,
          body: Buffer.concat(chunks).toString()
        })
      );
      callback();
    });
  }
});
server.listen({ port: Number(process.env.PORT) || 0, host: '127.0.0.1', reusePort: process.env.REUSE_PORT === '1' }, () =>
  console.log(`READY ${server.server.address().port}`)
);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
