//! The typed API client: the only way the dashboard and CLIs talk to agents.
//!
//! An [`Endpoint`] is a Unix socket path, an `http://host:port` address
//! (loopback) or an `https://host:port` one, verified against the system's
//! root certificates or a CA file ([`Client::with_ca_file`]).
//! Every call has a timeout, so that a slow agent shows as slow instead of
//! freezing its caller. One connection per request: the socket is local and
//! requests are few (a dashboard refresh is a handful).

use std::path::PathBuf;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::api::{
    ApiError, GpuState, Health, ProcessSnapshot, QueryRequest, SeriesInfo, SeriesPoints,
};
use crate::incident::{Feedback, FeedbackRequest, Incident, IncidentAction, NoteRequest};
use crate::jobs::{JobEvent, JobRun, JobSummary};
use crate::status::AgentStatus;

/// Percent-encodes a path segment (a job name may hold anything printable).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where an agent listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
    /// `host:port`, over TLS.
    Https(String),
}

impl Endpoint {
    /// `http://127.0.0.1:7070` or `127.0.0.1:7070` is TCP; anything else a socket path.
    pub fn parse(text: &str) -> Self {
        if let Some(addr) = text.strip_prefix("https://") {
            return Endpoint::Https(addr.trim_end_matches('/').to_string());
        }
        match text.strip_prefix("http://") {
            Some(addr) => Endpoint::Tcp(addr.trim_end_matches('/').to_string()),
            None if text.parse::<std::net::SocketAddr>().is_ok() => Endpoint::Tcp(text.to_string()),
            None => Endpoint::Unix(PathBuf::from(text)),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "http://{a}"),
            Endpoint::Https(a) => write!(f, "https://{a}"),
        }
    }
}

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot reach the agent at {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: std::io::Error,
    },
    #[error("the agent at {0} did not answer in time")]
    Timeout(String),
    #[error("talking to the agent at {endpoint}: {message}")]
    Protocol { endpoint: String, message: String },
    #[error("the agent refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
}

#[derive(Clone)]
pub struct Client {
    endpoint: Endpoint,
    timeout: Duration,
    token: Option<String>,
    /// Roots that an `https` agent's certificate must chain to.
    tls: TlsRoots,
}

/// Where trust for `https` agents comes from.
#[derive(Debug, Clone)]
enum TlsRoots {
    System,
    /// A CA file's certificates, or why it could not be read.
    File(Result<std::sync::Arc<rustls::ClientConfig>, String>),
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

fn tls_config(
    roots: rustls::RootCertStore,
) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| std::sync::Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
        .map_err(|e| e.to_string())
}

/// Rustls with the system's root certificates, read once per process, and
/// how many roots were found (none: every https peer will be refused).
pub fn system_tls() -> Result<(std::sync::Arc<rustls::ClientConfig>, usize), String> {
    static SYSTEM: std::sync::OnceLock<
        Result<(std::sync::Arc<rustls::ClientConfig>, usize), String>,
    > = std::sync::OnceLock::new();
    SYSTEM
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            let found = roots.len();
            tls_config(roots).map(|c| (c, found))
        })
        .clone()
}

/// Rustls trusting only the certificates of a PEM file (a private CA, or a
/// peer's self-signed certificate); the error names the file.
pub fn tls_from_ca_file(
    path: &std::path::Path,
) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    (|| {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| e.to_string())? {
            roots
                .add(cert.map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        }
        if roots.is_empty() {
            return Err("no certificate in it".to_string());
        }
        tls_config(roots)
    })()
    .map_err(|e| format!("CA file {}: {e}", path.display()))
}

