'use strict';

// The logger entries smtp-server writes for protocol traffic, from what the native side
// recorded: commands, replies, message sizes, XCLIENT/XFORWARD changes, TLS upgrades.

/** Writes the protocol traffic the native side recorded to the logger, as smtp-server logs it. */
function logTrace(log, options, conn, entries) {
  const cid = conn.id;
  for (const e of entries) {
    const user = logUser(conn.session);
    switch (e.k) {
      case 'c':
        log.debug({ tnx: 'command', cid, command: e.n, user }, 'C:', e.l);
        break;
      case 's':
        log.debug({ tnx: 'send', cid, user }, 'S:', e.l);
        break;
      case 'd':
        log.debug({ tnx: 'data', cid, bytes: e.b, user }, 'C: <%s bytes of DATA>', e.b);
        break;
      case 'big':
        log.info({ tnx: 'data', cid, bytes: e.b, size: options.size }, 'Rejected message of %s bytes, the limit is %s bytes', e.b, options.size);
        break;
      case 'shell':
        log.info({ tnx: 'shell', cid, user }, 'Client tried to invoke SHELL');
        break;
      case 'kill':
        log.info({ tnx: 'kill', cid, user }, 'Client tried to invoke KILL');
        break;
      case 'deauth':
        log.info({ tnx: 'deauth', cid, user }, 'User deauthenticated using %s', 'XCLIENT');
        break;
      case 'tls':
        log.info({ tnx: 'starttls', cid, user, cipher: e.cipher }, 'Connection upgraded to TLS using', e.cipher || 'N/A');
        break;
      case 'x':
        logProxied(log, conn, e, user);
        break;
      case 'nouser':
        conn.session.user = false;
        break;
      case 'conn':
        log.info({ tnx: 'connection', cid, host: conn.remoteAddress, hostname: e.h }, 'Connection from %s', e.h);
        break;
      case 'badptr':
        log.info({ tnx: 'connection', cid, host: conn.remoteAddress, hostname: e.h }, 'Discarded invalid reverse resolved hostname %s for %s', JSON.stringify(e.h), conn.remoteAddress);
        break;
    }
  }
}

/** Logs a field XCLIENT or XFORWARD changed. */
function logProxied(log, conn, e, user) {
  const cmd = e.f ? 'XFORWARD' : 'XCLIENT';
  const tnx = e.f ? 'xforward' : 'xclient';
  const entry = { tnx, cid: conn.id, [tnx + 'Key']: e.key, [tnx]: e.v, user };
  switch (e.key) {
    case 'ADDR':
      return log.info(entry, '%s from %s through %s', cmd, e.v, e.ra);
    case 'NAME':
      return log.info(entry, '%s hostname resolved as "%s"', cmd, e.v);
    case 'PORT':
      return log.info(entry, e.f ? 'XFORWARD port resolved as "%s"' : 'XCLIENT remote port resolved as "%s"', e.v);
    case 'HELO':
      return log.info(entry, 'XFORWARD HELO name resolved as "%s"', e.v);
  }
}

/** The `user` field of smtp-server's log entries. */
function logUser(session) {
  return (session.user && session.user.username) || session.user;
}

module.exports = { logTrace, logUser };
