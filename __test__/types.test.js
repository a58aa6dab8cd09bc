'use strict';

// The TypeScript declarations (index.d.ts), checked with `tsc --strict`:
//
// - __test__/types/corpus: code written the way applications use smtp-server. It must
//   compile against smtp-server's own declarations and against @types/smtp-server
//   (so the corpus is realistic), and, with the import switched to 'smtp-server-rs',
//   against this package (with and without esModuleInterop).
// - __test__/types/corpus-bundled: the same, for code that uses what only smtp-server
//   3.21's own declarations have (default import, LMTP results, DSN, events map...).
// - __test__/types/must-fail: wrong handler signatures and misuse. Each line marked
//   `// expect-error TSnnnn` must fail at that line with that code, and no other line
//   may fail. Against smtp-server's declarations the same lines must fail, except the
//   ones marked `stricter` (which must compile there).
// - __test__/types/esm: .mts/.cts files compiled with `module: nodenext`, resolving
//   'smtp-server-rs' through its package.json (`exports` when present).
//
// The switched copies are written to a temporary directory whose node_modules links
// 'smtp-server-rs' to this repository, so the package resolves by name, as it does for
// users. The three tsc runs start together and run in parallel.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { pathToFileURL } = require('node:url');

const ROOT = path.resolve(__dirname, '..');
const TYPES = path.join(__dirname, 'types');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const TYPE_ROOTS = path.join(ROOT, 'node_modules', '@types');
const TIMEOUT = 180 * 1000;

/** Node when it is on the PATH (also under Bun), else the current runtime (tsc runs under Bun too). */
function tscRuntime() {
  if (!process.versions.bun) {
    return process.execPath;
  }
  const probe = spawnSync('node', ['--version'], { stdio: 'ignore' });
  return probe.status === 0 ? 'node' : process.execPath;
}

function listDir(dir, pattern) {
  return fs
    .readdirSync(dir)
    .filter(name => pattern.test(name))
    .sort()
    .map(name => path.join(dir, name));
}

const corpus = listDir(path.join(TYPES, 'corpus'), /\.ts$/);
const corpusBundled = listDir(path.join(TYPES, 'corpus-bundled'), /\.ts$/);
const mustFail = listDir(path.join(TYPES, 'must-fail'), /\.ts$/);
const esm = listDir(path.join(TYPES, 'esm'), /\.[mc]ts$/);
const bunSmtp = listDir(path.join(TYPES, 'bun-smtp'), /\.ts$/);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'smtp-server-rs-types-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
fs.mkdirSync(path.join(work, 'node_modules'));
fs.symlinkSync(ROOT, path.join(work, 'node_modules', 'smtp-server-rs'), 'dir');

/** Writes a copy of `file` importing 'smtp-server-rs' instead of `from` ('smtp-server'); returns its path. */
function switched(file, group, from = 'smtp-server') {
  const source = fs.readFileSync(file, 'utf8');
  const replaced = source.replace(new RegExp(`(['"])${from}\\1`, 'g'), "'smtp-server-rs'");
  assert.notEqual(replaced, source, `${file} does not import '${from}'`);
  const dir = path.join(work, 'rs', group);
  fs.mkdirSync(dir, { recursive: true });
  const out = path.join(dir, path.basename(file));
  fs.writeFileSync(out, replaced);
  return out;
}

const rs = {
  corpus: corpus.map(file => switched(file, 'corpus')),
  corpusBundled: corpusBundled.map(file => switched(file, 'corpus-bundled')),
  mustFail: mustFail.map(file => switched(file, 'must-fail')),
  esm: esm.map(file => switched(file, 'esm')),
  bunSmtp: bunSmtp.map(file => switched(file, 'bun-smtp', 'bun-smtp'))
};

// skipLibCheck keeps each run to a few seconds (checking @types/node dominates
// otherwise); index.d.ts itself is checked in full through a .ts copy (below).
const common = {
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  target: 'es2022',
  types: ['node'],
  typeRoots: [TYPE_ROOTS]
};

const INDEX_D_TS = path.join(ROOT, 'index.d.ts');
const indexAsSource = path.join(work, 'rs', 'index-declarations.ts');
fs.writeFileSync(indexAsSource, fs.readFileSync(INDEX_D_TS, 'utf8'));

