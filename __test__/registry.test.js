'use strict';
// A release as users then meet it, on this machine. scripts/release.js publishes the
// linux-x64-gnu package (the checkout's build), the linux-x64-musl package (built with
// scripts/build.js --target x86_64-unknown-linux-musl, as the release workflow does) and the
// main package into a local registry (Verdaccio on 127.0.0.1, no uplinks); the other
// platforms' packages are published too, with a placeholder file as their binary, so that
// every optionalDependency resolves as after a real release (none of them fits this
// machine, so none is installed). Then, in empty projects, with no Rust on the PATH and
// package managers at their default settings: `npm install`, `pnpm add`, `yarn add` and
// `bun add` each install with no warning and no script, within 10 MB; require and import
// work and a message goes through the server over loopback under Node 18, 20, 22 and 24
// and Bun 1.1, 1.3 and 1.4; `npm install --libc=musl` picks the musl package; and without
// the prebuilt package `npx smtp-server-rs build` compiles the addon, leaving only the
// .node file behind.
//
// Tools (.ci/run installs them; each part skips, saying why, when its tool is missing):
//   npm install --prefix .tmp/tools verdaccio@6.8.0 pnpm@10.34.9 yarn@1.22.22
//   Node 18/22/24 in .tmp/node-<major>, Bun 1.1/1.3 in .tmp/bun-<minor>, Bun 1.4 from devDependencies
//   the musl build: apt-get install musl-tools; rustup target add x86_64-unknown-linux-musl
//   (the binary is kept in .tmp/artifacts and built again when the Rust sources change)
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { platformTriple, TARGETS } = require('../scripts/platform.js');
const { run, note, once, lastJson, writeUseScripts, checkRoundtrip } = require('./helpers/installed-app.js');
const { freePort } = require('./helpers/process.js');

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const host = platformTriple();
const TOOLS = path.join(root, '.tmp', 'tools', 'node_modules', '.bin');
const ARTIFACTS = path.join(root, '.tmp', 'artifacts');
const MUSL = 'linux-x64-musl';
const MAX_INSTALLED = 10 * 1024 * 1024;
const TIMEOUT = 10 * 60 * 1000;

/** The first directory of PATH that holds `name`, or null. */
function which(name, pathVar = process.env.PATH) {
  for (const dir of String(pathVar).split(path.delimiter)) {
    const file = path.join(dir, name);
    if (dir && fs.existsSync(file) && fs.statSync(file).isFile()) {
      return file;
    }
  }
  return null;
}

function tool(name) {
  const file = path.join(TOOLS, name);
  return fs.existsSync(file) ? file : null;
}

function version(bin) {
  const res = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return res.status === 0 ? res.stdout.trim().replace(/^v/, '') : null;
}

// The runtimes that use the installed package: Node 20 is the one running the tools
const node20 = process.versions.bun ? which('node') : process.execPath;
const RUNTIMES = [
  ['Node 18', path.join(root, '.tmp', 'node-18', 'package', 'bin', 'node')],
  ['Node 20', node20],
  ['Node 22', path.join(root, '.tmp', 'node-22', 'package', 'bin', 'node')],
  ['Node 24', path.join(root, '.tmp', 'node-24', 'package', 'bin', 'node')],
  ['Bun 1.1', path.join(root, '.tmp', 'bun-1.1', 'package', 'bin', 'bun')],
  ['Bun 1.3', path.join(root, '.tmp', 'bun-1.3', 'package', 'bin', 'bun')],
  ['Bun 1.4', path.join(root, 'node_modules', '.bin', 'bun')]
].map(([label, bin]) => {
  const v = bin && fs.existsSync(bin) ? version(bin) : null;
  const wanted = label.split(' ')[1];
  const fits = v && (v === wanted || v.startsWith(`${wanted}.`));
  return { label, bin: fits ? bin : null, version: v, isBun: label.startsWith('Bun'), missing: fits ? null : `${label} is not installed (${bin}${v ? ` is ${v}` : ''})` };
});
const bun14 = RUNTIMES.find(r => r.label === 'Bun 1.4');

