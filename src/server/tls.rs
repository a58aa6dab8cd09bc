//! TLS with rustls: server configuration from Node-shaped options (PEM certificates and
//! keys, SNI names, client certificates, protocol versions), the stream type that lets a
//! connection switch to TLS mid-session, and what the application learns about a session.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::{
    ring as provider, verify_tls12_signature, verify_tls13_signature, CryptoProvider,
};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert, ServerConnection};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{
    self, CertificateError, CipherSuite, DigitallySignedStruct, DistinguishedName, ProtocolVersion,
    ServerConfig, SignatureScheme,
};
use tokio_rustls::server::TlsStream;

use super::ready::ReadReady;
use crate::protocol::punycode::to_unicode;
use crate::protocol::session::TlsInfo;

/// A certificate chain and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Identity {
    /// PEM certificate chain (leaf first).
    pub cert: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1, unencrypted).
    pub key: String,
}

/// TLS settings, as `index.js` normalizes them from the options.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Identities for every name not listed in `sni`.
    pub default: Vec<Identity>,
    /// Identities per server name.
    pub sni: Vec<(String, Vec<Identity>)>,
    /// PEM CA certificates trusted for client certificates.
    pub ca: Vec<String>,
    /// Ask clients for a certificate.
    pub request_cert: bool,
    /// Refuse clients whose certificate does not verify.
    pub reject_unauthorized: bool,
    /// Lowest protocol version (`TLSv1.2` or `TLSv1.3`).
    pub min_version: Option<String>,
    /// Highest protocol version.
    pub max_version: Option<String>,
}

/// A built TLS server configuration.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The rustls configuration for handshakes.
    pub config: Arc<ServerConfig>,
    /// Client certificate policy, when certificates are requested.
    pub client_auth: Option<Arc<ClientAuth>>,
}

/// How client certificates are judged: the trusted CAs and whether a certificate that
/// does not verify (or none) breaks off the handshake.
#[derive(Debug)]
pub struct ClientAuth {
    roots: Vec<CertificateDer<'static>>,
    /// Refuse the session when the certificate does not verify.
    pub reject_unauthorized: bool,
}

fn crypto() -> Arc<CryptoProvider> {
    Arc::new(provider::default_provider())
}

fn parse_identity(id: &Identity) -> Result<Arc<CertifiedKey>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(id.cert.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid certificate PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate found in cert".into());
    }
    let key = PrivateKeyDer::from_pem_slice(id.key.as_bytes())
        .map_err(|e| format!("invalid private key PEM: {e}"))?;
    let signing = provider::sign::any_supported_type(&key)
        .map_err(|e| format!("unsupported private key: {e}"))?;
    let spki = certificate_fields(&certs[0])
        .ok_or("the certificate is not a well-formed X.509 certificate")?
        .spki;
    let key_spki = signing
        .public_key()
        .ok_or("the public key of the private key cannot be derived")?;
    if key_spki.as_ref() != spki {
        return Err("the private key does not match the certificate".into());
    }
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

/// One DER element: its tag, its contents, all of its bytes, and what follows it.
struct Element<'a> {
    tag: u8,
    contents: &'a [u8],
    whole: &'a [u8],
    rest: &'a [u8],
}

/// Reads the DER element at the start of `input` (single-byte tags, definite lengths).
fn der_element(input: &[u8]) -> Option<Element<'_>> {
    let (&tag, after_tag) = input.split_first()?;
    let (&first, after_len) = after_tag.split_first()?;
    let (len, body) = if first < 0x80 {
        (usize::from(first), after_len)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > std::mem::size_of::<usize>() || after_len.len() < n {
            return None;
        }
        let (bytes, body) = after_len.split_at(n);
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, body)
    };
    if body.len() < len {
        return None;
    }
    let header = input.len() - body.len();
    let (whole, rest) = input.split_at(header + len);
    Some(Element {
        tag,
        contents: &body[..len],
        whole,
        rest,
    })
}

