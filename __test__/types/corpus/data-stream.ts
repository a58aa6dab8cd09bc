// Consuming the DATA stream: pipe, pipeline, async iteration, size checks.
import { SMTPServer, SMTPServerDataStream } from 'smtp-server';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

async function digest(stream: SMTPServerDataStream): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

const toDisk = new SMTPServer({
  size: 1024,
  disabledCommands: ['AUTH'],
  onData(stream, session, callback) {
    const file = join(tmpdir(), session.id + '.eml');
    pipeline(stream, createWriteStream(file))
      .then(() => {
        if (stream.sizeExceeded) {
          const err: Error & { responseCode?: number } = new Error('Message too big');
          err.responseCode = 552;
          return callback(err);
        }
        callback(null, 'stored ' + stream.byteLength + ' bytes');
      })
      .catch(callback);
  }
});

const hashing = new SMTPServer({
  disabledCommands: ['AUTH'],
  onData(stream, session, callback) {
    digest(stream).then(
      sum => callback(null, 'OK ' + sum),
      (err: Error) => callback(err)
    );
  }
});

const echo = new SMTPServer({
  disabledCommands: ['AUTH'],
  onData(stream, session, callback) {
    stream.pipe(process.stdout, { end: false });
    stream.once('error', err => callback(err));
    stream.on('end', callback);
  }
});

toDisk.listen(0);
hashing.listen(0);
echo.listen(0);
