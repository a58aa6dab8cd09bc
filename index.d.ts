/// <reference types="node" />
// Types of smtp-server-rs: the same shapes as smtp-server 3.21.

import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';

/** A MAIL FROM / RCPT TO address with its parameters. */
export interface SMTPServerAddress {
  /** The address ('' for the null sender), with the domain in Unicode. */
  address: string;
  /** Upper-cased parameter names; `true` for a bare keyword. `false` when there are none. */
  args: SMTPServerAddressArgs | false;
  /** DSN details of a recipient (with `hideDSN: false`). */
  dsn?: SMTPServerRecipientDSN;
}

/** MAIL/RCPT parameters. */
export interface SMTPServerAddressArgs {
  [key: string]: string | boolean;
}

/** DSN details of a recipient. */
export interface SMTPServerRecipientDSN {
  notify?: string[];
  orcpt?: string;
}

/** DSN details of the envelope. */
export interface SMTPServerEnvelopeDSN {
  ret: string | null;
  envid: string | null;
}

/** The current transaction. */
export interface SMTPServerEnvelope {
  mailFrom: SMTPServerAddress | false;
  rcptTo: SMTPServerAddress[];
  requireTLS?: boolean;
  bodyType?: string;
  smtpUtf8?: boolean;
  dsn?: SMTPServerEnvelopeDSN;
}

/** One object per connection, the same for its whole life. */
export interface SMTPServerSession {
  id: string;
  secure: boolean;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  clientHostname: string;
  openingCommand: string | false;
  hostNameAppearsAs: string | false;
  transmissionType: string;
  tlsOptions: { name: string; standardName: string; version: string } | false | any;
  envelope: SMTPServerEnvelope;
  transaction: number;
  user?: any;
  servername?: string | false;
  xClient: Map<string, any>;
  xForward: Map<string, any>;
  error?: string;
  isWizard?: boolean;
  disabledCommands?: string[];
  [key: string]: any;
}

/** The `auth` object of `onAuth`. */
export interface SMTPServerAuthentication {
  method: 'PLAIN' | 'LOGIN' | 'XOAUTH2' | 'CRAM-MD5' | 'XCLIENT' | string;
  username?: string;
  password?: string | null;
  authcid?: string;
  authzid?: string;
  accessToken?: string;
  challenge?: string;
  challengeResponse?: string;
  validatePassword?(password: string): boolean;
}

/** What `onAuth` answers. */
export interface SMTPServerAuthenticationResponse {
  user?: any;
  data?: Record<string, string>;
  message?: string;
  responseCode?: number;
}

/** An error whose `responseCode` becomes the SMTP reply code. */
export interface SMTPServerError extends Error {
  responseCode?: number;
  remoteAddress?: string;
}

/** The message stream `onData` receives. */
export interface SMTPServerDataStream extends Readable {
  /** Bytes received so far (after dot-unstuffing). */
  byteLength: number;
  /** `byteLength > size`. */
  sizeExceeded: boolean;
}

/** The `socket` argument of `onSecure`. */
export interface SMTPServerSecureSocket {
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  encrypted?: boolean;
  servername?: string | false;
  authorized?: boolean;
  authorizationError?: string | null;
  getPeerCertificate(detailed?: boolean): any;
  getCipher(): { name: string; standardName: string; version: string } | undefined;
  getProtocol(): string | null;
}

/** The payload of the `connect` event. */
export interface SMTPServerConnectionInfo {
  id: string;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number | string;
  clientHostname: string;
  hostNameAppearsAs: string | false;
}

/** A custom reverse resolver. */
export interface SMTPServerResolver {
  reverse(ip: string, callback: (err: Error | null, hostnames?: string[]) => void): void;
}

/** TLS options (Node-shaped; see the README for what rustls honours). */
export interface SMTPServerTLSOptions {
  key?: string | Buffer | Array<string | Buffer | { pem: string | Buffer; passphrase?: string }>;
  cert?: string | Buffer | Array<string | Buffer>;
  ca?: string | Buffer | Array<string | Buffer>;
  passphrase?: string;
  pfx?: string | Buffer;
  minVersion?: string;
  maxVersion?: string;
  requestCert?: boolean;
  rejectUnauthorized?: boolean;
  [key: string]: any;
}

