'use strict';
// Builds the native addon with cargo and places it where binding.js looks for it:
// smtp-server-rs.<platform>.node in the package root.
//   node scripts/build.js            release build
//   node scripts/build.js --debug    debug build
const { spawnSync } = require('node:child_process');
const { copyFileSync, existsSync, renameSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const debug = process.argv.includes('--debug');
const jobs = process.env.CARGO_BUILD_JOBS || '2';

const check = spawnSync('cargo', ['--version'], { stdio: 'ignore' });
if (check.status !== 0) {
  console.error(
    'smtp-server-rs: no prebuilt binary fits this platform and cargo was not found.\n' +
      'Install Rust (https://rustup.rs), then run "npm rebuild smtp-server-rs".'
  );
  process.exit(1);
}

const args = ['build', '--lib', '-j', jobs];
if (!debug) {
  args.push('--release');
}
const build = spawnSync('cargo', args, { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  process.exit(build.status === null ? 1 : build.status);
}

const profile = debug ? 'debug' : 'release';
const names = {
  linux: 'libsmtp_server_rs.so',
  darwin: 'libsmtp_server_rs.dylib',
  win32: 'smtp_server_rs.dll'
};
const libName = names[process.platform] || 'libsmtp_server_rs.so';
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(root, process.env.CARGO_TARGET_DIR) : path.join(root, 'target');
const built = path.join(targetDir, profile, libName);
if (!existsSync(built)) {
  console.error(`smtp-server-rs: build finished but ${built} is missing`);
  process.exit(1);
}
// binding.js computes the platform name; load only that helper, not the addon
const { platformTriple } = require('./platform.js');
const dest = path.join(root, `smtp-server-rs.${platformTriple()}.node`);
// copy then rename: a process that has the old file loaded keeps its (unchanged) mapping
const tmp = `${dest}.${process.pid}.tmp`;
copyFileSync(built, tmp);
renameSync(tmp, dest);
console.log(`smtp-server-rs: built ${path.relative(root, dest)}`);