/// The parts of a certificate that name it and its key, as DER.
struct CertificateFields<'a> {
    issuer: &'a [u8],
    subject: &'a [u8],
    spki: &'a [u8],
}

/// Reads a certificate of any version from the structure itself: webpki parses only
/// version 3 certificates, and OpenSSL takes version 1 too.
fn certificate_fields(cert: &[u8]) -> Option<CertificateFields<'_>> {
    const SEQUENCE: u8 = 0x30;
    const VERSION: u8 = 0xa0;
    let certificate = der_element(cert).filter(|e| e.tag == SEQUENCE)?;
    let tbs = der_element(certificate.contents).filter(|e| e.tag == SEQUENCE)?;
    let mut rest = tbs.contents;
    if rest.first() == Some(&VERSION) {
        rest = der_element(rest)?.rest;
    }
    // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    let mut fields = [&[][..]; 6];
    for field in &mut fields {
        let element = der_element(rest)?;
        *field = element.whole;
        rest = element.rest;
    }
    let [_, _, issuer, _, subject, spki] = fields;
    (spki.first() == Some(&SEQUENCE)).then_some(CertificateFields {
        issuer,
        subject,
        spki,
    })
}

fn parse_identities(list: &[Identity]) -> Result<Vec<Arc<CertifiedKey>>, String> {
    list.iter().map(parse_identity).collect()
}

/// Normalizes a server name the way smtp-server does: punycode to Unicode, lower case.
pub fn normalize_servername(name: &str) -> String {
    let trimmed = name.trim();
    match to_unicode(trimmed) {
        Ok(u) => u.to_lowercase(),
        Err(_) => trimmed.to_lowercase(),
    }
}

/// Picks a certificate by SNI name and the client's signature schemes.
#[derive(Debug)]
struct SniResolver {
    default: Vec<Arc<CertifiedKey>>,
    names: HashMap<String, Vec<Arc<CertifiedKey>>>,
}

impl SniResolver {
    fn pick(list: &[Arc<CertifiedKey>], schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        list.iter()
            .find(|k| k.key.choose_scheme(schemes).is_some())
            .or_else(|| list.first())
            .cloned()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let schemes = hello.signature_schemes();
        if let Some(name) = hello.server_name() {
            if let Some(list) = self.names.get(&normalize_servername(name)) {
                return Self::pick(list, schemes);
            }
        }
        Self::pick(&self.default, schemes)
    }
}

