// bun-smtp's basic example: save each message as an .eml file with pipeTo().
import { SMTPServer } from 'bun-smtp';
import type { DataStream, SMTPSession } from 'bun-smtp';
import * as fs from 'fs';

interface FileSink {
  write(chunk: string | ArrayBufferView | ArrayBuffer): number | Promise<number>;
  flush(): number | Promise<number>;
  end(error?: Error): number | Promise<number>;
}
declare function writer(path: string): FileSink;

async function save(stream: DataStream, session: SMTPSession): Promise<void> {
  await stream.pipeTo(writer(`./mail/${session.id}.eml`));
}

const server = new SMTPServer({
  authOptional: true,
  onData(stream, session, callback) {
    const done = session.secure ? save(stream, session) : stream.pipeTo(fs.createWriteStream(`./mail/${session.id}.eml`));
    done.then(() => callback(null), callback);
  }
});
server.listen(2525);