impl Client {
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            timeout: Duration::from_secs(2),
            token: None,
            tls: TlsRoots::System,
        }
    }

    /// Trusts the certificates of a PEM file (the agent's CA, or its
    /// self-signed certificate) for `https` agents, instead of the system's.
    pub fn with_ca_file(mut self, path: Option<&std::path::Path>) -> Self {
        if let Some(path) = path {
            self.tls = TlsRoots::File(tls_from_ca_file(path));
        }
        self
    }

    /// Sends `Authorization: Bearer TOKEN` with every request.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub async fn health(&self) -> Result<Health, ClientError> {
        self.call(Method::GET, "/api/v1/health", None::<&()>).await
    }

    pub async fn status(&self) -> Result<AgentStatus, ClientError> {
        self.call(Method::GET, "/api/v1/status", None::<&()>).await
    }

    /// Series whose key contains `matching` (all of them for "").
    pub async fn series(&self, matching: &str) -> Result<Vec<SeriesInfo>, ClientError> {
        let mut path = String::from("/api/v1/series?match=");
        for b in matching.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                path.push(b as char);
            } else {
                path.push_str(&format!("%{b:02X}"));
            }
        }
        self.call(Method::GET, &path, None::<&()>).await
    }

    pub async fn query(&self, q: &QueryRequest) -> Result<Vec<SeriesPoints>, ClientError> {
        self.call(Method::POST, "/api/v1/query", Some(q)).await
    }

    pub async fn processes(&self) -> Result<ProcessSnapshot, ClientError> {
        self.call(Method::GET, "/api/v1/processes", None::<&()>)
            .await
    }

    pub async fn gpus(&self) -> Result<GpuState, ClientError> {
        self.call(Method::GET, "/api/v1/gpus", None::<&()>).await
    }

    /// Reports a job run's start, heartbeat or finish.
    pub async fn job_event(&self, event: &JobEvent) -> Result<JobRun, ClientError> {
        self.call(Method::POST, "/api/v1/jobs/events", Some(event))
            .await
    }

    pub async fn jobs(&self) -> Result<Vec<JobSummary>, ClientError> {
        self.call(Method::GET, "/api/v1/jobs", None::<&()>).await
    }

    /// A job's runs, newest first.
    pub async fn job_runs(&self, job: &str) -> Result<Vec<JobRun>, ClientError> {
        let path = format!("/api/v1/jobs/{}/runs", encode(job));
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// Active incidents, or all kept ones with `include_resolved`.
    pub async fn incidents(&self, include_resolved: bool) -> Result<Vec<Incident>, ClientError> {
        let path = if include_resolved {
            "/api/v1/incidents?state=all"
        } else {
            "/api/v1/incidents"
        };
        self.call(Method::GET, path, None::<&()>).await
    }

    pub async fn incident(&self, id: u64) -> Result<Incident, ClientError> {
        self.call(Method::GET, &format!("/api/v1/incidents/{id}"), None::<&()>)
            .await
    }

    pub async fn acknowledge(&self, id: u64, by: Option<String>) -> Result<Incident, ClientError> {
        let path = format!("/api/v1/incidents/{id}/ack");
        self.call(Method::POST, &path, Some(&IncidentAction { by }))
            .await
    }

    pub async fn resolve(&self, id: u64, by: Option<String>) -> Result<Incident, ClientError> {
        let path = format!("/api/v1/incidents/{id}/resolve");
        self.call(Method::POST, &path, Some(&IncidentAction { by }))
            .await
    }

    pub async fn note(
        &self,
        id: u64,
        text: &str,
        by: Option<String>,
    ) -> Result<Incident, ClientError> {
        let path = format!("/api/v1/incidents/{id}/notes");
        let body = NoteRequest {
            text: text.to_string(),
            by,
        };
        self.call(Method::POST, &path, Some(&body)).await
    }

    pub async fn feedback(
        &self,
        id: u64,
        feedback: Feedback,
        by: Option<String>,
    ) -> Result<Incident, ClientError> {
        let path = format!("/api/v1/incidents/{id}/feedback");
        self.call(Method::POST, &path, Some(&FeedbackRequest { feedback, by }))
            .await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let endpoint = self.endpoint.to_string();
        match tokio::time::timeout(self.timeout, self.exchange(method, path, body)).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout(endpoint)),
        }
    }

    async fn exchange<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let endpoint = self.endpoint.to_string();
        let protocol = |message: String| ClientError::Protocol {
            endpoint: endpoint.clone(),
            message,
        };
        let connect = |source| ClientError::Connect {
            endpoint: endpoint.clone(),
            source,
        };
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| protocol(e.to_string()))?,
            None => Vec::new(),
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "ward-agent")
            .header("content-type", "application/json");
        if let Some(t) = &self.token {
            builder = builder.header("authorization", format!("Bearer {t}"));
        }
        let request = builder
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| protocol(e.to_string()))?;
        let response = match &self.endpoint {
            Endpoint::Unix(p) => {
                let stream = tokio::net::UnixStream::connect(p).await.map_err(connect)?;
                send(TokioIo::new(stream), request).await
            }
            Endpoint::Tcp(a) => {
                let stream = tokio::net::TcpStream::connect(a.as_str())
                    .await
                    .map_err(connect)?;
                send(TokioIo::new(stream), request).await
            }
            Endpoint::Https(a) => {
                let config = match &self.tls {
                    TlsRoots::File(loaded) => loaded.clone().map_err(&protocol)?,
                    TlsRoots::System => system_tls().map(|(c, _)| c).map_err(&protocol)?,
                };
                let host = a.rsplit_once(':').map_or(a.as_str(), |(h, _)| h);
                let name = rustls::pki_types::ServerName::try_from(
                    host.trim_matches(['[', ']']).to_string(),
                )
                .map_err(|e| protocol(e.to_string()))?;
                let stream = tokio::net::TcpStream::connect(a.as_str())
                    .await
                    .map_err(connect)?;
                let tls = tokio_rustls::TlsConnector::from(config)
                    .connect(name, stream)
                    .await
                    .map_err(|e| protocol(format!("TLS: {e}")))?;
                send(TokioIo::new(tls), request).await
            }
        }
        .map_err(protocol)?;
        let (status, body) = response;
        if status != StatusCode::OK {
            let message = serde_json::from_slice::<ApiError>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            return Err(ClientError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|e| protocol(format!("unexpected answer: {e}")))
    }
}

/// One HTTP/1.1 request on `io`: the response, with its whole body.
pub async fn http1_exchange<IO>(
    io: IO,
    request: Request<Full<Bytes>>,
) -> Result<hyper::Response<Bytes>, String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        // The connection ends with the request; its outcome is the response's.
        let _ = connection.await;
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(hyper::Response::from_parts(parts, body))
}

async fn send<IO>(io: IO, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let response = http1_exchange(io, request).await?;
    Ok((response.status(), response.into_body()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_from_what_a_user_types() {
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:7070/"),
            Endpoint::Tcp("127.0.0.1:7070".into())
        );
        assert_eq!(
            Endpoint::parse("127.0.0.1:7070"),
            Endpoint::Tcp("127.0.0.1:7070".into())
        );
        assert_eq!(
            Endpoint::parse("/run/ward/api.sock"),
            Endpoint::Unix("/run/ward/api.sock".into())
        );
    }
}
