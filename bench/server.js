'use strict';
// A benchmark server in its own process.
//   IMPL=rs|ref  VARIANT=sink|handlers|none  PORT=0  node bench/server.js
// Prints "READY <port>" once listening.
const path = require('node:path');
const impl = process.env.IMPL || 'rs';
const variant = process.env.VARIANT || 'sink';
const { SMTPServer } = impl === 'ref' ? require('smtp-server') : require(path.join(__dirname, '..'));

const options = {
  authOptional: true,
  disableReverseLookup: true,
  disabledCommands: process.env.TLS ? [] : ['STARTTLS'],
  logger: false,
  maxClients: 0,
  socketTimeout: 120000
};
if (variant !== 'none') {
  options.onData = (stream, session, callback) => {
    stream.on('data', () => {});
    stream.on('end', () => callback());
  };
}
if (variant === 'handlers') {
  options.onMailFrom = (address, session, callback) => callback();
  options.onRcptTo = (address, session, callback) => callback();
}
if (process.env.TLS) {
  // the same (X.509 v3) certificate for both packages
  const tlsOptions = require(path.join(__dirname, '..', 'lib', 'tls-options.js'));
  options.key = tlsOptions.DEFAULT_KEY;
  options.cert = tlsOptions.DEFAULT_CERT;
}
if (process.env.EVENT_LOOP === '0') {
  // smtp-server-rs: every connection on the native threads (for comparing the two paths)
  options.eventLoop = false;
}
const server = new SMTPServer(options);
server.on('error', err => console.error('server error', err.message));
server.listen(Number(process.env.PORT) || 0, '127.0.0.1', () => {
  console.log(`READY ${server.server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
