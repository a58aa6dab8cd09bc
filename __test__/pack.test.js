'use strict';
// The package as users get it: `npm pack` of the main package and of this platform's
// prebuilt package (npm/<platform>/ with the local build inside), installed offline into an
// empty project, then used there under Node and Bun with require and import, the deep
// imports and the types. Also: what the tarball holds (and that it has no install
// script), what a user meets when the prebuilt package is left out (the loader's error and
// `npx smtp-server-rs build`), and that all the versions agree. __test__/registry.test.js
// goes further: a release into a local registry, then npm, pnpm, Yarn and Bun installs.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { platformTriple, TARGETS } = require('../scripts/platform.js');
const { run, cleanEnv, note, once, lastJson, writeUseScripts, checkRoundtrip } = require('./helpers/installed-app.js');

const root = path.join(__dirname, '..');
const triple = platformTriple();
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const isBun = Boolean(process.versions.bun);
const repoBun = path.join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'bun.cmd' : 'bun');
const nodeBin = isBun ? 'node' : process.execPath;
const bunBin = isBun ? process.execPath : fs.existsSync(repoBun) ? repoBun : null;
const localBinary = path.join(root, `smtp-server-rs.${triple}.node`);
const TIMEOUT = 120000;

let tmp = null;
process.on('exit', () => {
  if (tmp && !process.env.SMTP_RS_KEEP_PACK) {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

// A cargo that always fails: a fallback to a source build shows up at once instead of
// spending minutes compiling
function fakeCargoDir(dir) {
  const bin = path.join(dir, 'fakebin');
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(path.join(bin, 'cargo'), '#!/bin/sh\necho "fake cargo: no Rust here" >&2\nexit 1\n', { mode: 0o755 });
  return bin;
}

const setup = once(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smtp-rs-pack-'));
  const fakebin = fakeCargoDir(tmp);
  const env = cleanEnv({ PATH: `${fakebin}${path.delimiter}${process.env.PATH}` });

  // the main package
  const packed = await run('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: root, env: cleanEnv() });
  assert.equal(packed.code, 0, `npm pack failed: ${packed.stderr}`);
  const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')))[0];
  const mainTgz = path.join(tmp, info.filename);

  // this platform's prebuilt package, with the local build as its binary
  const platDir = path.join(tmp, 'platform');
  fs.mkdirSync(platDir);
  for (const f of ['package.json', 'README.md']) {
    fs.copyFileSync(path.join(root, 'npm', triple, f), path.join(platDir, f));
  }
  const platBinary = path.join(platDir, `smtp-server-rs.${triple}.node`);
  assert.ok(fs.existsSync(localBinary), `build the addon first (node scripts/build.js): ${localBinary} is missing`);
  fs.copyFileSync(localBinary, platBinary);
  await run('strip', ['--strip-unneeded', platBinary]); // smaller tarball; fine when strip is missing
  const platPacked = await run('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: platDir, env: cleanEnv() });
  assert.equal(platPacked.code, 0, `npm pack (platform) failed: ${platPacked.stderr}`);
  const platInfo = JSON.parse(platPacked.stdout.slice(platPacked.stdout.indexOf('[')))[0];
  const platTgz = path.join(tmp, platInfo.filename);

  // an empty project that installs both tarballs, offline: the main package has no
  // dependencies, and the other platforms' optional packages are skipped
  const app = path.join(tmp, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'pack-test-app', version: '1.0.0', private: true }, null, 2));
  const started = Date.now();
  const install = await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', mainTgz, platTgz], { cwd: app, env, timeout: 90000 });
  const installMs = Date.now() - started;
  assert.equal(install.code, 0, `npm install of the tarballs failed:\n${install.stdout}\n${install.stderr}`);

  writeUseScripts(app);
  return { info, platInfo, mainTgz, platTgz, app, env, installMs };
});

test('the tarball holds the package and nothing of the development tree; its size', { timeout: TIMEOUT }, async t => {
  const { info, platInfo } = await setup();
  const files = info.files.map(f => f.path);
  for (const f of ['package.json', 'README.md', 'LICENSE', 'index.js', 'index.mjs', 'index.d.ts', 'index.d.mts', 'binding.js',
    'lib/smtp-server.js', 'lib/smtp-server.d.ts', 'lib/tls-options.js', 'lib/tls-options.d.ts', 'lib/types.js', 'lib/types.d.ts',
    'scripts/build.js', 'scripts/platform.js', 'Cargo.toml', 'Cargo.lock', 'build.rs', 'src/lib.rs']) {
    assert.ok(files.includes(f), `${f} is in the tarball`);
  }
  for (const f of Object.values(pkg.bin || {})) {
    if (fs.existsSync(path.join(root, f))) {
      assert.ok(files.includes(f.replace(/^\.\//, '')), `the bin ${f} is in the tarball`);
    }
  }
  const unwanted = /^(__test__|test|fuzz|docs|examples|target|node_modules|npm|\.tmp|\.ci|\.github|mail)\/|\.node$|\.tgz$|\.log$|^bench\/(?!loadgen\.rs$)|^scripts\/(test|release|node-smoke)\.js$|(^|\/)\./;
  const bad = files.filter(f => unwanted.test(f));
  assert.deepEqual(bad, [], 'no development files in the tarball');
  for (const script of ['preinstall', 'install', 'postinstall']) {
    assert.equal(pkg.scripts[script], undefined, `no ${script} script: package managers block or warn about them`);
  }
  assert.ok(info.size < 512 * 1024, `packed size ${info.size} is under 512 KiB`);
  assert.ok(info.unpackedSize < 2 * 1024 * 1024, `unpacked size ${info.unpackedSize} is under 2 MiB`);
  assert.deepEqual(platInfo.files.map(f => f.path).sort(), ['README.md', 'package.json', `smtp-server-rs.${triple}.node`]);
  note(t, `smtp-server-rs tarball: ${files.length} files, ${(info.size / 1024).toFixed(1)} KiB packed, ${(info.unpackedSize / 1024).toFixed(1)} KiB unpacked`);
  note(t, `smtp-server-rs-${triple} tarball: ${(platInfo.size / 1048576).toFixed(2)} MiB packed`);
});

test('installed from the tarballs, the prebuilt package is used (no source build)', { timeout: TIMEOUT }, async t => {
  const { app, installMs } = await setup();
  const installed = path.join(app, 'node_modules', 'smtp-server-rs');
  assert.ok(fs.existsSync(path.join(app, 'node_modules', `smtp-server-rs-${triple}`, `smtp-server-rs.${triple}.node`)));
  assert.ok(!fs.existsSync(path.join(installed, 'target')), 'no cargo build ran');
  assert.ok(!fs.readdirSync(installed).some(f => f.endsWith('.node')), 'no binary in the main package');
  for (const [name, rel] of Object.entries(pkg.bin || {})) {
    if (fs.existsSync(path.join(root, rel))) {
      assert.ok(fs.existsSync(path.join(app, 'node_modules', '.bin', name)), `the ${name} command is linked`);
    }
  }
  note(t, `npm install --offline of the two tarballs: ${installMs} ms`);
});

test('require() in the installed project under Node: server, deep imports, default export', { timeout: TIMEOUT }, async () => {
  const { app } = await setup();
  const res = await run(nodeBin, ['use-cjs.cjs'], { cwd: app });
  assert.equal(res.code, 0, res.stderr);
  const out = lastJson(res.stdout);
  checkRoundtrip(out);
  assert.deepEqual(out.natives, [`node_modules/smtp-server-rs-${triple}/smtp-server-rs.${triple}.node`], 'the binary comes from the platform package');
});

test('import in the installed project under Node: named, default and deep imports', { timeout: TIMEOUT }, async () => {
  const { app } = await setup();
  const res = await run(nodeBin, ['use-esm.mjs'], { cwd: app });
  assert.equal(res.code, 0, res.stderr);
  const out = lastJson(res.stdout);
  checkRoundtrip(out);
  assert.equal(out.sameAsRequire, true, 'import and require share one module');
});

test('require() and import in the installed project under Bun', { timeout: TIMEOUT, skip: bunBin ? false : 'bun is not installed' }, async () => {
  const { app } = await setup();
  for (const script of ['use-cjs.cjs', 'use-esm.mjs']) {
    const res = await run(bunBin, [script], { cwd: app });
    assert.equal(res.code, 0, `${script}: ${res.stderr}`);
    checkRoundtrip(lastJson(res.stdout));
  }
});

const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
test('types resolve through the exports map (ESM and CommonJS, node16 resolution)', { timeout: TIMEOUT, skip: fs.existsSync(tsc) ? false : 'typescript is not installed' }, async () => {
  const { app } = await setup();
  const dir = path.join(app, 'types');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      module: 'node16', moduleResolution: 'node16', target: 'es2022', strict: true, noEmit: true, skipLibCheck: true,
      typeRoots: [path.join(root, 'node_modules', '@types')], types: ['node']
    },
    files: ['esm.mts', 'cjs.cts']
  }));
  fs.writeFileSync(path.join(dir, 'esm.mts'), `import { SMTPServer } from 'smtp-server-rs';
import smtpServer from 'smtp-server-rs';
import { SMTPServer as DeepServer } from 'smtp-server-rs/lib/smtp-server';
import deepDefault from 'smtp-server-rs/lib/smtp-server.js';
import tlsOptions from 'smtp-server-rs/lib/tls-options';
import type { SMTPServerSession } from 'smtp-server-rs/lib/types';
const a: SMTPServer = new smtpServer.SMTPServer({ authOptional: true });
const b: SMTPServer = new DeepServer({});
const c: SMTPServer = new deepDefault.SMTPServer({});
const v: string | undefined = tlsOptions({ minVersion: 'TLSv1.2' as const }).minVersion;
const cert: string = tlsOptions.DEFAULT_CERT;
let session: SMTPServerSession | undefined;
export { a, b, c, v, cert, session };
`);
  fs.writeFileSync(path.join(dir, 'cjs.cts'), `import smtp = require('smtp-server-rs');
import deep = require('smtp-server-rs/lib/smtp-server');
import tlsOptions = require('smtp-server-rs/lib/tls-options');
const server: smtp.SMTPServer = new smtp.SMTPServer({});
const other: smtp.SMTPServer = new deep.SMTPServer({});
const opts = tlsOptions();
export = { server, other, opts };
`);
  const res = await run(process.execPath.includes('bun') ? 'node' : process.execPath, [tsc, '-p', dir], { cwd: dir });
  assert.equal(res.code, 0, `tsc:\n${res.stdout}${res.stderr}`);
});

test('without the prebuilt package: no script runs, the loader names the build command, which needs cargo', { timeout: TIMEOUT }, async () => {
  const { mainTgz, env } = await setup();
  const app = path.join(tmp, 'app-no-optional');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'pack-test-app2', version: '1.0.0', private: true }));
  const res = await run('npm', ['install', '--offline', '--omit=optional', '--no-audit', '--no-fund', mainTgz], { cwd: app, env, timeout: 90000 });
  assert.equal(res.code, 0, `the install itself needs nothing to build:\n${res.stdout}${res.stderr}`);
  assert.doesNotMatch(res.stdout + res.stderr, /cargo|building/i);
  writeUseScripts(app);
  const use = await run(nodeBin, ['use-cjs.cjs'], { cwd: app, env });
  assert.notEqual(use.code, 0);
  assert.match(use.stderr, /ERR_SMTP_SERVER_RS_NO_BINARY/);
  assert.match(use.stderr, /"npx smtp-server-rs build"/);
  // the command the message names, with a cargo that fails (as when Rust is missing)
  const build = await run('npx', ['--no-install', 'smtp-server-rs', 'build'], { cwd: app, env });
  assert.equal(build.code, 1, build.stdout + build.stderr);
  assert.match(build.stderr, /cargo was not found\. Building the addon for \S+ needs Rust/);
  const installed = path.join(app, 'node_modules', 'smtp-server-rs');
  assert.ok(!fs.readdirSync(installed).some(f => f.endsWith('.node') || f === 'target'), 'nothing was left in the package');
});

