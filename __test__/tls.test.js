'use strict';

// TLS: STARTTLS and implicit TLS with real clients (nodemailer, openssl s_client,
// Python's smtplib, Node's tls), certificates made at test time with openssl (two CAs,
// server certificates for SNI names, client certificates), sniOptions,
// updateSecureContext, client certificate policies, protocol versions, encrypted keys,
// and the protocol rules around STARTTLS (command injection, resets, capability list).
//
// SMTP_IMPL=ref runs the same tests against the reference package, to check the tests;
// the tests of deliberate differences (onSecure once with needsUpgrade, pfx, the version
// options rustls has no counterpart for) are skipped then.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn, spawnSync } = require('node:child_process');
const nodemailer = require('nodemailer');
const tls = require('node:tls');
const { SMTPServer: Reference } = require('smtp-server');
const { deadline, smtpError, python, IS_REF, IS_BUN, WAIT, until, SMTPServer, createServer: sharedCreateServer, withServer: sharedWithServer, Client } = require('./helpers/smtp-client.js');

// ---------------------------------------------------------------------------
// helpers

const NAME = 'mx.test.example';

/** A server with this file's defaults. */
function createServer(options = {}) {
    return sharedCreateServer({ name: NAME, ...options });
}

/**
 * Starts a server with this file's defaults (of `Server` when given, such as the
 * reference), runs fn(port, server), always closes it.
 */
function withServer(options, fn, Server) {
    return sharedWithServer({ name: NAME, ...options }, fn, Server);
}

/** This package and the reference, for tests that run the same case against both. */
const PACKAGES = [
    ['smtp-server-rs', SMTPServer],
    ['smtp-server', Reference]
];

/** Runs fn(client), always destroys the client. */
async function using(clientPromise, fn) {
    const client = await clientPromise;
    try {
        return await fn(client);
    } finally {
        client.destroy();
    }
}

/** Records what onSecure sees, then accepts (or answers with `result()`). */
function recordingSecure(calls, result = () => null) {
    return function onSecure(socket, session, callback) {
        const cert = socket.getPeerCertificate ? socket.getPeerCertificate() : undefined;
        calls.push({
            servername: socket.servername,
            authorized: socket.authorized,
            authorizationError: socket.authorizationError,
            peerCN: cert && cert.subject ? cert.subject.CN : undefined,
            peerIssuerCN: cert && cert.issuer ? cert.issuer.CN : undefined,
            protocol: socket.getProtocol ? socket.getProtocol() : undefined,
            cipher: socket.getCipher ? socket.getCipher() : undefined,
            remoteAddress: socket.remoteAddress,
            session: { secure: session.secure, servername: session.servername, tlsOptions: session.tlsOptions, user: session.user, openingCommand: session.openingCommand }
        });
        const err = result(socket, session);
        setImmediate(() => callback(err || undefined));
    };
}

function recordingMail(calls) {
    return function onMailFrom(address, session, callback) {
        calls.push({
            address: address.address,
            secure: session.secure,
            transmissionType: session.transmissionType,
            tlsOptions: session.tlsOptions,
            servername: session.servername,
            user: session.user,
            requireTLS: session.envelope.requireTLS
        });
        callback();
    };
}

function recordingData(messages) {
    return function onData(stream, session, callback) {
        const chunks = [];
        stream.on('data', chunk => chunks.push(chunk));
        stream.on('end', () => {
            messages.push({ body: Buffer.concat(chunks).toString(), secure: session.secure, transmissionType: session.transmissionType, tlsOptions: session.tlsOptions, servername: session.servername, user: session.user });
            callback();
        });
    };
}

const cn = socket => {
    const cert = socket.getPeerCertificate();
    return cert && cert.subject ? cert.subject.CN : undefined;
};

// ---------------------------------------------------------------------------
// certificates, made once per run with openssl

function openssl(args, cwd) {
    const res = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
    if (res.status !== 0) {
        throw new Error(`openssl ${args.join(' ')} failed: ${res.stderr}`);
    }
    return res.stdout;
}

