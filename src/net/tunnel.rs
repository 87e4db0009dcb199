//! The HTTP CONNECT tunnel through a forward proxy, spoken by hyper's client connection: the
//! proxy's answer is framed by hyper, and a 2xx hands the connection over as the tunnel.

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::http::{Method, Request, header};
use hyper_util::rt::TokioIo;

use super::{Driver, Failure, Io, hyper_failure};

/// The proxy's answer to CONNECT, and the tunnel when it opened one.
pub struct Answer {
    pub status: u16,
    pub tunnel: Option<Io>,
}

/// Sends `CONNECT host:port` over `stream`, a connection to the proxy.
pub async fn open(stream: Io, host: &str, port: u16) -> Result<Answer, Failure> {
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| hyper_failure(&e, Failure::ProxyGarbled))?;
    let request = Request::builder()
        .method(Method::CONNECT)
        .uri(target.as_str())
        .header(header::HOST, target.as_str())
        .header(header::USER_AGENT, super::USER_AGENT)
        .body(Empty::<Bytes>::new())
        .map_err(|e| Failure::Unreachable(format!("cannot ask the proxy for {target}: {e}")))?;
    // Driven beside the request; a 2xx makes it hand the stream over and end.
    let driver = Driver::spawn(connection.with_upgrades());
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| hyper_failure(&e, Failure::ProxyGarbled))?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        return Ok(Answer {
            status,
            tunnel: None,
        });
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| hyper_failure(&e, Failure::ProxyGarbled))?;
    drop(driver);
    Ok(Answer {
        status,
        tunnel: Some(Box::new(TokioIo::new(upgraded))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A proxy that answers CONNECT with `answer`, then echoes what it receives.
    async fn proxy(answer: &'static [u8]) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 1024];
            let n = socket.read(&mut request).await.unwrap();
            assert!(request[..n].starts_with(b"CONNECT svc.test:443 HTTP/1.1\r\n"));
            socket.write_all(answer).await.unwrap();
            let mut buffer = [0u8; 64];
            while let Ok(n) = socket.read(&mut buffer).await {
                if n == 0 || socket.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
            }
        });
        address
    }

    async fn through(answer: &'static [u8]) -> Result<Answer, Failure> {
        let address = proxy(answer).await;
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        open(Box::new(stream), "svc.test", 443).await
    }

    #[tokio::test]
    async fn a_200_opens_the_tunnel_and_nothing_of_it_is_lost() {
        let answer = through(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
        let mut tunnel = answer.tunnel.unwrap();
        tunnel.write_all(b"ping").await.unwrap();
        let mut echoed = [0u8; 4];
        tunnel.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"ping");
    }

    #[tokio::test]
    async fn a_refusal_is_its_status_with_no_tunnel() {
        let answer = through(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(answer.status, 407);
        assert!(answer.tunnel.is_none());
    }

    #[tokio::test]
    async fn an_answer_that_is_not_http_is_garbled() {
        assert_eq!(
            through(b"SSH-2.0-OpenSSH_9.2\r\n").await.err(),
            Some(Failure::ProxyGarbled)
        );
    }
}