test('the loader says what to do when no binary fits', { timeout: TIMEOUT }, async () => {
  await setup();
  const dir = path.join(tmp, 'no-binary');
  fs.mkdirSync(path.join(dir, 'scripts'), { recursive: true });
  fs.copyFileSync(path.join(root, 'binding.js'), path.join(dir, 'binding.js'));
  fs.copyFileSync(path.join(root, 'scripts', 'platform.js'), path.join(dir, 'scripts', 'platform.js'));
  fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  const code = `try { require(${JSON.stringify(path.join(dir, 'binding.js'))}); console.log(JSON.stringify({ loaded: true })); }
catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })); }`;
  for (const bin of [nodeBin, bunBin].filter(Boolean)) {
    const res = await run(bin, ['-e', code], { cwd: dir, env: cleanEnv({ SMTP_SERVER_RS_BINARY: '' }) });
    const out = lastJson(res.stdout);
    assert.ok(out, `${bin}: ${res.stdout}${res.stderr}`);
    assert.equal(out.code, 'ERR_SMTP_SERVER_RS_NO_BINARY');
    assert.match(out.message, new RegExp(`no prebuilt binary for ${triple}`));
    assert.match(out.message, new RegExp(`smtp-server-rs-${triple} is not installed`));
    assert.match(out.message, /install Rust \(https:\/\/rustup\.rs\) and a C compiler, then run\n\s+"npx smtp-server-rs build"/);
  }
});

