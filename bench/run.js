'use strict';
// The benchmark: smtp-server and smtp-server-rs, on Node and on Bun, in one run, each
// server a fresh process per measurement, the scenarios interleaved, medians of several
// repetitions, ratios against smtp-server on the same runtime.
//
//   npm run bench                      full run (a few minutes)
//   npm run bench -- --quick           short run (CI)
//   npm run bench -- --write-readme    also write the table and chart into README.md
//   npm run bench -- --only=src50,src1 only these scenarios
//
// Two clients: the load generator bench/loadgen.rs (cargo build --release --example loadgen)
// and Postfix's smtp-source, a C MTA client (Debian package `postfix`; or unpack it with
// `apt-get download postfix && dpkg -x postfix_*.deb DIR` and set POSTFIX_ROOT=DIR). With
// smtp-source, Postfix's smtp-sink is the C reference row; those rows are skipped when
// Postfix is absent.
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
// smtp-sink takes its port on the command line: a free one, then wait until it listens
const { freePort, waitForPort } = require('../__test__/helpers/process.js');

const root = path.join(__dirname, '..');
const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const reps = quick ? 1 : 3;
const loadgen = path.join(root, 'target', 'release', 'examples', 'loadgen');
const bun = path.join(root, 'node_modules', '.bin', 'bun');
const hasBun = fs.existsSync(bun);
// Postfix installed, or (POSTFIX_ROOT) its Debian package unpacked with `dpkg -x`, since
// the package cannot be installed next to Exim, which the CHUNKING tests use
const postfixRoot = process.env.POSTFIX_ROOT || '/';
const postfixEnv = process.env.POSTFIX_ROOT ? { ...process.env, LD_LIBRARY_PATH: path.join(postfixRoot, 'usr', 'lib', 'postfix') } : process.env;
const smtpSource = [path.join(postfixRoot, 'usr', 'sbin', 'smtp-source'), '/usr/bin/smtp-source'].find(p => fs.existsSync(p));
const smtpSink = [path.join(postfixRoot, 'usr', 'sbin', 'smtp-sink'), '/usr/bin/smtp-sink'].find(p => fs.existsSync(p));
const onlyArg = process.argv.find(a => a.startsWith('--only='));
const only = onlyArg ? new Set(onlyArg.slice(7).split(',')) : null;

const MiB = 1024 * 1024;
const scenarios = [
  { id: 'small1', title: '1 KiB, 1 connection', args: ['--conns', '1', '--messages', quick ? '500' : '3000', '--size', '1024'], unit: 'msg/s' },
  { id: 'small50', title: '1 KiB, 50 connections', args: ['--conns', '50', '--messages', quick ? '3000' : '20000', '--size', '1024'], unit: 'msg/s' },
  { id: 'perconn', title: '1 message per connection, 200 concurrent', args: ['--conns', '200', '--messages', quick ? '600' : '3000', '--size', '1024', '--per-conn', '1'], unit: 'conn/s' },
  { id: 'big1', title: '20 MiB, 1 connection', args: ['--conns', '1', '--messages', quick ? '2' : '20', '--size', String(20 * MiB)], unit: 'MB/s' },
  { id: 'big4', title: '20 MiB, 4 connections', args: ['--conns', '4', '--messages', quick ? '4' : '24', '--size', String(20 * MiB)], unit: 'MB/s' },
  { id: 'latency', title: 'latency at light load (1 connection)', args: ['--conns', '1', '--messages', quick ? '300' : '3000', '--size', '1024', '--warmup', quick ? '2000' : '10000'], unit: 'µs' },
  { id: 'tls50', title: '1 KiB, 50 connections, STARTTLS', args: ['--conns', '50', '--messages', quick ? '2000' : '10000', '--size', '1024', '--starttls'], unit: 'msg/s', env: { TLS: '1' } },
  { id: 'ceiling', title: 'load generator ceiling: 1 KiB in bursts of 50 transactions, 20 connections, no handlers', args: ['--conns', '20', '--messages', quick ? '50000' : '300000', '--size', '1024', '--burst', '50'], unit: 'msg/s', only: ['rs-none'] },
  { id: 'idle', title: 'idle connections after EHLO', args: ['--idle', quick ? '1000' : '10000', '--hold-ms', '2500'], unit: 'KiB/conn' },
  // the same 1 KiB messages from Postfix's smtp-source: 50 sessions, then one session
  // waiting for every reply
  { id: 'src50', title: 'smtp-source: 1 KiB, 50 sessions', client: 'smtp-source', args: ['-d', '-s', '50', '-m', quick ? '3000' : '20000'], unit: 'msg/s' },
  { id: 'src1', title: 'smtp-source: 1 KiB, 1 session', client: 'smtp-source', args: ['-d', '-s', '1', '-m', quick ? '1000' : '5000'], unit: 'msg/s' }
].filter(s => (!only || only.has(s.id)) && (s.client !== 'smtp-source' || smtpSource));