const verdaccio = tool('verdaccio');
const whyNot = host !== 'linux-x64-gnu' ? `this test publishes the linux-x64 packages; this machine is ${host}`
  : !verdaccio ? `Verdaccio is not installed: npm install --prefix .tmp/tools verdaccio@6.8.0 pnpm@10.34.9 yarn@1.22.22`
    : !node20 ? 'no Node 20 on the PATH'
      : false;

// The musl binary: kept in .tmp/artifacts while it is newer than every Rust source
function newestSource() {
  let newest = 0;
  const walk = dir => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else newest = Math.max(newest, fs.statSync(full).mtimeMs);
    }
  };
  walk(path.join(root, 'src'));
  for (const f of ['Cargo.toml', 'Cargo.lock', 'build.rs']) {
    newest = Math.max(newest, fs.statSync(path.join(root, f)).mtimeMs);
  }
  return newest;
}
const muslBinary = path.join(ARTIFACTS, `smtp-server-rs.${MUSL}.node`);
function muslState() {
  if (fs.existsSync(muslBinary) && fs.statSync(muslBinary).mtimeMs >= newestSource()) {
    return { build: false, skip: false };
  }
  if (!which('musl-gcc')) {
    return { build: false, skip: 'musl-gcc is not installed (apt-get install musl-tools): no linux-x64-musl package' };
  }
  const sysroot = spawnSync('rustc', ['--print', 'sysroot'], { encoding: 'utf8' }).stdout;
  if (!sysroot || !fs.existsSync(path.join(sysroot.trim(), 'lib', 'rustlib', 'x86_64-unknown-linux-musl'))) {
    return { build: false, skip: 'the Rust target x86_64-unknown-linux-musl is not installed (rustup target add x86_64-unknown-linux-musl)' };
  }
  return { build: true, skip: false };
}
const musl = whyNot ? { build: false, skip: whyNot } : muslState();

let tmp = null;
let registryProcess = null;
process.on('exit', () => {
  if (registryProcess) {
    registryProcess.kill();
  }
  if (tmp && !process.env.SMTP_RS_KEEP_PACK) {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

async function startRegistry() {
  const dir = path.join(tmp, 'registry');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'config.yaml'), [
    `storage: ${path.join(dir, 'storage')}`,
    'auth:',
    '  htpasswd:',
    `    file: ${path.join(dir, 'htpasswd')}`,
    '    max_users: 10',
    'uplinks: {}',
    'packages:',
    "  '**':",
    '    access: $all',
    '    publish: $authenticated',
    'log: { type: stdout, format: pretty, level: error }',
    ''
  ].join('\n'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const log = fs.openSync(path.join(dir, 'verdaccio.log'), 'w');
  registryProcess = spawn(node20, [verdaccio, '--config', path.join(dir, 'config.yaml'), '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', log, log] });
  // the test process ends when its tests do; its exit handler stops the registry
  registryProcess.unref();
  let exited = null;
  registryProcess.once('exit', code => {
    exited = code;
  });
  // ready once it answers its ping; at most 300 tries (30 s)
  for (let i = 0; i < 300 && exited === null; i++) {
    try {
      const res = await fetch(`${url}-/ping`);
      if (res.ok) {
        break;
      }
    } catch {
      // not listening yet
    }
    await new Promise(resolve => setTimeout(resolve, 100));
  }
  assert.equal(exited, null, `verdaccio exited: ${fs.readFileSync(path.join(dir, 'verdaccio.log'), 'utf8')}`);
  // a user for publishing; its token goes into the publisher's npmrc
  const res = await fetch(`${url}-/user/org.couchdb.user:release`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'release', password: 'release-password' })
  });
  const body = await res.json();
  assert.ok(body.token, `no token from the registry: ${JSON.stringify(body)}`);
  const npmrc = path.join(dir, 'publisher.npmrc');
  fs.writeFileSync(npmrc, `//127.0.0.1:${port}/:_authToken=${body.token}\n`);
  return { url, npmrc };
}