export interface SMTPServerOptions extends SMTPServerTLSOptions {
  secure?: boolean;
  secured?: boolean;
  needsUpgrade?: boolean;
  name?: string;
  banner?: string;
  heloResponse?: string;
  lmtp?: boolean;
  size?: number;
  hideSize?: boolean;
  rejectOversized?: boolean;
  authMethods?: string[];
  authOptional?: boolean;
  allowInsecureAuth?: boolean;
  authRequiredMessage?: string;
  disabledCommands?: string[];
  hideSTARTTLS?: boolean;
  hidePIPELINING?: boolean;
  hide8BITMIME?: boolean;
  hideSMTPUTF8?: boolean;
  hideENHANCEDSTATUSCODES?: boolean;
  hideDSN?: boolean;
  hideREQUIRETLS?: boolean;
  lenientAddressParsing?: boolean;
  maxClients?: number;
  maxRecipients?: number;
  maxCommandLength?: number;
  maxAllowedUnauthenticatedCommands?: number | false;
  socketTimeout?: number;
  closeTimeout?: number;
  useProxy?: boolean | string[];
  useXClient?: boolean | string[];
  useXForward?: boolean | string[];
  ignoredHosts?: string[];
  disableReverseLookup?: boolean;
  resolver?: SMTPServerResolver;
  logger?: boolean | Record<string, (...args: any[]) => void>;
  component?: string;
  sniOptions?: Record<string, SMTPServerTLSOptions> | Map<string, SMTPServerTLSOptions>;
  SNICallback?(servername: string, callback: (err: Error | null, options?: SMTPServerTLSOptions | null) => void): void;
  onConnect?(session: SMTPServerSession, callback: (err?: SMTPServerError | null) => void): void;
  onSecure?(socket: SMTPServerSecureSocket, session: SMTPServerSession, callback: (err?: SMTPServerError | null) => void): void;
  onAuth?(auth: SMTPServerAuthentication, session: SMTPServerSession, callback: (err: SMTPServerError | null | undefined, response?: SMTPServerAuthenticationResponse) => void): void;
  onMailFrom?(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: SMTPServerError | null) => void): void;
  onRcptTo?(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: SMTPServerError | null) => void): void;
  onData?(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: SMTPServerError | null, message?: string | Array<string | Error>) => void): void;
  onClose?(session: SMTPServerSession, callback?: () => void): void;
  [key: string]: any;
}

/** What `server.server` offers (a `net.Server`-like facade). */
export interface SMTPServerListener extends EventEmitter {
  listening: boolean;
  listen(...args: any[]): this;
  address(): { address: string; family: string; port: number } | string | null;
  close(callback?: (err?: Error) => void): this;
  ref(): this;
  unref(): this;
  getConnections(callback: (err: Error | null, count: number) => void): this;
}

/** A connection in `server.connections`. */
export interface SMTPServerConnection {
  id: string;
  session: SMTPServerSession;
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  send(code: number, text?: string): void;
  close(): void;
}

export declare class SMTPServer extends EventEmitter {
  constructor(options?: SMTPServerOptions);
  options: SMTPServerOptions;
  server: SMTPServerListener;
  connections: Set<SMTPServerConnection>;
  logger: Record<'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal', (...args: any[]) => void>;
  listen(...args: any[]): SMTPServerListener;
  close(callback?: () => void): void;
  updateSecureContext(options?: SMTPServerTLSOptions): void;
  onConnect(session: SMTPServerSession, callback: (err?: SMTPServerError | null) => void): void;
  onSecure(socket: SMTPServerSecureSocket, session: SMTPServerSession, callback: (err?: SMTPServerError | null) => void): void;
  onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession, callback: (err: SMTPServerError | null | undefined, response?: SMTPServerAuthenticationResponse) => void): void;
  onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: SMTPServerError | null) => void): void;
  onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: SMTPServerError | null) => void): void;
  onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: SMTPServerError | null, message?: string | Array<string | Error>) => void): void;
  onClose(session: SMTPServerSession, callback?: () => void): void;
  on(event: 'connect', listener: (info: SMTPServerConnectionInfo) => void): this;
  on(event: 'error', listener: (err: SMTPServerError) => void): this;
  on(event: 'close', listener: () => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

declare const smtpServer: { SMTPServer: typeof SMTPServer };
export default smtpServer;
