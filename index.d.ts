/// <reference types="node" />
// Type declarations of smtp-server-rs.
//
// The shapes follow smtp-server 3.21 so that code typed against `@types/smtp-server`
// or against smtp-server's own declarations keeps compiling after the import is
// switched to 'smtp-server-rs'. Where this package differs at runtime (the TLS stack,
// the listener facade, the onSecure socket) the comment of the item says so.

import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import type * as tls from 'node:tls';

/** A duration in milliseconds. */
export type ms = number;

// ---------------------------------------------------------------------------
// Addresses and the envelope
// ---------------------------------------------------------------------------

/**
 * The parameters that followed the address of a MAIL FROM or RCPT TO command,
 * e.g. `{ SIZE: '1024', BODY: '8BITMIME', SMTPUTF8: true }`. Names are upper-cased;
 * a parameter sent without `=value` maps to `true`.
 */
export type SMTPServerAddressArgs = Record<string, string | true>;

/** The DSN parameters (RFC 3461) of one RCPT TO command. Only filled in when `hideDSN` is `false`. */
export interface SMTPServerRecipientDSN {
  /** The NOTIFY keywords in upper case, e.g. `['SUCCESS', 'FAILURE']` or `['NEVER']`. */
  notify?: string[] | undefined;
  /** The ORCPT parameter as the client sent it, e.g. `'rfc822;user@example.com'`. */
  orcpt?: string | undefined;
}

/** The address of a MAIL FROM or RCPT TO command, as `onMailFrom`/`onRcptTo` and the envelope see it. */
export interface SMTPServerAddress {
  /** The mailbox between the angle brackets; `''` for the null sender `<>`. A punycode domain is given in Unicode. */
  address: string;
  /** The command's parameters, or `false` when it had none. */
  args: SMTPServerAddressArgs | false;
  /** DSN details of a recipient (RCPT TO only, and only with `hideDSN: false`). */
  dsn?: SMTPServerRecipientDSN | undefined;
}

/** The DSN parameters (RFC 3461) of the MAIL FROM command. */
export interface SMTPServerEnvelopeDSN {
  /** RET: `'FULL'`, `'HDRS'`, or `null` when the client did not send it. */
  ret: string | null;
  /** ENVID as sent by the client, or `null`. */
  envid: string | null;
}

/** The mail transaction in progress (reset by RSET, HELO/EHLO and after each message). */
export interface SMTPServerEnvelope {
  /** The accepted sender, or `false` until MAIL FROM has been accepted. */
  mailFrom: SMTPServerAddress | false;
  /** The accepted recipients in the order they were given (a repeated address replaces the earlier entry). */
  rcptTo: SMTPServerAddress[];
  /** `true` when MAIL FROM carried the REQUIRETLS parameter (RFC 8689). */
  requireTLS?: boolean | undefined;
  /** The BODY parameter in lower case: `'7bit'` (the default), `'8bitmime'`, or `'binarymime'` (only with CHUNKING). */
  bodyType?: string | undefined;
  /** `true` when MAIL FROM carried the SMTPUTF8 parameter (RFC 6531). */
  smtpUtf8?: boolean | undefined;
  /** RET and ENVID of MAIL FROM; the property exists only when `hideDSN` is `false`. */
  dsn?: SMTPServerEnvelopeDSN | undefined;
}

// ---------------------------------------------------------------------------
// The session
// ---------------------------------------------------------------------------

/**
 * The state of one client connection. Every handler of a connection gets the same
 * object, so properties an application sets on it in one handler are visible in the
 * next ones.
 */
export interface SMTPServerSession {
  /** A random identifier of the connection, also used in log entries. */
  id: string;
  /** `true` once the connection is encrypted (implicit TLS, STARTTLS, or `secured`). */
  secure: boolean;
  /** The server side IP address of the connection. */
  localAddress: string;
  /** The server side port of the connection. */
  localPort: number;
  /** The client's IP address (replaced by a PROXY header or by XCLIENT ADDR). */
  remoteAddress: string;
  /** The client's port (replaced by a PROXY header or XCLIENT PORT; an unparsable XCLIENT PORT leaves `''`). */
  remotePort: number;
  /** The reverse DNS name of the client, or its address as a literal (`'[192.0.2.1]'`) when there is none. */
  clientHostname: string;
  /**
   * The greeting command the client used: `'HELO'`, `'EHLO'` or `'LHLO'`.
   * It is `false` at runtime until the client has sent one; typed as a string like
   * smtp-server's declarations so existing code keeps compiling.
   */
  openingCommand: string;
  /**
   * The name the client gave with HELO/EHLO/LHLO. `false` at runtime until the client
   * has greeted; typed as a string like smtp-server's declarations.
   */
  hostNameAppearsAs: string;
  /** The protocol name for a Received header: `'SMTP'`, `'ESMTP'`, `'ESMTPS'`, `'ESMTPSA'`, `'LMTP'`... */
  transmissionType: string;
  /** The negotiated cipher of an encrypted connection, `false` for a cleartext one. */
  tlsOptions: tls.CipherNameAndProtocol | false;
  /** The current mail transaction. */
  envelope: SMTPServerEnvelope;
  /** The number of the current mail transaction on this connection, starting at 1. */
  transaction: number;
  /** Whatever `onAuth` passed as `response.user`; set once the client has authenticated. */
  user?: any;
  /**
   * The host name the client asked for with SNI (lower-cased), `false` on a TLS
   * connection without SNI, and absent before TLS.
   */
  servername?: string | false | null | undefined;
  /** The attributes an XCLIENT command set, by upper-case name; `NAME:DEFAULT` etc. keep the values they replaced. */
  xClient: Map<string, string | number | false>;
  /** The attributes an XFORWARD command set, by upper-case name. */
  xForward: Map<string, string | number | false>;
  /** The text of the last error reply sent to the client. */
  error?: string | undefined;
  /** `true` after the client sent the sendmail `WIZ` command. */
  isWizard?: boolean | undefined;
  /**
   * Set by the application (e.g. in `onConnect`) to replace the server-wide
   * `disabledCommands` for this connection only: commands in the list are refused and
   * left out of the EHLO reply. Names are case-insensitive.
   */
  disabledCommands?: string[] | undefined;
}

