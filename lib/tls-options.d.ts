// Types of 'smtp-server-rs/lib/tls-options', the built-in TLS settings (as in smtp-server).
import type { TlsOptions } from 'node:tls';

interface TLSOptionsFunction {
  /** The built-in TLS options (a self-signed localhost certificate) with `opts` on top. */
  <T extends object = TlsOptions>(opts?: T | null): TlsOptions & T;
  /** The built-in private key: publicly known, for development and tests only. */
  readonly DEFAULT_KEY: string;
  /** The built-in self-signed certificate for localhost. */
  readonly DEFAULT_CERT: string;
  /** The function itself, for `import tlsOptions from` under any interop setting. */
  readonly default: TLSOptionsFunction;
}

declare const tlsOptions: TLSOptionsFunction;
export = tlsOptions;
