//! The HTTP CONNECT tunnel through a forward proxy: the request, and the proxy's answer read
//! up to the end of its head, so nothing of the tunnel is consumed.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Failure;
use super::dial::classify;

/// Sends `CONNECT host:port` over a connection to a proxy and returns its status code.
pub async fn connect(stream: &mut TcpStream, host: &str, port: u16) -> Result<u16, Failure> {
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let request = format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: appproxy_exporter\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| classify(&e))?;
    // Read the answer's head byte by byte, so nothing of the tunnel is consumed.
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return Err(Failure::ProxyGarbled);
        }
        let mut byte = [0u8; 1];
        match stream.read(&mut byte).await {
            Ok(0) if head.is_empty() => return Err(Failure::Refused),
            Ok(0) => break,
            Ok(_) => head.push(byte[0]),
            Err(error) => return Err(classify(&error)),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status = text
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or(Failure::ProxyGarbled)?;
    Ok(status)
}