const servers = [
  { id: 'ref-node', name: 'smtp-server, Node', impl: 'ref', runtime: 'node', variant: 'sink' },
  { id: 'rs-node', name: 'smtp-server-rs, Node', impl: 'rs', runtime: 'node', variant: 'sink', baseline: 'ref-node' },
  { id: 'rs-node-h', name: 'smtp-server-rs, Node, +onMailFrom/onRcptTo', impl: 'rs', runtime: 'node', variant: 'handlers', baseline: 'ref-node-h' },
  { id: 'ref-node-h', name: 'smtp-server, Node, +onMailFrom/onRcptTo', impl: 'ref', runtime: 'node', variant: 'handlers' },
  { id: 'rs-none', name: 'smtp-server-rs, Node, no handlers', impl: 'rs', runtime: 'node', variant: 'none', baseline: 'ref-node' }
];
if (smtpSink) {
  servers.push({ id: 'c-sink', name: 'Postfix smtp-sink (C)', impl: 'c', variant: 'none', baseline: 'ref-node', clients: ['smtp-source'] });
}
if (hasBun) {
  servers.push(
    { id: 'ref-bun', name: 'smtp-server, Bun', impl: 'ref', runtime: 'bun', variant: 'sink' },
    { id: 'rs-bun', name: 'smtp-server-rs, Bun', impl: 'rs', runtime: 'bun', variant: 'sink', baseline: 'ref-bun' },
    { id: 'ref-bun-h', name: 'smtp-server, Bun, +onMailFrom/onRcptTo', impl: 'ref', runtime: 'bun', variant: 'handlers' },
    { id: 'rs-bun-h', name: 'smtp-server-rs, Bun, +onMailFrom/onRcptTo', impl: 'rs', runtime: 'bun', variant: 'handlers', baseline: 'ref-bun-h' },
    { id: 'rs-bun-none', name: 'smtp-server-rs, Bun, no handlers', impl: 'rs', runtime: 'bun', variant: 'none', baseline: 'ref-bun', clients: ['smtp-source'] }
  );
}

/** What each handler costs: server CPU per message over the server with fewer handlers, same runtime. */
const hookCosts = [
  { runtime: 'Node', onData: ['rs-node', 'rs-none'], hooks: ['rs-node-h', 'rs-node'] },
  { runtime: 'Bun', onData: ['rs-bun', 'rs-bun-none'], hooks: ['rs-bun-h', 'rs-bun'] }
];

/** Postfix's smtp-sink, the C reference server (it drops root privileges to nobody). */
async function startSink() {
  const port = await freePort();
  const child = spawn(smtpSink, [...(process.getuid && process.getuid() === 0 ? ['-u', 'nobody'] : []), `127.0.0.1:${port}`, '1024'], { stdio: 'ignore', env: postfixEnv });
  child.on('error', () => {});
  await waitForPort(port);
  return { child, port };
}

function ticksPerSecond() {
  const r = spawnSync('getconf', ['CLK_TCK']);
  return Number(String(r.stdout).trim()) || 100;
}
const HZ = ticksPerSecond();

function cpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / HZ;
  } catch {
    return NaN;
  }
}

function rssKiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

