'use strict';
// Loads the native addon: a local build first, then the prebuilt package for this platform.
const { existsSync } = require('node:fs');
const path = require('node:path');

function isMusl() {
  if (process.platform !== 'linux') {
    return false;
  }
  try {
    const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null;
    if (report && report.header) {
      return !report.header.glibcVersionRuntime;
    }
  } catch {
    // fall through
  }
  return existsSync('/etc/alpine-release');
}

function platformTriple() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`;
  }
  if (platform === 'win32') {
    return `win32-${arch}-msvc`;
  }
  return `${platform}-${arch}`;
}

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