// ---------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------

/** The SASL mechanisms (and XCLIENT LOGIN) that reach `onAuth`. */
export type SMTPServerAuthenticationMethod = 'PLAIN' | 'LOGIN' | 'XOAUTH2' | 'CRAM-MD5' | 'XCLIENT';

/** The credentials `onAuth` is asked to check. Which fields are set depends on `method`. */
export interface SMTPServerAuthentication {
  /** The mechanism the client used; `'XCLIENT'` when an XCLIENT command carried LOGIN. */
  method: SMTPServerAuthenticationMethod;
  /** The user name (for PLAIN the authentication identity, or the authorization identity when the former is empty). */
  username?: string | undefined;
  /** The password for PLAIN and LOGIN; `null` for XCLIENT; absent for XOAUTH2 and CRAM-MD5. */
  password?: string | null | undefined;
  /** PLAIN: the authentication identity of the token (RFC 4616). */
  authcid?: string | undefined;
  /** PLAIN: the authorization identity of the token, `''` when the client sent none. */
  authzid?: string | undefined;
  /** XOAUTH2: the bearer token. */
  accessToken?: string | undefined;
  /** CRAM-MD5: the challenge the server sent. */
  challenge?: string | undefined;
  /** CRAM-MD5: the hex digest the client answered with. */
  challengeResponse?: string | undefined;
  /**
   * CRAM-MD5: returns `true` when the client's answer was computed from `password`.
   * Only CRAM-MD5 attempts carry this function; declared as always present, like in
   * smtp-server's declarations, so check `method` before calling it.
   */
  validatePassword(password: string): boolean;
}

/** What `onAuth` passes to its callback. Without a truthy `user` the attempt fails. */
export interface SMTPServerAuthenticationResponse {
  /** Any truthy value marks the client as authenticated and is stored as `session.user`. */
  user?: any;
  /**
   * XOAUTH2 failures: an object (e.g. `{ status: '401', schemes: 'bearer', scope: '...' }`)
   * the server sends to the client JSON-encoded and base64-encoded.
   */
  data?: object | undefined;
  /** The reply text of a failed attempt (instead of `Error: Authentication credentials invalid`, sent with 535). */
  message?: string | undefined;
  /** The reply code of a failed attempt (instead of 535). */
  responseCode?: number | undefined;
}

// ---------------------------------------------------------------------------
// Errors, the DATA stream, connection info
// ---------------------------------------------------------------------------

/**
 * An error given to a handler callback. Its `responseCode` becomes the SMTP reply
 * code and its `message` the reply text; without a code the server uses the default
 * of the command (e.g. 550 for MAIL/RCPT, 450 for DATA). Errors of the `error` event
 * also carry a Node-style `code` and the client's `remoteAddress`.
 */
export interface SMTPServerError extends Error {
  /** The SMTP reply code to answer with (100-999). */
  responseCode?: number | undefined;
  /** `error` event: a Node-style error code such as `'ECONNRESET'` or `'ETIMEDOUT'`. */
  code?: string | undefined;
  /** `error` event: the address of the client the error is about. */
  remoteAddress?: string | undefined;
}

/**
 * The message body `onData` receives, dot-unstuffed, up to (not including) the final
 * `.` line. It must be read to the end (pipe it somewhere, or call `resume()`) unless
 * the handler answers right away.
 *
 * It is a Node `Readable` and also has the methods of a web `ReadableStream` (as the
 * stream bun-smtp passes): `getReader()`, `pipeTo()`, `pipeThrough()`, `tee()`,
 * `cancel()` and `locked`. They read the same Buffer chunks, with the same
 * backpressure; use one side or the other for a message, not both.
 */
export interface SMTPServerDataStream extends Readable {
  /** `true` while a web reader (from `getReader()`, or a pipe) holds the stream. */
  readonly locked: boolean;
  /** A web reader of the message; the stream is `locked` until `reader.releaseLock()`. */
  getReader(): ReadableStreamDefaultReader<Buffer>;
  /**
   * Writes the message into a web `WritableStream`, a Node `Writable` or a sink with
   * `write()` (such as Bun's `FileSink` from `Bun.file(path).writer()`), with
   * backpressure; resolves once it has all been written, the destination ended (unless
   * `preventClose`) and flushed.
   */
  pipeTo(destination: WritableStream<Buffer> | NodeJS.WritableStream | SMTPServerPipeSink, options?: SMTPServerStreamPipeOptions): Promise<void>;
  /** Pipes the message through a web transform (`{ writable, readable }`) and returns its readable side. */
  pipeThrough<T>(transform: { writable: WritableStream<Buffer>; readable: ReadableStream<T> }, options?: SMTPServerStreamPipeOptions): ReadableStream<T>;
  /** Two web `ReadableStream`s that each get every chunk of the message. */
  tee(): [ReadableStream<Buffer>, ReadableStream<Buffer>];
  /** Drops the rest of the message, as `destroy()` does. */
  cancel(reason?: unknown): Promise<void>;
  /** The number of body bytes received so far; the full size once the stream has ended. */
  byteLength: number;
  /**
   * `true` once `byteLength` went over the `size` option. The message is still
   * delivered to the stream; answer with an error (code 552) to refuse it, or set
   * `rejectOversized`.
   */
  sizeExceeded: boolean;
}

