#!/usr/bin/env node
'use strict';
// The mail catcher on the command line: `npx smtp-server-rs --help` (see docs/cli.md).
const { main } = require('../lib/cli.js');

// a reader that went away (`| head`) is no reason to crash
process.stdout.on('error', err => {
  if (err.code !== 'EPIPE') {
    throw err;
  }
});

main(process.argv.slice(2)).then(
  code => {
    // let what is still buffered reach stdout before leaving
    process.stdout.write('', () => process.exit(code));
  },
  err => {
    process.stderr.write(`smtp-server-rs: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  }
);