// A bin directory with only node, npm and npx (Node 20's) and the package managers: the
// PATH of the user's shell, with no cargo or rustc on it
function userBin() {
  const bin = path.join(tmp, 'user-bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(node20, path.join(bin, 'node'));
  for (const name of ['npm', 'npx']) {
    const found = which(name, `${path.dirname(node20)}${path.delimiter}${process.env.PATH}`);
    assert.ok(found, `${name} not found`);
    fs.symlinkSync(fs.realpathSync(found), path.join(bin, name));
  }
  for (const name of ['pnpm', 'yarn']) {
    if (tool(name)) {
      fs.symlinkSync(fs.realpathSync(tool(name)), path.join(bin, name));
    }
  }
  return bin;
}

/** The environment of a user with a fresh home (no npm, Bun, pnpm or Yarn settings or caches). */
function userEnv(name, extraPath = []) {
  const home = path.join(tmp, 'home', name);
  fs.mkdirSync(home, { recursive: true });
  const env = { PATH: [...extraPath, setupResult.bin, '/usr/bin', '/bin'].join(path.delimiter), HOME: home, LANG: 'C.UTF-8' };
  for (const dir of env.PATH.split(path.delimiter)) {
    for (const rust of ['cargo', 'rustc']) {
      assert.ok(!fs.existsSync(path.join(dir, rust)), `${rust} is on the user's PATH (${dir})`);
    }
  }
  return env;
}

/** An empty project that gets its packages from the local registry. */
function project(name) {
  const dir = path.join(tmp, 'projects', name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `app-${name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`, version: '1.0.0', private: true }, null, 2));
  fs.writeFileSync(path.join(dir, '.npmrc'), `registry=${setupResult.url}\n`);
  fs.writeFileSync(path.join(dir, 'bunfig.toml'), `[install]\nregistry = "${setupResult.url}"\n`);
  writeUseScripts(dir);
  return dir;
}

function filesUnder(dir, base = dir, out = []) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) filesUnder(full, base, out);
    else if (entry.isFile()) out.push(path.relative(base, full).split(path.sep).join('/'));
  }
  return out;
}

/** Bytes of every file under node_modules (each file once, links not followed). */
function installedSize(dir) {
  let bytes = 0;
  for (const f of filesUnder(path.join(dir, 'node_modules'))) {
    bytes += fs.statSync(path.join(dir, 'node_modules', f)).size;
  }
  return bytes;
}

function mib(bytes) {
  return `${(bytes / 1048576).toFixed(2)} MiB`;
}

/** The installed package's files, wherever the package manager put them. */
function installedPackage(dir) {
  return fs.realpathSync(path.join(dir, 'node_modules', 'smtp-server-rs'));
}

/** Require and import in the project `dir` under a runtime; checks the message that went through. */
async function useIn(dir, runtime, env) {
  for (const script of ['use-cjs.cjs', 'use-esm.mjs']) {
    const res = await run(runtime.bin, [script], { cwd: dir, env });
    assert.equal(res.code, 0, `${runtime.label} ${script}:\n${res.stdout}${res.stderr}`);
    const out = lastJson(res.stdout);
    checkRoundtrip(out);
    if (script === 'use-cjs.cjs' && !runtime.isBun) {
      assert.equal(out.natives.length, 1);
      assert.match(out.natives[0], new RegExp(`smtp-server-rs-${host}/smtp-server-rs\\.${host}\\.node$`), 'the binary comes from the platform package');
    }
  }
}