/**
 * A destination of `pipeTo()` that is neither a web nor a Node stream, such as Bun's
 * `FileSink`: `write()` may return a promise (awaited before the next chunk), then
 * `flush()` and `end()` are called and awaited.
 */
export interface SMTPServerPipeSink {
  /** Takes one chunk; a returned promise holds the next one back until it settles. */
  write(chunk: Uint8Array): unknown;
  /** Called once the message has been written. */
  flush?(): unknown;
  /** Called last (unless `preventClose`); with the error when the message stream failed. */
  end?(error?: Error): unknown;
}

/** The options of the DATA stream's `pipeTo()` and `pipeThrough()` (those of the web streams). */
export interface SMTPServerStreamPipeOptions {
  /** Leaves the destination open when the message has ended. */
  preventClose?: boolean | undefined;
  /** Does not abort the destination when the message stream fails. */
  preventAbort?: boolean | undefined;
  /** Does not cancel the message stream when the destination fails. */
  preventCancel?: boolean | undefined;
  /** Stops the pipe when the signal aborts. */
  signal?: AbortSignal | undefined;
}

/** One entry of the `onData` result list: a reply text for success or an `Error` for failure. */
export type SMTPServerDataResult = string | Error;

/** What the `connect` event reports about a new client. */
export interface SMTPServerConnectionInfo {
  /** The connection's id (the same as `session.id`). */
  id: string;
  /** The server side IP address. */
  localAddress: string;
  /** The server side port. */
  localPort: number;
  /** The client's IP address. */
  remoteAddress: string;
  /** The client's port. */
  remotePort: number;
  /** The client's reverse DNS name or address literal. */
  clientHostname: string;
  /** The name the client greeted with, `false` before HELO/EHLO (always so at connect time unless XCLIENT set it). */
  hostNameAppearsAs: string | false;
}

/**
 * What `onSecure` gets instead of a `tls.TLSSocket`: the TLS layer is rustls inside
 * the native core, so this object offers the parts of a TLS socket applications read.
 * It is not an instance of `tls.TLSSocket` (its members carry the same types, so code
 * that casts it to one keeps compiling).
 */
export interface SMTPServerSecureSocket {
  /** The client's IP address. */
  readonly remoteAddress?: string | undefined;
  /** The client's port. */
  readonly remotePort?: number | undefined;
  /** The server side IP address. */
  readonly localAddress?: string | undefined;
  /** The server side port. */
  readonly localPort?: number | undefined;
  /** Always `true`: the handler runs once the handshake has completed. */
  encrypted: true;
  /** The SNI host name the client asked for (lower-cased), or `false` without SNI. */
  servername: string | false | null;
  /** `true` when a client certificate was requested (`requestCert`) and it verified against `ca`. */
  authorized: boolean;
  /** Why the client certificate did not verify (a message string at runtime), or `null`. */
  authorizationError: Error | string | null;
  /** No ALPN is negotiated: always `false`. */
  alpnProtocol: string | false | null;
  /** The client's certificate in Node's format (built with `crypto.X509Certificate`); an empty object when there is none. */
  getPeerCertificate(detailed?: boolean): tls.PeerCertificate | tls.DetailedPeerCertificate;
  /** The negotiated cipher suite and TLS version. */
  getCipher(): tls.CipherNameAndProtocol;
  /** The TLS version, `'TLSv1.2'` or `'TLSv1.3'`. */
  getProtocol(): string | null;
}

/** A reverse DNS resolver (the shape of `dns.reverse`), for the `resolver` option. */
export interface SMTPServerResolver {
  /**
   * Looks up the names of `ip`; the server uses the first one as `session.clientHostname`.
   * An error, or no names, leaves the address literal.
   */
  reverse(ip: string, callback: (err: Error | null, hostnames?: string[]) => void): void;
}

/**
 * A bunyan/pino style logger for the `logger` option. Each level is called as
 * `logger[level](entry, format, ...args)`; missing levels fall back to another
 * method the object has (`info`, `debug`, `log`, ...).
 */
export interface SMTPServerLogger {
  /** Receives trace entries (protocol details). */
  trace?(...args: any[]): any;
  /** Receives debug entries. */
  debug?(...args: any[]): any;
  /** Receives info entries (connections, authentication, messages). */
  info?(...args: any[]): any;
  /** Receives warnings. */
  warn?(...args: any[]): any;
  /** Receives errors (failed connections, handler exceptions). */
  error?(...args: any[]): any;
  /** Receives fatal entries. */
  fatal?(...args: any[]): any;
  /** Used for the levels the object lacks when it has no `info`/`debug`. */
  log?(...args: any[]): any;
  /** Other members of the logger object are left alone. */
  [member: string]: any;
}

