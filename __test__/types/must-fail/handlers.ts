// Wrong handler signatures and wrong callback use. Every line marked with an
// "expect-error" comment must fail to compile at that line with that code; no other
// line may fail. Lines marked "stricter" compile against smtp-server's own
// declarations and fail only with smtp-server-rs (where the declarations follow the
// runtime more closely).
import { SMTPServer } from 'smtp-server';

new SMTPServer({
  onData(stream: string, session, callback) { // expect-error TS2322
    callback();
  }
});

new SMTPServer({
  onData(stream, session, callback: (err: number) => void) { // expect-error TS2322
    stream.resume();
  }
});

new SMTPServer({
  onData(stream, session, callback) {
    stream.on('end', () => callback(null, 250)); // expect-error TS2345
  }
});

new SMTPServer({
  onMailFrom(address: string, session, callback) { // expect-error TS2322
    callback();
  }
});

new SMTPServer({
  onRcptTo(address, session, callback) {
    callback('Recipient rejected'); // expect-error TS2345
  }
});

new SMTPServer({
  onConnect(session, callback) {
    callback(null, 'welcome'); // expect-error TS2554
  }
});

new SMTPServer({
  onAuth(auth, session, callback) {
    callback(null, 'alice'); // expect-error TS2559
  }
});

new SMTPServer({
  onAuth(auth, session, callback) {
    callback(null, { username: auth.username }); // expect-error TS2353
  }
});

new SMTPServer({
  onAuth(auth, session, callback) {
    callback({ user: auth.username }); // expect-error TS2353
  }
});

new SMTPServer({
  onAuth(auth, session, callback) {
    if (auth.method === 'NTLM') { // expect-error TS2367
      return callback(new Error('no NTLM'));
    }
    callback(null, { user: 1 });
  }
});

class WrongOverride extends SMTPServer {
  onData(stream: Buffer, session: unknown, callback: () => void): void { // expect-error TS2416
    callback();
  }
}
console.log(WrongOverride);
