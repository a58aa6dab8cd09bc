'use strict';
// Loads the native addon, first match wins:
//   1. SMTP_SERVER_RS_BINARY=/path/to/file.node (a build of your own)
//   2. smtp-server-rs.<platform>.node in the package root (a source build: `npx smtp-server-rs
//      build`, or scripts/build.js in a checkout)
//   3. the prebuilt package smtp-server-rs-<platform> (an optionalDependency, see npm/)
// and otherwise throws ERR_SMTP_SERVER_RS_NO_BINARY, saying what to do.
const { existsSync, readFileSync } = require('node:fs');
const path = require('node:path');
const { platformTriple } = require('./scripts/platform.js');

function ownVersion() {
  try {
    return JSON.parse(readFileSync(path.join(__dirname, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

function load() {
  const triple = platformTriple();
  const pkg = `smtp-server-rs-${triple}`;
  const tried = [];

  const custom = process.env.SMTP_SERVER_RS_BINARY;
  if (custom) {
    // an explicit choice: its failure is the answer, not a reason to look elsewhere
    return require(path.resolve(custom));
  }

  const local = path.join(__dirname, `smtp-server-rs.${triple}.node`);
  if (existsSync(local)) {
    try {
      return require(local);
    } catch (err) {
      tried.push(`${local}: ${err.message}`);
    }
  }

  let pkgDir = null;
  try {
    pkgDir = path.dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    tried.push(`${pkg} is not installed`);
  }
  if (pkgDir) {
    try {
      const addon = require(pkg);
      const version = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
      const own = ownVersion();
      if (own && version !== own) {
        process.emitWarning(`smtp-server-rs ${own} is using the native binary of ${pkg} ${version}; reinstall so that both versions match`, {
          code: 'SMTP_SERVER_RS_VERSION_MISMATCH'
        });
      }
      return addon;
    } catch (err) {
      tried.push(`${pkg}: ${err.message}`);
    }
  }

  const err = new Error(
    `smtp-server-rs: no prebuilt binary for ${triple} could be loaded (${tried.join('; ')}).\n` +
      `Fix it in one of these ways:\n` +
      `  - reinstall without --omit=optional / --no-optional, so that ${pkg} is installed\n` +
      `    (prebuilt packages exist for linux x64/arm64 gnu and musl, darwin x64/arm64 and win32 x64);\n` +
      `  - or build it from source: install Rust (https://rustup.rs) and a C compiler, then run\n` +
      `    "npx smtp-server-rs build" in your project (a few minutes; it writes one .node file)`
  );
  err.code = 'ERR_SMTP_SERVER_RS_NO_BINARY';
  throw err;
}

module.exports = load();
module.exports.platformTriple = platformTriple;
