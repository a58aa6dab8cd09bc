//! Reading the PROXY header before a session starts; the bytes received after the
//! header go back into the connection's [`Prefixed`] stream.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::prefixed::Prefixed;
use crate::protocol::proxy::{parse, ProxyHeader, ProxyParse};

/// How long a refused PROXY client may stay to read the `* BAD` line.
const REJECT_LINGER: Duration = Duration::from_secs(1);

/// Reads a PROXY header. `None` means the connection is to be dropped (invalid header,
/// already answered with `* BAD Invalid PROXY header`, or the client left).
pub async fn read_header<S>(stream: &mut Prefixed<S>) -> Option<ProxyHeader>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf: Vec<u8> = Vec::with_capacity(128);
    loop {
        match parse(&buf) {
            ProxyParse::Complete { len, header } => {
                stream.unread(buf.split_off(len));
                return Some(header);
            }
            ProxyParse::Invalid(_) => {
                let socket = stream.get_mut();
                let _ = socket.write_all(b"* BAD Invalid PROXY header\r\n").await;
                let _ = socket.shutdown().await;
                let mut scratch = [0u8; 512];
                let _ = tokio::time::timeout(REJECT_LINGER, async {
                    while let Ok(n) = socket.read(&mut scratch).await {
                        if n == 0 {
                            break;
                        }
                    }
                })
                .await;
                return None;
            }
            ProxyParse::Incomplete => {
                buf.reserve(512);
                match stream.get_mut().read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        }
    }
}