function startServer(server, env = {}) {
  return new Promise((resolve, reject) => {
    const cmd = server.runtime === 'bun' ? bun : process.execPath;
    const child = spawn(cmd, [path.join(__dirname, 'server.js')], {
      cwd: root,
      env: { ...process.env, ...env, IMPL: server.impl, VARIANT: server.variant, PORT: '0' },
      stdio: ['ignore', 'pipe', 'inherit']
    });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${server.name} did not start`)), 15000);
    child.stdout.on('data', d => {
      out += d;
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.on('exit', code => reject(new Error(`${server.name} exited (${code})`)));
  });
}

function runLoadgen(port, scenarioArgs, onStarted) {
  return new Promise(resolve => {
    const child = spawn(loadgen, ['--port', String(port), ...scenarioArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', d => {
      out += d;
      if (onStarted && out.includes('\n')) {
        onStarted();
        onStarted = null;
      }
    });
    child.stderr.on('data', d => (err += d));
    const start = process.hrtime.bigint();
    child.on('exit', () => {
      const line = out.split('\n').find(l => l.startsWith('{'));
      let result = null;
      try {
        result = JSON.parse(line);
      } catch {
        result = { error: err.slice(0, 300) };
      }
      result.wall = Number(process.hrtime.bigint() - start) / 1e9;
      resolve(result);
    });
  });
}

/** Postfix's smtp-source sending 1 KiB messages; its rate is messages over its run time. */
function runSmtpSource(port, scenarioArgs) {
  return new Promise(resolve => {
    const messages = Number(scenarioArgs[scenarioArgs.indexOf('-m') + 1]);
    const args = [...scenarioArgs, '-l', '1024', '-f', 'a@example.com', '-t', 'b@example.com', '-M', 'localhost', `inet:127.0.0.1:${port}`];
    const child = spawn(smtpSource, args, { stdio: ['ignore', 'ignore', 'pipe'], env: postfixEnv });
    let err = '';
    child.stderr.on('data', d => (err += d));
    const start = process.hrtime.bigint();
    child.on('exit', code => {
      const wall = Number(process.hrtime.bigint() - start) / 1e9;
      resolve(code === 0 ? { messages, msgs_per_sec: messages / wall, wall } : { error: err.trim().slice(0, 300) || `smtp-source exited (${code})`, wall });
    });
  });
}

async function measure(server, scenario) {
  const { child, port } = server.impl === 'c' ? await startSink() : await startServer(server, scenario.env);
  await new Promise(r => setTimeout(r, 300));
  const rss0 = rssKiB(child.pid);
  const cpu0 = cpuSeconds(child.pid);
  let rssHeld = NaN;
  const result =
    scenario.client === 'smtp-source'
      ? await runSmtpSource(port, scenario.args)
      : await runLoadgen(port, scenario.args, () => {
          // idle mode prints once every connection is open; sample while they are held
          setTimeout(() => (rssHeld = rssKiB(child.pid)), 1500);
        });
  const cpu = cpuSeconds(child.pid) - cpu0;
  child.kill('SIGKILL');
  await new Promise(r => child.once('exit', r));
  const r = { cpu, ...result };
  if (scenario.id === 'idle') {
    r.value = result.idle ? (rssHeld - rss0) / result.idle : NaN;
  } else if (scenario.id === 'latency') {
    r.value = result.p99_us;
    r.p50 = result.p50_us;
  } else if (scenario.unit === 'MB/s') {
    r.value = result.mb_per_sec;
  } else {
    r.value = result.msgs_per_sec;
  }
  if (result.messages) {
    // both CPU times cover the untimed warm-up messages too
    const warmup = argValue(scenario, '--warmup');
    r.loadgenPer = Number.isFinite(result.loadgen_cpu) && scenario.unit !== 'MB/s' ? (result.loadgen_cpu / (result.messages + warmup)) * 1000 : NaN;
    r.cpuPer = scenario.unit === 'MB/s' ? cpu / ((result.messages * argValue(scenario, '--size')) / 1e9) : (cpu / (result.messages + warmup)) * 1000;
  }
  return r;
}

/** The number a scenario passes to the load generator for `flag`; 0 without it. */
function argValue(scenario, flag) {
  const i = scenario.args.indexOf(flag);
  return i >= 0 ? Number(scenario.args[i + 1]) : 0;
}

function median(values) {
  const v = values.filter(x => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) {
    return NaN;
  }
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}

function fmt(x, digits = 0) {
  if (!Number.isFinite(x)) {
    return '–';
  }
  return x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

async function main() {
  // always measure the release build of the addon
  const addon = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.js')], { cwd: root, stdio: 'inherit' });
  if (addon.status !== 0) {
    process.exit(1);
  }
  if (!fs.existsSync(loadgen) && scenarios.some(s => s.client !== 'smtp-source')) {
    const b = spawnSync('cargo', ['build', '--release', '--example', 'loadgen', '-j', '2'], { cwd: root, stdio: 'inherit' });
    if (b.status !== 0) {
      process.exit(1);
    }
  }
  spawnSync('sh', ['-c', 'ulimit -n 65536'], { stdio: 'ignore' });
  const results = {};
  for (let rep = 0; rep < reps; rep++) {
    for (const scenario of scenarios) {
      for (const server of servers) {
        if (
          (scenario.id === 'idle' && server.variant === 'handlers') ||
          (scenario.only && !scenario.only.includes(server.id)) ||
          (server.clients && !server.clients.includes(scenario.client))
        ) {
          continue;
        }
        process.stderr.write(`rep ${rep + 1}/${reps} ${scenario.id} ${server.id} ... `);
        let r;
        try {
          r = await measure(server, scenario);
        } catch (err) {
          r = { error: err.message, value: NaN };
        }
        process.stderr.write(`${fmt(r.value, 1)}${r.error ? ' ' + r.error : ''}\n`);
        const key = `${scenario.id}/${server.id}`;
        (results[key] = results[key] || []).push(r);
      }
    }
  }
  const rows = [];
  rows.push(`| Scenario | Server | Result | CPU | Load generator CPU | vs smtp-server (same runtime) |`);
  rows.push(`|---|---|---|---|---|---|`);
  const chart = [];
  for (const scenario of scenarios) {
    for (const server of servers) {
      const list = results[`${scenario.id}/${server.id}`];
      if (!list) {
        continue;
      }
      const value = median(list.map(r => r.value));
      const cpuPer = median(list.map(r => r.cpuPer));
      let ratio = '';
      const baseId = server.baseline;
      if (baseId && results[`${scenario.id}/${baseId}`]) {
        // ratios from the same repetition, then the median of those
        const base = results[`${scenario.id}/${baseId}`];
        const valueRatios = list.map((r, i) => r.value / (base[i] ? base[i].value : NaN));
        const cpuRatios = list.map((r, i) => r.cpuPer / (base[i] ? base[i].cpuPer : NaN));
        ratio = `${fmt(median(valueRatios), 2)}× ${scenario.id === 'latency' || scenario.id === 'idle' ? '(lower is better)' : ''}`;
        if (Number.isFinite(median(cpuRatios))) {
          ratio += `, CPU ${fmt(median(cpuRatios), 2)}×`;
        }
        chart.push({ scenario: scenario.title, server: server.name, ratio: median(valueRatios), lowerBetter: scenario.id === 'latency' || scenario.id === 'idle' });
      }
      let result = `${fmt(value, scenario.unit === 'MB/s' || scenario.unit === 'KiB/conn' ? 1 : 0)} ${scenario.unit}`;
      if (scenario.id === 'latency') {
        result = `p50 ${fmt(median(list.map(r => r.p50)))} µs, p99 ${fmt(value)} µs`;
      }
      const cpuText = Number.isFinite(cpuPer) ? (scenario.unit === 'MB/s' ? `${fmt(cpuPer, 2)} s/GB` : `${fmt(cpuPer, 3)} s/1000 msgs`) : '';
      const loadgenPer = median(list.map(r => r.loadgenPer));
      const loadgenText = Number.isFinite(loadgenPer) ? `${fmt(loadgenPer, 3)} s/1000 msgs` : '';
      rows.push(`| ${scenario.title} | ${server.name} | ${result} | ${cpuText} | ${loadgenText} | ${ratio} |`);
    }
  }
  rows.push(...hookCostLines(results));
  const cpus = os.cpus();
  const header =
    `Measured with \`npm run bench${quick ? ' -- --quick' : ''}\` on ${cpus.length} × ${cpus[0] ? cpus[0].model : 'CPU'}, ` +
    `${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}${hasBun ? ', Bun ' + String(spawnSync(bun, ['--version']).stdout).trim() : ''}; ` +
    `medians of ${reps} repetition${reps > 1 ? 's' : ''}; CPU is the server process's user+system time; ` +
    `the load generator runs on the same machine.`;
  const table = header + '\n\n' + rows.join('\n') + '\n';
  console.log(table);
  fs.writeFileSync(path.join(__dirname, 'results.json'), JSON.stringify(results, null, 2));
  fs.writeFileSync(path.join(__dirname, 'chart.svg'), svgChart(chart));
  if (args.has('--write-readme')) {
    const readme = path.join(root, 'README.md');
    const text = fs.readFileSync(readme, 'utf8');
    const start = '<!-- bench:start -->';
    const end = '<!-- bench:end -->';
    const i = text.indexOf(start);
    const j = text.indexOf(end);
    if (i >= 0 && j > i) {
      fs.writeFileSync(readme, text.slice(0, i + start.length) + '\n' + table + '\n![benchmark chart](bench/chart.svg)\n' + text.slice(j));
    }
  }
}

/**
 * The per-hook cost lines: for each smtp-source scenario and runtime, the server CPU per
 * message that onData adds over the server without handlers, and that each of onMailFrom
 * and onRcptTo adds over the sink onData server, differences taken within one repetition.
 */
function hookCostLines(results) {
  const lines = [];
  for (const scenario of scenarios.filter(s => s.client === 'smtp-source')) {
    for (const cost of hookCosts) {
      const diff = ([a, b], share) => {
        const x = results[`${scenario.id}/${a}`];
        const y = results[`${scenario.id}/${b}`];
        return x && y ? median(x.map((r, i) => (y[i] ? ((r.cpuPer - y[i].cpuPer) * 1000) / share : NaN))) : NaN;
      };
      const onData = diff(cost.onData, 1);
      const hook = diff(cost.hooks, 2);
      if (Number.isFinite(onData) || Number.isFinite(hook)) {
        lines.push(`\nPer-hook cost (${scenario.title}, ${cost.runtime}): onData ${fmt(onData, 1)} µs, onMailFrom/onRcptTo ${fmt(hook, 1)} µs each of server CPU per message.`);
      }
    }
  }
  return lines;
}

/** A horizontal bar chart of the ratios against smtp-server. */
function svgChart(items) {
  const rowH = 22;
  const width = 760;
  const labelW = 430;
  const maxRatio = Math.max(1, ...items.map(i => (i.lowerBetter ? 1 / i.ratio : i.ratio)).filter(Number.isFinite));
  const h = items.length * rowH + 40;
  const esc = s => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');
  let y = 30;
  let body = '';
  for (const item of items) {
    const shown = item.lowerBetter ? 1 / item.ratio : item.ratio;
    const w = Number.isFinite(shown) ? ((width - labelW - 60) * shown) / maxRatio : 0;
    body += `<text x="${labelW - 6}" y="${y + 14}" text-anchor="end" font-size="11">${esc(item.scenario)} — ${esc(item.server)}</text>`;
    body += `<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="14" fill="${shown >= 1 ? '#2f855a' : '#c05621'}"/>`;
    body += `<text x="${labelW + w + 4}" y="${y + 14}" font-size="11">${Number.isFinite(shown) ? shown.toFixed(2) + '×' : '–'}</text>`;
    y += rowH;
  }
  const one = labelW + (width - labelW - 60) / maxRatio;
  body += `<line x1="${one}" y1="24" x2="${one}" y2="${h - 8}" stroke="#555" stroke-dasharray="3,3"/>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${h}" font-family="sans-serif"><text x="10" y="18" font-size="13" font-weight="bold">smtp-server-rs against smtp-server on the same runtime (higher is better; 1× dashed)</text>${body}</svg>\n`;
}

main().catch(err => {
  console.error(err);
  process.exit(1);
});