/** An installer's output must be free of warnings and of any mention of scripts. */
function assertQuiet(label, res) {
  const text = `${res.stdout}\n${res.stderr}`;
  assert.equal(res.code, 0, `${label} failed:\n${text}`);
  const bad = text.split('\n').filter(l => /warn|script|untrusted|blocked|error|deprecat/i.test(l));
  assert.deepEqual(bad, [], `${label} printed warnings:\n${text}`);
}

let setupResult = null;
const setup = once(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smtp-rs-registry-'));
  const hostBinary = path.join(root, `smtp-server-rs.${host}.node`);
  assert.ok(fs.existsSync(hostBinary), `build the addon first (npm run build): ${hostBinary} is missing`);

  if (musl.build) {
    // what the release workflow runs for linux-x64-musl
    const res = await run(node20, [path.join(root, 'scripts', 'build.js'), '--target', TARGETS[MUSL].rust, '--out', ARTIFACTS], { cwd: root, timeout: TIMEOUT });
    assert.equal(res.code, 0, `the musl build failed:\n${res.stdout}${res.stderr}`);
  }

  // the binaries a release takes: this machine's, the musl one, and placeholders for
  // the platforms that cannot be built here (their packages never install on this machine)
  const artifacts = path.join(tmp, 'artifacts');
  fs.mkdirSync(artifacts);
  fs.copyFileSync(hostBinary, path.join(artifacts, `smtp-server-rs.${host}.node`));
  if (!musl.skip) {
    fs.copyFileSync(muslBinary, path.join(artifacts, `smtp-server-rs.${MUSL}.node`));
  }
  const placeholders = Object.keys(TARGETS).filter(t => t !== host && t !== MUSL);
  for (const t of placeholders) {
    fs.writeFileSync(path.join(artifacts, `smtp-server-rs.${t}.node`), `placeholder for ${t}: not built on this machine\n`);
  }

  const { url, npmrc } = await startRegistry();
  const release = await run(node20, [path.join(root, 'scripts', 'release.js'), '--no-build', '--artifacts', artifacts, '--publish', '--registry', url, ...(musl.skip ? ['--allow-missing'] : [])], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: path.join(tmp, 'publisher-home'), npm_config_userconfig: npmrc, npm_config_cache: path.join(tmp, 'publisher-cache') },
    timeout: TIMEOUT
  });
  assert.equal(release.code, 0, `release.js failed:\n${release.stdout}${release.stderr}`);
  setupResult = { url, release, placeholders, bin: userBin() };
  return setupResult;
});

const npmProjects = new Map();
/** `npm install smtp-server-rs` in a new project, once per set of extra arguments. */
function npmProject(name, args = []) {
  if (!npmProjects.has(name)) {
    npmProjects.set(name, (async () => {
      await setup();
      const dir = project(name);
      const res = await run('npm', ['install', 'smtp-server-rs', ...args], { cwd: dir, env: userEnv(name), timeout: 120000 });
      return { dir, res };
    })());
  }
  return npmProjects.get(name);
}

test('release.js publishes the platform packages, then the main package, into the registry', { timeout: TIMEOUT, skip: whyNot }, async t => {
  const { release, url, placeholders } = await setup();
  const out = release.stdout;
  const published = [...out.matchAll(/^\+ (\S+)@(\S+)$/gm)].map(m => m[1]);
  const platforms = Object.keys(TARGETS).filter(p => !(musl.skip && p === MUSL)).map(p => `smtp-server-rs-${p}`);
  assert.deepEqual(published, [...platforms, 'smtp-server-rs'], 'every platform package first, the main package last');
  const meta = await (await fetch(`${url}smtp-server-rs`)).json();
  const latest = meta.versions[meta['dist-tags'].latest];
  assert.equal(latest.version, pkg.version);
  for (const script of ['preinstall', 'install', 'postinstall']) {
    assert.equal((latest.scripts || {})[script], undefined, `the published package has no ${script} script`);
  }
  assert.equal(latest.hasInstallScript, undefined, 'the registry does not flag an install script');
  note(t, `published: ${published.join(', ')} (placeholder binaries: ${placeholders.join(', ')})`);
  if (musl.skip) {
    note(t, `no linux-x64-musl package: ${musl.skip}`);
  }
});

