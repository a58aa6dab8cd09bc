'use strict';
// A plain script (no test runner) for runtimes whose `bun test` or `node --test` cannot
// load the suite: one message in cleartext and one after STARTTLS, each through
// onMailFrom and onData, checked reply by reply. Exits 0 when both arrive intact.
//   <runtime> __test__/smoke/runtime-smoke.js
const net = require('node:net');
const tls = require('node:tls');
const path = require('node:path');
const { SMTPServer } = require(path.join(__dirname, '..', '..'));

const EXPECTED = ['220', '250', '250', '250', '354', '250', '221'];

/** Reads CRLF replies from `socket`, calling `onReply(code, line)` for each final line. */
function replies(socket, onReply) {
  let buf = '';
  const onData = data => {
    buf += data;
    let at;
    while ((at = buf.indexOf('\r\n')) >= 0) {
      const line = buf.slice(0, at);
      buf = buf.slice(at + 2);
      if (/^\d{3} /.test(line)) {
        onReply(line.slice(0, 3), line);
      }
    }
  };
  socket.on('data', onData);
  return () => socket.removeListener('data', onData);
}

/** Sends one message over `socket` (greeting already read when `greeted`); resolves with the codes. */
function transaction(socket, text, greeted) {
  const script = ['EHLO smoke.test', 'MAIL FROM:<from@example.com>', 'RCPT TO:<to@example.com>', 'DATA', `${text}\r\n.`, 'QUIT'];
  const codes = greeted ? ['220'] : [];
  return new Promise((resolve, reject) => {
    let next = 0;
    const send = () => next < script.length && socket.write(script[next++] + '\r\n');
    replies(socket, code => {
      codes.push(code);
      send();
    });
    if (greeted) {
      send();
    }
    socket.on('error', reject);
    socket.on('close', () => resolve(codes));
  });
}

async function main() {
  const seen = [];
  const server = new SMTPServer({
    authOptional: true,
    disableReverseLookup: true,
    logger: false,
    hideSTARTTLS: false,
    onMailFrom(address, session, callback) {
      seen.push(`mail ${address.address} secure=${session.secure}`);
      callback();
    },
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', chunk => chunks.push(chunk));
      stream.on('end', () => {
        seen.push(`body ${Buffer.concat(chunks).toString().trim()}`);
        callback(null, 'ok');
      });
    }
  });
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve));
  const port = server.server.address().port;

  const plain = await transaction(net.connect(port, '127.0.0.1'), 'plain message', false);

  const raw = net.connect(port, '127.0.0.1');
  const upgraded = await new Promise((resolve, reject) => {
    let step = 0;
    const stop = replies(raw, code => {
      if (step === 0 && code === '220') {
        step = 1;
        raw.write('EHLO smoke.test\r\n');
      } else if (step === 1 && code === '250') {
        step = 2;
        raw.write('STARTTLS\r\n');
      } else if (step === 2 && code === '220') {
        stop();
        const secure = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'localhost' });
        secure.once('secureConnect', () => resolve(secure));
        secure.once('error', reject);
      }
    });
  });
  const secured = await transaction(upgraded, 'secure message', true);
  await new Promise(resolve => server.close(resolve));

  const ok =
    plain.join(',') === EXPECTED.join(',') &&
    secured.join(',') === EXPECTED.join(',') &&
    seen.join('|') === 'mail from@example.com secure=false|body plain message|mail from@example.com secure=true|body secure message';
  console.log(JSON.stringify({ plain, secured, seen, ok }));
  process.exit(ok ? 0 : 1);
}

setTimeout(() => {
  console.log('runtime smoke: timed out');
  process.exit(2);
}, 15000).unref();
main().catch(err => {
  console.log(`runtime smoke: ${err && err.stack}`);
  process.exit(1);
});
