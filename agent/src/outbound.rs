//! Outgoing HTTP/1.1 requests (notifications, OTLP over HTTP): one request
//! on a fresh connection, plain or TLS, the whole response back.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;

/// POSTs `body` to `url` with `headers`; `tls` is needed for https URLs.
pub async fn post(
    url: &Uri,
    headers: &[(HeaderName, HeaderValue)],
    body: Bytes,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Response<Bytes>, String> {
    let host = url.host().ok_or("the URL has no host")?.to_string();
    let https = url.scheme_str() == Some("https");
    let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = url.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let mut request = Request::post(path)
        .header("host", &host)
        .header(
            "user-agent",
            concat!("ward-agent/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    for (name, value) in headers {
        request.headers_mut().insert(name.clone(), value.clone());
    }
    let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    if https {
        let config = tls.ok_or("TLS is not available")?.clone();
        let name =
            rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                .map_err(|e| e.to_string())?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        ward_shared::client::http1_exchange(TokioIo::new(stream), request).await
    } else {
        ward_shared::client::http1_exchange(TokioIo::new(tcp), request).await
    }
}

/// A response's `Retry-After`, in seconds (the HTTP-date form is not used
/// by the services Ward talks to, and is read as absent).
pub fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Up to a quarter of `delay`, from the clock's low bits: enough to keep
/// agents that failed together from retrying together.
pub fn jitter(delay: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    delay.mul_f64(f64::from(nanos % 1000) / 4000.0)
}