/**
 * Runs tsc on a generated project; resolves with the diagnostics by absolute file path
 * ({ line, code, text }) and the list of the program's files.
 */
function compile(name, compilerOptions, files) {
  const dir = path.join(work, name);
  fs.mkdirSync(dir, { recursive: true });
  const config = path.join(dir, 'tsconfig.json');
  fs.writeFileSync(config, JSON.stringify({ compilerOptions: { ...common, ...compilerOptions }, files }, null, 2));
  return new Promise((resolve, reject) => {
    const child = spawn(tscRuntime(), [TSC, '-p', config, '--pretty', 'false', '--listFiles'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    child.stdout.on('data', chunk => out.push(chunk));
    child.stderr.on('data', chunk => out.push(chunk));
    child.on('error', reject);
    child.on('close', status => {
      const output = Buffer.concat(out).toString();
      const diagnostics = new Map();
      const listed = new Set();
      let last = null;
      for (const line of output.split(/\r?\n/)) {
        const m = /^(.+?)\((\d+),(\d+)\): error (TS\d+): (.*)$/.exec(line);
        if (m) {
          const file = path.resolve(dir, m[1]);
          last = { line: Number(m[2]), code: m[4], text: m[5] };
          if (!diagnostics.has(file)) {
            diagnostics.set(file, []);
          }
          diagnostics.get(file).push(last);
        } else if (/^\s/.test(line) && last) {
          last.text += '\n' + line;
        } else if (/^error TS\d+/.test(line)) {
          // a diagnostic without a file (bad configuration)
          diagnostics.set('(global)', (diagnostics.get('(global)') || []).concat({ line: 0, code: line.slice(6, 12), text: line }));
        } else if (line.trim() && path.isAbsolute(line.trim())) {
          listed.add(path.resolve(line.trim()));
          last = null;
        }
      }
      resolve({ name, status, output, diagnostics, listed });
    });
  });
}

// CommonJS projects (moduleResolution node10): the originals resolve 'smtp-server'
// from this repository's node_modules, the copies resolve 'smtp-server-rs' through the link.
const bundledRun = compile(
  'cjs-bundled',
  { module: 'commonjs', moduleResolution: 'node10', esModuleInterop: true },
  [...corpus, ...corpusBundled, ...mustFail, ...rs.corpus, ...rs.corpusBundled, ...rs.mustFail, ...rs.bunSmtp, indexAsSource]
);
// @types/smtp-server is shadowed by the package's own declarations, so it is mapped explicitly;
// esModuleInterop is off here (tsc's default), which the copies must not need either.
const definitelyTypedRun = compile(
  'cjs-definitely-typed',
  {
    module: 'commonjs',
    moduleResolution: 'node10',
    paths: { 'smtp-server': [path.join(TYPE_ROOTS, 'smtp-server', 'index.d.ts')] }
  },
  [...corpus, ...rs.corpus, ...rs.corpusBundled]
);
const nodenextRun = compile('nodenext', { module: 'nodenext', moduleResolution: 'nodenext' }, [...esm, ...rs.esm]);

/** The diagnostics of the given files, as readable lines. */
function errorsOf(run, files) {
  const lines = [];
  for (const file of files) {
    for (const d of run.diagnostics.get(file) || []) {
      lines.push(`${path.relative(work, file)}:${d.line} ${d.code} ${d.text}`);
    }
  }
  return lines;
}

/**
 * Diagnostics outside the given files: in this package's declaration files or the
 * configuration (third-party declarations under node_modules are not ours to judge).
 */
function strayErrors(run, files) {
  const known = new Set(files);
  const dependencies = path.join(ROOT, 'node_modules') + path.sep;
  return errorsOf(
    run,
    [...run.diagnostics.keys()].filter(file => !known.has(file) && !file.startsWith(dependencies))
  );
}

/** The `// expect-error TSnnnn [stricter]` marks of a must-fail file: line -> { code, stricter }. */
function marks(file) {
  const out = new Map();
  fs.readFileSync(file, 'utf8')
    .split('\n')
    .forEach((text, index) => {
      const m = /\/\/ expect-error (TS\d+)( stricter)?\s*$/.exec(text);
      if (m) {
        out.set(index + 1, { code: m[1], stricter: !!m[2] });
      }
    });
  return out;
}

test('the corpus compiles against smtp-server 3.21 own declarations', { timeout: TIMEOUT }, async () => {
  const run = await bundledRun;
  assert.ok(corpus.length >= 5 && corpusBundled.length >= 2, 'corpus files are missing');
  assert.ok(run.listed.has(fs.realpathSync(path.join(ROOT, 'node_modules', 'smtp-server', 'dist', 'cjs', 'smtp-server.d.ts'))), 'smtp-server declarations were not used');
  assert.deepEqual(errorsOf(run, [...corpus, ...corpusBundled]), []);
});

test('the corpus compiles against @types/smtp-server', { timeout: TIMEOUT }, async () => {
  const run = await definitelyTypedRun;
  assert.ok(run.listed.has(fs.realpathSync(path.join(TYPE_ROOTS, 'smtp-server', 'index.d.ts'))), '@types/smtp-server was not used');
  assert.deepEqual(errorsOf(run, corpus), []);
});

test('the corpus compiles unchanged against smtp-server-rs (import switched)', { timeout: TIMEOUT }, async () => {
  const [withInterop, withoutInterop] = await Promise.all([bundledRun, definitelyTypedRun]);
  for (const run of [withInterop, withoutInterop]) {
    assert.ok(run.listed.has(INDEX_D_TS), `${run.name}: index.d.ts was not used`);
    assert.deepEqual(errorsOf(run, [...rs.corpus, ...rs.corpusBundled]), [], run.name);
    assert.deepEqual(strayErrors(run, [...corpus, ...corpusBundled, ...mustFail, ...rs.mustFail]), [], `${run.name}: errors in declaration files`);
  }
});

test("bun-smtp code (its documented examples, its type names) compiles with the import switched", { timeout: TIMEOUT }, async () => {
  const run = await bundledRun;
  assert.ok(rs.bunSmtp.length >= 3, 'bun-smtp files are missing');
  assert.deepEqual(errorsOf(run, rs.bunSmtp), []);
});

test('index.d.ts itself passes a strict check', { timeout: TIMEOUT }, async () => {
  const run = await bundledRun;
  assert.ok(run.listed.has(indexAsSource));
  assert.deepEqual(errorsOf(run, [indexAsSource]), []);
});

test('wrong handler signatures and misuse fail where marked, and nowhere else', { timeout: TIMEOUT }, async () => {
  const run = await bundledRun;
  assert.ok(mustFail.length >= 3);
  let total = 0;
  for (const file of rs.mustFail) {
    const expected = marks(file);
    assert.ok(expected.size >= 5, `${path.basename(file)} has too few marked lines`);
    total += expected.size;
    const got = run.diagnostics.get(file) || [];
    for (const [line, { code }] of expected) {
      assert.ok(
        got.some(d => d.line === line && d.code === code),
        `${path.basename(file)}:${line} should fail with ${code}; got: ${JSON.stringify(got.filter(d => d.line === line))}`
      );
    }
    const unexpected = got.filter(d => !expected.has(d.line) || expected.get(d.line).code !== d.code);
    assert.deepEqual(unexpected, [], `${path.basename(file)}: errors on lines that are not marked`);
  }
  assert.ok(total >= 25, `only ${total} must-fail cases`);
});

test('the must-fail cases also fail against smtp-server declarations, except the stricter ones', { timeout: TIMEOUT }, async () => {
  const run = await bundledRun;
  for (const file of mustFail) {
    const expected = marks(file);
    const got = run.diagnostics.get(file) || [];
    for (const [line, { stricter }] of expected) {
      const failed = got.some(d => d.line === line);
      if (stricter) {
        assert.ok(!failed, `${path.basename(file)}:${line} is marked stricter but fails against smtp-server too`);
      } else {
        assert.ok(failed, `${path.basename(file)}:${line} compiles against smtp-server (mark it stricter if that is intended)`);
      }
    }
    const elsewhere = got.filter(d => !expected.has(d.line));
    assert.deepEqual(elsewhere, [], `${path.basename(file)}: errors on lines that are not marked`);
  }
});

test('ES module and CommonJS files compile with moduleResolution nodenext', { timeout: TIMEOUT }, async () => {
  const run = await nodenextRun;
  assert.ok(esm.some(file => file.endsWith('.mts')) && esm.some(file => file.endsWith('.cts')));
  assert.ok(run.listed.has(INDEX_D_TS), 'index.d.ts was not used');
  // the declarations the package.json `exports` map names for both conditions are the ones used
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const root = pkg.exports && (typeof pkg.exports === 'string' || pkg.exports['.'] === undefined ? pkg.exports : pkg.exports['.']);
  for (const condition of ['import', 'require']) {
    const entry = root && typeof root === 'object' ? root[condition] : null;
    if (entry && typeof entry === 'object' && entry.types) {
      const target = path.resolve(ROOT, entry.types);
      assert.ok(fs.existsSync(target), `exports["."].${condition}.types points at a missing file`);
      assert.ok(run.listed.has(target), `exports["."].${condition}.types (${entry.types}) was not used`);
    }
  }
  assert.deepEqual(errorsOf(run, [...esm, ...rs.esm]), []);
  assert.deepEqual(strayErrors(run, [...esm, ...rs.esm]), []);
});

test('the exports declared in index.d.ts exist at runtime (require and import)', { timeout: TIMEOUT }, async () => {
  const cjs = require(ROOT);
  assert.equal(typeof cjs.SMTPServer, 'function');
  assert.equal(cjs.default.SMTPServer, cjs.SMTPServer, 'the default export has SMTPServer');
  const mod = await import(pathToFileURL(path.join(work, 'node_modules', 'smtp-server-rs', 'index.js')).href);
  assert.equal(mod.SMTPServer, cjs.SMTPServer, 'named ESM import');
  assert.equal(mod.default.SMTPServer, cjs.SMTPServer, 'default ESM import');
  if (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).exports) {
    // with an `exports` map the package can import itself by name (the ESM entry)
    const byName = await import('smtp-server-rs');
    assert.equal(byName.SMTPServer, cjs.SMTPServer, 'named import by package name');
    assert.equal(byName.default.SMTPServer, cjs.SMTPServer, 'default import by package name');
  }
  const server = new cjs.SMTPServer({ logger: false, disabledCommands: ['STARTTLS'] });
  for (const name of ['listen', 'close', 'updateSecureContext', 'onConnect', 'onSecure', 'onAuth', 'onMailFrom', 'onRcptTo', 'onData', 'onClose', 'on', 'once']) {
    assert.equal(typeof server[name], 'function', name);
  }
  for (const name of ['listen', 'address', 'close', 'ref', 'unref', 'getConnections']) {
    assert.equal(typeof server.server[name], 'function', `server.server.${name}`);
  }
  assert.equal(server.server.listening, false);
  assert.ok(server.connections instanceof Set);
  assert.deepEqual(server.options.authMethods, ['LOGIN', 'PLAIN']);
  assert.deepEqual(server.options.disabledCommands, ['STARTTLS']);
  for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal']) {
    assert.equal(typeof server.logger[level], 'function', `logger.${level}`);
  }
});

