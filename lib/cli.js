'use strict';
// `smtp-server-rs` on the command line: a development mail catcher. It listens for
// SMTP (or LMTP), takes every message and writes it unchanged to a directory, as .eml
// files or as a Maildir, printing one line per message. See docs/cli.md.
//   const { main } = require('./lib/cli.js');   (from the package root)
//   main(['--port', '0', '--max-messages', '1']).then(code => ...)
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const util = require('node:util');

const PROGRAM = 'smtp-server-rs';
const CLOSE_TIMEOUT = 3000;
const HEAD_LIMIT = 64 * 1024;

/** An error in the command line: reported with a hint and exit code 2. */
class UsageError extends Error {}

// name, short alias, value placeholder (none for a flag), help text
const OPTIONS = [
  ['port', 'p', 'PORT', 'TCP port to listen on; 0 picks a free one (default 2525)'],
  ['host', null, 'HOST', 'address to listen on (default 127.0.0.1; 0.0.0.0 or :: for all)'],
  ['socket', null, 'PATH', 'listen on a Unix domain socket instead of a TCP port'],
  ['out', 'o', 'DIR', 'directory for the messages (default ./mail), created if missing'],
  ['format', 'f', 'FMT', "'eml' (one file per message, the default) or 'maildir'"],
  ['lmtp', null, null, 'speak LMTP (LHLO, one reply per recipient) instead of SMTP'],
  ['tls', null, null, 'implicit TLS: the TLS handshake comes first (like port 465)'],
  ['starttls', null, null, 'offer STARTTLS (the default unless --tls)'],
  ['no-starttls', null, null, 'do not offer STARTTLS'],
  ['key', null, 'FILE', 'PEM private key for --tls and STARTTLS (default: built-in)'],
  ['cert', null, 'FILE', 'PEM certificate chain to go with --key'],
  ['size', null, 'BYTES', 'advertised size limit; larger messages get 552 and are not\nstored. Accepts K, M and G suffixes (1024 based), e.g. 10M'],
  ['auth', null, null, 'offer AUTH (PLAIN, LOGIN, CRAM-MD5, XOAUTH2) and accept any\nuser name and password; AUTH stays optional'],
  ['name', null, 'NAME', 'host name the server calls itself (default: os.hostname())'],
  ['envelope-headers', null, null, 'prepend Return-Path: and X-Envelope-To: to stored files\n(off by default: files hold exactly the bytes the client sent)'],
  ['max-messages', 'n', 'N', 'stop and exit 0 after storing N messages'],
  ['json', null, null, 'print one JSON object per line instead of text'],
  ['quiet', 'q', null, 'print no line per message (the listening line still shows)'],
  ['log', null, null, "print the server's protocol log to stderr"],
  ['help', 'h', null, 'show this help and exit'],
  ['version', 'v', null, 'print the version and exit']
];

const BY_NAME = new Map(OPTIONS.map(o => [o[0], o]));
const BY_SHORT = new Map(OPTIONS.filter(o => o[1]).map(o => [o[1], o]));

function version() {
  try {
    return require('../package.json').version;
  } catch {
    return 'unknown';
  }
}