/// Judges client certificates during the handshake. With `rejectUnauthorized` a
/// certificate that does not verify, or none, breaks off the handshake with the alert that
/// names the reason; without it every certificate is taken (once the client has shown it
/// holds the key) and `inspect` reports the verdict the way Node does (`authorized: false`).
#[derive(Debug)]
struct ClientVerifier {
    provider: Arc<CryptoProvider>,
    hints: Vec<DistinguishedName>,
    auth: Arc<ClientAuth>,
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.auth.reject_unauthorized
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if self.auth.reject_unauthorized {
            verify_client(&self.auth, end_entity, intermediates, now).map_err(|code| {
                let refusal = REFUSALS.iter().find(|r| r.code == code);
                rustls::Error::InvalidCertificate(
                    refusal.map_or(CertificateError::BadEncoding, |r| r.error.clone()),
                )
            })?;
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn versions(
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    fn rank(v: Option<&str>, default: u8, what: &str) -> Result<u8, String> {
        match v {
            None => Ok(default),
            Some("TLSv1.3") => Ok(13),
            Some("TLSv1.2") => Ok(12),
            // below TLS 1.2 is not offered; a lower minimum cannot weaken anything
            Some("TLSv1" | "TLSv1.1") if what == "minVersion" => Ok(12),
            Some(other) => Err(format!(
                "{what} {other:?} is not supported: this server speaks TLSv1.2 and TLSv1.3"
            )),
        }
    }
    let lo = rank(min, 12, "minVersion")?;
    let hi = rank(max, 13, "maxVersion")?;
    if lo > hi {
        return Err(format!("minVersion {min:?} is above maxVersion {max:?}"));
    }
    let mut out = Vec::new();
    if lo <= 12 {
        out.push(&rustls::version::TLS12);
    }
    if hi >= 13 {
        out.push(&rustls::version::TLS13);
    }
    Ok(out)
}

/// Builds the rustls configuration; the error text explains what is wrong.
pub fn build(settings: &TlsSettings) -> Result<Tls, String> {
    let default = parse_identities(&settings.default)?;
    if default.is_empty() {
        return Err("no certificate configured".into());
    }
    let mut names = HashMap::new();
    for (name, ids) in &settings.sni {
        names.insert(normalize_servername(name), parse_identities(ids)?);
    }
    let provider = crypto();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions(
            settings.min_version.as_deref(),
            settings.max_version.as_deref(),
        )?)
        .map_err(|e| e.to_string())?;
    let mut roots = Vec::new();
    for pem in &settings.ca {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.push(cert.map_err(|e| format!("invalid ca PEM: {e}"))?);
        }
    }
    let resolver = Arc::new(SniResolver { default, names });
    let (mut config, client_auth) = if settings.request_cert {
        let hints = roots
            .iter()
            .filter_map(|der| webpki::anchor_from_trusted_cert(der).ok())
            .map(|anchor| DistinguishedName::in_sequence(anchor.subject.as_ref()))
            .collect();
        let auth = Arc::new(ClientAuth {
            roots,
            reject_unauthorized: settings.reject_unauthorized,
        });
        let verifier = Arc::new(ClientVerifier {
            provider: Arc::clone(&provider),
            hints,
            auth: Arc::clone(&auth),
        });
        (
            builder
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(resolver),
            Some(auth),
        )
    } else {
        (
            builder.with_no_client_auth().with_cert_resolver(resolver),
            None,
        )
    };
    config.ignore_client_order = true;
    Ok(Tls {
        config: Arc::new(config),
        client_auth,
    })
}

fn cipher_names(suite: CipherSuite) -> (String, String) {
    let iana = format!("{suite:?}");
    let openssl = match suite {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
            "ECDHE-ECDSA-CHACHA20-POLY1305"
        }
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        _ => "",
    };
    let standard = iana.replacen("TLS13_", "TLS_", 1);
    let name = if openssl.is_empty() {
        standard.clone()
    } else {
        openssl.to_string()
    };
    (name, standard)
}

/// Node's name for a certificate verification failure. `untrusted_self_issued`: the
/// certificate names itself as its issuer and is not one of the trusted CAs (OpenSSL
/// finds no chain for it, whatever else webpki has against it, such as a CA flag).
fn authorization_error(err: &webpki::Error, untrusted_self_issued: bool) -> &'static str {
    match err {
        webpki::Error::CertExpired { .. } => "CERT_HAS_EXPIRED",
        webpki::Error::CertNotValidYet { .. } => "CERT_NOT_YET_VALID",
        _ if untrusted_self_issued => "DEPTH_ZERO_SELF_SIGNED_CERT",
        webpki::Error::UnknownIssuer => "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
        webpki::Error::CertRevoked => "CERT_REVOKED",
        webpki::Error::RequiredEkuNotFoundContext(_) => "INVALID_PURPOSE",
        _ => "CERT_REJECTED",
    }
}

/// Checks a client certificate chain against the trusted CAs; `Err` is Node's name for
/// what is wrong with it.
fn verify_client(
    auth: &ClientAuth,
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
) -> Result<(), &'static str> {
    let anchors: Vec<_> = auth
        .roots
        .iter()
        .filter_map(|der| webpki::anchor_from_trusted_cert(der).ok())
        .collect();
    let cert = webpki::EndEntityCert::try_from(leaf).map_err(|_| "CERT_REJECTED")?;
    cert.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        intermediates,
        now,
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| {
        let self_issued = certificate_fields(leaf).is_some_and(|f| f.issuer == f.subject);
        let trusted = auth.roots.iter().any(|root| root == leaf);
        authorization_error(&e, self_issued && !trusted)
    })
}