/** The logger a server uses internally (`server.logger`): one function per level, no-ops when logging is off. */
export interface SMTPServerInternalLogger {
  /** Logs at trace level: `(entry, format, ...args)`. */
  trace(...args: any[]): void;
  /** Logs at debug level. */
  debug(...args: any[]): void;
  /** Logs at info level. */
  info(...args: any[]): void;
  /** Logs at warn level. */
  warn(...args: any[]): void;
  /** Logs at error level. */
  error(...args: any[]): void;
  /** Logs at fatal level. */
  fatal(...args: any[]): void;
}

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

/**
 * TLS options for the server, the SNI table and `updateSecureContext()`: Node's
 * `tls.TlsOptions`. rustls terminates TLS, so `key`, `cert`, `ca`, `passphrase`,
 * `minVersion`, `maxVersion`, `requestCert` and `rejectUnauthorized` take effect;
 * OpenSSL-only settings (`ciphers`, `ecdhCurve`, `dhparam`, `honorCipherOrder`,
 * `secureOptions`, ...) are ignored and `pfx` is refused (see the README).
 */
export type SMTPServerTLSOptions = tls.TlsOptions;

/** The callback of `SNICallback`: TLS options (`{ key, cert }`) for the requested name, or nothing for the default certificate. */
export type SMTPServerSNIResult = (err: Error | null, options?: SMTPServerTLSOptions | tls.SecureContext | null) => void;

/** The callback of `onConnect`, `onSecure`, `onMailFrom` and `onRcptTo`: no argument accepts, an error refuses. */
export type SMTPServerCallback = (err?: Error | null) => void;