function helpText() {
  const rows = OPTIONS.map(([name, short, arg, text]) => {
    const left = `${short ? `-${short}, ` : '    '}--${name}${arg ? ` ${arg}` : ''}`;
    return [left, text.split('\n')];
  });
  const width = Math.max(...rows.map(r => r[0].length)) + 2;
  const lines = [];
  for (const [left, text] of rows) {
    lines.push(`  ${left.padEnd(width)}${text[0]}`);
    for (const more of text.slice(1)) {
      lines.push(`  ${' '.repeat(width)}${more}`);
    }
  }
  return `Usage: ${PROGRAM} [serve] [options]
       ${PROGRAM} build [--debug]

A mail catcher for development and tests. It listens for SMTP (or LMTP), accepts
every sender and recipient, stores each message byte for byte as the client sent
it, and prints one line per message. Nothing is ever relayed.

Options:
${lines.join('\n')}

Storage:
  eml      DIR/<UTC time>-<number>.eml, e.g. mail/20261123T100000.123Z-0001.eml
  maildir  DIR/tmp, DIR/new and DIR/cur; each message is written to tmp/ and then
           renamed into new/ as <seconds>.M<microseconds>P<pid>Q<number>.<host>
  A file appears under its final name only once it is complete. Line endings are
  kept as received (CRLF from SMTP clients).

Output (stdout), one line per message:
  2026-11-23T10:00:00Z  #3  from=<a@example.com> to=<b@example.com>  1234 bytes  subject="Hi"  -> mail/20261123T100000.123Z-0003.eml
  With --json: {"event":"message","seq":3,"from":"a@example.com","to":[...],"size":1234,...}
  The first line says where the server listens (with the real port for --port 0).

Exit status: 0 after SIGINT/SIGTERM or --max-messages, 1 on a runtime error (for
example the port is taken), 2 on a bad command line.

Examples:
  ${PROGRAM}                              SMTP on 127.0.0.1:2525, .eml files in ./mail
  ${PROGRAM} -p 1025 -f maildir -o ~/Maildir
  ${PROGRAM} --lmtp --socket /tmp/lmtp.sock
  ${PROGRAM} --tls -p 4650 --size 5M --auth
  ${PROGRAM} --port 0 --json --max-messages 1 -o /tmp/out

The built-in certificate (CN=localhost) is self-signed and its private key is
public: clients have to skip verification, and it protects nothing.

${PROGRAM} build compiles the native addon from source, for a platform without a
prebuilt package: it needs Rust (https://rustup.rs) and a C compiler, and writes
one .node file into the installed package (Cargo's build directory is temporary).
`;
}

/** Closest known option name (for a hint after a typo), or null. */
function suggest(name) {
  let best = null;
  let bestDistance = 3;
  for (const known of BY_NAME.keys()) {
    const d = editDistance(name, known);
    if (d < bestDistance) {
      best = known;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a, b) {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

function parseInteger(value, option, min, max) {
  const text = String(value).trim();
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`--${option} needs a whole number from ${min} to ${max}, not '${value}'`);
  }
  return Number(text);
}

function parseSize(value) {
  const m = /^\s*(\d+)\s*([kmg]?)i?b?\s*$/i.exec(String(value));
  if (!m) {
    throw new UsageError(`--size needs a number of bytes (optionally with K, M or G), not '${value}'`);
  }
  const factor = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()];
  const bytes = Number(m[1]) * factor;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new UsageError(`--size must be at least 1 byte, not '${value}'`);
  }
  return bytes;
}

/**
 * The command line as settings. Throws a UsageError on anything it does not know.
 * Accepts `--name value`, `--name=value`, `-x value` and `-xvalue`; `--` ends the options.
 */
