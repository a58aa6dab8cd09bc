'use strict';
// Release: puts the native binaries into the per-platform packages (npm/<platform>/, staged
// in a temporary directory) and publishes them, then the main package, all at one version.
// A dry run unless --publish. .github/workflows/release.yml runs it with every platform's
// binary; __test__/registry.test.js runs it against a local registry.
//
//   node scripts/release.js [options]
//     --version X.Y.Z | --bump patch|minor|major
//                         set one version in package.json, its optionalDependencies,
//                         npm/*/package.json and Cargo.toml first
//     --no-build          do not build this machine's platform (its binary must exist)
//     --artifacts DIR     also take smtp-server-rs.<platform>.node files found under DIR
//                         (binaries built on other machines, see below)
//     --allow-missing     publish even though some platforms have no binary (their users
//                         fall back to a source build)
//     --tag NAME          npm dist-tag (default: latest)
//     --registry URL      publish there instead of npm's configured registry
//     --publish           really publish; without it every `npm publish` runs with --dry-run
//     --check             only check that all versions agree, and exit
//
// This machine builds its own platform (scripts/build.js). The others are built elsewhere
// and handed over with --artifacts: .github/workflows/release.yml has the command for each
// platform (each writes smtp-server-rs.<platform>.node into an artifacts directory), e.g.
//   linux x64 musl:   apt-get install musl-tools; rustup target add x86_64-unknown-linux-musl
//                     node scripts/build.js --target x86_64-unknown-linux-musl --out artifacts
//   linux glibc:      npx napi build --platform --no-js --release --strip --target aarch64-unknown-linux-gnu --use-napi-cross -o artifacts
//                     (a cross toolchain with glibc 2.17, so the binary loads on old distributions)
// Then, on one machine: node scripts/release.js --version X.Y.Z --artifacts artifacts
// (check the dry run's file lists) and the same with --publish.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { platformTriple, TARGETS } = require('./platform.js');

const root = path.join(__dirname, '..');
const npmDir = path.join(root, 'npm');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function parseArgs(argv) {
  const opts = { build: true, publish: false, allowMissing: false, check: false, tag: null, registry: null, version: null, bump: null, artifacts: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) {
        throw new Error(`${a} needs a value`);
      }
      return argv[++i];
    };
    if (a === '--version') opts.version = value();
    else if (a === '--bump') opts.bump = value();
    else if (a === '--artifacts') opts.artifacts.push(path.resolve(value()));
    else if (a === '--tag') opts.tag = value();
    else if (a === '--registry') opts.registry = value();
    else if (a === '--no-build') opts.build = false;
    else if (a === '--publish') opts.publish = true;
    else if (a === '--allow-missing') opts.allowMissing = true;
    else if (a === '--check') opts.check = true;
    else if (a === '--help' || a === '-h') opts.help = true;
    else throw new Error(`unknown option ${a}`);
  }
  return opts;
}

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

function writeJson(file, data) {
  fs.writeFileSync(file, JSON.stringify(data, null, 2) + '\n');
}

function bumpVersion(version, kind) {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!m) {
    throw new Error(`cannot bump ${version}`);
  }
  const [major, minor, patch] = m.slice(1).map(Number);
  if (kind === 'major') return `${major + 1}.0.0`;
  if (kind === 'minor') return `${major}.${minor + 1}.0`;
  if (kind === 'patch') return `${major}.${minor}.${patch + 1}`;
  throw new Error(`--bump takes patch, minor or major, not ${kind}`);
}

/** Every place that holds the version, and what it says there. */
function versions() {
  const pkg = readJson(path.join(root, 'package.json'));
  const found = [['package.json', pkg.version]];
  for (const triple of Object.keys(TARGETS)) {
    const name = `smtp-server-rs-${triple}`;
    found.push([`optionalDependencies.${name}`, (pkg.optionalDependencies || {})[name]]);
    const file = path.join(npmDir, triple, 'package.json');
    found.push([`npm/${triple}/package.json`, fs.existsSync(file) ? readJson(file).version : undefined]);
  }
  return found;
}

function checkVersions() {
  const found = versions();
  const want = found[0][1];
  const wrong = found.filter(([, v]) => v !== want);
  for (const [where, v] of wrong) {
    console.error(`version mismatch: ${where} is ${v === undefined ? 'missing' : v}, package.json is ${want}`);
  }
  return wrong.length === 0;
}

function setVersion(version) {
  if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) {
    throw new Error(`not a version: ${version}`);
  }
  const pkgFile = path.join(root, 'package.json');
  const pkg = readJson(pkgFile);
  pkg.version = version;
  pkg.optionalDependencies = pkg.optionalDependencies || {};
  for (const triple of Object.keys(TARGETS)) {
    pkg.optionalDependencies[`smtp-server-rs-${triple}`] = version;
    const file = path.join(npmDir, triple, 'package.json');
    const sub = readJson(file);
    sub.version = version;
    writeJson(file, sub);
  }
  writeJson(pkgFile, pkg);
  const cargoFile = path.join(root, 'Cargo.toml');
  const cargo = fs.readFileSync(cargoFile, 'utf8');
  // the first version line is [package]'s
  fs.writeFileSync(cargoFile, cargo.replace(/^version = "[^"]*"/m, `version = "${version}"`));
  console.log(`version ${version}: package.json, optionalDependencies, npm/*/package.json, Cargo.toml`);
}