/// A client certificate refusal: Node's name for it, the rustls error that carries it
/// through the handshake (and so picks the alert the client gets), and OpenSSL's text.
struct Refusal {
    code: &'static str,
    error: CertificateError,
    message: &'static str,
}

/// The refusals `verify_client` can give; where two share a rustls error, the first is
/// the name reported once the handshake has failed.
const REFUSALS: [Refusal; 7] = [
    Refusal {
        code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
        error: CertificateError::UnknownIssuer,
        message: "unable to verify the first certificate",
    },
    Refusal {
        code: "DEPTH_ZERO_SELF_SIGNED_CERT",
        error: CertificateError::UnknownIssuer,
        message: "self-signed certificate",
    },
    Refusal {
        code: "CERT_HAS_EXPIRED",
        error: CertificateError::Expired,
        message: "certificate has expired",
    },
    Refusal {
        code: "CERT_NOT_YET_VALID",
        error: CertificateError::NotValidYet,
        message: "certificate is not yet valid",
    },
    Refusal {
        code: "CERT_REVOKED",
        error: CertificateError::Revoked,
        message: "certificate revoked",
    },
    Refusal {
        code: "INVALID_PURPOSE",
        error: CertificateError::InvalidPurpose,
        message: "unsupported certificate purpose",
    },
    Refusal {
        code: "CERT_REJECTED",
        error: CertificateError::BadEncoding,
        message: "certificate rejected",
    },
];

/// Node's error code and message for a handshake that failed because the client
/// certificate was refused (`rejectUnauthorized`), as OpenSSL names them.
pub fn client_cert_refusal(err: &io::Error) -> Option<(&'static str, &'static str)> {
    match err.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::NoCertificatesPresented => Some((
            "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE",
            "peer did not return a certificate",
        )),
        rustls::Error::InvalidCertificate(e) => REFUSALS
            .iter()
            .find(|r| r.error == *e)
            .map(|r| (r.code, r.message)),
        _ => None,
    }
}

/// Describes an established session, with the verdict on the client certificate.
pub fn inspect(conn: &ServerConnection, auth: Option<&ClientAuth>) -> TlsInfo {
    let (name, standard_name) = conn
        .negotiated_cipher_suite()
        .map(|s| cipher_names(s.suite()))
        .unwrap_or_default();
    let version = match conn.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "unknown",
    };
    let chain = conn.peer_certificates().unwrap_or_default();
    let mut info = TlsInfo {
        name,
        standard_name,
        version: version.to_string(),
        servername: conn.server_name().map(str::to_string),
        authorized: false,
        authorization_error: None,
        peer_certificate: chain.first().map(|c| c.as_ref().to_vec()),
    };
    if let Some(auth) = auth {
        // with `rejectUnauthorized` the handshake got this far only with a good certificate
        let verdict = match chain.split_first() {
            _ if auth.reject_unauthorized => Ok(()),
            Some((leaf, intermediates)) => {
                verify_client(auth, leaf, intermediates, UnixTime::now())
            }
            None => Err("UNABLE_TO_GET_ISSUER_CERT"),
        };
        match verdict {
            Ok(()) => info.authorized = true,
            Err(code) => info.authorization_error = Some(code.to_string()),
        }
    }
    info
}

/// A connection's byte stream: plain until STARTTLS (or from the start for implicit TLS).
pub enum Transport<S> {
    /// Cleartext.
    Plain(S),
    /// TLS on top of the socket.
    Tls(Box<TlsStream<S>>),
    /// Between the two, while a handshake runs.
    Switching,
}