test('one version everywhere; a per-platform package for each target, built by the release workflow', { timeout: TIMEOUT }, async () => {
  const res = await run(nodeBin, [path.join(root, 'scripts', 'release.js'), '--check'], { cwd: root });
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.deepEqual(Object.keys(pkg.optionalDependencies).sort(), Object.keys(TARGETS).map(t => `smtp-server-rs-${t}`).sort());
  for (const [name, t] of Object.entries(TARGETS)) {
    const sub = JSON.parse(fs.readFileSync(path.join(root, 'npm', name, 'package.json'), 'utf8'));
    assert.equal(sub.name, `smtp-server-rs-${name}`);
    assert.equal(sub.version, pkg.version);
    assert.equal(sub.main, `smtp-server-rs.${name}.node`);
    assert.deepEqual(sub.files, [sub.main]);
    assert.deepEqual(sub.os, [t.os]);
    assert.deepEqual(sub.cpu, [t.cpu]);
    assert.deepEqual(sub.libc, t.libc ? [t.libc] : undefined);
    assert.ok(fs.existsSync(path.join(root, 'npm', name, 'README.md')));
  }
  assert.deepEqual(pkg.napi.targets.slice().sort(), Object.values(TARGETS).map(t => t.rust).sort());
  // the release workflow builds each of them once
  const workflow = fs.readFileSync(path.join(root, '.github', 'workflows', 'release.yml'), 'utf8');
  const built = [...workflow.matchAll(/^\s+build: .*--target (\S+)/gm)].map(m => m[1]);
  assert.deepEqual(built.slice().sort(), pkg.napi.targets.slice().sort(), 'release.yml builds every napi target');
});