function makeCertificates() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtp-rs-tls-'));
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    const ca = name => {
        openssl(['req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/CN=Test ${name.toUpperCase()}`, '-days', '3', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
    };
    const leaf = (name, caName, cnText, ext) => {
        openssl(['req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cnText}`], dir);
        fs.writeFileSync(path.join(dir, `${name}.ext`), ext.join('\n') + '\n');
        openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`], dir);
    };
    const serverExt = names => [`subjectAltName=${names.map(n => (/^\d/.test(n) ? 'IP:' : 'DNS:') + n).join(',')}`, 'basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth'];
    const clientExt = ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth', 'subjectAltName=email:client@example.com,DNS:client.test'];
    ca('ca1');
    ca('ca2');
    leaf('alpha', 'ca1', 'alpha.test', serverExt(['alpha.test', '127.0.0.1']));
    leaf('beta', 'ca1', 'beta.test', serverExt(['beta.test']));
    leaf('fallback', 'ca1', 'fallback.test', serverExt(['fallback.test', '127.0.0.1']));
    leaf('bucher', 'ca1', 'xn--bcher-kva.test', serverExt(['xn--bcher-kva.test']));
    leaf('renewed', 'ca1', 'renewed.test', serverExt(['renewed.test', '127.0.0.1']));
    leaf('clientGood', 'ca1', 'client-good', clientExt);
    leaf('clientOther', 'ca2', 'client-other', clientExt);
    openssl(['pkcs8', '-topk8', '-in', 'alpha.key', '-v2', 'aes-256-cbc', '-passout', 'pass:s3cret pass', '-out', 'alpha.enc.key'], dir);
    // X.509 version 1 server certificates (`openssl x509 -req` without extensions, as the
    // `pem` package makes them): RSA from CA1, and ECDSA from an intermediate CA of CA1
    const v1 = (name, caName, cnText, keyArgs) => {
        openssl(['req', '-new', ...keyArgs, '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cnText}`], dir);
        openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2'], dir);
        assert.match(openssl(['x509', '-in', `${name}.crt`, '-noout', '-text'], dir), /Version: 1 \(0x0\)/, `${name} is a version 1 certificate`);
    };
    leaf('inter', 'ca1', 'Test Intermediate', ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign']);
    v1('v1rsa', 'ca1', 'v1rsa.test', ['-newkey', 'rsa:2048']);
    v1('v1ec', 'inter', 'v1ec.test', ec.slice(0, 4));
    // a self-signed client certificate, as `openssl req -x509` makes it (a CA certificate)
    openssl(['req', '-x509', ...ec, '-keyout', 'clientSelf.key', '-out', 'clientSelf.crt', '-subj', '/CN=client-self', '-days', '2'], dir);
    // an expired client certificate: `openssl ca` is the tool that sets past dates
    fs.mkdirSync(path.join(dir, 'cadb'));
    fs.writeFileSync(path.join(dir, 'cadb', 'index.txt'), '');
    fs.writeFileSync(path.join(dir, 'cadb', 'serial'), '01\n');
    fs.writeFileSync(
        path.join(dir, 'ca.cnf'),
        ['[ca]', 'default_ca = d', '[d]', 'database = cadb/index.txt', 'new_certs_dir = cadb', 'serial = cadb/serial', 'default_md = sha256', 'policy = p', 'x509_extensions = ext', '[p]', 'commonName = supplied', '[ext]', ...clientExt].join('\n') + '\n'
    );
    openssl(['req', '-new', ...ec, '-keyout', 'clientExpired.key', '-out', 'clientExpired.csr', '-subj', '/CN=client-expired'], dir);
    openssl(['ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca1.crt', '-keyfile', 'ca1.key', '-in', 'clientExpired.csr', '-out', 'clientExpired.crt', '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-notext'], dir);
    const read = file => fs.readFileSync(path.join(dir, file), 'utf8');
    const pair = name => ({ key: read(`${name}.key`), cert: read(`${name}.crt`) });
    return {
        dir,
        ca1: read('ca1.crt'),
        ca2: read('ca2.crt'),
        ca1File: path.join(dir, 'ca1.crt'),
        alpha: pair('alpha'),
        beta: pair('beta'),
        fallback: pair('fallback'),
        bucher: pair('bucher'),
        renewed: pair('renewed'),
        clientGood: pair('clientGood'),
        clientOther: pair('clientOther'),
        clientExpired: pair('clientExpired'),
        clientSelf: pair('clientSelf'),
        v1rsa: pair('v1rsa'),
        v1ec: { key: read('v1ec.key'), cert: read('v1ec.crt') + read('inter.crt') },
        alphaEncryptedKey: read('alpha.enc.key')
    };
}

const C = makeCertificates();

function transport(port, extra = {}) {
    return nodemailer.createTransport({
        host: '127.0.0.1',
        port,
        logger: false,
        connectionTimeout: WAIT,
        greetingTimeout: WAIT,
        socketTimeout: 2 * WAIT,
        ...extra
    });
}

const MESSAGE = { from: 'sender@example.com', to: 'rcpt@example.com', subject: 'tls test', text: 'over TLS' };
const CIPHER_SHAPE = c => {
    assert.equal(typeof c, 'object', 'a cipher object');
    assert.deepEqual(Object.keys(c).sort(), ['name', 'standardName', 'version']);
    assert.match(c.name, /^[A-Z0-9_-]+$/);
    assert.match(c.standardName, /^TLS_/);
    assert.match(c.version, /^TLSv1\.[23]$/);
};

// ---------------------------------------------------------------------------
// nodemailer

test('nodemailer STARTTLS, verifying the served certificate against its CA', { timeout: 20000 }, async () => {
    const secure = [];
    const mails = [];
    const messages = [];
    await withServer({ ...C.alpha, onSecure: recordingSecure(secure), onMailFrom: recordingMail(mails), onData: recordingData(messages) }, async port => {
        const tr = transport(port, { secure: false, requireTLS: true, tls: { ca: C.ca1, servername: 'alpha.test', rejectUnauthorized: true } });
        try {
            const info = await tr.sendMail(MESSAGE);
            assert.deepEqual(info.accepted, ['rcpt@example.com']);
        } finally {
            tr.close();
        }
    });
    assert.equal(secure.length, 1, 'onSecure runs once per STARTTLS');
    const s = secure[0];
    assert.equal(s.servername, 'alpha.test');
    assert.equal(s.remoteAddress, '127.0.0.1');
    assert.equal(s.protocol, 'TLSv1.3');
    CIPHER_SHAPE(s.cipher);
    assert.equal(s.session.secure, true);
    assert.equal(s.session.servername, 'alpha.test');
    assert.deepEqual(s.session.tlsOptions, s.cipher);
    assert.equal(s.session.openingCommand, false, 'the HELO identity is cleared by STARTTLS');
    assert.equal(mails.length, 1);
    assert.equal(mails[0].transmissionType, 'ESMTPS');
    assert.deepEqual(mails[0].tlsOptions, s.cipher);
    assert.equal(messages[0].secure, true);
    assert.match(messages[0].body, /over TLS/);
});

test('nodemailer STARTTLS with the built-in certificate', { timeout: 20000 }, async () => {
    const messages = [];
    await withServer({ onData: recordingData(messages) }, async port => {
        const tr = transport(port, { secure: false, requireTLS: true, tls: { rejectUnauthorized: false } });
        try {
            await tr.sendMail(MESSAGE);
        } finally {
            tr.close();
        }
    });
    assert.equal(messages.length, 1);
    assert.equal(messages[0].transmissionType, 'ESMTPS');
    assert.equal(messages[0].servername, false, 'no SNI was sent to an IP address');
});

test('nodemailer implicit TLS (secure: true)', { timeout: 20000 }, async () => {
    const secure = [];
    const messages = [];
    await withServer({ secure: true, ...C.alpha, onSecure: recordingSecure(secure), onData: recordingData(messages) }, async port => {
        const tr = transport(port, { secure: true, tls: { ca: C.ca1, servername: 'alpha.test', rejectUnauthorized: true } });
        try {
            await tr.sendMail(MESSAGE);
        } finally {
            tr.close();
        }
    });
    assert.equal(secure.length, 1);
    assert.equal(secure[0].servername, 'alpha.test');
    assert.equal(secure[0].session.secure, true);
    assert.equal(messages.length, 1);
    assert.equal(messages[0].transmissionType, 'ESMTPS');
    assert.equal(messages[0].servername, 'alpha.test');
    CIPHER_SHAPE(messages[0].tlsOptions);
});

test('nodemailer STARTTLS then AUTH gives ESMTPSA', { timeout: 20000 }, async () => {
    const messages = [];
    const onAuth = (auth, session, cb) => cb(null, auth.password === 'pw' ? { user: auth.username } : null);
    await withServer({ ...C.alpha, authOptional: false, onAuth, onData: recordingData(messages) }, async port => {
        const tr = transport(port, { secure: false, requireTLS: true, auth: { user: 'tls-user', pass: 'pw' }, tls: { ca: C.ca1, servername: 'alpha.test' } });
        try {
            await tr.sendMail(MESSAGE);
        } finally {
            tr.close();
        }
    });
    assert.equal(messages[0].transmissionType, 'ESMTPSA');
    assert.equal(messages[0].user, 'tls-user');
});

// ---------------------------------------------------------------------------
// openssl s_client

const SNI = { ...C.fallback, sniOptions: { 'alpha.test': C.alpha, 'beta.test': C.beta } };

/**
 * Runs openssl s_client with `args`; feeds "EHLO x" and "QUIT". With implicit TLS the
 * input waits for the greeting (input before it would be an early talker); with
 * -starttls smtp, s_client reads the greeting itself. Resolves { code, stdout, stderr }.
 */
function sClient(args, ms = 20000) {
    const implicit = !args.includes('-starttls');
    return deadline(
        new Promise((resolve, reject) => {
            const child = spawn('openssl', ['s_client', ...args, '-CAfile', C.ca1File, '-crlf', '-ign_eof'], { stdio: ['pipe', 'pipe', 'pipe'] });
            let stdout = '';
            let stderr = '';
            let fed = false;
            const feed = () => {
                if (!fed) {
                    fed = true;
                    child.stdin.end('EHLO x\nQUIT\n');
                }
            };
            const killer = setTimeout(() => child.kill('SIGKILL'), ms);
            child.stdout.on('data', d => {
                stdout += d;
                if (/^220 /m.test(stdout)) {
                    feed();
                }
            });
            child.stderr.on('data', d => {
                stderr += d;
            });
            child.stdin.on('error', () => {});
            child.on('error', reject);
            child.on('close', code => {
                clearTimeout(killer);
                resolve({ code, stdout, stderr });
            });
            if (!implicit) {
                feed();
            }
        }),
        ms + 2000,
        'openssl s_client to finish'
    );
}

test('openssl s_client -starttls smtp with SNI gets that name\'s certificate and a fresh EHLO', { timeout: 30000 }, async () => {
    const secure = [];
    await withServer({ ...SNI, onSecure: recordingSecure(secure) }, async port => {
        for (const [name, expected] of [
            ['beta.test', 'beta.test'],
            ['alpha.test', 'alpha.test'],
            ['unknown.test', 'fallback.test']
        ]) {
            const res = await sClient(['-starttls', 'smtp', '-connect', `127.0.0.1:${port}`, '-servername', name]);
            const out = res.stdout;
            assert.match(out, new RegExp(`^subject=CN = ${expected.replace(/\./g, '\\.')}$`, 'm'), `certificate served for ${name}:\n${out}\n${res.stderr}`);
            assert.match(out, /Verify return code: 0 \(ok\)/);
            assert.match(out, /^250-mx\.test\.example Nice to meet you, \[127\.0\.0\.1\]\r?$/m, 'the EHLO sent after TLS is answered');
            const ehlo = out.slice(out.indexOf('250-mx.test.example'));
            assert.doesNotMatch(ehlo.slice(0, ehlo.indexOf('221')), /STARTTLS/, 'STARTTLS is no longer offered');
            assert.match(out, /^221 Bye\r?$/m);
        }
    });
    assert.deepEqual(
        secure.map(s => s.servername),
        ['beta.test', 'alpha.test', 'unknown.test']
    );
});

test('openssl s_client on the implicit TLS port, with and without SNI', { timeout: 30000 }, async () => {
    await withServer({ secure: true, ...SNI }, async port => {
        let res = await sClient(['-connect', `127.0.0.1:${port}`, '-servername', 'alpha.test']);
        assert.match(res.stdout, /^subject=CN = alpha\.test$/m, res.stdout + res.stderr);
        assert.match(res.stdout, /^220 mx\.test\.example ESMTP\r?$/m, 'the greeting comes over TLS');
        assert.match(res.stdout, /^250-mx\.test\.example Nice to meet you/m);
        assert.match(res.stdout, /^221 Bye\r?$/m);
        res = await sClient(['-connect', `127.0.0.1:${port}`, '-noservername']);
        assert.match(res.stdout, /^subject=CN = fallback\.test$/m, res.stdout + res.stderr);
        assert.match(res.stdout, /^220 mx\.test\.example ESMTP\r?$/m);
    });
});

test('openssl s_client: TLS 1.2 and TLS 1.3 both work by default', { timeout: 30000 }, async () => {
    await withServer({ secure: true, ...C.alpha }, async port => {
        for (const flag of ['-tls1_2', '-tls1_3']) {
            const res = await sClient(['-connect', `127.0.0.1:${port}`, '-servername', 'alpha.test', flag]);
            assert.match(res.stdout, new RegExp(`Protocol\\s*:\\s*${flag === '-tls1_2' ? 'TLSv1\\.2' : 'TLSv1\\.3'}`), res.stdout + res.stderr);
            assert.match(res.stdout, /^221 Bye\r?$/m);
        }
    });
});

// ---------------------------------------------------------------------------
// Python smtplib

// argv = port mode(starttls|ssl) cafile ; prints JSON
const PY_TLS = `
import json, smtplib, ssl, sys
port, mode, cafile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
out = {}
if mode == 'ssl':
    s = smtplib.SMTP_SSL('127.0.0.1', port, local_hostname='py.client', timeout=10, context=ctx)
    s.ehlo()
else:
    s = smtplib.SMTP('127.0.0.1', port, local_hostname='py.client', timeout=10)
    s.ehlo()
    out['before'] = sorted(s.esmtp_features.keys())
    out['starttls'] = list(s.starttls(context=ctx))
    out['starttls'][1] = out['starttls'][1].decode()
    out['noEhloMail'] = list(s.docmd('MAIL FROM:<a@example.com>'))
    out['noEhloMail'][1] = out['noEhloMail'][1].decode()
    s.ehlo()
out['after'] = sorted(s.esmtp_features.keys())
out['version'] = s.sock.version()
out['peer'] = dict(x[0] for x in s.sock.getpeercert()['subject'])
s.sendmail('py@example.com', ['rcpt@example.com'], b'Subject: py\\r\\n\\r\\nover tls\\r\\n')
out['quit'] = s.quit()[0]
print(json.dumps(out))
`;

test('smtplib starttls() with certificate and host name verification', { timeout: 30000 }, async () => {
    const messages = [];
    let out;
    await withServer({ ...C.alpha, hideREQUIRETLS: false, onData: recordingData(messages) }, async port => {
        out = await python(PY_TLS, [port, 'starttls', C.ca1File]);
    });
    assert.ok(out.before.includes('starttls'));
    assert.ok(!out.before.includes('requiretls'));
    assert.deepEqual(out.starttls, [220, 'Ready to start TLS']);
    assert.deepEqual(out.noEhloMail, [503, 'Error: send HELO/EHLO first']);
    assert.ok(!out.after.includes('starttls'));
    assert.ok(out.after.includes('requiretls'));
    assert.equal(out.version, 'TLSv1.3');
    assert.equal(out.peer.commonName, 'alpha.test');
    assert.equal(out.quit, 221);
    assert.equal(messages[0].transmissionType, 'ESMTPS');
});

test('smtplib SMTP_SSL against secure: true', { timeout: 30000 }, async () => {
    const messages = [];
    let out;
    await withServer({ secure: true, ...C.alpha, onData: recordingData(messages) }, async port => {
        out = await python(PY_TLS, [port, 'ssl', C.ca1File]);
    });
    assert.ok(!out.after.includes('starttls'));
    assert.equal(out.peer.commonName, 'alpha.test');
    assert.equal(messages.length, 1);
    assert.equal(messages[0].transmissionType, 'ESMTPS');
    assert.match(messages[0].body, /over tls/);
});

// ---------------------------------------------------------------------------
// client certificates

const CLIENTS = {
    good: { key: C.clientGood.key, cert: C.clientGood.cert },
    other: { key: C.clientOther.key, cert: C.clientOther.cert },
    expired: { key: C.clientExpired.key, cert: C.clientExpired.cert },
    self: { key: C.clientSelf.key, cert: C.clientSelf.cert },
    none: {}
};

test('requestCert + ca, rejectUnauthorized: false: every client gets in, onSecure sees the verdict', { timeout: 30000 }, async () => {
    const secure = [];
    const mails = [];
    await withServer({ secure: true, ...C.alpha, requestCert: true, rejectUnauthorized: false, ca: C.ca1, onSecure: recordingSecure(secure), onMailFrom: recordingMail(mails) }, async port => {
        for (const who of ['good', 'other', 'none', 'self']) {
            await using(Client.openTls(port, { ...CLIENTS[who], servername: 'alpha.test' }), async c => {
                assert.equal(await c.cmd(`MAIL FROM:<${who}@example.com>`), '250 Accepted');
            });
        }
    });
    assert.equal(secure.length, 4);
    const [good, other, none, self] = secure;
    assert.equal(good.authorized, true);
    assert.ok(!good.authorizationError, 'no authorizationError for a good certificate');
    assert.equal(good.peerCN, 'client-good');
    assert.equal(good.peerIssuerCN, 'Test CA1');
    assert.equal(other.authorized, false);
    assert.equal(typeof other.authorizationError, 'string');
    assert.equal(other.authorizationError, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    assert.equal(other.peerCN, 'client-other');
    assert.equal(none.authorized, false);
    assert.equal(none.authorizationError, 'UNABLE_TO_GET_ISSUER_CERT');
    assert.equal(none.peerCN, undefined);
    assert.equal(self.authorized, false);
    assert.equal(self.authorizationError, 'DEPTH_ZERO_SELF_SIGNED_CERT');
    assert.equal(self.peerCN, 'client-self');
    assert.deepEqual(mails.map(m => m.address), ['good@example.com', 'other@example.com', 'none@example.com', 'self@example.com']);
});

test('openssl s_client parses the CA names the server asks client certificates for', { timeout: 20000 }, async () => {
    await withServer({ secure: true, ...C.alpha, requestCert: true, rejectUnauthorized: false, ca: [C.ca1, C.ca2] }, async (port, server) => {
        server.on('error', () => {});
        const res = await sClient(['-connect', `127.0.0.1:${port}`, '-servername', 'alpha.test']);
        assert.doesNotMatch(res.stderr, /parse_ca_names|asn1/i, 'the CertificateRequest is well formed');
        assert.match(res.stdout, /Acceptable client certificate CA names\r?\nCN = Test CA1\r?\nCN = Test CA2/, res.stdout + res.stderr);
        assert.match(res.stdout, /^221 Bye\r?$/m);
    });
});

test('requestCert without ca: a presented certificate is reported unverified, getPeerCertificate() works', { timeout: 20000 }, async () => {
    const secure = [];
    await withServer({ secure: true, ...C.alpha, requestCert: true, rejectUnauthorized: false, onSecure: recordingSecure(secure) }, async port => {
        for (const who of ['good', 'none']) {
            await using(Client.openTls(port, { ...CLIENTS[who], servername: 'alpha.test' }), async c => {
                assert.equal(await c.cmd('NOOP'), '250 OK');
            });
        }
    });
    assert.equal(secure.length, 2);
    assert.equal(secure[0].authorized, false);
    assert.equal(secure[0].authorizationError, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    assert.equal(secure[0].peerCN, 'client-good');
    assert.equal(secure[0].peerIssuerCN, 'Test CA1');
    assert.equal(secure[1].authorized, false);
    assert.equal(secure[1].peerCN, undefined);
});

test('onSecure socket without client certificates: authorized false, authorizationError null, no peer certificate', { timeout: 20000 }, async () => {
    const seen = [];
    const onSecure = (socket, session, callback) => {
        seen.push({ authorized: socket.authorized, authorizationError: socket.authorizationError, peer: socket.getPeerCertificate(), encrypted: socket.encrypted });
        callback();
    };
    await withServer({ secure: true, ...C.alpha, onSecure }, async port => {
        await using(Client.openTls(port, { servername: 'alpha.test' }), async c => {
            assert.equal(await c.cmd('NOOP'), '250 OK');
        });
    });
    assert.equal(seen.length, 1);
    assert.equal(seen[0].authorized, false);
    assert.equal(seen[0].encrypted, true);
    assert.deepEqual(seen[0].peer, {});
    assert.equal(seen[0].authorizationError, null, 'Node leaves authorizationError null when nothing was verified');
});

test('getPeerCertificate() of a client certificate has the fields Node gives', { timeout: 20000 }, async () => {
    let cert;
    const onSecure = (socket, session, callback) => {
        cert = socket.getPeerCertificate();
        callback();
    };
    await withServer({ secure: true, ...C.alpha, requestCert: true, rejectUnauthorized: false, onSecure }, async port => {
        await using(Client.openTls(port, { ...CLIENTS.good, servername: 'alpha.test' }), async c => {
            assert.equal(await c.cmd('NOOP'), '250 OK');
        });
    });
    const x509 = new crypto.X509Certificate(C.clientGood.cert);
    assert.deepEqual({ ...cert.subject }, { CN: 'client-good' });
    assert.deepEqual({ ...cert.issuer }, { CN: 'Test CA1' });
    assert.equal(cert.ca, false);
    assert.equal(cert.subjectaltname, 'email:client@example.com, DNS:client.test');
    assert.equal(cert.fingerprint256, x509.fingerprint256);
    assert.equal(cert.serialNumber, x509.serialNumber);
    assert.equal(cert.valid_from, x509.validFrom);
    assert.equal(cert.valid_to, x509.validTo);
    assert.ok(Buffer.isBuffer(cert.raw) && cert.raw.equals(x509.raw), 'raw is the DER certificate');
    assert.deepEqual(cert.ext_key_usage, ['1.3.6.1.5.5.7.3.2'], 'ext_key_usage lists the extended key usages');
    assert.equal(cert.bits, 256, 'bits is the key size');
    assert.equal(cert.nistCurve, 'P-256');
    assert.ok(Buffer.isBuffer(cert.pubkey), 'pubkey is the public key');
});

/** Connects with a client certificate and reports what happened: greeting or close. */
async function tryClientCert(port, who, starttls) {
    let client;
    try {
        if (starttls) {
            client = await Client.open(port);
            await client.starttls({ ...CLIENTS[who], servername: 'alpha.test' });
            client.write('EHLO after.tls\r\n');
        } else {
            client = await Client.connectTls(port, { ...CLIENTS[who], servername: 'alpha.test' });
        }
    } catch (err) {
        // TLS 1.3: the server judges the certificate after the client finished, so the
        // client may or may not see the handshake complete
        return { reply: null, handshakeError: err.message };
    }
    try {
        return { reply: await client.read('a greeting or a close') };
    } catch (err) {
        assert.match(err.message, /closed while waiting/);
        return { reply: null };
    } finally {
        client.destroy();
    }
}

for (const starttls of [false, true]) {
    test(`requestCert + ca, rejectUnauthorized: true (${starttls ? 'STARTTLS' : 'implicit TLS'}): only the good certificate gets in`, { timeout: 30000 }, async () => {
        const secure = [];
        const errors = [];
        await withServer({ secure: !starttls, ...C.alpha, requestCert: true, rejectUnauthorized: true, ca: C.ca1, onSecure: recordingSecure(secure) }, async (port, server) => {
            server.on('error', err => errors.push(err));
            const good = await tryClientCert(port, 'good', starttls);
            assert.match(good.reply || '', starttls ? /^250-mx\.test\.example/ : /^220 mx\.test\.example ESMTP/);
            for (const who of ['other', 'none']) {
                const res = await tryClientCert(port, who, starttls);
                assert.equal(res.reply, null, `the ${who} client must get no reply, got ${res.reply}`);
            }
            await until(() => errors.length >= 2, 'an error event for each refused client');
        });
        assert.equal(secure.length, 1, 'onSecure only runs for the accepted client');
        assert.equal(secure[0].authorized, true);
        assert.equal(secure[0].peerCN, 'client-good');
        for (const err of errors) {
            assert.ok(err instanceof Error);
            assert.ok(err.message.length > 0);
        }
    });
}

/**
 * What a client with `who`'s certificate gets from a server that requires one: 'reply'
 * (the greeting, or the EHLO reply after STARTTLS), or the code of its TLS error, or
 * 'closed' (the connection closed with no error).
 */
async function clientCertOutcome(port, who, starttls, maxVersion) {
    const options = { ...CLIENTS[who], servername: 'alpha.test', maxVersion };
    const plain = starttls ? await Client.open(port) : null;
    let client = plain;
    try {
        try {
            if (starttls) {
                await plain.starttls(options);
                plain.write('EHLO after.tls\r\n');
            } else {
                client = await Client.connectTls(port, options);
            }
        } catch (err) {
            return err.code || 'closed';
        }
        try {
            await client.read('a reply or a close');
            return 'reply';
        } catch {
            return (client.error && client.error.code) || 'closed';
        }
    } finally {
        if (client) {
            client.destroy();
        }
    }
}

/** The client's error code for the TLS 1.3 certificate_required alert (BoringSSL under Bun). */
const CERTIFICATE_REQUIRED = IS_BUN ? 'ERR_SSL_TLSV1_ALERT_CERTIFICATE_REQUIRED' : 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED';

for (const starttls of [false, true]) {
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2']) {
        test(`requestCert + rejectUnauthorized (${starttls ? 'STARTTLS' : 'implicit TLS'}, ${maxVersion}): refused during the handshake with an alert`, { timeout: 30000 }, async () => {
            const seen = {};
            for (const [pkg, Server] of PACKAGES) {
                const errors = [];
                const outcomes = {};
                await withServer(
                    { secure: !starttls, ...C.alpha, requestCert: true, rejectUnauthorized: true, ca: C.ca1 },
                    async (port, server) => {
                        server.on('error', err => errors.push(err));
                        for (const who of ['good', 'other', 'expired', 'none']) {
                            outcomes[who] = await clientCertOutcome(port, who, starttls, maxVersion);
                        }
                        await until(() => errors.length >= 3, `${pkg}: an error event for each refused client`);
                    },
                    Server
                );
                // smtp-server reports a refusal over STARTTLS twice
                seen[pkg] = { outcomes, errors: [...new Set(errors.map(e => e.code))] };
            }
            const [rs, ref] = [seen['smtp-server-rs'], seen['smtp-server']];
            assert.equal(rs.outcomes.good, 'reply');
            assert.equal(ref.outcomes.good, 'reply');
            // the server reports each refusal with the code OpenSSL gives it
            assert.deepEqual(rs.errors, ref.errors);
            assert.deepEqual(rs.errors, ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE']);
            if (maxVersion === 'TLSv1.3') {
                assert.equal(ref.outcomes.none, CERTIFICATE_REQUIRED);
            }
            if (!IS_REF) {
                // smtp-server closes after the handshake for these two, with no alert;
                // without a certificate it sends handshake_failure under TLS 1.2
                assert.deepEqual(rs.outcomes, {
                    good: 'reply',
                    other: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
                    expired: 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
                    none: CERTIFICATE_REQUIRED
                });
            }
        });
    }
}

test('requestCert with several CAs over STARTTLS: a certificate from the second CA verifies', { timeout: 20000 }, async () => {
    const secure = [];
    await withServer({ ...C.alpha, requestCert: true, rejectUnauthorized: false, ca: [C.ca2, C.ca1], onSecure: recordingSecure(secure) }, async port => {
        await using(Client.open(port), async c => {
            await c.starttls({ ...CLIENTS.other, servername: 'alpha.test' });
            assert.match(await c.cmd('EHLO again.test'), /^250-/);
            assert.equal(await c.cmd('MAIL FROM:<a@example.com>'), '250 Accepted');
        });
    });
    assert.equal(secure[0].authorized, true, 'a certificate from the second listed CA verifies');
    assert.equal(secure[0].peerCN, 'client-other');
});

// ---------------------------------------------------------------------------
// SNI

for (const [label, sniOptions, sent = ['alpha.test', 'beta.test']] of [
    ['an object', { 'alpha.test': C.alpha, 'beta.test': C.beta }],
    ['a Map', new Map([['alpha.test', C.alpha], ['beta.test', C.beta]])],
    ['names needing normalization', { ' ALPHA.Test ': C.alpha, 'Beta.TEST': C.beta }],
    ['names in other case than the SNI', { 'alpha.test': C.alpha, 'beta.test': C.beta }, ['ALPHA.Test', 'Beta.test']]
]) {
    test(`sniOptions as ${label}: each name gets its certificate, others the default`, { timeout: 20000 }, async () => {
        const secure = [];
        await withServer({ secure: true, ...C.fallback, sniOptions, onSecure: recordingSecure(secure) }, async port => {
            for (const [servername, expected] of [
                [sent[0], 'alpha.test'],
                [sent[1], 'beta.test'],
                ['gamma.test', 'fallback.test'],
                [undefined, 'fallback.test']
            ]) {
                await using(Client.openTls(port, { servername, ca: C.ca1, rejectUnauthorized: false }, null), async c => {
                    assert.equal(cn(c.socket), expected, `certificate for SNI ${servername}`);
                });
            }
        });
        // Node reports the name as the client sent it, rustls in lower case: compare without case
        assert.deepEqual(
            secure.map(s => (typeof s.session.servername === 'string' ? s.session.servername.toLowerCase() : s.session.servername)),
            ['alpha.test', 'beta.test', 'gamma.test', false]
        );
        assert.deepEqual(
            secure.slice(0, 3).map(s => s.servername.toLowerCase()),
            ['alpha.test', 'beta.test', 'gamma.test']
        );
        assert.ok(!secure[3].servername, 'no servername without SNI');
    });
}

test('sniOptions over STARTTLS, and a Unicode name matches its punycode SNI', { timeout: 20000 }, async () => {
    await withServer({ ...C.fallback, sniOptions: new Map([['beta.test', C.beta], ['bücher.test', C.bucher]]) }, async port => {
        for (const [servername, expected] of [
            ['beta.test', 'beta.test'],
            ['xn--bcher-kva.test', 'xn--bcher-kva.test'],
            ['other.test', 'fallback.test']
        ]) {
            await using(Client.open(port), async c => {
                await c.starttls({ servername });
                assert.equal(cn(c.socket), expected, `certificate for SNI ${servername}`);
                assert.match(await c.cmd('EHLO after.tls'), /^250-/);
            });
        }
    });
});

test('sniOptions entries are verified as real certificates by a strict client', { timeout: 20000 }, async () => {
    await withServer({ secure: true, ...C.fallback, sniOptions: { 'beta.test': C.beta } }, async (port, server) => {
        server.on('error', () => {}); // the refusing client aborts the handshake
        await using(Client.openTls(port, { servername: 'beta.test', ca: C.ca1, rejectUnauthorized: true }), async c => {
            assert.equal(c.socket.authorized, true);
        });
        await assert.rejects(Client.connectTls(port, { servername: 'beta.test', ca: C.ca2, rejectUnauthorized: true }), 'a client trusting another CA refuses');
    });
});

// ---------------------------------------------------------------------------
// updateSecureContext

test('updateSecureContext({key, cert}) serves the new certificate to new connections only', { timeout: 20000 }, async () => {
    await withServer({ secure: true, ...C.alpha }, async (port, server) => {
        const before = await Client.openTls(port, { servername: 'any.test' });
        try {
            assert.equal(cn(before.socket), 'alpha.test');
            server.updateSecureContext({ key: C.renewed.key, cert: C.renewed.cert });
            await using(Client.openTls(port, { servername: 'any.test' }), async c => {
                assert.equal(cn(c.socket), 'renewed.test');
                assert.equal(await c.cmd('NOOP'), '250 OK');
            });
            // the established session is not disturbed
            assert.equal(await before.cmd('NOOP'), '250 OK');
            assert.equal(cn(before.socket), 'alpha.test');
        } finally {
            before.destroy();
        }
    });
});

test('updateSecureContext over STARTTLS and with new sniOptions', { timeout: 20000 }, async () => {
    await withServer({ ...C.alpha }, async (port, server) => {
        const served = async servername =>
            using(Client.open(port), async c => {
                await c.starttls({ servername });
                return cn(c.socket);
            });
        assert.equal(await served('beta.test'), 'alpha.test');
        server.updateSecureContext({ key: C.renewed.key, cert: C.renewed.cert, sniOptions: { 'beta.test': C.beta } });
        assert.equal(await served('beta.test'), 'beta.test');
        assert.equal(await served('other.test'), 'renewed.test');
    });
});

// ---------------------------------------------------------------------------
// X.509 version 1 certificates, which both packages serve

/** The CN of the certificate served for `servername`, verified against CA1. */
async function servedCN(port, servername, starttls = false) {
    const verified = { servername, ca: C.ca1, rejectUnauthorized: true };
    if (!starttls) {
        return using(Client.openTls(port, verified), async c => {
            assert.equal(await c.cmd('NOOP'), '250 OK');
            return cn(c.socket);
        });
    }
    return using(Client.open(port), async c => {
        await c.starttls(verified);
        assert.match(await c.cmd('EHLO after.tls'), /^250-/);
        return cn(c.socket);
    });
}

for (const [label, pair, name] of [
    ['RSA', C.v1rsa, 'v1rsa.test'],
    ['ECDSA, with its intermediate CA,', C.v1ec, 'v1ec.test']
]) {
    test(`a version 1 ${label} certificate is served over implicit TLS and STARTTLS, as by smtp-server`, { timeout: 30000 }, async () => {
        for (const [pkg, Server] of PACKAGES) {
            await withServer({ secure: true, ...pair }, async port => assert.equal(await servedCN(port, name), name, pkg), Server);
            await withServer({ ...pair }, async port => assert.equal(await servedCN(port, name, true), name, pkg), Server);
        }
    });
}

test('version 1 certificates through sniOptions, SNICallback and updateSecureContext, as by smtp-server', { timeout: 30000 }, async () => {
    for (const [pkg, Server] of PACKAGES) {
        // the built-in (RSA) certificate is the default: smtp-server, through Node, keeps
        // an ECDSA default certificate when SNI picks an RSA one
        const sniOptions = { 'v1rsa.test': C.v1rsa, 'v1ec.test': C.v1ec };
        await withServer(
            { secure: true, sniOptions },
            async port => {
                assert.equal(await servedCN(port, 'v1rsa.test'), 'v1rsa.test', pkg);
                assert.equal(await servedCN(port, 'v1ec.test', false), 'v1ec.test', pkg);
            },
            Server
        );
        // the reference takes a SecureContext from SNICallback, this package TLS options
        const answer = options => (Server === Reference ? tls.createSecureContext(options) : options);
        const SNICallback = (servername, cb) => cb(null, sniOptions[servername] ? answer(sniOptions[servername]) : null);
        await withServer(
            { SNICallback },
            async port => {
                assert.equal(await servedCN(port, 'v1ec.test', true), 'v1ec.test', pkg);
                assert.equal(await servedCN(port, 'v1rsa.test', true), 'v1rsa.test', pkg);
            },
            Server
        );
        await withServer(
            { secure: true, ...C.alpha },
            async (port, server) => {
                server.updateSecureContext(C.v1rsa);
                assert.equal(await servedCN(port, 'v1rsa.test'), 'v1rsa.test', pkg);
                server.updateSecureContext(C.v1ec);
                assert.equal(await servedCN(port, 'v1ec.test'), 'v1ec.test', pkg);
            },
            Server
        );
    }
});

test('a key that does not match a version 1 certificate is refused', { skip: IS_REF && 'smtp-server fails only at the first handshake' }, () => {
    assert.throws(() => createServer({ secure: true, key: C.v1ec.key, cert: C.v1rsa.cert }), /does not match/);
    assert.throws(() => createServer({ secure: true, key: C.alpha.key, cert: C.v1ec.cert }), /does not match/);
    assert.throws(() => createServer({ ...C.alpha, sniOptions: { 'v1rsa.test': { key: C.alpha.key, cert: C.v1rsa.cert } } }), /does not match/);
    const server = createServer({ secure: true, ...C.alpha });
    assert.throws(() => server.updateSecureContext({ key: C.v1rsa.key, cert: C.v1ec.cert }), /does not match/);
});

// ---------------------------------------------------------------------------
// renegotiation

/**
 * Runs `openssl s_client -tls1_2` (with `args`), asks it to renegotiate ("R") once the
 * session is quiet (after the greeting with implicit TLS, after the handshake with
 * STARTTLS, where s_client read the greeting itself), and resolves with its output once
 * it reports the server's refusal. It waits at most `WAIT`: without the refusal it
 * would wait for the socket timeout, as no reply of the server would carry it.
 */
function sClientRenegotiate(args) {
    const quiet = args.includes('-starttls') ? /Verify return code/ : /^220 /m;
    const child = spawn('openssl', ['s_client', '-tls1_2', ...args, '-CAfile', C.ca1File, '-crlf'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let asked = false;
    const refused = new Promise((resolve, reject) => {
        const onOutput = chunk => {
            output += chunk;
            if (!asked && quiet.test(output)) {
                asked = true;
                child.stdin.write('R\n');
            }
            if (/no renegotiation/.test(output)) {
                resolve(output);
            }
        };
        child.stdout.on('data', onOutput);
        child.stderr.on('data', onOutput);
        child.on('error', reject);
        child.on('close', () => reject(new Error(`s_client ended without the refusal: ${output}`)));
    });
    child.stdin.on('error', () => {});
    return deadline(refused, WAIT, 'the refusal of the renegotiation').finally(() => child.kill());
}

for (const starttls of [false, true]) {
    const mode = starttls ? 'after STARTTLS' : 'implicit TLS';
    test(`openssl s_client -tls1_2 renegotiating (${mode}) gets no_renegotiation at once`, { timeout: 20000, skip: IS_REF && 'smtp-server lets clients renegotiate (a deliberate difference)' }, async () => {
        await withServer({ secure: !starttls, ...C.alpha }, async (port, server) => {
            server.on('error', () => {});
            const output = await sClientRenegotiate([...(starttls ? ['-starttls', 'smtp'] : []), '-connect', `127.0.0.1:${port}`, '-servername', 'alpha.test']);
            assert.match(output, /RENEGOTIATING/);
            assert.equal(await servedCN(port, 'alpha.test', starttls), 'alpha.test', 'the server still serves');
        });
    });

    test(`a TLS 1.2 Node client that renegotiates (${mode}) is refused at once`, { timeout: 20000, skip: (IS_REF && 'smtp-server lets clients renegotiate (a deliberate difference)') || (IS_BUN && "Bun's TLS client cannot renegotiate") }, async () => {
        const options = { servername: 'alpha.test', maxVersion: 'TLSv1.2' };
        await withServer({ secure: !starttls, ...C.alpha }, async (port, server) => {
            server.on('error', () => {});
            const client = starttls ? await (await Client.open(port)).starttls(options) : await Client.openTls(port, options);
            try {
                assert.equal(client.socket.getProtocol(), 'TLSv1.2');
                // Node's client gives up at the no_renegotiation alert: an 'error', and the
                // connection closes; without the alert it would wait for the socket timeout
                const answer = await deadline(
                    new Promise(resolve => {
                        client.socket.once('error', resolve);
                        client.socket.renegotiate({ rejectUnauthorized: false }, err => resolve(err || 'renegotiated'));
                    }),
                    WAIT,
                    'the answer to the renegotiation'
                );
                assert.equal(answer.code, 'ERR_SSL_NO_RENEGOTIATION');
                await deadline(client.closedPromise, WAIT, 'the connection to close');
            } finally {
                client.destroy();
            }
            assert.equal(await servedCN(port, 'alpha.test', starttls), 'alpha.test', 'the server still serves');
        });
    });
}

// ---------------------------------------------------------------------------
// STARTTLS protocol rules

test('STARTTLS command injection: a command pipelined behind STARTTLS is never run', { timeout: 20000 }, async () => {
    const mails = [];
    await withServer({ ...C.alpha, onMailFrom: recordingMail(mails) }, async port => {
        await using(Client.open(port), async c => {
            c.write('STARTTLS\r\nRSET\r\n');
            assert.equal(await c.read('the reply to STARTTLS'), '220 Ready to start TLS');
            assert.equal(c.replies.length, 0, 'nothing after 220 in plaintext');
            await c.handshake({ servername: 'alpha.test' });
            const first = await c.cmd('EHLO after.tls');
            assert.match(first, /^250-mx\.test\.example Nice to meet you/, 'the first reply after the handshake answers the post-TLS EHLO');
            assert.equal(await c.cmd('NOOP'), '250 OK');
        });
        await using(Client.open(port), async c => {
            c.write('STARTTLS\r\nMAIL FROM:<injected@example.com>\r\nRCPT TO:<victim@example.com>\r\n');
            assert.equal(await c.read('the reply to STARTTLS'), '220 Ready to start TLS');
            await c.handshake({ servername: 'alpha.test' });
            assert.match(await c.cmd('EHLO after.tls'), /^250-/);
            assert.equal(await c.cmd('MAIL FROM:<real@example.com>'), '250 Accepted');
        });
    });
    assert.deepEqual(mails.map(m => m.address), ['real@example.com'], 'the injected MAIL never reached onMailFrom');
});

test('STARTTLS with a parameter gets 501, STARTTLS when secure gets 503', { timeout: 20000 }, async () => {
    await withServer({ ...C.alpha }, async port => {
        await using(Client.open(port), async c => {
            assert.equal(await c.cmd('STARTTLS now'), '501 Error: syntax: STARTTLS');
            await c.starttls();
            assert.equal(await c.cmd('STARTTLS'), '503 Error: TLS already active');
            assert.match(await c.cmd('EHLO again.test'), /^250-/);
            assert.equal(await c.cmd('STARTTLS'), '503 Error: TLS already active');
        });
    });
    await withServer({ secure: true, ...C.alpha, hideENHANCEDSTATUSCODES: false }, async port => {
        await using(Client.openTls(port), async c => {
            assert.equal(await c.cmd('STARTTLS'), '503 5.5.1 Error: TLS already active');
        });
    });
});

test('STARTTLS resets the session: HELO, transaction and user are gone', { timeout: 20000 }, async () => {
    const mails = [];
    const onAuth = (auth, session, cb) => cb(null, { user: auth.username });
    await withServer({ ...C.alpha, authOptional: false, allowInsecureAuth: true, onAuth, onMailFrom: recordingMail(mails) }, async port => {
        await using(Client.open(port), async c => {
            assert.equal(await c.cmd('AUTH PLAIN ' + Buffer.from('\0plain-user\0pw').toString('base64')), '235 Authentication successful');
            assert.equal(await c.cmd('MAIL FROM:<before@example.com>'), '250 Accepted');
            await c.starttls();
            assert.equal(await c.cmd('MAIL FROM:<a@example.com>'), '503 Error: send HELO/EHLO first');
            assert.equal(await c.cmd('AUTH PLAIN ' + Buffer.from('\0x\0y').toString('base64')), '503 Error: send HELO/EHLO first');
            assert.match(await c.cmd('EHLO again.test'), /^250-.*\n(250-.*\n)*250[ -]AUTH LOGIN PLAIN/);
            assert.equal(await c.cmd('MAIL FROM:<a@example.com>'), '530 Error: authentication Required', 'the plaintext login does not survive STARTTLS');
            assert.equal(await c.cmd('AUTH PLAIN ' + Buffer.from('\0tls-user\0pw').toString('base64')), '235 Authentication successful');
            assert.equal(await c.cmd('RCPT TO:<r@example.com>'), '503 Error: need MAIL command', 'the plaintext transaction is gone');
            assert.equal(await c.cmd('MAIL FROM:<after@example.com>'), '250 Accepted');
        });
    });
    assert.deepEqual(
        mails.map(m => [m.address, m.transmissionType, m.user]),
        [
            ['before@example.com', 'ESMTPA', 'plain-user'],
            ['after@example.com', 'ESMTPSA', 'tls-user']
        ]
    );
});

test('EHLO capabilities before and after STARTTLS; REQUIRETLS only over TLS', { timeout: 20000 }, async () => {
    const mails = [];
    await withServer({ ...C.alpha, hideREQUIRETLS: false, size: 1000, onMailFrom: recordingMail(mails) }, async port => {
        await using(Client.open(port), async c => {
            assert.deepEqual(c.ehlo.split('\n'), [
                '250-mx.test.example Nice to meet you, [127.0.0.1]',
                '250-PIPELINING',
                '250-8BITMIME',
                '250-SMTPUTF8',
                '250-AUTH LOGIN PLAIN',
                '250-STARTTLS',
                '250 SIZE 1000'
            ]);
            assert.equal(await c.cmd('MAIL FROM:<a@example.com> REQUIRETLS'), '530 REQUIRETLS not permitted on non-TLS connections');
            await c.starttls();
            const ehlo = await c.cmd('EHLO client.test');
            assert.deepEqual(ehlo.split('\n'), [
                '250-mx.test.example Nice to meet you, [127.0.0.1]',
                '250-PIPELINING',
                '250-8BITMIME',
                '250-SMTPUTF8',
                '250-AUTH LOGIN PLAIN',
                '250-REQUIRETLS',
                '250 SIZE 1000'
            ]);
            assert.equal(await c.cmd('MAIL FROM:<a@example.com> REQUIRETLS'), '250 Accepted');
        });
    });
    assert.equal(mails.length, 1);
    assert.equal(mails[0].requireTLS, true);
});

test('transmissionType over TLS: ESMTPS, SMTPS with HELO, ESMTPSA after AUTH', { timeout: 20000 }, async () => {
    const mails = [];
    const onAuth = (auth, session, cb) => cb(null, { user: 'u' });
    await withServer({ secure: true, ...C.alpha, onAuth, onMailFrom: recordingMail(mails) }, async port => {
        await using(Client.openTls(port, {}, 'HELO client.test'), async c => {
            assert.equal(await c.cmd('MAIL FROM:<helo@example.com>'), '250 Accepted');
            assert.match(await c.cmd('EHLO client.test'), /^250-/);
            assert.equal(await c.cmd('MAIL FROM:<ehlo@example.com>'), '250 Accepted');
            assert.equal(await c.cmd('RSET'), '250 Flushed');
            assert.equal(await c.cmd('AUTH PLAIN ' + Buffer.from('\0u\0p').toString('base64')), '235 Authentication successful');
            assert.equal(await c.cmd('MAIL FROM:<auth@example.com>'), '250 Accepted');
        });
    });
    assert.deepEqual(
        mails.map(m => [m.address, m.transmissionType]),
        [
            ['helo@example.com', 'SMTPS'],
            ['ehlo@example.com', 'ESMTPS'],
            ['auth@example.com', 'ESMTPSA']
        ]
    );
});

test('session.tlsOptions: false on plaintext, the cipher after STARTTLS; version options are honoured', { timeout: 20000 }, async () => {
    const mails = [];
    await withServer({ ...C.alpha, maxVersion: 'TLSv1.2', onMailFrom: recordingMail(mails) }, async port => {
        await using(Client.open(port), async c => {
            assert.equal(await c.cmd('MAIL FROM:<plain@example.com>'), '250 Accepted');
            await c.starttls();
            assert.equal(c.socket.getProtocol(), 'TLSv1.2');
            assert.match(await c.cmd('EHLO again.test'), /^250-/);
            assert.equal(await c.cmd('MAIL FROM:<tls@example.com>'), '250 Accepted');
        });
    });
    assert.equal(mails[0].tlsOptions, false);
    assert.equal(mails[0].secure, false);
    CIPHER_SHAPE(mails[1].tlsOptions);
    assert.equal(mails[1].tlsOptions.version, 'TLSv1.2');
    assert.equal(mails[1].secure, true);
});

// ---------------------------------------------------------------------------
// onSecure refusals

test('onSecure cb(err) after STARTTLS: that reply (with ESC when enabled), then close', { timeout: 20000 }, async () => {
    const refuse = () => smtpError('TLS policy says no', 550);
    await withServer({ ...C.alpha, hideENHANCEDSTATUSCODES: false, onSecure: recordingSecure([], refuse) }, async port => {
        await using(Client.open(port), async c => {
            await c.starttls();
            assert.equal(await c.read('the onSecure refusal'), '550 5.1.1 TLS policy says no');
            await c.waitClose();
        });
    });
    await withServer({ ...C.alpha, onSecure: recordingSecure([], () => new Error('No TLS for you')) }, async port => {
        await using(Client.open(port), async c => {
            await c.starttls();
            assert.equal(await c.read('the onSecure refusal'), '554 No TLS for you');
            await c.waitClose();
        });
    });
});

test('onSecure cb(err) on implicit TLS: the refusal replaces the greeting (no ESC), then close', { timeout: 20000 }, async () => {
    const mails = [];
    await withServer({ secure: true, ...C.alpha, hideENHANCEDSTATUSCODES: false, onSecure: recordingSecure([], () => smtpError('Client certificate required', 530)), onMailFrom: recordingMail(mails) }, async port => {
        await using(Client.connectTls(port), async c => {
            assert.equal(await c.read('the onSecure refusal'), '530 Client certificate required');
            c.write('MAIL FROM:<a@example.com>\r\n');
            await c.waitClose();
        });
    });
    assert.equal(mails.length, 0);
});

// ---------------------------------------------------------------------------
// broken and hostile handshakes

test('garbage instead of a ClientHello on the implicit TLS port: closed, error event, server still serves', { timeout: 20000 }, async () => {
    const errors = [];
    await withServer({ secure: true, ...C.alpha }, async (port, server) => {
        server.on('error', err => errors.push(err));
        for (const garbage of ['EHLO client.test\r\n', Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, 0xff, 0xff, 0xff])]) {
            const c = await Client.connect(port);
            try {
                c.write(garbage);
                await c.waitClose('the server to drop a non-TLS client');
                assert.doesNotMatch(c.buffer + c.replies.join('\n'), /^\d{3} /m, 'no SMTP reply in plaintext');
            } finally {
                c.destroy();
            }
        }
        await until(() => errors.length >= 2, 'an error event per broken handshake');
        await using(Client.openTls(port), async c => {
            assert.equal(await c.cmd('NOOP'), '250 OK');
        });
    });
    for (const err of errors) {
        assert.ok(err instanceof Error);
        assert.ok(err.message.length > 0, 'the error has a message');
    }
});

test('garbage ClientHello without an error listener does not throw', { timeout: 20000, skip: IS_REF && 'smtp-server emits error without a listener (deliberate difference)' }, async () => {
    await withServer({ secure: true, ...C.alpha }, async (port, server) => {
        assert.equal(server.listenerCount('error'), 0);
        const c = await Client.connect(port);
        try {
            c.write('this is not TLS at all\r\n'.repeat(20));
            await c.waitClose();
        } finally {
            c.destroy();
        }
        await using(Client.openTls(port), async t => {
            assert.equal(await t.cmd('NOOP'), '250 OK');
        });
    });
});

test('a client that stops mid-handshake is closed after socketTimeout', { timeout: 20000 }, async () => {
    await withServer({ secure: true, ...C.alpha, socketTimeout: 300 }, async (port, server) => {
        server.on('error', () => {});
        const c = await Client.connect(port);
        try {
            // a TLS record header announcing more than is ever sent
            c.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
            await c.waitClose('the server to give up on an unfinished handshake', 4000);
        } finally {
            c.destroy();
        }
    });
    await withServer({ ...C.alpha, socketTimeout: 300 }, async (port, server) => {
        server.on('error', () => {});
        const c = await Client.open(port);
        try {
            assert.equal(await c.cmd('STARTTLS'), '220 Ready to start TLS');
            // and then nothing
            await c.waitClose('the server to give up on a STARTTLS without handshake', 4000);
        } finally {
            c.destroy();
        }
    });
});

test('a TLS handshake on the plain port fails and the server keeps serving', { timeout: 20000 }, async () => {
    await withServer({ ...C.alpha }, async (port, server) => {
        server.on('error', () => {});
        // before the greeting: the ClientHello leaves with the connection
        await assert.rejects(Client.connectTls(port, { servername: 'alpha.test' }), 'no TLS session on a plain port');
        // after the greeting, without STARTTLS
        const c = await Client.connect(port);
        try {
            assert.match(await c.read('the greeting'), /^220 /);
            await assert.rejects(c.handshake({ servername: 'alpha.test' }), 'the SMTP reply is not a ServerHello');
        } finally {
            c.destroy();
        }
        await using(Client.open(port), async ok => {
            assert.equal(await ok.cmd('NOOP'), '250 OK');
        });
    });
});

test('minVersion TLSv1.3 refuses a TLS 1.2-only client', { timeout: 20000 }, async () => {
    const errors = [];
    await withServer({ secure: true, ...C.alpha, minVersion: 'TLSv1.3' }, async (port, server) => {
        server.on('error', err => errors.push(err));
        await assert.rejects(Client.connectTls(port, { maxVersion: 'TLSv1.2' }), 'a TLS 1.2-only client cannot connect');
        await using(Client.openTls(port), async c => {
            assert.equal(c.socket.getProtocol(), 'TLSv1.3');
        });
        await until(() => errors.length >= 1, 'an error event for the refused handshake');
    });
    await withServer({ ...C.alpha, minVersion: 'TLSv1.3' }, async (port, server) => {
        server.on('error', () => {});
        const c = await Client.open(port);
        try {
            await assert.rejects(c.starttls({ maxVersion: 'TLSv1.2' }), 'STARTTLS with a TLS 1.2-only client fails');
        } finally {
            c.destroy();
        }
    });
});

// ---------------------------------------------------------------------------
// keys, certificates and options

test('an encrypted private key with passphrase', { timeout: 20000 }, async () => {
    await withServer({ secure: true, key: C.alphaEncryptedKey, passphrase: 's3cret pass', cert: C.alpha.cert }, async port => {
        await using(Client.openTls(port, { servername: 'alpha.test', ca: C.ca1, rejectUnauthorized: true }), async c => {
            assert.equal(cn(c.socket), 'alpha.test');
            assert.equal(await c.cmd('NOOP'), '250 OK');
        });
    });
    await withServer({ secure: true, key: [{ pem: C.alphaEncryptedKey, passphrase: 's3cret pass' }], cert: C.alpha.cert }, async port => {
        await using(Client.openTls(port, { servername: 'alpha.test', ca: C.ca1, rejectUnauthorized: true }), async c => {
            assert.equal(cn(c.socket), 'alpha.test');
        });
    });
    assert.throws(() => createServer({ secure: true, key: C.alphaEncryptedKey, passphrase: 'wrong', cert: C.alpha.cert }), 'a wrong passphrase fails in the constructor');
    assert.throws(() => createServer({ secure: true, key: C.alphaEncryptedKey, cert: C.alpha.cert }), 'a missing passphrase fails in the constructor');
});

test('pfx gives a clear constructor error', { skip: IS_REF && 'smtp-server supports pfx' }, () => {
    assert.throws(
        () => createServer({ secure: true, pfx: Buffer.from('not really pkcs12') }),
        err => {
            assert.match(err.message, /pfx/i);
            assert.match(err.message, /PEM/);
            return true;
        }
    );
});

test('TLS versions rustls lacks are constructor errors', { skip: IS_REF && 'Node supports TLS 1.0/1.1' }, () => {
    assert.throws(() => createServer({ secure: true, ...C.alpha, maxVersion: 'TLSv1.1' }), /maxVersion/);
    assert.throws(() => createServer({ secure: true, ...C.alpha, minVersion: 'SSLv3' }), /minVersion/);
});

test('the built-in certificate is the one lib/tls-options.js exports', { timeout: 20000, skip: IS_REF && 'the reference has its own built-in certificate' }, async () => {
    const { DEFAULT_CERT } = require('../lib/tls-options.js');
    const expected = new crypto.X509Certificate(DEFAULT_CERT).fingerprint256;
    await withServer({ secure: true }, async port => {
        await using(Client.openTls(port, { servername: 'localhost' }), async c => {
            assert.equal(c.socket.getPeerCertificate().fingerprint256, expected);
            assert.equal(cn(c.socket), 'localhost');
        });
    });
});

test('needsUpgrade: TLS right away, onSecure once, greeting over TLS', { timeout: 20000, skip: IS_REF && 'smtp-server calls onSecure twice with needsUpgrade' }, async () => {
    const secure = [];
    const mails = [];
    await withServer({ needsUpgrade: true, ...C.alpha, onSecure: recordingSecure(secure), onMailFrom: recordingMail(mails) }, async port => {
        await using(Client.openTls(port, { servername: 'alpha.test' }), async c => {
            assert.equal(cn(c.socket), 'alpha.test');
            assert.doesNotMatch(c.ehlo, /STARTTLS/);
            assert.equal(await c.cmd('MAIL FROM:<a@example.com>'), '250 Accepted');
        });
    });
    assert.equal(secure.length, 1);
    assert.equal(secure[0].servername, 'alpha.test');
    assert.equal(mails[0].secure, true);
    assert.equal(mails[0].transmissionType, 'ESMTPS');
});

test('secured: true is secure without TLS', { timeout: 20000 }, async () => {
    const secure = [];
    const mails = [];
    const onAuth = (auth, session, cb) => cb(null, { user: 'u' });
    await withServer({ secured: true, secure: true, onAuth, onSecure: recordingSecure(secure), onMailFrom: recordingMail(mails) }, async port => {
        await using(Client.open(port), async c => {
            assert.doesNotMatch(c.ehlo, /STARTTLS/);
            assert.equal(await c.cmd('STARTTLS'), '503 Error: TLS already active');
            assert.equal(await c.cmd('AUTH PLAIN ' + Buffer.from('\0u\0p').toString('base64')), '235 Authentication successful');
            assert.equal(await c.cmd('MAIL FROM:<a@example.com>'), '250 Accepted');
        });
    });
    assert.equal(secure.length, 1, 'onSecure still runs');
    assert.equal(mails[0].secure, true);
    assert.equal(mails[0].transmissionType, 'ESMTPSA');
});

test('many concurrent STARTTLS sessions with different SNI names', { timeout: 30000 }, async () => {
    await withServer({ ...SNI }, async port => {
        const names = ['alpha.test', 'beta.test', 'zeta.test'];
        const jobs = [];
        for (let i = 0; i < 15; i++) {
            const name = names[i % names.length];
            jobs.push(
                using(Client.open(port), async c => {
                    await c.starttls({ servername: name });
                    assert.match(await c.cmd('EHLO c' + i + '.test'), /^250-/);
                    assert.equal(await c.cmd(`MAIL FROM:<c${i}@example.com>`), '250 Accepted');
                    return [name, cn(c.socket)];
                })
            );
        }
        for (const [name, served] of await Promise.all(jobs)) {
            assert.equal(served, name === 'zeta.test' ? 'fallback.test' : name);
        }
    });
});