test('every declaration and member of index.d.ts has a doc comment', { timeout: TIMEOUT }, () => {
  const ts = require(path.join(ROOT, 'node_modules', 'typescript'));
  const source = ts.createSourceFile(INDEX_D_TS, fs.readFileSync(INDEX_D_TS, 'utf8'), ts.ScriptTarget.Latest, true);
  const missing = [];
  const documented = node => ts.getJSDocCommentsAndTags(node).length > 0;
  const nameOf = node => (node.name ? node.name.getText(source) : ts.isIndexSignatureDeclaration(node) ? '[index]' : ts.isConstructorDeclaration(node) ? 'constructor' : '?');
  const checkMembers = (owner, members) => {
    const seen = new Set();
    for (const member of members) {
      const name = nameOf(member);
      if (seen.has(name)) {
        continue; // an overload: the first signature carries the comment
      }
      seen.add(name);
      if (!documented(member)) {
        missing.push(`${owner}.${name}`);
      }
    }
  };
  let declarations = 0;
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement) || ts.isExportAssignment(statement)) {
      continue;
    }
    const name = ts.isVariableStatement(statement) ? statement.declarationList.declarations[0].name.getText(source) : nameOf(statement);
    declarations++;
    if (!documented(statement)) {
      missing.push(name);
    }
    if (ts.isInterfaceDeclaration(statement) || ts.isClassDeclaration(statement)) {
      checkMembers(name, statement.members);
    }
  }
  assert.ok(declarations >= 30, `only ${declarations} declarations found`);
  assert.deepEqual(missing, []);
});