/** The callback of `onAuth`. */
export type SMTPServerAuthCallback = (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void;

/**
 * The callback of `onData`: an error refuses the message; otherwise the optional
 * `message` is the reply text. An LMTP server may pass one result per recipient
 * (a string for success, an `Error` for failure).
 */
export type SMTPServerDataCallback = (err?: Error | null, message?: string | SMTPServerDataResult[]) => void;

/**
 * The options of `new SMTPServer(options)`. TLS settings (`key`, `cert`, `ca`, ...)
 * go on the same object. Node `net.Server` options are accepted for compatibility
 * but have no effect: the listening sockets belong to the native core.
 */
export interface SMTPServerOptions extends Omit<tls.TlsOptions, 'SNICallback'>, net.ServerOpts {
  /** Start TLS right after the connection opens (implicit TLS, port 465 style). Default `false`: plain text with STARTTLS. */
  secure?: boolean | undefined;
  /** The connection is already encrypted by something in front of the server (e.g. a TLS proxy): treat it as secure without doing TLS. */
  secured?: boolean | undefined;
  /** Do the TLS handshake right after the connection opens even though `secure` is not set. */
  needsUpgrade?: boolean | undefined;
  /** The server's host name in the greeting and the EHLO reply. Default: `os.hostname()`. */
  name?: string | undefined;
  /** Text appended to the 220 greeting. */
  banner?: string | undefined;
  /** The format of the HELO/EHLO greeting line: the first `%s` is the server name, the second the client's hostname. */
  heloResponse?: string | undefined;
  /** Speak LMTP (LHLO, one DATA reply per recipient) instead of SMTP. */
  lmtp?: boolean | undefined;
  /** The largest message in bytes, announced with the SIZE extension; larger ones set `stream.sizeExceeded`. */
  size?: number | undefined;
  /** Leave the limit out of the EHLO SIZE line while still checking it. */
  hideSize?: boolean | undefined;
  /** Answer 552 for a message over `size` whatever `onData` says (it still gets the stream). */
  rejectOversized?: boolean | undefined;
  /** The SASL mechanisms offered: any of `'PLAIN'`, `'LOGIN'`, `'XOAUTH2'`, `'CRAM-MD5'`. Default `['PLAIN', 'LOGIN']`. */
  authMethods?: string[] | undefined;
  /** Allow mail without authentication while still offering AUTH. */
  authOptional?: boolean | undefined;
  /** Offer AUTH on unencrypted connections too. */
  allowInsecureAuth?: boolean | undefined;
  /** The reply text for MAIL, RCPT and DATA when authentication is required but missing. */
  authRequiredMessage?: string | undefined;
  /** Commands to refuse and leave out of EHLO, e.g. `['AUTH']` or `['STARTTLS']`. Case-insensitive. */
  disabledCommands?: string[] | undefined;
  /** Accept STARTTLS but do not announce it. */
  hideSTARTTLS?: boolean | undefined;
  /**
   * `false` turns on CHUNKING (RFC 3030): `BDAT <size> [LAST]` is accepted and announced,
   * and the chunks of one message arrive in one `onData` stream, byte for byte (no
   * dot-stuffing). Default `true`: off, as in smtp-server.
   */
  hideCHUNKING?: boolean | undefined;
  /** With CHUNKING on, do not offer BINARYMIME (`BODY=BINARYMIME`, which requires BDAT). */
  hideBINARYMIME?: boolean | undefined;
  /** Do not announce PIPELINING. */
  hidePIPELINING?: boolean | undefined;
  /** Do not announce 8BITMIME. */
  hide8BITMIME?: boolean | undefined;
  /** Do not announce SMTPUTF8. */
  hideSMTPUTF8?: boolean | undefined;
  /** Do not announce ENHANCEDSTATUSCODES (and leave the codes out of replies). Default `true`; set `false` to enable them. */
  hideENHANCEDSTATUSCODES?: boolean | undefined;
  /** Do not announce DSN. Default `true`; set `false` to parse NOTIFY/ORCPT/RET/ENVID. */
  hideDSN?: boolean | undefined;
  /** Do not announce REQUIRETLS. Default `true`. */
  hideREQUIRETLS?: boolean | undefined;
  /** Check MAIL FROM/RCPT TO addresses only loosely (accept what most clients send even when not RFC 5321 syntax). */
  lenientAddressParsing?: boolean | undefined;
  /**
   * smtp-server-rs: refuse bare line endings. A command line with a CR or LF outside a CRLF
   * pair gets `550 Error: bare <LF> received` (or `<CR>`) and the connection is closed; a
   * DATA body with one, or with a NUL byte, is read to its end and refused with that 550
   * (once per recipient in LMTP); `onData`'s stream ends in an error. Default `false`.
   */
  rejectBareLineEndings?: boolean | undefined;
  /**
   * smtp-server-rs: refuse input sent after DATA before the 354 reply (RFC 2920) with
   * `554 Error: SMTP protocol synchronization` and close the connection, as Postfix's
   * `smtpd_forbid_unauth_pipelining`. BDAT chunks are not affected. Default `false`.
   */
  strictPipelining?: boolean | undefined;
  /**
   * smtp-server-rs: serve connections whose commands wait for handlers (`onConnect`,
   * `onMailFrom`, `onRcptTo`, `onData`, `onAuth`, `onSecure`, `connect` listeners) on
   * the JavaScript thread's event loop, so that a handler's question and answer cost no
   * wake-up of another thread. Applies to plain-TCP listeners (STARTTLS included) under
   * Node; implicit TLS (`secure`), Unix sockets and Bun keep connections on the native
   * threads. `false` keeps every connection there. Default `true`.
   */
  eventLoop?: boolean | undefined;
  /** The most clients connected at once; further ones get `421 Too many connected clients`. */
  maxClients?: number | undefined;
  /** The most recipients of one transaction; further RCPT TO commands get 452. */
  maxRecipients?: number | undefined;
  /** The longest command line in bytes. */
  maxCommandLength?: number | undefined;
  /** How many commands an unauthenticated client may send before it is disconnected (default 10); `false` for no limit. */
  maxAllowedUnauthenticatedCommands?: number | false | undefined;
  /** Close a connection that has been idle this long (default one minute). */
  socketTimeout?: ms | undefined;
  /** After `close()`, how long open connections may still run before they are cut (default 30 seconds). */
  closeTimeout?: ms | undefined;
  /** Read a PROXY protocol header first: `true` for every peer, or the addresses of the proxies to expect it from. */
  useProxy?: boolean | string[] | undefined;
  /** Accept the XCLIENT command: `true` for every client, or the addresses allowed to use it. */
  useXClient?: boolean | string[] | undefined;
  /** Accept the XFORWARD command: `true` for every client, or the addresses allowed to use it. */
  useXForward?: boolean | string[] | undefined;
  /** Client addresses not to log connections of (e.g. a load balancer's health checks). */
  ignoredHosts?: string[] | undefined;
  /** Skip the reverse DNS lookup of clients (`clientHostname` is then the address literal). */
  disableReverseLookup?: boolean | undefined;
  /** The resolver for reverse lookups instead of `dns.reverse`. */
  resolver?: SMTPServerResolver | undefined;
  /** `true` logs to the console, a bunyan/pino-style object receives the entries, `false`/unset logs nothing. */
  logger?: SMTPServerLogger | boolean | undefined;
  /** The `component` field of log entries. Default `'smtp-server'`. */
  component?: string | undefined;
  /** TLS options per SNI host name (used when there is no `SNICallback`). */
  sniOptions?: { [servername: string]: SMTPServerTLSOptions } | Map<string, SMTPServerTLSOptions> | undefined;
  /**
   * Picks the certificate for an SNI host name: call `callback(null, { key, cert })`
   * (merged over the server's TLS options). A `tls.SecureContext` cannot be used by
   * rustls: it is logged and the default certificate is used, as for an error.
   */
  SNICallback?: ((servername: string, callback: SMTPServerSNIResult) => void) | undefined;

  // Every handler may also be an `async` function (or return a promise) instead of calling
  // its callback: a rejection is the error reply, a fulfilment accepts with its value as
  // the result. A handler that declares the callback parameter and resolves with
  // `undefined` answers through the callback instead. The first answer wins.

  /** Called for each new client before the greeting; an error refuses the connection with its code (default 554). */
  onConnect?(session: SMTPServerSession, callback: SMTPServerCallback): void | PromiseLike<void>;
  /** Called once a TLS handshake has completed (implicit TLS or STARTTLS); an error closes the connection. */
  onSecure?(socket: SMTPServerSecureSocket, session: SMTPServerSession, callback: SMTPServerCallback): void | PromiseLike<void>;
  /** Checks AUTH credentials; see `SMTPServerAuthenticationResponse`. */
  onAuth?(auth: SMTPServerAuthentication, session: SMTPServerSession, callback: SMTPServerAuthCallback): void | PromiseLike<SMTPServerAuthenticationResponse | void>;
  /** Checks the sender of MAIL FROM; an error refuses it (default 550). */
  onMailFrom?(address: SMTPServerAddress, session: SMTPServerSession, callback: SMTPServerCallback): void | PromiseLike<void>;
  /** Checks a recipient of RCPT TO; an error refuses it (default 550). */
  onRcptTo?(address: SMTPServerAddress, session: SMTPServerSession, callback: SMTPServerCallback): void | PromiseLike<void>;
  /** Receives the message body; the reply is sent once the callback was called and the stream has ended. */
  onData?(stream: SMTPServerDataStream, session: SMTPServerSession, callback: SMTPServerDataCallback): void | PromiseLike<string | SMTPServerDataResult[] | void>;
  /** Told that a connection has closed; the callback does nothing and need not be called. */
  onClose?(session: SMTPServerSession, callback: SMTPServerCallback): void | PromiseLike<void>;
}

/** The addresses `server.connect()` uses in place of the socket's. */
export interface SMTPServerSocketOptions {
  /** The client's address. */
  remoteAddress?: string | undefined;
  /** The client's port. */
  remotePort?: number | undefined;
  /** The local address. */
  localAddress?: string | undefined;
  /** The local port. */
  localPort?: number | undefined;
}

/** What `server.stats()` returns: counters since the server was created, and the connections open now. */
export interface SMTPServerStats {
  /** Connections open now. */
  connections: number;
  /** Connections accepted. */
  connectionsTotal: number;
  /** Messages answered with a 2xx reply (under LMTP: for at least one recipient). */
  messagesAccepted: number;
  /** Messages refused (under LMTP: for every recipient), including oversized ones. */
  messagesRejected: number;
  /** Bytes read from clients (after TLS decryption). */
  bytesReceived: number;
  /** Bytes of replies written to clients (before TLS encryption). */
  bytesSent: number;
  /** TLS handshakes completed (implicit TLS and STARTTLS). */
  tlsHandshakes: number;
  /** TLS handshakes that failed. */
  tlsFailures: number;
  /** Errors reported through the `error` event (or that would be, without a listener). */
  errors: number;
  /** Connections served on the JavaScript thread's event loop (see the `eventLoop` option). */
  eventLoopConnections: number;
}

/** `server.options` after the constructor filled in the defaults. */
export type SMTPServerResolvedOptions = SMTPServerOptions & {
  /** Upper-cased and trimmed. */
  disabledCommands: string[];
  /** Upper-cased and trimmed; `['LOGIN', 'PLAIN']` when none were given. */
  authMethods: string[];
};

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

/** The events of `SMTPServer` and their listener arguments. */
export interface SMTPServerEvents {
  /** The server stopped listening and its connections have ended. */
  close: [];
  /** A client connection failed (reset, timeout, TLS error...) or listening failed. Errors of clients are only emitted when there is a listener. */
  error: [err: SMTPServerError];
  /** A client connected (after XCLIENT/XFORWARD when those are enabled). With a listener the greeting waits for the listeners to run. */
  connect: [info: SMTPServerConnectionInfo];
}

/** The events of `server.server` and their listener arguments. */
export interface SMTPServerListenerEvents {
  /** The server is bound and accepting connections. */
  listening: [];
  /** The server stopped listening and its connections have ended. */
  close: [];
  /** Listening failed (e.g. `EADDRINUSE`). */
  error: [err: NodeJS.ErrnoException];
}

/** Any event name except the ones with declared listener types (those must match). */
type OtherEvent<E, Known> = E & (E extends keyof Known ? never : unknown);

// ---------------------------------------------------------------------------
// The listener facade and connections
// ---------------------------------------------------------------------------

/**
 * `server.server`: typed as the `net.Server` smtp-server exposes. The sockets live in the
 * native core, so at run time this is a stand-in with the `net.Server` members
 * (listening on a handle or file descriptor is not supported, and no `connection`
 * event is emitted).
 */
export interface SMTPServerListener extends net.Server {
  /** `true` while the server accepts connections. */
  listening: boolean;
  /** Starts listening; see `SMTPServer#listen`. */
  listen(port?: number | string | null, hostname?: string, backlog?: number, listeningListener?: () => void): this;
  listen(port?: number | string | null, hostname?: string, listeningListener?: () => void): this;
  listen(port?: number | string | null, backlog?: number, listeningListener?: () => void): this;
  listen(port?: number | string | null, listeningListener?: () => void): this;
  listen(options: net.ListenOptions, listeningListener?: () => void): this;
  /** The bound address; the path for a Unix socket; `null` when not listening. */
  address(): net.AddressInfo | string | null;
  /** Stops accepting connections; `callback` runs once the open ones have ended too (with an error when the server was not listening). */
  close(callback?: (err?: Error) => void): this;
  /** Keeps the process alive while listening (the default). */
  ref(): this;
  /** Lets the process exit even though the server is listening. */
  unref(): this;
  /** Reports the number of open connections. */
  getConnections(callback: (err: Error | null, count: number) => void): this;
  /** Undefined until set; setting it limits the clients as the `maxClients` option does. */
  maxConnections: number;
  /** The number of open connections. */
  connections: number;
  /** Closes the server (`await using`); resolves once it has closed. */
  [Symbol.asyncDispose](): Promise<void>;

  /** Adds a listener; the listener types of `listening`, `close` and `error` are checked. */
  on<K extends keyof SMTPServerListenerEvents>(event: K, listener: (...args: SMTPServerListenerEvents[K]) => void): this;
  on<E extends string | symbol>(event: OtherEvent<E, SMTPServerListenerEvents>, listener: (...args: any[]) => void): this;
  /** Adds a listener that runs once. */
  once<K extends keyof SMTPServerListenerEvents>(event: K, listener: (...args: SMTPServerListenerEvents[K]) => void): this;
  once<E extends string | symbol>(event: OtherEvent<E, SMTPServerListenerEvents>, listener: (...args: any[]) => void): this;
}

/** An open client connection, as found in `server.connections`. */
export interface SMTPServerConnection {
  /** The connection's id (the same as `session.id`). */
  id: string;
  /** The session object the handlers of this connection get. */
  session: SMTPServerSession;
  /** The client's IP address. */
  remoteAddress: string;
  /** The client's port. */
  remotePort: number;
  /** The server side IP address. */
  localAddress: string;
  /** The server side port. */
  localPort: number;
  /** The client's reverse DNS name or address literal (once known). */
  clientHostname?: string | undefined;
  /** `true` once the connection is encrypted. */
  secure: boolean;
  /** The negotiated cipher, or `false` on a cleartext connection. */
  tlsOptions: tls.CipherNameAndProtocol | false;
  /** Writes the reply line `code text` to the client. */
  send(code: number, text?: string): void;
  /** Closes the connection. */
  close(): void;
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/**
 * An SMTP or LMTP server. Handlers are given as options or defined by a subclass
 * (or assigned to the instance); the defaults accept every command and discard the
 * message.
 */
export declare class SMTPServer extends EventEmitter {
  /** Creates the server; it starts accepting connections with `listen()`. Invalid TLS material throws here. */
  constructor(options?: SMTPServerOptions | null);

  /** The options given to the constructor, with defaults filled in. */
  options: SMTPServerResolvedOptions;
  /** The listener facade (see `SMTPServerListener`). */
  server: SMTPServerListener;
  /** The open client connections. */
  connections: Set<SMTPServerConnection>;
  /** The logger built from the `logger` option. */
  logger: SMTPServerInternalLogger;

  /**
   * Starts listening, with the arguments of `net.Server#listen`: a port (a number or a
   * numeric string; 0 or none for a random one) with an optional host and backlog, a
   * Unix socket path, or a `net.ListenOptions` object (`reusePort` and `ipv6Only` are
   * supported). Errors such as `EADDRINUSE` are emitted as `error` events.
   *
   * Without a callback the returned object can be awaited: `await server.listen(2525)`
   * waits for `listening` and throws the listen error (which then is not thrown as an
   * `error` event when the server has no `error` listener).
   */
  listen(port?: number | string | null, hostname?: string, backlog?: number, listeningListener?: () => void): SMTPServerListener;
  listen(port?: number | string | null, hostname?: string, listeningListener?: () => void): SMTPServerListener;
  listen(port?: number | string | null, backlog?: number, listeningListener?: () => void): SMTPServerListener;
  listen(port?: number | string | null, listeningListener?: () => void): SMTPServerListener;
  listen(options: net.ListenOptions, listeningListener?: () => void): SMTPServerListener;

  /**
   * Stops accepting connections. Open connections get `421` on their next command and
   * are closed after `closeTimeout`; `callback` runs when everything has ended.
   */
  close(callback?: (() => void) | null): void;

  /** Live counters since the server was created; cheap enough to call every second. */
  stats(): SMTPServerStats;

  /**
   * Serves a connection over a socket accepted elsewhere (a `net.Socket`, a
   * `tls.TLSSocket`, or any Duplex with `remoteAddress`), taken as it is: no PROXY header
   * is read and no TLS handshake started; STARTTLS works over it. The addresses in
   * `socketOptions` replace the socket's. Slower than the server's own sockets: the
   * bytes cross between JavaScript and the native core.
   */
  connect(socket: net.Socket | Duplex, socketOptions?: SMTPServerSocketOptions): void;

  /** Replaces the TLS settings (certificates, SNI table) for handshakes from now on. */
  updateSecureContext(options?: SMTPServerTLSOptions | SMTPServerOptions | null): void;

  /** Default: accepts the connection. */
  onConnect(session: SMTPServerSession, callback: SMTPServerCallback): void | PromiseLike<void>;
  /** Default: accepts the TLS session. */
  onSecure(socket: SMTPServerSecureSocket, session: SMTPServerSession, callback: SMTPServerCallback): void | PromiseLike<void>;
  /** Default: refuses every login (`Authentication not implemented`); XCLIENT LOGIN is accepted. */
  onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession, callback: SMTPServerAuthCallback): void | PromiseLike<SMTPServerAuthenticationResponse | void>;
  /** Default: accepts every sender. */
  onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: SMTPServerCallback): void | PromiseLike<void>;
  /** Default: accepts every recipient. */
  onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: SMTPServerCallback): void | PromiseLike<void>;
  /** Default: reads and discards the message, then accepts it. */
  onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: SMTPServerDataCallback): void | PromiseLike<string | SMTPServerDataResult[] | void>;
  /** Default: does nothing. */
  onClose(session: SMTPServerSession, callback?: SMTPServerCallback): void | PromiseLike<void>;

  /** Adds a listener; the listener types of `close`, `error` and `connect` are checked. */
  on<K extends keyof SMTPServerEvents>(event: K, listener: (...args: SMTPServerEvents[K]) => void): this;
  on<E extends string | symbol>(event: OtherEvent<E, SMTPServerEvents>, listener: (...args: any[]) => void): this;
  /** Adds a listener that runs once. */
  once<K extends keyof SMTPServerEvents>(event: K, listener: (...args: SMTPServerEvents[K]) => void): this;
  once<E extends string | symbol>(event: OtherEvent<E, SMTPServerEvents>, listener: (...args: any[]) => void): this;
  /** Same as `on`. */
  addListener<K extends keyof SMTPServerEvents>(event: K, listener: (...args: SMTPServerEvents[K]) => void): this;
  addListener<E extends string | symbol>(event: OtherEvent<E, SMTPServerEvents>, listener: (...args: any[]) => void): this;
  /** Adds a listener before the others. */
  prependListener<K extends keyof SMTPServerEvents>(event: K, listener: (...args: SMTPServerEvents[K]) => void): this;
  prependListener<E extends string | symbol>(event: OtherEvent<E, SMTPServerEvents>, listener: (...args: any[]) => void): this;
  /** Adds a run-once listener before the others. */
  prependOnceListener<K extends keyof SMTPServerEvents>(event: K, listener: (...args: SMTPServerEvents[K]) => void): this;
  prependOnceListener<E extends string | symbol>(event: OtherEvent<E, SMTPServerEvents>, listener: (...args: any[]) => void): this;
  /** Removes a listener. */
  off<K extends keyof SMTPServerEvents>(event: K, listener: (...args: SMTPServerEvents[K]) => void): this;
  off(event: string | symbol, listener: (...args: any[]) => void): this;
  /** Same as `off`. */
  removeListener<K extends keyof SMTPServerEvents>(event: K, listener: (...args: SMTPServerEvents[K]) => void): this;
  removeListener(event: string | symbol, listener: (...args: any[]) => void): this;
  /** Calls the listeners of an event. */
  emit<K extends keyof SMTPServerEvents>(event: K, ...args: SMTPServerEvents[K]): boolean;
  emit(event: string | symbol, ...args: any[]): boolean;
}