test('npm install smtp-server-rs: no warning, no script, the gnu package only, within 10 MB', { timeout: TIMEOUT, skip: whyNot }, async t => {
  const { dir, res } = await npmProject('npm');
  assertQuiet('npm install', res);
  const modules = fs.readdirSync(path.join(dir, 'node_modules')).filter(f => !f.startsWith('.')).sort();
  assert.deepEqual(modules, ['smtp-server-rs', `smtp-server-rs-${host}`]);
  const installed = filesUnder(installedPackage(dir));
  assert.ok(!installed.some(f => f.endsWith('.node') || f.startsWith('target/')), 'nothing was built into the package');
  const size = installedSize(dir);
  assert.ok(size <= MAX_INSTALLED, `installed size ${mib(size)} is at most 10 MB`);
  note(t, `npm ${version('npm') || ''} install output: ${JSON.stringify((res.stdout + res.stderr).trim())}`);
  note(t, `installed: ${modules.join(' + ')}, ${mib(size)} in node_modules`);
});

for (const runtime of RUNTIMES) {
  test(`the npm-installed package under ${runtime.label}: require, import, one message over loopback`, { timeout: TIMEOUT, skip: whyNot || (runtime.bin ? false : runtime.missing) }, async t => {
    const { dir } = await npmProject('npm');
    await useIn(dir, runtime, userEnv(`use-${runtime.label}`, [path.dirname(runtime.bin)]));
    note(t, `${runtime.label} (${runtime.version}): passed`);
  });
}

