'use strict';
// Runs the whole suite: cargo tests, the JavaScript suite under Node's test runner, and
// the same suite under Bun, plus part of it under the other Node versions when present
// (scripts/node-smoke.js). Prints one closing line with the totals.
//   node scripts/test.js [--no-bun] [--no-cargo] [--no-node-smoke] [files...]
const { spawnSync } = require('node:child_process');
const { existsSync, readdirSync, readFileSync, mkdtempSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const args = process.argv.slice(2);
const flags = new Set(args.filter(a => a.startsWith('--')));
let files = args.filter(a => !a.startsWith('--'));
const explicitFiles = files.length > 0;
if (!files.length) {
  files = readdirSync(path.join(root, '__test__'))
    .filter(f => f.endsWith('.test.js'))
    .sort()
    .map(f => path.join('__test__', f));
}

let passed = 0;
let failed = 0;
let ok = true;

function run(title, cmd, cmdArgs, options = {}) {
  console.log(`\n=== ${title}: ${cmd} ${cmdArgs.join(' ')}`);
  const res = spawnSync(cmd, cmdArgs, { cwd: root, stdio: options.capture ? ['ignore', 'pipe', 'pipe'] : 'inherit', env: options.env || process.env, maxBuffer: 256 * 1024 * 1024 });
  if (options.capture) {
    process.stdout.write(res.stdout || '');
    process.stdout.write(res.stderr || '');
    res.text = String(res.stdout || '') + String(res.stderr || '');
  }
  if (res.status !== 0) {
    ok = false;
    console.log(`=== ${title} FAILED (exit ${res.status === null ? res.signal : res.status})`);
  }
  return res;
}

if (!flags.has('--no-cargo')) {
  const res = run('cargo test', 'cargo', ['test', '--lib', '-j', process.env.CARGO_BUILD_JOBS || '2'], { capture: true });
  const text = res.text || '';
  for (const m of text.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed/g)) {
    passed += Number(m[1]);
    failed += Number(m[2]);
  }
}

const tapDir = mkdtempSync(path.join(os.tmpdir(), 'smtp-rs-tap-'));
const tapFile = path.join(tapDir, 'node.tap');
run('node --test', process.execPath, [
  '--test',
  '--test-concurrency=2',
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=tap',
  `--test-reporter-destination=${tapFile}`,
  ...files
]);
if (existsSync(tapFile)) {
  const tap = readFileSync(tapFile, 'utf8');
  const p = /^# pass (\d+)/m.exec(tap);
  const f = /^# fail (\d+)/m.exec(tap);
  passed += p ? Number(p[1]) : 0;
  failed += f ? Number(f[1]) : 0;
}

const bun = path.join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'bun.cmd' : 'bun');
if (!flags.has('--no-bun')) {
  if (existsSync(bun)) {
    const res = run('bun test', bun, ['test', '--timeout', '60000', ...files.map(f => './' + f)], { capture: true });
    const text = res.text || '';
    const p = /^\s*(\d+) pass$/m.exec(text);
    const f = /^\s*(\d+) fail$/m.exec(text);
    passed += p ? Number(p[1]) : 0;
    failed += f ? Number(f[1]) : 0;
  } else {
    console.log('bun is not installed (npm install bun): skipping the Bun run');
  }
}

// STARTTLS under an older Bun (1.3.x), where smtp-server's own STARTTLS fails: run when
// .ci/run (or a developer) unpacked one into .tmp/bun-1.3
const bun13 = process.env.SMTP_RS_BUN13 || path.join(root, '.tmp', 'bun-1.3', 'package', 'bin', 'bun');
if (!flags.has('--no-bun') && existsSync(bun13)) {
  const res = run('bun 1.3 STARTTLS', bun13, ['test', '--timeout', '60000', './__test__/starttls.test.js', './__test__/sni.test.js'], { capture: true });
  const text = res.text || '';
  const p = /^\s*(\d+) pass$/m.exec(text);
  const f = /^\s*(\d+) fail$/m.exec(text);
  passed += p ? Number(p[1]) : 0;
  failed += f ? Number(f[1]) : 0;
}

// Bun 1.1, the oldest supported Bun: its `bun test` cannot load node:test files, so a
// plain script sends one message in cleartext and one after STARTTLS (one test)
const bun11 = path.join(root, '.tmp', 'bun-1.1', 'package', 'bin', 'bun');
if (!flags.has('--no-bun') && !explicitFiles && existsSync(bun11)) {
  const res = run('bun 1.1 smoke', bun11, ['__test__/smoke/runtime-smoke.js']);
  if (res.status === 0) {
    passed += 1;
  } else {
    failed += 1;
  }
}

// Node 18, 22 and 24: a part of the suite under each one that .ci/run (or a developer)
// unpacked into .tmp/node-<major>; not when only some files were asked for
const smokeMajors = ['18', '22', '24'].filter(m => existsSync(path.join(root, '.tmp', `node-${m}`, 'package', 'bin', 'node')));
if (!flags.has('--no-node-smoke') && !explicitFiles && smokeMajors.length) {
  const json = path.join(tapDir, 'node-smoke.json');
  run(`node ${smokeMajors.join('/')} smoke`, process.execPath, [path.join(__dirname, 'node-smoke.js'), '--majors', smokeMajors.join(','), '--json', json]);
  if (existsSync(json)) {
    const r = JSON.parse(readFileSync(json, 'utf8'));
    passed += r.passed;
    failed += r.failed;
  } else {
    failed += 1;
  }
}

console.log(`\ntotal: ${passed} passed, ${failed} failed`);
process.exit(ok && failed === 0 ? 0 : 1);
