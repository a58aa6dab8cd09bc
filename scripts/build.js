'use strict';
// Builds the native addon from source with cargo and writes smtp-server-rs.<platform>.node,
// the file binding.js loads first, into the package root (or the --out directory).
//   node scripts/build.js [options]
//     --debug            debug build (default: release)
//     --target TRIPLE    a Rust target other than this machine's, e.g. x86_64-unknown-linux-musl
//                        (on a glibc Linux the musl targets link with musl-gcc from musl-tools)
//     --out DIR          where the .node file goes (default: the package root)
//     --temp-target      Cargo's target directory is a new temporary directory, removed
//                        afterwards (default: $CARGO_TARGET_DIR, or target/ in the package)
//     --if-missing       do nothing when smtp-server-rs.<platform>.node is already there
// `npx smtp-server-rs build` runs this with --temp-target inside the installed package.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const util = require('node:util');
const { platformTriple, isMusl, TARGETS } = require('./platform.js');

const root = path.join(__dirname, '..');
const USAGE = `Usage: smtp-server-rs build [--debug]

Compiles the native addon from source for this machine and writes it into the
installed package as smtp-server-rs.<platform>.node, where the package loads it
from. Needs Rust (https://rustup.rs) and a C compiler; takes a few minutes.
Cargo's build directory is a temporary one, removed afterwards.
  --debug   a debug build (faster to compile, slower to run)`;
const LIB_NAMES = { linux: 'libsmtp_server_rs.so', darwin: 'libsmtp_server_rs.dylib', win32: 'smtp_server_rs.dll' };

function parseArgs(argv) {
  const { values } = util.parseArgs({
    args: argv,
    options: {
      debug: { type: 'boolean', default: false },
      target: { type: 'string' },
      out: { type: 'string', default: root },
      'temp-target': { type: 'boolean', default: false },
      'if-missing': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    }
  });
  return {
    debug: values.debug,
    target: values.target || null,
    out: path.resolve(values.out),
    tempTarget: values['temp-target'],
    ifMissing: values['if-missing'],
    help: values.help
  };
}

/** The platform name (linux-x64-musl, ...) of a Rust target, or of this machine without one. */
function platformOf(rustTarget) {
  if (!rustTarget) {
    return platformTriple();
  }
  const found = Object.entries(TARGETS).find(([, t]) => t.rust === rustTarget);
  if (!found) {
    throw new Error(`no platform package for the Rust target ${rustTarget} (known: ${Object.values(TARGETS).map(t => t.rust).join(', ')})`);
  }
  return found[0];
}

function has(cmd, args = ['--version']) {
  const res = spawnSync(cmd, args, { stdio: 'ignore' });
  return res.status === 0;
}

/**
 * Cargo settings for a musl target. The addon is a shared library, so musl's C runtime is
 * linked dynamically (-crt-static), as Node and Bun on Alpine load it. Built on a glibc
 * Linux, musl-gcc links it, and the unwinder that Rust's standard library asks for as
 * libgcc_s comes from the toolchain's own static libunwind (a linker script in `shimDir`),
 * so that the addon needs nothing but musl's libc.
 */
function muslEnv(rustTarget, shimDir) {
  const key = rustTarget.toUpperCase().replace(/-/g, '_');
  const env = {};
  const flags = [process.env[`CARGO_TARGET_${key}_RUSTFLAGS`], '-C target-feature=-crt-static'];
  if (process.platform === 'linux' && !isMusl()) {
    if (!has('musl-gcc', ['-v'])) {
      throw new Error(`building for ${rustTarget} here needs musl-gcc: install musl-tools (apt-get install musl-tools)`);
    }
    const sysroot = spawnSync('rustc', ['--print', 'sysroot'], { encoding: 'utf8' }).stdout.trim();
    const unwind = path.join(sysroot, 'lib', 'rustlib', rustTarget, 'lib', 'self-contained', 'libunwind.a');
    if (!fs.existsSync(unwind)) {
      throw new Error(`the Rust standard library for ${rustTarget} is missing: rustup target add ${rustTarget}`);
    }
    fs.mkdirSync(shimDir, { recursive: true });
    fs.writeFileSync(path.join(shimDir, 'libgcc_s.so'), `INPUT(${unwind})\n`);
    flags.push(`-L native=${shimDir}`);
    env[`CC_${rustTarget.replace(/-/g, '_')}`] = 'musl-gcc';
    env[`CARGO_TARGET_${key}_LINKER`] = 'musl-gcc';
  }
  env[`CARGO_TARGET_${key}_RUSTFLAGS`] = flags.filter(Boolean).join(' ');
  return env;
}

