'use strict';
// Runs on `npm install`: uses a prebuilt binary when one fits this platform, and builds
// the addon from source with cargo otherwise.
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');

function hasBinary() {
  try {
    require(path.join(root, 'binding.js'));
    return true;
  } catch {
    return false;
  }
}

if (process.env.SMTP_SERVER_RS_FORCE_BUILD !== '1' && hasBinary()) {
  process.exit(0);
}

const result = spawnSync(process.execPath, [path.join(__dirname, 'build.js')], { cwd: root, stdio: 'inherit' });
process.exit(result.status === null ? 1 : result.status);
