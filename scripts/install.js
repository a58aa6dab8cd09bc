'use strict';
// Runs on `npm install`: nothing to do when a binary loads (the prebuilt package for this
// platform, installed by npm as an optionalDependency, or an earlier source build); the
// addon is built from source with cargo otherwise. SMTP_SERVER_RS_FORCE_BUILD=1 always builds.
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');

function binaryError() {
  try {
    require(path.join(root, 'binding.js'));
    return null;
  } catch (err) {
    return err;
  }
}

if (process.env.SMTP_SERVER_RS_FORCE_BUILD !== '1') {
  const err = binaryError();
  if (!err) {
    process.exit(0);
  }
  const { platformTriple } = require('./platform.js');
  console.error(`smtp-server-rs: no prebuilt binary for ${platformTriple()} loaded; building from source with cargo (this takes a few minutes)`);
}

const result = spawnSync(process.execPath, [path.join(__dirname, 'build.js')], { cwd: root, stdio: 'inherit' });
process.exit(result.status === null ? 1 : result.status);