test('npm install --libc=musl picks the linux-x64-musl package, a shared object that needs only musl', { timeout: TIMEOUT, skip: whyNot || musl.skip }, async t => {
  const { dir, res } = await npmProject('npm-musl', ['--libc=musl']);
  assertQuiet('npm install --libc=musl', res);
  const modules = fs.readdirSync(path.join(dir, 'node_modules')).filter(f => !f.startsWith('.')).sort();
  assert.deepEqual(modules, ['smtp-server-rs', `smtp-server-rs-${MUSL}`]);
  const binary = path.join(dir, 'node_modules', `smtp-server-rs-${MUSL}`, `smtp-server-rs.${MUSL}.node`);
  const head = fs.readFileSync(binary).subarray(0, 18);
  assert.equal(head.subarray(0, 4).toString('latin1'), '\x7fELF');
  assert.equal(head.readUInt16LE(16), 3, 'a shared object (ET_DYN)');
  const readelf = which('readelf');
  if (readelf) {
    const dyn = await run(readelf, ['-dW', binary]);
    const needed = [...dyn.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map(m => m[1]);
    assert.deepEqual(needed, ['libc.so'], 'musl libc only (musl loads "libc.so" as itself)');
    const versions = await run(readelf, ['-VW', binary]);
    assert.doesNotMatch(versions.stdout, /GLIBC_/, 'no glibc symbol versions');
    note(t, `linux-x64-musl binary: ${mib(fs.statSync(binary).size)}, needs ${needed.join(', ')}`);
  }
  note(t, `installed with --libc=musl: ${modules.join(' + ')}, ${mib(installedSize(dir))}`);
});

// pnpm and Yarn run under Node 20, each Bun installs for itself; the project is then used
// by the same runtime
const node20Runtime = RUNTIMES.find(r => r.label === 'Node 20');
const INSTALLERS = [
  { label: 'pnpm', bin: tool('pnpm'), runtime: node20Runtime, missing: 'pnpm is not installed: npm install --prefix .tmp/tools pnpm@10.34.9' },
  { label: 'yarn', bin: tool('yarn'), runtime: node20Runtime, missing: 'Yarn is not installed: npm install --prefix .tmp/tools yarn@1.22.22' },
  ...RUNTIMES.filter(r => r.isBun).map(r => ({ label: r.label, bin: r.bin, runtime: r, missing: r.missing }))
];
for (const installer of INSTALLERS) {
  test(`${installer.label} add smtp-server-rs: no warning, no script; require and import under ${installer.runtime.label}`, { timeout: TIMEOUT, skip: whyNot || (installer.bin ? false : installer.missing) }, async t => {
    await setup();
    const dir = project(installer.label);
    const env = userEnv(installer.label, installer.runtime.isBun ? [path.dirname(installer.bin)] : []);
    const res = await run(installer.bin, ['add', 'smtp-server-rs'], { cwd: dir, env, timeout: 120000 });
    assertQuiet(`${installer.label} add`, res);
    const size = installedSize(dir);
    assert.ok(size <= MAX_INSTALLED, `installed size ${mib(size)} is at most 10 MB`);
    await useIn(dir, installer.runtime, env);
    // pnpm keeps the platform package out of sight, in node_modules/.pnpm
    const modules = fs.readdirSync(path.join(dir, 'node_modules')).filter(f => !f.startsWith('.')).sort();
    note(t, `${installer.label} ${version(installer.bin)}: installed ${modules.join(' + ')}, ${mib(size)}; passed`);
  });
}

const cargo = which('cargo');
test('without the prebuilt package, `npx smtp-server-rs build` compiles the addon and leaves only the .node file', { timeout: TIMEOUT, skip: whyNot || (cargo ? false : 'cargo is not installed') }, async t => {
  const { dir, res } = await npmProject('npm-source-build', ['--omit=optional']);
  assertQuiet('npm install --omit=optional', res);
  const pkgDir = installedPackage(dir);
  const before = filesUnder(pkgDir).sort();
  const noRust = userEnv('source-build');
  const missing = await run(node20, ['use-cjs.cjs'], { cwd: dir, env: noRust });
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /"npx smtp-server-rs build"/, 'the loader names the command');

  // the user installs Rust: cargo on the PATH, its toolchains where rustup put them
  const scratch = path.join(tmp, 'build-tmp');
  fs.mkdirSync(scratch);
  const withRust = {
    ...noRust,
    PATH: `${path.dirname(cargo)}${path.delimiter}${noRust.PATH}`,
    CARGO_HOME: process.env.CARGO_HOME || path.join(os.homedir(), '.cargo'),
    RUSTUP_HOME: process.env.RUSTUP_HOME || path.join(os.homedir(), '.rustup'),
    CARGO_BUILD_JOBS: process.env.CARGO_BUILD_JOBS || '2',
    TMPDIR: scratch
  };
  const started = Date.now();
  // a debug build: the same steps as the default release build, in less time
  const build = await run('npx', ['smtp-server-rs', 'build', '--debug'], { cwd: dir, env: withRust, timeout: TIMEOUT });
  assert.equal(build.code, 0, `smtp-server-rs build failed:\n${build.stdout}${build.stderr}`);
  const after = filesUnder(pkgDir).sort();
  assert.deepEqual(after.filter(f => !before.includes(f)), [`smtp-server-rs.${host}.node`], 'one new file in the package');
  assert.deepEqual(before.filter(f => !after.includes(f)), []);
  assert.deepEqual(fs.readdirSync(scratch), [], "Cargo's temporary target directory is gone");

  const use = await run(node20, ['use-cjs.cjs'], { cwd: dir, env: noRust });
  assert.equal(use.code, 0, use.stderr);
  const out = lastJson(use.stdout);
  checkRoundtrip(out);
  assert.deepEqual(out.natives, [`node_modules/smtp-server-rs/smtp-server-rs.${host}.node`]);
  note(t, `npx smtp-server-rs build --debug: ${((Date.now() - started) / 1000).toFixed(0)} s, package ${mib(installedSize(dir))}`);
});