fn switching() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "TLS handshake in progress")
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Transport<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            // a client that closed without close_notify is done sending, as Node's TLS
            // sockets see it: the end of input, not an error
            Transport::Tls(s) => {
                let read = match Pin::new(s.as_mut()).poll_read(cx, buf) {
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        Poll::Ready(Ok(()))
                    }
                    other => other,
                };
                // what reading made TLS answer (the refusal of a renegotiation, a key
                // update) leaves now, not with the next reply; a socket that cannot take
                // it yet wakes this read again when it can, and a write error shows in
                // the next read or write
                if s.get_ref().1.wants_write() {
                    let _ = Pin::new(s.as_mut()).poll_flush(cx);
                }
                read
            }
            Transport::Switching => Poll::Ready(Err(switching())),
        }
    }
}

impl<S: ReadReady> ReadReady for Transport<S> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Transport::Plain(s) => s.poll_read_ready(cx),
            // TLS may hold decrypted input already: its reads decide
            Transport::Tls(_) | Transport::Switching => Poll::Ready(Ok(())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Transport<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::Switching => Poll::Ready(Err(switching())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::Switching => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::Switching => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::certificate_fields;

    /// DER of `tag` around `contents` (short or two-byte long form length).
    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match u8::try_from(contents.len()) {
            Ok(n) if n < 0x80 => out.push(n),
            _ => {
                let n = u16::try_from(contents.len()).expect("test sizes fit");
                out.push(0x82);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        out.extend_from_slice(contents);
        out
    }

    /// A certificate's shape: the TBS fields in order, then a signature algorithm and value.
    fn certificate(version: Option<u8>, issuer: &[u8], subject: &[u8], spki: &[u8]) -> Vec<u8> {
        let mut tbs = Vec::new();
        if let Some(v) = version {
            tbs.extend(tlv(0xa0, &tlv(0x02, &[v])));
        }
        tbs.extend(tlv(0x02, &[0x01])); // serialNumber
        tbs.extend(tlv(0x30, b"")); // signature
        tbs.extend_from_slice(issuer);
        tbs.extend(tlv(0x30, b"")); // validity
        tbs.extend_from_slice(subject);
        tbs.extend_from_slice(spki);
        let mut cert = tlv(0x30, &tbs);
        cert.extend(tlv(0x30, b""));
        cert.extend(tlv(0x03, &[0]));
        tlv(0x30, &cert)
    }

    #[test]
    fn reads_version_1_and_3_certificates() {
        let issuer = tlv(0x30, b"issuer");
        let subject = tlv(0x30, b"subject");
        let spki = tlv(
            0x30,
            &[&tlv(0x30, b"alg")[..], &tlv(0x03, &[0; 200])].concat(),
        );
        for version in [None, Some(2)] {
            let cert = certificate(version, &issuer, &subject, &spki);
            let fields = certificate_fields(&cert).expect("a well-formed certificate");
            assert_eq!(fields.issuer, &issuer[..], "{version:?}");
            assert_eq!(fields.subject, &subject[..], "{version:?}");
            assert_eq!(fields.spki, &spki[..], "{version:?}");
        }
    }

    #[test]
    fn malformed_certificates_are_not_read() {
        let name = tlv(0x30, b"name");
        let spki = tlv(0x30, &tlv(0x03, &[0; 10]));
        let cert = certificate(Some(2), &name, &name, &spki);
        for end in 0..cert.len() {
            assert!(certificate_fields(&cert[..end]).is_none(), "cut at {end}");
        }
        // a field that is not a SEQUENCE where the public key should be
        let bad = certificate(None, &name, &name, &tlv(0x04, b"key"));
        assert!(certificate_fields(&bad).is_none());
        // fields missing, lengths longer than the input or of more bytes than a usize holds
        let short = tlv(0x30, &tlv(0x30, &tlv(0x02, &[1])));
        for input in [
            &short[..],
            &[0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x80],
        ] {
            assert!(certificate_fields(input).is_none(), "{input:?}");
        }
    }
}
