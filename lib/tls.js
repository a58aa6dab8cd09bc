'use strict';

const crypto = require('node:crypto');
const tlsOptions = require('./tls-options.js');

/** TLS options that Node accepts but rustls has no counterpart for; they are ignored. */
const IGNORED = ['ciphers', 'ecdhCurve', 'dhparam', 'honorCipherOrder', 'sessionIdContext', 'ticketKeys', 'sessionTimeout', 'sigalgs', 'secureOptions', 'requestOCSP', 'crl'];

function configError(message) {
  const err = new Error(`smtp-server-rs: ${message}`);
  err.code = 'ERR_SMTP_TLS_OPTIONS';
  return err;
}

function toList(value) {
  if (value === undefined || value === null || value === false) {
    return [];
  }
  return Array.isArray(value) ? value : [value];
}

function pemText(value, what) {
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
    return Buffer.from(value).toString('utf8');
  }
  if (typeof value === 'string') {
    return value;
  }
  throw configError(`${what} must be a PEM string or Buffer`);
}

/** Turns a (possibly encrypted) private key into unencrypted PKCS#8 PEM. */
function plainKey(entry, passphrase) {
  let pem;
  let pass = passphrase;
  if (entry && typeof entry === 'object' && !Buffer.isBuffer(entry) && !(entry instanceof Uint8Array)) {
    pem = pemText(entry.pem, 'key.pem');
    if (entry.passphrase !== undefined) {
      pass = entry.passphrase;
    }
  } else {
    pem = pemText(entry, 'key');
  }
  if (!/ENCRYPTED/.test(pem)) {
    return pem;
  }
  if (pass === undefined) {
    throw configError('the private key is encrypted and no passphrase was given');
  }
  try {
    return crypto.createPrivateKey({ key: pem, passphrase: pass }).export({ type: 'pkcs8', format: 'pem' });
  } catch (err) {
    throw configError(`cannot decrypt the private key: ${err.message}`);
  }
}

/** Key/cert pairs of one context: keys and certs are matched by position. */
function identities(opts) {
  if (opts.pfx) {
    throw configError('pfx (PKCS#12) is not supported; pass the key and certificate as PEM (openssl pkcs12 -in file.pfx -nodes)');
  }
  const keys = toList(opts.key).map(k => plainKey(k, opts.passphrase));
  const certs = toList(opts.cert).map(c => pemText(c, 'cert'));
  if (!keys.length || !certs.length) {
    throw configError('TLS needs both key and cert');
  }
  if (keys.length !== certs.length) {
    throw configError(`${keys.length} keys but ${certs.length} certificates: give one certificate chain per key`);
  }
  return keys.map((key, i) => ({ key, cert: certs[i] }));
}

/** `opts` without its `null` and `undefined` entries: such an option is not given. */
function given(opts) {
  const out = {};
  for (const key of Object.keys(opts || {})) {
    if (opts[key] !== null && opts[key] !== undefined) {
      out[key] = opts[key];
    }
  }
  return out;
}

/**
 * Normalizes smtp-server's TLS options into what the native side takes: identities for
 * the default context and for each `sniOptions` name (merged over the built-in defaults
 * only, as smtp-server does), trusted CAs, the client certificate policy and versions.
 */
function nativeTls(options, normalizeName) {
  const base = tlsOptions(given(options));
  for (const [name, bad] of [
    ['maxVersion', v => v && !['TLSv1.2', 'TLSv1.3'].includes(v)],
    ['minVersion', v => v && !['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'].includes(v)]
  ]) {
    if (bad(base[name])) {
      throw configError(`${name} ${JSON.stringify(base[name])} is not supported (TLSv1.2 and TLSv1.3 are)`);
    }
  }
  if (base.secureProtocol && !/^TLS_method$|^TLS_server_method$|^SSLv23/.test(base.secureProtocol)) {
    throw configError(`secureProtocol ${JSON.stringify(base.secureProtocol)} is not supported; use minVersion/maxVersion`);
  }
  const sni = [];
  const map = options.sniOptions;
  if (map) {
    const entries = map instanceof Map || typeof map.get === 'function' ? Array.from(map.entries()) : Object.keys(map).map(k => [k, map[k]]);
    for (const [name, ctx] of entries) {
      sni.push({ name: normalizeName(name), identities: identities(tlsOptions(given(ctx))) });
    }
  }
  const ca = toList(base.ca).map(c => pemText(c, 'ca'));
  if (base.requestCert && base.rejectUnauthorized && !ca.length) {
    throw configError('requestCert with rejectUnauthorized needs `ca`: the certificates that client certificates must chain to');
  }
  return {
    identities: identities(base),
    sni,
    ca,
    requestCert: !!base.requestCert,
    rejectUnauthorized: !!base.rejectUnauthorized,
    minVersion: base.minVersion || undefined,
    maxVersion: base.maxVersion || undefined
  };
}