/** Runs the build; returns the process exit code. */
function main(argv) {
  let opts;
  try {
    opts = parseArgs(argv);
  } catch (err) {
    console.error(`smtp-server-rs build: ${err.message}`);
    return 2;
  }
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  let platform;
  try {
    platform = platformOf(opts.target);
  } catch (err) {
    console.error(`smtp-server-rs build: ${err.message}`);
    return 2;
  }
  const dest = path.join(opts.out, `smtp-server-rs.${platform}.node`);
  if (opts.ifMissing && fs.existsSync(dest)) {
    return 0;
  }
  if (!has('cargo')) {
    console.error(
      `smtp-server-rs build: cargo was not found. Building the addon for ${platform} needs Rust\n` +
        '(https://rustup.rs) and a C compiler; install them and run the command again.'
    );
    return 1;
  }

  const targetDir = opts.tempTarget
    ? fs.mkdtempSync(path.join(os.tmpdir(), 'smtp-server-rs-build-'))
    : process.env.CARGO_TARGET_DIR
      ? path.resolve(root, process.env.CARGO_TARGET_DIR)
      : path.join(root, 'target');
  try {
    const env = { ...process.env, CARGO_TARGET_DIR: targetDir };
    if (!opts.target && isMusl() && TARGETS[platform]) {
      opts.target = TARGETS[platform].rust;
    }
    if (opts.target && opts.target.endsWith('-musl')) {
      try {
        Object.assign(env, muslEnv(opts.target, path.join(targetDir, 'musl-link')));
      } catch (err) {
        console.error(`smtp-server-rs build: ${err.message}`);
        return 1;
      }
    }
    // an installed package builds exactly the dependency versions it was published with;
    // a checkout may be changing them (cargo reads CARGO_BUILD_JOBS itself)
    const args = ['build', '--lib'];
    if (opts.tempTarget) args.push('--locked');
    if (!opts.debug) args.push('--release');
    if (opts.target) args.push('--target', opts.target);
    console.error(`smtp-server-rs build: cargo ${args.join(' ')} (target directory ${targetDir})`);
    const build = spawnSync('cargo', args, { cwd: root, stdio: 'inherit', env });
    if (build.status !== 0) {
      return build.status === null ? 1 : build.status;
    }

    const profileDir = path.join(targetDir, ...(opts.target ? [opts.target] : []), opts.debug ? 'debug' : 'release');
    const targetOs = TARGETS[platform] ? TARGETS[platform].os : process.platform;
    const built = path.join(profileDir, LIB_NAMES[targetOs] || LIB_NAMES.linux);
    if (!fs.existsSync(built)) {
      console.error(`smtp-server-rs build: cargo finished but ${built} is missing`);
      return 1;
    }
    fs.mkdirSync(opts.out, { recursive: true });
    // copy then rename: a process that has the old file loaded keeps its (unchanged) mapping
    const tmp = `${dest}.${process.pid}.tmp`;
    fs.copyFileSync(built, tmp);
    fs.renameSync(tmp, dest);
    console.error(`smtp-server-rs build: wrote ${dest} (${(fs.statSync(dest).size / 1048576).toFixed(1)} MiB)`);
    return 0;
  } finally {
    if (opts.tempTarget) {
      fs.rmSync(targetDir, { recursive: true, force: true });
    }
  }
}

module.exports = { main, platformOf };

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}
