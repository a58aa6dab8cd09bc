'use strict';
// Several processes serving one port: every worker runs a complete server and listens
// with reusePort (SO_REUSEPORT, Linux); the kernel spreads new connections over them.
// Each worker also uses every core for protocol work, so one worker per 1–2 cores is
// plenty.
//   node examples/cluster.js                  (port 2525, one worker per two cores)
//   PORT=2600 WORKERS=4 node examples/cluster.js
// Try it (each message is logged by the worker that received it):
//   for i in 1 2 3 4; do swaks --server 127.0.0.1:2525 --to you@example.com --silent 2; done
const cluster = require('node:cluster');
const os = require('node:os');
const { SMTPServer } = require('..');

const port = Number(process.env.PORT) || 2525;
const workers = Number(process.env.WORKERS) || Math.max(1, Math.floor(os.availableParallelism ? os.availableParallelism() / 2 : os.cpus().length / 2));

if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) {
    cluster.fork();
  }
  cluster.on('exit', (worker, code) => {
    console.log(`worker ${worker.process.pid} exited (${code}); starting another`);
    cluster.fork();
  });
} else {
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, session, callback) {
      stream.on('data', () => {});
      stream.on('end', () => {
        console.log(`worker ${process.pid}: ${stream.byteLength} bytes from ${session.remoteAddress}`);
        callback();
      });
    }
  });
  server.listen({ port, host: '0.0.0.0', reusePort: true }, () => console.log(`worker ${process.pid} listening on ${port}`));
}
