// Misreading the session, envelope, address and stream types.
import { SMTPServer, SMTPServerSession, SMTPServerDataStream } from 'smtp-server';

function sender(session: SMTPServerSession): string {
  return session.envelope.mailFrom; // expect-error TS2322
}

function senderAddress(session: SMTPServerSession): string {
  return session.envelope.mailFrom.address; // expect-error TS2339
}

function recipients(session: SMTPServerSession): string[] {
  return session.envelope.rcptTo; // expect-error TS2322
}

function port(session: SMTPServerSession): string {
  return session.remotePort; // expect-error TS2322
}

function oversize(stream: SMTPServerDataStream): number {
  return stream.sizeExceeded; // expect-error TS2322
}

function size(stream: SMTPServerDataStream): string {
  return stream.byteLength; // expect-error TS2322
}

new SMTPServer({
  onRcptTo(address, session, callback) {
    console.log(address.toLowerCase()); // expect-error TS2339
    callback();
  }
});

console.log(sender, senderAddress, recipients, port, oversize, size);