function findArtifacts(dir, out) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      findArtifacts(full, out);
      continue;
    }
    const m = /^smtp-server-rs\.(.+)\.node$/.exec(entry.name);
    if (m && TARGETS[m[1]]) {
      out.set(m[1], full);
    }
  }
  return out;
}

/** Strips debug info from a binary this machine's tools understand; others are left as built. */
function strip(file, triple) {
  const target = TARGETS[triple];
  const sameMachine = target.os === process.platform && target.cpu === process.arch;
  let args = null;
  if (sameMachine && process.platform === 'linux') args = ['--strip-unneeded', file];
  else if (sameMachine && process.platform === 'darwin') args = ['-x', file];
  if (!args) {
    return false;
  }
  const res = spawnSync('strip', args, { stdio: 'inherit' });
  return res.status === 0;
}

function run(cmd, args, options = {}) {
  console.log(`$ ${cmd} ${args.join(' ')}${options.cwd ? `   (in ${path.relative(root, options.cwd) || '.'})` : ''}`);
  const res = spawnSync(cmd, args, { cwd: options.cwd || root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (res.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${res.status === null ? res.signal : res.status})`);
  }
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.help) {
    const text = fs.readFileSync(__filename, 'utf8').split('\n');
    console.log(text.slice(1, text.findIndex(l => l.startsWith('const '))).map(l => l.replace(/^\/\/ ?/, '')).join('\n'));
    return 0;
  }
  if (opts.check) {
    const ok = checkVersions();
    console.log(ok ? `versions agree: ${readJson(path.join(root, 'package.json')).version}` : 'versions disagree');
    return ok ? 0 : 1;
  }
  if (opts.version || opts.bump) {
    setVersion(opts.version || bumpVersion(readJson(path.join(root, 'package.json')).version, opts.bump));
  }
  if (!checkVersions()) {
    console.error('fix the versions first, e.g. with --version X.Y.Z');
    return 1;
  }
  const version = readJson(path.join(root, 'package.json')).version;

  const host = platformTriple();
  if (opts.build) {
    run(process.execPath, [path.join(__dirname, 'build.js')]);
  }

  // binaries: the artifacts directories, then this machine's own build
  const binaries = new Map();
  for (const dir of opts.artifacts) {
    findArtifacts(dir, binaries);
  }
  const local = path.join(root, `smtp-server-rs.${host}.node`);
  if (TARGETS[host] && fs.existsSync(local) && !binaries.has(host)) {
    binaries.set(host, local);
  }

  // each platform package is staged with its binary: npm/<platform>/ stays as committed
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'smtp-server-rs-release-'));
  process.on('exit', () => fs.rmSync(stage, { recursive: true, force: true }));
  const missing = [];
  for (const triple of Object.keys(TARGETS)) {
    const name = `smtp-server-rs.${triple}.node`;
    const src = binaries.get(triple);
    if (!src) {
      missing.push(triple);
      continue;
    }
    const dir = path.join(stage, triple);
    fs.mkdirSync(dir);
    for (const f of ['package.json', 'README.md']) {
      fs.copyFileSync(path.join(npmDir, triple, f), path.join(dir, f));
    }
    const dest = path.join(dir, name);
    fs.copyFileSync(src, dest);
    const stripped = strip(dest, triple);
    console.log(`${triple}: ${name} <- ${path.relative(root, src)} (${(fs.statSync(dest).size / 1048576).toFixed(1)} MiB${stripped ? ', stripped' : ''})`);
  }

  // the binary of this machine must load
  const hostBinary = path.join(stage, host, `smtp-server-rs.${host}.node`);
  if (fs.existsSync(hostBinary)) {
    const res = spawnSync(process.execPath, ['-e', `const a = require(${JSON.stringify(hostBinary)}); if (!Object.keys(a).length) process.exit(1)`], { stdio: 'inherit' });
    if (res.status !== 0) {
      console.error(`${host}: the binary does not load`);
      return 1;
    }
  }

  if (missing.length) {
    console.log(`no binary for: ${missing.join(', ')} (their users would have to build from source)`);
    if (opts.publish && !opts.allowMissing) {
      console.error('refusing to publish with missing binaries: build them (see the top of this file) or pass --allow-missing');
      return 1;
    }
  }

  const publishArgs = ['publish', '--access', 'public'];
  if (opts.tag) publishArgs.push('--tag', opts.tag);
  if (opts.registry) publishArgs.push('--registry', opts.registry);
  if (!opts.publish) publishArgs.push('--dry-run');
  // platform packages first: the main package's optionalDependencies point at them
  for (const triple of Object.keys(TARGETS)) {
    if (!missing.includes(triple)) {
      run(NPM, publishArgs, { cwd: path.join(stage, triple) });
    }
  }
  // the main package as it is: its `prepare` script (the checkout's build) must not run
  run(NPM, [...publishArgs, '--ignore-scripts'], { cwd: root });
  console.log(opts.publish ? `published smtp-server-rs ${version}` : `dry run of smtp-server-rs ${version} done: add --publish to publish`);
  return 0;
}

try {
  process.exitCode = main();
} catch (err) {
  console.error(`release: ${err.message}`);
  process.exitCode = 1;
}
