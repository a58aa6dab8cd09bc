'use strict';
// Loads the native addon: a local build first, then the prebuilt package for this platform.
const { existsSync } = require('node:fs');
const path = require('node:path');
const { platformTriple } = require('./scripts/platform.js');

function load() {
  const triple = platformTriple();
  const local = path.join(__dirname, `smtp-server-rs.${triple}.node`);
  const errors = [];
  if (existsSync(local)) {
    try {
      return require(local);
    } catch (err) {
      errors.push(err);
    }
  }
  try {
    return require(`smtp-server-rs-${triple}`);
  } catch (err) {
    errors.push(err);
  }
  const err = new Error(
    `smtp-server-rs: no prebuilt binary for ${triple}; install Rust (https://rustup.rs) and run "npm rebuild smtp-server-rs"` +
      (errors.length ? ` (${errors.map(e => e.message).join('; ')})` : '')
  );
  err.code = 'ERR_SMTP_SERVER_RS_NO_BINARY';
  throw err;
}

module.exports = load();
module.exports.platformTriple = platformTriple;
