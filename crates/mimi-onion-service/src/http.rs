//! HTTP plumbing shared by the processes: the hyper server loop (plain or
//! TLS), bounded body reading with a deadline, plain responses, and a
//! small blocking HTTP/1.1 client (keep-alive, `Content-Length` bodies)
//! that the client, the outbox and the front-ends' forwarding use.

use std::future::Future;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::tls::PeerProvider;

/// A response with a complete body.
pub type Resp = Response<Full<Bytes>>;

/// A request handler.
pub type Handler =
    Arc<dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Resp> + Send>> + Send + Sync>;

/// How long a connection may take to send a request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `handler` on `listener` until the process ends: HTTP/1.1 with
/// keep-alive, a deadline on request heads, TLS when `tls` is given. A
/// request on a TLS connection whose client certificate names a provider
/// carries a [`PeerProvider`] in its extensions.
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, handler: Handler) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            // The provider a client certificate names holds for every
            // request of the connection (ADM-1).
            let service = |peer: Option<PeerProvider>| {
                hyper::service::service_fn(move |mut req: Request<Incoming>| {
                    let handler = handler.clone();
                    if let Some(p) = &peer {
                        req.extensions_mut().insert(p.clone());
                    }
                    async move { Ok::<_, std::convert::Infallible>(handler(req).await) }
                })
            };
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true);
            match tls {
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    let peer = crate::tls::peer_provider(stream.get_ref().1);
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service(peer))
                        .await;
                }
                None => {
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service(None))
                        .await;
                }
            }
        });
    }
}

/// Why a request body was not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Longer than the limit.
    TooLarge,
    /// Not complete before the deadline.
    Timeout,
    /// The connection ended before the body did, or it was malformed.
    Aborted,
}

impl BodyError {
    /// The HTTP answer to it.
    pub fn response(self) -> Resp {
        match self {
            BodyError::TooLarge => text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n"),
            BodyError::Timeout => text(StatusCode::REQUEST_TIMEOUT, "body too slow\n"),
            BodyError::Aborted => text(StatusCode::BAD_REQUEST, "incomplete body\n"),
        }
    }
}

/// Reads a whole body of at most `limit` bytes within `deadline`.
pub async fn read_body(
    mut body: Incoming,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes, BodyError> {
    let read = async {
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| BodyError::Aborted)?;
            if let Ok(data) = frame.into_data() {
                if buf.len().saturating_add(data.len()) > limit {
                    return Err(BodyError::TooLarge);
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf.freeze())
    };
    tokio::time::timeout(deadline, read)
        .await
        .unwrap_or(Err(BodyError::Timeout))
}

/// The `Content-Length` a request declares, if any and well formed.
pub fn content_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(hyper::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// True if the request's media type (without parameters) is `media`.
pub fn has_media_type<B>(req: &Request<B>, media: &str) -> bool {
    req.headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(media))
}

/// A response with a body and media type.
pub fn bytes(status: StatusCode, media: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(media) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// A plain-text response.
pub fn text(status: StatusCode, body: &'static str) -> Resp {
    bytes(status, "text/plain; charset=utf-8", body)
}

/// A JSON response.
pub fn json(value: &serde_json::Value) -> Resp {
    bytes(StatusCode::OK, "application/json", value.to_string())
}

/// `405 Method Not Allowed` with the `Allow` header.
pub fn method_not_allowed(allow: &'static str) -> Resp {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    r.headers_mut().insert(
        hyper::header::ALLOW,
        hyper::header::HeaderValue::from_static(allow),
    );
    r
}

/// An HTTP response as the blocking client read it.
#[derive(Clone, Debug)]
pub struct ClientResponse {
    /// Status code.
    pub status: u16,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl ClientResponse {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The `host:port` of an `http://host:port[/...]` URL.
pub fn authority(url: &str) -> crate::Result<&str> {
    let rest = url
        .strip_prefix("http://")
        .ok_or(crate::Error::Config("only http:// URLs are supported here"))?;
    Ok(rest.split('/').next().unwrap_or(rest))
}

/// A blocking HTTP/1.1 connection to one server, reconnecting as needed.
#[derive(Debug)]
pub struct Client {
    authority: String,
    conn: Option<BufReader<TcpStream>>,
    timeout: Duration,
}

impl Client {
    /// A client for `http://host:port`.
    pub fn new(url: &str) -> crate::Result<Self> {
        Ok(Client {
            authority: authority(url)?.to_string(),
            conn: None,
            timeout: Duration::from_secs(30),
        })
    }

    /// Sets the read and write timeout of the connection.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn connect(&self) -> std::io::Result<BufReader<TcpStream>> {
        let addr: SocketAddr = self
            .authority
            .parse()
            .map_err(|_| std::io::Error::other("authority is not host:port"))?;
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(self.timeout))?;
        s.set_write_timeout(Some(self.timeout))?;
        Ok(BufReader::new(s))
    }

    /// Sends one request; retries once on a fresh connection if a kept
    /// one turns out closed before any response byte arrived.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<ClientResponse> {
        let reused = self.conn.is_some();
        match self.try_request(method, path, headers, body) {
            Ok(r) => Ok(r),
            Err(_) if reused => {
                self.conn = None;
                self.try_request(method, path, headers, body)
            }
            Err(e) => Err(e),
        }
    }

    fn try_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<ClientResponse> {
        if self.conn.is_none() {
            self.conn = Some(self.connect()?);
        }
        let result = (|| {
            let conn = self.conn.as_mut().ok_or(std::io::Error::other("no conn"))?;
            let mut head = format!(
                "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n",
                self.authority,
                body.len()
            );
            for (n, v) in headers {
                head.push_str(n);
                head.push_str(": ");
                head.push_str(v);
                head.push_str("\r\n");
            }
            head.push_str("\r\n");
            let stream = conn.get_mut();
            stream.write_all(head.as_bytes())?;
            stream.write_all(body)?;
            read_response(conn)
        })();
        match &result {
            Ok(r) if r.header("connection") == Some("close") => self.conn = None,
            Ok(_) => {}
            Err(_) => self.conn = None,
        }
        result
    }
}

/// Reads one response (status line, headers, a `Content-Length` body).
pub fn read_response(conn: &mut BufReader<TcpStream>) -> std::io::Result<ClientResponse> {
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(std::io::Error::other("bad status line"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("eof in headers"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        if headers.len() > 100 {
            return Err(std::io::Error::other("too many headers"));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    if len > 64 << 20 {
        return Err(std::io::Error::other("response too large"));
    }
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body)?;
    Ok(ClientResponse {
        status,
        headers,
        body,
    })
}
