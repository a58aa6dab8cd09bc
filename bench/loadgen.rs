//! SMTP load generator for the benchmarks: N concurrent connections sending messages of a
//! given size, optionally pipelined (`--pipeline`: the envelope in one write; `--burst N`:
//! N whole transactions per write, bodies included, replies read afterwards), one or many
//! messages per connection, or holding idle connections; `--warmup N` sends N untimed
//! messages on one connection before the timed run. Prints one JSON line with
//! throughput, latency percentiles and the generator's own CPU time.
//!
//! cargo run --release --example loadgen -- --port 2525 --conns 50 --messages 20000 --size 1024

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadHalf, WriteHalf,
};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

#[derive(Clone)]
struct Args {
    host: String,
    port: u16,
    conns: usize,
    messages: usize,
    size: usize,
    per_conn: usize,
    burst: usize,
    pipeline: bool,
    idle: usize,
    hold_ms: u64,
    rcpts: usize,
    warmup: usize,
    starttls: bool,
    tls: Option<tokio_rustls::TlsConnector>,
}

fn parse_args() -> Args {
    let mut a = Args {
        host: "127.0.0.1".into(),
        port: 2525,
        conns: 1,
        messages: 1000,
        size: 1024,
        per_conn: 0,
        burst: 0,
        pipeline: false,
        idle: 0,
        hold_ms: 2000,
        rcpts: 1,
        warmup: 0,
        starttls: false,
        tls: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let key = argv[i].as_str();
        let val = argv.get(i + 1).cloned().unwrap_or_default();
        let num = || val.parse::<usize>().unwrap_or(0);
        match key {
            "--host" => a.host = val.clone(),
            "--port" => a.port = val.parse().unwrap_or(2525),
            "--conns" => a.conns = num().max(1),
            "--messages" => a.messages = num(),
            "--size" => a.size = num(),
            "--per-conn" => a.per_conn = num(),
            "--burst" => a.burst = num(),
            "--idle" => a.idle = num(),
            "--hold-ms" => a.hold_ms = num() as u64,
            "--rcpts" => a.rcpts = num().max(1),
            "--warmup" => a.warmup = num(),
            "--pipeline" => {
                a.pipeline = true;
                i += 1;
                continue;
            }
            "--starttls" => {
                a.starttls = true;
                i += 1;
                continue;
            }
            _ => {
                eprintln!("unknown argument {key}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    a
}

/// A message body of `size` bytes in 76-byte lines, already dot-stuffed, with the terminator.
fn make_body(size: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(size + 128);
    body.extend_from_slice(b"From: a@example.com\r\nTo: b@example.com\r\nSubject: load\r\n\r\n");
    let line = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijkl\r\n";
    while body.len() + line.len() <= size {
        body.extend_from_slice(line);
    }
    while body.len() < size.saturating_sub(2) {
        body.push(b'x');
    }
    if !body.ends_with(b"\r\n") {
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b".\r\n");
    body
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

struct Conn {
    reader: BufReader<ReadHalf<Box<dyn Stream>>>,
    writer: WriteHalf<Box<dyn Stream>>,
    line: String,
}

/// Accepts any server certificate: the benchmark talks to its own test servers.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_connector() -> Option<tokio_rustls::TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

impl Conn {
    fn new(stream: Box<dyn Stream>) -> Conn {
        let (r, w) = tokio::io::split(stream);
        Conn {
            reader: BufReader::with_capacity(16 * 1024, r),
            writer: w,
            line: String::new(),
        }
    }

    async fn open(a: &Args) -> std::io::Result<Conn> {
        let stream = TcpStream::connect((a.host.as_str(), a.port)).await?;
        stream.set_nodelay(true)?;
        let mut c = Conn::new(Box::new(stream));
        c.expect(2).await?;
        c.writer.write_all(b"EHLO loadgen.example\r\n").await?;
        c.expect(2).await?;
        if let (true, Some(connector)) = (a.starttls, a.tls.as_ref()) {
            c.writer.write_all(b"STARTTLS\r\n").await?;
            c.expect(2).await?;
            let plain = c.reader.into_inner().unsplit(c.writer);
            let name = rustls::pki_types::ServerName::try_from("localhost")
                .map_err(std::io::Error::other)?;
            let secure = connector.connect(name, plain).await?;
            c = Conn::new(Box::new(secure));
            c.writer.write_all(b"EHLO loadgen.example\r\n").await?;
            c.expect(2).await?;
        }
        Ok(c)
    }

    /// Reads one reply and checks its class (2 = 2xx, 3 = 3xx).
    async fn expect(&mut self, class: u8) -> std::io::Result<()> {
        // what was written may still sit in a TLS buffer
        self.writer.flush().await?;
        loop {
            self.line.clear();
            let n = self.reader.read_line(&mut self.line).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "server closed",
                ));
            }
            let b = self.line.as_bytes();
            if b.len() >= 4 && b[3] == b'-' {
                continue;
            }
            if b.first() != Some(&(b'0' + class)) {
                return Err(std::io::Error::other(format!(
                    "unexpected reply: {}",
                    self.line.trim_end()
                )));
            }
            return Ok(());
        }
    }

    async fn send_message(&mut self, a: &Args, body: &[u8]) -> std::io::Result<()> {
        let mut envelope = Vec::with_capacity(128);
        envelope.extend_from_slice(b"MAIL FROM:<sender@example.com>\r\n");
        for i in 0..a.rcpts {
            envelope.extend_from_slice(format!("RCPT TO:<rcpt{i}@example.com>\r\n").as_bytes());
        }
        if a.pipeline {
            envelope.extend_from_slice(b"DATA\r\n");
            self.writer.write_all(&envelope).await?;
            for _ in 0..=a.rcpts {
                self.expect(2).await?;
            }
            self.expect(3).await?;
        } else {
            self.writer
                .write_all(b"MAIL FROM:<sender@example.com>\r\n")
                .await?;
            self.expect(2).await?;
            for i in 0..a.rcpts {
                self.writer
                    .write_all(format!("RCPT TO:<rcpt{i}@example.com>\r\n").as_bytes())
                    .await?;
                self.expect(2).await?;
            }
            self.writer.write_all(b"DATA\r\n").await?;
            self.expect(3).await?;
        }
        self.writer.write_all(body).await?;
        self.writer.flush().await?;
        self.expect(2).await
    }

    /// Writes `count` whole transactions at once, without waiting for any reply (the
    /// body follows DATA in the same write), then reads all their replies.
    async fn send_burst(&mut self, a: &Args, body: &[u8], count: usize) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(count * (body.len() + 128));
        for _ in 0..count {
            out.extend_from_slice(b"MAIL FROM:<sender@example.com>\r\n");
            for i in 0..a.rcpts {
                out.extend_from_slice(format!("RCPT TO:<rcpt{i}@example.com>\r\n").as_bytes());
            }
            out.extend_from_slice(b"DATA\r\n");
            out.extend_from_slice(body);
        }
        self.writer.write_all(&out).await?;
        self.writer.flush().await?;
        for _ in 0..count {
            for _ in 0..=a.rcpts {
                self.expect(2).await?;
            }
            self.expect(3).await?;
            self.expect(2).await?;
        }
        Ok(())
    }

    async fn quit(mut self) {
        let _ = self.writer.write_all(b"QUIT\r\n").await;
        let _ = self.expect(2).await;
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn run_messages(a: Args) {
    let body = Arc::new(make_body(a.size));
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    if a.warmup > 0 {
        // untimed messages first, so that the server's code is compiled and its
        // buffers are grown before anything is measured
        if let Ok(mut c) = Conn::open(&a).await {
            for _ in 0..a.warmup {
                if c.send_message(&a, &body).await.is_err() {
                    break;
                }
            }
            c.quit().await;
        }
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.conns {
        let (a, body, next, errors) = (
            a.clone(),
            Arc::clone(&body),
            Arc::clone(&next),
            Arc::clone(&errors),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut conn: Option<Conn> = None;
            let mut sent_on_conn = 0usize;
            loop {
                let batch = a.burst.max(1);
                let first = next.fetch_add(batch, Ordering::Relaxed);
                if first >= a.messages {
                    break;
                }
                let count = batch.min(a.messages - first);
                if conn.is_none() {
                    match Conn::open(&a).await {
                        Ok(c) => conn = Some(c),
                        Err(e) => {
                            eprintln!("connect: {e}");
                            errors.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                    sent_on_conn = 0;
                }
                let Some(c) = conn.as_mut() else { continue };
                let t0 = Instant::now();
                let sent = if a.burst > 0 {
                    c.send_burst(&a, &body, count).await
                } else {
                    c.send_message(&a, &body).await
                };
                match sent {
                    // a burst's messages all count with the burst's time
                    Ok(()) => latencies
                        .extend(std::iter::repeat_n(t0.elapsed().as_micros() as u64, count)),
                    Err(e) => {
                        eprintln!("send: {e}");
                        errors.fetch_add(1, Ordering::Relaxed);
                        conn = None;
                        continue;
                    }
                }
                sent_on_conn += count;
                if a.per_conn > 0 && sent_on_conn >= a.per_conn {
                    if let Some(c) = conn.take() {
                        c.quit().await;
                    }
                }
            }
            if let Some(c) = conn.take() {
                c.quit().await;
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        if let Ok(l) = t.await {
            all.extend(l);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let n = all.len();
    println!(
        "{{\"messages\":{n},\"errors\":{},\"seconds\":{secs:.4},\"msgs_per_sec\":{:.1},\"mb_per_sec\":{:.2},\"p50_us\":{},\"p99_us\":{},\"loadgen_cpu\":{:.4}}}",
        errors.load(Ordering::Relaxed),
        n as f64 / secs,
        (n * a.size) as f64 / secs / 1e6,
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        own_cpu_seconds()
    );
}

/// CPU time this (single-threaded) generator used so far, from `/proc/self/schedstat`
/// (nanoseconds on a CPU); 0 where that file does not exist.
fn own_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9)
}

async fn run_idle(a: Args) {
    let mut conns = Vec::with_capacity(a.idle);
    let mut errors = 0;
    let start = Instant::now();
    // open in waves: every connection waits for its greeting, so they open concurrently
    let mut left = a.idle;
    while left > 0 {
        let wave = left.min(500);
        left -= wave;
        let mut tasks = Vec::with_capacity(wave);
        for _ in 0..wave {
            let a = a.clone();
            tasks.push(tokio::spawn(async move { Conn::open(&a).await }));
        }
        for t in tasks {
            match t.await {
                Ok(Ok(c)) => conns.push(c),
                _ => errors += 1,
            }
        }
    }
    let opened = start.elapsed().as_secs_f64();
    println!(
        "{{\"idle\":{},\"errors\":{errors},\"open_seconds\":{opened:.3}}}",
        conns.len()
    );
    // the driver samples the server's memory while these are held
    tokio::time::sleep(Duration::from_millis(a.hold_ms)).await;
    drop(conns);
}

fn main() {
    let mut a = parse_args();
    if a.starttls {
        a.tls = tls_connector();
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            std::process::exit(1);
        }
    };
    if a.idle > 0 {
        rt.block_on(run_idle(a));
    } else {
        rt.block_on(run_messages(a));
    }
}