// ---------------------------------------------------------------------------
// bun-smtp's type names, so that bun-smtp code compiles with its import switched
// ---------------------------------------------------------------------------

/** bun-smtp's name for `SMTPServerSession`. */
export type SMTPSession = SMTPServerSession;
/** bun-smtp's name for `SMTPServerAddress`. */
export type SMTPAddress = SMTPServerAddress;
/** bun-smtp's name for `SMTPServerAddressArgs`. */
export type SMTPAddressArgs = SMTPServerAddressArgs;
/** bun-smtp's name for `SMTPServerError`. */
export type SMTPError = SMTPServerError;
/** bun-smtp's name for the message stream (here a Node `Readable` with the web stream members). */
export type DataStream = SMTPServerDataStream;
/** bun-smtp's name for `SMTPServerAuthenticationResponse`. */
export type AuthResponse = SMTPServerAuthenticationResponse;
/** bun-smtp's name for `SMTPServerConnectionInfo`. */
export type ConnectionInfo = SMTPServerConnectionInfo;
/** bun-smtp's name for the TLS options. */
export type TLSOptions = SMTPServerTLSOptions;
/** bun-smtp's events map: the server's events and `listening`. */
export type SMTPServerEventMap = SMTPServerEvents & SMTPServerListenerEvents;
/** PLAIN and LOGIN credentials. */
export type AuthObjectPlain = SMTPServerAuthentication & { method: 'PLAIN' | 'LOGIN'; username: string; password: string };
/** CRAM-MD5 credentials: check them with `validatePassword()`. */
export type AuthObjectCramMd5 = SMTPServerAuthentication & { method: 'CRAM-MD5'; username: string; challenge: string; challengeResponse: string };
/** XOAUTH2 credentials. */
export type AuthObjectXoauth2 = SMTPServerAuthentication & { method: 'XOAUTH2'; username: string; accessToken: string };
/** XCLIENT LOGIN: a user name without a password. */
export type AuthObjectXclient = SMTPServerAuthentication & { method: 'XCLIENT'; username: string; password: null };
/** What `onAuth` gets, narrowed by `method` (bun-smtp's name). */
export type AuthObject = AuthObjectPlain | AuthObjectCramMd5 | AuthObjectXoauth2 | AuthObjectXclient;
/** bun-smtp's type of `onConnect`. */
export type OnConnectCallback = (session: SMTPServerSession, callback: SMTPServerCallback) => void;
/** bun-smtp's type of `onSecure`. */
export type OnSecureCallback = (socket: SMTPServerSecureSocket, session: SMTPServerSession, callback: SMTPServerCallback) => void;
/** bun-smtp's type of `onAuth`. */
export type OnAuthCallback = (auth: AuthObject, session: SMTPServerSession, callback: SMTPServerAuthCallback) => void;
/** bun-smtp's type of `onMailFrom`. */
export type OnMailFromCallback = (address: SMTPServerAddress, session: SMTPServerSession, callback: SMTPServerCallback) => void;
/** bun-smtp's type of `onRcptTo`. */
export type OnRcptToCallback = (address: SMTPServerAddress, session: SMTPServerSession, callback: SMTPServerCallback) => void;
/** bun-smtp's type of `onData`. */
export type OnDataCallback = (stream: SMTPServerDataStream, session: SMTPServerSession, callback: SMTPServerDataCallback) => void;
/** bun-smtp's type of `onClose`. */
export type OnCloseCallback = (session: SMTPServerSession) => void;

/** The module object: `import smtp from 'smtp-server-rs'` then `new smtp.SMTPServer()`. */
declare const smtpServer: {
  /** The server class (the same as the named export). */
  SMTPServer: typeof SMTPServer;
};
export default smtpServer;