function parseArgs(argv) {
  const seen = {};
  const positional = [];
  const args = [...argv];
  let onlyPositional = false;
  while (args.length) {
    const arg = String(args.shift());
    if (onlyPositional || arg === '-' || !arg.startsWith('-')) {
      positional.push(arg);
      continue;
    }
    if (arg === '--') {
      onlyPositional = true;
      continue;
    }
    let spec;
    let inline;
    let shown;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
      spec = BY_NAME.get(name);
      shown = `--${name}`;
      if (!spec) {
        const hint = suggest(name);
        throw new UsageError(`unknown option '${shown}'${hint ? ` (did you mean --${hint}?)` : ''}`);
      }
    } else {
      spec = BY_SHORT.get(arg[1]);
      shown = arg.slice(0, 2);
      if (!spec) {
        throw new UsageError(`unknown option '${shown}'`);
      }
      if (arg.length > 2) {
        if (!spec[2]) {
          throw new UsageError(`unknown option '${arg}' (short options cannot be combined)`);
        }
        inline = arg.slice(2);
      }
    }
    const [name, , placeholder] = spec;
    if (!placeholder) {
      if (inline !== undefined) {
        throw new UsageError(`${shown} takes no value`);
      }
      seen[name] = true;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (!args.length || (String(args[0]).startsWith('-') && String(args[0]) !== '-' && !/^-\d/.test(args[0]))) {
        throw new UsageError(`${shown} needs a value (${placeholder})`);
      }
      value = String(args.shift());
    }
    seen[name] = value;
  }

  if (positional.length && (positional[0] === 'serve' || positional[0] === 'help')) {
    if (positional.shift() === 'help') {
      seen.help = true;
    }
  }
  if (positional.length) {
    throw new UsageError(`unexpected argument '${positional[0]}'`);
  }

  const opts = {
    help: !!seen.help,
    version: !!seen.version,
    port: 2525,
    host: '127.0.0.1',
    socket: null,
    out: 'mail',
    format: 'eml',
    lmtp: !!seen.lmtp,
    tls: !!seen.tls,
    starttls: !seen['no-starttls'],
    key: seen.key || null,
    cert: seen.cert || null,
    size: 0,
    auth: !!seen.auth,
    name: seen.name || null,
    envelopeHeaders: !!seen['envelope-headers'],
    maxMessages: 0,
    json: !!seen.json,
    quiet: !!seen.quiet,
    log: !!seen.log
  };
  if (opts.help || opts.version) {
    return opts;
  }
  if (seen.port !== undefined) {
    opts.port = parseInteger(seen.port, 'port', 0, 65535);
  }
  if (seen.host !== undefined) {
    if (!String(seen.host).trim()) {
      throw new UsageError('--host needs an address');
    }
    opts.host = String(seen.host).trim();
  }
  if (seen.socket !== undefined) {
    if (!seen.socket) {
      throw new UsageError('--socket needs a path');
    }
    if (seen.port !== undefined || seen.host !== undefined) {
      throw new UsageError('--socket cannot be combined with --port or --host');
    }
    opts.socket = path.resolve(seen.socket);
  }
  if (seen.out !== undefined) {
    if (!seen.out) {
      throw new UsageError('--out needs a directory');
    }
    opts.out = seen.out;
  }
  if (seen.format !== undefined) {
    const format = String(seen.format).toLowerCase();
    if (format !== 'eml' && format !== 'maildir') {
      throw new UsageError(`--format is 'eml' or 'maildir', not '${seen.format}'`);
    }
    opts.format = format;
  }
  if (seen.starttls && seen['no-starttls']) {
    throw new UsageError('--starttls and --no-starttls contradict each other');
  }
  if (!!opts.key !== !!opts.cert) {
    throw new UsageError('--key and --cert go together: give both or neither');
  }
  if (seen.size !== undefined) {
    opts.size = parseSize(seen.size);
  }
  if (seen['max-messages'] !== undefined) {
    opts.maxMessages = parseInteger(seen['max-messages'], 'max-messages', 1, Number.MAX_SAFE_INTEGER);
  }
  if (opts.json && opts.quiet) {
    throw new UsageError('--json and --quiet contradict each other');
  }
  return opts;
}

// ---------------------------------------------------------------------------
// messages

/** The header block of a message (up to the first empty line), as latin1 text. */
function headerBlock(head) {
  const text = head.toString('latin1');
  const m = /\r?\n\r?\n/.exec(text);
  return m ? text.slice(0, m.index) : text;
}

/** The unfolded Subject header of a message head, with RFC 2047 words decoded; null if none. */
function subjectOf(head) {
  const lines = headerBlock(head).split(/\r?\n/);
  let raw = null;
  for (let i = 0; i < lines.length; i++) {
    if (/^subject[ \t]*:/i.test(lines[i])) {
      raw = lines[i].slice(lines[i].indexOf(':') + 1);
      while (i + 1 < lines.length && /^[ \t]/.test(lines[i + 1])) {
        raw += lines[++i];
      }
      break;
    }
  }
  if (raw === null) {
    return null;
  }
  return decodeWords(Buffer.from(raw.trim(), 'latin1').toString('utf8'));
}