function parseName(text) {
  const out = {};
  for (const line of String(text || '').split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) {
      const key = line.slice(0, i);
      const value = line.slice(i + 1);
      out[key] = out[key] === undefined ? value : [].concat(out[key], value);
    }
  }
  return out;
}

const NIST_CURVES = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/** The public-key fields Node's `getPeerCertificate()` gives. */
function addPublicKey(cert, key) {
  if (!key) {
    return;
  }
  try {
    const details = key.asymmetricKeyDetails || {};
    if (key.asymmetricKeyType === 'rsa') {
      const jwk = key.export({ format: 'jwk' });
      cert.bits = details.modulusLength;
      cert.exponent = '0x' + BigInt(details.publicExponent).toString(16);
      cert.modulus = Buffer.from(jwk.n, 'base64url').toString('hex').toUpperCase();
    } else if (key.asymmetricKeyType === 'ec') {
      const jwk = key.export({ format: 'jwk' });
      cert.bits = Buffer.from(jwk.x, 'base64url').length * 8;
      cert.asn1Curve = details.namedCurve;
      if (NIST_CURVES[details.namedCurve]) {
        cert.nistCurve = NIST_CURVES[details.namedCurve];
      }
    }
    cert.pubkey = key.export({ type: 'spki', format: 'der' });
  } catch {
    // a key type this runtime cannot describe: leave the fields out
  }
}

/** `getPeerCertificate()` from a DER certificate, in Node's shape. */
function peerCertificate(der) {
  if (!der) {
    return {};
  }
  try {
    const x = new crypto.X509Certificate(der);
    const cert = {
      subject: parseName(x.subject),
      issuer: parseName(x.issuer),
      ca: x.ca,
      valid_from: x.validFrom,
      valid_to: x.validTo,
      fingerprint: x.fingerprint,
      fingerprint256: x.fingerprint256,
      serialNumber: x.serialNumber,
      raw: Buffer.from(x.raw)
    };
    if (x.fingerprint512) {
      cert.fingerprint512 = x.fingerprint512;
    }
    if (x.subjectAltName) {
      cert.subjectaltname = x.subjectAltName;
    }
    if (x.infoAccess) {
      cert.infoAccess = parseName(x.infoAccess.replace(/ - /g, '='));
    }
    if (Array.isArray(x.keyUsage)) {
      cert.ext_key_usage = x.keyUsage;
    }
    addPublicKey(cert, x.publicKey);
    return cert;
  } catch {
    return { raw: Buffer.from(der) };
  }
}

/**
 * What `onSecure` receives as `socket`: the parts of a `tls.TLSSocket` applications use.
 */
class SecureSocketInfo {
  constructor(conn, tls) {
    this.remoteAddress = conn.remoteAddress;
    this.remotePort = conn.remotePort;
    this.localAddress = conn.localAddress;
    this.localPort = conn.localPort;
    if (tls) {
      this.encrypted = true;
      this.servername = tls.servername;
      this.authorized = !!tls.authorized;
      this.authorizationError = tls.authorizationError === undefined ? null : tls.authorizationError;
      this.alpnProtocol = false;
      this._tls = tls;
    }
  }

  getPeerCertificate() {
    return this._tls ? peerCertificate(this._tls.cert) : null;
  }

  getCipher() {
    return this._tls ? { name: this._tls.name, standardName: this._tls.standardName, version: this._tls.version } : undefined;
  }

  getProtocol() {
    return this._tls ? this._tls.version : null;
  }
}

module.exports = { nativeTls, SecureSocketInfo, peerCertificate, IGNORED };