/** Decodes RFC 2047 encoded words (B and Q); words in unknown charsets stay as they are. */
function decodeWords(text) {
  const word = /=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=/g;
  // white space between two encoded words is not part of the text
  const joined = text.replace(/(\?=)\s+(?==\?)/g, '$1');
  return joined.replace(word, (whole, charset, encoding, data) => {
    let bytes;
    if (encoding.toUpperCase() === 'B') {
      bytes = Buffer.from(data, 'base64');
    } else {
      bytes = Buffer.from(data.replace(/_/g, ' ').replace(/=([0-9a-fA-F]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
    }
    try {
      return new util.TextDecoder(charset.toLowerCase()).decode(bytes);
    } catch {
      return whole;
    }
  });
}

function addressOf(entry) {
  return entry && typeof entry.address === 'string' ? entry.address : '';
}

function utcSeconds(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** 20261123T100000.123Z: sorts like time and is a valid file name everywhere. */
function fileTime(date) {
  return date.toISOString().replace(/[-:]/g, '');
}

/** A host name as a Maildir file name may hold it ('/' and ':' are escaped). */
function maildirHost(name) {
  return String(name || 'localhost').replace(/\//g, '\\057').replace(/:/g, '\\072');
}

let microsBase = null;
function nowMicros() {
  if (microsBase === null) {
    microsBase = BigInt(Date.now()) * 1000n - process.hrtime.bigint() / 1000n;
  }
  return microsBase + process.hrtime.bigint() / 1000n;
}

function quote(text) {
  return JSON.stringify(text);
}

function shownPath(file) {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

function describeAddress(address) {
  if (typeof address === 'string') {
    return address;
  }
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}

// ---------------------------------------------------------------------------
// the catcher

/** Makes the output directory (and the Maildir subdirectories); throws when it cannot. */
function prepareDirectory(opts) {
  const dir = path.resolve(opts.out);
  try {
    fs.mkdirSync(dir, { recursive: true });
    if (opts.format === 'maildir') {
      for (const sub of ['tmp', 'new', 'cur']) {
        fs.mkdirSync(path.join(dir, sub), { recursive: true });
      }
    }
    fs.accessSync(opts.format === 'maildir' ? path.join(dir, 'tmp') : dir, fs.constants.W_OK);
  } catch (err) {
    throw new Error(`cannot write to ${dir}: ${err.code || err.message}`);
  }
  return dir;
}

/** Removes a Unix socket file nobody listens on any more (left by a crashed run). */
async function clearStaleSocket(file) {
  let stat;
  try {
    stat = fs.lstatSync(file);
  } catch {
    return;
  }
  if (!stat.isSocket()) {
    throw new Error(`${file} exists and is not a socket`);
  }
  const alive = await new Promise(resolve => {
    const probe = net.connect({ path: file });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) {
    throw new Error(`something is already listening on ${file}`);
  }
  fs.unlinkSync(file);
}

function readPem(file, what) {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read the ${what} ${file}: ${err.code || err.message}`);
  }
}

/** A logger object for the server that writes its lines to `stderr`. */
function stderrLogger(stderr) {
  const write = (level, entry, ...args) => {
    const text = util.format(...args);
    for (const line of text.split(/\r?\n/)) {
      stderr.write(`[${new Date().toISOString()}] ${level} ${entry && entry.cid ? `[${entry.cid}] ` : ''}${line}\n`);
    }
  };
  const logger = {};
  for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal']) {
    logger[level] = (entry, ...args) => write(level.toUpperCase(), entry, ...args);
  }
  return logger;
}

/**
 * Starts a catcher with parsed options. Resolves once it listens, with
 * `{ server, address, dir, stop(), closed }`; `closed` resolves with the exit code.
 */
async function start(opts, io) {
  const { stdout, stderr } = io;
  const { SMTPServer } = require('../index.js');
  const dir = prepareDirectory(opts);
  const say = line => stdout.write(line + '\n');
  const emit = (event, data) => say(JSON.stringify(Object.assign({ event }, data)));

  const serverOptions = {
    lmtp: opts.lmtp,
    secure: opts.tls,
    hideSTARTTLS: !opts.starttls,
    authOptional: true,
    disableReverseLookup: true,
    closeTimeout: CLOSE_TIMEOUT,
    logger: opts.log ? stderrLogger(stderr) : false,
    onData: handleMessage
  };
  if (opts.name) {
    serverOptions.name = opts.name;
  }
  if (opts.key) {
    serverOptions.key = readPem(opts.key, 'key');
    serverOptions.cert = readPem(opts.cert, 'certificate');
  }
  if (opts.size) {
    serverOptions.size = opts.size;
    serverOptions.rejectOversized = true;
  }
  if (opts.auth) {
    serverOptions.authMethods = ['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2'];
    serverOptions.allowInsecureAuth = true;
    serverOptions.onAuth = (auth, session, callback) => callback(null, { user: auth.username || 'anonymous' });
  } else {
    serverOptions.disabledCommands = ['AUTH'];
  }
  if (opts.socket) {
    await clearStaleSocket(opts.socket);
  }

  const server = new SMTPServer(serverOptions);
  const host = maildirHost(opts.name || os.hostname());
  let received = 0;
  let stored = 0;
  let stopping = false;
  let finish;
  const closed = new Promise(resolve => {
    finish = resolve;
  });

  server.on('error', err => {
    if (server.server.listening) {
      // a client's misbehaviour; the server carries on
      if (opts.log) {
        stderr.write(`${PROGRAM}: ${err.message}\n`);
      }
    }
  });

  function handleMessage(stream, session, callback) {
    const seq = ++received;
    const started = new Date();
    const envelope = session.envelope || { mailFrom: false, rcptTo: [] };
    const from = addressOf(envelope.mailFrom);
    const to = (envelope.rcptTo || []).map(addressOf);
    const headChunks = [];
    let headBytes = 0;
    let tmpFile;
    let finalFile;
    if (opts.format === 'maildir') {
      const micros = nowMicros();
      const name = `${micros / 1000000n}.M${micros % 1000000n}P${process.pid}Q${seq}.${host}`;
      tmpFile = path.join(dir, 'tmp', name);
      finalFile = path.join(dir, 'new', name);
    } else {
      const name = `${fileTime(started)}-${String(seq).padStart(4, '0')}`;
      tmpFile = path.join(dir, `.${name}.${process.pid}.part`);
      finalFile = path.join(dir, `${name}.eml`);
    }

    let answered = false;
    const answer = (err, message) => {
      if (!answered) {
        answered = true;
        callback(err, message);
      }
    };
    let file = null;
    let writeError = null;
    const dropFile = () => {
      if (file) {
        file.destroy();
        file = null;
        fs.unlink(tmpFile, () => {});
      }
    };

    if (stopping) {
      // the limit was reached while this message was on its way
      stream.resume();
      stream.once('end', () => answer(replyError('Error: the mail catcher is shutting down', 421)));
      return;
    }

    file = fs.createWriteStream(tmpFile, { flags: 'wx' });
    file.on('error', err => {
      writeError = err;
      dropFile();
    });
    if (opts.envelopeHeaders) {
      file.write(`Return-Path: <${from}>\r\nX-Envelope-To: ${to.map(a => `<${a}>`).join(', ')}\r\n`);
    }

    stream.on('data', chunk => {
      if (headBytes < HEAD_LIMIT) {
        headChunks.push(chunk);
        headBytes += chunk.length;
      }
      if (stream.sizeExceeded) {
        dropFile();
      }
      if (file && !file.write(chunk)) {
        stream.pause();
        file.once('drain', () => stream.resume());
      }
    });
    stream.once('error', () => {
      dropFile();
    });
    stream.once('close', () => {
      if (!stream.readableEnded) {
        dropFile();
        answer(replyError('Error: the message was not received in full', 451));
      }
    });
    stream.once('end', () => {
      const size = stream.byteLength;
      const head = Buffer.concat(headChunks).subarray(0, HEAD_LIMIT);
      const info = { seq, time: started, from, to, size, subject: subjectOf(head), session };
      if (stream.sizeExceeded) {
        dropFile();
        report(info, null, `over the size limit of ${opts.size} bytes`);
        return answer(replyError(`Error: message exceeds fixed maximum message size ${opts.size}`, 552));
      }
      if (!file) {
        return failed(info, writeError);
      }
      const current = file;
      current.end(() => {
        if (writeError) {
          return failed(info, writeError);
        }
        placeFile(tmpFile, finalFile, opts.format === 'maildir', (err, where) => {
          if (err) {
            fs.unlink(tmpFile, () => {});
            return failed(info, err);
          }
          stored++;
          report(info, where, null);
          const name = path.basename(where);
          if (opts.lmtp) {
            answer(null, to.map(rcpt => `OK: message for <${rcpt}> stored as ${name}`));
          } else {
            answer(null, `OK: message stored as ${name}`);
          }
          if (opts.maxMessages && stored >= opts.maxMessages) {
            setImmediate(() => stop(`stored ${stored} message${stored === 1 ? '' : 's'} (--max-messages)`));
          }
        });
      });
    });

    function failed(info, err) {
      const why = err ? err.code || err.message : 'unknown error';
      stderr.write(`${PROGRAM}: cannot store message #${info.seq}: ${err ? err.message : why}\n`);
      report(info, null, `not stored: ${why}`);
      answer(replyError(`Error: the message could not be stored (${why})`, 451));
    }
  }

  function report(info, file, rejected) {
    if (opts.quiet) {
      return;
    }
    const session = info.session;
    if (opts.json) {
      const data = {
        seq: info.seq,
        time: info.time.toISOString(),
        from: info.from,
        to: info.to,
        size: info.size,
        subject: info.subject,
        id: session.id,
        remoteAddress: session.remoteAddress || null,
        clientHostname: session.hostNameAppearsAs || null,
        secure: !!session.secure,
        user: session.user ? String(session.user) : null
      };
      if (file) {
        data.file = file;
      } else {
        data.reason = rejected;
      }
      return emit(file ? 'message' : 'rejected', data);
    }
    const parts = [
      utcSeconds(info.time),
      `#${info.seq}`,
      `from=<${info.from}> to=${info.to.map(a => `<${a}>`).join(',')}`,
      `${info.size} bytes`
    ];
    if (session.user) {
      parts.push(`user=${quote(String(session.user))}`);
    }
    if (info.subject !== null) {
      parts.push(`subject=${quote(info.subject.length > 200 ? info.subject.slice(0, 200) + '…' : info.subject)}`);
    }
    parts.push(file ? `-> ${shownPath(file)}` : `REJECTED (${rejected})`);
    say(parts.join('  '));
  }

  function stop(reason) {
    if (stopping) {
      return;
    }
    stopping = true;
    if (!opts.quiet) {
      if (opts.json) {
        emit('stopping', { reason, stored });
      } else {
        say(`Stopping: ${reason}`);
      }
    }
    server.close(() => {
      if (opts.socket) {
        try {
          if (fs.lstatSync(opts.socket).isSocket()) {
            fs.unlinkSync(opts.socket);
          }
        } catch {
          // already gone
        }
      }
      finish(0);
    });
  }

  const address = await new Promise((resolve, reject) => {
    const onError = err => reject(err);
    server.once('error', onError);
    const ready = () => {
      server.removeListener('error', onError);
      resolve(server.server.address());
    };
    if (opts.socket) {
      server.listen(opts.socket, ready);
    } else {
      server.listen(opts.port, opts.host, ready);
    }
  }).catch(err => {
    const where = opts.socket || `${opts.host}:${opts.port}`;
    throw new Error(`cannot listen on ${where}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`);
  });

  const protocol = opts.lmtp ? 'LMTP' : 'SMTP';
  const certificate = opts.key ? `certificate ${opts.cert}` : 'built-in self-signed certificate';
  const tls = opts.tls ? `implicit TLS, ${certificate}` : opts.starttls ? `STARTTLS with the ${certificate}` : 'no TLS';
  if (opts.json) {
    const where = typeof address === 'string' ? { socket: address } : { host: address.address, port: address.port };
    emit('listening', Object.assign({ protocol, tls: opts.tls ? 'implicit' : opts.starttls ? 'starttls' : 'none' }, where, { format: opts.format, dir, size: opts.size || null, auth: opts.auth }));
  } else {
    const extras = [protocol, tls];
    if (opts.size) {
      extras.push(`size limit ${opts.size} bytes`);
    }
    if (opts.auth) {
      extras.push('AUTH accepts any credentials');
    }
    say(`Listening on ${describeAddress(address)} (${extras.join(', ')})`);
    say(`Writing ${opts.format === 'maildir' ? 'a Maildir' : '.eml files'} to ${dir}${opts.maxMessages ? `; exiting after ${opts.maxMessages} message${opts.maxMessages === 1 ? '' : 's'}` : ''}`);
  }

  return { server, address, dir, stop, closed, get stored() { return stored; } };
}

function replyError(message, code) {
  const err = new Error(message);
  err.responseCode = code;
  return err;
}

/**
 * Moves a finished file to its final name. Maildir: rename (names are unique by
 * construction). eml: a hard link, so that an existing file is never replaced; a
 * suffix is added when the name is taken.
 */
function placeFile(tmpFile, finalFile, maildir, done) {
  if (maildir) {
    return fs.rename(tmpFile, finalFile, err => done(err, finalFile));
  }
  const attempt = n => {
    const target = n ? finalFile.replace(/\.eml$/, `-${n}.eml`) : finalFile;
    fs.link(tmpFile, target, err => {
      if (err && err.code === 'EEXIST' && n < 100) {
        return attempt(n + 1);
      }
      if (err && err.code !== 'EEXIST') {
        // a file system without hard links
        if (fs.existsSync(target)) {
          return attempt(n + 1);
        }
        return fs.rename(tmpFile, target, e => done(e, target));
      }
      if (err) {
        return done(err);
      }
      fs.unlink(tmpFile, () => done(null, target));
    });
  };
  attempt(0);
}

/**
 * Runs the command line `argv` (without the node and script paths). Resolves with the
 * exit code once the server has stopped (or at once for --help, --version and errors).
 * `io.signals: false` leaves SIGINT/SIGTERM alone; `io.onStart(catcher)` sees the
 * running catcher.
 */
async function main(argv, io = {}) {
  const stdout = io.stdout || process.stdout;
  const stderr = io.stderr || process.stderr;
  if (argv[0] === 'build') {
    // the source build for a platform without a prebuilt package; it must not load the addon
    return require('../scripts/build.js').main(['--temp-target', ...argv.slice(1)]);
  }
  let opts;
  try {
    opts = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) {
      throw err;
    }
    stderr.write(`${PROGRAM}: ${err.message}\nRun '${PROGRAM} --help' for the options.\n`);
    return 2;
  }
  if (opts.help) {
    stdout.write(helpText());
    return 0;
  }
  if (opts.version) {
    stdout.write(`${PROGRAM} ${version()}\n`);
    return 0;
  }

  let catcher;
  try {
    catcher = await start(opts, { stdout, stderr });
  } catch (err) {
    stderr.write(`${PROGRAM}: ${err.message}\n`);
    return 1;
  }
  if (typeof io.onStart === 'function') {
    io.onStart(catcher);
  }

  const handlers = [];
  let forced;
  const forcedExit = new Promise(resolve => {
    forced = resolve;
  });
  if (io.signals !== false) {
    let count = 0;
    for (const signal of ['SIGINT', 'SIGTERM']) {
      const handler = () => {
        count++;
        if (count === 1) {
          catcher.stop(`got ${signal}`);
        } else {
          stderr.write(`${PROGRAM}: second ${signal}, exiting without waiting for clients\n`);
          forced(1);
        }
      };
      process.on(signal, handler);
      handlers.push([signal, handler]);
    }
  }
  const code = await Promise.race([catcher.closed, forcedExit]);
  for (const [signal, handler] of handlers) {
    process.removeListener(signal, handler);
  }
  return code;
}

module.exports = { main, parseArgs, helpText, subjectOf, decodeWords, start, UsageError };
